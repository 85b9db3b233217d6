-- The audit log: views of cards and notes, exports and prints, log-ins and
-- failed log-ins, account changes. Append-only: the triggers refuse any UPDATE
-- or DELETE, whoever asks (the Store API offers neither). Edits are audited by
-- the change log itself (who, what, when, which device), which is append-only
-- in the same way for everything but its acknowledgement columns.
CREATE TABLE audit_log (
    id        TEXT NOT NULL UNIQUE,   -- UUIDv7
    at        TEXT NOT NULL,          -- UTC, RFC 3339 with milliseconds
    device_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    action    TEXT NOT NULL,          -- view_child, view_note, export, login, login_failed, ...
    entity    TEXT,
    record_id TEXT,
    school_id TEXT,
    details   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_record ON audit_log (record_id) WHERE record_id IS NOT NULL;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit.append_only: audit entries cannot be changed');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit.append_only: audit entries cannot be deleted');
END;

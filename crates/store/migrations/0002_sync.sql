-- 0002: what sync needs on a device.
--
-- * change_log: `restore` becomes a valid op (undoing a delete when an
--   edit-versus-delete conflict is resolved) and an entry may name the
--   conflict it resolves. SQLite cannot alter a CHECK, so the table is rebuilt.
-- * conflict: conflict records made by the server and resolved on any device.
-- * meta keys used by sync: acked_seq (this device's entries the server
--   holds), pull_cursor (the server sequence pulled up to), server_id.
CREATE TABLE change_log_v2 (
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    change_id TEXT NOT NULL,
    hlc INTEGER NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    school_id TEXT,
    op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete', 'restore')),
    fields TEXT NOT NULL,
    base_version INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    server_seq INTEGER,
    resolves TEXT,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
INSERT INTO change_log_v2 (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, server_seq)
    SELECT device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, server_seq FROM change_log;
DROP TABLE change_log;
ALTER TABLE change_log_v2 RENAME TO change_log;
CREATE INDEX change_log_record ON change_log (record_id);

CREATE TABLE conflict (
    id TEXT PRIMARY KEY NOT NULL,
    body TEXT NOT NULL,
    school_id TEXT,
    child_id TEXT,
    parent_id TEXT,
    date TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    device_id TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    deleted_at TEXT,
    delete_reason TEXT
);
CREATE INDEX conflict_parent ON conflict (parent_id);

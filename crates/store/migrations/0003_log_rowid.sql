-- 0003: a cheaper change log.
--
-- * change_log becomes an ordinary rowid table. As a WITHOUT ROWID table its
--   rows lived in an index-shaped b-tree where anything over ~1 KB spilled to
--   overflow pages; (device_id, seq) stays unique through its own index.
-- * fields may be NULL, on a `create` entry only: "the body as created". The
--   record's row holds that body until the record's first change, and every
--   write that changes a body first copies it into this entry (see
--   changelog.rs), so the log stays exact without storing each body twice.
--   Entries written before this migration keep their fields as they are.
CREATE TABLE change_log_v3 (
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    change_id TEXT NOT NULL,
    hlc INTEGER NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    school_id TEXT,
    op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete', 'restore')),
    fields TEXT CHECK (fields IS NOT NULL OR op = 'create'),
    base_version INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    server_seq INTEGER,
    resolves TEXT,
    UNIQUE (device_id, seq)
);
INSERT INTO change_log_v3 (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, server_seq, resolves)
    SELECT device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, server_seq, resolves
    FROM change_log ORDER BY device_id, seq;
DROP TABLE change_log;
ALTER TABLE change_log_v3 RENAME TO change_log;
CREATE INDEX change_log_record ON change_log (record_id);

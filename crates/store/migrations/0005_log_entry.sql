-- 0005: a smaller change log (the insert benchmark: a log row cost as much
-- CPU as half the record it describes).
--
-- * log_entry replaces the change_log table. Its key is `pos`, the rowid:
--   log_device.n << 40 | seq. One b-tree keeps the entries in (device, seq)
--   order and makes (device, seq) unique, where change_log needed the table
--   plus a UNIQUE (device_id, seq) index repeating a 36-character device id
--   in every row and every index entry. A device's entries are the rowid
--   range [n << 40, (n + 1) << 40); seq stays below 2^40.
-- * Ids are 16-byte BLOBs (the UUID's bytes) instead of 36-character text;
--   record_id keeps its index (a record's history, the create entry an edit
--   materialises, a record's unacknowledged edits).
-- * The CHECK on op compares four times instead of `op IN (...)`, which
--   SQLite evaluated through an ephemeral index built on every insert.
-- * log_device numbers the devices whose entries are here (this device, the
--   ones pulled from the server, retired ids of this device).
-- * change_log is now a read-only VIEW with the old columns as text, for
--   people and tests inspecting the file with SQL. The store itself reads and
--   writes log_entry.
-- Every entry is kept as it was (converted, not rewritten).
CREATE TABLE log_device (
    n INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
);
INSERT INTO log_device (id) SELECT DISTINCT device_id FROM change_log ORDER BY device_id;

CREATE TABLE log_entry (
    pos INTEGER PRIMARY KEY,
    change_id BLOB NOT NULL,
    hlc INTEGER NOT NULL,
    entity TEXT NOT NULL,
    record_id BLOB NOT NULL,
    school_id BLOB,
    -- Not `op IN (...)`: SQLite builds an ephemeral index for an IN list of
    -- four in a CHECK on every insert (a third of a log row's cost).
    op TEXT NOT NULL CHECK (op = 'create' OR op = 'update' OR op = 'delete' OR op = 'restore'),
    fields TEXT CHECK (fields IS NOT NULL OR op = 'create'),
    base_version INTEGER NOT NULL,
    user_id BLOB NOT NULL,
    server_seq INTEGER,
    resolves BLOB
);
INSERT INTO log_entry (pos, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, server_seq, resolves)
    SELECT (d.n << 40) | c.seq,
           unhex(replace(c.change_id, '-', '')),
           c.hlc,
           c.entity,
           unhex(replace(c.record_id, '-', '')),
           unhex(replace(c.school_id, '-', '')),
           c.op,
           c.fields,
           c.base_version,
           unhex(replace(c.user_id, '-', '')),
           c.server_seq,
           unhex(replace(c.resolves, '-', ''))
    FROM change_log c JOIN log_device d ON d.id = c.device_id
    ORDER BY d.n, c.seq;
DROP TABLE change_log;
CREATE INDEX log_entry_record ON log_entry (record_id);

CREATE VIEW change_log AS
    SELECT (SELECT id FROM log_device WHERE n = e.pos >> 40) AS device_id,
           e.pos & 1099511627775 AS seq,
           lower(substr(hex(e.change_id), 1, 8) || '-' || substr(hex(e.change_id), 9, 4) || '-' || substr(hex(e.change_id), 13, 4) || '-' || substr(hex(e.change_id), 17, 4) || '-' || substr(hex(e.change_id), 21)) AS change_id,
           e.hlc,
           e.entity,
           lower(substr(hex(e.record_id), 1, 8) || '-' || substr(hex(e.record_id), 9, 4) || '-' || substr(hex(e.record_id), 13, 4) || '-' || substr(hex(e.record_id), 17, 4) || '-' || substr(hex(e.record_id), 21)) AS record_id,
           CASE WHEN e.school_id IS NOT NULL THEN lower(substr(hex(e.school_id), 1, 8) || '-' || substr(hex(e.school_id), 9, 4) || '-' || substr(hex(e.school_id), 13, 4) || '-' || substr(hex(e.school_id), 17, 4) || '-' || substr(hex(e.school_id), 21)) END AS school_id,
           e.op,
           e.fields,
           e.base_version,
           lower(substr(hex(e.user_id), 1, 8) || '-' || substr(hex(e.user_id), 9, 4) || '-' || substr(hex(e.user_id), 13, 4) || '-' || substr(hex(e.user_id), 17, 4) || '-' || substr(hex(e.user_id), 21)) AS user_id,
           e.server_seq,
           CASE WHEN e.resolves IS NOT NULL THEN lower(substr(hex(e.resolves), 1, 8) || '-' || substr(hex(e.resolves), 9, 4) || '-' || substr(hex(e.resolves), 13, 4) || '-' || substr(hex(e.resolves), 17, 4) || '-' || substr(hex(e.resolves), 21)) END AS resolves
    FROM log_entry e;

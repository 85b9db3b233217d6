-- 0001: the first schema. Frozen: later changes are new numbered files.
--
-- meta: one row per key (device_id, local_user_id, hlc_last, next_seq ...).
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The change log: every local write appends one entry in the same transaction
-- as the row it describes. Entries pulled from the server land here too (with
-- their origin device), so a record's history is one query.
--   seq          gapless per device, from 1
--   hlc          hybrid logical clock (ms << 16 | counter)
--   op           create | update | delete
--   fields       create: the whole body; update: {dotted path: new value};
--                delete: {"reason": ...}
--   base_version the record's version (server sequence) the edit was based on
--   server_seq   the server's number once acknowledged / when pulled
CREATE TABLE change_log (
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    change_id TEXT NOT NULL,
    hlc INTEGER NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    school_id TEXT,
    op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    fields TEXT NOT NULL,
    base_version INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    server_seq INTEGER,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX change_log_record ON change_log (record_id);


CREATE TABLE school (
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

CREATE TABLE child (
    id TEXT PRIMARY KEY NOT NULL,
    body TEXT NOT NULL,
    school_id TEXT,
    child_id TEXT,
    parent_id TEXT,
    date TEXT,
    name TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    search_keys TEXT NOT NULL,
    id_number TEXT,
    student_number TEXT NOT NULL,
    gender TEXT,
    township TEXT NOT NULL,
    grade TEXT NOT NULL,
    class_name TEXT NOT NULL,
    left_behind_type TEXT NOT NULL,
    guardianship_type TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    device_id TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    deleted_at TEXT,
    delete_reason TEXT
);
CREATE INDEX child_school ON child (school_id);
CREATE INDEX child_household ON child (parent_id);

CREATE TABLE household (
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
CREATE INDEX household_school ON household (school_id);

CREATE TABLE help_plan (
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
CREATE INDEX help_plan_child ON help_plan (child_id);
CREATE INDEX help_plan_parent ON help_plan (parent_id);

CREATE TABLE plan_version (
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
CREATE INDEX plan_version_child ON plan_version (child_id);
CREATE INDEX plan_version_parent ON plan_version (parent_id);

CREATE TABLE home_visit (
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
CREATE INDEX home_visit_child ON home_visit (child_id);

CREATE TABLE visit_amendment (
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
CREATE INDEX visit_amendment_child ON visit_amendment (child_id);
CREATE INDEX visit_amendment_parent ON visit_amendment (parent_id);

CREATE TABLE follow_up (
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
CREATE INDEX follow_up_child ON follow_up (child_id);
CREATE INDEX follow_up_parent ON follow_up (parent_id);

CREATE TABLE psych_note (
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
CREATE INDEX psych_note_child ON psych_note (child_id);

CREATE TABLE aid (
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
CREATE INDEX aid_child ON aid (child_id);

CREATE TABLE absence (
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
CREATE INDEX absence_child ON absence (child_id);

CREATE TABLE dropout_event (
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
CREATE INDEX dropout_event_child ON dropout_event (child_id);

CREATE TABLE persuasion_visit (
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
CREATE INDEX persuasion_visit_child ON persuasion_visit (child_id);

CREATE TABLE family_contact (
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
CREATE INDEX family_contact_child ON family_contact (child_id);

CREATE TABLE safety_session (
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
CREATE INDEX safety_session_school ON safety_session (school_id);

CREATE TABLE screening_round (
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
CREATE INDEX screening_round_school ON screening_round (school_id);

CREATE TABLE screening_entry (
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
CREATE INDEX screening_entry_child ON screening_entry (child_id);
CREATE INDEX screening_entry_parent ON screening_entry (parent_id);

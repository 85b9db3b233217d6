-- 0006: indexes (and one table) for the Home screen's dashboard and the
-- children list's search index, so neither reads the records' bodies
-- (ui-bench at 40,000 children: the dashboard read every child's and visit's
-- row, JSON and all, several times, 4 s; the search index read every child's
-- row, 0.6-1.4 s).
--
-- Each is covering (every column the query reads is in it) or partial (only
-- the few rows a query lists), and the dashboard's queries repeat the
-- expressions exactly as written here (SQLite uses a partial index only when
-- the query's WHERE contains the index's terms word for word): change both
-- together, in a new migration. A covering partial index holds the columns
-- and expressions of its own WHERE too (deleted_at, always NULL there):
-- without them SQLite reads each row to test them again.

-- The two child indexes lead with the id: ids are UUIDv7 (time-ordered), so
-- a new child's entry goes at the end of the index instead of into a random
-- page (with sort_key first, and an index on (child_id, date) instead of
-- child_last_visit, filling 40,000 children and visits took 29.5 s, not 20.2 s).
-- Their readers sort what they need themselves.

-- Active children by type, school and name order (the counts by type; the
-- children due a home visit).
CREATE INDEX child_active ON child (id, status, left_behind_type, guardianship_type, school_id, sort_key,
    deleted_at) WHERE deleted_at IS NULL;

-- The search index's columns (search.rs reads this, not the rows).
CREATE INDEX child_search ON child (id, sort_key, name, search_keys, id_number, student_number, gender,
    date, school_id, township, grade, class_name, left_behind_type, guardianship_type, status,
    updated_at, deleted_at);

-- Children a counselor flagged on the card (under counseling or a safety alert).
CREATE INDEX child_counseling ON child (name, id, school_id)
    WHERE deleted_at IS NULL
      AND (json_extract(body, '$.counseling.active') = 1
           OR json_extract(body, '$.counseling.alert') IN ('watch', 'urgent'));

-- Each child's last finalised home visit (NULL date: finalised visits, none
-- dated), kept by the triggers below in the transaction of the write that
-- changes it: the dashboard reads one row per child instead of every visit
-- (400,000 at county scale). A child without a finalised visit has no row.
CREATE TABLE child_last_visit (
    child_id TEXT PRIMARY KEY NOT NULL,
    date TEXT
) WITHOUT ROWID;
INSERT INTO child_last_visit (child_id, date)
    SELECT child_id, MAX(date) FROM home_visit
    WHERE child_id IS NOT NULL AND deleted_at IS NULL AND json_extract(body, '$.status') = 'finalised'
    GROUP BY child_id;

-- A new finalised visit can only move the date forward (MAX ignores NULL).
CREATE TRIGGER child_last_visit_insert AFTER INSERT ON home_visit
    WHEN NEW.child_id IS NOT NULL AND NEW.deleted_at IS NULL
     AND json_extract(NEW.body, '$.status') = 'finalised'
BEGIN
    INSERT INTO child_last_visit (child_id, date) VALUES (NEW.child_id, NEW.date)
        ON CONFLICT (child_id) DO UPDATE SET date = CASE
            WHEN excluded.date IS NULL THEN date
            WHEN date IS NULL OR excluded.date > date THEN excluded.date
            ELSE date END;
END;

-- Any other change (finalised, amended, moved to another child, deleted,
-- restored, purged): the child's row again from its visits (home_visit_child).
CREATE TRIGGER child_last_visit_update AFTER UPDATE OF body, child_id, date, deleted_at ON home_visit
    WHEN OLD.child_id IS NOT NEW.child_id OR OLD.date IS NOT NEW.date
      OR OLD.deleted_at IS NOT NEW.deleted_at
      OR json_extract(OLD.body, '$.status') IS NOT json_extract(NEW.body, '$.status')
BEGIN
    DELETE FROM child_last_visit WHERE child_id IN (OLD.child_id, NEW.child_id);
    INSERT INTO child_last_visit (child_id, date)
        SELECT child_id, MAX(date) FROM home_visit
        WHERE child_id IN (OLD.child_id, NEW.child_id)
          AND deleted_at IS NULL AND json_extract(body, '$.status') = 'finalised'
        GROUP BY child_id;
END;

CREATE TRIGGER child_last_visit_delete AFTER DELETE ON home_visit
BEGIN
    DELETE FROM child_last_visit WHERE child_id = OLD.child_id;
    INSERT INTO child_last_visit (child_id, date)
        SELECT child_id, MAX(date) FROM home_visit
        WHERE child_id = OLD.child_id
          AND deleted_at IS NULL AND json_extract(body, '$.status') = 'finalised'
        GROUP BY child_id;
END;

-- Visit drafts.
CREATE INDEX home_visit_draft ON home_visit (school_id, deleted_at, json_extract(body, '$.status'))
    WHERE deleted_at IS NULL AND json_extract(body, '$.status') = 'draft';

-- Visits that found hazards at home, by date.
CREATE INDEX home_visit_hazard ON home_visit (date, school_id)
    WHERE deleted_at IS NULL AND json_array_length(body, '$.hazards') > 0;

-- Follow-ups not done, by due date.
CREATE INDEX follow_up_open ON follow_up (date, school_id)
    WHERE deleted_at IS NULL AND json_extract(body, '$.done') = 0;

-- Plain (unsealed, legacy) psychological notes.
CREATE INDEX psych_note_plain ON psych_note (child_id, date, id, school_id)
    WHERE deleted_at IS NULL AND json_extract(body, '$.sealed') IS NULL;

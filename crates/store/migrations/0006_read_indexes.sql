-- 0006: indexes for the Home screen's dashboard and the children list's
-- search index, so neither reads the records' bodies (ui-bench at 40,000
-- children: the dashboard read every child's and visit's row, some 200 MB
-- decrypted, 4 s; the search index read every child's row, 0.6-1.4 s).
--
-- Each is covering (every column the query reads is in it) or partial (only
-- the few rows a query lists), and the dashboard's queries repeat the
-- expressions exactly as written here (SQLite uses a partial index only when
-- the query's WHERE contains the index's terms word for word): change both
-- together, in a new migration. A covering partial index holds the columns
-- and expressions of its own WHERE too (deleted_at, always NULL there):
-- without them SQLite reads each row to test them again.

-- Active children by type, school and name order (the counts by type; the
-- children due a home visit).
CREATE INDEX child_active ON child (status, left_behind_type, guardianship_type, school_id, sort_key, id,
    deleted_at) WHERE deleted_at IS NULL;

-- The search index's columns in its order (search.rs reads this, not the rows).
CREATE INDEX child_search ON child (sort_key, id, name, search_keys, id_number, student_number, gender,
    date, school_id, township, grade, class_name, left_behind_type, guardianship_type, status,
    updated_at, deleted_at);

-- Children a counselor flagged on the card (under counseling or a safety alert).
CREATE INDEX child_counseling ON child (name, id, school_id)
    WHERE deleted_at IS NULL
      AND (json_extract(body, '$.counseling.active') = 1
           OR json_extract(body, '$.counseling.alert') IN ('watch', 'urgent'));

-- Each child's finalised visits by date (the last one per child).
CREATE INDEX home_visit_finalised ON home_visit (child_id, date, deleted_at, json_extract(body, '$.status'))
    WHERE deleted_at IS NULL AND json_extract(body, '$.status') = 'finalised';

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

//! Migration 0006: the read indexes of the dashboard and the search index,
//! built from a database at 0005 and kept current by later writes.

mod common;
use common::*;

use rusqlite::{Connection, OptionalExtension};
use shouhu_core::*;
use shouhu_store::schema::{self, MIGRATIONS};
use shouhu_store::{SearchParams, Store};

/// 0006's indexes and the rows each holds: the WHERE of each query repeats
/// the index's terms (as the dashboard's queries do).
const COUNTS: &[(&str, &str)] = &[
    (
        "child_active",
        "SELECT count(*) FROM child INDEXED BY child_active WHERE deleted_at IS NULL AND status = 'active'",
    ),
    ("child_search", "SELECT count(*) FROM child INDEXED BY child_search"),
    (
        "child_counseling",
        "SELECT count(*) FROM child INDEXED BY child_counseling WHERE deleted_at IS NULL \
         AND (json_extract(body, '$.counseling.active') = 1 \
              OR json_extract(body, '$.counseling.alert') IN ('watch', 'urgent'))",
    ),
    (
        "child_last_visit",
        "SELECT count(*) FROM child_last_visit",
    ),
    (
        "home_visit_draft",
        "SELECT count(*) FROM home_visit INDEXED BY home_visit_draft \
         WHERE deleted_at IS NULL AND json_extract(body, '$.status') = 'draft'",
    ),
    (
        "home_visit_hazard",
        "SELECT count(*) FROM home_visit INDEXED BY home_visit_hazard \
         WHERE deleted_at IS NULL AND json_array_length(body, '$.hazards') > 0",
    ),
    (
        "follow_up_open",
        "SELECT count(*) FROM follow_up INDEXED BY follow_up_open \
         WHERE deleted_at IS NULL AND json_extract(body, '$.done') = 0",
    ),
    (
        "psych_note_plain",
        "SELECT count(*) FROM psych_note INDEXED BY psych_note_plain \
         WHERE deleted_at IS NULL AND json_extract(body, '$.sealed') IS NULL",
    ),
];

/// `child_last_visit` holds what the visits say.
fn last_visits_agree(c: &Connection) -> TestResult {
    let q = |sql: &str| -> rusqlite::Result<Vec<(String, Option<String>)>> {
        let mut st = c.prepare(sql)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    };
    assert_eq!(
        q("SELECT child_id, date FROM child_last_visit ORDER BY child_id")?,
        q("SELECT child_id, MAX(date) FROM home_visit WHERE child_id IS NOT NULL AND deleted_at IS NULL \
           AND json_extract(body, '$.status') = 'finalised' GROUP BY child_id ORDER BY child_id")?
    );
    Ok(())
}

fn counts(c: &Connection) -> rusqlite::Result<Vec<i64>> {
    COUNTS
        .iter()
        .map(|(_, q)| c.query_row(q, [], |r| r.get(0)))
        .collect()
}

fn names(s: &Store) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    Ok(s.search_children(&SearchParams::default())?
        .items
        .into_iter()
        .map(|i| i.name)
        .collect())
}

#[test]
fn migration_0006_indexes_what_0005_holds_and_writes_keep_them() -> TestResult {
    assert_eq!(MIGRATIONS[5].0, "0006_read_indexes");
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("v5.db");
    // Records written as a 0005 build would (the tables and rows are the same
    // at 0005 and 0006): written through the store, then 0006 taken back.
    let (kept, wang, gone, draft, zs_visit) = {
        let mut s = Store::open(&path)?;
        s.set_today(Some(today()));
        let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?.id();
        let mut ids = vec![];
        for (name, active, alert) in [
            ("张三", true, SafetyAlert::None),
            ("李四", false, SafetyAlert::Watch),
            ("王五", false, SafetyAlert::None),
            ("赵六", true, SafetyAlert::Urgent),
        ] {
            let mut c = child(name, Gender::Male, d(2016, 5, 4), sch);
            c.counseling.active = active;
            if alert != SafetyAlert::None {
                c.counseling.alert = alert;
                c.counseling.alert_text = "放学后有人接送".into();
            }
            ids.push(s.write(|w| w.create(c))?.id());
        }
        let (draft, zs_visit) = s.write(|w| {
            // 张三: a finalised visit with a hazard, and a follow-up not done.
            let v = w.create(visit(ids[0], d(2026, 10, 1)))?;
            w.finalise_visit(v.id())?;
            let zs_visit = v.id();
            w.create(FollowUp {
                visit_id: Some(v.id()),
                child_id: Some(ids[0]),
                action: "联系母亲".into(),
                due_date: Some(d(2026, 12, 1)),
                ..Default::default()
            })?;
            w.create(FollowUp {
                visit_id: Some(v.id()),
                child_id: Some(ids[0]),
                action: "送书".into(),
                due_date: Some(d(2026, 11, 1)),
                done: true,
                done_date: Some(d(2026, 11, 2)),
                ..Default::default()
            })?;
            // 李四: a draft without hazards.
            let mut v = visit(ids[1], d(2026, 11, 20));
            v.hazards.clear();
            let draft = w.create(v)?.id();
            // A plain (legacy) note and a sealed one.
            w.create(PsychNote {
                child_id: ids[0],
                session_date: Some(d(2026, 11, 1)),
                presenting_issue: "睡眠不好".into(),
                risk_level: RiskLevel::High,
                ..Default::default()
            })?;
            w.create(PsychNote {
                child_id: ids[1],
                session_date: Some(d(2026, 11, 1)),
                sealed: Some(serde_json::json!({"ciphertext": "QUJD", "readers": []})),
                ..Default::default()
            })?;
            // 赵六 leaves the list.
            w.delete(EntityKind::Child, ids[3], "重复录入")?;
            Ok((draft, zs_visit))
        })?;
        (ids[0], ids[2], ids[3], draft, zs_visit)
    };
    let expected = vec![3, 4, 2, 1, 1, 1, 1, 1];
    {
        let mut conn = Connection::open(&path)?;
        assert_eq!(
            counts(&conn)?,
            expected,
            "at 0006, written through the store"
        );
        last_visits_agree(&conn)?;
        // Back to 0005: without what 0006 made.
        let tx = conn.transaction()?;
        for (index, _) in COUNTS.iter().filter(|(n, _)| *n != "child_last_visit") {
            tx.execute_batch(&format!("DROP INDEX {index}"))?;
        }
        tx.execute_batch(
            "DROP TRIGGER child_last_visit_insert; DROP TRIGGER child_last_visit_update;
             DROP TRIGGER child_last_visit_delete; DROP TABLE child_last_visit;",
        )?;
        tx.pragma_update(None, "user_version", 5)?;
        tx.commit()?;
        assert!(counts(&conn).is_err(), "0005 has none of them");
        schema::migrate_to(&mut conn, 6)?;
        assert_eq!(schema::version(&conn)?, 6);
        assert_eq!(counts(&conn)?, expected, "built from the rows 0005 holds");
        last_visits_agree(&conn)?;
        let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(ok, "ok");
    }
    // The store reads its search index from `child_search`, in name order.
    let mut s = Store::open(&path)?;
    s.set_today(Some(today()));
    assert_eq!(names(&s)?, ["李四", "王五", "张三"]);
    // Later writes keep every index current.
    let mut card = s.fetch::<ChildCard>(kept)?.body;
    let sch = card.school_id.unwrap_or_default();
    s.write(|w| {
        w.create(child("阿布", Gender::Female, d(2015, 1, 2), sch))?;
        w.finalise_visit(draft)?;
        card.counseling.active = false;
        w.update(kept, card)?;
        w.restore(EntityKind::Child, gone)?;
        // 王五: two visits created finalised, the later one first.
        for date in [d(2026, 9, 1), d(2026, 6, 1)] {
            let mut v = visit(wang, date);
            v.status = VisitStatus::Finalised;
            w.create(v)?;
        }
        w.delete(EntityKind::HomeVisit, zs_visit, "录错了孩子")?;
        Ok(())
    })?;
    assert_eq!(
        counts(s.connection())?,
        vec![5, 5, 2, 2, 0, 2, 1, 1],
        "a new child; the draft finalised; 张三 unflagged, his visit deleted; 赵六 back; 王五 visited"
    );
    last_visits_agree(s.connection())?;
    let last = |s: &Store, id: uuid::Uuid| -> rusqlite::Result<Option<String>> {
        s.connection()
            .query_row(
                "SELECT date FROM child_last_visit WHERE child_id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()
    };
    assert_eq!(last(&s, wang)?, Some("2026-09-01".into()));
    assert_eq!(last(&s, kept)?, None, "no finalised visit left");
    s.write(|w| w.restore(EntityKind::HomeVisit, zs_visit))?;
    assert_eq!(last(&s, kept)?, Some("2026-10-01".into()));
    last_visits_agree(s.connection())?;
    assert_eq!(names(&s)?, ["阿布", "李四", "王五", "张三", "赵六"]);
    Ok(())
}

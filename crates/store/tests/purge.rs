//! Removing a school that left the device's scope (`Store::purge_school`):
//! every table emptied of that school and only of it, in one transaction,
//! with no change-log entry (nothing of a purge can reach the server), an
//! audit entry, and never while this device has unsent changes for it.

mod common;

use common::*;
use serde_json::json;
use shouhu_core::hlc::Hlc;
use shouhu_core::*;
use shouhu_store::{AuditAction, AuditFilter, ChangeEntry, SearchParams, Store};
use uuid::Uuid;

/// Rows per table whose school is `school`.
fn rows_of(s: &Store, school: Uuid) -> Result<Vec<(&'static str, i64)>, rusqlite::Error> {
    EntityKind::ALL
        .iter()
        .map(|k| {
            let n: i64 = s.connection().query_row(
                &format!("SELECT COUNT(*) FROM {} WHERE school_id = ?1", k.name()),
                [school.to_string()],
                |r| r.get(0),
            )?;
            Ok((k.name(), n))
        })
        .collect()
}

fn log_of(
    s: &Store,
    school: Uuid,
) -> Result<Vec<(String, String, Option<String>)>, rusqlite::Error> {
    let mut st = s.connection().prepare(
        "SELECT device_id, op, fields FROM change_log WHERE school_id = ?1 ORDER BY device_id, seq",
    )?;
    let rows = st.query_map([school.to_string()], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    rows.collect()
}

/// One record of every kind for `school`, as another device's changes
/// arrive in a pull (server sequence from `first`).
fn pulled_of_every_kind(school: Uuid, child: Uuid, first: i64) -> Vec<ChangeEntry> {
    let other = Uuid::now_v7();
    EntityKind::ALL
        .iter()
        .filter(|k| **k != EntityKind::School)
        .enumerate()
        .map(|(i, k)| {
            let mut body = json!({ "school_id": school, "child_id": child });
            match k {
                EntityKind::Child => body = json!({ "name": "远方", "school_id": school }),
                EntityKind::PlanVersion => {
                    body = json!({ "plan_id": Uuid::now_v7(), "school_id": school, "revision": 1,
                                   "content": {}, "superseded_at": "2026-11-20T08:00:00Z" })
                }
                EntityKind::VisitAmendment => {
                    body = json!({ "visit_id": Uuid::now_v7(), "child_id": child, "school_id": school,
                                   "field": "problems_found", "old_value": "", "new_value": "作业",
                                   "reason": "笔误" })
                }
                _ => {}
            }
            ChangeEntry {
                device_id: other,
                seq: i as i64 + 1,
                change_id: Uuid::now_v7(),
                hlc: Hlc::new(4_000_000_000_000 + i as u64, 0),
                entity: *k,
                record_id: Uuid::now_v7(),
                school_id: Some(school),
                op: Op::Create,
                fields: body,
                base_version: 0,
                user_id: Uuid::now_v7(),
                server_seq: Some(first + i as i64),
                resolves: None,
            }
        })
        .collect()
}

struct Two {
    s: Store,
    a: Uuid,
    b: Uuid,
    child_b: Uuid,
}

/// A township device holding schools A and B: its own school, child and
/// visit draft in each (acknowledged), and another device's record of every
/// kind in each.
fn two_schools() -> Result<Two, Box<dyn std::error::Error>> {
    let mut s = store()?;
    let a = s.write(|w| w.create(school("新寨小学", "八步街道")))?.id();
    let b = s.write(|w| w.create(school("八步中学", "八步街道")))?.id();
    let child_a = s
        .write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), a)))?
        .id();
    let child_b = s
        .write(|w| w.create(child("李四", Gender::Female, d(2015, 3, 1), b)))?
        .id();
    s.write(|w| w.create(visit(child_a, today())))?;
    s.write(|w| w.create(visit(child_b, today())))?;
    s.ack_through(s.last_seq())?;
    let mut pulled = pulled_of_every_kind(a, child_a, 1);
    pulled.extend(pulled_of_every_kind(b, child_b, 100));
    s.apply_pulled(&pulled, 200)?;
    Ok(Two { s, a, b, child_b })
}

#[test]
fn a_purge_empties_every_table_of_that_school_only() -> TestResult {
    let Two {
        mut s,
        a,
        b,
        child_b,
        ..
    } = two_schools()?;
    // Every table holds something of B (and of A) before.
    for (table, n) in rows_of(&s, b)? {
        assert!(n > 0, "{table} has a row of B");
    }
    let a_before = rows_of(&s, a)?;
    let a_log_before = log_of(&s, a)?;
    let last_seq = s.last_seq();
    let own_log: i64 = s.connection().query_row(
        "SELECT COUNT(*) FROM change_log WHERE device_id = ?1",
        [s.device_id().to_string()],
        |r| r.get(0),
    )?;
    // The search index is loaded: it must forget B's child.
    let all = SearchParams::default();
    assert!(s
        .search_children(&all)?
        .items
        .iter()
        .any(|c| c.id == child_b));

    let purge = s.purge_school(b)?;
    assert_eq!(purge.school_id, b);
    assert_eq!(purge.name.as_deref(), Some("八步中学"));
    // The school, its own child and visit, and one pulled record of every
    // other kind.
    assert_eq!(purge.records, 3 + EntityKind::ALL.len() as u64 - 1);
    assert_eq!(purge.by_kind.get("child"), Some(&2));
    assert_eq!(purge.by_kind.get("home_visit"), Some(&2));

    for (table, n) in rows_of(&s, b)? {
        assert_eq!(n, 0, "{table} still has a row of B");
    }
    assert_eq!(rows_of(&s, a)?, a_before, "A is untouched");
    assert_eq!(log_of(&s, a)?, a_log_before, "A's log is untouched");
    assert!(s.get::<School>(b)?.is_none());
    assert!(s.get::<ChildCard>(child_b)?.is_none());
    assert!(!s
        .search_children(&all)?
        .items
        .iter()
        .any(|c| c.id == child_b));
    assert_eq!(s.search_children(&all)?.total, 2, "A's two children remain");

    // No change-log entry was written: no tombstone can reach the server.
    assert_eq!(s.last_seq(), last_seq);
    assert_eq!(s.pending_count()?, 0);
    let own_after: i64 = s.connection().query_row(
        "SELECT COUNT(*) FROM change_log WHERE device_id = ?1",
        [s.device_id().to_string()],
        |r| r.get(0),
    )?;
    assert_eq!(own_after, own_log);
    // Of B's log, only this device's own entries remain, emptied (they hold
    // its sequence numbers); nothing is a delete.
    let b_log = log_of(&s, b)?;
    assert_eq!(b_log.len() as u64, purge.log_emptied);
    assert_eq!(purge.log_emptied, 3, "B's school, child and visit");
    assert_eq!(purge.log_removed, EntityKind::ALL.len() as u64 - 1);
    for (device, op, fields) in &b_log {
        assert_eq!(device, &s.device_id().to_string());
        assert_eq!(op, "create");
        assert_eq!(fields.as_deref(), Some("{}"));
    }
    assert!(!s.holds_school(b)?);
    assert!(s.holds_school(a)?);

    // The purge is audited, with what it removed.
    let audit = s.audit_entries(&AuditFilter {
        action: Some(AuditAction::PurgeSchool),
        ..Default::default()
    })?;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].school_id, Some(b));
    assert_eq!(audit[0].details["records"], json!(purge.records));

    // The store goes on: new writes take the next sequence number.
    s.write(|w| w.create(child("王五", Gender::Male, d(2016, 1, 1), a)))?;
    assert_eq!(s.last_seq(), last_seq + 1);
    Ok(())
}

#[test]
fn a_school_with_unsent_changes_is_not_purged() -> TestResult {
    let Two {
        mut s, b, child_b, ..
    } = two_schools()?;
    let mut card = s.fetch::<ChildCard>(child_b)?.body;
    card.notes = "奶奶说孩子想妈妈".into();
    s.write(|w| w.update(child_b, card))?;
    assert_eq!(s.pending_for_school(b)?, 1);
    let before = rows_of(&s, b)?;
    let e = s.purge_school(b).err().ok_or("refused")?;
    assert_eq!(e.code(), "sync.purge_pending");
    assert_eq!(e.details(Lang::ZhCn), json!({"school_id": b, "pending": 1}));
    assert_eq!(rows_of(&s, b)?, before, "nothing removed");
    // Once the server holds it, the school goes.
    s.ack_through(s.last_seq())?;
    assert_eq!(s.pending_for_school(b)?, 0);
    s.purge_school(b)?;
    assert!(rows_of(&s, b)?.iter().all(|(_, n)| *n == 0));
    Ok(())
}

/// One transaction: a failure half-way leaves every row where it was.
#[test]
fn a_failed_purge_removes_nothing() -> TestResult {
    let Two { mut s, b, .. } = two_schools()?;
    let before = rows_of(&s, b)?;
    let log_before = log_of(&s, b)?;
    // `conflict` is the last table purged: everything before it is undone.
    s.connection().execute_batch(
        "CREATE TRIGGER no_purge BEFORE DELETE ON conflict BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    )?;
    assert!(s.purge_school(b).is_err());
    assert_eq!(rows_of(&s, b)?, before);
    assert_eq!(log_of(&s, b)?, log_before);
    let audited = s.audit_entries(&AuditFilter {
        action: Some(AuditAction::PurgeSchool),
        ..Default::default()
    })?;
    assert!(audited.is_empty());
    s.connection().execute_batch("DROP TRIGGER no_purge;")?;
    s.purge_school(b)?;
    assert!(rows_of(&s, b)?.iter().all(|(_, n)| *n == 0));
    Ok(())
}

//! The audit log: entries are written, filtered, sent once, and can be
//! neither changed nor deleted, even through raw SQL.

mod common;
use common::*;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use shouhu_core::*;
use shouhu_store::{AuditAction, AuditFilter, AuditTarget, Store};

#[test]
fn entries_are_written_filtered_and_sent_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.db");
    let mut s = Store::open(&path)?;
    s.set_today(Some(today()));
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), sch.id())))?;
    let teacher = uuid::Uuid::now_v7();
    s.set_user(teacher);
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 29, 8, 0, 0)
        .single()
        .ok_or("t0")?;
    s.audit_at(AuditAction::Login, AuditTarget::default(), json!({}), t0)?;
    let view = s.audit_at(
        AuditAction::ViewChild,
        AuditTarget {
            entity: Some("child".into()),
            record_id: Some(c.id()),
            school_id: Some(sch.id()),
        },
        json!({ "screen": "card" }),
        t0 + Duration::minutes(1),
    )?;
    s.audit_at(
        AuditAction::Export,
        AuditTarget {
            school_id: Some(sch.id()),
            ..Default::default()
        },
        json!({ "format": "xlsx", "rows": 1 }),
        t0 + Duration::minutes(2),
    )?;
    let other = uuid::Uuid::now_v7();
    s.set_user(other);
    s.audit_at(
        AuditAction::LoginFailed,
        AuditTarget::default(),
        json!({}),
        t0 + Duration::minutes(3),
    )?;

    let all = s.audit_entries(&AuditFilter::default())?;
    let actions: Vec<_> = all.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::LoginFailed,
            AuditAction::Export,
            AuditAction::ViewChild,
            AuditAction::Login
        ],
        "newest first"
    );
    assert_eq!(all[2], view);
    assert_eq!(all[2].device_id, s.device_id());
    let by_teacher = s.audit_entries(&AuditFilter {
        user_id: Some(teacher),
        ..Default::default()
    })?;
    assert_eq!(by_teacher.len(), 3);
    let views = s.audit_entries(&AuditFilter {
        record_id: Some(c.id()),
        ..Default::default()
    })?;
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].details["screen"], "card");
    let window = s.audit_entries(&AuditFilter {
        from: Some(t0 + Duration::minutes(1)),
        to: Some(t0 + Duration::minutes(3)),
        ..Default::default()
    })?;
    assert_eq!(window.len(), 2);
    let failed = s.audit_entries(&AuditFilter {
        action: Some(AuditAction::LoginFailed),
        ..Default::default()
    })?;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].user_id, other);

    // Upload: the unsent entries in order, then acknowledged through a row.
    let unsent = s.audit_unsent(10)?;
    assert_eq!(unsent.len(), 4);
    assert_eq!(unsent[0].1.action, AuditAction::Login);
    s.audit_mark_sent(unsent[1].0)?;
    s.audit_mark_sent(unsent[0].0)?; // never moves back
    drop(s);
    let s = Store::open(&path)?;
    let rest = s.audit_unsent(10)?;
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].1.action, AuditAction::Export);
    Ok(())
}

#[test]
fn entries_cannot_be_changed_or_deleted() -> TestResult {
    let s = Store::open_in_memory()?;
    let e = s.audit(
        AuditAction::ViewNote,
        AuditTarget::default(),
        json!({ "note": "n1" }),
    )?;
    let update = s
        .connection()
        .execute("UPDATE audit_log SET user_id = 'someone else'", []);
    let msg = update.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("audit.append_only"), "{msg}");
    let delete = s.connection().execute("DELETE FROM audit_log", []);
    assert!(delete.is_err());
    let kept = s.audit_entries(&AuditFilter::default())?;
    assert_eq!(kept, vec![e]);
    Ok(())
}

//! The change log without copies of created bodies (migration 0003): a
//! create's entry stands for the body as created until the record first
//! changes, and every reader still sees the full body; the reference checks
//! that remember ids within one transaction.

mod common;
use common::*;

use rusqlite::{params, Connection};
use serde_json::{json, Value};
use shouhu_core::hlc::Hlc;
use shouhu_core::*;
use shouhu_store::schema::{self, MIGRATIONS};
use shouhu_store::{ChangeEntry, Op, Store, StoreError};
use uuid::Uuid;

/// The stored `fields` column of a record's create entry (NULL = not copied).
fn stored_create_fields(s: &Store, id: Uuid) -> rusqlite::Result<Option<String>> {
    s.connection().query_row(
        "SELECT fields FROM change_log WHERE record_id = ?1 AND op = 'create'",
        [id.to_string()],
        |r| r.get(0),
    )
}

fn as_value<T: serde::Serialize>(v: &T) -> Result<Value, serde_json::Error> {
    serde_json::to_value(v)
}

#[test]
fn a_create_stores_no_copy_and_the_outbox_has_the_whole_body() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), sch.id())))?;
    assert_eq!(
        stored_create_fields(&s, c.id())?,
        None,
        "no copy of the body"
    );
    let out = s.outbox(100)?;
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].fields, as_value(&sch.body)?);
    assert_eq!(out[1].op, Op::Create);
    assert_eq!(out[1].fields, as_value(&c.body)?);
    let history = s.child_history(c.id(), true)?;
    assert_eq!(history.card_changes.len(), 1);
    assert_eq!(history.card_changes[0].fields, as_value(&c.body)?);
    // A delete and a restore leave the body alone: still the one created.
    s.write(|w| w.delete(EntityKind::Child, c.id(), "录入重复"))?;
    s.write(|w| w.restore(EntityKind::Child, c.id()))?;
    let log = s.changes_for_record(c.id())?;
    let ops: Vec<Op> = log.iter().map(|e| e.op).collect();
    assert_eq!(ops, [Op::Create, Op::Delete, Op::Restore]);
    assert_eq!(log[0].fields, as_value(&c.body)?);
    assert_eq!(log[1].fields, json!({"reason": "录入重复"}));
    Ok(())
}

#[test]
fn the_first_update_writes_the_created_body_into_the_create_entry() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), sch.id())))?;
    let created = as_value(&c.body)?;
    let mut b = c.body.clone();
    b.name = "张小三".into();
    b.boarding = true;
    s.write(|w| w.update(c.id(), b.clone()))?;
    let copied = stored_create_fields(&s, c.id())?.ok_or("the create entry was not filled")?;
    assert_eq!(serde_json::from_str::<Value>(&copied)?, created);
    // A second update leaves the create entry as it is.
    b.boarding = false;
    s.write(|w| w.update(c.id(), b))?;
    let log = s.changes_for_record(c.id())?;
    let ops: Vec<Op> = log.iter().map(|e| e.op).collect();
    assert_eq!(ops, [Op::Create, Op::Update, Op::Update]);
    assert_eq!(log[0].fields, created, "before: the body as created");
    assert_eq!(log[0].fields["name"], "张三");
    assert_eq!(
        log[1].fields,
        json!({"name": "张小三", "boarding": true}),
        "after: what the update changed"
    );
    // The outbox sends the create as it was, then the changes.
    let out = s.outbox(100)?;
    let mine: Vec<&ChangeEntry> = out.iter().filter(|e| e.record_id == c.id()).collect();
    assert_eq!(mine[0].fields, created);
    assert_eq!(mine.len(), 3);
    // Replaying the entries rebuilds the current body.
    let mut replay = mine[0].fields.clone();
    for e in &mine[1..] {
        for (path, v) in e.fields.as_object().ok_or("fields")? {
            diff::set_path(&mut replay, path, v.clone());
        }
    }
    assert_eq!(replay, as_value(&s.fetch::<ChildCard>(c.id())?.body)?);
    Ok(())
}

#[test]
fn a_failed_update_leaves_the_create_entry_unfilled_and_right() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), sch.id())))?;
    let mut b = c.body.clone();
    b.name = "张小三".into();
    let r: Result<(), StoreError> = s.write(|w| {
        w.update(c.id(), b)?;
        Err(StoreError::DeleteReasonRequired)
    });
    assert!(r.is_err());
    assert_eq!(stored_create_fields(&s, c.id())?, None);
    assert_eq!(s.changes_for_record(c.id())?[0].fields, as_value(&c.body)?);
    Ok(())
}

/// A change made on another device, as a pull delivers it.
fn remote_update(record: Uuid, kind: EntityKind, fields: Value, server_seq: i64) -> ChangeEntry {
    ChangeEntry {
        device_id: Uuid::now_v7(),
        seq: 1,
        change_id: Uuid::now_v7(),
        hlc: Hlc::new(4_000_000_000_000, 0),
        entity: kind,
        record_id: record,
        school_id: None,
        op: Op::Update,
        fields,
        base_version: 0,
        user_id: Uuid::now_v7(),
        server_seq: Some(server_seq),
        resolves: None,
    }
}

#[test]
fn a_pulled_change_fills_the_create_entry_before_changing_the_row() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), sch.id())))?;
    let created = as_value(&c.body)?;
    // The server holds our changes (acknowledged), then another device renames
    // the child.
    s.ack_through(s.last_seq())?;
    let change = remote_update(c.id(), EntityKind::Child, json!({"name": "张三丰"}), 10);
    s.apply_pulled(&[change], 10)?;
    assert_eq!(s.fetch::<ChildCard>(c.id())?.body.name, "张三丰");
    let copied = stored_create_fields(&s, c.id())?.ok_or("the create entry was not filled")?;
    assert_eq!(serde_json::from_str::<Value>(&copied)?, created);
    let history = s.child_history(c.id(), true)?;
    let ops: Vec<Op> = history.card_changes.iter().map(|e| e.op).collect();
    assert_eq!(ops, [Op::Create, Op::Update]);
    assert_eq!(history.card_changes[0].fields["name"], "张三");
    assert_eq!(history.card_changes[1].fields, json!({"name": "张三丰"}));
    // Sent again from the start (a reinstalled server), the create is still
    // the body as created.
    s.reset_sync_for_server(Uuid::now_v7())?;
    let out = s.outbox(100)?;
    let create = out
        .iter()
        .find(|e| e.record_id == c.id())
        .ok_or("create not in the outbox")?;
    assert_eq!(create.fields, created);
    Ok(())
}

#[test]
fn a_pulled_change_moves_a_record_between_schools_and_households() -> TestResult {
    let mut s = store()?;
    let a = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let b = s.write(|w| w.create(school("城关小学", "城关镇")))?;
    let h = s.write(|w| {
        w.create(Household {
            label: "张建国户".into(),
            school_id: Some(b.id()),
            head_name: "张建国".into(),
            ..Default::default()
        })
    })?;
    let c = s.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), a.id())))?;
    s.ack_through(s.last_seq())?;
    let ids = |l: Vec<Stored<ChildCard>>| l.iter().map(|x| x.id()).collect::<Vec<_>>();
    // An edit that keeps the school...
    let change = remote_update(c.id(), EntityKind::Child, json!({"notes": "家访"}), 10);
    s.apply_pulled(&[change], 10)?;
    assert_eq!(ids(s.list_by_school(a.id())?), vec![c.id()]);
    // ...then one that moves the child to another school and household.
    let change = remote_update(
        c.id(),
        EntityKind::Child,
        json!({"school_id": b.id(), "household_id": h.id()}),
        11,
    );
    s.apply_pulled(&[change], 11)?;
    assert!(s.list_by_school::<ChildCard>(a.id())?.is_empty());
    assert_eq!(ids(s.list_by_school(b.id())?), vec![c.id()]);
    assert_eq!(ids(s.list_by_parent(h.id())?), vec![c.id()]);
    let card = s.fetch::<ChildCard>(c.id())?.body;
    assert_eq!(
        (card.notes.as_str(), card.school_id),
        ("家访", Some(b.id()))
    );
    Ok(())
}

#[test]
fn a_pulled_change_with_a_local_edit_pending_keeps_both_right() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), sch.id())))?;
    let created = as_value(&c.body)?;
    // Nothing acknowledged: the whole created body is a pending local edit, so
    // the pulled rename is kept out of the row...
    let change = remote_update(c.id(), EntityKind::Child, json!({"name": "张三丰"}), 10);
    let applied = s.apply_pulled(&[change], 10)?;
    assert_eq!(applied.fields_kept, 1);
    assert_eq!(s.fetch::<ChildCard>(c.id())?.body.name, "张三");
    // ...and the create entry still reads as the body as created.
    assert_eq!(s.outbox(100)?[1].fields, created);
    assert_eq!(s.changes_for_record(c.id())?[0].fields, created);
    Ok(())
}

#[test]
fn resolving_a_conflict_fills_the_create_entry() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), sch.id())))?;
    let created = as_value(&c.body)?;
    let conflict = s.write(|w| {
        w.create(Conflict {
            entity: Some(EntityKind::Child),
            record_id: c.id(),
            kind: ConflictKind::SameField,
            field: Some("name".into()),
            current_value: json!("张三"),
            other_value: json!("张珊"),
            ..Conflict::default()
        })
    })?;
    s.write(|w| w.resolve_conflict(conflict.id(), ResolutionChoice::KeepOther, None))?;
    assert_eq!(s.fetch::<ChildCard>(c.id())?.body.name, "张珊");
    let log = s.changes_for_record(c.id())?;
    assert_eq!(log[0].fields, created);
    assert_eq!(log[1].fields, json!({"name": "张珊"}));
    assert_eq!(log[1].resolves, Some(conflict.id()));
    assert!(stored_create_fields(&s, c.id())?.is_some());
    Ok(())
}

/// device_id, seq, op, fields, server_seq, resolves
type OldEntry = (
    &'static str,
    i64,
    &'static str,
    &'static str,
    Option<i64>,
    Option<&'static str>,
);

#[test]
fn migration_0003_keeps_every_entry() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("v2.db");
    let dev = "01934b6e-0000-7000-8000-00000000d001";
    let other = "01934b6e-0000-7000-8000-00000000d002";
    let rows: Vec<OldEntry> = vec![
        (dev, 1, "create", r#"{"name":"旧学校"}"#, Some(7), None),
        (dev, 2, "update", r#"{"phone":"0857-1234567"}"#, None, None),
        (dev, 3, "delete", r#"{"reason":"撤并"}"#, None, None),
        (
            dev,
            4,
            "restore",
            "{}",
            None,
            Some("01934b6e-0000-7000-8000-0000000000f1"),
        ),
        (other, 1, "update", r#"{"name":"新学校"}"#, Some(9), None),
    ];
    let dump = |c: &Connection| -> rusqlite::Result<Vec<Vec<rusqlite::types::Value>>> {
        let mut st = c.prepare(
            "SELECT device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, server_seq, resolves
             FROM change_log ORDER BY device_id, seq",
        )?;
        let out = st.query_map([], |r| {
            (0..13)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect()
        })?;
        out.collect()
    };
    let before = {
        let mut conn = Connection::open(&path)?;
        schema::migrate_to(&mut conn, 2)?;
        for (i, (device, seq, op, fields, server_seq, resolves)) in rows.iter().enumerate() {
            conn.execute(
                "INSERT INTO change_log (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, server_seq, resolves)
                 VALUES (?1, ?2, ?3, ?4, 'school', '01934b6e-0000-7000-8000-00000000a001', NULL, ?5, ?6, ?7, '01934b6e-0000-7000-8000-00000000e001', ?8, ?9)",
                params![
                    device,
                    seq,
                    format!("01934b6e-0000-7000-8000-0000000c{i:04}"),
                    100 + i as i64,
                    op,
                    fields,
                    i as i64,
                    server_seq,
                    resolves
                ],
            )?;
        }
        dump(&conn)?
    };
    assert_eq!(MIGRATIONS[2].0, "0003_log_rowid");
    {
        let mut conn = Connection::open(&path)?;
        schema::migrate_to(&mut conn, 3)?;
        assert_eq!(schema::version(&conn)?, 3);
        assert_eq!(dump(&conn)?, before, "every entry, every column");
        // An ordinary rowid table now, (device_id, seq) still unique.
        let sql: String = conn.query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'change_log'",
            [],
            |r| r.get(0),
        )?;
        assert!(!sql.contains("WITHOUT ROWID"), "{sql}");
        let dup = conn.execute(
            "INSERT INTO change_log (device_id, seq, change_id, hlc, entity, record_id, op, fields, base_version, user_id)
             VALUES (?1, 1, 'x', 1, 'school', 'r', 'update', '{}', 0, 'u')",
            [dev],
        );
        assert!(dup.is_err(), "a second (device_id, seq) is refused");
        // Only a create may leave its fields out.
        let null_update = conn.execute(
            "INSERT INTO change_log (device_id, seq, change_id, hlc, entity, record_id, op, fields, base_version, user_id)
             VALUES (?1, 99, 'x', 1, 'school', 'r', 'update', NULL, 0, 'u')",
            [dev],
        );
        assert!(null_update.is_err());
    }
    // The store reads the old entries as they were.
    let s = Store::open(&path)?;
    let log = s.changes_for_record(Uuid::parse_str("01934b6e-0000-7000-8000-00000000a001")?)?;
    assert_eq!(log.len(), rows.len());
    assert_eq!(log[0].fields, json!({"name": "旧学校"}));
    assert_eq!(log[0].server_seq, Some(7));
    assert_eq!(log[3].op, Op::Restore);
    assert!(log[3].resolves.is_some());
    Ok(())
}

#[test]
fn an_existing_id_is_refused_by_the_primary_key() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), sch.id())))?;
    let e = s
        .write(|w| w.create_with_id(c.id(), child("李四", Gender::Male, d(2015, 1, 2), sch.id())))
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(e, Err("record.already_exists"));
    // Inside a batch the other lines are kept (an import's savepoints).
    let kept = s.write(|w| {
        let dup = w.attempt(|w| w.create_with_id(sch.id(), school("重复", "八步街道")));
        assert!(matches!(dup, Err(StoreError::AlreadyExists { .. })));
        w.create(visit(c.id(), d(2026, 7, 1)))
    })?;
    assert_eq!(s.fetch::<ChildCard>(c.id())?.body.name, "张三");
    assert_eq!(s.list_by_child::<HomeVisit>(c.id())?[0].meta.id, kept.id());
    Ok(())
}

#[test]
fn remembered_references_are_forgotten_when_a_savepoint_rolls_back() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let r = s.write(|w| {
        // A school and a child created, then rolled back with their savepoint.
        let gone = w.attempt(|w| -> Result<(Uuid, Uuid), StoreError> {
            let sch2 = w.create(school("分校", "八步街道"))?;
            let c = w.create(child("王五", Gender::Male, d(2016, 5, 4), sch2.id()))?;
            // Both are known (and checked from memory) here...
            w.create(visit(c.id(), d(2026, 7, 1)))?;
            Err(StoreError::DeleteReasonRequired)
        });
        assert!(gone.is_err());
        Ok(())
    });
    r?;
    // ...and after the rollback they are looked up again, and missing.
    let ids = s.write(|w| {
        let mut ids = None;
        let _ = w.attempt(|w| -> Result<(), StoreError> {
            let sch2 = w.create(school("分校", "八步街道"))?;
            let c = w.create(child("王五", Gender::Male, d(2016, 5, 4), sch2.id()))?;
            ids = Some((sch2.id(), c.id()));
            Err(StoreError::DeleteReasonRequired)
        });
        let (sch2, c) = ids.ok_or(StoreError::DeleteReasonRequired)?;
        let e = w
            .create(child("赵六", Gender::Female, d(2016, 5, 4), sch2))
            .map(|_| ())
            .map_err(|e| e.code());
        assert_eq!(e, Err("record.reference_missing"), "school rolled back");
        let e = w
            .create(visit(c, d(2026, 7, 1)))
            .map(|_| ())
            .map_err(|e| e.code());
        assert_eq!(e, Err("record.reference_missing"), "child rolled back");
        // The school created before the transaction is still found.
        w.create(child("赵六", Gender::Female, d(2016, 5, 4), sch.id()))?;
        Ok((sch2, c))
    })?;
    assert!(s.get::<School>(ids.0)?.is_none());
    assert!(s.get::<ChildCard>(ids.1)?.is_none());
    Ok(())
}

#[test]
fn a_child_deleted_in_the_same_write_is_no_longer_a_valid_reference() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let e = s
        .write(|w| {
            let c = w.create(child("张三", Gender::Male, d(2016, 5, 4), sch.id()))?;
            w.create(visit(c.id(), d(2026, 7, 1)))?;
            w.delete(EntityKind::Child, c.id(), "录入重复")?;
            w.create(visit(c.id(), d(2026, 7, 2)))
        })
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(e, Err("record.reference_missing"));
    Ok(())
}

#[test]
fn a_visit_takes_the_school_of_a_child_moved_in_the_same_write() -> TestResult {
    let mut s = store()?;
    let a = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let b = s.write(|w| w.create(school("河口小学", "八步街道")))?;
    let v = s.write(|w| {
        let c = w.create(child("张三", Gender::Male, d(2016, 5, 4), a.id()))?;
        w.create(visit(c.id(), d(2026, 7, 1)))?;
        let mut moved = c.body.clone();
        moved.school_id = Some(b.id());
        w.update(c.id(), moved)?;
        w.create(visit(c.id(), d(2026, 7, 2)))
    })?;
    let school_col: Option<String> = s.connection().query_row(
        "SELECT school_id FROM home_visit WHERE id = ?1",
        [v.id().to_string()],
        |r| r.get(0),
    )?;
    assert_eq!(school_col, Some(b.id().to_string()));
    Ok(())
}

#[test]
fn references_remembered_across_writes_are_forgotten_when_a_write_fails() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    // A write that creates a school and a child, then fails as a whole.
    let mut ids = None;
    let e = s.write(|w| {
        let sch2 = w.create(school("分校", "八步街道"))?;
        let c = w.create(child("王五", Gender::Male, d(2016, 5, 4), sch2.id()))?;
        ids = Some((sch2.id(), c.id()));
        Err::<(), _>(StoreError::DeleteReasonRequired)
    });
    assert!(e.is_err());
    let (sch2, c) = ids.ok_or(StoreError::DeleteReasonRequired)?;
    // The next writes must not take them from memory.
    let e = s
        .write(|w| w.create(child("赵六", Gender::Female, d(2016, 5, 4), sch2)))
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(e, Err("record.reference_missing"), "school rolled back");
    let e = s
        .write(|w| w.create(visit(c, d(2026, 7, 1))))
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(e, Err("record.reference_missing"), "child rolled back");
    // What earlier writes committed is still good.
    s.write(|w| w.create(child("赵六", Gender::Female, d(2016, 5, 4), sch.id())))?;
    Ok(())
}

#[test]
fn references_remembered_across_writes_are_forgotten_when_another_connection_writes() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.db");
    let mut app = Store::open(&path)?;
    app.set_today(Some(today()));
    let sch = app.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let other_school = app.write(|w| w.create(school("河口小学", "八步街道")))?;
    let c = app.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), sch.id())))?;
    let moved = app.write(|w| w.create(child("李四", Gender::Male, d(2016, 5, 4), sch.id())))?;
    // The app knows both children (and their school) from its own writes.
    app.write(|w| w.create(visit(c.id(), d(2026, 7, 1))))?;
    // The CLI, beside the app, deletes one child and moves the other.
    {
        let mut cli = Store::open(&path)?;
        cli.set_today(Some(today()));
        cli.write(|w| w.delete(EntityKind::Child, c.id(), "录入重复"))?;
        let mut body = moved.body.clone();
        body.school_id = Some(other_school.id());
        cli.write(|w| w.update(moved.id(), body))?;
    }
    let e = app
        .write(|w| w.create(visit(c.id(), d(2026, 7, 2))))
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(e, Err("record.reference_missing"), "deleted by the CLI");
    let v = app.write(|w| w.create(visit(moved.id(), d(2026, 7, 2))))?;
    let school_col: Option<String> = app.connection().query_row(
        "SELECT school_id FROM home_visit WHERE id = ?1",
        [v.id().to_string()],
        |r| r.get(0),
    )?;
    assert_eq!(
        school_col,
        Some(other_school.id().to_string()),
        "the school the CLI moved the child to"
    );
    Ok(())
}

#[test]
fn migration_0005_keeps_every_entry_and_the_sequence() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("v4.db");
    let dev = "01934b6e-0000-7000-8000-00000000d001";
    let other = "01934b6e-0000-7000-8000-00000000d002";
    let school_id = "01934b6e-0000-7000-8000-00000000b001";
    let record = "01934b6e-0000-7000-8000-00000000a001";
    // (device, seq, op, fields, school, server_seq, resolves)
    type Row<'a> = (
        &'a str,
        i64,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<i64>,
        Option<&'a str>,
    );
    let rows: Vec<Row> = vec![
        (dev, 1, "create", None, Some(school_id), Some(7), None),
        (
            dev,
            2,
            "update",
            Some(r#"{"phone":"0857-1234567"}"#),
            Some(school_id),
            None,
            None,
        ),
        (
            dev,
            3,
            "delete",
            Some(r#"{"reason":"撤并"}"#),
            None,
            None,
            None,
        ),
        (
            other,
            1,
            "restore",
            Some("{}"),
            None,
            Some(9),
            Some("01934b6e-0000-7000-8000-0000000000f1"),
        ),
        (
            other,
            (1 << 40) - 1,
            "update",
            Some(r#"{"name":"新学校"}"#),
            Some(school_id),
            Some(10),
            None,
        ),
    ];
    let dump = |c: &Connection| -> rusqlite::Result<Vec<Vec<rusqlite::types::Value>>> {
        let mut st = c.prepare(
            "SELECT device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, server_seq, resolves
             FROM change_log ORDER BY device_id, seq",
        )?;
        let out = st.query_map([], |r| {
            (0..13)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect()
        })?;
        out.collect()
    };
    let before = {
        let mut conn = Connection::open(&path)?;
        schema::migrate_to(&mut conn, 4)?;
        for (i, (device, seq, op, fields, school, server_seq, resolves)) in rows.iter().enumerate()
        {
            conn.execute(
                "INSERT INTO change_log (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, server_seq, resolves)
                 VALUES (?1, ?2, ?3, ?4, 'school', ?5, ?6, ?7, ?8, ?9, '01934b6e-0000-7000-8000-00000000e001', ?10, ?11)",
                params![
                    device,
                    seq,
                    format!("01934b6e-0000-7000-8000-0000000c{i:04}"),
                    100 + i as i64,
                    record,
                    school,
                    op,
                    fields,
                    i as i64,
                    server_seq,
                    resolves
                ],
            )?;
        }
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('device_id', ?1)",
            [dev],
        )?;
        // The record whose row holds the body of the create entry (NULL).
        conn.execute(
            "INSERT INTO school (id, body, school_id, created_at, updated_at, created_by, updated_by, device_id)
             VALUES (?1, '{\"name\":\"旧学校\"}', ?1, 'x', 'x', 'u', 'u', ?2)",
            [record, dev],
        )?;
        dump(&conn)?
    };
    assert_eq!(before.len(), rows.len());
    assert_eq!(MIGRATIONS[4].0, "0005_log_entry");
    {
        let mut conn = Connection::open(&path)?;
        schema::migrate_to(&mut conn, 5)?;
        assert_eq!(schema::version(&conn)?, 5);
        // The view shows every entry, every column, as it was.
        assert_eq!(dump(&conn)?, before, "every entry, every column");
        // Stored as positions and 16-byte ids.
        let (n, pos, id_len): (i64, i64, i64) = conn.query_row(
            "SELECT d.n, e.pos, length(e.record_id) FROM log_entry e JOIN log_device d ON e.pos >> 40 = d.n
             WHERE d.id = ?1 ORDER BY e.pos LIMIT 1",
            [other],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        assert_eq!(pos, n << 40 | 1);
        assert_eq!(id_len, 16);
        // (device, seq) stays unique; only a create may leave its fields out.
        let dup = conn.execute(
            "INSERT INTO log_entry (pos, change_id, hlc, entity, record_id, op, fields, base_version, user_id)
             VALUES (?1, x'00', 1, 'school', x'00', 'update', '{}', 0, x'00')",
            [pos],
        );
        assert!(dup.is_err(), "a second (device, seq) is refused");
        let null_update = conn.execute(
            "INSERT INTO log_entry (pos, change_id, hlc, entity, record_id, op, fields, base_version, user_id)
             VALUES (?1, x'00', 1, 'school', x'00', 'update', NULL, 0, x'00')",
            [pos + 5],
        );
        assert!(null_update.is_err());
    }
    // The store reads the old entries as they were and goes on with the
    // device's sequence.
    let mut s = Store::open(&path)?;
    s.set_today(Some(today()));
    assert_eq!(s.device_id().to_string(), dev);
    assert_eq!(s.last_seq(), 3);
    let log = s.changes_for_record(Uuid::parse_str(record)?)?;
    assert_eq!(log.len(), rows.len());
    assert_eq!(log[0].seq, 1);
    assert_eq!(
        log[0].fields,
        json!({"name": "旧学校"}),
        "the body as created"
    );
    assert_eq!(log[0].server_seq, Some(7));
    assert_eq!(log[0].school_id, Some(Uuid::parse_str(school_id)?));
    assert_eq!(log[1].fields, json!({"phone": "0857-1234567"}));
    assert_eq!(log[3].op, Op::Restore);
    assert_eq!(log[3].device_id.to_string(), other);
    assert!(log[3].resolves.is_some());
    assert_eq!(log[4].seq, (1 << 40) - 1);
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let out = s.outbox(100)?;
    // Nothing acknowledged: the three old entries and the new one, in order.
    assert_eq!(
        out.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(out[3].record_id, sch.id());
    Ok(())
}

#[test]
fn a_rotated_device_id_takes_the_unacknowledged_entries_numbered_from_one() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let mut ids = vec![sch.id()];
    for (i, name) in ["张三", "李四", "王五", "赵六"].iter().enumerate() {
        let c = s.write(|w| {
            w.create(child(
                name,
                Gender::Male,
                d(2016, 5, 1 + i as u32),
                sch.id(),
            ))
        })?;
        ids.push(c.id());
    }
    let old = s.device_id();
    s.ack_through(2)?;
    let new = s.rotate_device_id()?;
    assert_ne!(new, old);
    assert_eq!(s.last_seq(), 3);
    let out = s.outbox(100)?;
    assert_eq!(
        out.iter()
            .map(|e| (e.device_id, e.seq, e.record_id))
            .collect::<Vec<_>>(),
        vec![(new, 1, ids[2]), (new, 2, ids[3]), (new, 3, ids[4])]
    );
    // The acknowledged entries stay under the old id.
    let first = s.changes_for_record(ids[1])?;
    assert_eq!((first[0].device_id, first[0].seq), (old, 2));
    // The next write goes on from the new device's last sequence.
    let v = s.write(|w| w.create(visit(ids[4], d(2026, 7, 1))))?;
    let log = s.changes_for_record(v.id())?;
    assert_eq!((log[0].device_id, log[0].seq), (new, 4));
    assert_eq!(s.outbox(100)?.len(), 4);
    Ok(())
}

#[test]
fn change_ids_are_distinct_uuidv7_of_the_write() -> TestResult {
    let mut s = store()?;
    let before = chrono::Utc::now().timestamp_millis() as u64;
    s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    s.write(|w| {
        for day in 1..=28 {
            w.create(school(&format!("学校{day}"), "八步街道"))?;
        }
        Ok(())
    })?;
    let after = chrono::Utc::now().timestamp_millis() as u64;
    let out = s.outbox(100)?;
    assert_eq!(out.len(), 29);
    let mut ids: Vec<Uuid> = out.iter().map(|e| e.change_id).collect();
    for id in &ids {
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id
            .get_timestamp()
            .ok_or(StoreError::DeleteReasonRequired)?
            .to_unix();
        let ms = secs * 1000 + u64::from(nanos) / 1_000_000;
        assert!((before..=after).contains(&ms), "{id}");
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 29, "no change id twice");
    Ok(())
}

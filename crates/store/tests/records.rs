//! Round trips for every record type, and the change log each write leaves.

mod common;
use common::*;

use serde_json::json;
use shouhu_core::*;
use shouhu_store::{Op, Store, StoreError};
use uuid::Uuid;

/// Create `body`, read it back, and check the change-log entry.
fn round_trip<T: Entity>(s: &mut Store, body: T) -> Result<Stored<T>, Box<dyn std::error::Error>> {
    let seq_before = s.last_seq();
    let created = s.write(|w| w.create(body.clone()))?;
    let got = s.get::<T>(created.id())?.ok_or("missing")?;
    assert_eq!(got, created, "{:?} reads back as written", T::KIND);
    assert_eq!(
        got.body,
        body,
        "{:?} body unchanged by normalisation",
        T::KIND
    );
    let log = s.changes_for_record(created.id())?;
    let last = log.last().ok_or("no change-log entry")?;
    assert_eq!(last.op, Op::Create);
    assert_eq!(last.entity, T::KIND);
    assert_eq!(last.device_id, s.device_id());
    assert!(last.seq > seq_before);
    assert_eq!(last.fields, serde_json::to_value(&body)?);
    Ok(created)
}

#[test]
fn every_record_type_round_trips() -> TestResult {
    let mut s = store()?;
    let sch = round_trip(&mut s, school("新寨小学", "八步街道"))?;
    let logged = s.changes_for_record(sch.id())?;
    assert_eq!(
        logged[0].school_id,
        Some(sch.id()),
        "a school is in its own scope"
    );
    let hh = round_trip(
        &mut s,
        Household {
            label: "张建国户".into(),
            school_id: Some(sch.id()),
            head_name: "张建国".into(),
            ..Default::default()
        },
    )?;
    let mut card = child("张三", Gender::Male, d(2016, 5, 4), sch.id());
    card.household_id = Some(hh.id());
    let c = round_trip(&mut s, card)?;
    let plan = round_trip(
        &mut s,
        HelpPlan {
            household_id: hh.id(),
            school_id: Some(sch.id()),
            needs: vec!["学业辅导".into()],
            measures: vec![Measure {
                kind: MeasureKind::Tutoring,
                description: "每周两次作业辅导".into(),
                responsible: "刘老师".into(),
                due_date: None,
            }],
            responsible_people: vec!["刘老师".into()],
            review_date: Some(d(2027, 3, 1)),
            ..Default::default()
        },
    )?;
    let v = round_trip(&mut s, visit(c.id(), d(2026, 7, 15)))?;
    round_trip(
        &mut s,
        FollowUp {
            visit_id: Some(v.id()),
            child_id: Some(c.id()),
            action: "联系父亲每周通话".into(),
            assignee: "刘老师".into(),
            due_date: Some(d(2026, 12, 1)),
            ..Default::default()
        },
    )?;
    round_trip(
        &mut s,
        PsychNote {
            child_id: c.id(),
            session_date: Some(d(2026, 10, 9)),
            presenting_issue: "情绪低落".into(),
            scale: Some("SDQ".into()),
            score: Some(17.5),
            risk_level: RiskLevel::Medium,
            intervention: "个体辅导".into(),
            next_session: Some(d(2026, 12, 9)),
            ..Default::default()
        },
    )?;
    round_trip(
        &mut s,
        Aid {
            child_id: c.id(),
            date: Some(d(2026, 9, 1)),
            kind: AidKind::Cash,
            amount_fen: 50_000,
            fund_source: "留守儿童专项资金".into(),
            fund_year: 2026,
            handed_over_by: "刘老师".into(),
            ..Default::default()
        },
    )?;
    round_trip(
        &mut s,
        Absence {
            child_id: c.id(),
            date: Some(d(2026, 10, 12)),
            half_days: 2,
            reason: AbsenceReason::Sick,
            ..Default::default()
        },
    )?;
    let drop = round_trip(
        &mut s,
        DropoutEvent {
            child_id: c.id(),
            date: Some(d(2026, 3, 1)),
            reason: DropoutReason::SchoolWeary,
            ..Default::default()
        },
    )?;
    round_trip(
        &mut s,
        PersuasionVisit {
            child_id: c.id(),
            dropout_event_id: Some(drop.id()),
            date: Some(d(2026, 3, 5)),
            visitors: vec!["校长".into(), "村主任".into()],
            outcome: PersuasionOutcome::Returned,
            return_date: Some(d(2026, 3, 9)),
            ..Default::default()
        },
    )?;
    round_trip(
        &mut s,
        FamilyContact {
            child_id: c.id(),
            date: Some(d(2026, 11, 1)),
            mode: ContactMode::Video,
            with_whom: ContactWith::Mother,
            minutes: Some(15),
            arranged_by: "刘老师".into(),
            ..Default::default()
        },
    )?;
    round_trip(
        &mut s,
        SafetySession {
            school_id: sch.id(),
            date: Some(d(2026, 6, 20)),
            topic: SafetyTopic::Drowning,
            title: "暑期防溺水".into(),
            presenter: "王老师".into(),
            attendees: vec![c.id()],
        },
    )?;
    let round = round_trip(
        &mut s,
        ScreeningRound {
            school_id: sch.id(),
            name: "2026年秋季排查".into(),
            year: 2026,
            started_on: Some(d(2026, 9, 10)),
            closed: false,
        },
    )?;
    round_trip(
        &mut s,
        ScreeningEntry {
            round_id: round.id(),
            child_id: c.id(),
            outcome: ScreeningOutcome::Confirmed,
            date: Some(d(2026, 9, 12)),
            ..Default::default()
        },
    )?;
    // Records about the child take its school.
    let aid = s.list_by_child::<Aid>(c.id())?;
    assert_eq!(aid.len(), 1);
    let sch_col: Option<String> = s.connection().query_row(
        "SELECT school_id FROM aid WHERE id = ?1",
        [aid[0].id().to_string()],
        |r| r.get(0),
    )?;
    assert_eq!(sch_col, Some(sch.id().to_string()));
    // The plan revision keeps the old version.
    let mut p2 = plan.body.clone();
    p2.needs.push("心理疏导".into());
    p2.revision_note = "新增心理需求".into();
    let revised = s.write(|w| w.update(plan.id(), p2))?;
    assert_eq!(revised.body.revision, 1);
    let versions = s.list_by_parent::<PlanVersion>(plan.id())?;
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].body.content, plan.body);
    // The log is gapless from 1.
    let all = s.local_changes_after(0, 1000)?;
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=all.len() as i64).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn update_logs_only_changed_fields_and_base_version() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("李四", Gender::Male, d(2015, 1, 2), sch.id())))?;
    let mut b = c.body.clone();
    b.father.phone = Some(" 139 0000 1111 ".into());
    b.boarding = true;
    let u = s.write(|w| w.update(c.id(), b))?;
    assert_eq!(
        u.body.father.phone.as_deref(),
        Some("13900001111"),
        "normalised"
    );
    let log = s.changes_for_record(c.id())?;
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].op, Op::Update);
    assert_eq!(
        log[1].fields,
        json!({"boarding": true, "father.phone": "13900001111"})
    );
    assert_eq!(log[1].base_version, 0);
    // Writing the same body again changes nothing and logs nothing.
    s.write(|w| w.update(c.id(), u.body.clone()))?;
    assert_eq!(s.changes_for_record(c.id())?.len(), 2);
    Ok(())
}

#[test]
fn an_update_moves_the_indexed_columns_only_when_they_change() -> TestResult {
    // An update that leaves a record's school, child and parent as they were
    // is written without them (no index entry rewritten); one that changes
    // them must still move the record in every listing.
    let mut s = store()?;
    let a = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let b = s.write(|w| w.create(school("城关小学", "城关镇")))?;
    let household = |s: &mut Store, label: &str, school: Uuid| {
        s.write(|w| {
            w.create(Household {
                label: label.into(),
                school_id: Some(school),
                head_name: "张建国".into(),
                ..Default::default()
            })
        })
    };
    let h1 = household(&mut s, "张建国户", a.id())?;
    let h2 = household(&mut s, "张建华户", b.id())?;
    let mut card = child("张三", Gender::Male, d(2016, 5, 4), a.id());
    card.household_id = Some(h1.id());
    let c = s.write(|w| w.create(card))?;
    let v = s.write(|w| w.create(visit(c.id(), d(2026, 7, 15))))?;
    let ids = |l: Vec<Stored<ChildCard>>| l.iter().map(|x| x.id()).collect::<Vec<_>>();

    // Same school and household: still listed under both.
    let mut body = c.body.clone();
    body.notes = "本周家访后更新".into();
    s.write(|w| w.update(c.id(), body.clone()))?;
    assert_eq!(ids(s.list_by_school(a.id())?), vec![c.id()]);
    assert_eq!(ids(s.list_by_parent(h1.id())?), vec![c.id()]);
    assert_eq!(s.fetch::<ChildCard>(c.id())?.body.notes, "本周家访后更新");

    // Moved to the other school and household.
    body.school_id = Some(b.id());
    body.household_id = Some(h2.id());
    body.notes = "转学".into();
    s.write(|w| w.update(c.id(), body.clone()))?;
    assert!(s.list_by_school::<ChildCard>(a.id())?.is_empty());
    assert!(s.list_by_parent::<ChildCard>(h1.id())?.is_empty());
    assert_eq!(ids(s.list_by_school(b.id())?), vec![c.id()]);
    assert_eq!(ids(s.list_by_parent(h2.id())?), vec![c.id()]);

    // Out of a household altogether.
    body.household_id = None;
    s.write(|w| w.update(c.id(), body.clone()))?;
    assert!(s.list_by_parent::<ChildCard>(h2.id())?.is_empty());
    assert_eq!(ids(s.list_by_school(b.id())?), vec![c.id()]);

    // A record of another table: a visit moved to another child.
    let other = s.write(|w| w.create(child("李四", Gender::Male, d(2015, 1, 2), a.id())))?;
    let mut vb = v.body.clone();
    vb.problems_found = "作业无人辅导".into();
    s.write(|w| w.update(v.id(), vb.clone()))?;
    assert_eq!(s.list_by_child::<HomeVisit>(c.id())?.len(), 1);
    vb.child_id = Some(other.id());
    s.write(|w| w.update(v.id(), vb))?;
    assert!(s.list_by_child::<HomeVisit>(c.id())?.is_empty());
    assert_eq!(s.list_by_child::<HomeVisit>(other.id())?.len(), 1);
    Ok(())
}

#[test]
fn every_index_of_a_record_table_is_kept_by_the_update_statements() -> TestResult {
    // An update that keeps school_id, child_id and parent_id leaves them out
    // of its statement (no index entry rewritten); every other column an
    // index reads (its columns, its expressions, its WHERE) must be one the
    // update statements always assign, or SQLite would leave the index entry
    // as it was. An index on any other column must be added to the store's
    // update statements too.
    let always = [
        "id",
        "school_id",
        "child_id",
        "parent_id",
        "body",
        "date",
        "updated_at",
        "updated_by",
        "device_id",
        "version",
        "deleted_at",
    ];
    let child_search = [
        "name",
        "sort_key",
        "search_keys",
        "id_number",
        "student_number",
        "gender",
        "township",
        "grade",
        "class_name",
        "left_behind_type",
        "guardianship_type",
        "status",
    ];
    let s = store()?;
    let conn = s.connection();
    for kind in EntityKind::ALL {
        let table = kind.name();
        let indexes: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_index_list('{table}')"))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for index in indexes {
            let cols: Vec<Option<String>> = conn
                .prepare(&format!(
                    "SELECT name FROM pragma_index_xinfo('{index}') WHERE key"
                ))?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let sql: Option<String> = conn.query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                [&index],
                |r| r.get(0),
            )?;
            for col in cols {
                match col {
                    Some(c) => assert!(
                        always.contains(&c.as_str())
                            || (table == "child" && child_search.contains(&c.as_str())),
                        "{table}: index {index} is on {c}, which an update may leave out"
                    ),
                    // An expression: over the body, which every update assigns.
                    None => assert!(
                        sql.as_deref().is_some_and(|q| q.contains("json_")),
                        "{table}: index {index} has an expression not over the body: {sql:?}"
                    ),
                }
            }
            // A partial index's WHERE reads only columns every update assigns.
            if let Some(q) = sql
                .as_deref()
                .and_then(|q| q.split_once(" WHERE "))
                .map(|(_, w)| w)
            {
                for word in q.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if word.ends_with("_id") {
                        assert!(
                            always.contains(&word),
                            "{table}: index {index}'s WHERE reads {word}"
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn delete_is_a_tombstone_with_reason() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("王五", Gender::Female, d(2014, 2, 3), sch.id())))?;
    let e = s.write(|w| w.delete(EntityKind::Child, c.id(), "  "));
    assert_eq!(
        e.map_err(|e| e.code()).err(),
        Some("record.delete_reason_required")
    );
    s.write(|w| w.delete(EntityKind::Child, c.id(), "重复录入"))?;
    let got = s.get::<ChildCard>(c.id())?.ok_or("tombstone kept")?;
    assert_eq!(got.meta.delete_reason.as_deref(), Some("重复录入"));
    assert!(got.meta.deleted_at.is_some());
    assert_eq!(
        s.fetch::<ChildCard>(c.id()).map_err(|e| e.code()).err(),
        Some("record.deleted")
    );
    let log = s.changes_for_record(c.id())?;
    assert_eq!(log.last().map(|e| e.op), Some(Op::Delete));
    // Editing a deleted record is refused.
    let e = s.write(|w| w.update(c.id(), c.body.clone()));
    assert_eq!(e.map_err(|e| e.code()).err(), Some("record.deleted"));
    Ok(())
}

#[test]
fn finalised_visit_is_amended_not_edited() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("赵六", Gender::Male, d(2016, 6, 1), sch.id())))?;
    let v = s.write(|w| w.create(visit(c.id(), d(2026, 11, 20))))?;
    // A draft cannot be amended, only edited.
    let e = s.write(|w| w.amend_visit(v.id(), "mood", json!("开朗"), "补充"));
    assert_eq!(e.map_err(|e| e.code()).err(), Some("visit.not_finalised"));
    let mut draft = v.body.clone();
    draft.mood = "比较内向".into();
    s.write(|w| w.update(v.id(), draft))?;
    let f = s.write(|w| w.finalise_visit(v.id()))?;
    assert_eq!(f.body.status, VisitStatus::Finalised);
    let mut edit = f.body.clone();
    edit.mood = "开朗".into();
    let e = s.write(|w| w.update(v.id(), edit));
    assert_eq!(e.map_err(|e| e.code()).err(), Some("visit.finalised"));
    let a = s.write(|w| w.amend_visit(v.id(), "mood", json!("开朗"), "家长补充说明"))?;
    assert_eq!(a.body.old_value, json!("比较内向"));
    let a2 = s.write(|w| w.amend_visit(v.id(), "mood", json!("活泼"), "再次核实"))?;
    assert_eq!(
        a2.body.old_value,
        json!("开朗"),
        "second amendment sees the first"
    );
    let e = s.write(|w| w.amend_visit(v.id(), "no_such_field", json!(1), "x"));
    assert_eq!(e.map_err(|e| e.code()).err(), Some("visit.unknown_field"));
    let e = s.write(|w| w.amend_visit(v.id(), "visit_date", json!("2099-01-01"), "x"));
    assert_eq!(e.map_err(|e| e.code()).err(), Some("date.in_future"));
    // Amendments are immutable themselves.
    let e = s.write(|w| w.delete(EntityKind::VisitAmendment, a.id(), "x"));
    assert_eq!(e.map_err(|e| e.code()).err(), Some("record.immutable"));
    let stored = s.fetch::<HomeVisit>(v.id())?;
    assert_eq!(
        stored.body.mood, "比较内向",
        "the visit itself is untouched"
    );
    Ok(())
}

#[test]
fn invalid_records_and_missing_references_are_refused() -> TestResult {
    let mut s = store()?;
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let mut bad = child("钱七", Gender::Male, d(2016, 6, 1), sch.id());
    bad.id_number = Some("110105194912310021".into());
    let e = s.write(|w| w.create(bad.clone()));
    match e {
        Err(StoreError::Invalid(v)) => {
            assert_eq!(v.code(), "id_number.checksum");
            assert!(v.message(Lang::ZhCn).contains("第18位校验码不正确"));
        }
        other => return Err(format!("expected invalid, got {other:?}").into()),
    }
    let e = s.write(|w| w.create(visit(Uuid::now_v7(), d(2026, 1, 1))));
    assert_eq!(
        e.map_err(|e| e.code()).err(),
        Some("record.reference_missing")
    );
    let mut fut = visit(Uuid::now_v7(), d(2026, 11, 29));
    fut.child_id = None;
    fut.household_id = None;
    let e = s.write(|w| w.create(fut));
    match e {
        Err(StoreError::Invalid(v)) => {
            assert!(v.has("visit.child_or_household"));
            assert!(v.has("date.in_future"));
        }
        other => return Err(format!("expected invalid, got {other:?}").into()),
    }
    let e = s.write(|w| {
        w.create(Aid {
            child_id: Uuid::now_v7(),
            amount_fen: -1,
            ..Default::default()
        })
    });
    assert!(matches!(e, Err(StoreError::Invalid(ref v)) if v.has("amount.negative")));
    assert_eq!(s.last_seq(), 1, "nothing but the school was logged");
    Ok(())
}

//! The other records about a child or a school: psychological notes
//! (counselors only), aid, absences, dropout events and persuasion visits,
//! family contacts, safety-education sessions, screening rounds and entries.
//! One generic surface: a kind name and a JSON body, checked by the core
//! model of that kind.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shouhu_core::{
    with_entity_type, Entity, EntityKind, PsychNote, ScreeningEntry, ScreeningOutcome,
    ScreeningRound, Stored,
};
use shouhu_store::StoreError;
use uuid::Uuid;

use crate::{field_problems, Error, FieldProblem, Result, Session, Store};

/// The kinds this surface writes. Cards, visits, plans and conflicts have
/// their own functions; plan versions and amendments are never written
/// directly.
pub const RECORD_KINDS: [EntityKind; 9] = [
    EntityKind::PsychNote,
    EntityKind::Aid,
    EntityKind::Absence,
    EntityKind::DropoutEvent,
    EntityKind::PersuasionVisit,
    EntityKind::FamilyContact,
    EntityKind::SafetySession,
    EntityKind::ScreeningRound,
    EntityKind::ScreeningEntry,
];

fn kind_of(name: &str) -> Result<EntityKind> {
    EntityKind::parse(name)
        .filter(|k| RECORD_KINDS.contains(k))
        .ok_or_else(|| Error::InvalidInput {
            field: "kind".into(),
            value: name.into(),
        })
}

/// The kinds `validate_record` checks as typed: [`RECORD_KINDS`] and
/// households (whose edit form validates as you type; `save_household`
/// writes them).
fn validate_kind_of(name: &str) -> Result<EntityKind> {
    EntityKind::parse(name)
        .filter(|k| RECORD_KINDS.contains(k) || *k == EntityKind::Household)
        .ok_or_else(|| Error::InvalidInput {
            field: "kind".into(),
            value: name.into(),
        })
}

/// Refuse what the session's role may not see or write.
fn check_role(session: &Session, kind: EntityKind) -> Result<()> {
    if kind.is_confidential() && !session.role.reads_notes() {
        return Err(Error::Forbidden {
            role: session.role.as_str(),
            action: "read or write psychological notes",
        });
    }
    Ok(())
}

/// Writing a note needs more than reading one (a county supervisor reads
/// notes but writes nothing).
fn check_write(session: &Session, kind: EntityKind) -> Result<()> {
    check_role(session, kind)?;
    if kind.is_confidential() && !session.may(shouhu_auth::Action::WriteNotes) {
        return Err(Error::Forbidden {
            role: session.role.as_str(),
            action: "write psychological notes",
        });
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordRow {
    pub id: Uuid,
    pub kind: EntityKind,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub body: Value,
    /// A psychological note sealed, but not for this reader: only its child
    /// and date show (an existing reader can grant access).
    pub locked: bool,
}

fn rows<T: Entity>(list: Vec<Stored<T>>) -> Result<Vec<RecordRow>> {
    list.into_iter()
        .map(|s| {
            Ok(RecordRow {
                id: s.meta.id,
                kind: T::KIND,
                updated_at: s.meta.updated_at,
                body: serde_json::to_value(&s.body).map_err(StoreError::from)?,
                locked: false,
            })
        })
        .collect()
}

/// Notes opened for the session's reader (see [`crate::notes`]).
fn note_rows(session: &Session, list: Vec<Stored<PsychNote>>) -> Result<Vec<RecordRow>> {
    list.into_iter()
        .map(|s| {
            let opened = crate::notes::open_note(session, s.meta.id, s.body)?;
            let mut note = opened.note;
            note.sealed = None;
            Ok(RecordRow {
                id: s.meta.id,
                kind: EntityKind::PsychNote,
                updated_at: s.meta.updated_at,
                body: serde_json::to_value(&note).map_err(StoreError::from)?,
                locked: !opened.readable,
            })
        })
        .collect()
}

/// A child's records of one kind, newest first.
pub fn list_child_records(
    store: &Store,
    session: &Session,
    child_id: Uuid,
    kind: &str,
) -> Result<Vec<RecordRow>> {
    let kind = kind_of(kind)?;
    check_role(session, kind)?;
    if session.own_school().is_some() {
        let child = store.fetch::<shouhu_core::ChildCard>(child_id)?;
        session.check_school(child.body.school_id)?;
    }
    if kind == EntityKind::PsychNote {
        let rows = note_rows(session, store.list_by_child::<PsychNote>(child_id)?)?;
        // Reading a child's notes is audited (even an empty list: the
        // attempt to look is what the county wants to see).
        store.audit(
            shouhu_store::AuditAction::ViewNote,
            shouhu_store::AuditTarget {
                entity: Some("child".into()),
                record_id: Some(child_id),
                school_id: None,
            },
            serde_json::json!({ "via": "app", "notes": rows.len() }),
        )?;
        return Ok(rows);
    }
    with_entity_type!(kind, T => rows(store.list_by_child::<T>(child_id)?))
}

/// A school's records of one kind (safety sessions, screening rounds).
pub fn list_school_records(
    store: &Store,
    session: &Session,
    school_id: Uuid,
    kind: &str,
) -> Result<Vec<RecordRow>> {
    let kind = kind_of(kind)?;
    check_role(session, kind)?;
    session.check_school(Some(school_id))?;
    if kind == EntityKind::PsychNote {
        return note_rows(session, store.list_by_school::<PsychNote>(school_id)?);
    }
    with_entity_type!(kind, T => rows(store.list_by_school::<T>(school_id)?))
}

#[derive(Debug, Clone, Deserialize)]
pub struct SaveRecord {
    pub kind: String,
    pub id: Option<Uuid>,
    pub body: Value,
}

fn save_typed<T: Entity>(store: &mut Store, id: Option<Uuid>, body: Value) -> Result<Uuid> {
    let body: T = serde_json::from_value(body).map_err(StoreError::from)?;
    let s = store.write(|w| match id {
        None => w.create(body),
        Some(id) => w.update(id, body),
    })?;
    Ok(s.meta.id)
}

/// A note is sealed for its readers before it is written: the store, its
/// change log and the server only ever hold the sealed form.
fn save_note(store: &mut Store, session: &Session, id: Option<Uuid>, body: Value) -> Result<Uuid> {
    let note: PsychNote = serde_json::from_value(body).map_err(StoreError::from)?;
    let new_id = id.unwrap_or_else(Uuid::now_v7);
    let sealed = crate::notes::seal_note(store, session, new_id, note)?;
    let s = store.write(|w| match id {
        None => w.create_with_id(new_id, sealed),
        Some(id) => w.update(id, sealed),
    })?;
    Ok(s.meta.id)
}

pub fn save_record(store: &mut Store, session: &Session, req: SaveRecord) -> Result<Uuid> {
    let kind = kind_of(&req.kind)?;
    check_write(session, kind)?;
    if kind == EntityKind::PsychNote {
        return save_note(store, session, req.id, req.body);
    }
    with_entity_type!(kind, T => save_typed::<T>(store, req.id, req.body))
}

fn validate_typed<T: Entity>(
    today: chrono::NaiveDate,
    body: Value,
    lang: shouhu_core::Lang,
) -> Result<Vec<FieldProblem>> {
    let mut body: T = serde_json::from_value(body).map_err(StoreError::from)?;
    body.normalize();
    Ok(match body.validate(today) {
        Ok(()) => vec![],
        Err(v) => field_problems(&v, lang),
    })
}

/// Check a record as typed; nothing is written.
pub fn validate_record(
    store: &Store,
    session: &Session,
    kind: &str,
    body: Value,
) -> Result<Vec<FieldProblem>> {
    let kind = validate_kind_of(kind)?;
    check_role(session, kind)?;
    with_entity_type!(kind, T => validate_typed::<T>(store.today(), body, session.lang))
}

/// A screening round's check-list for its school: every active child of the
/// school with the entry already recorded in the round, if any.
#[derive(Debug, Clone, Serialize)]
pub struct ChecklistLine {
    pub child_id: Uuid,
    pub name: String,
    pub class_name: String,
    pub entry_id: Option<Uuid>,
    pub outcome: Option<ScreeningOutcome>,
    pub reason: Option<String>,
}

pub fn screening_checklist(store: &Store, round_id: Uuid) -> Result<Vec<ChecklistLine>> {
    let round = store.fetch::<ScreeningRound>(round_id)?;
    let entries: Vec<Stored<ScreeningEntry>> = store.list_by_parent(round_id)?;
    let mut lines: Vec<ChecklistLine> = store
        .list_by_school::<shouhu_core::ChildCard>(round.body.school_id)?
        .into_iter()
        .filter(|c| c.body.status == shouhu_core::ChildStatus::Active)
        .map(|c| {
            let e = entries.iter().find(|e| e.body.child_id == c.meta.id);
            ChecklistLine {
                child_id: c.meta.id,
                name: c.body.name,
                class_name: format!("{}{}", c.body.grade, c.body.class_name),
                entry_id: e.map(|e| e.meta.id),
                outcome: e.map(|e| e.body.outcome),
                reason: e.and_then(|e| e.body.reason.clone()),
            }
        })
        .collect();
    lines.sort_by(|a, b| (&a.class_name, &a.name).cmp(&(&b.class_name, &b.name)));
    Ok(lines)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{save_child, testutil, Role, SaveChild};
    use serde_json::json;

    #[test]
    fn psych_notes_are_for_counselors_only() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let c = testutil::child(&mut s, school);
        let note = json!({"child_id": c, "session_date": "2026-11-20", "presenting_issue": "睡眠差", "risk_level": "medium"});
        let teacher = Session::default();
        let req = SaveRecord {
            kind: "psych_note".into(),
            id: None,
            body: note.clone(),
        };
        let e = save_record(&mut s, &teacher, req.clone()).unwrap_err();
        assert_eq!(e.code(), "auth.forbidden");
        assert_eq!(
            list_child_records(&s, &teacher, c, "psych_note")
                .unwrap_err()
                .code(),
            "auth.forbidden"
        );
        let keys = std::sync::Arc::new(shouhu_auth::ReaderKeyPair::generate().unwrap());
        let me = Uuid::now_v7();
        let counselor =
            crate::notes::tests::reader_session(Role::Counselor, &keys, me, &[(me, keys.public())]);
        let id = save_record(&mut s, &counselor, req).unwrap();
        // Stored sealed: the text is nowhere in the store's row or log.
        let stored = s.fetch::<PsychNote>(id).unwrap().body;
        assert!(stored.is_sealed());
        assert!(!serde_json::to_string(&stored).unwrap().contains("睡眠差"));
        let outbox = serde_json::to_string(&s.outbox(100).unwrap()).unwrap();
        assert!(!outbox.contains("睡眠差"), "{outbox}");
        let rows = list_child_records(&s, &counselor, c, "psych_note").unwrap();
        assert_eq!(rows[0].body["presenting_issue"], "睡眠差");
        assert!(!rows[0].locked);
        // Reading notes and opening the card are audited.
        let seen: Vec<String> = s
            .audit_entries(&shouhu_store::AuditFilter {
                record_id: Some(c),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|e| e.action.as_str().to_string())
            .collect();
        assert!(seen.contains(&"view_note".to_string()), "{seen:?}");
        assert_eq!(
            list_child_records(&s, &counselor, c, "psych_note")
                .unwrap()
                .len(),
            1
        );
        // The teacher's card shows no note in the timeline either.
        let view = crate::get_child(&s, &teacher, c).unwrap();
        assert!(view.timeline.iter().all(|t| t.kind != "psych_note"));
        let views = s
            .audit_entries(&shouhu_store::AuditFilter {
                action: Some(shouhu_store::AuditAction::ViewChild),
                record_id: Some(c),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(views.len(), 1);
        let view = crate::get_child(&s, &counselor, c).unwrap();
        assert!(view.timeline.iter().any(|t| t.kind == "psych_note"));
        // Every role by the one table: only note readers see notes, and of
        // them only the counselor writes.
        for role in Role::ALL {
            let session = Session {
                role,
                notes: counselor.notes.clone(),
                ..Session::default()
            };
            let read = list_child_records(&s, &session, c, "psych_note").is_ok();
            assert_eq!(read, role.reads_notes(), "{role:?} reads notes");
            let wrote = save_record(
                &mut s,
                &session,
                SaveRecord {
                    kind: "psych_note".into(),
                    id: None,
                    body: note.clone(),
                },
            )
            .is_ok();
            assert_eq!(wrote, role == Role::Counselor, "{role:?} writes notes");
        }
    }

    #[test]
    fn aid_validation_and_unknown_kinds() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let c = testutil::child(&mut s, school);
        let session = Session::default();
        let bad = json!({"child_id": c, "date": "2026-11-01", "amount_fen": -5, "fund_year": 2026});
        let problems = validate_record(&s, &session, "aid", bad).unwrap();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(
            fields.contains(&"amount_fen") && fields.contains(&"fund_source"),
            "{fields:?}"
        );
        let good = json!({"child_id": c, "date": "2026-11-01", "amount_fen": 50000, "fund_year": 2026,
            "fund_source": "专项资金", "handed_over_by": "王校长", "kind": "cash"});
        save_record(
            &mut s,
            &session,
            SaveRecord {
                kind: "aid".into(),
                id: None,
                body: good,
            },
        )
        .unwrap();
        assert_eq!(list_child_records(&s, &session, c, "aid").unwrap().len(), 1);
        for k in ["child", "home_visit", "conflict", "nope"] {
            assert_eq!(
                list_child_records(&s, &session, c, k).unwrap_err().code(),
                "input.invalid"
            );
        }
    }

    #[test]
    fn screening_checklist_lists_every_active_child() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let a = testutil::child(&mut s, school);
        let mut card = testutil::card(school);
        card.name = "李四".into();
        save_child(
            &mut s,
            &crate::Session::default(),
            SaveChild { id: None, card },
        )
        .unwrap();
        let session = Session::default();
        let round = save_record(&mut s, &session, SaveRecord {
            kind: "screening_round".into(), id: None,
            body: json!({"school_id": school, "name": "2026年秋季排查", "year": 2026, "started_on": "2026-09-01"}),
        }).unwrap();
        save_record(&mut s, &session, SaveRecord {
            kind: "screening_entry".into(), id: None,
            body: json!({"round_id": round, "child_id": a, "outcome": "confirmed", "date": "2026-09-02"}),
        }).unwrap();
        let list = screening_checklist(&s, round).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list.iter().filter(|l| l.entry_id.is_some()).count(), 1);
    }
}

//! Children: search as you type, the child card (一人一卡) and its timeline.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shouhu_core::{ChildCard, Entity, HomeVisit, Stored, VisitStatus};
use shouhu_store::{SearchPage, SearchParams, StoreError};
use uuid::Uuid;

use crate::{field_problems, who, Error, FieldProblem, Result, Session, Store};

/// One page of the children list (ID numbers masked).
pub fn search_children(store: &Store, params: &SearchParams) -> Result<SearchPage> {
    Ok(store.search_children(params)?)
}

/// The child card screen: the card, its bookkeeping, the visit rows and the
/// timeline of everything about the child.
#[derive(Debug, Clone, Serialize)]
pub struct ChildView {
    pub id: Uuid,
    pub card: ChildCard,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub household_label: Option<String>,
    pub visits: Vec<VisitRow>,
    pub timeline: Vec<TimelineItem>,
}

/// A home visit as listed on the card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisitRow {
    pub id: Uuid,
    pub visit_date: Option<chrono::NaiveDate>,
    /// `draft` or `final`.
    pub status: &'static str,
    pub mode: shouhu_core::VisitMode,
    pub campaign: Option<String>,
    /// The first words of what was found (or the living conditions).
    pub summary: String,
}

impl VisitRow {
    pub fn of(v: &Stored<HomeVisit>) -> VisitRow {
        let b = &v.body;
        let text = [&b.problems_found, &b.living_conditions, &b.help_given]
            .into_iter()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_default();
        VisitRow {
            id: v.meta.id,
            visit_date: b.visit_date,
            status: match b.status {
                VisitStatus::Draft => "draft",
                VisitStatus::Finalised => "final",
            },
            mode: b.mode,
            campaign: b.campaign.clone(),
            summary: text.chars().take(40).collect(),
        }
    }
}

/// One line of a child's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineItem {
    /// When it happened: the record's date, or the instant of a card change.
    pub at: String,
    /// `card_created`, `card_changed`, `visit`, `amendment`, `follow_up`,
    /// `aid`, `absence`, `dropout`, `persuasion`, `contact`, `screening`,
    /// `plan`, `psych_note` (counselors only).
    pub kind: &'static str,
    pub record_id: Uuid,
    /// A short description built from the record (never counseling content).
    pub summary: String,
    /// Who wrote it: `me` or the first block of the user id.
    pub by: String,
    /// For card changes: the fields that changed.
    pub fields: Vec<String>,
}

pub fn get_child(store: &Store, session: &Session, id: Uuid) -> Result<ChildView> {
    let h = store.child_history(id, session.role.reads_notes())?;
    session.check_school(h.child.body.school_id)?;
    // Every opened card is in the audit log (who, when, which child).
    store.audit(
        shouhu_store::AuditAction::ViewChild,
        shouhu_store::AuditTarget {
            entity: Some("child".into()),
            record_id: Some(id),
            school_id: h.child.body.school_id,
        },
        serde_json::json!({ "via": "app" }),
    )?;
    let mut tl: Vec<TimelineItem> = Vec::new();
    let date = |d: Option<chrono::NaiveDate>, meta: &shouhu_core::Meta| {
        d.map(|d| d.to_string())
            .unwrap_or_else(|| meta.created_at.date_naive().to_string())
    };
    for c in &h.card_changes {
        let at = Utc
            .timestamp_millis_opt(c.hlc.physical_ms() as i64)
            .single()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let fields: Vec<String> = match (&c.op, &c.fields) {
            (shouhu_core::Op::Update, Value::Object(m)) => m.keys().cloned().collect(),
            _ => vec![],
        };
        tl.push(TimelineItem {
            at,
            kind: match c.op {
                shouhu_core::Op::Create => "card_created",
                _ => "card_changed",
            },
            record_id: c.record_id,
            summary: String::new(),
            by: who(store, c.user_id),
            fields,
        });
    }
    for a in &h.amendments {
        tl.push(TimelineItem {
            at: a.meta.created_at.date_naive().to_string(),
            kind: "amendment",
            record_id: a.meta.id,
            summary: a.body.reason.clone(),
            by: who(store, a.meta.updated_by),
            fields: vec![a.body.field.clone()],
        });
    }
    let mut push = |at: String, kind: &'static str, meta: &shouhu_core::Meta, summary: String| {
        tl.push(TimelineItem {
            at,
            kind,
            record_id: meta.id,
            summary,
            by: who(store, meta.updated_by),
            fields: vec![],
        })
    };
    for v in &h.visits {
        push(
            date(v.body.visit_date, &v.meta),
            "visit",
            &v.meta,
            VisitRow::of(v).summary,
        );
    }
    for f in &h.follow_ups {
        push(
            date(f.body.due_date, &f.meta),
            "follow_up",
            &f.meta,
            f.body.action.clone(),
        );
    }
    for a in &h.aid {
        let amount = format!(
            "{}.{:02}",
            a.body.amount_fen / 100,
            (a.body.amount_fen % 100).abs()
        );
        push(
            date(a.body.date, &a.meta),
            "aid",
            &a.meta,
            format!("{} {} {}", a.body.fund_source, a.body.items, amount),
        );
    }
    for a in &h.absences {
        push(
            date(a.body.date, &a.meta),
            "absence",
            &a.meta,
            a.body.half_days.to_string(),
        );
    }
    for d in &h.dropouts {
        push(
            date(d.body.date, &d.meta),
            "dropout",
            &d.meta,
            d.body.note.clone(),
        );
    }
    for p in &h.persuasions {
        push(
            date(p.body.date, &p.meta),
            "persuasion",
            &p.meta,
            p.body.note.clone(),
        );
    }
    for c in &h.contacts {
        push(
            date(c.body.date, &c.meta),
            "contact",
            &c.meta,
            c.body.note.clone(),
        );
    }
    for s in &h.screenings {
        push(
            s.meta.created_at.date_naive().to_string(),
            "screening",
            &s.meta,
            String::new(),
        );
    }
    for p in &h.plans {
        push(
            p.meta.updated_at.date_naive().to_string(),
            "plan",
            &p.meta,
            p.body.revision_note.clone(),
        );
    }
    for n in &h.psych_notes {
        // Only counselors get here; still, only the date and kind are shown.
        push(
            date(n.body.session_date, &n.meta),
            "psych_note",
            &n.meta,
            String::new(),
        );
    }
    tl.sort_by(|a, b| b.at.cmp(&a.at));
    Ok(ChildView {
        id,
        visits: h.visits.iter().map(VisitRow::of).collect(),
        household_label: h.household.map(|x| x.body.label),
        created_at: h.child.meta.created_at,
        updated_at: h.child.meta.updated_at,
        card: h.child.body,
        timeline: tl,
    })
}

/// Check a card as typed (normalised first, as saving would): every field's
/// problem, in the session's language. Nothing is written.
pub fn validate_child(store: &Store, session: &Session, card: &ChildCard) -> Vec<FieldProblem> {
    let mut c = card.clone();
    c.normalize();
    match c.validate(store.today()) {
        Ok(()) => vec![],
        Err(v) => field_problems(&v, session.lang),
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SaveChild {
    /// `None` creates a new card.
    pub id: Option<Uuid>,
    pub card: ChildCard,
}

/// Create or update a card. A card that does not validate comes back as a
/// coded error whose `details.errors` lists every field's problem.
/// Saves a card. Its counseling flag and safety alert are the counselor's to
/// set: any other role's save must leave them as they are.
pub fn save_child(store: &mut Store, session: &Session, req: SaveChild) -> Result<Uuid> {
    session.check_school(req.card.school_id)?;
    let before = match req.id {
        Some(id) => store.fetch::<ChildCard>(id)?.body.counseling,
        None => shouhu_core::CounselingFlag::default(),
    };
    let mut after = req.card.counseling.clone();
    after.alert_text = after.alert_text.trim().to_string();
    if after != before && !session.may(shouhu_auth::Action::WriteCounselingFlag) {
        return Err(Error::Forbidden {
            role: session.role.as_str(),
            action: "set the counseling flag",
        });
    }
    let id = store.write(|w| match req.id {
        None => w.create(req.card).map(|s| s.id()),
        Some(id) => w.update(id, req.card).map(|s| s.id()),
    })?;
    Ok(id)
}

/// Record in the audit log that the card of `child_id` is being printed
/// (the printable 一人一卡 view); the UI asks for confirmation first.
pub fn audit_print(store: &Store, session: &Session, child_id: Uuid) -> Result<()> {
    let card = store.fetch::<ChildCard>(child_id)?;
    session.check_school(card.body.school_id)?;
    store.audit(
        shouhu_store::AuditAction::Print,
        shouhu_store::AuditTarget {
            entity: Some("child".into()),
            record_id: Some(child_id),
            school_id: card.body.school_id,
        },
        serde_json::json!({ "via": "app", "what": "child_card" }),
    )?;
    Ok(())
}

/// Delete a card (a tombstone with a reason).
pub fn delete_child(store: &mut Store, id: Uuid, reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(StoreError::DeleteReasonRequired.into());
    }
    store.write(|w| w.delete(shouhu_core::EntityKind::Child, id, reason))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil;

    #[test]
    fn validate_reports_each_field_in_chinese() {
        let s = testutil::store();
        let card = ChildCard {
            id_number: Some("52010220150307123".into()),
            father: shouhu_core::Parent {
                phone: Some("12345".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let problems = validate_child(&s, &Session::default(), &card);
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for f in ["name", "gender", "birth_date", "id_number", "father.phone"] {
            assert!(fields.contains(&f), "{f} missing in {fields:?}");
        }
        let name = problems.iter().find(|p| p.field == "name").unwrap();
        assert_eq!(name.code, "field.required");
        assert!(name.message.contains("姓名"), "{}", name.message);
        let en = Session {
            lang: shouhu_core::Lang::En,
            ..Session::default()
        };
        let problems = validate_child(&s, &en, &card);
        assert!(problems.iter().any(|p| p.message.contains("Name")));
    }

    #[test]
    fn save_get_search_and_timeline() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let card = testutil::card(school);
        assert!(validate_child(&s, &Session::default(), &card).is_empty());
        let id = save_child(
            &mut s,
            &crate::Session::default(),
            SaveChild {
                id: None,
                card: card.clone(),
            },
        )
        .unwrap();
        let mut changed = card;
        changed.grade = "三年级".into();
        save_child(
            &mut s,
            &crate::Session::default(),
            SaveChild {
                id: Some(id),
                card: changed,
            },
        )
        .unwrap();
        let view = get_child(&s, &Session::default(), id).unwrap();
        assert_eq!(view.card.grade, "三年级");
        let kinds: Vec<&str> = view.timeline.iter().map(|t| t.kind).collect();
        assert!(kinds.contains(&"card_created") && kinds.contains(&"card_changed"));
        let change = view
            .timeline
            .iter()
            .find(|t| t.kind == "card_changed")
            .unwrap();
        assert_eq!(change.fields, vec!["grade".to_string()]);
        assert_eq!(change.by, "me");
        let page = search_children(
            &s,
            &SearchParams {
                query: "zs".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(page.total, 1);
        assert_eq!(page.items[0].id, id);
    }

    #[test]
    fn invalid_save_has_field_details_and_writes_nothing() {
        let mut s = testutil::store();
        let err = save_child(
            &mut s,
            &crate::Session::default(),
            SaveChild {
                id: None,
                card: ChildCard::default(),
            },
        )
        .unwrap_err();
        assert_eq!(err.code(), "field.required");
        let problems = err.field_errors(shouhu_core::Lang::ZhCn);
        assert!(problems.iter().any(|p| p.field == "name"));
        let body = err.body(shouhu_core::Lang::ZhCn);
        assert!(body.details["errors"]
            .as_array()
            .is_some_and(|a| !a.is_empty()));
        assert_eq!(s.count(shouhu_core::EntityKind::Child).unwrap(), 0);
    }

    #[test]
    fn only_counselors_set_the_counseling_flag_and_everyone_sees_it() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let id = testutil::child(&mut s, school);
        let teacher = crate::Session::default();
        let counselor = crate::Session {
            role: crate::Role::Counselor,
            ..crate::Session::default()
        };
        let mut card = get_child(&s, &teacher, id).unwrap().card;
        card.counseling.active = true;
        card.counseling.alert = shouhu_core::SafetyAlert::Watch;
        card.counseling.alert_text = "情绪低落时请多陪伴".into();
        let req = SaveChild {
            id: Some(id),
            card: card.clone(),
        };
        // A teacher (or principal) may not raise or change it...
        for role in [crate::Role::Teacher, crate::Role::Principal] {
            let session = crate::Session {
                role,
                ..crate::Session::default()
            };
            let e = save_child(&mut s, &session, req.clone()).unwrap_err();
            assert_eq!(e.code(), "auth.forbidden", "{role:?}");
        }
        // ...the counselor does, and then every role sees it on the card.
        save_child(&mut s, &counselor, req).unwrap();
        let seen = get_child(&s, &teacher, id).unwrap().card;
        assert_eq!(seen.counseling, card.counseling);
        // A teacher's edit that leaves the flag alone is fine.
        let mut edit = seen;
        edit.grade = "四年级".into();
        save_child(
            &mut s,
            &teacher,
            SaveChild {
                id: Some(id),
                card: edit,
            },
        )
        .unwrap();
        // A new card may not arrive flagged from a teacher either.
        let mut flagged = testutil::card(school);
        flagged.name = "李四".into();
        flagged.counseling.active = true;
        let e = save_child(
            &mut s,
            &teacher,
            SaveChild {
                id: None,
                card: flagged,
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), "auth.forbidden");
    }

    #[test]
    fn a_school_user_sees_and_saves_only_their_school() {
        let mut s = testutil::store();
        let mine = testutil::school(&mut s);
        let other = s
            .write(|w| {
                w.create(shouhu_core::School {
                    name: "石桥小学".into(),
                    township: "青山镇".into(),
                    ..Default::default()
                })
            })
            .unwrap()
            .id();
        let theirs = testutil::child(&mut s, other);
        let teacher = crate::Session {
            scope: crate::Scope::School {
                school_id: mine,
                township_id: Uuid::now_v7(),
            },
            ..crate::Session::default()
        };
        // Lists: whatever was asked, a school user gets their own school.
        assert_eq!(teacher.school_filter(None), Some(mine));
        assert_eq!(teacher.school_filter(Some(other)), Some(mine));
        assert_eq!(
            crate::Session::default().school_filter(Some(other)),
            Some(other)
        );
        assert_eq!(crate::Session::default().school_filter(None), None);
        // Another school's card is refused, to open or to write.
        assert_eq!(
            get_child(&s, &teacher, theirs).unwrap_err().code(),
            "auth.forbidden"
        );
        let card = testutil::card(other);
        let e = save_child(&mut s, &teacher, SaveChild { id: None, card }).unwrap_err();
        assert_eq!(e.code(), "auth.forbidden");
        let e = crate::list_school_records(&s, &teacher, other, "safety_session").unwrap_err();
        assert_eq!(e.code(), "auth.forbidden");
        let e = crate::list_child_records(&s, &teacher, theirs, "aid").unwrap_err();
        assert_eq!(e.code(), "auth.forbidden");
        // Their own school's card opens; a county user opens both.
        let own = testutil::child(&mut s, mine);
        assert!(get_child(&s, &teacher, own).is_ok());
        assert!(get_child(&s, &crate::Session::default(), theirs).is_ok());
    }

    #[test]
    fn delete_needs_a_reason() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let id = testutil::child(&mut s, school);
        assert_eq!(
            delete_child(&mut s, id, " ").unwrap_err().code(),
            "record.delete_reason_required"
        );
        delete_child(&mut s, id, "重复录入").unwrap();
        assert_eq!(s.count(shouhu_core::EntityKind::Child).unwrap(), 0);
    }

    #[test]
    fn printing_a_card_is_audited_and_held_to_the_school() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let child = testutil::child(&mut s, school);
        audit_print(&s, &crate::Session::default(), child).unwrap();
        let entries = s
            .audit_entries(&shouhu_store::AuditFilter {
                action: Some(shouhu_store::AuditAction::Print),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].record_id, Some(child));
        assert_eq!(entries[0].school_id, Some(school));
        let other = testutil::school(&mut s);
        let teacher = crate::Session {
            scope: crate::Scope::School {
                school_id: other,
                township_id: Uuid::now_v7(),
            },
            ..crate::Session::default()
        };
        assert_eq!(
            audit_print(&s, &teacher, child).unwrap_err().code(),
            "auth.forbidden"
        );
        assert_eq!(
            audit_print(&s, &crate::Session::default(), Uuid::now_v7())
                .unwrap_err()
                .code(),
            "record.not_found"
        );
    }
}

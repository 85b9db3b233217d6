//! Home visits (家访记录): a draft is a real record, created on the first
//! keystroke and updated as the user types, so a closed window loses
//! nothing; finalising makes it evidence, corrected only by amendments.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shouhu_core::{ChildCard, FollowUp, HomeVisit, Stored, VisitAmendment, VisitStatus};
use uuid::Uuid;

use crate::{Result, Store, VisitRow};

#[derive(Debug, Clone, Deserialize)]
pub struct SaveVisit {
    /// `None` creates the draft.
    pub id: Option<Uuid>,
    pub visit: HomeVisit,
}

#[derive(Debug, Clone, Serialize)]
pub struct VisitSaved {
    pub id: Uuid,
    pub updated_at: DateTime<Utc>,
}

/// Save the visit as a draft (create it, or update the draft). The date
/// defaults to today, so the first keystroke can already be stored.
pub fn save_visit_draft(store: &mut Store, req: SaveVisit) -> Result<VisitSaved> {
    let mut visit = req.visit;
    visit.status = VisitStatus::Draft;
    visit.finalised_at = None;
    if visit.visit_date.is_none() {
        visit.visit_date = Some(store.today());
    }
    let saved = store.write(|w| match req.id {
        None => w.create(visit),
        Some(id) => w.update(id, visit),
    })?;
    Ok(VisitSaved {
        id: saved.meta.id,
        updated_at: saved.meta.updated_at,
    })
}

/// Save the draft's last content and finalise it, in one transaction.
pub fn finalise_visit(store: &mut Store, id: Uuid, visit: HomeVisit) -> Result<VisitSaved> {
    let mut visit = visit;
    visit.status = VisitStatus::Draft;
    visit.finalised_at = None;
    if visit.visit_date.is_none() {
        visit.visit_date = Some(store.today());
    }
    let saved = store.write(|w| {
        w.update(id, visit)?;
        w.finalise_visit(id)
    })?;
    Ok(VisitSaved {
        id: saved.meta.id,
        updated_at: saved.meta.updated_at,
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmendVisit {
    pub visit_id: Uuid,
    /// A field of the visit body (`problems_found`).
    pub field: String,
    pub new_value: Value,
    pub reason: String,
}

pub fn amend_visit(store: &mut Store, req: AmendVisit) -> Result<Uuid> {
    let a = store.write(|w| w.amend_visit(req.visit_id, &req.field, req.new_value, &req.reason))?;
    Ok(a.meta.id)
}

/// The visit screen: the visit, its amendments and follow-ups.
#[derive(Debug, Clone, Serialize)]
pub struct VisitView {
    pub id: Uuid,
    pub visit: HomeVisit,
    pub updated_at: DateTime<Utc>,
    pub child_name: Option<String>,
    pub amendments: Vec<Stored<VisitAmendment>>,
    pub follow_ups: Vec<Stored<FollowUp>>,
}

pub fn get_visit(store: &Store, id: Uuid) -> Result<VisitView> {
    let v = store.fetch::<HomeVisit>(id)?;
    let child_name = match v.body.child_id {
        Some(c) => store.get::<ChildCard>(c)?.map(|c| c.body.name),
        None => None,
    };
    let mut amendments: Vec<Stored<VisitAmendment>> = store.list_by_parent(id)?;
    amendments.sort_by_key(|a| a.meta.created_at);
    Ok(VisitView {
        id,
        updated_at: v.meta.updated_at,
        visit: v.body,
        child_name,
        amendments,
        follow_ups: store.list_by_parent(id)?,
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct SaveFollowUp {
    pub id: Option<Uuid>,
    pub follow_up: FollowUp,
}

/// Create or update a follow-up action (it hangs off its visit).
pub fn save_follow_up(store: &mut Store, req: SaveFollowUp) -> Result<Uuid> {
    let mut f = req.follow_up;
    if f.child_id.is_none() {
        if let Some(v) = f.visit_id {
            f.child_id = store.fetch::<HomeVisit>(v)?.body.child_id;
        }
    }
    let s = store.write(|w| match req.id {
        None => w.create(f),
        Some(id) => w.update(id, f),
    })?;
    Ok(s.meta.id)
}

/// A row of the visits screen.
#[derive(Debug, Clone, Serialize)]
pub struct VisitListRow {
    #[serde(flatten)]
    pub row: VisitRow,
    pub child_id: Option<Uuid>,
    pub child_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VisitFilter {
    pub school_id: Option<Uuid>,
    /// `draft`, `final` or none for both.
    pub status: Option<String>,
    pub campaign: Option<String>,
    pub from: Option<NaiveDate>,
    /// 0 means 200.
    pub limit: usize,
}

/// The newest visits (drafts of every date first), filtered.
pub fn list_visits(store: &Store, f: &VisitFilter) -> Result<Vec<VisitListRow>> {
    let limit = if f.limit == 0 { 200 } else { f.limit.min(2000) };
    let status = match f.status.as_deref() {
        Some("draft") => Some("draft"),
        Some("final") => Some("finalised"),
        _ => None,
    };
    let sql = "SELECT id, body FROM home_visit WHERE deleted_at IS NULL \
        AND (?1 IS NULL OR school_id = ?1) \
        AND (?2 IS NULL OR json_extract(body, '$.status') = ?2) \
        AND (?3 IS NULL OR json_extract(body, '$.campaign') = ?3) \
        AND (?4 IS NULL OR date >= ?4) \
        ORDER BY json_extract(body, '$.status') = 'draft' DESC, date DESC, id DESC LIMIT ?5";
    let conn = store.connection();
    let mut st = conn
        .prepare_cached(sql)
        .map_err(shouhu_store::StoreError::from)?;
    let rows = st
        .query_map(
            params![
                f.school_id.map(|s| s.to_string()),
                status,
                f.campaign,
                f.from.map(|d| d.to_string()),
                limit as i64
            ],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .map_err(shouhu_store::StoreError::from)?;
    let mut out = Vec::new();
    for r in rows {
        let (id, body) = r.map_err(shouhu_store::StoreError::from)?;
        let Ok(id) = Uuid::parse_str(&id) else {
            continue;
        };
        let body: HomeVisit =
            serde_json::from_str(&body).map_err(shouhu_store::StoreError::from)?;
        let child_name = match body.child_id {
            Some(c) => store.get::<ChildCard>(c)?.map(|c| c.body.name),
            None => None,
        };
        let child_id = body.child_id;
        let stored = Stored {
            meta: placeholder_meta(id),
            body,
        };
        out.push(VisitListRow {
            row: VisitRow::of(&stored),
            child_id,
            child_name,
        });
    }
    Ok(out)
}

fn placeholder_meta(id: Uuid) -> shouhu_core::Meta {
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    shouhu_core::Meta {
        id,
        created_at: epoch,
        updated_at: epoch,
        created_by: Uuid::nil(),
        updated_by: Uuid::nil(),
        device_id: Uuid::nil(),
        version: 0,
        deleted_at: None,
        delete_reason: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{get_child, save_child, testutil, SaveChild, Session};

    fn child(s: &mut Store) -> Uuid {
        let school = testutil::school(s);
        save_child(
            s,
            &crate::Session::default(),
            SaveChild {
                id: None,
                card: testutil::card(school),
            },
        )
        .unwrap()
    }

    #[test]
    fn draft_autosave_then_finalise_then_amend() {
        let mut s = testutil::store();
        let c = child(&mut s);
        let mut v = HomeVisit {
            child_id: Some(c),
            living_conditions: "住".into(),
            ..Default::default()
        };
        let d = save_visit_draft(
            &mut s,
            SaveVisit {
                id: None,
                visit: v.clone(),
            },
        )
        .unwrap();
        v.living_conditions = "住房安全，奶奶照顾".into();
        save_visit_draft(
            &mut s,
            SaveVisit {
                id: Some(d.id),
                visit: v.clone(),
            },
        )
        .unwrap();
        // The card lists the draft with what was typed.
        let card = get_child(&s, &Session::default(), c).unwrap();
        assert_eq!(card.visits.len(), 1);
        assert_eq!(card.visits[0].status, "draft");
        let view = get_visit(&s, d.id).unwrap();
        assert_eq!(view.visit.living_conditions, "住房安全，奶奶照顾");
        assert_eq!(view.visit.visit_date, Some(s.today()));
        assert_eq!(view.child_name.as_deref(), Some("张三"));
        // Finalising needs the visitors.
        let e = finalise_visit(&mut s, d.id, v.clone()).unwrap_err();
        assert_eq!(e.code(), "field.required");
        assert_eq!(
            get_visit(&s, d.id).unwrap().visit.status,
            VisitStatus::Draft
        );
        v.visitors = vec!["李老师".into()];
        finalise_visit(&mut s, d.id, v.clone()).unwrap();
        assert_eq!(
            get_child(&s, &Session::default(), c).unwrap().visits[0].status,
            "final"
        );
        // A finalised visit is not edited as a draft any more...
        let e = save_visit_draft(
            &mut s,
            SaveVisit {
                id: Some(d.id),
                visit: v,
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), "visit.finalised");
        // ...but amended, with a reason.
        amend_visit(
            &mut s,
            AmendVisit {
                visit_id: d.id,
                field: "problems_found".into(),
                new_value: serde_json::json!("作业未完成"),
                reason: "补记".into(),
            },
        )
        .unwrap();
        assert_eq!(get_visit(&s, d.id).unwrap().amendments.len(), 1);
    }

    #[test]
    fn follow_ups_and_listing() {
        let mut s = testutil::store();
        let c = child(&mut s);
        let d = save_visit_draft(
            &mut s,
            SaveVisit {
                id: None,
                visit: HomeVisit {
                    child_id: Some(c),
                    campaign: Some("2026年暑期家访".into()),
                    ..Default::default()
                },
            },
        )
        .unwrap();
        let f = save_follow_up(
            &mut s,
            SaveFollowUp {
                id: None,
                follow_up: FollowUp {
                    visit_id: Some(d.id),
                    action: "联系父亲".into(),
                    due_date: NaiveDate::from_ymd_opt(2026, 12, 5),
                    ..Default::default()
                },
            },
        )
        .unwrap();
        let view = get_visit(&s, d.id).unwrap();
        assert_eq!(view.follow_ups.len(), 1);
        assert_eq!(view.follow_ups[0].meta.id, f);
        assert_eq!(view.follow_ups[0].body.child_id, Some(c));
        let drafts = list_visits(
            &s,
            &VisitFilter {
                status: Some("draft".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(drafts.len(), 1);
        assert_eq!(drafts[0].child_name.as_deref(), Some("张三"));
        let finals = list_visits(
            &s,
            &VisitFilter {
                status: Some("final".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(finals.is_empty());
    }
}

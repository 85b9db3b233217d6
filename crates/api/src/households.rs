//! Households and their help plans (一户一策): siblings, measures,
//! responsible people, review date, and every earlier version of the plan.

use rusqlite::params;
use serde::{Deserialize, Serialize};
use shouhu_core::{ChildCard, HelpPlan, Household, PlanVersion, Stored};
use shouhu_store::StoreError;
use uuid::Uuid;

use crate::{Result, Store};

#[derive(Debug, Clone, Serialize)]
pub struct HouseholdRow {
    pub id: Uuid,
    pub label: String,
    pub head_name: String,
    pub village: String,
    pub children: i64,
    pub review_date: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HouseholdFilter {
    pub school_id: Option<Uuid>,
    /// Part of the label or the head's name.
    pub query: String,
    /// 0 means 300.
    pub limit: usize,
}

pub fn list_households(store: &Store, f: &HouseholdFilter) -> Result<Vec<HouseholdRow>> {
    let limit = if f.limit == 0 { 300 } else { f.limit.min(2000) };
    let like = format!("%{}%", f.query.trim());
    let sql = "SELECT h.id, h.body, \
          (SELECT COUNT(*) FROM child c WHERE c.parent_id = h.id AND c.deleted_at IS NULL), \
          (SELECT MAX(p.date) FROM help_plan p WHERE p.parent_id = h.id AND p.deleted_at IS NULL) \
        FROM household h WHERE h.deleted_at IS NULL AND (?1 IS NULL OR h.school_id = ?1) \
          AND (json_extract(h.body, '$.label') LIKE ?2 OR json_extract(h.body, '$.head_name') LIKE ?2) \
        ORDER BY json_extract(h.body, '$.label') LIMIT ?3";
    let conn = store.connection();
    let mut st = conn.prepare_cached(sql).map_err(StoreError::from)?;
    let rows = st
        .query_map(
            params![f.school_id.map(|s| s.to_string()), like, limit as i64],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .map_err(StoreError::from)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, body, children, review_date) = row.map_err(StoreError::from)?;
        let Ok(id) = Uuid::parse_str(&id) else {
            continue;
        };
        let h: Household = serde_json::from_str(&body).map_err(StoreError::from)?;
        out.push(HouseholdRow {
            id,
            label: h.label,
            head_name: h.head_name,
            village: h.address.village,
            children,
            review_date,
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub id: Uuid,
    pub name: String,
    pub grade: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HouseholdView {
    pub id: Uuid,
    pub household: Household,
    pub members: Vec<Member>,
    /// The current plan(s), newest first.
    pub plans: Vec<Stored<HelpPlan>>,
    /// Earlier versions of those plans, newest first.
    pub versions: Vec<Stored<PlanVersion>>,
}

pub fn get_household(store: &Store, id: Uuid) -> Result<HouseholdView> {
    let h = store.fetch::<Household>(id)?;
    let members = store
        .list_by_parent::<ChildCard>(id)?
        .into_iter()
        .map(|c| Member {
            id: c.meta.id,
            name: c.body.name,
            grade: c.body.grade,
        })
        .collect();
    let plans: Vec<Stored<HelpPlan>> = store.list_by_parent(id)?;
    let mut versions = Vec::new();
    for p in &plans {
        versions.extend(store.list_by_parent::<PlanVersion>(p.meta.id)?);
    }
    versions.sort_by_key(|v| std::cmp::Reverse(v.body.superseded_at));
    Ok(HouseholdView {
        id,
        household: h.body,
        members,
        plans,
        versions,
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct SavePlan {
    pub id: Option<Uuid>,
    pub plan: HelpPlan,
}

/// Create a plan, or revise it (the store archives the previous content as
/// a version and bumps the revision).
pub fn save_plan(store: &mut Store, req: SavePlan) -> Result<Uuid> {
    let s = store.write(|w| match req.id {
        None => w.create(req.plan),
        Some(id) => w.update(id, req.plan),
    })?;
    Ok(s.meta.id)
}

#[derive(Debug, Clone, Deserialize)]
pub struct SaveHousehold {
    pub id: Option<Uuid>,
    pub household: Household,
}

pub fn save_household(store: &mut Store, req: SaveHousehold) -> Result<Uuid> {
    let s = store.write(|w| match req.id {
        None => w.create(req.household),
        Some(id) => w.update(id, req.household),
    })?;
    Ok(s.meta.id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{save_child, testutil, SaveChild};
    use shouhu_core::{Measure, MeasureKind};

    #[test]
    fn plan_revisions_keep_versions() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let h = save_household(
            &mut s,
            SaveHousehold {
                id: None,
                household: Household {
                    label: "张家".into(),
                    school_id: Some(school),
                    ..Default::default()
                },
            },
        )
        .unwrap();
        for name in ["张一", "张二"] {
            let mut card = testutil::card(school);
            card.name = name.into();
            card.household_id = Some(h);
            save_child(
                &mut s,
                &crate::Session::default(),
                SaveChild { id: None, card },
            )
            .unwrap();
        }
        let mut plan = HelpPlan {
            household_id: h,
            needs: vec!["学业".into()],
            measures: vec![Measure {
                kind: MeasureKind::Tutoring,
                description: "每周辅导两次".into(),
                responsible: "李老师".into(),
                due_date: None,
            }],
            review_date: chrono::NaiveDate::from_ymd_opt(2027, 3, 1),
            ..Default::default()
        };
        let p = save_plan(
            &mut s,
            SavePlan {
                id: None,
                plan: plan.clone(),
            },
        )
        .unwrap();
        plan.needs.push("心理".into());
        plan.revision_note = "期中复查".into();
        save_plan(&mut s, SavePlan { id: Some(p), plan }).unwrap();
        let v = get_household(&s, h).unwrap();
        assert_eq!(v.members.len(), 2);
        assert_eq!(v.plans.len(), 1);
        assert_eq!(v.plans[0].body.revision, 1);
        assert_eq!(v.versions.len(), 1);
        assert_eq!(v.versions[0].body.content.needs, vec!["学业".to_string()]);
        let rows = list_households(
            &s,
            &HouseholdFilter {
                query: "张".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].children, 2);
        assert_eq!(rows[0].review_date.as_deref(), Some("2027-03-01"));
    }
}

//! Households and their help plans (一户一策): siblings, measures,
//! responsible people, review date, and every earlier version of the plan.

use rusqlite::params;
use serde::{Deserialize, Serialize};
use shouhu_core::{ChildCard, HelpPlan, Household, PlanVersion, Stored};
use shouhu_store::StoreError;
use uuid::Uuid;

use crate::{Action, Error, Result, Session, Store};

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
    /// The record's version (the server sequence of the last synced change
    /// applied to it): an edit sends it back with `save_household`, which
    /// refuses it if a sync changed the household since.
    pub version: i64,
    pub members: Vec<Member>,
    /// The current plan(s), newest first.
    pub plans: Vec<Stored<HelpPlan>>,
    /// Earlier versions of those plans, newest first.
    pub versions: Vec<Stored<PlanVersion>>,
}

pub fn get_household(store: &Store, session: &Session, id: Uuid) -> Result<HouseholdView> {
    let h = store.fetch::<Household>(id)?;
    session.check_school(h.body.school_id)?;
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
        version: h.meta.version,
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
/// a version and bumps the revision). Approving is a principal's act
/// (`Action::ApprovePlan`): a plan that comes approved, or a revision that
/// sets, changes or clears `approved_by`, is refused to other roles; their
/// other edits are theirs to make. A school-scoped user keeps to their
/// school.
pub fn save_plan(store: &mut Store, session: &Session, req: SavePlan) -> Result<Uuid> {
    session.check_school(req.plan.school_id)?;
    let before = match req.id {
        Some(id) => Some(store.fetch::<HelpPlan>(id)?.body),
        None => None,
    };
    if let Some(b) = &before {
        session.check_school(b.school_id)?;
    }
    if approval_changes(before.as_ref(), &req.plan) && !session.may(Action::ApprovePlan) {
        return Err(Error::Forbidden {
            role: session.role.as_str(),
            action: "approve a help plan",
        });
    }
    let s = store.write(|w| match req.id {
        None => w.create(req.plan),
        Some(id) => w.update(id, req.plan),
    })?;
    Ok(s.meta.id)
}

/// Whether saving `after` over `before` (none: a new plan) sets, changes or
/// clears the approval (blank counts as none, as the store trims it).
fn approval_changes(before: Option<&HelpPlan>, after: &HelpPlan) -> bool {
    fn approval(p: &HelpPlan) -> Option<&str> {
        p.approved_by
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
    }
    approval(after) != before.and_then(approval)
}

#[derive(Debug, Clone, Deserialize)]
pub struct SaveHousehold {
    /// `None` creates a new household.
    pub id: Option<Uuid>,
    pub household: Household,
    /// For an edit: the version the form was opened at
    /// ([`HouseholdView::version`]). `None` skips the check.
    #[serde(default)]
    pub version: Option<i64>,
}

/// Create a household, or edit one (label, head, phone, address, notes):
/// the store writes only the fields that changed, as one change-log entry
/// based on the version the device holds, so edits from two devices meet on
/// the server like any other record's (a conflict per field changed on
/// both). An edit opened before a sync changed the household is refused
/// (`record.changed`): saving it would undo what the sync brought.
pub fn save_household(store: &mut Store, session: &Session, req: SaveHousehold) -> Result<Uuid> {
    session.check_school(req.household.school_id)?;
    if let Some(id) = req.id {
        let current = store.fetch::<Household>(id)?;
        session.check_school(current.body.school_id)?;
        if let Some(opened) = req.version {
            if opened != current.meta.version {
                return Err(Error::Changed {
                    entity: "household",
                    id,
                    opened,
                    now: current.meta.version,
                });
            }
        }
    }
    let s = store.write(|w| match req.id {
        None => w.create(req.household),
        Some(id) => w.update(id, req.household),
    })?;
    Ok(s.meta.id)
}

/// Put a child into a household (its siblings' household) or, with `None`,
/// take it out: only the card's `household_id` changes.
pub fn set_child_household(
    store: &mut Store,
    session: &Session,
    child_id: Uuid,
    household_id: Option<Uuid>,
) -> Result<()> {
    let mut card = store.fetch::<ChildCard>(child_id)?;
    session.check_school(card.body.school_id)?;
    if let Some(h) = household_id {
        let household = store.fetch::<Household>(h)?;
        session.check_school(household.body.school_id)?;
    }
    if card.body.household_id == household_id {
        return Ok(());
    }
    card.body.household_id = household_id;
    store.write(|w| w.update(child_id, card.body))?;
    Ok(())
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
            &Session::default(),
            SaveHousehold {
                id: None,
                version: None,
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
        let teacher = Session::default();
        let p = save_plan(
            &mut s,
            &teacher,
            SavePlan {
                id: None,
                plan: plan.clone(),
            },
        )
        .unwrap();
        plan.needs.push("心理".into());
        plan.revision_note = "期中复查".into();
        save_plan(&mut s, &teacher, SavePlan { id: Some(p), plan }).unwrap();
        let v = get_household(&s, &Session::default(), h).unwrap();
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

    fn teacher_of(school: Uuid) -> Session {
        Session {
            scope: crate::Scope::School {
                school_id: school,
                township_id: Uuid::now_v7(),
            },
            ..Session::default()
        }
    }

    fn household(school: Uuid) -> Household {
        Household {
            label: "王家".into(),
            school_id: Some(school),
            head_name: "王建国".into(),
            phone: Some("13800001111".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_household_is_edited_field_by_field_at_the_version_it_was_opened() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let session = teacher_of(school);
        let id = save_household(
            &mut s,
            &session,
            SaveHousehold {
                id: None,
                household: household(school),
                version: None,
            },
        )
        .unwrap();
        let opened = get_household(&s, &session, id).unwrap();
        let mut edited = opened.household.clone();
        edited.address.village = " 青山村 ".into();
        edited.address.group = "三组".into();
        edited.phone = Some("139 0000 2222".into());
        let again = save_household(
            &mut s,
            &session,
            SaveHousehold {
                id: Some(id),
                household: edited,
                version: Some(opened.version),
            },
        )
        .unwrap();
        assert_eq!(again, id, "an edit, not a new household");
        let v = get_household(&s, &session, id).unwrap();
        assert_eq!(v.household.address.village, "青山村", "normalised");
        assert_eq!(v.household.address.group, "三组");
        assert_eq!(v.household.phone.as_deref(), Some("13900002222"));
        assert_eq!(v.household.head_name, "王建国", "untouched fields stay");
        // One change-log entry with exactly the changed fields.
        let out = s.outbox(100).unwrap();
        let update = out.iter().rfind(|e| e.record_id == id).unwrap();
        assert_eq!(update.op, shouhu_core::Op::Update);
        let mut fields: Vec<&String> = update.fields.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(fields, ["address.group", "address.village", "phone"]);
        assert_eq!(
            list_households(&s, &HouseholdFilter::default()).unwrap()[0].village,
            "青山村"
        );
    }

    #[test]
    fn an_edit_opened_before_a_sync_changed_the_household_is_refused() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let id = save_household(
            &mut s,
            &Session::default(),
            SaveHousehold {
                id: None,
                household: household(school),
                version: None,
            },
        )
        .unwrap();
        let mut edited = household(school);
        edited.label = "王家（新）".into();
        let e = save_household(
            &mut s,
            &Session::default(),
            SaveHousehold {
                id: Some(id),
                household: edited.clone(),
                version: Some(7),
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), "record.changed");
        let body = e.body(shouhu_core::Lang::ZhCn);
        assert!(body.message.contains("同步"), "{}", body.message);
        assert_eq!(body.details["opened"], 7);
        assert_eq!(body.details["now"], 0);
        assert_eq!(
            get_household(&s, &Session::default(), id)
                .unwrap()
                .household
                .label,
            "王家",
            "nothing written"
        );
        // A bad phone is a field problem in Chinese, nothing written either.
        edited.phone = Some("12345".into());
        let e = save_household(
            &mut s,
            &Session::default(),
            SaveHousehold {
                id: Some(id),
                household: edited,
                version: Some(0),
            },
        )
        .unwrap_err();
        let body = e.body(shouhu_core::Lang::ZhCn);
        assert_eq!(
            body.details["errors"][0]["details"]["field"], "phone",
            "{body:?}"
        );
    }

    #[test]
    fn a_school_user_edits_only_their_school_households_and_members() {
        let mut s = testutil::store();
        let mine = testutil::school(&mut s);
        let other = testutil::school(&mut s);
        let theirs = save_household(
            &mut s,
            &Session::default(),
            SaveHousehold {
                id: None,
                household: household(other),
                version: None,
            },
        )
        .unwrap();
        let teacher = teacher_of(mine);
        let e = save_household(
            &mut s,
            &teacher,
            SaveHousehold {
                id: Some(theirs),
                household: household(mine),
                version: None,
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), "auth.forbidden");
        assert_eq!(
            get_household(&s, &teacher, theirs).unwrap_err().code(),
            "auth.forbidden"
        );
        let child = testutil::child(&mut s, mine);
        assert_eq!(
            set_child_household(&mut s, &teacher, child, Some(theirs))
                .unwrap_err()
                .code(),
            "auth.forbidden"
        );
    }

    #[test]
    fn siblings_are_added_to_and_taken_out_of_a_household() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let session = teacher_of(school);
        let h = save_household(
            &mut s,
            &session,
            SaveHousehold {
                id: None,
                household: household(school),
                version: None,
            },
        )
        .unwrap();
        let a = testutil::child(&mut s, school);
        let b = testutil::child(&mut s, school);
        set_child_household(&mut s, &session, a, Some(h)).unwrap();
        set_child_household(&mut s, &session, b, Some(h)).unwrap();
        let before = s.outbox(100).unwrap().len();
        set_child_household(&mut s, &session, b, Some(h)).unwrap();
        assert_eq!(s.outbox(100).unwrap().len(), before, "no change, no entry");
        let v = get_household(&s, &session, h).unwrap();
        let mut ids: Vec<Uuid> = v.members.iter().map(|m| m.id).collect();
        ids.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(ids, want);
        set_child_household(&mut s, &session, a, None).unwrap();
        let v = get_household(&s, &session, h).unwrap();
        assert_eq!(v.members.iter().map(|m| m.id).collect::<Vec<_>>(), [b]);
        let card = s.fetch::<ChildCard>(a).unwrap();
        assert_eq!(card.body.household_id, None);
        assert_eq!(card.body.name, "张三", "only the household changed");
        assert_eq!(
            set_child_household(&mut s, &session, a, Some(Uuid::now_v7()))
                .unwrap_err()
                .code(),
            "record.not_found"
        );
    }

    #[test]
    fn the_edit_form_validates_a_household_as_typed() {
        let s = testutil::store();
        let problems = crate::validate_record(
            &s,
            &Session::default(),
            "household",
            serde_json::json!({ "label": " ", "phone": "1390000" }),
        )
        .unwrap();
        let mut fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        fields.sort();
        assert_eq!(fields, ["label", "phone"]);
        assert!(problems
            .iter()
            .all(|p| p.message.chars().any(|c| c > '\u{4e00}')));
        assert!(crate::validate_record(
            &s,
            &Session::default(),
            "household",
            serde_json::json!({ "label": "王家", "phone": "13900002222" }),
        )
        .unwrap()
        .is_empty());
        // Households are validated here, not written (save_household does).
        assert_eq!(
            crate::save_record(
                &mut testutil::store(),
                &Session::default(),
                crate::SaveRecord {
                    kind: "household".into(),
                    id: None,
                    body: serde_json::json!({ "label": "王家" }),
                },
            )
            .unwrap_err()
            .code(),
            "input.invalid"
        );
    }

    /// Approving a plan is a principal's act, in the library: a teacher or
    /// counselor may write and revise a plan but not set, change or clear
    /// its approval; the principal may; nothing refused is written.
    #[test]
    fn only_a_principal_approves_a_plan() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let as_role = |role| crate::Session {
            role,
            scope: crate::Scope::School {
                school_id: school,
                township_id: Uuid::now_v7(),
            },
            ..crate::Session::default()
        };
        let (teacher, counselor, principal) = (
            as_role(crate::Role::Teacher),
            as_role(crate::Role::Counselor),
            as_role(crate::Role::Principal),
        );
        let h = save_household(
            &mut s,
            &principal,
            SaveHousehold {
                id: None,
                household: Household {
                    label: "王家".into(),
                    school_id: Some(school),
                    ..Default::default()
                },
                version: None,
            },
        )
        .unwrap();
        let plan = HelpPlan {
            household_id: h,
            school_id: Some(school),
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
        let approved = HelpPlan {
            approved_by: Some("王校长".into()),
            ..plan.clone()
        };
        let code = |r: Result<Uuid>| r.unwrap_err().code();
        let new = |p: &HelpPlan| SavePlan {
            id: None,
            plan: p.clone(),
        };
        assert_eq!(
            code(save_plan(&mut s, &teacher, new(&approved))),
            "auth.forbidden"
        );
        assert_eq!(
            code(save_plan(&mut s, &counselor, new(&approved))),
            "auth.forbidden"
        );
        assert!(s.list_all::<HelpPlan>().unwrap().is_empty());
        // A draft (blank approval counts as none) is the teacher's to write.
        let blank = HelpPlan {
            approved_by: Some("  ".into()),
            ..plan.clone()
        };
        let id = save_plan(&mut s, &teacher, new(&blank)).unwrap();
        let edit = |p: &HelpPlan| SavePlan {
            id: Some(id),
            plan: p.clone(),
        };
        assert_eq!(
            code(save_plan(&mut s, &teacher, edit(&approved))),
            "auth.forbidden"
        );
        assert_eq!(s.fetch::<HelpPlan>(id).unwrap().body.approved_by, None);
        save_plan(&mut s, &principal, edit(&approved)).unwrap();
        // Revising an approved plan keeps the approval: allowed; changing
        // or clearing it is not.
        let revised = HelpPlan {
            needs: vec!["学业".into(), "心理".into()],
            ..approved.clone()
        };
        save_plan(&mut s, &teacher, edit(&revised)).unwrap();
        let other = HelpPlan {
            approved_by: Some("李老师".into()),
            ..revised.clone()
        };
        assert_eq!(
            code(save_plan(&mut s, &teacher, edit(&other))),
            "auth.forbidden"
        );
        assert_eq!(
            code(save_plan(&mut s, &teacher, edit(&plan))),
            "auth.forbidden"
        );
        let stored = s.fetch::<HelpPlan>(id).unwrap().body;
        assert_eq!(stored.approved_by.as_deref(), Some("王校长"));
        assert_eq!(stored.needs.len(), 2);
        // Another school's plan is refused outright.
        let far = HelpPlan {
            school_id: Some(Uuid::now_v7()),
            ..plan.clone()
        };
        assert_eq!(
            code(save_plan(&mut s, &principal, new(&far))),
            "auth.forbidden"
        );
    }
}

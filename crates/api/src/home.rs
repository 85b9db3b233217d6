//! The home screen: my school's children by left-behind and guardianship
//! type, visits due and overdue, follow-ups due, counseling flags and safety
//! alerts (names only, never a note's content), last sync and pending changes.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use rusqlite::params;
use serde::Serialize;
use shouhu_store::StoreError;
use uuid::Uuid;

use crate::{Result, Store};

/// A child is due a home visit when the last finalised one is older than
/// this (about a term)...
pub const VISIT_DUE_DAYS: u64 = 90;
/// ...and overdue when it is older than this, or there is none.
pub const VISIT_OVERDUE_DAYS: u64 = 180;
/// Follow-ups due within this many days are listed as due.
pub const FOLLOW_UP_SOON_DAYS: u64 = 7;
/// Visits that recorded a hazard at home this recently are safety alerts.
pub const HAZARD_RECENT_DAYS: u64 = 90;
/// How many names each list on the home screen shows.
const LIST: usize = 8;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChildRef {
    pub id: Uuid,
    pub name: String,
    /// What the line is about: a date, an action.
    pub note: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Dashboard {
    pub school_id: Option<Uuid>,
    pub active_children: i64,
    pub by_left_behind_type: BTreeMap<String, i64>,
    pub by_guardianship_type: BTreeMap<String, i64>,
    pub visits_due: i64,
    pub visits_overdue: i64,
    pub overdue_children: Vec<ChildRef>,
    pub visit_drafts: i64,
    pub follow_ups_due: i64,
    pub follow_ups_overdue: i64,
    pub follow_up_list: Vec<ChildRef>,
    /// Children under counseling (the card's flag, set by a counselor).
    pub counseling_flags: Vec<ChildRef>,
    /// Safety alerts a counselor raised on a card (with the text they wrote
    /// for teachers), and recent visits that found hazards at home.
    pub safety_alerts: Vec<ChildRef>,
    pub last_sync: Option<String>,
    pub pending_changes: i64,
}

/// Active children with their types, name order and last finalised visit:
/// the covering index `child_active` and the table `child_last_visit` that
/// triggers keep (migration 0006), never a row of `child` or `home_visit`.
const ACTIVE_SQL: &str =
    "SELECT c.left_behind_type, c.guardianship_type, c.id, c.sort_key, l.date \
     FROM child c INDEXED BY child_active LEFT JOIN child_last_visit l ON l.child_id = c.id \
     WHERE c.deleted_at IS NULL AND c.status = 'active' AND (?1 IS NULL OR c.school_id = ?1)";

// The other queries of the dashboard. Each WHERE repeats the terms of its
// partial index in migration 0006 word for word.
const DRAFTS_SQL: &str = "SELECT COUNT(*) FROM home_visit WHERE deleted_at IS NULL \
             AND json_extract(body, '$.status') = 'draft' AND (?1 IS NULL OR school_id = ?1)";
const FOLLOW_UPS_SQL: &str =
    "SELECT f.child_id, c.name, f.date, json_extract(f.body, '$.action') FROM follow_up f \
             LEFT JOIN child c ON c.id = f.child_id \
             WHERE f.deleted_at IS NULL AND json_extract(f.body, '$.done') = 0 AND f.date <= ?2 \
               AND (?1 IS NULL OR f.school_id = ?1) ORDER BY f.date";
const FLAGS_SQL: &str = "SELECT id, name, json_extract(body, '$.counseling.active'), \
                    json_extract(body, '$.counseling.alert'), json_extract(body, '$.counseling.alert_text') \
             FROM child WHERE deleted_at IS NULL AND (?1 IS NULL OR school_id = ?1) \
               AND (json_extract(body, '$.counseling.active') = 1 \
                    OR json_extract(body, '$.counseling.alert') IN ('watch', 'urgent')) \
             ORDER BY name, id";
const LEGACY_NOTES_SQL: &str =
    "SELECT p.child_id, c.name, json_extract(p.body, '$.risk_level') FROM psych_note p \
             JOIN child c ON c.id = p.child_id AND c.deleted_at IS NULL \
             WHERE p.deleted_at IS NULL AND json_extract(p.body, '$.sealed') IS NULL \
               AND (?1 IS NULL OR p.school_id = ?1) \
             ORDER BY p.child_id, p.date, p.id";
const HAZARDS_SQL: &str = "SELECT v.child_id, c.name, v.date FROM home_visit v JOIN child c ON c.id = v.child_id \
             WHERE v.deleted_at IS NULL AND v.date >= ?2 AND json_array_length(v.body, '$.hazards') > 0 \
               AND (?1 IS NULL OR v.school_id = ?1) ORDER BY v.date DESC LIMIT ?3";

/// Every query of the dashboard (the plan test runs EXPLAIN QUERY PLAN on each).
#[cfg(test)]
const QUERIES: &[&str] = &[
    ACTIVE_SQL,
    DRAFTS_SQL,
    FOLLOW_UPS_SQL,
    FLAGS_SQL,
    LEGACY_NOTES_SQL,
    HAZARDS_SQL,
];

fn sql_err(e: rusqlite::Error) -> crate::Error {
    StoreError::from(e).into()
}

pub fn dashboard(store: &Store, school_id: Option<Uuid>) -> Result<Dashboard> {
    dashboard_timed(store, school_id).map(|(d, _)| d)
}

/// [`dashboard`] with the time each of its parts took (ui-bench prints them).
pub fn dashboard_timed(
    store: &Store,
    school_id: Option<Uuid>,
) -> Result<(Dashboard, Vec<(&'static str, std::time::Duration)>)> {
    let mut laps = Vec::new();
    let mut last_lap = std::time::Instant::now();
    let mut lap = |name: &'static str| {
        let now = std::time::Instant::now();
        laps.push((name, now - last_lap));
        last_lap = now;
    };
    let conn = store.connection();
    let today = store.today();
    let school = school_id.map(|s| s.to_string());
    let ago = |days: u64| {
        today
            .checked_sub_days(Days::new(days))
            .unwrap_or(NaiveDate::MIN)
            .to_string()
    };
    let mut d = Dashboard {
        school_id,
        ..Default::default()
    };
    // Active children by type, and the last finalised visit of each: one
    // pass over the covering index `child_active` and `child_last_visit`
    // (migration 0006), never the rows.
    let due_before = ago(VISIT_DUE_DAYS);
    let overdue_before = ago(VISIT_OVERDUE_DAYS);
    let mut st = conn.prepare_cached(ACTIVE_SQL).map_err(sql_err)?;
    let mut rows = st.query([&school]).map_err(sql_err)?;
    // The first LIST overdue children in the list's order, kept sorted: the
    // longest without a visit first (none at all before any), then by name.
    // (last visit, name order, id); only a child that enters it is copied.
    let mut overdue: Vec<(Option<String>, String, String)> = Vec::with_capacity(LIST + 1);
    type Key<'a> = (bool, Option<&'a str>, &'a str, &'a str);
    fn key(e: &(Option<String>, String, String)) -> Key<'_> {
        (e.0.is_some(), e.0.as_deref(), &e.1, &e.2)
    }
    while let Some(r) = rows.next().map_err(sql_err)? {
        let text = |i: usize| -> Result<&str> {
            r.get_ref(i)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(sql_err)
        };
        for (map, col) in [
            (&mut d.by_left_behind_type, 0),
            (&mut d.by_guardianship_type, 1),
        ] {
            let kind = text(col)?;
            match map.get_mut(kind) {
                Some(n) => *n += 1,
                None => {
                    map.insert(kind.to_string(), 1);
                }
            }
        }
        d.active_children += 1;
        let last = r
            .get_ref(4)
            .and_then(|v| v.as_str_or_null().map_err(Into::into))
            .map_err(sql_err)?;
        match last {
            Some(l) if l >= due_before.as_str() => {}
            Some(l) if l >= overdue_before.as_str() => d.visits_due += 1,
            _ => {
                d.visits_overdue += 1;
                let (sort_key, id) = (text(3)?, text(2)?);
                let k: Key<'_> = (last.is_some(), last, sort_key, id);
                if overdue.len() < LIST || overdue.last().is_some_and(|w| k < key(w)) {
                    let at = overdue.partition_point(|e| key(e) <= k);
                    overdue.insert(
                        at,
                        (
                            last.map(str::to_string),
                            sort_key.to_string(),
                            id.to_string(),
                        ),
                    );
                    overdue.truncate(LIST);
                }
            }
        }
    }
    drop(rows);
    lap("types, last visits");
    let mut st = conn
        .prepare_cached("SELECT name FROM child WHERE id = ?1")
        .map_err(sql_err)?;
    for (last, _, id) in overdue {
        let name: String = st.query_row([&id], |r| r.get(0)).map_err(sql_err)?;
        if let Ok(id) = Uuid::parse_str(&id) {
            d.overdue_children.push(ChildRef {
                id,
                name,
                note: last.unwrap_or_default(),
            });
        }
    }
    lap("overdue names");
    d.visit_drafts = conn
        .query_row(DRAFTS_SQL, [&school], |r| r.get(0))
        .map_err(sql_err)?;
    lap("drafts");

    // Follow-ups not done, due soon or overdue.
    let soon = today
        .checked_add_days(Days::new(FOLLOW_UP_SOON_DAYS))
        .unwrap_or(NaiveDate::MAX)
        .to_string();
    let mut st = conn.prepare(FOLLOW_UPS_SQL).map_err(sql_err)?;
    let rows = st
        .query_map(params![school, soon], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .map_err(sql_err)?;
    let today_s = today.to_string();
    for row in rows {
        let (child, name, due, action) = row.map_err(sql_err)?;
        if due < today_s {
            d.follow_ups_overdue += 1;
        } else {
            d.follow_ups_due += 1;
        }
        if d.follow_up_list.len() < LIST {
            if let (Some(id), Some(name)) = (child.and_then(|c| Uuid::parse_str(&c).ok()), name) {
                d.follow_up_list.push(ChildRef {
                    id,
                    name,
                    note: format!("{due} {}", action.unwrap_or_default()),
                });
            }
        }
    }

    lap("follow-ups");

    // Counseling flags and safety alerts as the counselor set them on the
    // card (心理关注标记): the flag and the alert text, never the note.
    let mut st = conn.prepare(FLAGS_SQL).map_err(sql_err)?;
    let rows = st
        .query_map([&school], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<bool>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .map_err(sql_err)?;
    let mut flagged = std::collections::BTreeSet::new();
    for row in rows {
        let (child, name, active, alert, text) = row.map_err(sql_err)?;
        let Ok(id) = Uuid::parse_str(&child) else {
            continue;
        };
        flagged.insert(child);
        if active == Some(true) {
            d.counseling_flags.push(ChildRef {
                id,
                name: name.clone(),
                note: String::new(),
            });
        }
        if matches!(alert.as_deref(), Some("watch" | "urgent")) {
            d.safety_alerts.push(ChildRef {
                id,
                name,
                note: text.unwrap_or_default(),
            });
        }
    }
    lap("card flags");
    // Legacy plain notes (from before notes were sealed) still raise the
    // flag by their latest risk level; sealed notes say nothing here.
    let mut st = conn.prepare(LEGACY_NOTES_SQL).map_err(sql_err)?;
    let rows = st
        .query_map([&school], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .map_err(sql_err)?;
    let mut latest: BTreeMap<String, (String, String)> = BTreeMap::new();
    for row in rows {
        let (child, name, risk) = row.map_err(sql_err)?;
        latest.insert(child, (name, risk.unwrap_or_default()));
    }
    for (child, (name, risk)) in latest {
        if flagged.contains(&child) {
            continue;
        }
        let Ok(id) = Uuid::parse_str(&child) else {
            continue;
        };
        let r = ChildRef {
            id,
            name,
            note: String::new(),
        };
        match risk.as_str() {
            "high" => d.counseling_flags.push(r),
            "crisis" => d.safety_alerts.push(r),
            _ => {}
        }
    }
    lap("legacy notes");
    let mut st = conn.prepare(HAZARDS_SQL).map_err(sql_err)?;
    let rows = st
        .query_map(params![school, ago(HAZARD_RECENT_DAYS), LIST as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(sql_err)?;
    for row in rows {
        let (child, name, date) = row.map_err(sql_err)?;
        if let Ok(id) = Uuid::parse_str(&child) {
            d.safety_alerts.push(ChildRef {
                id,
                name,
                note: format!("hazard {date}"),
            });
        }
    }

    lap("hazards");
    let status = shouhu_sync::status(store)?;
    d.last_sync = status.last_sync;
    d.pending_changes = status.pending;
    lap("sync status");
    Ok((d, laps))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{save_child, save_visit_draft, testutil, SaveChild, SaveVisit};
    use shouhu_core::{
        FollowUp, GuardianshipType, Hazard, HomeVisit, LeftBehindType, PsychNote, RiskLevel,
    };

    /// Every query reads through the indexes of migration 0006: no query
    /// scans a table (reading every record's body).
    #[test]
    fn plans_use_the_indexes() {
        let s = testutil::store();
        for q in QUERIES {
            let mut st = s
                .connection()
                .prepare(&format!("EXPLAIN QUERY PLAN {q}"))
                .unwrap();
            let mut rows = st.raw_query();
            let mut plan = Vec::new();
            while let Some(r) = rows.next().unwrap() {
                plan.push(r.get::<_, String>(3).unwrap());
            }
            println!("{q}\n  {}", plan.join("\n  "));
            assert!(plan.iter().any(|l| l.contains("INDEX")), "{q}: {plan:?}");
            for line in &plan {
                let scan = line.starts_with("SCAN ") && !line.contains("INDEX");
                let subquery_scan = line.starts_with("SCAN l"); // the GROUP BY's result
                assert!(!scan || subquery_scan, "{q}: {line} ({plan:?})");
            }
            // The counts read no row: the index holds all they need.
            if [ACTIVE_SQL, DRAFTS_SQL].contains(q) {
                for line in plan.iter().filter(|l| l.contains("INDEX")) {
                    assert!(
                        line.contains("COVERING") || line.contains("AUTOMATIC"),
                        "{q}: {line}"
                    );
                }
            }
        }
    }

    /// The dashboard's counts and overdue list equal what the row-by-row
    /// queries it replaced give (`json_extract` of every visit per child),
    /// on a generated county, county-wide and for one school.
    #[test]
    fn equals_the_row_by_row_queries_on_a_county() {
        let mut s = testutil::store();
        shouhu_demo::generate(&mut s, &shouhu_demo::DemoSpec::default(), &mut |_| {}).unwrap();
        let conn = s.connection();
        let school: String = conn
            .query_row("SELECT school_id FROM child LIMIT 1", [], |r| r.get(0))
            .unwrap();
        let today = s.today();
        let ago = |days| today.checked_sub_days(Days::new(days)).unwrap().to_string();
        let mut dated = 0;
        for school in [None, Some(school)] {
            let group = |col: &str| -> BTreeMap<String, i64> {
                let sql = format!(
                    "SELECT {col}, COUNT(*) FROM child WHERE deleted_at IS NULL AND status = 'active' \
                     AND (?1 IS NULL OR school_id = ?1) GROUP BY {col}"
                );
                let mut st = conn.prepare(&sql).unwrap();
                let rows = st.query_map([&school], |r| Ok((r.get(0)?, r.get(1)?)));
                rows.unwrap().collect::<rusqlite::Result<_>>().unwrap()
            };
            let mut st = conn
                .prepare(
                    "SELECT c.id, c.name, (SELECT MAX(v.date) FROM home_visit v WHERE v.child_id = c.id \
                       AND v.deleted_at IS NULL AND json_extract(v.body, '$.status') = 'finalised') AS last \
                     FROM child c WHERE c.deleted_at IS NULL AND c.status = 'active' \
                       AND (?1 IS NULL OR c.school_id = ?1) ORDER BY last IS NOT NULL, last, c.sort_key, c.id",
                )
                .unwrap();
            let rows: Vec<(String, String, Option<String>)> = st
                .query_map([&school], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let (due_before, overdue_before) = (ago(VISIT_DUE_DAYS), ago(VISIT_OVERDUE_DAYS));
            let due = rows
                .iter()
                .filter(|r| matches!(&r.2, Some(l) if *l < due_before && *l >= overdue_before))
                .count();
            let overdue: Vec<(String, String, String)> = rows
                .into_iter()
                .filter(|r| r.2.as_ref().is_none_or(|l| *l < overdue_before))
                .map(|(id, name, last)| (id, name, last.unwrap_or_default()))
                .collect();
            let sid = school.as_deref().map(|s| Uuid::parse_str(s).unwrap());
            let d = dashboard(&s, sid).unwrap();
            let lbt = group("left_behind_type");
            assert!(lbt.len() > 2 && d.visits_due > 0 && d.visits_overdue > LIST as i64);
            assert_eq!(d.by_left_behind_type, lbt);
            assert_eq!(d.by_guardianship_type, group("guardianship_type"));
            assert_eq!(d.active_children, lbt.values().sum::<i64>());
            assert_eq!(d.visits_due, due as i64);
            assert_eq!(d.visits_overdue, overdue.len() as i64);
            let listed: Vec<(String, String, String)> = d
                .overdue_children
                .iter()
                .map(|r| (r.id.to_string(), r.name.clone(), r.note.clone()))
                .collect();
            assert_eq!(listed, overdue[..LIST], "{school:?}");
            dated += listed.iter().filter(|l| !l.2.is_empty()).count();
        }
        assert!(dated > 0, "the lists hold children visited long ago too");
    }

    #[test]
    fn counts_due_visits_follow_ups_and_flags() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let other = testutil::school(&mut s);
        let mut ids = vec![];
        for (i, (lbt, gt)) in [
            (LeftBehindType::BothAway, GuardianshipType::Unattended),
            (LeftBehindType::FatherAway, GuardianshipType::Good),
            (LeftBehindType::BothAway, GuardianshipType::Good),
        ]
        .into_iter()
        .enumerate()
        {
            let mut card = testutil::card(school);
            card.name = format!("张{}", ["一", "二", "三"][i]);
            card.left_behind_type = lbt;
            card.guardianship_type = gt;
            ids.push(
                save_child(
                    &mut s,
                    &crate::Session::default(),
                    SaveChild { id: None, card },
                )
                .unwrap(),
            );
        }
        save_child(
            &mut s,
            &crate::Session::default(),
            SaveChild {
                id: None,
                card: testutil::card(other),
            },
        )
        .unwrap();
        let today = s.today();
        let visit = |child, days: u64, hazards: Vec<Hazard>| HomeVisit {
            child_id: Some(child),
            visit_date: today.checked_sub_days(Days::new(days)),
            visitors: vec!["李老师".into()],
            hazards,
            ..Default::default()
        };
        let (a, b) = (ids[0], ids[1]);
        s.write(|w| {
            let v = w.create(visit(a, 10, vec![Hazard::WaterNearby]))?;
            w.finalise_visit(v.meta.id)?;
            let v = w.create(visit(b, 120, vec![]))?;
            w.finalise_visit(v.meta.id)?;
            w.create(FollowUp {
                visit_id: Some(v.meta.id),
                child_id: Some(b),
                action: "联系母亲".into(),
                due_date: today.checked_sub_days(Days::new(1)),
                ..Default::default()
            })?;
            w.create(PsychNote {
                child_id: a,
                session_date: Some(today),
                presenting_issue: "secret".into(),
                risk_level: RiskLevel::High,
                ..Default::default()
            })?;
            // A sealed note says nothing here, whatever it holds.
            w.create(PsychNote {
                child_id: b,
                session_date: Some(today),
                sealed: Some(serde_json::json!({"ciphertext": "QUJD", "readers": []})),
                ..Default::default()
            })?;
            Ok(())
        })
        .unwrap();
        save_visit_draft(
            &mut s,
            SaveVisit {
                id: None,
                visit: visit(ids[2], 0, vec![]),
            },
        )
        .unwrap();
        // The counselor flags 张二 on the card with an urgent alert.
        let mut card = s.fetch::<shouhu_core::ChildCard>(b).unwrap().body;
        card.counseling = shouhu_core::CounselingFlag {
            active: true,
            since: Some(today),
            alert: shouhu_core::SafetyAlert::Urgent,
            alert_text: "放学后有人接送".into(),
        };
        s.write(|w| w.update(b, card)).unwrap();
        let d = dashboard(&s, Some(school)).unwrap();
        assert_eq!(d.active_children, 3);
        assert_eq!(d.by_left_behind_type.get("both_away"), Some(&2));
        assert_eq!(d.by_guardianship_type.get("unattended"), Some(&1));
        assert_eq!((d.visits_due, d.visits_overdue), (1, 1));
        assert_eq!(d.overdue_children[0].name, "张三");
        assert_eq!(d.visit_drafts, 1);
        assert_eq!((d.follow_ups_overdue, d.follow_ups_due), (1, 0));
        let flagged: Vec<&str> = d.counseling_flags.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(flagged, ["张二", "张一"], "card flag, then a legacy note's");
        assert!(!serde_json::to_string(&d).unwrap().contains("secret"));
        let alerts: Vec<(&str, &str)> = d
            .safety_alerts
            .iter()
            .map(|r| (r.name.as_str(), r.note.as_str()))
            .collect();
        assert_eq!(alerts[0], ("张二", "放学后有人接送"));
        assert_eq!(d.safety_alerts.len(), 2, "the alert and the hazard visit");
        assert!(d.pending_changes > 0);
        let all = dashboard(&s, None).unwrap();
        assert_eq!(all.active_children, 4);
    }
}

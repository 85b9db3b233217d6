//! A device's scope after enrollment: a county admin changes it
//! (`shouhu-server device set-scope`), each change recorded with its instant
//! in `device_scope_change` (migration 6), and the device learns its current
//! scope and the schools that left it (`GET /v1/device`).
//!
//! A school that left a device's scope still takes the device's pushed
//! changes made (HLC time) before it left — the rule a removed user's
//! earlier changes follow (`accounts::check_roles`) — so work pending on the
//! device at the time is never lost; later ones are `sync.out_of_scope`.
//! Pulls and users follow the current scope only.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use shouhu_protocol::{DeviceResponse, LeftSchool, Scope};
use uuid::Uuid;

use crate::db::{now_text, uuid, ServerDb};
use crate::error::ApiError;

/// The schools a device's scope is set to, as an admin gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewDeviceScope {
    /// Schools by id.
    pub schools: Vec<Uuid>,
    /// Every school of each of these townships.
    pub townships: Vec<String>,
}

/// One change of a device's scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeChange {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub before: Scope,
    pub after: Scope,
    /// Schools in `before` and not in `after`.
    pub removed: Vec<Uuid>,
    /// Schools in `after` and not in `before`.
    pub added: Vec<Uuid>,
}

fn parse_ms(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

/// A device's scope history, oldest first: (instant, before, after).
fn history(conn: &Connection, device: Uuid) -> Result<Vec<(String, Scope, Scope)>, ApiError> {
    let mut st = conn.prepare_cached(
        "SELECT at, scope_before, scope_after FROM device_scope_change WHERE device_id = ?1 ORDER BY seq",
    )?;
    let rows = st.query_map([device.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (at, before, after) = r?;
        out.push((
            at,
            serde_json::from_str(&before)?,
            serde_json::from_str(&after)?,
        ));
    }
    Ok(out)
}

/// The schools that left a device's scope and were not added back, with the
/// instant each last left (text).
fn left_at(conn: &Connection, device: Uuid) -> Result<Vec<(Uuid, String)>, ApiError> {
    let mut left: Vec<(Uuid, String)> = Vec::new();
    for (at, before, after) in history(conn, device)? {
        for s in &before.schools {
            if !after.schools.contains(s) {
                left.retain(|(x, _)| x != s);
                left.push((*s, at.clone()));
            }
        }
        left.retain(|(x, _)| !after.schools.contains(x));
    }
    Ok(left)
}

/// [`left_at`] in Unix milliseconds, for the push check (empty for a device
/// whose scope never changed: one indexed lookup).
pub(crate) fn left_ms(conn: &Connection, device: Uuid) -> Result<HashMap<Uuid, i64>, ApiError> {
    let mut out = HashMap::new();
    for (school, at) in left_at(conn, device)? {
        let ms = parse_ms(&at)
            .ok_or_else(|| ApiError::Internal(format!("bad instant in the scope history: {at}")))?;
        out.insert(school, ms);
    }
    Ok(out)
}

/// A device that took a new id keeps its scope history.
pub(crate) fn copy_history(conn: &Connection, old: Uuid, new: Uuid) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO device_scope_change (device_id, at, scope_before, scope_after)
         SELECT ?2, at, scope_before, scope_after FROM device_scope_change WHERE device_id = ?1 ORDER BY seq",
        params![old.to_string(), new.to_string()],
    )?;
    Ok(())
}

impl ServerDb {
    /// The device's current id: a device that took a new id (a restored
    /// database) is followed to it.
    fn current_device(conn: &Connection, device: Uuid) -> Result<(Uuid, Scope), ApiError> {
        let mut id = device;
        // A chain of new ids is short; the bound only guards a cycle.
        for _ in 0..64 {
            let row: Option<(String, Option<String>, Option<String>)> = conn
                .query_row(
                    "SELECT scope, revoked_at, successor FROM device WHERE id = ?1",
                    [id.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((scope, revoked, successor)) = row else {
                return Err(ApiError::DeviceNotFound(device));
            };
            if revoked.is_some() {
                return Err(ApiError::DeviceRevoked(device));
            }
            match successor {
                Some(next) => id = uuid(&next)?,
                None => return Ok((id, serde_json::from_str(&scope)?)),
            }
        }
        Err(ApiError::Internal(format!(
            "device {device}: a loop of new ids"
        )))
    }

    /// Change an enrolled device's scope to exactly these schools (and those
    /// of these townships), recording the change with its instant. Whether
    /// the device holds notes or accepts local users stays as enrolled.
    /// Setting the scope it already has records nothing (`None`).
    pub fn set_device_scope(
        &mut self,
        device: Uuid,
        new: &NewDeviceScope,
    ) -> Result<Option<ScopeChange>, ApiError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (id, before) = Self::current_device(&tx, device)?;
        let mut schools: Vec<Uuid> = Vec::new();
        for s in &new.schools {
            let known: Option<i64> = tx
                .query_row("SELECT 1 FROM school WHERE id = ?1", [s.to_string()], |r| {
                    r.get(0)
                })
                .optional()?;
            if known.is_none() {
                return Err(ApiError::DeviceScopeInvalid {
                    reason: format!("unknown school {s}"),
                });
            }
            if !schools.contains(s) {
                schools.push(*s);
            }
        }
        for t in &new.townships {
            let t = t.trim();
            let mut st = tx.prepare("SELECT id FROM school WHERE township = ?1 ORDER BY name")?;
            let ids = st
                .query_map([t], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            if ids.is_empty() {
                return Err(ApiError::DeviceScopeInvalid {
                    reason: format!("no school in township {t}"),
                });
            }
            for s in ids {
                let s = uuid(&s)?;
                if !schools.contains(&s) {
                    schools.push(s);
                }
            }
        }
        if schools.is_empty() {
            return Err(ApiError::DeviceScopeInvalid {
                reason: "a device needs at least one school (--school or --township)".into(),
            });
        }
        let after = Scope {
            schools,
            ..before.clone()
        };
        let same = after.schools.len() == before.schools.len()
            && after.schools.iter().all(|s| before.schools.contains(s));
        if same {
            return Ok(None);
        }
        let at = now_text();
        tx.execute(
            "UPDATE device SET scope = ?2 WHERE id = ?1",
            params![id.to_string(), serde_json::to_string(&after)?],
        )?;
        tx.execute(
            "INSERT INTO device_scope_change (device_id, at, scope_before, scope_after) VALUES (?1, ?2, ?3, ?4)",
            params![
                id.to_string(),
                at,
                serde_json::to_string(&before)?,
                serde_json::to_string(&after)?
            ],
        )?;
        tx.commit()?;
        Ok(Some(change(at, before, after)))
    }

    /// A device's scope changes, oldest first.
    pub fn device_scope_history(&self, device: Uuid) -> Result<Vec<ScopeChange>, ApiError> {
        let (id, _) = Self::current_device(&self.conn, device)?;
        Ok(history(&self.conn, id)?
            .into_iter()
            .map(|(at, before, after)| change(at, before, after))
            .collect())
    }

    /// What `GET /v1/device` answers an authenticated device.
    pub fn device_response(&self, device: Uuid, scope: &Scope) -> Result<DeviceResponse, ApiError> {
        let changed: Option<String> = self
            .conn
            .query_row(
                "SELECT MAX(at) FROM device_scope_change WHERE device_id = ?1",
                [device.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(DeviceResponse {
            device_id: device,
            scope: scope.clone(),
            scope_changed_at: changed,
            left_schools: left_at(&self.conn, device)?
                .into_iter()
                .filter(|(s, _)| !scope.schools.contains(s))
                .map(|(school_id, left_at)| LeftSchool { school_id, left_at })
                .collect(),
        })
    }
}

fn change(at: String, before: Scope, after: Scope) -> ScopeChange {
    let removed = before
        .schools
        .iter()
        .filter(|s| !after.schools.contains(s))
        .copied()
        .collect();
    let added = after
        .schools
        .iter()
        .filter(|s| !before.schools.contains(s))
        .copied()
        .collect();
    ScopeChange {
        at,
        before,
        after,
        removed,
        added,
    }
}

//! Sync from the app: status, enrollment and sync (async, over
//! `shouhu-sync`), and the conflicts to review.

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shouhu_core::hlc::Hlc;
use shouhu_core::{
    ChangeStamp, ChildCard, Conflict, ConflictKind, ConflictStatus, EntityKind, Household,
    ResolutionChoice,
};
use shouhu_sync::{CancelToken, SyncOptions, SyncProgress, SyncReport, SyncStatus};
use uuid::Uuid;

use crate::{who, Result, Store};

pub fn sync_status(store: &Store) -> Result<SyncStatus> {
    Ok(shouhu_sync::status(store)?)
}

/// Enroll this device with a server (one-time code), remembering it.
pub async fn enroll(
    store: &mut Store,
    server_url: &str,
    code: &str,
    device_name: &str,
) -> Result<SyncStatus> {
    shouhu_sync::enroll(store, server_url.trim(), code.trim(), device_name).await?;
    sync_status(store)
}

/// Push and pull; `progress` hears about every request.
pub async fn run_sync(
    store: &mut Store,
    progress: &mut (dyn FnMut(SyncProgress) + Send),
    cancel: &CancelToken,
) -> Result<SyncReport> {
    Ok(shouhu_sync::sync(store, &SyncOptions::default(), progress, cancel).await?)
}

#[derive(Debug, Clone, Serialize)]
pub struct Stamp {
    /// `me` or the first block of the user id.
    pub by: String,
    pub device: String,
    /// RFC 3339, UTC.
    pub at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConflictView {
    pub id: Uuid,
    pub entity: Option<EntityKind>,
    pub record_id: Uuid,
    /// The child's name or the household's label, when it is one of those.
    pub record_label: Option<String>,
    pub kind: ConflictKind,
    pub field: Option<String>,
    /// The value the record holds now (the server's order kept it).
    pub current_value: Value,
    pub current_by: Stamp,
    /// The value that lost.
    pub other_value: Value,
    pub other_by: Stamp,
    /// Which side came from this device: `current`, `other` or `neither`.
    pub local_side: &'static str,
}

fn stamp(store: &Store, s: &ChangeStamp) -> Stamp {
    let ms = Hlc::from_i64(i64::try_from(s.hlc).unwrap_or(i64::MAX)).physical_ms();
    Stamp {
        by: who(store, s.user_id),
        device: s.device_id.to_string().chars().take(8).collect(),
        at: Utc
            .timestamp_millis_opt(i64::try_from(ms).unwrap_or(0))
            .single()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
    }
}

/// Open conflicts, oldest first.
pub fn list_conflicts(store: &Store) -> Result<Vec<ConflictView>> {
    let mut out = Vec::new();
    let mut all = store.list_all::<Conflict>()?;
    all.sort_by_key(|c| c.meta.created_at);
    for c in all {
        if c.body.status != ConflictStatus::Open {
            continue;
        }
        let b = c.body;
        let record_label = match b.entity {
            Some(EntityKind::Child) => store.get::<ChildCard>(b.record_id)?.map(|r| r.body.name),
            Some(EntityKind::Household) => {
                store.get::<Household>(b.record_id)?.map(|r| r.body.label)
            }
            _ => None,
        };
        let local_side = if b.current_by.device_id == store.device_id() {
            "current"
        } else if b.other_by.device_id == store.device_id() {
            "other"
        } else {
            "neither"
        };
        out.push(ConflictView {
            local_side,
            id: c.meta.id,
            entity: b.entity,
            record_id: b.record_id,
            record_label,
            kind: b.kind,
            field: b.field,
            current_by: stamp(store, &b.current_by),
            other_by: stamp(store, &b.other_by),
            current_value: b.current_value,
            other_value: b.other_value,
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResolveConflict {
    pub id: Uuid,
    pub choice: ResolutionChoice,
    /// The merged value, for `merged`.
    pub merged: Option<Value>,
}

pub fn resolve_conflict(store: &mut Store, req: ResolveConflict) -> Result<()> {
    store.write(|w| w.resolve_conflict(req.id, req.choice, req.merged))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil;

    #[test]
    fn status_of_a_new_store_and_no_conflicts() {
        let s = testutil::store();
        let st = sync_status(&s).unwrap();
        assert!(!st.enrolled);
        assert_eq!(st.pending, 0);
        assert!(list_conflicts(&s).unwrap().is_empty());
    }

    #[test]
    fn a_conflict_is_listed_and_resolved_with_a_merged_value() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let c = testutil::child(&mut s, school);
        let conflict = s
            .write(|w| {
                w.create(Conflict {
                    entity: Some(EntityKind::Child),
                    record_id: c,
                    school_id: Some(school),
                    kind: ConflictKind::SameField,
                    field: Some("grade".into()),
                    current_value: serde_json::json!("三年级"),
                    other_value: serde_json::json!("四年级"),
                    ..Default::default()
                })
            })
            .unwrap()
            .id();
        let list = list_conflicts(&s).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].record_label.as_deref(), Some("张三"));
        resolve_conflict(
            &mut s,
            ResolveConflict {
                id: conflict,
                choice: ResolutionChoice::Merged,
                merged: Some(serde_json::json!("四年级（下）")),
            },
        )
        .unwrap();
        assert!(list_conflicts(&s).unwrap().is_empty());
        assert_eq!(s.fetch::<ChildCard>(c).unwrap().body.grade, "四年级（下）");
        let e = resolve_conflict(
            &mut s,
            ResolveConflict {
                id: conflict,
                choice: ResolutionChoice::KeepCurrent,
                merged: None,
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), "conflict.already_resolved");
    }
}

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

/// Enroll this device with a server, remembering it: the address, the
/// one-time code and the certificate fingerprint the county administrator
/// gave (`shouhu-server enroll` prints both; all 64 hex digits or at least
/// the first 16). The certificate is pinned: every later sync talks only to
/// that certificate. An empty fingerprint is only accepted for a plain
/// `http://` server on this computer (tests).
pub async fn enroll(
    store: &mut Store,
    server_url: &str,
    code: &str,
    fingerprint: &str,
    device_name: &str,
) -> Result<SyncStatus> {
    let fingerprint = Some(fingerprint.trim()).filter(|f| !f.is_empty());
    shouhu_sync::enroll(
        store,
        server_url.trim(),
        code.trim(),
        fingerprint,
        device_name,
    )
    .await?;
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

    /// A county server on HTTPS (127.0.0.1) with one school; its address,
    /// fingerprint and an enrollment code.
    async fn county(dir: &std::path::Path) -> (String, shouhu_tls::Fingerprint, String) {
        let mut db = shouhu_server::ServerDb::open_in_memory().unwrap();
        let school = db.add_school(None, "青山小学", "", "青山镇").unwrap();
        let code = db
            .create_enrollment(
                &shouhu_protocol::Scope {
                    schools: vec![school],
                    notes: false,
                    local_users: true,
                },
                1,
            )
            .unwrap();
        let id = shouhu_tls::load_or_create(dir, &[]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let state = shouhu_server::AppState::new(db);
        tokio::spawn(shouhu_server::run_tls(
            listener,
            id.config,
            state,
            std::future::pending(),
        ));
        (url, id.fingerprint, code)
    }

    #[tokio::test]
    async fn enrollment_pins_the_fingerprint_the_admin_gave() {
        let dir = tempfile::tempdir().unwrap();
        let (url, fp, code) = county(dir.path()).await;
        let mut s = testutil::store();
        // Required, and checked, before anything is sent.
        let e = enroll(&mut s, &url, &code, "  ", "laptop")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "sync.fingerprint_required");
        let e = enroll(&mut s, &url, &code, "12:34", "laptop")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "sync.bad_fingerprint");
        let e = enroll(&mut s, "http://10.1.2.3:8470", &code, "", "laptop")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "sync.https_required");
        // Someone else's certificate.
        let other = shouhu_tls::Fingerprint::of(b"another certificate").to_string();
        let e = enroll(&mut s, &url, &code, &other, "laptop")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "sync.certificate_mismatch");
        assert!(!sync_status(&s).unwrap().enrolled);
        // The first 16 digits, as typed from the admin's slip of paper.
        let typed = fp.to_string()[..23].to_string();
        let st = enroll(&mut s, &url, &code, &typed, "laptop").await.unwrap();
        assert!(st.enrolled);
        assert_eq!(st.server_fingerprint, Some(fp.to_string()));
        let report = run_sync(&mut s, &mut |_| {}, &CancelToken::new())
            .await
            .unwrap();
        assert_eq!(report.pulled, 1, "the school");
    }

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

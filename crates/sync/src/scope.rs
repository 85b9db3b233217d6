//! The device's scope as the server has it now (`GET /v1/device`), asked at
//! the start of every sync: kept in the store ([`SETTING_DEVICE_SCOPE`]) for
//! the app to show, a school added since the last sync pulled from the
//! beginning, and — after the push and the pull — the local copy of every
//! school that left the scope removed ([`Store::purge_school`]) unless this
//! device still has unsent changes for it (kept, and said so in the
//! [`SyncReport`]; the server takes those made before the school left, and
//! refuses later ones, which then stay in the outbox).
//!
//! A server without the endpoint (older, `request.not_found`) changes
//! nothing: no scope is learnt and nothing is removed.
//!
//! [`SyncReport`]: crate::SyncReport

use serde::Serialize;
use shouhu_protocol::{DeviceResponse, Scope};
use shouhu_store::Store;
use uuid::Uuid;

use crate::error::SyncError;
use crate::options::CancelToken;
use crate::transport::{decode, Call, OnRetry, Transport};

/// Store setting: the device's scope (`shouhu_protocol::Scope` as JSON), as
/// enrollment gave it and each sync updates it.
pub const SETTING_DEVICE_SCOPE: &str = "device_scope";

/// A school that left this device's scope but stays on it for now: this
/// device has changes for it the server has not taken (refused as made
/// after the school left, or waiting behind another refused change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptSchool {
    pub school_id: Uuid,
    /// The school's name, if its record is here.
    pub name: Option<String>,
    /// This device's unsent changes for it.
    pub pending: i64,
}

/// The scope stored in this device (`None` before enrollment or from a
/// server that does not tell it).
pub fn stored_scope(store: &Store) -> Result<Option<Scope>, SyncError> {
    Ok(store
        .setting(SETTING_DEVICE_SCOPE)?
        .and_then(|text| serde_json::from_str(&text).ok()))
}

pub(crate) fn store_scope(store: &mut Store, scope: &Scope) -> Result<(), SyncError> {
    let text = serde_json::to_string(scope).map_err(|e| SyncError::BadResponse {
        detail: e.to_string(),
    })?;
    store.set_setting(SETTING_DEVICE_SCOPE, &text)?;
    Ok(())
}

/// This device as the server knows it, `None` from an older server.
pub(crate) async fn fetch_device(
    t: &mut Transport,
    cancel: &CancelToken,
    on_retry: &mut OnRetry<'_>,
) -> Result<Option<DeviceResponse>, SyncError> {
    match t
        .call(&Call::get("v1/device", Vec::new()), cancel, on_retry)
        .await
    {
        Ok(body) => Ok(Some(decode::<DeviceResponse>(&body)?)),
        Err(e) if e.server_code() == Some("request.not_found") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Take the server's scope: store it, and return the schools it has that
/// the stored one did not (their records are pulled from the beginning).
/// A device that stored no scope yet (enrolled before scopes were kept)
/// adds nothing.
pub(crate) fn learn_scope(store: &mut Store, scope: &Scope) -> Result<Vec<Uuid>, SyncError> {
    let added = match stored_scope(store)? {
        Some(old) => scope
            .schools
            .iter()
            .filter(|s| !old.schools.contains(s))
            .copied()
            .collect(),
        None => Vec::new(),
    };
    if !added.is_empty() {
        // The pull cursor is past everything the new school ever had:
        // start over (re-applying what this device holds is harmless).
        store.rewind_pull_cursor(0)?;
    }
    store_scope(store, scope)?;
    Ok(added)
}

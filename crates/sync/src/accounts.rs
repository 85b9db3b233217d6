//! After a successful push and pull: upload the store's unsent audit entries
//! (`POST /v1/audit`, in batches, idempotent by entry id, the store's cursor
//! moved only by the server's answer) and fetch the server users of this
//! device's scope (`GET /v1/users`), returned in the [`SyncReport`] for the
//! app to update its keyring.
//!
//! A server without these endpoints (older, `request.not_found`) is not an
//! error: the audit stays unsent for a later server and no users come back.
//!
//! [`SyncReport`]: crate::SyncReport

use chrono::SecondsFormat;
use shouhu_protocol::{
    AuditRecord, AuditUpload, AuditUploadResponse, UserRecord, UsersResponse, MAX_AUDIT_ENTRIES,
    PROTOCOL_VERSION,
};
use shouhu_store::{AuditEntry, Store};

use crate::error::SyncError;
use crate::options::{CancelToken, SyncOptions};
use crate::transport::{decode, Call, OnRetry, Payload, Retry, Transport};

/// Audit entries per upload.
pub(crate) const AUDIT_BATCH: usize = 500;

/// The protocol form of a store audit entry.
pub(crate) fn audit_record(e: AuditEntry) -> AuditRecord {
    AuditRecord {
        id: e.id,
        at: e.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        device_id: e.device_id,
        user_id: e.user_id,
        action: e.action.as_str().to_string(),
        entity: e.entity,
        record_id: e.record_id,
        school_id: e.school_id,
        details: e.details,
    }
}

fn not_supported(e: &SyncError) -> bool {
    e.server_code() == Some("request.not_found")
}

/// Upload every unsent audit entry; how many the server acknowledged.
pub(crate) async fn upload_audit(
    t: &mut Transport,
    // `&mut`: a shared `&Store` is not `Send` (the connection is not `Sync`),
    // and the sync future must be.
    store: &mut Store,
    opts: &SyncOptions,
    cancel: &CancelToken,
    on_retry: &mut OnRetry<'_>,
) -> Result<u64, SyncError> {
    let mut sent = 0;
    loop {
        cancel.check()?;
        let batch = store.audit_unsent(AUDIT_BATCH.min(MAX_AUDIT_ENTRIES))?;
        let Some(&(through, _)) = batch.last() else {
            return Ok(sent);
        };
        let n = batch.len() as u64;
        let req = AuditUpload {
            protocol: PROTOCOL_VERSION,
            entries: batch.into_iter().map(|(_, e)| audit_record(e)).collect(),
        };
        let call = Call::post(
            "v1/audit",
            Payload::json(&req, opts.gzip_above)?,
            Retry::Always,
        );
        let body = match t.call(&call, cancel, on_retry).await {
            Ok(b) => b,
            Err(e) if not_supported(&e) => return Ok(sent),
            Err(e) => return Err(e),
        };
        let r: AuditUploadResponse = decode(&body)?;
        if (r.stored + r.duplicates) as u64 != n {
            return Err(SyncError::BadResponse {
                detail: format!(
                    "the server acknowledged {} of {n} audit entries",
                    r.stored + r.duplicates
                ),
            });
        }
        store.audit_mark_sent(through)?;
        sent += n;
    }
}

/// The server users of this device's scope (empty from a server without
/// accounts).
pub(crate) async fn fetch_users(
    t: &mut Transport,
    cancel: &CancelToken,
    on_retry: &mut OnRetry<'_>,
) -> Result<Vec<UserRecord>, SyncError> {
    match t
        .call(&Call::get("v1/users", Vec::new()), cancel, on_retry)
        .await
    {
        Ok(body) => Ok(decode::<UsersResponse>(&body)?.users),
        Err(e) if not_supported(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

//! What a sync tells its caller while it runs ([`SyncProgress`]) and when it
//! ends ([`SyncReport`]). Both serialise for the desktop app's events and
//! the CLI's JSON output.

use std::time::Duration;

use serde::{Serialize, Serializer};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    /// Sending this device's changes.
    Push,
    /// Fetching and applying everyone else's.
    Pull,
}

/// A snapshot, sent after each request (and before each retry wait).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    /// Push: outbox entries the server has acknowledged in this sync. Pull:
    /// server sequence numbers examined (pages include skipped, out-of-scope
    /// numbers, so this matches `total`'s unit).
    pub done: u64,
    /// Push: the outbox length when the sync started. Pull: the server's head
    /// minus this store's cursor, an estimate that grows if others push
    /// meanwhile.
    pub total: u64,
    /// Request body bytes sent so far (after compression, retries included).
    pub bytes_sent: u64,
    /// Response body bytes received so far (before decompression).
    pub bytes_received: u64,
    /// Set while waiting to retry a request that failed transiently.
    pub retry: Option<RetryNotice>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryNotice {
    /// 1 for the first retry.
    pub attempt: u32,
    pub max_retries: u32,
    /// How long until the retry.
    pub delay_ms: u64,
    /// The code of the failure being retried (`sync.network`, or the
    /// server's code for a 5xx/429).
    pub code: String,
}

/// The outcome of a sync that completed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    /// Local changes the server acknowledged in this sync.
    pub pushed: u64,
    /// Changes pulled and applied.
    pub pulled: u64,
    /// Conflict records the pushed changes opened on the server (they come
    /// back in the pull for review).
    pub conflicts: u64,
    /// Pulled fields left alone because this device has an unacknowledged
    /// edit of them.
    pub fields_kept: u64,
    /// Request body bytes sent (after compression, retries included).
    pub bytes_up: u64,
    /// Response body bytes received (before decompression).
    pub bytes_down: u64,
    /// Requests retried after transient failures.
    pub retries: u32,
    /// Set when this sync took a new device id because the server saw
    /// sequence numbers reused (a database restored from a backup).
    pub new_device_id: Option<Uuid>,
    /// Audit entries the server acknowledged in this sync.
    pub audit_sent: u64,
    /// The server users of this device's scope (with their password hashes,
    /// for offline log-in), for the app to update its keyring. Empty when
    /// the sync stopped before the end or the server has no accounts. Not
    /// serialised: the hashes stay out of events and logs.
    #[serde(skip)]
    pub users: Vec<shouhu_protocol::UserRecord>,
    /// Set by the app: the server holds another notes reader key for the
    /// logged-in reader (registered from another device) than this laptop's,
    /// so notes sealed elsewhere do not open here.
    pub reader_key_mismatch: bool,
    /// Set by the app: passwords changed on this laptop that the server took
    /// in this sync (they reach the user's other laptops at their next sync).
    pub password_changes_sent: u64,
    /// Set by the app: passwords changed on this laptop that the server
    /// refused and this laptop dropped (the server's newer credential, an
    /// administrator's reset say, stays; its users bring it here).
    pub password_changes_refused: u64,
    /// The device's scope as the server has it now (`None` from a server
    /// that does not tell it, or when the sync stopped before asking).
    pub scope: Option<shouhu_protocol::Scope>,
    /// Schools that joined the scope since the last sync (pulled from the
    /// beginning in this sync).
    pub schools_added: Vec<Uuid>,
    /// Schools that left the scope and were removed from this device in
    /// this sync, with how many records each.
    pub schools_removed: Vec<shouhu_store::SchoolPurge>,
    /// Schools that left the scope but stay on this device because some of
    /// its changes for them are not sent (refused by the server as made
    /// after the school left, or waiting behind a refused change).
    pub schools_kept: Vec<crate::scope::KeptSchool>,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

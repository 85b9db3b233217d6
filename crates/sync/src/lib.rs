//! # shouhu-sync
//!
//! The client side of sync: a device enrolls with the county server once
//! ([`enroll`]), then [`sync`] pushes its outbox and pulls what changed in its
//! scope, over the wire format of `shouhu-protocol`. The CLI (`shouhu sync`)
//! and the desktop app both call this crate; neither speaks HTTP itself.
//!
//! ```no_run
//! # async fn demo(store: &mut shouhu_store::Store) -> Result<(), shouhu_sync::SyncError> {
//! use shouhu_sync::{enroll, sync, CancelToken, SyncOptions};
//! // The code and the certificate fingerprint both come from the county admin.
//! let fingerprint = "96:71:A0:10:E9:95:3B:B0:26:74:DF:70:C9:85:61:EC:93:3B:F7:2B:D7:50:77:CE:AF:0E:26:35:52:70:D9:82";
//! enroll(store, "https://shouhu.example.cn", "K7M2-QX9P", Some(fingerprint), "laptop-1").await?;
//! let cancel = CancelToken::new(); // a clone goes to the Cancel button
//! let report = sync(store, &SyncOptions::default(), &mut |p| println!("{p:?}"), &cancel).await?;
//! println!("sent {}, received {}", report.pushed, report.pulled);
//! # Ok(()) }
//! ```
//!
//! The server is trusted by the SHA-256 fingerprint of its certificate,
//! pinned at enrollment (`shouhu-tls`), never by root certificates: a county
//! server's certificate is normally self-signed. A different certificate
//! later is `sync.certificate_mismatch` and nothing is sent. Plain `http://`
//! is accepted only on loopback (tests).
//!
//! Failures are [`SyncError`]s with stable codes and zh-CN/en messages.
//! Transient ones (no connection, dropped connection, timeout, 5xx, 429) are
//! retried per request with exponential backoff and jitter; a sync that
//! still fails loses nothing, and the next one resumes where it stopped:
//! acknowledged entries are not sent again and the pull cursor moves only
//! with an applied page.
//!
//! # Layout
//! - `engine`: [`enroll`], [`sync`] and [`status`]: the push loop (batches
//!   from the outbox, acknowledgement, resending from the server's
//!   `applied_through`, taking a new device id after `sync.sequence_reused`)
//!   and the pull loop (pages applied with their cursor in one transaction).
//!   The only module that touches the store.
//! - `transport`: HTTP: one client per run with the pinned certificate,
//!   headers, gzip both ways, byte counting, error answers to [`SyncError`],
//!   retries with backoff, cancellation of a request in flight. The only
//!   module that sends requests.
//! - `accounts`: after push and pull, the audit upload (`POST /v1/audit`,
//!   batches, the store's `audit_sent_through` cursor moved by the answer)
//!   and the users of the device's scope (`GET /v1/users`, returned in
//!   [`SyncReport::users`] for the app's keyring).
//! - `scope`: the device's current scope (`GET /v1/device`, each sync),
//!   kept in the store, a school that joined pulled from the start, and the
//!   removal of each school that left ([`SyncReport::schools_removed`]) once
//!   none of this device's changes for it wait to be sent
//!   ([`SyncReport::schools_kept`] otherwise).
//! - `backoff`: the retry wait (exponential, jittered, `Retry-After` floor),
//!   pure so it is tested alone.
//! - `wire`: [`ChangeEntry`](shouhu_store::ChangeEntry) ⇄ protocol
//!   [`Change`](shouhu_protocol::Change) / `ServerChange`.
//! - `options`: [`SyncOptions`] (batch sizes, retries, timeouts) and
//!   [`CancelToken`].
//! - `progress`: [`SyncProgress`] during a sync and [`SyncReport`] after it.
//! - `error`: [`SyncError`].

mod accounts;
mod backoff;
mod engine;
mod error;
mod options;
mod progress;
mod scope;
mod transport;
mod wire;

pub use engine::{
    enroll, enroll_with, register_reader_key, send_password_change, status, sync, sync_reporting,
    SyncStatus, SETTING_CREDENTIAL, SETTING_DEVICE_NAME, SETTING_LAST_SYNC, SETTING_SERVER_CERT,
    SETTING_SERVER_URL,
};
pub use error::SyncError;
pub use options::{CancelToken, SyncOptions};
pub use progress::{RetryNotice, SyncPhase, SyncProgress, SyncReport};
pub use scope::{stored_scope, KeptSchool, SETTING_DEVICE_SCOPE};
pub use shouhu_core::Lang;
pub use shouhu_protocol::{
    EnrollResponse, PasswordChangeRequest, Scope, UserRecord, UserScope, PROTOCOL_VERSION,
};
pub use shouhu_store::SchoolPurge;
pub use wire::{from_wire, into_wire, to_wire};

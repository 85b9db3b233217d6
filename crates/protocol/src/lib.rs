//! # shouhu-protocol
//!
//! The sync wire format between a device and the county server, version 1.
//! Every body is JSON (gzip on the wire when both sides agree through the
//! usual `Content-Encoding` / `Accept-Encoding` headers).
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET | `/v1/health` | → [`Health`] |
//! | POST | `/v1/enroll` | [`EnrollRequest`] → [`EnrollResponse`] |
//! | POST | `/v1/push` | [`PushRequest`] → [`PushResponse`] |
//! | GET | `/v1/pull?after=N&limit=M` | → [`PullResponse`] |
//!
//! Push and pull carry `Authorization: Bearer <credential>` (from enrollment)
//! and `Shouhu-Protocol: 1`. Every error is an [`ErrorBody`]
//! `{code, message, details}` with a 4xx/5xx status.
//!
//! # Layout
//! One module: these types are the contract, and keeping them in one place
//! (used by both sides) means the two cannot drift apart.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shouhu_core::{EntityKind, Op};
use uuid::Uuid;

pub use shouhu_core::ErrorBody;

pub const PROTOCOL_VERSION: u32 = 1;
pub const PROTOCOL_HEADER: &str = "shouhu-protocol";

/// Largest push batch the server accepts (entries).
pub const MAX_PUSH_CHANGES: usize = 2_000;
/// Largest pull page the server serves (entries).
pub const MAX_PULL_LIMIT: usize = 5_000;

/// One change as a device sends it: a change-log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The device's gapless sequence number (from 1).
    pub seq: i64,
    pub change_id: Uuid,
    /// Hybrid logical clock of the device (informative: the server orders).
    pub hlc: u64,
    pub entity: EntityKind,
    pub record_id: Uuid,
    pub school_id: Option<Uuid>,
    pub op: Op,
    /// Create: the whole body. Update: dotted path → new value. Delete:
    /// `{"reason": …}`.
    pub fields: Value,
    /// The record version (server sequence) the edit was based on.
    pub base_version: i64,
    pub user_id: Uuid,
    /// Set when this change resolves a conflict record: it then wins like any
    /// later edit and never opens a new conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolves: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    pub protocol: u32,
    /// In sequence order, starting at most one past what the server has.
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    /// The highest sequence of this device the server holds: the device may
    /// drop its outbox up to here and resend from the next one.
    pub applied_through: i64,
    /// How many of this batch were new (the rest were already applied).
    pub applied: usize,
    /// Conflict records the batch opened.
    pub conflicts: usize,
    /// The server's sequence after the batch.
    pub server_seq: i64,
}

/// One change as the server serves it: numbered by the one server-wide
/// sequence, with its origin device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerChange {
    pub server_seq: i64,
    pub device_id: Uuid,
    #[serde(flatten)]
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    pub changes: Vec<ServerChange>,
    /// The cursor to ask from next (the last server_seq examined, which may
    /// be past the last change served when changes out of scope were skipped).
    pub next_after: i64,
    /// The server's latest sequence: `next_after == head` means up to date.
    pub head: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub protocol: u32,
    /// The one-time code an admin gave out (`shouhu-server enroll`).
    pub code: String,
    /// The device's own id (from its store).
    pub device_id: Uuid,
    /// A name for admins' lists (e.g. the laptop's host name).
    pub name: String,
}

/// What a device may hold and send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The schools whose records the device holds.
    pub schools: Vec<Uuid>,
    /// Whether psychological notes reach this device.
    pub notes: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device_id: Uuid,
    /// Secret for `Authorization: Bearer`; the server keeps only its hash.
    pub credential: String,
    pub scope: Scope,
    pub server_id: Uuid,
}

/// `POST /v1/device/rotate`: this credential's device now goes by a new id
/// (its database was restored from a backup and must not reuse sequence
/// numbers). Repeating it is harmless.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RotateRequest {
    pub protocol: u32,
    pub new_device_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub protocol: u32,
    pub version: String,
    pub server_id: Uuid,
    pub head: i64,
}

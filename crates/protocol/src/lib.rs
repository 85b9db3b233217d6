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
//! | GET | `/v1/users` | → [`UsersResponse`] |
//! | POST | `/v1/users/{id}/reader-key` | [`ReaderKeyRequest`] → [`UserRecord`] |
//! | POST | `/v1/users/{id}/password` | [`PasswordChangeRequest`] → [`UserRecord`] |
//! | POST | `/v1/audit` | [`AuditUpload`] → [`AuditUploadResponse`] |
//! | GET | `/v1/device` | → [`DeviceResponse`] |
//!
//! `GET /v1/device` (added after the first release; an older server answers
//! `request.not_found`) tells a device its **current scope**, which a county
//! admin may change after enrollment (`shouhu-server device set-scope`), and
//! the schools that have left it ([`LeftSchool`]). A device asks it at the
//! start of every sync, keeps the scope for the app to show, and removes its
//! local copy of a school that left once nothing of that school is waiting
//! in its outbox. The server still takes a pushed change for a school that
//! left the scope if it was made (HLC time) before the school left; a later
//! one is `sync.out_of_scope`.
//!
//! Push, pull, users, device and audit carry `Authorization: Bearer <credential>` (from enrollment)
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

/// A [`PushRequest`] as the server reads it: each change's `fields` kept as
/// the JSON text it came as ([`ChangeRaw`]), so that a create can be logged
/// and stored without being parsed into values and written out again.
#[derive(Debug, Deserialize)]
pub struct PushRequestRaw {
    pub protocol: u32,
    pub changes: Vec<ChangeRaw>,
}

/// A [`Change`] with its `fields` as JSON text.
#[derive(Debug, Deserialize)]
pub struct ChangeRaw {
    pub seq: i64,
    pub change_id: Uuid,
    pub hlc: u64,
    pub entity: EntityKind,
    pub record_id: Uuid,
    pub school_id: Option<Uuid>,
    pub op: Op,
    pub fields: Box<serde_json::value::RawValue>,
    pub base_version: i64,
    pub user_id: Uuid,
    #[serde(default)]
    pub resolves: Option<Uuid>,
}

impl ChangeRaw {
    /// Everything but the fields (`Value::Null` in their place).
    pub fn head(&self) -> Change {
        Change {
            seq: self.seq,
            change_id: self.change_id,
            hlc: self.hlc,
            entity: self.entity,
            record_id: self.record_id,
            school_id: self.school_id,
            op: self.op,
            fields: Value::Null,
            base_version: self.base_version,
            user_id: self.user_id,
            resolves: self.resolves,
        }
    }
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
///
/// On the wire it is one flat object: `server_seq`, `device_id`, then the
/// fields of [`Change`] (see [`ServerChangeWire`]). It is (de)serialised
/// through that flat form rather than `#[serde(flatten)]`, which buffers
/// every field of every change before building it (a large share of a first
/// pull's decoding time).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerChange {
    pub server_seq: i64,
    pub device_id: Uuid,
    pub change: Change,
}

/// The wire form of a [`ServerChange`], generic over how `fields` is held:
/// the server serves the stored JSON text as it is (`F` =
/// `serde_json::value::RawValue`), without parsing and re-serialising it.
#[derive(Debug, Serialize)]
pub struct ServerChangeWire<'a, F: ?Sized + Serialize> {
    pub server_seq: i64,
    pub device_id: Uuid,
    pub seq: i64,
    pub change_id: Uuid,
    pub hlc: u64,
    pub entity: EntityKind,
    pub record_id: Uuid,
    pub school_id: Option<Uuid>,
    pub op: Op,
    pub fields: &'a F,
    pub base_version: i64,
    pub user_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolves: Option<Uuid>,
}

impl Serialize for ServerChange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = &self.change;
        ServerChangeWire {
            server_seq: self.server_seq,
            device_id: self.device_id,
            seq: c.seq,
            change_id: c.change_id,
            hlc: c.hlc,
            entity: c.entity,
            record_id: c.record_id,
            school_id: c.school_id,
            op: c.op,
            fields: &c.fields,
            base_version: c.base_version,
            user_id: c.user_id,
            resolves: c.resolves,
        }
        .serialize(s)
    }
}

/// What a [`ServerChange`] is read from (the flat wire form).
#[derive(Deserialize)]
struct ServerChangeIn {
    server_seq: i64,
    device_id: Uuid,
    seq: i64,
    change_id: Uuid,
    hlc: u64,
    entity: EntityKind,
    record_id: Uuid,
    school_id: Option<Uuid>,
    op: Op,
    fields: Value,
    base_version: i64,
    user_id: Uuid,
    #[serde(default)]
    resolves: Option<Uuid>,
}

impl<'de> Deserialize<'de> for ServerChange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = ServerChangeIn::deserialize(d)?;
        Ok(ServerChange {
            server_seq: w.server_seq,
            device_id: w.device_id,
            change: Change {
                seq: w.seq,
                change_id: w.change_id,
                hlc: w.hlc,
                entity: w.entity,
                record_id: w.record_id,
                school_id: w.school_id,
                op: w.op,
                fields: w.fields,
                base_version: w.base_version,
                user_id: w.user_id,
                resolves: w.resolves,
            },
        })
    }
}

/// A [`PullResponse`] as the server writes it, with [`ServerChangeWire`]
/// changes (the same JSON).
#[derive(Debug, Serialize)]
pub struct PullResponseWire<'a, F: ?Sized + Serialize> {
    pub changes: Vec<ServerChangeWire<'a, F>>,
    pub next_after: i64,
    pub head: i64,
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
    /// Whether changes by users the server does not know are accepted (a
    /// county migrating laptops whose local accounts predate the server's).
    /// Known users are still held to their roles.
    #[serde(default)]
    pub local_users: bool,
}

/// A school that has left a device's scope (`GET /v1/device`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftSchool {
    pub school_id: Uuid,
    /// When it left (RFC 3339, UTC, milliseconds): changes the device made
    /// before this instant are still accepted.
    pub left_at: String,
}

/// `GET /v1/device`: this device as the server knows it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceResponse {
    pub device_id: Uuid,
    /// The current scope: what the device may hold, pull and push.
    pub scope: Scope,
    /// When the scope last changed after enrollment (RFC 3339, UTC), if it
    /// ever did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_changed_at: Option<String>,
    /// Schools that were in this device's scope and are not any more (a
    /// school added back is not listed). The device removes its copy of
    /// them once its own pending changes for them are pushed.
    #[serde(default)]
    pub left_schools: Vec<LeftSchool>,
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

/// Where a server user works. A school user's township is given too (name
/// and the id derived from it, [`UserScope::township_id`]), so a device can
/// build the user's permission scope without the school table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UserScope {
    School {
        school_id: Uuid,
        township: String,
        township_id: Uuid,
    },
    Township {
        township: String,
        township_id: Uuid,
    },
    County,
}

/// A server account as it syncs down to the devices whose scope it concerns
/// (`GET /v1/users`). Removed users come too (with `removed_at`), so devices
/// stop letting them log in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: Uuid,
    /// Normalised lower-case.
    pub login_name: String,
    pub display_name: String,
    /// `shouhu_auth::Role::as_str` (`teacher`, `counselor`, …).
    pub role: String,
    pub scope: UserScope,
    /// Argon2id PHC string: the device verifies log-ins offline.
    pub password_hash: String,
    pub must_change_password: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub password_changed_at: String,
    pub removed_at: Option<String>,
    /// X25519 public key (base64, 32 bytes) of a note reader (counselors,
    /// psychology supervisors), once a device registered it: the first of
    /// [`UserRecord::reader_public_keys`], kept for devices that know only
    /// one key per reader.
    pub reader_public_key: Option<String>,
    /// Every note-reader public key of the user (base64), one per device
    /// that registered one (a counselor with two laptops has two), oldest
    /// first; keys of revoked devices are left out. A note is sealed for
    /// each. Empty from servers before reader key sets (then
    /// `reader_public_key` is the one key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reader_public_keys: Vec<String>,
    /// The user's **log-in key**, made by the server at `user add` and
    /// `reset-password`: an X25519 public key (base64, 32 bytes). A device
    /// seals its data key to it so the user's first log-in there works
    /// offline with the initial password. Absent for users from before
    /// (server schema 2) until their next reset, and from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_public_key: Option<String>,
    /// The log-in key's secret sealed with the initial password
    /// (`shouhu_auth::keys::seal_with_password`, base64). Never a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_secret_sealed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsersResponse {
    pub users: Vec<UserRecord>,
}

/// `POST /v1/users/{id}/reader-key`: the reader public key a device made
/// for a counselor or supervisor logging in on it. The server keeps one key
/// per (user, device): the same key again is harmless, another key from the
/// same device replaces that device's, a key from another device is added
/// to the user's set. (Servers before key sets kept one key per user and
/// refused another with `user.reader_key_exists`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderKeyRequest {
    pub protocol: u32,
    /// Base64 of 32 bytes.
    pub public_key: String,
}

/// `POST /v1/users/{id}/password`: a password the user changed on a device,
/// for the server and the user's other devices. The log-in key pair stays;
/// its secret comes re-sealed with the new password. `proof` is
/// `shouhu_auth::credential::proof` with the key derived from the log-in
/// secret: only someone who opened it with the old password can make it.
/// The server takes the change only if its credential is still `based_on`
/// (`user.password_stale` otherwise: the server's newer credential, an
/// administrator's reset or another device's change, stays).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordChangeRequest {
    pub protocol: u32,
    /// The server's `password_changed_at` of the credential this replaces.
    pub based_on: String,
    /// The new Argon2id PHC hash.
    pub password_hash: String,
    /// The log-in secret sealed with the new password (base64).
    pub login_secret_sealed: String,
    /// Base64 HMAC-SHA256 (`shouhu_auth::credential`).
    pub proof: String,
}

/// One audit entry as a device uploads it (the store's `audit_log` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: Uuid,
    /// RFC 3339, UTC.
    pub at: String,
    pub device_id: Uuid,
    pub user_id: Uuid,
    /// `login`, `view_child`, `export`, …
    pub action: String,
    pub entity: Option<String>,
    pub record_id: Option<Uuid>,
    pub school_id: Option<Uuid>,
    #[serde(default)]
    pub details: Value,
}

/// `POST /v1/audit`: idempotent by entry id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditUpload {
    pub protocol: u32,
    pub entries: Vec<AuditRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditUploadResponse {
    /// Entries new to the server.
    pub stored: usize,
    /// Entries it already held (a resend).
    pub duplicates: usize,
    /// New entries stored but flagged (their user or school is outside this
    /// device's scope).
    pub flagged: usize,
}

/// Largest audit upload the server accepts (entries).
pub const MAX_AUDIT_ENTRIES: usize = 1_000;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(resolves: Option<Uuid>) -> ServerChange {
        ServerChange {
            server_seq: 42,
            device_id: Uuid::from_u128(1),
            change: Change {
                seq: 7,
                change_id: Uuid::from_u128(2),
                hlc: 99 << 16,
                entity: EntityKind::Child,
                record_id: Uuid::from_u128(3),
                school_id: Some(Uuid::from_u128(4)),
                op: Op::Update,
                fields: json!({"name": "张三", "father.phone": null}),
                base_version: 12,
                user_id: Uuid::from_u128(5),
                resolves,
            },
        }
    }

    #[test]
    fn a_server_change_is_one_flat_object() -> Result<(), serde_json::Error> {
        for resolves in [None, Some(Uuid::from_u128(6))] {
            let c = sample(resolves);
            let v = serde_json::to_value(&c)?;
            let mut want = json!({
                "server_seq": 42,
                "device_id": Uuid::from_u128(1),
                "seq": 7,
                "change_id": Uuid::from_u128(2),
                "hlc": 99u64 << 16,
                "entity": "child",
                "record_id": Uuid::from_u128(3),
                "school_id": Uuid::from_u128(4),
                "op": "update",
                "fields": {"name": "张三", "father.phone": null},
                "base_version": 12,
                "user_id": Uuid::from_u128(5),
            });
            if let (Some(r), Some(m)) = (resolves, want.as_object_mut()) {
                m.insert("resolves".into(), json!(r));
            }
            assert_eq!(v, want);
            let back: ServerChange = serde_json::from_value(v)?;
            assert_eq!(back, c);
        }
        Ok(())
    }

    #[test]
    fn a_scope_from_before_local_users_reads_as_false() -> Result<(), serde_json::Error> {
        let old: Scope =
            serde_json::from_value(json!({"schools": [Uuid::from_u128(1)], "notes": true}))?;
        assert!(!old.local_users);
        let s = Scope {
            local_users: true,
            ..old
        };
        assert_eq!(serde_json::to_value(&s)?["local_users"], json!(true));
        Ok(())
    }

    #[test]
    fn a_device_response_without_history_reads() -> Result<(), serde_json::Error> {
        let d: DeviceResponse = serde_json::from_value(json!({
            "device_id": Uuid::from_u128(1),
            "scope": {"schools": [Uuid::from_u128(2)], "notes": false},
        }))?;
        assert!(d.left_schools.is_empty());
        assert_eq!(d.scope_changed_at, None);
        let v = serde_json::to_value(&d)?;
        assert!(v.get("scope_changed_at").is_none());
        assert_eq!(v["left_schools"], json!([]));
        Ok(())
    }

    #[test]
    fn a_user_scope_is_tagged_by_kind() -> Result<(), serde_json::Error> {
        let s = UserScope::School {
            school_id: Uuid::from_u128(1),
            township: "八步街道".into(),
            township_id: Uuid::from_u128(2),
        };
        let v = serde_json::to_value(&s)?;
        assert_eq!(v["kind"], "school");
        assert_eq!(serde_json::from_value::<UserScope>(v)?, s);
        assert_eq!(
            serde_json::to_value(UserScope::County)?,
            json!({"kind": "county"})
        );
        Ok(())
    }

    #[test]
    fn a_raw_push_reads_the_same_change() -> Result<(), serde_json::Error> {
        let c = sample(Some(Uuid::from_u128(6))).change;
        let req = PushRequest {
            protocol: 1,
            changes: vec![c.clone()],
        };
        let raw: PushRequestRaw = serde_json::from_slice(&serde_json::to_vec(&req)?)?;
        let mut back = raw.changes[0].head();
        back.fields = serde_json::from_str(raw.changes[0].fields.get())?;
        assert_eq!(back, c);
        Ok(())
    }

    #[test]
    fn raw_fields_serialise_like_parsed_ones() -> Result<(), serde_json::Error> {
        let c = sample(None);
        let text = serde_json::to_string(&c.change.fields)?;
        let raw = serde_json::value::RawValue::from_string(text)?;
        let wire = PullResponseWire {
            changes: vec![ServerChangeWire {
                server_seq: c.server_seq,
                device_id: c.device_id,
                seq: c.change.seq,
                change_id: c.change.change_id,
                hlc: c.change.hlc,
                entity: c.change.entity,
                record_id: c.change.record_id,
                school_id: c.change.school_id,
                op: c.change.op,
                fields: raw.as_ref(),
                base_version: c.change.base_version,
                user_id: c.change.user_id,
                resolves: None,
            }],
            next_after: 42,
            head: 50,
        };
        let parsed = PullResponse {
            changes: vec![c],
            next_after: 42,
            head: 50,
        };
        assert_eq!(
            serde_json::to_string(&wire)?,
            serde_json::to_string(&parsed)?
        );
        let back: PullResponse = serde_json::from_slice(&serde_json::to_vec(&wire)?)?;
        assert_eq!(back, parsed);
        Ok(())
    }
}

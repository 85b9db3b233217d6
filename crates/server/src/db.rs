//! The server's SQLite database: schools, enrollment codes, devices, the
//! server-wide change log and the merged state of every record.
//!
//! Push applies a device's changes in its sequence order, each in the same
//! transaction as the device's new high-water mark, so a crash mid-batch
//! leaves a prefix applied and the device resends the rest. Each applied
//! change gets the next number of the one server sequence (`changes.server_seq`);
//! conflicts the merge finds become conflict records, themselves changes in
//! that sequence, so they reach every device in scope.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shouhu_auth::Action;
use shouhu_core::hlc::now_ms;
use shouhu_core::merge::{self, Incoming, RecordState};
use shouhu_core::{ChangeStamp, Conflict, ConflictStatus, EntityKind, Op};
use shouhu_protocol::{
    Change, ChangeRaw, EnrollResponse, PullResponse, PullResponseWire, PushResponse, Scope,
    ServerChange, ServerChangeWire, MAX_PULL_LIMIT,
};
use uuid::Uuid;

use crate::error::ApiError;

/// Migration 1: the tables of the first server (created if missing, so a
/// database made before numbered migrations, `user_version` 0, counts as
/// version 1 once this has run).
const SCHEMA_V1: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS school (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, county TEXT NOT NULL, township TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS enrollment (
    code_hash TEXT PRIMARY KEY, scope TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, used_at TEXT, device_id TEXT
);
CREATE TABLE IF NOT EXISTS device (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL, credential_hash TEXT NOT NULL,
    enrolled_at TEXT NOT NULL, revoked_at TEXT, last_seq INTEGER NOT NULL DEFAULT 0,
    last_seen TEXT, successor TEXT
);
CREATE INDEX IF NOT EXISTS device_credential ON device (credential_hash);
CREATE TABLE IF NOT EXISTS changes (
    server_seq INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL, seq INTEGER NOT NULL, change_id TEXT NOT NULL,
    hlc INTEGER NOT NULL, entity TEXT NOT NULL, record_id TEXT NOT NULL, school_id TEXT,
    op TEXT NOT NULL, fields TEXT NOT NULL, base_version INTEGER NOT NULL, user_id TEXT NOT NULL,
    resolves TEXT, received_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS changes_device_seq ON changes (device_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS changes_change_id ON changes (change_id);
CREATE INDEX IF NOT EXISTS changes_school ON changes (school_id, server_seq);
CREATE TABLE IF NOT EXISTS record (
    id TEXT PRIMARY KEY, entity TEXT NOT NULL, school_id TEXT, state TEXT NOT NULL
);
"#;

/// Migration 2: server accounts and the county audit log. Audit rows are
/// append-only: the triggers refuse UPDATE and DELETE even through raw SQL.
/// And `changes.notes`: a change only devices holding notes may pull (a
/// psychological note, or a conflict record about one and its resolution,
/// which carry note values).
const SCHEMA_V2: &str = r#"
CREATE TABLE user (
    id TEXT PRIMARY KEY,
    login_name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    scope_kind TEXT NOT NULL CHECK (scope_kind IN ('school', 'township', 'county')),
    school_id TEXT REFERENCES school (id),
    township TEXT,
    password_hash TEXT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 1,
    reader_public_key TEXT,
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    removed_at TEXT
);
CREATE INDEX user_school ON user (school_id);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    entry_id TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    user_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target_kind TEXT,
    target_id TEXT,
    school_id TEXT,
    at TEXT NOT NULL,
    details TEXT NOT NULL,
    received_at TEXT NOT NULL,
    flag TEXT
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_user ON audit (user_id, at);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
ALTER TABLE changes ADD COLUMN notes INTEGER NOT NULL DEFAULT 0;
UPDATE changes SET notes = 1
WHERE entity = 'psych_note'
   OR (entity = 'conflict' AND record_id IN (
        SELECT id FROM record
        WHERE entity = 'conflict' AND json_extract(state, '$.body.entity') = 'psych_note'));
"#;

/// Migration 3: each user's log-in key (made at `user add` and
/// `reset-password`): the X25519 public key and its secret sealed with the
/// initial password, both base64. Users from before have none until their
/// next reset.
const SCHEMA_V3: &str = r#"
ALTER TABLE user ADD COLUMN login_public_key TEXT;
ALTER TABLE user ADD COLUMN login_secret_sealed TEXT;
"#;

/// Migration 4: a set of note-reader keys per user, one per device that
/// registered one (a counselor with two laptops has two). The single key of
/// before moves over with no device (`device_id` NULL); the old column stays,
/// unused.
const SCHEMA_V4: &str = r#"
CREATE TABLE reader_key (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES user (id),
    device_id TEXT,
    public_key TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    UNIQUE (user_id, device_id),
    UNIQUE (user_id, public_key)
);
INSERT INTO reader_key (user_id, device_id, public_key, registered_at)
SELECT id, NULL, reader_public_key, password_changed_at FROM user
WHERE reader_public_key IS NOT NULL;
UPDATE user SET reader_public_key = NULL;
"#;

/// Migration 5: the key that checks a password change made on a device
/// (`shouhu_auth::credential`, base64), made with each log-in key from now
/// on. Users whose log-in key is older have none until their next reset.
const SCHEMA_V5: &str = r#"
ALTER TABLE user ADD COLUMN password_change_key TEXT;
"#;

/// Migration 6: each device's scope history (`shouhu-server device
/// set-scope`): one row per change, with the instant and the scope before and
/// after (JSON). A pushed change for a school that left the scope is still
/// accepted if it was made before the instant it left (`crate::scope`).
const SCHEMA_V6: &str = r#"
CREATE TABLE device_scope_change (
    seq INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    at TEXT NOT NULL,
    scope_before TEXT NOT NULL,
    scope_after TEXT NOT NULL
);
CREATE INDEX device_scope_change_device ON device_scope_change (device_id, seq);
"#;

/// Migration 7: the change log is append-only like the audit log (the
/// county audit view lists every edit from it, `shouhu-server audit`):
/// triggers refuse UPDATE and DELETE even through raw SQL (as for `audit`,
/// a raw `INSERT OR REPLACE` over an existing row is not caught: no code
/// writes one, and a trigger checking every insert cost the first push of a
/// county too much). A later migration that must rewrite rows drops and
/// re-creates the triggers in its own transaction. And one index the audit
/// view reads edits by: a record's history (by device: `changes_device_seq`).
/// Listings by user or by time scan the table (a county's 300,000 edits in
/// well under a second); indexes for them were measured at +7% CPU on a
/// county's first push, whose 10 s goal they would have put out of reach.
const SCHEMA_V7: &str = r#"
CREATE INDEX changes_record ON changes (record_id, hlc);
CREATE TRIGGER changes_no_update BEFORE UPDATE ON changes
BEGIN SELECT RAISE(ABORT, 'the change log is append-only'); END;
CREATE TRIGGER changes_no_delete BEFORE DELETE ON changes
BEGIN SELECT RAISE(ABORT, 'the change log is append-only'); END;
"#;

/// The migrations, in order: number `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: [&str; 7] = [
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7,
];

/// The schema version this server writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the database to [`SCHEMA_VERSION`], each migration in its own
/// transaction with its version number. A database from a newer server is
/// refused rather than written by older code.
fn migrate(conn: &mut Connection) -> Result<(), ApiError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(ApiError::Internal(format!(
            "the database has schema version {version}, newer than this server's {SCHEMA_VERSION}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// A device as the server knows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceInfo {
    pub id: Uuid,
    pub name: String,
    pub scope: Scope,
    pub enrolled_at: String,
    pub revoked_at: Option<String>,
    pub last_seq: i64,
    pub last_seen: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SchoolInfo {
    pub id: Uuid,
    pub name: String,
    pub county: String,
    pub township: String,
}

pub struct ServerDb {
    pub(crate) conn: Connection,
    server_id: Uuid,
}

pub(crate) fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn hash_secret(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn random_secret(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// Codes are read aloud and typed: no 0/O, 1/I/L.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const TOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

pub(crate) fn uuid(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|e| ApiError::Internal(format!("bad uuid in database: {e}")))
}

impl ServerDb {
    /// Open (creating) the database in `dir/shouhu-server.db`.
    pub fn open(dir: &Path) -> Result<ServerDb, ApiError> {
        std::fs::create_dir_all(dir).map_err(|e| ApiError::Internal(e.to_string()))?;
        Self::setup(Connection::open(dir.join("shouhu-server.db"))?)
    }

    pub fn open_in_memory() -> Result<ServerDb, ApiError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<ServerDb, ApiError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // 64 MiB of page cache (SQLite's default is 2 MiB): a county's record
        // and change tables are read back page by page while a first push is
        // merged and a first pull served; with the default most of those
        // reads went to the kernel.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn)?;
        let id: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'server_id'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let server_id = match id {
            Some(s) => uuid(&s)?,
            None => {
                let id = Uuid::now_v7();
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('server_id', ?1)",
                    [id.to_string()],
                )?;
                id
            }
        };
        Ok(ServerDb { conn, server_id })
    }

    pub fn server_id(&self) -> Uuid {
        self.server_id
    }

    pub fn head(&self) -> Result<i64, ApiError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(server_seq), 0) FROM changes",
            [],
            |r| r.get(0),
        )?)
    }

    // ------------------------------------------------------------ admin

    pub fn add_school(
        &mut self,
        id: Option<Uuid>,
        name: &str,
        county: &str,
        township: &str,
    ) -> Result<Uuid, ApiError> {
        let name = name.trim();
        let township = township.trim();
        if name.is_empty() || township.is_empty() {
            return Err(ApiError::BadRequest(
                "a school needs a name and a township".into(),
            ));
        }
        let id = id.unwrap_or_else(Uuid::now_v7);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO school (id, name, county, township, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id.to_string(), name, county.trim(), township, now_text()],
        )
        .map_err(|e| ApiError::BadRequest(format!("cannot add school: {e}")))?;
        // The school record itself syncs down to devices in its scope.
        let body = json!({ "name": name, "code": "", "county": county.trim(), "township": township, "village": "", "phone": null });
        let change = Change {
            seq: 0,
            change_id: Uuid::now_v7(),
            hlc: now_ms() << 16,
            entity: EntityKind::School,
            record_id: id,
            school_id: Some(id),
            op: Op::Create,
            fields: body,
            base_version: 0,
            user_id: self.server_id,
            resolves: None,
        };
        let server_id = self.server_id;
        let seq = next_server_seq(&tx, server_id)?;
        apply_one(
            &tx,
            server_id,
            server_id,
            &change,
            Fields::Parsed(&change.fields),
            change.school_id,
            Some(seq),
            &now_text(),
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Register a school whose record the devices already hold (a county
    /// migrating existing laptops): it becomes a scope for enrollment, and its
    /// record reaches the server with the first device's push.
    pub fn register_existing_school(
        &mut self,
        id: Uuid,
        name: &str,
        county: &str,
        township: &str,
    ) -> Result<(), ApiError> {
        self.conn
            .execute(
                "INSERT INTO school (id, name, county, township, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id.to_string(), name.trim(), county.trim(), township.trim(), now_text()],
            )
            .map_err(|e| ApiError::BadRequest(format!("cannot add school: {e}")))?;
        Ok(())
    }

    pub fn schools(&self) -> Result<Vec<SchoolInfo>, ApiError> {
        let mut st = self
            .conn
            .prepare("SELECT id, name, county, township FROM school ORDER BY township, name")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (id, name, county, township) = r?;
            out.push(SchoolInfo {
                id: uuid(&id)?,
                name,
                county,
                township,
            });
        }
        Ok(out)
    }

    /// The schools of a township (for a township office's device).
    pub fn township_schools(&self, township: &str) -> Result<Vec<Uuid>, ApiError> {
        Ok(self
            .schools()?
            .into_iter()
            .filter(|s| s.township == township)
            .map(|s| s.id)
            .collect())
    }

    /// Make a one-time enrollment code for a device with this scope.
    pub fn create_enrollment(&mut self, scope: &Scope, ttl_hours: i64) -> Result<String, ApiError> {
        if scope.schools.is_empty() {
            return Err(ApiError::BadRequest(
                "a device needs at least one school".into(),
            ));
        }
        for s in &scope.schools {
            let known: Option<i64> = self
                .conn
                .query_row("SELECT 1 FROM school WHERE id = ?1", [s.to_string()], |r| {
                    r.get(0)
                })
                .optional()?;
            if known.is_none() {
                return Err(ApiError::BadRequest(format!("unknown school {s}")));
            }
        }
        let code = random_secret(10, CODE_ALPHABET);
        let expires = chrono::Utc::now() + chrono::Duration::hours(ttl_hours.max(1));
        self.conn.execute(
            "INSERT INTO enrollment (code_hash, scope, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                hash_secret(&code),
                serde_json::to_string(scope)?,
                now_text(),
                expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ],
        )?;
        Ok(code)
    }

    /// Exchange a one-time code for a device credential.
    pub fn enroll(
        &mut self,
        code: &str,
        device_id: Uuid,
        name: &str,
    ) -> Result<EnrollResponse, ApiError> {
        let code = code.trim().to_uppercase().replace([' ', '-'], "");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, String, Option<String>)> = tx
            .query_row(
                "SELECT scope, expires_at, used_at FROM enrollment WHERE code_hash = ?1",
                [hash_secret(&code)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((scope, expires, used)) = row else {
            return Err(ApiError::InvalidEnrollmentCode);
        };
        if expires < now_text() {
            return Err(ApiError::InvalidEnrollmentCode);
        }
        if used.is_some() {
            // The same device retrying after a lost answer gets a fresh
            // credential (the first one never reached it); anyone else is
            // refused: the code is spent.
            let by: Option<String> = tx.query_row(
                "SELECT device_id FROM enrollment WHERE code_hash = ?1",
                [hash_secret(&code)],
                |r| r.get(0),
            )?;
            if by.as_deref() != Some(device_id.to_string().as_str()) {
                return Err(ApiError::InvalidEnrollmentCode);
            }
            let credential = random_secret(43, TOKEN_ALPHABET);
            tx.execute(
                "UPDATE device SET credential_hash = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![device_id.to_string(), hash_secret(&credential)],
            )?;
            tx.commit()?;
            return Ok(EnrollResponse {
                device_id,
                credential,
                scope: serde_json::from_str(&scope)?,
                server_id: self.server_id,
            });
        }
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM device WHERE id = ?1",
                [device_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(ApiError::BadRequest(
                "this device id is already enrolled".into(),
            ));
        }
        let credential = random_secret(43, TOKEN_ALPHABET);
        tx.execute(
            "INSERT INTO device (id, name, scope, credential_hash, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![device_id.to_string(), name.trim(), scope, hash_secret(&credential), now_text()],
        )?;
        tx.execute(
            "UPDATE enrollment SET used_at = ?2, device_id = ?3 WHERE code_hash = ?1",
            params![hash_secret(&code), now_text(), device_id.to_string()],
        )?;
        tx.commit()?;
        Ok(EnrollResponse {
            device_id,
            credential,
            scope: serde_json::from_str(&scope)?,
            server_id: self.server_id,
        })
    }

    pub fn devices(&self) -> Result<Vec<DeviceInfo>, ApiError> {
        let mut st = self.conn.prepare(
            "SELECT id, name, scope, enrolled_at, revoked_at, last_seq, last_seen FROM device ORDER BY enrolled_at",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (id, name, scope, enrolled_at, revoked_at, last_seq, last_seen) = r?;
            out.push(DeviceInfo {
                id: uuid(&id)?,
                name,
                scope: serde_json::from_str(&scope)?,
                enrolled_at,
                revoked_at,
                last_seq,
                last_seen,
            });
        }
        Ok(out)
    }

    pub fn revoke(&mut self, device_id: Uuid) -> Result<bool, ApiError> {
        let n = self.conn.execute(
            "UPDATE device SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![device_id.to_string(), now_text()],
        )?;
        Ok(n > 0)
    }

    // ------------------------------------------------------------ auth

    /// The device a credential belongs to (its current id after rotations).
    pub fn authenticate(&mut self, credential: &str) -> Result<(Uuid, Scope), ApiError> {
        let row: Option<(String, String, Option<String>)> = self
            .conn
            .prepare_cached(
                "SELECT id, scope, revoked_at FROM device WHERE credential_hash = ?1 AND successor IS NULL",
            )?
            .query_row([hash_secret(credential)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((id, scope, revoked)) = row else {
            return Err(ApiError::InvalidCredential);
        };
        if revoked.is_some() {
            return Err(ApiError::Revoked);
        }
        self.conn
            .prepare_cached("UPDATE device SET last_seen = ?2 WHERE id = ?1")?
            .execute(params![id, now_text()])?;
        Ok((uuid(&id)?, serde_json::from_str(&scope)?))
    }

    /// A device took a new id (its database was restored or copied): the
    /// new id inherits the credential and scope, sequence from 1.
    pub fn rotate_device(&mut self, old: Uuid, new: Uuid) -> Result<(), ApiError> {
        if old == new {
            // A retry after a lost answer: already done.
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM device WHERE id = ?1",
                [new.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(ApiError::BadRequest(
                "the new device id is already known".into(),
            ));
        }
        tx.execute(
            "INSERT INTO device (id, name, scope, credential_hash, enrolled_at, revoked_at)
             SELECT ?2, name, scope, credential_hash, ?3, revoked_at FROM device WHERE id = ?1",
            params![old.to_string(), new.to_string(), now_text()],
        )?;
        tx.execute(
            "UPDATE device SET successor = ?2 WHERE id = ?1",
            params![old.to_string(), new.to_string()],
        )?;
        // The scope history goes with it: the moved pending entries keep
        // their clocks, and a school that left before still takes those
        // made before it left.
        crate::scope::copy_history(&tx, old, new)?;
        tx.commit()?;
        Ok(())
    }

    // ------------------------------------------------------------ push

    /// Apply a device's batch. Changes at or below the device's high-water
    /// mark are duplicates (skipped; a different change id there means the
    /// database reuses numbers); a change past `high + 1` stops the batch
    /// (the device resends from `applied_through + 1`). Nothing of a batch
    /// with an out-of-scope change is applied.
    pub fn push(
        &mut self,
        device_id: Uuid,
        scope: &Scope,
        changes: &[Change],
    ) -> Result<PushResponse, ApiError> {
        let items: Vec<_> = changes
            .iter()
            .map(|c| (c, Fields::Parsed(&c.fields)))
            .collect();
        self.push_items(device_id, scope, &items)
    }

    /// [`ServerDb::push`] of changes whose fields are still JSON text (as the
    /// HTTP layer reads them): a create of a new record is logged and stored
    /// without parsing its body; everything else is parsed and merged as in
    /// [`ServerDb::push`], with the same result.
    pub fn push_raw(
        &mut self,
        device_id: Uuid,
        scope: &Scope,
        changes: &[ChangeRaw],
    ) -> Result<PushResponse, ApiError> {
        let heads: Vec<Change> = changes.iter().map(ChangeRaw::head).collect();
        let items: Vec<_> = heads
            .iter()
            .zip(changes)
            .map(|(h, r)| (h, Fields::Raw(&r.fields)))
            .collect();
        self.push_items(device_id, scope, &items)
    }

    fn push_items(
        &mut self,
        device_id: Uuid,
        scope: &Scope,
        changes: &[(&Change, Fields<'_>)],
    ) -> Result<PushResponse, ApiError> {
        let server_id = self.server_id;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut high: i64 = tx.query_row(
            "SELECT last_seq FROM device WHERE id = ?1",
            [device_id.to_string()],
            |r| r.get(0),
        )?;
        // Scope first, then roles: all or nothing. A school that left the
        // scope still takes the changes made before it left.
        let left = crate::scope::left_ms(&tx, device_id)?;
        let mut schools = Vec::with_capacity(changes.len());
        for (c, _) in changes {
            schools.push(scoped(c, scope, &left)?);
        }
        let heads: Vec<&Change> = changes.iter().map(|(c, _)| *c).collect();
        let mut extra = Vec::with_capacity(changes.len());
        for (c, fields) in changes {
            extra.push(if c.seq <= high {
                None
            } else {
                check_content(c, *fields)?
            });
        }
        crate::accounts::check_roles(&tx, scope, &heads, &schools, &extra, high)?;
        let received_at = now_text();
        let device_text = device_id.to_string();
        let mut applied = 0;
        let mut conflicts = 0;
        for (&(c, fields), school) in changes.iter().zip(schools) {
            if c.seq <= high {
                let known: Option<String> = tx
                    .prepare_cached(
                        "SELECT change_id FROM changes WHERE device_id = ?1 AND seq = ?2",
                    )?
                    .query_row(params![device_text, c.seq], |r| r.get(0))
                    .optional()?;
                match known {
                    Some(id) if id == c.change_id.to_string() => continue,
                    // Acknowledged earlier as a duplicate of another device's
                    // change (a copied database): nothing stored under this seq.
                    None => continue,
                    Some(_) => return Err(ApiError::SequenceReused { seq: c.seq }),
                }
            }
            if c.seq != high + 1 {
                break;
            }
            high = c.seq;
            let dup: Option<i64> = tx
                .prepare_cached("SELECT 1 FROM changes WHERE change_id = ?1")?
                .query_row([c.change_id.to_string()], |r| r.get(0))
                .optional()?;
            if dup.is_none() {
                conflicts += apply_one(
                    &tx,
                    server_id,
                    device_id,
                    c,
                    fields,
                    Some(school),
                    None,
                    &received_at,
                )?;
                applied += 1;
            }
        }
        tx.prepare_cached("UPDATE device SET last_seq = ?2 WHERE id = ?1")?
            .execute(params![device_text, high])?;
        let head: i64 = tx.query_row(
            "SELECT COALESCE(MAX(server_seq), 0) FROM changes",
            [],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(PushResponse {
            applied_through: high,
            applied,
            conflicts,
            server_seq: head,
        })
    }

    // ------------------------------------------------------------ pull

    /// Changes after `after` in the device's scope, oldest first.
    pub fn pull(&self, scope: &Scope, after: i64, limit: usize) -> Result<PullResponse, ApiError> {
        let page = self.pull_rows(scope, after, limit)?;
        let mut changes = Vec::with_capacity(page.rows.len());
        for r in page.rows {
            let fields = serde_json::from_str(&r.fields)?;
            changes.push(r.into_change(fields)?);
        }
        Ok(PullResponse {
            changes,
            next_after: page.next_after,
            head: page.head,
        })
    }

    /// [`ServerDb::pull`] as the JSON body of the answer. The stored `fields`
    /// text goes out as it is (checked to be JSON, never parsed into values
    /// and written again): the same bytes as serialising the
    /// [`PullResponse`], for a fraction of the work.
    pub fn pull_json(&self, scope: &Scope, after: i64, limit: usize) -> Result<Vec<u8>, ApiError> {
        let mut page = self.pull_rows(scope, after, limit)?;
        let size: usize = page.rows.iter().map(|r| r.fields.len() + 400).sum();
        let mut raws = Vec::with_capacity(page.rows.len());
        for r in &mut page.rows {
            raws.push(RawValue::from_string(std::mem::take(&mut r.fields))?);
        }
        let mut changes = Vec::with_capacity(page.rows.len());
        for (r, raw) in page.rows.iter().zip(&raws) {
            changes.push(r.wire(raw.as_ref())?);
        }
        let mut out = Vec::with_capacity(size + 64);
        serde_json::to_writer(
            &mut out,
            &PullResponseWire {
                changes,
                next_after: page.next_after,
                head: page.head,
            },
        )?;
        Ok(out)
    }

    fn pull_rows(&self, scope: &Scope, after: i64, limit: usize) -> Result<PullRows, ApiError> {
        let limit = limit.clamp(1, MAX_PULL_LIMIT);
        let head = self.head()?;
        let schools: Vec<String> = scope.schools.iter().map(|s| s.to_string()).collect();
        let placeholders = vec!["?"; schools.len()].join(",");
        let notes = if scope.notes { "" } else { "AND notes = 0" };
        // One school: its index gives the changes in order. Several: that
        // index would yield every remaining change of each school, to be
        // sorted for each page (a first pull of a county grew quadratic), so
        // the log is read in its own order instead (`+school_id` keeps the
        // index out), over at most `SCAN_PER_PAGE × limit` numbers a page; a
        // page cut there ends at the last number examined, as the protocol
        // allows.
        let (school_term, upper) = if schools.len() == 1 {
            ("school_id", head)
        } else {
            let span = (limit as i64).saturating_mul(SCAN_PER_PAGE);
            ("+school_id", head.min(after.max(0).saturating_add(span)))
        };
        let sql = format!(
            "SELECT server_seq, device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, resolves
             FROM changes WHERE server_seq > ? AND server_seq <= ? AND {school_term} IN ({placeholders}) {notes}
             ORDER BY server_seq LIMIT ?"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(after), Box::new(upper)];
        for s in schools {
            args.push(Box::new(s));
        }
        args.push(Box::new(limit as i64));
        let rows = st.query_map(
            rusqlite::params_from_iter(args.iter().map(|b| b.as_ref())),
            |r| {
                Ok(PullRow {
                    server_seq: r.get(0)?,
                    device_id: r.get(1)?,
                    seq: r.get(2)?,
                    change_id: r.get(3)?,
                    hlc: r.get(4)?,
                    entity: r.get(5)?,
                    record_id: r.get(6)?,
                    school_id: r.get(7)?,
                    op: r.get(8)?,
                    fields: r.get(9)?,
                    base_version: r.get(10)?,
                    user_id: r.get(11)?,
                    resolves: r.get(12)?,
                })
            },
        )?;
        let rows = rows.collect::<Result<Vec<_>, _>>()?;
        let next_after = if rows.len() == limit {
            rows.last().map_or(upper, |c| c.server_seq)
        } else {
            upper
        };
        Ok(PullRows {
            rows,
            next_after,
            head,
        })
    }

    /// The merged state of a record (tests, admin tools).
    pub fn record(&self, id: Uuid) -> Result<Option<RecordState>, ApiError> {
        let s: Option<String> = self
            .conn
            .query_row(
                "SELECT state FROM record WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(s.map(|s| serde_json::from_str(&s)).transpose()?)
    }

    /// Every live record's id, entity and body (tests compare replicas).
    pub fn live_records(&self) -> Result<Vec<(Uuid, EntityKind, Value)>, ApiError> {
        let mut st = self
            .conn
            .prepare("SELECT id, entity, state FROM record ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (id, entity, state) = r?;
            let state: RecordState = serde_json::from_str(&state)?;
            if !state.deleted {
                let kind = EntityKind::parse(&entity)
                    .ok_or_else(|| ApiError::Internal("bad entity".into()))?;
                out.push((uuid(&id)?, kind, state.body));
            }
        }
        Ok(out)
    }

    /// Direct SQL access for tests and admin tools.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// A pull page of a device with several schools examines at most this many
/// log numbers per change it may serve.
const SCAN_PER_PAGE: i64 = 16;

/// One row of `changes` as read for a pull page.
struct PullRow {
    server_seq: i64,
    device_id: String,
    seq: i64,
    change_id: String,
    hlc: i64,
    entity: String,
    record_id: String,
    school_id: Option<String>,
    op: String,
    fields: String,
    base_version: i64,
    user_id: String,
    resolves: Option<String>,
}

struct PullRows {
    rows: Vec<PullRow>,
    next_after: i64,
    head: i64,
}

fn bad(what: &str) -> ApiError {
    ApiError::Internal(format!("bad {what} in the change log"))
}

impl PullRow {
    fn wire<'a, F: ?Sized + serde::Serialize>(
        &self,
        fields: &'a F,
    ) -> Result<ServerChangeWire<'a, F>, ApiError> {
        Ok(ServerChangeWire {
            server_seq: self.server_seq,
            device_id: uuid(&self.device_id)?,
            seq: self.seq,
            change_id: uuid(&self.change_id)?,
            hlc: self.hlc as u64,
            entity: EntityKind::parse(&self.entity).ok_or_else(|| bad("entity"))?,
            record_id: uuid(&self.record_id)?,
            school_id: self.school_id.as_deref().map(uuid).transpose()?,
            op: Op::parse(&self.op).ok_or_else(|| bad("op"))?,
            fields,
            base_version: self.base_version,
            user_id: uuid(&self.user_id)?,
            resolves: self.resolves.as_deref().map(uuid).transpose()?,
        })
    }

    fn into_change(self, fields: Value) -> Result<ServerChange, ApiError> {
        let w = self.wire(&())?;
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
                fields,
                base_version: w.base_version,
                user_id: w.user_id,
                resolves: w.resolves,
            },
        })
    }
}

/// Check a change against the device's scope; returns its school (a change
/// without a school takes the device's school when it has exactly one).
fn parsed_fields(f: Fields<'_>) -> Result<Cow<'_, Value>, ApiError> {
    Ok(match f {
        Fields::Parsed(v) => Cow::Borrowed(v),
        Fields::Raw(r) => Cow::Owned(serde_json::from_str(r.get())?),
    })
}

/// What a change's content asks beyond its entity's write right, or why it
/// is refused outright: a psychological note must arrive sealed (no note text
/// ever reaches the server in plain: `PsychNote::plaintext_in_change`), and a
/// change to a card's counseling flag needs the right to set it.
fn check_content(c: &Change, fields: Fields<'_>) -> Result<Option<Action>, ApiError> {
    let parsed = parsed_fields;
    match (c.entity, c.op) {
        (EntityKind::PsychNote, Op::Create | Op::Update) => {
            let v = parsed(fields)?;
            let plain = shouhu_core::PsychNote::plaintext_in_change(c.op, &v);
            if !plain.is_empty() {
                return Err(ApiError::Forbidden {
                    details: json!({
                        "seq": c.seq,
                        "user_id": c.user_id,
                        "entity": c.entity.name(),
                        "record_id": c.record_id,
                        "reason": "note_not_sealed",
                        "fields": plain,
                    }),
                });
            }
            Ok(None)
        }
        (EntityKind::Child, Op::Create) => {
            // Only the flag is read (the rest of the body is skipped, not
            // built): a county's first push creates every child.
            #[derive(serde::Deserialize)]
            struct Flag {
                #[serde(default)]
                counseling: shouhu_core::CounselingFlag,
            }
            let flag: Flag = match fields {
                Fields::Parsed(v) => Flag::deserialize(v)?,
                Fields::Raw(r) => serde_json::from_str(r.get())?,
            };
            Ok((flag.counseling != shouhu_core::CounselingFlag::default())
                .then_some(Action::WriteCounselingFlag))
        }
        (EntityKind::Child, Op::Update) => {
            let v = parsed(fields)?;
            let touches = v.as_object().is_some_and(|m| {
                m.keys()
                    .any(|k| k == "counseling" || k.starts_with("counseling."))
            });
            Ok(touches.then_some(Action::WriteCounselingFlag))
        }
        (EntityKind::HelpPlan, op) => plan_approval(op, fields),
        _ => Ok(None),
    }
}

/// A help plan's approval (`approved_by`) is a principal's act
/// (`ApprovePlan`): a create that comes approved, or an update that sets,
/// changes or clears the approval, asks for it on top of `WriteRecords`.
fn plan_approval(op: Op, fields: Fields<'_>) -> Result<Option<Action>, ApiError> {
    let touches = match op {
        Op::Create => {
            #[derive(serde::Deserialize)]
            struct Approval {
                #[serde(default)]
                approved_by: Option<String>,
            }
            let a: Approval = match fields {
                Fields::Parsed(v) => Approval::deserialize(v)?,
                Fields::Raw(r) => serde_json::from_str(r.get())?,
            };
            a.approved_by.is_some_and(|s| !s.trim().is_empty())
        }
        Op::Update => parsed_fields(fields)?
            .as_object()
            .is_some_and(|m| m.keys().any(|k| k == "approved_by")),
        Op::Delete | Op::Restore => false,
    };
    Ok(touches.then_some(Action::ApprovePlan))
}

fn scoped(
    c: &Change,
    scope: &Scope,
    left: &std::collections::HashMap<Uuid, i64>,
) -> Result<Uuid, ApiError> {
    let school = match c.school_id {
        Some(s) => s,
        None if c.entity == EntityKind::School => c.record_id,
        None if scope.schools.len() == 1 => scope.schools[0],
        None => {
            return Err(ApiError::OutOfScope {
                details: json!({ "seq": c.seq, "reason": "no_school" }),
            })
        }
    };
    if !scope.schools.contains(&school) {
        let made_ms = i64::try_from(c.hlc >> 16).unwrap_or(i64::MAX);
        match left.get(&school) {
            // Made while the school was still in the scope: pending work
            // from before the change is never lost.
            Some(&left_ms) if made_ms < left_ms => {}
            Some(_) => {
                return Err(ApiError::OutOfScope {
                    details: json!({ "seq": c.seq, "school_id": school, "reason": "left_scope" }),
                })
            }
            None => {
                return Err(ApiError::OutOfScope {
                    details: json!({ "seq": c.seq, "school_id": school }),
                })
            }
        }
    }
    if c.entity == EntityKind::PsychNote && !scope.notes {
        return Err(ApiError::OutOfScope {
            details: json!({ "seq": c.seq, "entity": "psych_note" }),
        });
    }
    if c.entity == EntityKind::School && c.record_id != school {
        return Err(ApiError::OutOfScope {
            details: json!({ "seq": c.seq, "entity": "school" }),
        });
    }
    Ok(school)
}

/// Log one change under `seq` and `school_id` (which may differ from the
/// change's own: the server's pseudo-device numbering, the school a scope
/// filled in).
fn insert_change(
    tx: &Connection,
    device_id: Uuid,
    c: &Change,
    fields: &str,
    seq: i64,
    school_id: Option<Uuid>,
    received_at: &str,
) -> Result<i64, ApiError> {
    let notes = notes_only(tx, c, fields)?;
    tx.prepare_cached(
        "INSERT INTO changes (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, resolves, received_at, notes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        device_id.to_string(),
        seq,
        c.change_id.to_string(),
        c.hlc as i64,
        c.entity.name(),
        c.record_id.to_string(),
        school_id.map(|s| s.to_string()),
        c.op.as_str(),
        fields,
        c.base_version,
        c.user_id.to_string(),
        c.resolves.map(|s| s.to_string()),
        received_at,
        notes,
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Whether only devices holding notes may pull this change: a note, or a
/// conflict record about a note (its create names the entity; its later
/// changes are looked up).
fn notes_only(tx: &Connection, c: &Change, fields: &str) -> Result<bool, ApiError> {
    Ok(match c.entity {
        EntityKind::PsychNote => true,
        EntityKind::Conflict if c.op == Op::Create => {
            #[derive(serde::Deserialize)]
            struct About {
                entity: Option<EntityKind>,
            }
            serde_json::from_str::<About>(fields)
                .ok()
                .and_then(|a| a.entity)
                == Some(EntityKind::PsychNote)
        }
        EntityKind::Conflict => tx
            .prepare_cached(
                "SELECT json_extract(state, '$.body.entity') = 'psych_note' FROM record WHERE id = ?1",
            )?
            .query_row([c.record_id.to_string()], |r| r.get::<_, Option<bool>>(0))
            .optional()?
            .flatten()
            .unwrap_or(false),
        _ => false,
    })
}

fn load_state(tx: &Connection, id: Uuid) -> Result<Option<RecordState>, ApiError> {
    let s: Option<String> = tx
        .prepare_cached("SELECT state FROM record WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    Ok(s.map(|s| serde_json::from_str(&s)).transpose()?)
}

/// A change's fields as they reached the server.
#[derive(Clone, Copy)]
enum Fields<'a> {
    Parsed(&'a Value),
    Raw(&'a RawValue),
}

/// A [`RecordState`] as written for a new record whose body is still JSON
/// text: the same JSON.
#[derive(serde::Serialize)]
struct NewRecordState<'a> {
    body: &'a RawValue,
    deleted: bool,
    created: &'a ChangeStamp,
    fields: &'a BTreeMap<String, ChangeStamp>,
    deleted_by: Option<&'a ChangeStamp>,
    version: i64,
}

fn save_state_text(
    tx: &Connection,
    id: Uuid,
    entity: EntityKind,
    school: Option<Uuid>,
    state: &str,
) -> Result<(), ApiError> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO record (id, entity, school_id, state) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        id.to_string(),
        entity.name(),
        school.map(|s| s.to_string()),
        state
    ])?;
    Ok(())
}

fn save_state(
    tx: &Connection,
    id: Uuid,
    entity: EntityKind,
    school: Option<Uuid>,
    st: &RecordState,
) -> Result<(), ApiError> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO record (id, entity, school_id, state) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        id.to_string(),
        entity.name(),
        school.map(|s| s.to_string()),
        serde_json::to_string(st)?
    ])?;
    Ok(())
}

/// The server's own changes (conflict records, schools) take the next seq of
/// the server's pseudo-device.
fn next_server_seq(tx: &Connection, server_id: Uuid) -> Result<i64, ApiError> {
    Ok(tx.query_row(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM changes WHERE device_id = ?1",
        [server_id.to_string()],
        |r| r.get(0),
    )?)
}

/// Log and merge one change (under `school_id`, and `seq` when the server
/// numbers it itself); returns the number of conflicts it opened.
#[allow(clippy::too_many_arguments)]
fn apply_one(
    tx: &Connection,
    server_id: Uuid,
    device_id: Uuid,
    c: &Change,
    fields: Fields<'_>,
    school_id: Option<Uuid>,
    seq: Option<i64>,
    received_at: &str,
) -> Result<usize, ApiError> {
    let text = match fields {
        Fields::Parsed(v) => Cow::Owned(serde_json::to_string(v)?),
        Fields::Raw(r) => Cow::Borrowed(r.get()),
    };
    let server_seq = insert_change(
        tx,
        device_id,
        c,
        &text,
        seq.unwrap_or(c.seq),
        school_id,
        received_at,
    )?;
    let stamp = ChangeStamp {
        device_id,
        user_id: c.user_id,
        hlc: c.hlc,
        server_seq,
    };
    let state = load_state(tx, c.record_id)?;
    if let (None, Op::Create, Fields::Raw(body)) = (&state, c.op, fields) {
        // A new record: its state is the body as sent, stamped by this
        // change (what `merge::apply` makes of it, without parsing the body).
        let st = NewRecordState {
            body,
            deleted: false,
            created: &stamp,
            fields: &BTreeMap::new(),
            deleted_by: None,
            version: server_seq,
        };
        save_state_text(
            tx,
            c.record_id,
            c.entity,
            school_id,
            &serde_json::to_string(&st)?,
        )?;
        return Ok(0);
    }
    let parsed;
    let fields = match fields {
        Fields::Parsed(v) => v,
        Fields::Raw(r) => {
            parsed = serde_json::from_str::<Value>(r.get())?;
            &parsed
        }
    };
    let (state, drafts) = merge::apply(
        state,
        &Incoming {
            entity: c.entity,
            op: c.op,
            fields,
            base_version: c.base_version,
            resolves: c.resolves,
            stamp,
        },
    );
    save_state(tx, c.record_id, c.entity, school_id, &state)?;
    let n = drafts.len();
    for d in drafts {
        let conflict = Conflict {
            entity: Some(c.entity),
            record_id: c.record_id,
            school_id,
            kind: d.kind,
            field: d.field,
            current_value: d.current_value,
            current_by: d.current_by,
            other_value: d.other_value,
            other_by: d.other_by,
            status: ConflictStatus::Open,
            resolution: None,
        };
        let change = Change {
            seq: next_server_seq(tx, server_id)?,
            change_id: Uuid::now_v7(),
            hlc: now_ms() << 16,
            entity: EntityKind::Conflict,
            record_id: Uuid::now_v7(),
            school_id,
            op: Op::Create,
            fields: serde_json::to_value(&conflict)?,
            base_version: 0,
            user_id: server_id,
            resolves: None,
        };
        let seq = insert_change(
            tx,
            server_id,
            &change,
            &serde_json::to_string(&change.fields)?,
            change.seq,
            school_id,
            received_at,
        )?;
        let st = RecordState {
            body: change.fields.clone(),
            deleted: false,
            created: ChangeStamp {
                device_id: server_id,
                user_id: server_id,
                hlc: change.hlc,
                server_seq: seq,
            },
            fields: Default::default(),
            deleted_by: None,
            version: seq,
        };
        save_state(tx, change.record_id, EntityKind::Conflict, school_id, &st)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seq: i64, school: Uuid, record: Uuid, op: Op, fields: Value) -> Change {
        Change {
            seq,
            change_id: Uuid::now_v7(),
            hlc: (now_ms() + seq as u64) << 16,
            entity: EntityKind::Child,
            record_id: record,
            school_id: Some(school),
            op,
            fields,
            base_version: 0,
            user_id: Uuid::now_v7(),
            resolves: None,
        }
    }

    /// The raw path (what HTTP uses) and the parsed one store the same
    /// states and serve the same pages, conflicts included.
    #[test]
    fn raw_and_parsed_pushes_agree() -> Result<(), ApiError> {
        let school = Uuid::now_v7();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let (r1, r2) = (Uuid::now_v7(), Uuid::now_v7());
        let body = json!({"name": "张三", "father": {"phone": "138"}, "boarding": false});
        let from_a = vec![
            change(1, school, r1, Op::Create, body.clone()),
            change(2, school, r2, Op::Create, body),
            change(3, school, r1, Op::Update, json!({"name": "张山"})),
        ];
        // Based on version 0 of r1: concurrent with a's update.
        let from_b = vec![change(1, school, r1, Op::Update, json!({"name": "章三"}))];
        let scope = Scope {
            schools: vec![school],
            notes: false,
            local_users: true,
        };
        let mut out = Vec::new();
        for raw in [false, true] {
            let mut db = ServerDb::open_in_memory()?;
            db.register_existing_school(school, "一小", "织金县", "城关镇")?;
            for (device, batch) in [(a, &from_a), (b, &from_b)] {
                db.conn.execute(
                    "INSERT INTO device (id, name, scope, credential_hash, enrolled_at) VALUES (?1, 'd', ?2, ?1, 'now')",
                    params![device.to_string(), serde_json::to_string(&scope)?],
                )?;
                if raw {
                    let req: shouhu_protocol::PushRequestRaw =
                        serde_json::from_value(json!({"protocol": 1, "changes": batch}))?;
                    db.push_raw(device, &scope, &req.changes)?;
                } else {
                    db.push(device, &scope, batch)?;
                }
            }
            let states: Vec<Option<RecordState>> = vec![db.record(r1)?, db.record(r2)?];
            let mut page = db.pull(&scope, 0, 100)?;
            for c in &mut page.changes {
                if c.change.entity == EntityKind::Conflict {
                    // Made by the server (its own id differs per database):
                    // new ids and clocks each run.
                    c.device_id = Uuid::nil();
                    c.change.user_id = Uuid::nil();
                    c.change.change_id = Uuid::nil();
                    c.change.record_id = Uuid::nil();
                    c.change.hlc = 0;
                }
            }
            let conflicts = page
                .changes
                .iter()
                .filter(|c| c.change.entity == EntityKind::Conflict)
                .count();
            assert_eq!(conflicts, 1, "the concurrent name edit is a conflict");
            assert!(states.iter().all(Option::is_some));
            out.push((states, page));
        }
        assert_eq!(out[0], out[1]);
        Ok(())
    }

    /// A device with several schools pages through the log in order, every
    /// change of its scope once, however sparse its schools are.
    #[test]
    fn a_several_school_scope_pages_through_everything() -> Result<(), ApiError> {
        let mut db = ServerDb::open_in_memory()?;
        let schools: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        for s in &schools {
            db.register_existing_school(*s, "学校", "织金县", "城关镇")?;
        }
        let all = Scope {
            schools: schools.clone(),
            notes: false,
            local_users: true,
        };
        let device = Uuid::now_v7();
        db.conn.execute(
            "INSERT INTO device (id, name, scope, credential_hash, enrolled_at) VALUES (?1, 'd', ?2, ?1, 'now')",
            params![device.to_string(), serde_json::to_string(&all)?],
        )?;
        // School 2 gets only every tenth change: long runs out of scope.
        let batch: Vec<Change> = (1..=300)
            .map(|i| {
                let school = if i % 10 == 0 {
                    schools[2]
                } else {
                    schools[i as usize % 2]
                };
                change(i, school, Uuid::now_v7(), Op::Create, json!({"n": i}))
            })
            .collect();
        db.push(device, &all, &batch)?;
        for (scope, want) in [
            (
                vec![schools[1], schools[2]],
                batch
                    .iter()
                    .filter(|c| c.school_id != Some(schools[0]))
                    .count(),
            ),
            (vec![schools[2]], 30),
            (schools.clone(), 300),
        ] {
            let scope = Scope {
                schools: scope,
                notes: false,
                local_users: true,
            };
            let mut after = 0;
            let mut seen = Vec::new();
            loop {
                let page = db.pull(&scope, after, 2)?;
                assert!(page.changes.len() <= 2);
                assert!(page.next_after > after || page.next_after == page.head);
                for c in &page.changes {
                    assert!(c.server_seq > after && c.server_seq <= page.next_after);
                    assert!(scope
                        .schools
                        .contains(&c.change.school_id.unwrap_or_default()));
                    seen.push(c.server_seq);
                }
                after = page.next_after;
                if after == page.head {
                    break;
                }
            }
            assert_eq!(seen.len(), want);
            assert!(seen.windows(2).all(|w| w[0] < w[1]));
        }
        Ok(())
    }
}

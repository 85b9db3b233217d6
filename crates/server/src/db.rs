//! The server's SQLite database: schools, enrollment codes, devices, the
//! server-wide change log and the merged state of every record.
//!
//! Push applies a device's changes in its sequence order, each in the same
//! transaction as the device's new high-water mark, so a crash mid-batch
//! leaves a prefix applied and the device resends the rest. Each applied
//! change gets the next number of the one server sequence (`changes.server_seq`);
//! conflicts the merge finds become conflict records, themselves changes in
//! that sequence, so they reach every device in scope.

use std::path::Path;

use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shouhu_core::hlc::now_ms;
use shouhu_core::merge::{self, Incoming, RecordState};
use shouhu_core::{ChangeStamp, Conflict, ConflictStatus, EntityKind, Op};
use shouhu_protocol::{
    Change, EnrollResponse, PullResponse, PullResponseWire, PushResponse, Scope, ServerChange,
    ServerChangeWire, MAX_PULL_LIMIT,
};
use uuid::Uuid;

use crate::error::ApiError;

const SCHEMA: &str = r#"
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
    conn: Connection,
    server_id: Uuid,
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn hash_secret(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_secret(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// Codes are read aloud and typed: no 0/O, 1/I/L.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const TOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn uuid(s: &str) -> Result<Uuid, ApiError> {
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

    fn setup(conn: Connection) -> Result<ServerDb, ApiError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // 64 MiB of page cache (SQLite's default is 2 MiB): a county's record
        // and change tables are read back page by page while a first push is
        // merged and a first pull served; with the default most of those
        // reads went to the kernel.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(SCHEMA)?;
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
        let server_id = self.server_id;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut high: i64 = tx.query_row(
            "SELECT last_seq FROM device WHERE id = ?1",
            [device_id.to_string()],
            |r| r.get(0),
        )?;
        // Scope first: all or nothing.
        let mut schools = Vec::with_capacity(changes.len());
        for c in changes {
            schools.push(scoped(c, scope)?);
        }
        let received_at = now_text();
        let device_text = device_id.to_string();
        let mut applied = 0;
        let mut conflicts = 0;
        for (c, school) in changes.iter().zip(schools) {
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
        let notes = if scope.notes {
            ""
        } else {
            "AND entity <> 'psych_note'"
        };
        let sql = format!(
            "SELECT server_seq, device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, resolves
             FROM changes WHERE server_seq > ? AND server_seq <= ? AND school_id IN ({placeholders}) {notes}
             ORDER BY server_seq LIMIT ?"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(after), Box::new(head)];
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
            rows.last().map_or(head, |c| c.server_seq)
        } else {
            head
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
fn scoped(c: &Change, scope: &Scope) -> Result<Uuid, ApiError> {
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
        return Err(ApiError::OutOfScope {
            details: json!({ "seq": c.seq, "school_id": school }),
        });
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
    seq: i64,
    school_id: Option<Uuid>,
    received_at: &str,
) -> Result<i64, ApiError> {
    tx.prepare_cached(
        "INSERT INTO changes (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, resolves, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
        serde_json::to_string(&c.fields)?,
        c.base_version,
        c.user_id.to_string(),
        c.resolves.map(|s| s.to_string()),
        received_at,
    ])?;
    Ok(tx.last_insert_rowid())
}

fn load_state(tx: &Connection, id: Uuid) -> Result<Option<RecordState>, ApiError> {
    let s: Option<String> = tx
        .prepare_cached("SELECT state FROM record WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    Ok(s.map(|s| serde_json::from_str(&s)).transpose()?)
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
fn apply_one(
    tx: &Connection,
    server_id: Uuid,
    device_id: Uuid,
    c: &Change,
    school_id: Option<Uuid>,
    seq: Option<i64>,
    received_at: &str,
) -> Result<usize, ApiError> {
    let server_seq = insert_change(
        tx,
        device_id,
        c,
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
    let (state, drafts) = merge::apply(
        state,
        &Incoming {
            entity: c.entity,
            op: c.op,
            fields: &c.fields,
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
        let seq = insert_change(tx, server_id, &change, change.seq, school_id, received_at)?;
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

//! Opening a store, its identity (device, user, clock), and the read API.

use std::cell::RefCell;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use serde_json::Value;
use shouhu_core::hlc::{Hlc, HlcClock};
use shouhu_core::{validate, Entity, EntityKind, Meta, Stored};
use uuid::Uuid;

use crate::changelog::ChangeEntry;
use crate::checkpoint::Checkpointer;
use crate::error::{Result, StoreError};
use crate::schema;
use crate::search::SearchIndex;
use crate::write::{KnownRefs, Writer};

/// Who is writing and where: stamped on every record and change.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub device_id: Uuid,
    /// The device's number in `log_device` (the high bits of its entries'
    /// log positions).
    pub device_n: i64,
    pub user_id: Uuid,
    pub clock: HlcClock,
    /// The next change-log sequence number of this device (gapless from 1).
    pub next_seq: i64,
    /// Added to the wall clock for HLC stamps (tests simulate skewed laptop
    /// clocks with it).
    pub clock_offset_ms: i64,
}

/// The local store: one SQLite file with every record and the change log.
///
/// Every write goes through [`Store::write`], which runs a closure over a
/// [`Writer`] inside one SQLite transaction: each record written there appends
/// its change-log entry in the same transaction, and an error anywhere in the
/// closure leaves neither rows nor entries behind.
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) ctx: Ctx,
    pub(crate) search: RefCell<Option<SearchIndex>>,
    today: Option<NaiveDate>,
    /// What reference checks learnt, valid while `PRAGMA data_version` is
    /// `refs_version` (no other connection has written since).
    refs: KnownRefs,
    refs_version: Option<i64>,
    /// Runs this file's WAL checkpoints on a thread of its own
    /// ([`crate::checkpoint`]); `None` for a store in memory.
    _checkpointer: Option<Checkpointer>,
}

/// SQLCipher's raw-key literal: `x'` + 64 hex digits + `'` (no KDF: the key is
/// already random).
fn key_literal(key: &[u8; 32]) -> String {
    let mut out = String::with_capacity(67);
    out.push_str("x'");
    for b in key {
        out.push_str(&format!("{b:02x}"));
    }
    out.push('\'');
    out
}

/// Another connection to the store's file, keyed like the store's: the
/// checkpointer's ([`crate::checkpoint`]).
fn second_connection(path: &Path, key: Option<&[u8; 32]>) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if let Some(key) = key {
        apply_key(&conn, key)?;
    }
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Reads the schema now: a key that does not open the file fails here.
    schema::version(&conn)?;
    Ok(conn)
}

fn apply_key(conn: &Connection, key: &[u8; 32]) -> Result<()> {
    conn.execute_batch(&format!("PRAGMA key = \"{}\"", key_literal(key)))?;
    Ok(())
}

pub(crate) const META_COLS: &str =
    "id, body, created_at, updated_at, created_by, updated_by, device_id, version, deleted_at, delete_reason";

impl Store {
    /// Open (creating and migrating as needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path.as_ref(),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Open(e.to_string()))?;
        Self::setup(conn, Some(&|| second_connection(path.as_ref(), None)))
    }

    /// Open (creating and migrating as needed) the store at `path`, encrypted
    /// with SQLCipher under the raw 256-bit `key` (the data key that
    /// `shouhu-auth` wraps per user). A new file is created encrypted; an
    /// existing file that does not open with this key — a wrong key, a plain
    /// file, a damaged or tampered one — is [`StoreError::KeyRejected`] and is
    /// left untouched.
    pub fn open_encrypted(path: impl AsRef<Path>, key: &[u8; 32]) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path.as_ref(),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Open(e.to_string()))?;
        apply_key(&conn, key)?;
        // SQLCipher reads nothing until the first statement: check the key
        // now, before any pragma could write to the file.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|_| StoreError::KeyRejected)?;
        Self::setup(conn, Some(&|| second_connection(path.as_ref(), Some(key))))
    }

    /// Rewrites the plain (unencrypted) store at `path` as an encrypted one
    /// under `key`, in place: the encrypted copy is written beside it, synced,
    /// and renamed over the original, so a crash leaves one or the other whole.
    pub fn encrypt_plain_file(path: impl AsRef<Path>, key: &[u8; 32]) -> Result<()> {
        let path = path.as_ref();
        let tmp = path.with_extension("encrypting");
        let _ = std::fs::remove_file(&tmp);
        if !Self::is_plain_file(path) {
            return Err(StoreError::Open(format!(
                "{}: not a plain SQLite database",
                path.display()
            )));
        }
        {
            // CREATE: the ATTACHed copy is created through this connection.
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| StoreError::Open(e.to_string()))?;
            schema::version(&conn).map_err(|e| StoreError::Open(e.to_string()))?;
            // Fold the WAL into the main file first, so the copy has everything.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            let tmp_text = tmp
                .to_str()
                .ok_or_else(|| StoreError::Open(format!("{}: not UTF-8", tmp.display())))?;
            conn.execute(
                &format!(
                    "ATTACH DATABASE ?1 AS encrypted KEY \"{}\"",
                    key_literal(key)
                ),
                [tmp_text],
            )?;
            conn.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
            let version: i64 = conn.query_row("PRAGMA main.user_version", [], |r| r.get(0))?;
            conn.execute_batch(&format!("PRAGMA encrypted.user_version = {version}"))?;
            conn.execute_batch("DETACH DATABASE encrypted")?;
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::Open(format!("{}: {e}", tmp.display())))?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            let _ = std::fs::remove_file(std::path::PathBuf::from(side));
        }
        std::fs::rename(&tmp, path)
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        Ok(())
    }

    /// Whether the file at `path` is a plain SQLite database (its first 16
    /// bytes are SQLite's magic; an encrypted file's are random).
    pub fn is_plain_file(path: impl AsRef<Path>) -> bool {
        use std::io::Read;
        let mut head = [0u8; 16];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .map(|_| &head == b"SQLite format 3\0")
            .unwrap_or(false)
    }

    /// A throw-away store in memory (tests, previews).
    pub fn open_in_memory() -> Result<Store> {
        Self::setup(Connection::open_in_memory()?, None)
    }

    /// `second` opens the checkpointer's connection, once the file is
    /// migrated ([`crate::checkpoint`]).
    fn setup(
        mut conn: Connection,
        second: Option<&dyn Fn() -> Result<Connection>>,
    ) -> Result<Store> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // A file that is not a database (or is encrypted) fails here, clearly.
        schema::version(&conn).map_err(|e| StoreError::Open(e.to_string()))?;
        // WAL: readers never block the writer. FULL: a write the user was told
        // is saved survives a power cut (the outbox must never lose or reuse a
        // sequence number).
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        // 64 MiB of page cache at most (SQLite's default is 2 MiB): with the
        // default, applying a pulled week into a county-sized file (~800 MB)
        // read most b-tree pages back from the kernel and spilled dirty pages
        // to the WAL before the commit (BENCHMARKS.md, "Sync"). The cache
        // grows only as pages are used.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.set_prepared_statement_cache_capacity(96);
        schema::migrate(&mut conn)?;
        let ctx = Self::load_ctx(&mut conn)?;
        // Without its thread, the store checkpoints as SQLite does by itself.
        let checkpointer = match second {
            Some(open) => open().ok().and_then(|c| Checkpointer::start(&mut conn, c)),
            None => None,
        };
        Ok(Store {
            _checkpointer: checkpointer,
            conn,
            ctx,
            search: RefCell::new(None),
            today: None,
            refs: KnownRefs::default(),
            refs_version: None,
        })
    }

    fn load_ctx(conn: &mut Connection) -> Result<Ctx> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let device_id = meta_uuid(&tx, "device_id")?;
        let user_id = meta_uuid(&tx, "local_user_id")?;
        let device_n = crate::changelog::device_number(&tx, device_id)?;
        let (max_seq, max_hlc) = last_entry(&tx, device_n)?;
        tx.commit()?;
        Ok(Ctx {
            device_id,
            device_n,
            user_id,
            clock: HlcClock::new(max_hlc),
            next_seq: max_seq + 1,
            clock_offset_ms: 0,
        })
    }

    pub fn device_id(&self) -> Uuid {
        self.ctx.device_id
    }

    /// The user that writes are attributed to (a local placeholder user until
    /// accounts exist).
    pub fn user_id(&self) -> Uuid {
        self.ctx.user_id
    }

    pub fn set_user(&mut self, user_id: Uuid) {
        self.ctx.user_id = user_id;
    }

    /// The users' calendar date (China Standard Time), or a fixed date in tests.
    pub fn today(&self) -> NaiveDate {
        self.today.unwrap_or_else(validate::today_cst)
    }

    /// Pretend the wall clock is off by `ms` (simulating a laptop's clock).
    pub fn set_clock_offset_ms(&mut self, ms: i64) {
        self.ctx.clock_offset_ms = ms;
    }

    pub fn set_today(&mut self, today: Option<NaiveDate>) {
        self.today = today;
    }

    pub fn schema_version(&self) -> Result<i64> {
        schema::version(&self.conn)
    }

    /// Run `f` in one transaction. Every record written through the [`Writer`]
    /// gets its change-log entry in this transaction; if `f` or the commit fails,
    /// nothing of it is kept and the device's sequence is not advanced.
    pub fn write<R>(&mut self, f: impl FnOnce(&mut Writer<'_>) -> Result<R>) -> Result<R> {
        let saved = self.ctx.clone();
        let today = self.today();
        let mut touched = Vec::new();
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Another connection to this file (the CLI beside the app) may have
            // written since: continue from the log itself, under the write lock.
            let (seq, hlc) = last_entry(&tx, self.ctx.device_n)?;
            self.ctx.next_seq = seq + 1;
            if hlc > self.ctx.clock.last() {
                self.ctx.clock = HlcClock::new(hlc);
            }
            // Another connection's commit may have changed what the reference
            // checks remember; our own commits leave data_version as it is.
            let version: i64 = tx.query_row("PRAGMA data_version", [], |r| r.get(0))?;
            if self.refs_version != Some(version) || self.refs.len() > KnownRefs::MAX {
                self.refs = KnownRefs::default();
                self.refs_version = Some(version);
            }
            let r = {
                let mut w = Writer::new(&tx, &mut self.ctx, today, &mut touched, &mut self.refs);
                f(&mut w)?
            };
            tx.commit()?;
            Ok(r)
        })();
        match result {
            Ok(r) => {
                self.refresh_search(&touched)?;
                Ok(r)
            }
            Err(e) => {
                self.ctx = saved;
                // What this transaction learnt was rolled back with it.
                self.refs = KnownRefs::default();
                self.refs_version = None;
                Err(e)
            }
        }
    }

    /// Forget what the reference checks and the child search remember (rows
    /// were removed behind the `Writer`: a purge).
    pub(crate) fn forget_cached(&mut self) {
        self.refs = KnownRefs::default();
        self.refs_version = None;
        *self.search.borrow_mut() = None;
    }

    // ------------------------------------------------------------ reads

    /// A record by id, deleted or not.
    pub fn get<T: Entity>(&self, id: Uuid) -> Result<Option<Stored<T>>> {
        let sql = format!("SELECT {META_COLS} FROM {} WHERE id = ?1", T::KIND.name());
        let mut st = self.conn.prepare_cached(&sql)?;
        let row = st.query_row([id.to_string()], read_raw).optional()?;
        row.map(|r| r.into_stored()).transpose()
    }

    /// A live (not deleted) record, or a coded error.
    pub fn fetch<T: Entity>(&self, id: Uuid) -> Result<Stored<T>> {
        let entity = T::KIND.name();
        match self.get::<T>(id)? {
            None => Err(StoreError::NotFound { entity, id }),
            Some(s) if s.meta.deleted_at.is_some() => Err(StoreError::Deleted { entity, id }),
            Some(s) => Ok(s),
        }
    }

    /// Live records about one child, newest first by their date.
    pub fn list_by_child<T: Entity>(&self, child_id: Uuid) -> Result<Vec<Stored<T>>> {
        self.list_where::<T>("child_id", child_id)
    }

    /// Live records hanging off one record (follow-ups of a visit, plans of a
    /// household, entries of a screening round...).
    pub fn list_by_parent<T: Entity>(&self, parent_id: Uuid) -> Result<Vec<Stored<T>>> {
        self.list_where::<T>("parent_id", parent_id)
    }

    /// Live records of a school.
    pub fn list_by_school<T: Entity>(&self, school_id: Uuid) -> Result<Vec<Stored<T>>> {
        self.list_where::<T>("school_id", school_id)
    }

    fn list_where<T: Entity>(&self, col: &str, id: Uuid) -> Result<Vec<Stored<T>>> {
        let sql = format!(
            "SELECT {META_COLS} FROM {} WHERE {col} = ?1 AND deleted_at IS NULL ORDER BY date DESC, id DESC",
            T::KIND.name()
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map([id.to_string()], read_raw)?;
        rows.map(|r| r?.into_stored()).collect()
    }

    /// Every live record of a kind.
    pub fn list_all<T: Entity>(&self) -> Result<Vec<Stored<T>>> {
        let mut out = Vec::new();
        self.for_each_raw(T::KIND, false, |raw| {
            out.push(raw.into_stored()?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Stream every record of a kind (in id order) without holding them all:
    /// exports of a county's 400,000 visits run in constant memory.
    pub fn for_each_raw(
        &self,
        kind: EntityKind,
        include_deleted: bool,
        mut f: impl FnMut(RawRecord) -> Result<()>,
    ) -> Result<()> {
        let filter = if include_deleted {
            ""
        } else {
            "WHERE deleted_at IS NULL"
        };
        let sql = format!(
            "SELECT {META_COLS} FROM {} {filter} ORDER BY id",
            kind.name()
        );
        let mut st = self.conn.prepare(&sql)?;
        let mut rows = st.query([])?;
        while let Some(row) = rows.next()? {
            f(read_raw(row)?)?;
        }
        Ok(())
    }

    /// Number of live records of a kind.
    pub fn count(&self, kind: EntityKind) -> Result<i64> {
        let sql = format!(
            "SELECT COUNT(*) FROM {} WHERE deleted_at IS NULL",
            kind.name()
        );
        Ok(self.conn.query_row(&sql, [], |r| r.get(0))?)
    }

    /// Every change-log entry about one record, oldest first.
    pub fn changes_for_record(&self, record_id: Uuid) -> Result<Vec<ChangeEntry>> {
        let sql = format!(
            // Column 1 is the device id (text), as the order always was.
            "SELECT {} FROM log_entry WHERE record_id = ?1 ORDER BY log_entry.hlc, 1, log_entry.pos",
            ChangeEntry::cols()
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map([crate::changelog::blob(&record_id)], ChangeEntry::from_row)?;
        let mut out = rows.map(|r| r?).collect::<Result<Vec<_>>>()?;
        for e in &mut out {
            crate::changelog::fill_created_body(&self.conn, e)?;
        }
        Ok(out)
    }

    /// This device's change-log entries with `seq > after`, in order (the
    /// outbox the sync engine ships).
    pub fn local_changes_after(&self, after: i64, limit: usize) -> Result<Vec<ChangeEntry>> {
        let sql = format!(
            "SELECT {} FROM log_entry WHERE pos > ?1 AND pos < ?2 ORDER BY pos LIMIT ?3",
            ChangeEntry::cols()
        );
        let (_, end) = crate::changelog::device_range(self.ctx.device_n);
        let from =
            crate::changelog::pos(self.ctx.device_n, after.clamp(0, crate::changelog::SEQ_MAX));
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params![from, end, limit as i64], ChangeEntry::from_row)?;
        let mut out = rows.map(|r| r?).collect::<Result<Vec<_>>>()?;
        for e in &mut out {
            crate::changelog::fill_created_body(&self.conn, e)?;
        }
        Ok(out)
    }

    /// Local changes the server has not acknowledged yet.
    pub fn pending_count(&self) -> Result<i64> {
        let acked = crate::sync::meta_i64(&self.conn, "acked_seq")?;
        Ok((self.last_seq() - acked).max(0))
    }

    /// The last sequence number this device used (0 if none).
    pub fn last_seq(&self) -> i64 {
        self.ctx.next_seq - 1
    }

    /// Direct access for the crate's own modules and tests that inspect SQL.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// The sequence and clock of a device's last change-log entry ((0, 0) if none).
pub(crate) fn last_entry(conn: &Connection, device_n: i64) -> Result<(i64, Hlc)> {
    let (start, end) = crate::changelog::device_range(device_n);
    let row: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT pos & ?3, hlc FROM log_entry WHERE pos >= ?1 AND pos < ?2 ORDER BY pos DESC LIMIT 1",
        )?
        .query_row(params![start, end, crate::changelog::SEQ_MAX], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(row.map_or((0, Hlc::default()), |(s, h)| (s, Hlc::from_i64(h))))
}

fn meta_uuid(conn: &Connection, key: &str) -> Result<Uuid> {
    let existing: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    if let Some(v) = existing {
        if let Ok(id) = Uuid::parse_str(&v) {
            return Ok(id);
        }
    }
    let id = Uuid::now_v7();
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        params![key, id.to_string()],
    )?;
    Ok(id)
}

/// A row as read: meta columns as text and the body as JSON text.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub id: String,
    pub body: String,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
    pub updated_by: String,
    pub device_id: String,
    pub version: i64,
    pub deleted_at: Option<String>,
    pub delete_reason: Option<String>,
}

pub(crate) fn read_raw(r: &Row<'_>) -> rusqlite::Result<RawRecord> {
    Ok(RawRecord {
        id: r.get(0)?,
        body: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
        created_by: r.get(4)?,
        updated_by: r.get(5)?,
        device_id: r.get(6)?,
        version: r.get(7)?,
        deleted_at: r.get(8)?,
        delete_reason: r.get(9)?,
    })
}

impl RawRecord {
    pub fn meta(&self) -> Result<Meta> {
        let corrupt = |what: &str| StoreError::Open(format!("record {} has a bad {what}", self.id));
        let uuid = |s: &str, what: &str| Uuid::parse_str(s).map_err(|_| corrupt(what));
        let ts = |s: &str, what: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| corrupt(what))
        };
        Ok(Meta {
            id: uuid(&self.id, "id")?,
            created_at: ts(&self.created_at, "created_at")?,
            updated_at: ts(&self.updated_at, "updated_at")?,
            created_by: uuid(&self.created_by, "created_by")?,
            updated_by: uuid(&self.updated_by, "updated_by")?,
            device_id: uuid(&self.device_id, "device_id")?,
            version: self.version,
            deleted_at: self
                .deleted_at
                .as_deref()
                .map(|s| ts(s, "deleted_at"))
                .transpose()?,
            delete_reason: self.delete_reason.clone(),
        })
    }

    pub fn body_value(&self) -> Result<Value> {
        serde_json::from_str(&self.body).map_err(|source| StoreError::Corrupt {
            id: self.id.clone(),
            source,
        })
    }

    pub fn into_stored<T: Entity>(self) -> Result<Stored<T>> {
        let meta = self.meta()?;
        let body = serde_json::from_str(&self.body).map_err(|source| StoreError::Corrupt {
            id: self.id.clone(),
            source,
        })?;
        Ok(Stored { meta, body })
    }
}

pub(crate) fn ts_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

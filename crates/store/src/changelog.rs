//! Change-log entries: what one write changed, shaped for sync.
//!
//! An entry names its device and that device's gapless sequence number (the
//! outbox order and the idempotency key on the server), a UUIDv7 change id, a
//! hybrid-logical-clock stamp, the entity and record, the operation, the changed
//! fields with their new values, and the record version (server sequence) the
//! edit was based on: the server tells a concurrent edit from a later one by
//! that base, never by wall clocks.
//!
//! A local `create` entry is stored with `fields` NULL, meaning "the body as
//! created": until the record's body first changes, that body is the row's
//! `body`, and the log does not hold a second copy of every record (it was
//! half the file and most of the cost of an insert). Every write that changes
//! a body calls [`materialise_create_body`] first, which copies the body into
//! the entry while it is still the created one. Readers select
//! [`ChangeEntry::cols`] and pass each entry through [`fill_created_body`],
//! which falls back to the row's body, so every entry read has its full
//! fields.
//!
//! Storage (migration 0005): entries live in `log_entry`, whose rowid `pos`
//! is `device number << 40 | seq` ([`pos`], [`device_range`]; `log_device`
//! numbers the devices), with ids as 16-byte BLOBs ([`blob`]). A device's
//! entries are one rowid range, in sequence order. `change_log` is a
//! read-only view of the same entries with text columns, for SQL by hand.

use std::sync::LazyLock;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shouhu_core::hlc::Hlc;
use shouhu_core::{EntityKind, Op};
use uuid::Uuid;

use crate::error::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEntry {
    pub device_id: Uuid,
    pub seq: i64,
    pub change_id: Uuid,
    pub hlc: Hlc,
    pub entity: EntityKind,
    pub record_id: Uuid,
    pub school_id: Option<Uuid>,
    pub op: Op,
    pub fields: Value,
    pub base_version: i64,
    pub user_id: Uuid,
    /// The server's sequence number (entries pulled from the server, and this
    /// device's own entries once they come back in a pull).
    pub server_seq: Option<i64>,
    /// The conflict record this change resolves, if any.
    pub resolves: Option<Uuid>,
}

/// Bits of a log position that hold the sequence number: an entry's `pos`
/// (the rowid of `log_entry`, migration 0005) is `device number << 40 | seq`.
pub(crate) const SEQ_BITS: u32 = 40;
/// The largest sequence number a log position holds.
pub(crate) const SEQ_MAX: i64 = (1 << SEQ_BITS) - 1;

/// The log position of a device's entry.
pub(crate) fn pos(device_n: i64, seq: i64) -> i64 {
    (device_n << SEQ_BITS) | (seq & SEQ_MAX)
}

/// The positions of one device's entries: `[start, end)`.
pub(crate) fn device_range(device_n: i64) -> (i64, i64) {
    (device_n << SEQ_BITS, (device_n + 1) << SEQ_BITS)
}

/// The number `log_device` gives a device id, numbering it now if new.
pub(crate) fn device_number(conn: &Connection, device_id: Uuid) -> Result<i64> {
    let id = device_id.to_string();
    let found: Option<i64> = conn
        .prepare_cached("SELECT n FROM log_device WHERE id = ?1")?
        .query_row([&id], |r| r.get(0))
        .optional()?;
    if let Some(n) = found {
        return Ok(n);
    }
    conn.prepare_cached("INSERT INTO log_device (id) VALUES (?1)")?
        .execute([&id])?;
    Ok(conn.last_insert_rowid())
}

/// A UUID as the 16 bytes the log stores.
pub(crate) fn blob(id: &Uuid) -> &[u8] {
    id.as_bytes()
}

/// The columns [`ChangeEntry::from_row`] reads. A create entry standing for
/// the body as created reads with `fields` JSON `null`: every reader passes
/// each entry through [`fill_created_body`]. (Filling it in SQL took a branch
/// for every record table with a BLOB-to-text conversion in each: a 6 KB
/// statement that SQLite was seen re-preparing on every call.)
static COLS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(SELECT id FROM log_device WHERE log_device.n = log_entry.pos >> {SEQ_BITS}), log_entry.pos & {SEQ_MAX}, log_entry.change_id, log_entry.hlc, log_entry.entity, log_entry.record_id, log_entry.school_id, log_entry.op, COALESCE(log_entry.fields, 'null'), log_entry.base_version, log_entry.user_id, log_entry.server_seq, log_entry.resolves"
    )
});

/// Before a record's body changes (a local edit, a pulled change, a conflict
/// resolution): if its create entry still stands for "the body as created",
/// write that body into the entry now, while the row still holds it. Costs one
/// indexed lookup; writes only on a record's first change.
pub(crate) fn materialise_create_body(
    conn: &Connection,
    kind: EntityKind,
    record_id: Uuid,
) -> Result<()> {
    let t = kind.name();
    let sql = format!(
        "UPDATE log_entry SET fields = (SELECT body FROM {t} WHERE {t}.id = ?1)
         WHERE record_id = ?2 AND op = 'create' AND fields IS NULL AND entity = ?3"
    );
    conn.prepare_cached(&sql)?
        .execute(params![record_id.to_string(), blob(&record_id), t])?;
    Ok(())
}

/// For an entry read with [`ChangeEntry::cols`]: a create whose fields are
/// `null` gets the record's body, which is the body as created.
pub(crate) fn fill_created_body(conn: &Connection, e: &mut ChangeEntry) -> Result<()> {
    if e.op != Op::Create || !e.fields.is_null() {
        return Ok(());
    }
    let t = e.entity.name();
    let body: Option<String> = conn
        .prepare_cached(&format!("SELECT body FROM {t} WHERE id = ?1"))?
        .query_row([e.record_id.to_string()], |r| r.get(0))
        .optional()?;
    let body = body.ok_or_else(|| StoreError::Open("change-log entry has a bad fields".into()))?;
    e.fields = serde_json::from_str(&body)?;
    Ok(())
}

impl ChangeEntry {
    /// The columns [`ChangeEntry::from_row`] reads, for a query `FROM
    /// log_entry`; then [`fill_created_body`] on each entry.
    pub(crate) fn cols() -> &'static str {
        &COLS
    }

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<ChangeEntry>> {
        let text = |i: usize| r.get::<_, String>(i);
        // A stored id: `Ok(None)` for NULL, `Err(())` for anything that is
        // not 16 bytes (reported as a bad entry below).
        let bytes = |i: usize| -> rusqlite::Result<std::result::Result<Option<Uuid>, ()>> {
            Ok(match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Ok(None),
                rusqlite::types::ValueRef::Blob(b) => Uuid::from_slice(b).map(Some).map_err(|_| ()),
                _ => Err(()),
            })
        };
        let device_id: Option<String> = r.get(0)?;
        let change_id = bytes(2)?;
        let entity: String = text(4)?;
        let record_id = bytes(5)?;
        let school_id = bytes(6)?;
        let op: String = text(7)?;
        let fields: Option<String> = r.get(8)?;
        let user_id = bytes(10)?;
        let seq: i64 = r.get(1)?;
        let hlc: i64 = r.get(3)?;
        let base_version: i64 = r.get(9)?;
        let server_seq: Option<i64> = r.get(11)?;
        let resolves = bytes(12)?;
        Ok((|| {
            let bad = |what: &str| StoreError::Open(format!("change-log entry has a bad {what}"));
            let uuid = |b: std::result::Result<Option<Uuid>, ()>, what: &str| {
                b.ok().flatten().ok_or_else(|| bad(what))
            };
            let opt =
                |b: std::result::Result<Option<Uuid>, ()>, what: &str| b.map_err(|_| bad(what));
            Ok(ChangeEntry {
                device_id: device_id
                    .as_deref()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| bad("device_id"))?,
                seq,
                change_id: uuid(change_id, "change_id")?,
                hlc: Hlc::from_i64(hlc),
                entity: EntityKind::parse(&entity).ok_or_else(|| bad("entity"))?,
                record_id: uuid(record_id, "record_id")?,
                school_id: opt(school_id, "school_id")?,
                op: Op::parse(&op).ok_or_else(|| bad("op"))?,
                fields: serde_json::from_str(fields.as_deref().ok_or_else(|| bad("fields"))?)?,
                base_version,
                user_id: uuid(user_id, "user_id")?,
                server_seq,
                resolves: opt(resolves, "resolves")?,
            })
        })())
    }
}

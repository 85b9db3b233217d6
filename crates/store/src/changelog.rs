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
//! [`ChangeEntry::cols`], whose `fields` column falls back to the row's body,
//! so every entry read has its full fields.

use std::sync::LazyLock;

use rusqlite::{params, Connection, Row};
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

/// `fields`, or for a create entry stored without them, the record's body
/// (which is the body as created: see the module comment). Only the branch
/// of the entry's own entity runs.
static FIELDS_SQL: LazyLock<String> = LazyLock::new(|| {
    let mut s = String::from("COALESCE(change_log.fields, CASE change_log.entity");
    for kind in EntityKind::ALL {
        let t = kind.name();
        s.push_str(&format!(
            " WHEN '{t}' THEN (SELECT body FROM {t} WHERE {t}.id = change_log.record_id)"
        ));
    }
    s.push_str(" END)");
    s
});

static COLS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "change_log.device_id, change_log.seq, change_log.change_id, change_log.hlc, change_log.entity, change_log.record_id, change_log.school_id, change_log.op, {}, change_log.base_version, change_log.user_id, change_log.server_seq, change_log.resolves",
        fields_sql()
    )
});

/// The SQL expression for an entry's fields, complete for every entry (for
/// queries `FROM change_log`).
pub(crate) fn fields_sql() -> &'static str {
    &FIELDS_SQL
}

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
        "UPDATE change_log SET fields = (SELECT body FROM {t} WHERE {t}.id = ?1)
         WHERE record_id = ?1 AND op = 'create' AND fields IS NULL AND entity = ?2"
    );
    conn.prepare_cached(&sql)?
        .execute(params![record_id.to_string(), t])?;
    Ok(())
}

impl ChangeEntry {
    /// The columns [`ChangeEntry::from_row`] reads, for a query `FROM change_log`.
    pub(crate) fn cols() -> &'static str {
        &COLS
    }

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<ChangeEntry>> {
        let text = |i: usize| r.get::<_, String>(i);
        let device_id: String = text(0)?;
        let change_id: String = text(2)?;
        let entity: String = text(4)?;
        let record_id: String = text(5)?;
        let school_id: Option<String> = r.get(6)?;
        let op: String = text(7)?;
        let fields: Option<String> = r.get(8)?;
        let user_id: String = text(10)?;
        let seq: i64 = r.get(1)?;
        let hlc: i64 = r.get(3)?;
        let base_version: i64 = r.get(9)?;
        let server_seq: Option<i64> = r.get(11)?;
        let resolves: Option<String> = r.get(12)?;
        Ok((|| {
            let bad = |what: &str| StoreError::Open(format!("change-log entry has a bad {what}"));
            let uuid = |s: &str, what: &str| Uuid::parse_str(s).map_err(|_| bad(what));
            Ok(ChangeEntry {
                device_id: uuid(&device_id, "device_id")?,
                seq,
                change_id: uuid(&change_id, "change_id")?,
                hlc: Hlc::from_i64(hlc),
                entity: EntityKind::parse(&entity).ok_or_else(|| bad("entity"))?,
                record_id: uuid(&record_id, "record_id")?,
                school_id: school_id
                    .as_deref()
                    .map(|s| uuid(s, "school_id"))
                    .transpose()?,
                op: Op::parse(&op).ok_or_else(|| bad("op"))?,
                fields: serde_json::from_str(fields.as_deref().ok_or_else(|| bad("fields"))?)?,
                base_version,
                user_id: uuid(&user_id, "user_id")?,
                server_seq,
                resolves: resolves
                    .as_deref()
                    .map(|s| uuid(s, "resolves"))
                    .transpose()?,
            })
        })())
    }
}

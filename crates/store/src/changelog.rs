//! Change-log entries: what one write changed, shaped for sync.
//!
//! An entry names its device and that device's gapless sequence number (the
//! outbox order and the idempotency key on the server), a UUIDv7 change id, a
//! hybrid-logical-clock stamp, the entity and record, the operation, the changed
//! fields with their new values, and the record version (server sequence) the
//! edit was based on: the server tells a concurrent edit from a later one by
//! that base, never by wall clocks.

use rusqlite::Row;
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

impl ChangeEntry {
    pub(crate) const COLS: &'static str = "device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, server_seq, resolves";

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<ChangeEntry>> {
        let text = |i: usize| r.get::<_, String>(i);
        let device_id: String = text(0)?;
        let change_id: String = text(2)?;
        let entity: String = text(4)?;
        let record_id: String = text(5)?;
        let school_id: Option<String> = r.get(6)?;
        let op: String = text(7)?;
        let fields: String = text(8)?;
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
                fields: serde_json::from_str(&fields)?,
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

//! Removing a school that left this device's scope ([`Store::purge_school`]).
//!
//! A device holds only its scope. When a county admin takes a school out of
//! it, the device removes its copy of that school — once nothing of the
//! school is waiting in its outbox — in one transaction: every record row
//! whose school is that school (the school itself, children, households and
//! plans, visits and drafts, amendments, follow-ups, notes, aid, absences,
//! dropouts, persuasion visits, contacts, safety sessions, screening rounds
//! and entries, conflicts), the other devices' change-log entries about it,
//! and the content of this device's own (acknowledged) entries about it.
//!
//! A purge is not a delete: it writes no change-log entry, so nothing of it
//! ever reaches the server (the school's records stay there, whole). This
//! device's own entries are kept, emptied (`fields` `{}`), because the log
//! holds this device's gapless sequence and its clock; only their content
//! goes (a pull gives it back if the school joins the scope again). An audit entry (`purge_school`) records what was removed, in the
//! same transaction.

use std::collections::BTreeMap;

use rusqlite::{params, TransactionBehavior};
use serde::Serialize;
use serde_json::json;
use shouhu_core::EntityKind;
use uuid::Uuid;

use crate::audit::{insert_entry, AuditAction, AuditTarget};
use crate::changelog::{blob, device_range, pos, SEQ_MAX};
use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::sync::meta_i64;

/// What [`Store::purge_school`] removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SchoolPurge {
    pub school_id: Uuid,
    /// The school's name, if its record was here.
    pub name: Option<String>,
    /// Record rows removed, all kinds together (deleted ones included).
    pub records: u64,
    /// Record rows removed per kind (`child`, `home_visit`, …), kinds with
    /// none left out.
    pub by_kind: BTreeMap<String, u64>,
    /// Other devices' change-log entries removed.
    pub log_removed: u64,
    /// This device's own entries emptied (kept for their sequence numbers).
    pub log_emptied: u64,
}

impl Store {
    /// This device's change-log entries for `school` the server has not
    /// acknowledged.
    pub fn pending_for_school(&self, school: Uuid) -> Result<i64> {
        let n = self.ctx.device_n;
        let acked = meta_i64(&self.conn, "acked_seq")?.clamp(0, SEQ_MAX);
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM log_entry WHERE pos > ?1 AND pos < ?2 AND school_id = ?3",
            params![pos(n, acked), device_range(n).1, blob(&school)],
            |r| r.get(0),
        )?)
    }

    /// Whether this store holds any row or change-log entry of `school`.
    pub fn holds_school(&self, school: Uuid) -> Result<bool> {
        let text = school.to_string();
        for kind in EntityKind::ALL {
            let found: bool = self.conn.query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {} WHERE school_id = ?1)",
                    kind.name()
                ),
                [&text],
                |r| r.get(0),
            )?;
            if found {
                return Ok(true);
            }
        }
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM log_entry WHERE school_id = ?1 AND fields IS NOT '{}')",
            [blob(&school)],
            |r| r.get(0),
        )?)
    }

    /// Remove every local row of `school` (which has left this device's
    /// scope) in one transaction, without change-log entries; see the module
    /// documentation. Refused with `sync.purge_pending` while this device
    /// has unacknowledged entries for the school: they must be pushed first.
    pub fn purge_school(&mut self, school: Uuid) -> Result<SchoolPurge> {
        let n = self.ctx.device_n;
        let (start, end) = device_range(n);
        // Made before the transaction borrows the connection; its details
        // are filled in below.
        let mut entry = self.audit_entry(
            AuditAction::PurgeSchool,
            AuditTarget {
                entity: Some(EntityKind::School.name().to_string()),
                record_id: Some(school),
                school_id: Some(school),
            },
            json!({}),
            self.audit_now(),
        );
        let mut out = SchoolPurge {
            school_id: school,
            ..Default::default()
        };
        let text = school.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let acked = meta_i64(&tx, "acked_seq")?.clamp(0, SEQ_MAX);
        let pending: i64 = tx.query_row(
            "SELECT COUNT(*) FROM log_entry WHERE pos > ?1 AND pos < ?2 AND school_id = ?3",
            params![pos(n, acked), end, blob(&school)],
            |r| r.get(0),
        )?;
        if pending > 0 {
            return Err(StoreError::PurgePending {
                school_id: school,
                pending,
            });
        }
        out.name = tx
            .query_row(
                "SELECT json_extract(body, '$.name') FROM school WHERE id = ?1",
                [&text],
                |r| r.get::<_, Option<String>>(0),
            )
            .ok()
            .flatten();
        for kind in EntityKind::ALL {
            let removed = tx.execute(
                &format!("DELETE FROM {} WHERE school_id = ?1", kind.name()),
                [&text],
            )? as u64;
            if removed > 0 {
                out.by_kind.insert(kind.name().to_string(), removed);
                out.records += removed;
            }
        }
        out.log_removed = tx.execute(
            "DELETE FROM log_entry WHERE school_id = ?1 AND (pos < ?2 OR pos >= ?3)",
            params![blob(&school), start, end],
        )? as u64;
        out.log_emptied = tx.execute(
            "UPDATE log_entry SET fields = '{}' WHERE school_id = ?1 AND pos >= ?2 AND pos < ?3",
            params![blob(&school), start, end],
        )? as u64;
        entry.details = json!({
            "name": out.name,
            "records": out.records,
            "by_kind": out.by_kind,
            "log_removed": out.log_removed,
            "log_emptied": out.log_emptied,
        });
        insert_entry(&tx, &entry)?;
        tx.commit()?;
        // Rows were removed: what the reference checks and the search
        // remember is stale.
        self.forget_cached();
        Ok(out)
    }
}

//! What the sync engine needs from a device's store: the outbox, its
//! acknowledgement, applying pulled pages (rows and cursor in one
//! transaction, never over a field with an unacknowledged local edit), and a
//! new device id when a copied or restored database must not reuse the old
//! one's sequence numbers.

use std::any::Any;
use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use shouhu_core::{diff, with_entity_type, ChildCard, Entity, IndexCols, Op};
use uuid::Uuid;

use crate::changelog::ChangeEntry;
use crate::error::Result;
use crate::search::ChildColumns;
use crate::store::Store;
use crate::write::Writer;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncState {
    pub device_id: Uuid,
    /// This device's last sequence number.
    pub last_seq: i64,
    /// The highest of this device's sequence numbers the server holds.
    pub acked_seq: i64,
    /// The server sequence pulled up to.
    pub pull_cursor: i64,
    pub server_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PullApplied {
    pub applied: usize,
    /// Fields not overwritten because a local edit of them is not yet
    /// acknowledged.
    pub fields_kept: usize,
}

pub(crate) fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![key, value])?;
    Ok(())
}

pub(crate) fn meta_i64(conn: &Connection, key: &str) -> Result<i64> {
    Ok(get_meta(conn, key)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// A pulled change with the work that needs no database done beforehand,
/// so that it can run on another thread while the previous page is being
/// written ([`PulledChange::prepare`] is `Send` work on owned data): the
/// change-log text of its fields and, for a create, the typed body's JSON and
/// index columns. Applying it ([`Store::apply_prepared`]) then only looks up
/// and writes rows; the result is the same as applying the entry itself.
pub struct PulledChange {
    pub(crate) entry: ChangeEntry,
    pub(crate) fields_json: String,
    /// A create's row, ready to insert if the record is new here.
    pub(crate) created: Option<CreatedRow>,
}

pub(crate) struct CreatedRow {
    pub(crate) body_json: String,
    pub(crate) idx: IndexCols,
    pub(crate) child: Option<ChildColumns>,
}

impl PulledChange {
    pub fn prepare(entry: ChangeEntry) -> Result<PulledChange> {
        let fields_json = serde_json::to_string(&entry.fields)?;
        let created = match entry.op {
            // A body that does not read as its type is left to the apply,
            // which reports it as it always did.
            Op::Create => {
                with_entity_type!(entry.entity, T => created_row::<T>(&entry).ok())
            }
            _ => None,
        };
        Ok(PulledChange {
            entry,
            fields_json,
            created,
        })
    }

    pub fn entry(&self) -> &ChangeEntry {
        &self.entry
    }
}

fn created_row<T: Entity>(c: &ChangeEntry) -> Result<CreatedRow> {
    let typed = T::deserialize(&c.fields)?;
    let mut idx = typed.index();
    if idx.school_id.is_none() {
        idx.school_id = c.school_id;
    }
    let child = (&typed as &dyn Any)
        .downcast_ref::<ChildCard>()
        .map(ChildColumns::of);
    Ok(CreatedRow {
        body_json: serde_json::to_string(&typed)?,
        idx,
        child,
    })
}

impl Store {
    pub fn sync_state(&self) -> Result<SyncState> {
        Ok(SyncState {
            device_id: self.ctx.device_id,
            last_seq: self.last_seq(),
            acked_seq: meta_i64(&self.conn, "acked_seq")?,
            pull_cursor: meta_i64(&self.conn, "pull_cursor")?,
            server_id: get_meta(&self.conn, "server_id")?.and_then(|s| Uuid::parse_str(&s).ok()),
        })
    }

    pub fn set_server_id(&mut self, id: Uuid) -> Result<()> {
        set_meta(&self.conn, "server_id", &id.to_string())
    }

    /// Copies the WAL's committed pages into the database file now, on this
    /// thread (`PASSIVE`: it waits for no one). Returns whether the whole WAL
    /// is now in the file (not while another connection's checkpoint, such
    /// as the store's own checkpoint thread, or a reader holds part of it
    /// back). The store checkpoints by itself ([`crate::checkpoint`]); this
    /// is for a caller that wants the file settled at a moment of its choosing
    /// (the sync benchmark, between the phases it times).
    pub fn checkpoint(&self) -> Result<bool> {
        let (busy, log, done): (i64, i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        Ok(busy == 0 && done >= log)
    }

    /// A small persistent setting (server address, credential...).
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        get_meta(&self.conn, &format!("setting.{key}"))
    }

    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        set_meta(&self.conn, &format!("setting.{key}"), value)
    }

    /// This device's unacknowledged entries, oldest first.
    pub fn outbox(&self, limit: usize) -> Result<Vec<ChangeEntry>> {
        let acked = meta_i64(&self.conn, "acked_seq")?;
        self.local_changes_after(acked, limit)
    }

    /// The server holds this device's entries up to `seq`.
    pub fn ack_through(&mut self, seq: i64) -> Result<()> {
        let acked = meta_i64(&self.conn, "acked_seq")?;
        if seq > acked {
            set_meta(
                &self.conn,
                "acked_seq",
                &seq.min(self.last_seq()).to_string(),
            )?;
        }
        Ok(())
    }

    /// Apply a pulled page and move the cursor to `next_after`, in one
    /// transaction: a crash leaves either both or neither.
    pub fn apply_pulled(
        &mut self,
        changes: &[ChangeEntry],
        next_after: i64,
    ) -> Result<PullApplied> {
        let prepared = changes
            .iter()
            .cloned()
            .map(PulledChange::prepare)
            .collect::<Result<Vec<_>>>()?;
        self.apply_prepared(&prepared, next_after)
    }

    /// [`Store::apply_pulled`] with the changes prepared beforehand.
    pub fn apply_prepared(
        &mut self,
        changes: &[PulledChange],
        next_after: i64,
    ) -> Result<PullApplied> {
        let mut acked = meta_i64(&self.conn, "acked_seq")?;
        let before = acked;
        self.write(|w| {
            let mut report = PullApplied::default();
            for p in changes {
                let c = &p.entry;
                if c.device_id == w.device_id() && c.seq > acked {
                    // Our own change came back: the server holds it and every
                    // earlier one (it applies a device's changes in order), so
                    // it no longer shields its fields from later changes.
                    acked = c.seq;
                }
                report.fields_kept += w.apply_remote(p, acked)?;
                report.applied += 1;
            }
            if acked > before {
                set_meta(w.conn(), "acked_seq", &acked.to_string())?;
            }
            w.set_pull_cursor(next_after)?;
            Ok(report)
        })
    }

    /// Pull again from `after` (a server restored from a backup is behind this
    /// device's cursor). Re-applying changes already applied is harmless: the
    /// log ignores entries it has, and fields end as the server orders them.
    pub fn rewind_pull_cursor(&mut self, after: i64) -> Result<()> {
        set_meta(&self.conn, "pull_cursor", &after.max(0).to_string())
    }

    /// Start over with another (reinstalled) server: pull from the beginning
    /// and send every change of this device again (the new server has none).
    pub fn reset_sync_for_server(&mut self, server_id: Uuid) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        set_meta(&tx, "pull_cursor", "0")?;
        set_meta(&tx, "acked_seq", "0")?;
        set_meta(&tx, "server_id", &server_id.to_string())?;
        tx.commit()?;
        Ok(())
    }

    /// Take a new device id, keeping all data. This device's unacknowledged
    /// entries move to the new id, numbered from 1 in their order, so they are
    /// still sent; acknowledged ones stay under the old id (the server has
    /// them). Used when the server reports that this database reuses sequence
    /// numbers (restored from a backup) or when the store was copied.
    pub fn rotate_device_id(&mut self) -> Result<Uuid> {
        let old = self.ctx.device_id;
        let new = Uuid::now_v7();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let acked = meta_i64(&tx, "acked_seq")?.clamp(0, crate::changelog::SEQ_MAX);
        let old_n = self.ctx.device_n;
        let new_n = crate::changelog::device_number(&tx, new)?;
        // Positions move from the old device's range to the new one's (empty,
        // so no key collides); the sequence restarts after `acked`.
        let (_, old_end) = crate::changelog::device_range(old_n);
        tx.execute(
            "UPDATE log_entry SET pos = ?1 + ((pos & ?4) - ?3) WHERE pos > ?2 AND pos < ?5",
            params![
                crate::changelog::device_range(new_n).0,
                crate::changelog::pos(old_n, acked),
                acked,
                crate::changelog::SEQ_MAX,
                old_end
            ],
        )?;
        set_meta(&tx, "device_id", &new.to_string())?;
        set_meta(&tx, "acked_seq", "0")?;
        set_meta(&tx, &format!("retired_device.{old}"), &acked.to_string())?;
        let (seq, _) = crate::store::last_entry(&tx, new_n)?;
        tx.commit()?;
        self.ctx.device_id = new;
        self.ctx.device_n = new_n;
        self.ctx.next_seq = seq + 1;
        Ok(new)
    }
}

impl Writer<'_> {
    fn set_pull_cursor(&mut self, after: i64) -> Result<()> {
        let cur = meta_i64(self.conn(), "pull_cursor")?;
        if after > cur {
            set_meta(self.conn(), "pull_cursor", &after.to_string())?;
        }
        Ok(())
    }

    /// Dotted paths with an unacknowledged local edit on this record.
    pub(crate) fn pending_paths(&self, record_id: Uuid, acked: i64) -> Result<BTreeSet<String>> {
        let sql = "SELECT op, fields, entity FROM log_entry WHERE record_id = ?1 AND pos > ?2 AND pos < ?3";
        let n = self.device_n();
        let mut st = self.conn().prepare_cached(sql)?;
        let rows = st.query_map(
            params![
                crate::changelog::blob(&record_id),
                crate::changelog::pos(n, acked.clamp(0, crate::changelog::SEQ_MAX)),
                crate::changelog::device_range(n).1
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?;
        let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let mut filled = Vec::with_capacity(rows.len());
        for (op, fields, entity) in rows {
            if fields.is_some() || op != "create" {
                filled.push((op, fields));
                continue;
            }
            // A create standing for the body as created: the row's body.
            let Some(kind) = shouhu_core::EntityKind::parse(&entity) else {
                continue;
            };
            let body: Option<String> = self
                .conn()
                .prepare_cached(&format!("SELECT body FROM {} WHERE id = ?1", kind.name()))?
                .query_row([record_id.to_string()], |r| r.get(0))
                .optional()?;
            filled.push((op, body));
        }
        let mut out = BTreeSet::new();
        for (op, fields) in filled {
            let Some(fields) = fields else {
                // A create whose record row is missing: nothing to shield.
                continue;
            };
            let v: serde_json::Value = serde_json::from_str(&fields)?;
            match Op::parse(&op) {
                Some(Op::Create) => out.extend(diff::flatten(&v).into_keys()),
                Some(Op::Update) => {
                    if let Some(m) = v.as_object() {
                        out.extend(m.keys().cloned());
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

impl Store {
    /// Rewrites the fields of this device's unacknowledged change-log
    /// entries of `record_id` with `f` (oldest first, in one transaction);
    /// returns how many changed. For a psychological note written in plain
    /// and sealed before it was pushed: the server refuses note text in
    /// plain, so the entries still to be sent must not carry it either.
    /// Entries the server holds are never touched.
    pub fn rewrite_unsent_fields(
        &mut self,
        record_id: Uuid,
        mut f: impl FnMut(Op, &mut serde_json::Value),
    ) -> Result<usize> {
        let n = self.ctx.device_n;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let acked = meta_i64(&tx, "acked_seq")?;
        let (_, end) = crate::changelog::device_range(n);
        let rows: Vec<(i64, String, Option<String>)> = {
            let mut st = tx.prepare(
                "SELECT pos, op, fields FROM log_entry
                 WHERE pos > ?1 AND pos < ?2 AND record_id = ?3 ORDER BY pos",
            )?;
            let rows = st.query_map(
                params![
                    crate::changelog::pos(n, acked),
                    end,
                    crate::changelog::blob(&record_id)
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut changed = 0;
        for (at, op, fields) in rows {
            let (Some(op), Some(text)) = (Op::parse(&op), fields) else {
                continue;
            };
            let mut value: serde_json::Value = serde_json::from_str(&text)?;
            let before = value.clone();
            f(op, &mut value);
            if value != before {
                tx.execute(
                    "UPDATE log_entry SET fields = ?2 WHERE pos = ?1",
                    params![at, serde_json::to_string(&value)?],
                )?;
                changed += 1;
            }
        }
        tx.commit()?;
        Ok(changed)
    }
}

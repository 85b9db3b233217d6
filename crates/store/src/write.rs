//! The write API. A [`Writer`] exists only inside [`crate::Store::write`]'s
//! transaction; every method that changes a row appends the row's change-log
//! entry through [`Writer::append_log`] before returning, so the two commit or
//! roll back together.

use std::any::Any;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use shouhu_core::diff;
use shouhu_core::hlc::now_ms;
use shouhu_core::{
    new_id, with_entity_type, ChildCard, Conflict, ConflictKind, ConflictStatus, Entity,
    EntityKind, HelpPlan, HomeVisit, IndexCols, Meta, PlanVersion, Resolution, ResolutionChoice,
    Stored, VisitAmendment, VisitStatus,
};
use uuid::Uuid;

use crate::changelog::{blob, device_number, materialise_create_body, pos, SEQ_MAX};
use crate::error::{Result, StoreError};
use crate::search;
use crate::store::{read_raw, ts_text, Ctx, RawRecord, META_COLS};
use crate::sync::PulledChange;
use shouhu_core::Op;

/// What [`Writer::upsert_with_id`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    Updated,
    Unchanged,
}

pub struct Writer<'a> {
    conn: &'a Connection,
    ctx: &'a mut Ctx,
    today: NaiveDate,
    touched_children: &'a mut Vec<Uuid>,
    /// Set while a conflict is being resolved: stamped on the entries.
    resolving: Option<Uuid>,
    /// References already checked (kept by the store across transactions:
    /// see [`KnownRefs`]).
    refs: &'a mut KnownRefs,
}

/// What the reference checks have learnt, so a write that names the same
/// school, household or child again (or a record written earlier) does not
/// look it up again.
///
/// Rows are never removed (a delete leaves a tombstone), so "this id exists"
/// stays true, except when what was learnt is rolled back: [`Writer::attempt`]
/// forgets everything when its savepoint rolls back, and [`crate::Store::write`]
/// when its transaction does. "This child is live, in that school" can change:
/// every change to a child row forgets that child, and a pulled change forgets
/// all children. The store keeps this across its transactions as long as no
/// other connection has written to the file (`PRAGMA data_version`, read under
/// the write lock at the start of each transaction), and drops it when it
/// grows past [`KnownRefs::MAX`] ids.
#[derive(Debug, Default)]
pub(crate) struct KnownRefs {
    exists: HashSet<(EntityKind, Uuid)>,
    /// Live children and the school column of each.
    live_children: HashMap<Uuid, Option<Uuid>>,
    /// `log_device` numbers of pulled entries' devices (a number given in a
    /// savepoint that rolls back is forgotten with the rest).
    devices: HashMap<Uuid, i64>,
}

impl KnownRefs {
    /// Ids remembered at most (a few MB); past it the store starts afresh.
    pub(crate) const MAX: usize = 100_000;

    pub(crate) fn len(&self) -> usize {
        self.exists.len() + self.live_children.len()
    }
}

impl<'a> Writer<'a> {
    pub(crate) fn new(
        conn: &'a Connection,
        ctx: &'a mut Ctx,
        today: NaiveDate,
        touched_children: &'a mut Vec<Uuid>,
        refs: &'a mut KnownRefs,
    ) -> Self {
        Writer {
            conn,
            ctx,
            today,
            touched_children,
            resolving: None,
            refs,
        }
    }

    /// Create a record with a new UUIDv7.
    pub fn create<T: Entity>(&mut self, body: T) -> Result<Stored<T>> {
        self.create_with_id(new_id(), body)
    }

    /// Create a record with a given id (imports keep their ids).
    pub fn create_with_id<T: Entity>(&mut self, id: Uuid, mut body: T) -> Result<Stored<T>> {
        let mut idx = self.prepare(&mut body)?;
        if T::KIND == EntityKind::School {
            // A school is in its own scope.
            idx.school_id = Some(id);
        }
        let now = now_millis();
        let meta = Meta {
            id,
            created_at: now,
            updated_at: now,
            created_by: self.ctx.user_id,
            updated_by: self.ctx.user_id,
            device_id: self.ctx.device_id,
            version: 0,
            deleted_at: None,
            delete_reason: None,
        };
        let body_json = serde_json::to_string(&body)?;
        // The primary key tells an existing id (no lookup first).
        self.insert_row(T::KIND, &meta, &body_json, &idx, &body)
            .map_err(|e| match e {
                StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                    if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
                {
                    StoreError::AlreadyExists {
                        entity: T::KIND.name(),
                        id,
                    }
                }
                e => e,
            })?;
        // No fields: a create entry stands for the body as created, which the
        // row holds until its first change (see changelog.rs).
        self.append_log(T::KIND, id, idx.school_id, Op::Create, None, 0)?;
        self.refs.exists.insert((T::KIND, id));
        if T::KIND == EntityKind::Child {
            self.refs.live_children.insert(id, idx.school_id);
        }
        Ok(Stored { meta, body })
    }

    /// Replace a record's body. Only the fields that differ are logged; an
    /// update that changes nothing writes nothing.
    pub fn update<T: Entity>(&mut self, id: Uuid, body: T) -> Result<Stored<T>> {
        self.update_inner(id, body).map(|(s, _)| s)
    }

    /// Create the record with this id, or update it if it exists: what an
    /// import does with a line. Tells which happened.
    pub fn upsert_with_id<T: Entity>(&mut self, id: Uuid, body: T) -> Result<Upsert> {
        if self.raw(T::KIND, id)?.is_none() {
            self.create_with_id(id, body)?;
            return Ok(Upsert::Created);
        }
        let (_, changed) = self.update_inner(id, body)?;
        Ok(if changed {
            Upsert::Updated
        } else {
            Upsert::Unchanged
        })
    }

    fn update_inner<T: Entity>(&mut self, id: Uuid, mut body: T) -> Result<(Stored<T>, bool)> {
        let (raw, old_idx) = self.live_raw_indexed(T::KIND, id)?;
        let old_value = raw.body_value()?;
        let mut meta = raw.meta()?;
        let old_plan: Option<HelpPlan> = match T::KIND {
            EntityKind::HelpPlan => Some(serde_json::from_value(old_value.clone())?),
            _ => None,
        };
        if let (Some(plan), Some(old)) = (
            (&mut body as &mut dyn Any).downcast_mut::<HelpPlan>(),
            &old_plan,
        ) {
            // The revision number is the store's to keep.
            plan.revision = old.revision;
        }
        let mut idx = self.prepare(&mut body)?;
        if T::KIND == EntityKind::School {
            idx.school_id = Some(id);
        }
        let mut new_value = serde_json::to_value(&body)?;
        let mut fields = diff::diff(&old_value, &new_value);
        if fields.is_empty() {
            return Ok((Stored { meta, body }, false));
        }
        if T::KIND.is_immutable() {
            return Err(StoreError::Immutable {
                entity: T::KIND.name(),
            });
        }
        if T::KIND == EntityKind::HomeVisit && old_value.get("status") == Some(&json!("finalised"))
        {
            return Err(StoreError::VisitFinalised { id });
        }
        if let Some(old) = old_plan {
            // A revision keeps the old content as a version record.
            let revision = old.revision + 1;
            if let Some(plan) = (&mut body as &mut dyn Any).downcast_mut::<HelpPlan>() {
                plan.revision = revision;
            }
            diff::set_path(&mut new_value, "revision", json!(revision));
            fields.insert("revision".into(), json!(revision));
            self.create(PlanVersion {
                plan_id: id,
                school_id: old.school_id,
                revision: old.revision,
                content: old,
                superseded_at: now_millis(),
            })?;
        }
        meta.updated_at = now_millis();
        meta.updated_by = self.ctx.user_id;
        meta.device_id = self.ctx.device_id;
        let body_json = serde_json::to_string(&new_value)?;
        self.update_row(T::KIND, &meta, &body_json, &idx, Some(&old_idx), &body)?;
        let fields_json = serde_json::to_string(&fields)?;
        self.append_log(
            T::KIND,
            id,
            idx.school_id,
            Op::Update,
            Some(&fields_json),
            meta.version,
        )?;
        Ok((Stored { meta, body }, true))
    }

    /// Run `f` as one unit inside this transaction (a SQL savepoint): if it
    /// fails, its rows and change-log entries are undone and the transaction
    /// goes on. An import keeps every good line of a batch this way.
    pub fn attempt<R, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Writer<'a>) -> Result<R, E>,
    ) -> Result<R, E> {
        let saved = self.ctx.clone();
        let touched = self.touched_children.len();
        let sql = |c: &Connection, q: &str| c.execute_batch(q).map_err(StoreError::from);
        sql(self.conn, "SAVEPOINT attempt")?;
        match f(self) {
            Ok(r) => {
                if let Err(e) = sql(self.conn, "RELEASE attempt") {
                    *self.refs = KnownRefs::default();
                    return Err(e.into());
                }
                Ok(r)
            }
            Err(e) => {
                // What the rolled-back writes created or found is unknown again.
                *self.refs = KnownRefs::default();
                sql(self.conn, "ROLLBACK TO attempt; RELEASE attempt")?;
                *self.ctx = saved;
                self.touched_children.truncate(touched);
                Err(e)
            }
        }
    }

    /// Soft-delete: the row stays as a tombstone with the reason.
    pub fn delete(&mut self, kind: EntityKind, id: Uuid, reason: &str) -> Result<()> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StoreError::DeleteReasonRequired);
        }
        if kind.is_immutable() {
            return Err(StoreError::Immutable {
                entity: kind.name(),
            });
        }
        let raw = self.live_raw(kind, id)?;
        let now = ts_text(now_millis());
        let sql = format!(
            "UPDATE {} SET deleted_at = ?2, delete_reason = ?3, updated_at = ?2, updated_by = ?4, device_id = ?5 WHERE id = ?1",
            kind.name()
        );
        self.conn.prepare_cached(&sql)?.execute(params![
            id.to_string(),
            now,
            reason,
            self.ctx.user_id.to_string(),
            self.ctx.device_id.to_string()
        ])?;
        let school: Option<String> = self.conn.query_row(
            &format!("SELECT school_id FROM {} WHERE id = ?1", kind.name()),
            [id.to_string()],
            |r| r.get(0),
        )?;
        let school_id = school.and_then(|s| Uuid::parse_str(&s).ok());
        let fields = serde_json::to_string(&json!({ "reason": reason }))?;
        self.append_log(kind, id, school_id, Op::Delete, Some(&fields), raw.version)?;
        if kind == EntityKind::Child {
            self.refs.live_children.remove(&id);
            self.touched_children.push(id);
        }
        Ok(())
    }

    /// Finalise a draft visit: from now on it is evidence and only amended.
    pub fn finalise_visit(&mut self, id: Uuid) -> Result<Stored<HomeVisit>> {
        let raw = self.live_raw(EntityKind::HomeVisit, id)?;
        let mut visit: HomeVisit = raw.into_stored::<HomeVisit>()?.body;
        if visit.status == VisitStatus::Finalised {
            return Err(StoreError::VisitFinalised { id });
        }
        visit.status = VisitStatus::Finalised;
        visit.finalised_at = Some(Utc::now());
        self.update(id, visit)
    }

    /// Correct one field of a finalised visit; the visit itself is untouched.
    pub fn amend_visit(
        &mut self,
        visit_id: Uuid,
        field: &str,
        new_value: Value,
        reason: &str,
    ) -> Result<Stored<VisitAmendment>> {
        let raw = self.live_raw(EntityKind::HomeVisit, visit_id)?;
        let visit: Stored<HomeVisit> = raw.into_stored()?;
        if visit.body.status != VisitStatus::Finalised {
            return Err(StoreError::VisitNotFinalised { id: visit_id });
        }
        const FIXED: [&str; 5] = [
            "child_id",
            "household_id",
            "school_id",
            "status",
            "finalised_at",
        ];
        let mut current = serde_json::to_value(&visit.body)?;
        if FIXED.contains(&field) || diff::get_path(&current, field).is_none() {
            return Err(StoreError::UnknownField {
                field: field.to_string(),
            });
        }
        // The value being corrected is the visit as earlier amendments left it.
        let earlier = self.amendments_of(visit_id)?;
        for a in &earlier {
            diff::set_path(&mut current, &a.body.field, a.body.new_value.clone());
        }
        let old_value = diff::get_path(&current, field)
            .cloned()
            .unwrap_or(Value::Null);
        // The corrected visit must still be a valid visit.
        diff::set_path(&mut current, field, new_value.clone());
        let corrected: HomeVisit = serde_json::from_value(current)?;
        corrected.validate(self.today)?;
        self.create(VisitAmendment {
            visit_id,
            child_id: visit.body.child_id,
            school_id: visit.body.school_id,
            field: field.to_string(),
            old_value,
            new_value,
            reason: reason.to_string(),
        })
    }

    fn amendments_of(&self, visit_id: Uuid) -> Result<Vec<Stored<VisitAmendment>>> {
        let sql = format!(
            "SELECT {META_COLS} FROM visit_amendment WHERE parent_id = ?1 ORDER BY created_at, id"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map([visit_id.to_string()], read_raw)?;
        rows.map(|r| r?.into_stored()).collect()
    }

    /// Undo a delete (resolving an edit-versus-delete conflict).
    pub fn restore(&mut self, kind: EntityKind, id: Uuid) -> Result<()> {
        let raw = self.raw(kind, id)?.ok_or(StoreError::NotFound {
            entity: kind.name(),
            id,
        })?;
        if raw.deleted_at.is_none() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE {} SET deleted_at = NULL, delete_reason = NULL, updated_at = ?2, updated_by = ?3, device_id = ?4 WHERE id = ?1",
            kind.name()
        );
        self.conn.prepare_cached(&sql)?.execute(params![
            id.to_string(),
            ts_text(now_millis()),
            self.ctx.user_id.to_string(),
            self.ctx.device_id.to_string()
        ])?;
        let school = self.school_of(kind, id)?;
        self.append_log(kind, id, school, Op::Restore, Some("{}"), raw.version)?;
        if kind == EntityKind::Child {
            self.touched_children.push(id);
        }
        Ok(())
    }

    /// Resolve a conflict record: set the field (or restore / keep deleted)
    /// and close the conflict. Both writes are ordinary changes marked as
    /// resolving it, so they sync, win like any later edit, and never open a
    /// new conflict.
    pub fn resolve_conflict(
        &mut self,
        conflict_id: Uuid,
        choice: ResolutionChoice,
        merged: Option<Value>,
    ) -> Result<Stored<Conflict>> {
        let raw = self.live_raw(EntityKind::Conflict, conflict_id)?;
        let mut conflict: Conflict = raw.into_stored::<Conflict>()?.body;
        if conflict.status == ConflictStatus::Resolved {
            return Err(StoreError::ConflictResolved { id: conflict_id });
        }
        let kind = conflict.entity.ok_or(StoreError::NotFound {
            entity: "conflict",
            id: conflict_id,
        })?;
        let record = conflict.record_id;
        let bad = || StoreError::ResolutionInvalid { id: conflict_id };
        self.resolving = Some(conflict_id);
        let value = match (conflict.kind, choice) {
            (
                ConflictKind::SameField,
                ResolutionChoice::KeepCurrent
                | ResolutionChoice::KeepOther
                | ResolutionChoice::Merged,
            ) => {
                let field = conflict.field.clone().ok_or_else(bad)?;
                let value = match choice {
                    ResolutionChoice::KeepCurrent => conflict.current_value.clone(),
                    ResolutionChoice::KeepOther => conflict.other_value.clone(),
                    _ => merged.ok_or_else(bad)?,
                };
                let raw = self.raw(kind, record)?.ok_or(StoreError::NotFound {
                    entity: kind.name(),
                    id: record,
                })?;
                let mut body = raw.body_value()?;
                diff::set_path(&mut body, &field, value.clone());
                with_entity_type!(kind, T => {
                    let typed: T = serde_json::from_value(body)?;
                    self.update_inner(record, typed)?;
                });
                value
            }
            (
                ConflictKind::EditVsDelete | ConflictKind::DeleteVsEdit,
                ResolutionChoice::Restore,
            ) => {
                self.restore(kind, record)?;
                Value::Null
            }
            (
                ConflictKind::EditVsDelete | ConflictKind::DeleteVsEdit,
                ResolutionChoice::KeepDeleted,
            ) => Value::Null,
            _ => {
                self.resolving = None;
                return Err(bad());
            }
        };
        conflict.status = ConflictStatus::Resolved;
        conflict.resolution = Some(Resolution {
            choice,
            value,
            by: self.ctx.user_id,
            at: now_millis(),
        });
        let r = self.update(conflict_id, conflict);
        self.resolving = None;
        r
    }

    pub(crate) fn conn(&self) -> &Connection {
        self.conn
    }

    pub(crate) fn device_id(&self) -> Uuid {
        self.ctx.device_id
    }

    pub(crate) fn device_n(&self) -> i64 {
        self.ctx.device_n
    }

    /// The log position of a pulled entry (its device numbered if new here).
    fn pulled_pos(&mut self, device_id: Uuid, seq: i64) -> Result<i64> {
        if !(1..=SEQ_MAX).contains(&seq) {
            return Err(StoreError::BadSequence { device_id, seq });
        }
        let n = match self.refs.devices.get(&device_id) {
            Some(n) => *n,
            None => {
                let n = device_number(self.conn, device_id)?;
                self.refs.devices.insert(device_id, n);
                n
            }
        };
        Ok(pos(n, seq))
    }

    fn school_of(&self, kind: EntityKind, id: Uuid) -> Result<Option<Uuid>> {
        let school: Option<Option<String>> = self
            .conn
            .query_row(
                &format!("SELECT school_id FROM {} WHERE id = ?1", kind.name()),
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(school.flatten().and_then(|s| Uuid::parse_str(&s).ok()))
    }

    /// Apply one pulled change to the rows (not to this device's outbox):
    /// fields with an unacknowledged local edit are kept. Returns how many
    /// fields were kept.
    pub(crate) fn apply_remote(&mut self, p: &PulledChange, acked: i64) -> Result<usize> {
        self.refs.live_children.clear();
        let c = &p.entry;
        let server_seq = c.server_seq.unwrap_or(0);
        if c.device_id == self.ctx.device_id {
            if (1..=SEQ_MAX).contains(&c.seq) {
                // An entry emptied by a purge (its school left the scope and
                // came back) gets its content again from the server's copy.
                self.conn
                    .prepare_cached(
                        "UPDATE log_entry SET server_seq = ?2,
                                fields = CASE WHEN fields = '{}' THEN ?3 ELSE fields END
                         WHERE pos = ?1",
                    )?
                    .execute(params![
                        pos(self.ctx.device_n, c.seq),
                        server_seq,
                        p.fields_json
                    ])?;
            }
        } else {
            let at = self.pulled_pos(c.device_id, c.seq)?;
            self.conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO log_entry (pos, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, server_seq, resolves)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    at,
                    blob(&c.change_id),
                    c.hlc.as_i64(),
                    c.entity.name(),
                    blob(&c.record_id),
                    c.school_id.as_ref().map(blob),
                    c.op.as_str(),
                    p.fields_json,
                    c.base_version,
                    blob(&c.user_id),
                    server_seq,
                    c.resolves.as_ref().map(blob),
                ])?;
        }
        with_entity_type!(c.entity, T => self.apply_remote_typed::<T>(p, acked))
    }

    fn apply_remote_typed<T: Entity>(&mut self, p: &PulledChange, acked: i64) -> Result<usize> {
        let c = &p.entry;
        let kind = T::KIND;
        let server_seq = c.server_seq.unwrap_or(0);
        let raw = self.raw_indexed(kind, c.record_id)?;
        let corrupt = |source| StoreError::Corrupt {
            id: c.record_id.to_string(),
            source,
        };
        let mut kept = 0;
        match (c.op, raw) {
            (Op::Create, None) if p.created.is_some() => {
                if let Some(row) = &p.created {
                    let now = now_millis();
                    let meta = Meta {
                        id: c.record_id,
                        created_at: now,
                        updated_at: now,
                        created_by: c.user_id,
                        updated_by: c.user_id,
                        device_id: c.device_id,
                        version: server_seq,
                        deleted_at: None,
                        delete_reason: None,
                    };
                    self.insert_row_cols(
                        kind,
                        &meta,
                        &row.body_json,
                        &row.idx,
                        row.child.as_ref(),
                    )?;
                }
            }
            (Op::Create | Op::Update, None) => {
                let typed: T = match c.op {
                    // Read straight from the pulled value (no copy of it).
                    Op::Create => T::deserialize(&c.fields).map_err(corrupt)?,
                    _ => {
                        let mut body = serde_json::Value::Object(Default::default());
                        diff::apply(&mut body, &fields_map(&c.fields));
                        serde_json::from_value(body).map_err(corrupt)?
                    }
                };
                let mut idx = typed.index();
                if idx.school_id.is_none() {
                    idx.school_id = c.school_id;
                }
                let now = now_millis();
                let meta = Meta {
                    id: c.record_id,
                    created_at: now,
                    updated_at: now,
                    created_by: c.user_id,
                    updated_by: c.user_id,
                    device_id: c.device_id,
                    version: server_seq,
                    deleted_at: None,
                    delete_reason: None,
                };
                let body_json = serde_json::to_string(&typed)?;
                self.insert_row(kind, &meta, &body_json, &idx, &typed)?;
            }
            (Op::Create | Op::Update, Some((raw, old_idx))) => {
                let pending = self.pending_paths(c.record_id, acked)?;
                let incoming = match c.op {
                    Op::Create => diff::flatten(&c.fields),
                    _ => fields_map(&c.fields),
                };
                let mut body = raw.body_value()?;
                for (path, value) in incoming {
                    if pending.iter().any(|p| related(p, &path)) {
                        kept += 1;
                        continue;
                    }
                    diff::set_path(&mut body, &path, value);
                }
                let typed: T = serde_json::from_value(body).map_err(corrupt)?;
                let mut idx = typed.index();
                if idx.school_id.is_none() {
                    idx.school_id = c.school_id;
                }
                let mut meta = raw.meta()?;
                meta.updated_at = now_millis();
                meta.updated_by = c.user_id;
                meta.device_id = c.device_id;
                meta.version = meta.version.max(server_seq);
                let body_json = serde_json::to_string(&typed)?;
                self.update_row(kind, &meta, &body_json, &idx, Some(&old_idx), &typed)?;
            }
            (Op::Delete | Op::Restore, Some((raw, _))) => {
                let reason = c
                    .fields
                    .get("reason")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                let (deleted_at, reason) = if c.op == Op::Delete {
                    (Some(ts_text(now_millis())), reason)
                } else {
                    (None, None)
                };
                let sql = format!(
                    "UPDATE {} SET deleted_at = ?2, delete_reason = ?3, version = MAX(version, ?4) WHERE id = ?1",
                    kind.name()
                );
                self.conn.prepare_cached(&sql)?.execute(params![
                    c.record_id.to_string(),
                    deleted_at,
                    reason,
                    server_seq
                ])?;
                let _ = raw;
                if kind == EntityKind::Child {
                    self.touched_children.push(c.record_id);
                }
            }
            // Nothing here to delete or restore.
            (Op::Delete | Op::Restore, None) => {}
        }
        Ok(kept)
    }

    // ------------------------------------------------------------ internals

    /// Normalise, validate and resolve references; returns the index columns
    /// with the school filled in from the child where the body leaves it open.
    fn prepare<T: Entity>(&mut self, body: &mut T) -> Result<IndexCols> {
        body.normalize();
        body.validate(self.today)?;
        let mut idx = body.index();
        if let Some(child_id) = idx.child_id {
            let school = match self.refs.live_children.get(&child_id) {
                Some(school) => Some(*school),
                None => {
                    let school: Option<Option<String>> = self
                        .conn
                        .prepare_cached(
                            "SELECT school_id FROM child WHERE id = ?1 AND deleted_at IS NULL",
                        )?
                        .query_row([child_id.to_string()], |r| r.get(0))
                        .optional()?;
                    let school = school.map(|s| s.and_then(|s| Uuid::parse_str(&s).ok()));
                    if let Some(school) = school {
                        self.refs.live_children.insert(child_id, school);
                    }
                    school
                }
            };
            let Some(school) = school else {
                return Err(StoreError::MissingReference {
                    field: "child_id",
                    entity: "child",
                    id: child_id,
                });
            };
            if idx.school_id.is_none() {
                idx.school_id = school;
            }
        }
        let parent = match T::KIND {
            EntityKind::HelpPlan => Some(("household_id", EntityKind::Household)),
            EntityKind::Child => Some(("household_id", EntityKind::Household)),
            EntityKind::HomeVisit => Some(("household_id", EntityKind::Household)),
            EntityKind::VisitAmendment | EntityKind::FollowUp => {
                Some(("visit_id", EntityKind::HomeVisit))
            }
            EntityKind::ScreeningEntry => Some(("round_id", EntityKind::ScreeningRound)),
            EntityKind::PersuasionVisit => Some(("dropout_event_id", EntityKind::DropoutEvent)),
            EntityKind::PlanVersion => Some(("plan_id", EntityKind::HelpPlan)),
            _ => None,
        };
        if let (Some((field, kind)), Some(pid)) = (parent, idx.parent_id) {
            if !self.exists(kind, pid)? {
                return Err(StoreError::MissingReference {
                    field,
                    entity: kind.name(),
                    id: pid,
                });
            }
        }
        if T::KIND != EntityKind::School {
            if let Some(sid) = idx.school_id {
                if !self.exists(EntityKind::School, sid)? {
                    return Err(StoreError::MissingReference {
                        field: "school_id",
                        entity: "school",
                        id: sid,
                    });
                }
            }
        }
        Ok(idx)
    }

    /// Whether a row (live or a tombstone) has this id.
    fn exists(&mut self, kind: EntityKind, id: Uuid) -> Result<bool> {
        if self.refs.exists.contains(&(kind, id)) {
            return Ok(true);
        }
        let found = self
            .conn
            .prepare_cached(&kind_sql(kind)?.exists)?
            .query_row([id.to_string()], |_| Ok(()))
            .optional()?
            .is_some();
        if found {
            self.refs.exists.insert((kind, id));
        }
        Ok(found)
    }

    fn raw(&self, kind: EntityKind, id: Uuid) -> Result<Option<RawRecord>> {
        let sql = format!("SELECT {META_COLS} FROM {} WHERE id = ?1", kind.name());
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id.to_string()], read_raw)
            .optional()?)
    }

    /// [`Writer::raw`] with the row's indexed columns as stored, for an
    /// update ([`Writer::update_row`]).
    fn raw_indexed(&self, kind: EntityKind, id: Uuid) -> Result<Option<(RawRecord, RowIdx)>> {
        let sql = format!(
            "SELECT {META_COLS}, school_id, child_id, parent_id FROM {} WHERE id = ?1",
            kind.name()
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id.to_string()], |r| {
                Ok((
                    read_raw(r)?,
                    RowIdx {
                        school_id: r.get(10)?,
                        child_id: r.get(11)?,
                        parent_id: r.get(12)?,
                    },
                ))
            })
            .optional()?)
    }

    fn live_raw_indexed(&self, kind: EntityKind, id: Uuid) -> Result<(RawRecord, RowIdx)> {
        let entity = kind.name();
        match self.raw_indexed(kind, id)? {
            None => Err(StoreError::NotFound { entity, id }),
            Some((r, _)) if r.deleted_at.is_some() => Err(StoreError::Deleted { entity, id }),
            Some(found) => Ok(found),
        }
    }

    fn live_raw(&self, kind: EntityKind, id: Uuid) -> Result<RawRecord> {
        let entity = kind.name();
        match self.raw(kind, id)? {
            None => Err(StoreError::NotFound { entity, id }),
            Some(r) if r.deleted_at.is_some() => Err(StoreError::Deleted { entity, id }),
            Some(r) => Ok(r),
        }
    }

    fn insert_row<T: Entity>(
        &mut self,
        kind: EntityKind,
        meta: &Meta,
        body_json: &str,
        idx: &IndexCols,
        body: &T,
    ) -> Result<()> {
        let child = (body as &dyn Any)
            .downcast_ref::<ChildCard>()
            .map(search::ChildColumns::of);
        self.insert_row_cols(kind, meta, body_json, idx, child.as_ref())
    }

    /// Insert a row whose body JSON, index columns and (for a child) search
    /// columns are already made.
    pub(crate) fn insert_row_cols(
        &mut self,
        kind: EntityKind,
        meta: &Meta,
        body_json: &str,
        idx: &IndexCols,
        child: Option<&search::ChildColumns>,
    ) -> Result<()> {
        // A new row's two instants are one (formatted once).
        let created = ts_text(meta.created_at);
        let updated_text;
        let updated = if meta.updated_at == meta.created_at {
            &created
        } else {
            updated_text = ts_text(meta.updated_at);
            &updated_text
        };
        let common = params![
            meta.id.to_string(),
            body_json,
            idx.school_id.map(|u| u.to_string()),
            idx.child_id.map(|u| u.to_string()),
            idx.parent_id.map(|u| u.to_string()),
            idx.date.map(|d| d.to_string()),
            created,
            updated,
            meta.created_by.to_string(),
            meta.updated_by.to_string(),
            meta.device_id.to_string(),
            meta.version,
        ];
        if let Some(c) = child {
            let mut st = self.conn.prepare_cached(
                "INSERT INTO child (id, body, school_id, child_id, parent_id, date, created_at, updated_at, created_by, updated_by, device_id, version,
                    name, sort_key, search_keys, id_number, student_number, gender, township, grade, class_name, left_behind_type, guardianship_type, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
            )?;
            let mut all: Vec<&dyn rusqlite::ToSql> = common.to_vec();
            all.extend(c.params());
            st.execute(all.as_slice())?;
            self.touched_children.push(meta.id);
        } else {
            self.conn
                .prepare_cached(&kind_sql(kind)?.insert)?
                .execute(common)?;
        }
        Ok(())
    }

    /// Write a row's new body and columns. `old` is the row's indexed
    /// columns as stored: when none changes, the statement leaves them out,
    /// so SQLite rewrites no index entry (it re-inserts an index's entry
    /// whenever one of its columns is assigned, even to the same value: on a
    /// county-sized file that dirtied a page of each of the child table's two
    /// indexes for every edited card).
    fn update_row<T: Entity>(
        &mut self,
        kind: EntityKind,
        meta: &Meta,
        body_json: &str,
        idx: &IndexCols,
        old: Option<&RowIdx>,
        body: &T,
    ) -> Result<()> {
        // The body as created must reach the log before the row changes it.
        materialise_create_body(self.conn, kind, meta.id)?;
        if kind == EntityKind::Child {
            self.refs.live_children.remove(&meta.id);
        }
        let new = RowIdx::of(idx);
        let same_idx = old == Some(&new);
        let ids = kind_sql(kind)?;
        let id_text = meta.id.to_string();
        let date = idx.date.map(|d| d.to_string());
        let updated_at = ts_text(meta.updated_at);
        let updated_by = meta.updated_by.to_string();
        let device_id = meta.device_id.to_string();
        // ?1..?7 in both statements; ?8..?10 only where the indexed columns
        // are written; a child's search columns follow.
        let mut all: Vec<&dyn rusqlite::ToSql> = vec![
            &id_text,
            &body_json,
            &date,
            &updated_at,
            &updated_by,
            &device_id,
            &meta.version,
        ];
        if !same_idx {
            all.extend([
                &new.school_id as &dyn rusqlite::ToSql,
                &new.child_id,
                &new.parent_id,
            ]);
        }
        let sql = if same_idx {
            &ids.update_same_idx
        } else {
            &ids.update
        };
        if let Some(child) = (body as &dyn Any).downcast_ref::<ChildCard>() {
            let c = search::ChildColumns::of(child);
            let sql = if same_idx {
                CHILD_UPDATE_SAME_IDX.as_str()
            } else {
                CHILD_UPDATE.as_str()
            };
            all.extend(c.params());
            self.conn.prepare_cached(sql)?.execute(all.as_slice())?;
            self.touched_children.push(meta.id);
        } else {
            self.conn.prepare_cached(sql)?.execute(all.as_slice())?;
        }
        Ok(())
    }

    /// Append this device's next change-log entry. `fields_json` is `None` for
    /// a create only (the body as created).
    fn append_log(
        &mut self,
        kind: EntityKind,
        record_id: Uuid,
        school_id: Option<Uuid>,
        op: Op,
        fields_json: Option<&str>,
        base_version: i64,
    ) -> Result<()> {
        let seq = self.ctx.next_seq;
        let now = now_ms();
        let wall = (now as i64).saturating_add(self.ctx.clock_offset_ms).max(0) as u64;
        let hlc = self.ctx.clock.tick(wall);
        if !(1..=SEQ_MAX).contains(&seq) {
            return Err(StoreError::BadSequence {
                device_id: self.ctx.device_id,
                seq,
            });
        }
        self.conn
            .prepare_cached(
                "INSERT INTO log_entry (pos, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, resolves)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                pos(self.ctx.device_n, seq),
                blob(&change_id(now)),
                hlc.as_i64(),
                kind.name(),
                blob(&record_id),
                school_id.as_ref().map(blob),
                op.as_str(),
                fields_json,
                base_version,
                blob(&self.ctx.user_id),
                self.resolving.as_ref().map(blob),
            ])?;
        self.ctx.next_seq = seq + 1;
        Ok(())
    }
}

/// SQL text made once per entity kind (the statement cache is keyed by the
/// text, so a per-row `format!` only cost an allocation).
struct KindSql {
    insert: String,
    exists: String,
    /// [`Writer::update_row`]'s statement, and the one for a row whose
    /// indexed columns stay as they are.
    update: String,
    update_same_idx: String,
}

/// The columns an update writes besides the indexed ones (`?1` is the id).
const UPDATE_SET: &str =
    "body = ?2, date = ?3, updated_at = ?4, updated_by = ?5, device_id = ?6, version = ?7";
/// The placement columns (`school_id`, `child_id`, `parent_id`), left out of
/// an update that keeps them: every other column an index of a record table
/// reads is one the update statements always assign (test
/// `every_index_of_a_record_table_is_kept_by_the_update_statements`).
const UPDATE_SET_IDX: &str = "school_id = ?8, child_id = ?9, parent_id = ?10";
/// A child's search columns, after the others.
fn child_search_set(first: usize) -> String {
    [
        "name",
        "sort_key",
        "search_keys",
        "id_number",
        "student_number",
        "gender",
        "township",
        "grade",
        "class_name",
        "left_behind_type",
        "guardianship_type",
        "status",
    ]
    .iter()
    .enumerate()
    .map(|(i, c)| format!("{c} = ?{}", first + i))
    .collect::<Vec<_>>()
    .join(", ")
}
static CHILD_UPDATE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE child SET {UPDATE_SET}, {UPDATE_SET_IDX}, {} WHERE id = ?1",
        child_search_set(11)
    )
});
static CHILD_UPDATE_SAME_IDX: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE child SET {UPDATE_SET}, {} WHERE id = ?1",
        child_search_set(8)
    )
});

/// A row's indexed columns as text, as stored.
#[derive(Debug, PartialEq)]
pub(crate) struct RowIdx {
    school_id: Option<String>,
    child_id: Option<String>,
    parent_id: Option<String>,
}

impl RowIdx {
    fn of(idx: &IndexCols) -> RowIdx {
        RowIdx {
            school_id: idx.school_id.map(|u| u.to_string()),
            child_id: idx.child_id.map(|u| u.to_string()),
            parent_id: idx.parent_id.map(|u| u.to_string()),
        }
    }
}

static KIND_SQL: std::sync::LazyLock<Vec<(EntityKind, KindSql)>> = std::sync::LazyLock::new(|| {
    EntityKind::ALL
            .iter()
            .map(|&k| {
                let t = k.name();
                (
                    k,
                    KindSql {
                        insert: format!(
                            "INSERT INTO {t} (id, body, school_id, child_id, parent_id, date, created_at, updated_at, created_by, updated_by, device_id, version)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                        ),
                        exists: format!("SELECT 1 FROM {t} WHERE id = ?1"),
                        update: format!("UPDATE {t} SET {UPDATE_SET}, {UPDATE_SET_IDX} WHERE id = ?1"),
                        update_same_idx: format!("UPDATE {t} SET {UPDATE_SET} WHERE id = ?1"),
                    },
                )
            })
            .collect()
});

fn kind_sql(kind: EntityKind) -> Result<&'static KindSql> {
    KIND_SQL
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, s)| s)
        .ok_or_else(|| StoreError::Open(format!("no table for {}", kind.name())))
}

/// A new change id: a UUIDv7 of this millisecond whose random bits come from
/// the thread's CSPRNG (`rand::thread_rng`, seeded from the OS) instead of a
/// `getrandom` system call per id, which was a measurable part of an insert.
fn change_id(now_ms: u64) -> Uuid {
    use rand::Rng;
    let mut random = [0u8; 10];
    rand::thread_rng().fill(&mut random);
    uuid::Builder::from_unix_timestamp_millis(now_ms, &random).into_uuid()
}

fn fields_map(v: &Value) -> diff::Fields {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn related(a: &str, b: &str) -> bool {
    let prefix =
        |p: &str, q: &str| q.len() > p.len() && q.starts_with(p) && q.as_bytes()[p.len()] == b'.';
    a == b || prefix(a, b) || prefix(b, a)
}

/// Instants are stored to the millisecond; meta carries the same precision so a
/// record reads back equal to what the write returned.
fn now_millis() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

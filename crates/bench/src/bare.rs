//! The baseline: the same rows written with plain prepared `INSERT`s into
//! the same schema, and a ladder of variants that add the store's work back
//! one piece at a time (change-log row, normalise + validate, reference
//! checks) to show where the store's time goes.

use std::any::Any;
use std::collections::HashSet;

use chrono::{NaiveDate, SecondsFormat, SubsecRound, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;
use shouhu_core::{ChildCard, Entity, EntityKind, HelpPlan};
use shouhu_demo::Sink;
use uuid::Uuid;

/// Which of the store's steps a variant adds to the bare insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extra {
    /// Append a change-log row like the store's: its `log_entry` table
    /// (migration 0005: keyed by `pos` = device << 40 | seq, ids as 16-byte
    /// BLOBs), a create's `fields` NULL ("the body as created").
    pub log: bool,
    /// `normalize()` and `validate()` the body.
    pub validate: bool,
    /// The store's reference checks: the child exists (and its school), the
    /// parent record exists, the school exists, each id remembered once
    /// created or found (across transactions, as the store does while no
    /// other connection writes); no "already exists" lookup (the primary key
    /// refuses a duplicate).
    pub refs: bool,
    /// Experiment (the store before migration 0003): the change-log row
    /// repeats the whole body of a create.
    pub log_with_body: bool,
    /// Experiment (the store before migration 0003): the change log as a
    /// `WITHOUT ROWID` table keyed by (device_id, seq).
    pub log_without_rowid: bool,
    /// Experiment (the store before): every reference looked up again, and
    /// an "already exists" read of the whole row first.
    pub refs_uncached: bool,
    /// Experiment: `PRAGMA cache_size` in MB (SQLite's default is 2 MB).
    pub cache_mb: Option<u32>,
    /// Experiment: the change-log row in another shape (see [`LogShape`]).
    pub log_shape: Option<LogShape>,
}

/// Candidate shapes of the change log, each a table the bench creates in the
/// bare file (`change_log_x`), for `--log-experiments`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogShape {
    /// Migration 0003's table (the store before 0005): text ids, a rowid
    /// table with `UNIQUE (device_id, seq)` and an index on `record_id`.
    Text,
    /// 0003's columns with every id a 16-byte BLOB; both indexes kept.
    BlobIds,
    /// 0003's text table without its `record_id` index.
    NoRecordIndex,
    /// The store's `log_entry` (0005) without the `record_id` index (the
    /// floor of a log row).
    PosKeyNoRecordIndex,
}

impl LogShape {
    pub fn label(self) -> &'static str {
        match self {
            LogShape::Text => "text ids, `UNIQUE (device_id, seq)` (0003, before this change)",
            LogShape::BlobIds => "0003's table with 16-byte BLOB ids",
            LogShape::NoRecordIndex => "0003's table without its `record_id` index",
            LogShape::PosKeyNoRecordIndex => "0005's table without its `record_id` index",
        }
    }

    pub fn ddl(self) -> &'static str {
        match self {
            LogShape::Text => {
                "CREATE TABLE change_log_x (
    device_id TEXT NOT NULL, seq INTEGER NOT NULL, change_id TEXT NOT NULL, hlc INTEGER NOT NULL,
    entity TEXT NOT NULL, record_id TEXT NOT NULL, school_id TEXT, op TEXT NOT NULL, fields TEXT,
    base_version INTEGER NOT NULL, user_id TEXT NOT NULL, server_seq INTEGER, resolves TEXT,
    UNIQUE (device_id, seq));
CREATE INDEX change_log_x_record ON change_log_x (record_id);"
            }
            LogShape::BlobIds => {
                "CREATE TABLE change_log_x (
    device_id BLOB NOT NULL, seq INTEGER NOT NULL, change_id BLOB NOT NULL, hlc INTEGER NOT NULL,
    entity TEXT NOT NULL, record_id BLOB NOT NULL, school_id BLOB, op TEXT NOT NULL, fields TEXT,
    base_version INTEGER NOT NULL, user_id BLOB NOT NULL, server_seq INTEGER, resolves BLOB,
    UNIQUE (device_id, seq));
CREATE INDEX change_log_x_record ON change_log_x (record_id);"
            }
            LogShape::NoRecordIndex => {
                "CREATE TABLE change_log_x (
    device_id TEXT NOT NULL, seq INTEGER NOT NULL, change_id TEXT NOT NULL, hlc INTEGER NOT NULL,
    entity TEXT NOT NULL, record_id TEXT NOT NULL, school_id TEXT, op TEXT NOT NULL, fields TEXT,
    base_version INTEGER NOT NULL, user_id TEXT NOT NULL, server_seq INTEGER, resolves TEXT,
    UNIQUE (device_id, seq));"
            }
            LogShape::PosKeyNoRecordIndex => {
                "CREATE TABLE change_log_x (
    pos INTEGER PRIMARY KEY, change_id BLOB NOT NULL, hlc INTEGER NOT NULL,
    entity TEXT NOT NULL, record_id BLOB NOT NULL, school_id BLOB, op TEXT NOT NULL, fields TEXT,
    base_version INTEGER NOT NULL, user_id BLOB NOT NULL, server_seq INTEGER, resolves BLOB);"
            }
        }
    }
}

impl Extra {
    pub fn is_experiment(self) -> bool {
        self.log_with_body
            || self.log_without_rowid
            || self.log_shape.is_some()
            || self.refs_uncached
            || self.cache_mb.is_some()
    }

    pub fn label(self) -> String {
        let mut s = String::from(if self.is_experiment() {
            "experiment: bare"
        } else {
            "bare"
        });
        if self.log {
            s.push_str(" + change-log row");
            if self.log_with_body {
                s.push_str(" with the body");
            }
            if self.log_without_rowid {
                s.push_str(" in a `WITHOUT ROWID` table");
            }
            if let Some(shape) = self.log_shape {
                s.push_str(", ");
                s.push_str(shape.label());
            }
        }
        if self.validate {
            s.push_str(" + normalise/validate");
        }
        if self.refs {
            s.push_str(" + reference checks");
            if self.refs_uncached {
                s.push_str(" (each looked up, with an \"already exists\" read)");
            }
        }
        if let Some(mb) = self.cache_mb {
            s.push_str(&format!(", `cache_size` {mb} MB"));
        }
        if s == "bare" {
            s = "bare rusqlite (same rows, same batches)".into();
        }
        s
    }
}

pub struct Bare<'c> {
    pub conn: &'c Connection,
    pub extra: Extra,
    pub today: NaiveDate,
    pub device: String,
    pub user: String,
    pub seq: i64,
    /// Ids known to exist (`refs`, not `refs_uncached`).
    pub known: HashSet<Uuid>,
}

#[derive(Debug)]
pub struct BareError(pub String);

impl<E: std::fmt::Display> From<E> for BareError {
    fn from(e: E) -> Self {
        BareError(e.to_string())
    }
}

fn enum_str<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn now_text() -> String {
    Utc::now()
        .trunc_subsecs(3)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parent_kind(kind: EntityKind) -> Option<EntityKind> {
    match kind {
        EntityKind::HelpPlan | EntityKind::Child | EntityKind::HomeVisit => {
            Some(EntityKind::Household)
        }
        EntityKind::VisitAmendment | EntityKind::FollowUp => Some(EntityKind::HomeVisit),
        EntityKind::ScreeningEntry => Some(EntityKind::ScreeningRound),
        EntityKind::PersuasionVisit => Some(EntityKind::DropoutEvent),
        EntityKind::PlanVersion => Some(EntityKind::HelpPlan),
        _ => None,
    }
}

/// The store's change log as it was before migration 0003, a `WITHOUT ROWID`
/// table (for the `log_without_rowid` experiment).
pub const OLD_LOG: &str = "CREATE TABLE change_log_old (
    device_id TEXT NOT NULL, seq INTEGER NOT NULL, change_id TEXT NOT NULL, hlc INTEGER NOT NULL,
    entity TEXT NOT NULL, record_id TEXT NOT NULL, school_id TEXT, op TEXT NOT NULL, fields TEXT,
    base_version INTEGER NOT NULL, user_id TEXT NOT NULL, server_seq INTEGER, resolves TEXT,
    PRIMARY KEY (device_id, seq)) WITHOUT ROWID;
CREATE INDEX change_log_old_record ON change_log_old (record_id);";

impl Bare<'_> {
    fn exists(&mut self, table: &str, id: Uuid) -> Result<bool, BareError> {
        if !self.extra.refs_uncached && self.known.contains(&id) {
            return Ok(true);
        }
        let sql = format!("SELECT 1 FROM {table} WHERE id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id.to_string()], |_| Ok(()))
            .optional()?
            .is_some()
            && {
                if !self.extra.refs_uncached {
                    self.known.insert(id);
                }
                true
            })
    }

    fn check_refs<T: Entity>(&mut self, id: Uuid, body: &T) -> Result<(), BareError> {
        let kind = T::KIND;
        let idx = body.index();
        if !self.extra.refs_uncached {
            if let Some(child) = idx.child_id {
                if !self.exists("child", child)? {
                    return Err(BareError(format!("child {child} missing")));
                }
            }
            return self.check_parent_and_school(kind, &idx);
        }
        // The store reads the whole row to tell "already exists".
        let sql = format!(
            "SELECT id, body, created_at, updated_at, created_by, updated_by, device_id, version, deleted_at, delete_reason FROM {} WHERE id = ?1",
            kind.name()
        );
        let found = self
            .conn
            .prepare_cached(&sql)?
            .query_row([id.to_string()], |r| r.get::<_, String>(1))
            .optional()?;
        if found.is_some() {
            return Err(BareError(format!("{id} exists")));
        }
        if let Some(child) = idx.child_id {
            let school: Option<Option<String>> = self
                .conn
                .prepare_cached("SELECT school_id FROM child WHERE id = ?1 AND deleted_at IS NULL")?
                .query_row([child.to_string()], |r| r.get(0))
                .optional()?;
            if school.is_none() {
                return Err(BareError(format!("child {child} missing")));
            }
        }
        self.check_parent_and_school(kind, &idx)
    }

    fn check_parent_and_school(
        &mut self,
        kind: EntityKind,
        idx: &shouhu_core::IndexCols,
    ) -> Result<(), BareError> {
        if let (Some(p), Some(pid)) = (parent_kind(kind), idx.parent_id) {
            if !self.exists(p.name(), pid)? {
                return Err(BareError(format!("parent {pid} missing")));
            }
        }
        if kind != EntityKind::School {
            if let Some(s) = idx.school_id {
                if !self.exists("school", s)? {
                    return Err(BareError(format!("school {s} missing")));
                }
            }
        }
        Ok(())
    }

    fn append_log(
        &mut self,
        kind: EntityKind,
        id: Uuid,
        school: &Option<String>,
        fields: &str,
    ) -> Result<(), BareError> {
        self.seq += 1;
        if let Some(shape) = self.extra.log_shape {
            return self.append_log_shaped(shape, kind, id, school);
        }
        let fields = self.extra.log_with_body.then_some(fields);
        if !self.extra.log_without_rowid {
            // The store's log_entry (0005); this file's one device is number 1.
            let blob = |s: &str| Uuid::parse_str(s).map(|u| u.as_bytes().to_vec());
            let school = school.as_deref().map(blob).transpose()?;
            self.conn
                .prepare_cached(
                    "INSERT INTO log_entry (pos, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, resolves)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'create', ?7, 0, ?8, NULL)",
                )?
                .execute(params![
                    (1i64 << 40) | self.seq,
                    &Uuid::now_v7().as_bytes()[..],
                    self.seq,
                    kind.name(),
                    &id.as_bytes()[..],
                    school,
                    fields,
                    blob(&self.user)?,
                ])?;
            return Ok(());
        }
        let table = "change_log_old";
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO {table} (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, resolves)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'create', ?8, 0, ?9, NULL)"
            ))?
            .execute(params![
                self.device,
                self.seq,
                Uuid::now_v7().to_string(),
                self.seq,
                kind.name(),
                id.to_string(),
                school,
                fields,
                self.user,
            ])?;
        Ok(())
    }
}

impl Bare<'_> {
    fn append_log_shaped(
        &mut self,
        shape: LogShape,
        kind: EntityKind,
        id: Uuid,
        school: &Option<String>,
    ) -> Result<(), BareError> {
        let blob = |s: &str| Uuid::parse_str(s).map(|u| u.as_bytes().to_vec());
        let school_text = school;
        let school = school.as_deref().map(blob).transpose()?;
        let device = blob(&self.device)?;
        let user = blob(&self.user)?;
        match shape {
            LogShape::BlobIds => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO change_log_x (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, resolves)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'create', NULL, 0, ?8, NULL)",
                    )?
                    .execute(params![
                        device,
                        self.seq,
                        &Uuid::now_v7().as_bytes()[..],
                        self.seq,
                        kind.name(),
                        &id.as_bytes()[..],
                        school,
                        user,
                    ])?;
            }
            LogShape::Text | LogShape::NoRecordIndex => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO change_log_x (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, resolves)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'create', NULL, 0, ?8, NULL)",
                    )?
                    .execute(params![
                        self.device,
                        self.seq,
                        Uuid::now_v7().to_string(),
                        self.seq,
                        kind.name(),
                        id.to_string(),
                        school_text,
                        self.user,
                    ])?;
            }
            LogShape::PosKeyNoRecordIndex => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO change_log_x (pos, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, resolves)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'create', NULL, 0, ?7, NULL)",
                    )?
                    .execute(params![
                        (1i64 << 40) | self.seq,
                        &Uuid::now_v7().as_bytes()[..],
                        self.seq,
                        kind.name(),
                        &id.as_bytes()[..],
                        school,
                        user,
                    ])?;
            }
        }
        Ok(())
    }
}

impl Sink for Bare<'_> {
    type Error = BareError;

    fn create<T: Entity>(&mut self, id: Uuid, mut body: T) -> Result<(), BareError> {
        if self.extra.validate {
            body.normalize();
            body.validate(self.today)
                .map_err(|e| BareError(format!("{e:?}")))?;
        }
        if self.extra.refs {
            self.check_refs(id, &body)?;
        }
        let idx = body.index();
        let json = serde_json::to_string(&body)?;
        let now = now_text();
        let school = idx.school_id.map(|u| u.to_string());
        let common = params![
            id.to_string(),
            json,
            school,
            idx.child_id.map(|u| u.to_string()),
            idx.parent_id.map(|u| u.to_string()),
            idx.date.map(|d| d.to_string()),
            now,
            now,
            self.user,
            self.user,
            self.device,
            0i64,
        ];
        if let Some(c) = (&body as &dyn Any).downcast_ref::<ChildCard>() {
            let mut keys = String::new();
            for k in shouhu_namekeys::name_keys(&c.name) {
                keys.push(' ');
                keys.push_str(&k);
            }
            let extra: [&dyn rusqlite::ToSql; 12] = [
                &c.name,
                &shouhu_namekeys::sort_key(&c.name),
                &keys,
                &c.id_number,
                &c.student_number,
                &c.gender.map(|g| enum_str(&g)),
                &c.current_address.township,
                &c.grade,
                &c.class_name,
                &enum_str(&c.left_behind_type),
                &enum_str(&c.guardianship_type),
                &enum_str(&c.status),
            ];
            let mut all: Vec<&dyn rusqlite::ToSql> = common.to_vec();
            all.extend(extra);
            self.conn
                .prepare_cached(
                    "INSERT INTO child (id, body, school_id, child_id, parent_id, date, created_at, updated_at, created_by, updated_by, device_id, version,
                        name, sort_key, search_keys, id_number, student_number, gender, township, grade, class_name, left_behind_type, guardianship_type, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
                )?
                .execute(all.as_slice())?;
        } else {
            let sql = format!(
                "INSERT INTO {} (id, body, school_id, child_id, parent_id, date, created_at, updated_at, created_by, updated_by, device_id, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                T::KIND.name()
            );
            self.conn.prepare_cached(&sql)?.execute(common)?;
        }
        if self.extra.log {
            self.append_log(T::KIND, id, &school, &json)?;
        }
        if !self.extra.refs_uncached {
            self.known.insert(id);
        }
        Ok(())
    }

    fn revise_plan(&mut self, id: Uuid, body: HelpPlan) -> Result<(), BareError> {
        let json = serde_json::to_string(&body)?;
        self.conn
            .prepare_cached("UPDATE help_plan SET body = ?2 WHERE id = ?1")?
            .execute(params![id.to_string(), json])?;
        Ok(())
    }

    fn amend_visit(
        &mut self,
        _visit_id: Uuid,
        _field: &str,
        _value: Value,
        _reason: &str,
    ) -> Result<(), BareError> {
        // The benchmark's county has no amendments (no extras).
        Ok(())
    }
}

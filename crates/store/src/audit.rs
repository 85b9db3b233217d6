//! The audit log: who looked at or took out what, and who logged in.
//!
//! An entry is written in its own small transaction the moment the thing
//! happens (a card is shown, an export is written, a log-in succeeds). Entries
//! are append-only (the `audit_log` triggers refuse UPDATE and DELETE, even
//! through raw SQL) and go up to the county server with sync, where county
//! admins read and filter them. Sending is tracked by a cursor in `meta`
//! (`audit_sent_through`, a row number), never by changing an entry.
//!
//! Edits are not repeated here: the change log already records every edit with
//! its user, device and time, and is append-only too; the server's audit view
//! shows both.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use rusqlite::{params, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::sync::{meta_i64, set_meta};

/// What happened. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Login,
    LoginFailed,
    Logout,
    AutoLock,
    /// The user locked the screen themselves (the 锁定 button).
    Lock,
    ViewChild,
    ViewNote,
    Export,
    Print,
    Import,
    PasswordChanged,
    PasswordReset,
    UserAdded,
    UserRemoved,
    /// A school left this device's scope and its records were removed from
    /// the device (`Store::purge_school`; not a delete: nothing syncs).
    PurgeSchool,
}

impl AuditAction {
    pub const ALL: [AuditAction; 15] = [
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::Logout,
        AuditAction::AutoLock,
        AuditAction::Lock,
        AuditAction::ViewChild,
        AuditAction::ViewNote,
        AuditAction::Export,
        AuditAction::Print,
        AuditAction::Import,
        AuditAction::PasswordChanged,
        AuditAction::PasswordReset,
        AuditAction::UserAdded,
        AuditAction::UserRemoved,
        AuditAction::PurgeSchool,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::Logout => "logout",
            AuditAction::AutoLock => "auto_lock",
            AuditAction::Lock => "lock",
            AuditAction::ViewChild => "view_child",
            AuditAction::ViewNote => "view_note",
            AuditAction::Export => "export",
            AuditAction::Print => "print",
            AuditAction::Import => "import",
            AuditAction::PasswordChanged => "password_changed",
            AuditAction::PasswordReset => "password_reset",
            AuditAction::UserAdded => "user_added",
            AuditAction::UserRemoved => "user_removed",
            AuditAction::PurgeSchool => "purge_school",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub action: AuditAction,
    pub entity: Option<String>,
    pub record_id: Option<Uuid>,
    pub school_id: Option<Uuid>,
    pub details: Value,
}

/// What an entry is about (all optional: a log-in is about no record).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditTarget {
    pub entity: Option<String>,
    pub record_id: Option<Uuid>,
    pub school_id: Option<Uuid>,
}

/// A query over the local audit log; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<Uuid>,
    pub action: Option<AuditAction>,
    pub record_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// At most this many, newest first (0 = 200).
    pub limit: usize,
}

const COLS: &str =
    "rowid, id, at, device_id, user_id, action, entity, record_id, school_id, details";

fn from_row(r: &Row<'_>) -> rusqlite::Result<(i64, Result<AuditEntry>)> {
    let rowid: i64 = r.get(0)?;
    let id: String = r.get(1)?;
    let at: String = r.get(2)?;
    let device: String = r.get(3)?;
    let user: String = r.get(4)?;
    let action: String = r.get(5)?;
    let entity: Option<String> = r.get(6)?;
    let record: Option<String> = r.get(7)?;
    let school: Option<String> = r.get(8)?;
    let details: String = r.get(9)?;
    let parsed = (|| -> Result<AuditEntry> {
        let bad = |what: &str| StoreError::Open(format!("audit entry {id}: bad {what}"));
        let uuid = |s: &str, what: &str| Uuid::parse_str(s).map_err(|_| bad(what));
        Ok(AuditEntry {
            id: uuid(&id, "id")?,
            at: DateTime::parse_from_rfc3339(&at)
                .map_err(|_| bad("at"))?
                .with_timezone(&Utc),
            device_id: uuid(&device, "device_id")?,
            user_id: uuid(&user, "user_id")?,
            action: AuditAction::parse(&action).ok_or_else(|| bad("action"))?,
            entity,
            record_id: record
                .as_deref()
                .map(|s| uuid(s, "record_id"))
                .transpose()?,
            school_id: school
                .as_deref()
                .map(|s| uuid(s, "school_id"))
                .transpose()?,
            details: serde_json::from_str(&details)?,
        })
    })();
    Ok((rowid, parsed))
}

impl Store {
    /// Appends an audit entry by the current user at the current time.
    pub fn audit(
        &self,
        action: AuditAction,
        target: AuditTarget,
        details: Value,
    ) -> Result<AuditEntry> {
        self.audit_at(action, target, details, self.audit_now())
    }

    /// [`Store::audit`] at a given instant (failed log-ins are recorded at the
    /// next successful one, with the times they happened).
    pub fn audit_at(
        &self,
        action: AuditAction,
        target: AuditTarget,
        details: Value,
        at: DateTime<Utc>,
    ) -> Result<AuditEntry> {
        let entry = self.audit_entry(action, target, details, at);
        insert_entry(&self.conn, &entry)?;
        Ok(entry)
    }

    /// An entry by the current user (not yet stored).
    pub(crate) fn audit_entry(
        &self,
        action: AuditAction,
        target: AuditTarget,
        details: Value,
        at: DateTime<Utc>,
    ) -> AuditEntry {
        AuditEntry {
            id: Uuid::now_v7(),
            // Stored to the millisecond: return what a read gives back.
            at: at.trunc_subsecs(3),
            device_id: self.ctx.device_id,
            user_id: self.ctx.user_id,
            action,
            entity: target.entity,
            record_id: target.record_id,
            school_id: target.school_id,
            details,
        }
    }

    /// The current instant as audit entries take it (with the store's
    /// simulated clock offset).
    pub(crate) fn audit_now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.ctx.clock_offset_ms)
    }
}

/// Store an entry (through `conn`, which may be inside a transaction).
pub(crate) fn insert_entry(conn: &rusqlite::Connection, entry: &AuditEntry) -> Result<()> {
    conn.prepare_cached(
                "INSERT INTO audit_log (id, at, device_id, user_id, action, entity, record_id, school_id, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                entry.id.to_string(),
                entry.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                entry.device_id.to_string(),
                entry.user_id.to_string(),
                entry.action.as_str(),
                entry.entity,
                entry.record_id.map(|u| u.to_string()),
                entry.school_id.map(|u| u.to_string()),
                serde_json::to_string(&entry.details)?,
            ])?;
    Ok(())
}

impl Store {
    /// Entries matching `filter`, newest first.
    pub fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut sql = format!("SELECT {COLS} FROM audit_log WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        let mut add = |clause: &str, value: String| {
            args.push(value);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(u) = filter.user_id {
            add("user_id =", u.to_string());
        }
        if let Some(a) = filter.action {
            add("action =", a.as_str().to_string());
        }
        if let Some(r) = filter.record_id {
            add("record_id =", r.to_string());
        }
        if let Some(f) = filter.from {
            add("at >=", f.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
        if let Some(t) = filter.to {
            add("at <", t.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
        let limit = if filter.limit == 0 { 200 } else { filter.limit };
        sql.push_str(&format!(" ORDER BY at DESC, rowid DESC LIMIT {limit}"));
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.1?);
        }
        Ok(out)
    }

    /// Entries not yet acknowledged by the server, oldest first, with the row
    /// number to acknowledge through.
    pub fn audit_unsent(&self, limit: usize) -> Result<Vec<(i64, AuditEntry)>> {
        let through = meta_i64(&self.conn, "audit_sent_through")?;
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLS} FROM audit_log WHERE rowid > ?1 ORDER BY rowid LIMIT ?2"
        ))?;
        let rows = st.query_map(params![through, limit as i64], from_row)?;
        let mut out = Vec::new();
        for row in rows {
            let (rowid, entry) = row?;
            out.push((rowid, entry?));
        }
        Ok(out)
    }

    /// The server holds every entry up to row `through`. Never moves back.
    pub fn audit_mark_sent(&self, through: i64) -> Result<()> {
        let current = meta_i64(&self.conn, "audit_sent_through")?;
        if through > current {
            set_meta(&self.conn, "audit_sent_through", &through.to_string())?;
        }
        Ok(())
    }
}

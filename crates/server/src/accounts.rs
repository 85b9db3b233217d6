//! Server accounts and the county audit log.
//!
//! County admins create users here (`shouhu-server user add`); users sync
//! down to the devices whose scope they concern (`GET /v1/users`) with their
//! Argon2id hash, so log-in works offline. A new or reset account gets a
//! one-time initial password and `must_change_password`. Removing a user only
//! sets `removed_at`: the row stays (their changes and audit entries name
//! them), and changes they made before the removal are still accepted.
//!
//! Pushes are held to the roles here ([`check_roles`], from
//! `shouhu_auth::role`), after the device scope check.
//!
//! The audit log is append-only (SQLite triggers refuse UPDATE and DELETE);
//! devices upload entries idempotently by entry id, and entries whose user or
//! school is outside the uploading device's scope are kept but flagged. There
//! is no API to edit or delete an entry. The audit view
//! ([`ServerDb::audit_view`], `shouhu-server audit`) lists these entries
//! merged by time with every edit of the change log (itself append-only,
//! migration 7): who, device, when, the record and the names of the fields
//! written, never their values.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shouhu_auth::password::{check_new_password, hash_password, KdfParams};
use shouhu_auth::role::{self, Action, Role, Target};
use shouhu_auth::ReaderPublicKey;
use shouhu_core::EntityKind;
use shouhu_protocol::{
    AuditRecord, AuditUploadResponse, Change, Scope, UserRecord, UserScope, MAX_AUDIT_ENTRIES,
};
use uuid::Uuid;

use crate::db::{now_text, random_secret, uuid, ServerDb};
use crate::error::ApiError;

/// Where a new user works, as an admin gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewUserScope {
    School(Uuid),
    Township(String),
    County,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub login_name: String,
    pub display_name: String,
    pub role: Role,
    pub scope: NewUserScope,
    /// The initial password; `None` makes a random one (returned once).
    pub password: Option<String>,
}

/// A user as admins list it: never the hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserInfo {
    pub id: Uuid,
    pub login_name: String,
    pub display_name: String,
    pub role: String,
    pub scope: UserScope,
    pub must_change_password: bool,
    pub has_reader_key: bool,
    /// How many reader keys are published (one per device that registered
    /// one, revoked devices left out).
    pub reader_keys: usize,
    pub created_at: String,
    pub password_changed_at: String,
    pub removed_at: Option<String>,
}

/// A created or reset account and its initial password (shown once).
#[derive(Debug, Clone, Serialize)]
pub struct Credentials {
    pub user: UserInfo,
    /// Set when the server made the password (it is stored only hashed).
    pub initial_password: Option<String>,
}

/// A query over the county audit log; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// A login name or a user id.
    pub user: Option<String>,
    pub device: Option<Uuid>,
    pub action: Option<String>,
    /// A record id or a target kind (`child`, `psych_note`, …).
    pub target: Option<String>,
    /// Entries at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Entries before this instant.
    pub until: Option<DateTime<Utc>>,
    /// At most this many entries (the oldest that match).
    pub limit: Option<usize>,
}

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRow {
    pub entry_id: Uuid,
    pub at: String,
    pub device_id: Uuid,
    /// The device whose upload brought it (may differ from `device_id` after
    /// the device took a new id).
    pub uploaded_by: Uuid,
    pub user_id: Uuid,
    /// The user's login name, when the server knows the user.
    pub login_name: Option<String>,
    /// The user's display name, when the server knows the user.
    pub user_name: Option<String>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub school_id: Option<String>,
    pub details: Value,
    pub received_at: String,
    /// Why the entry is flagged (`user_unknown`, `user_out_of_scope`,
    /// `school_out_of_scope`, `bad_time`), if it is.
    pub flag: Option<String>,
    /// Where the entry comes from: `audit`, an entry a device uploaded
    /// (views, exports, log-ins, …), or `changes`, an edit read from the
    /// change log ([`ServerDb::audit_view`]).
    pub source: String,
    /// An edit's number in the server's change log.
    pub server_seq: Option<i64>,
}

/// [`AuditRow::source`] of an entry a device uploaded.
pub const SOURCE_AUDIT: &str = "audit";
/// [`AuditRow::source`] of an edit from the change log.
pub const SOURCE_CHANGES: &str = "changes";

/// A change's operations, the actions edits are listed under.
const EDIT_OPS: [&str; 4] = ["create", "update", "delete", "restore"];

/// What an audit query asks of one of the two logs: `None` leaves that log
/// out; otherwise the extra `WHERE` clause (may be empty) and its values.
type LogPart = Option<(&'static str, Vec<SqlValue>)>;

/// Split an `--action` between the two logs. `edit` is every edit,
/// `resolve` every conflict resolution, an operation (`create`, `update`,
/// `delete`, `restore`) the edits doing it; `view` every view (`view_child`,
/// `view_note`, …); any other name a device entry's action.
fn action_parts(action: Option<&str>) -> (LogPart, LogPart) {
    match action {
        None => (Some(("", vec![])), Some(("", vec![]))),
        Some("edit") => (None, Some(("", vec![]))),
        Some("resolve") => (None, Some(("c.resolves IS NOT NULL", vec![]))),
        Some(op) if EDIT_OPS.contains(&op) => {
            (None, Some(("c.op = ?", vec![SqlValue::Text(op.into())])))
        }
        Some("view") => (Some(("substr(a.action, 1, 5) = 'view_'", vec![])), None),
        Some(a) => (Some(("a.action = ?", vec![SqlValue::Text(a.into())])), None),
    }
}

/// A `SELECT` being built: each `?` of an added clause takes the next value,
/// numbered.
struct Select {
    sql: String,
    args: Vec<SqlValue>,
}

impl Select {
    fn and(&mut self, clause: &str, values: Vec<SqlValue>) {
        if clause.is_empty() {
            return;
        }
        self.sql.push_str(" AND ");
        let mut parts = clause.split('?');
        self.sql.push_str(parts.next().unwrap_or_default());
        for (part, v) in parts.zip(values) {
            self.args.push(v);
            self.sql.push_str(&format!("?{}{part}", self.args.len()));
        }
    }
}

/// A change's HLC at or after the instant `t` (its high 48 bits are the
/// wall time in milliseconds).
fn hlc_at(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis().clamp(0, i64::MAX >> 16) << 16
}

/// The id a township goes by in permission scopes: derived from its name
/// (townships are names in the school table), the same on every server and
/// device.
pub fn township_id(name: &str) -> Uuid {
    let d = Sha256::digest(format!("shouhu-township:{}", name.trim()).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    ::uuid::Builder::from_custom_bytes(b).into_uuid()
}

/// Normalise and check a login name: trimmed, lower-case, 2 to 64 letters,
/// digits or `. _ - @`.
pub fn normalise_login(login: &str) -> Result<String, ApiError> {
    let login = login.trim().to_lowercase();
    let n = login.chars().count();
    if !(2..=64).contains(&n) {
        return Err(ApiError::LoginInvalid {
            reason: "length".into(),
        });
    }
    if !login
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(ApiError::LoginInvalid {
            reason: "characters".into(),
        });
    }
    Ok(login)
}

/// Letters and digits without look-alikes (read from paper, typed once).
const PASSWORD_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";

fn initial_password(login: &str) -> String {
    loop {
        let pw = random_secret(12, PASSWORD_ALPHABET);
        if check_new_password(&pw, login).is_ok() {
            return pw;
        }
    }
}

fn hash(password: &str) -> Result<String, ApiError> {
    hash_password(password, KdfParams::INTERACTIVE)
        .map_err(|e| ApiError::Internal(format!("cannot hash a password: {e}")))
}

/// A new log-in key pair, its secret sealed with `password` (public key,
/// sealed secret; base64): the device-side first log-in of this password
/// (see `shouhu_auth::SealedDataKey`); and the key that checks a password
/// change made on a device (`shouhu_auth::credential`), derived from the
/// secret before it is forgotten.
fn login_key(password: &str) -> Result<(String, String, String), ApiError> {
    let fail =
        |e: shouhu_auth::AuthError| ApiError::Internal(format!("cannot make a log-in key: {e}"));
    let pair = shouhu_auth::ReaderKeyPair::generate().map_err(fail)?;
    let sealed = shouhu_auth::SealedReaderKey::seal(&pair, password, KdfParams::INTERACTIVE)
        .map_err(fail)?;
    let (public, secret) = sealed.to_base64();
    Ok((
        public,
        secret,
        shouhu_auth::credential::change_key_text(&pair),
    ))
}

fn check_password(password: &str, login: &str) -> Result<(), ApiError> {
    check_new_password(password, login).map_err(|e| ApiError::PasswordRejected(e.code()))
}

/// The user columns; the tenth is the user's published reader keys (those
/// not of a revoked device, oldest first) as a JSON array.
const USER_COLS: &str = "id, login_name, display_name, role, scope_kind, school_id, township, password_hash, must_change_password, (SELECT json_group_array(public_key) FROM (SELECT rk.public_key FROM reader_key rk LEFT JOIN device d ON d.id = rk.device_id WHERE rk.user_id = user.id AND d.revoked_at IS NULL ORDER BY rk.id)), created_at, password_changed_at, removed_at, (SELECT township FROM school WHERE school.id = user.school_id), login_public_key, login_secret_sealed";

/// A `user` row.
struct UserRow {
    id: String,
    login_name: String,
    display_name: String,
    role: String,
    scope_kind: String,
    school_id: Option<String>,
    township: Option<String>,
    password_hash: String,
    must_change_password: bool,
    reader_public_keys: Vec<String>,
    created_at: String,
    password_changed_at: String,
    removed_at: Option<String>,
    school_township: Option<String>,
    login_public_key: Option<String>,
    login_secret_sealed: Option<String>,
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        login_name: r.get(1)?,
        display_name: r.get(2)?,
        role: r.get(3)?,
        scope_kind: r.get(4)?,
        school_id: r.get(5)?,
        township: r.get(6)?,
        password_hash: r.get(7)?,
        must_change_password: r.get(8)?,
        reader_public_keys: {
            let text: Option<String> = r.get(9)?;
            serde_json::from_str(text.as_deref().unwrap_or("[]")).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, e.into())
            })?
        },
        created_at: r.get(10)?,
        password_changed_at: r.get(11)?,
        removed_at: r.get(12)?,
        school_township: r.get(13)?,
        login_public_key: r.get(14)?,
        login_secret_sealed: r.get(15)?,
    })
}

impl UserRow {
    fn scope(&self) -> Result<UserScope, ApiError> {
        let bad = || ApiError::Internal(format!("bad scope of user {}", self.id));
        Ok(match self.scope_kind.as_str() {
            "school" => {
                let township = self.school_township.clone().unwrap_or_default();
                UserScope::School {
                    school_id: uuid(self.school_id.as_deref().ok_or_else(bad)?)?,
                    township_id: township_id(&township),
                    township,
                }
            }
            "township" => {
                let township = self.township.clone().ok_or_else(bad)?;
                UserScope::Township {
                    township_id: township_id(&township),
                    township,
                }
            }
            "county" => UserScope::County,
            _ => return Err(bad()),
        })
    }

    fn role(&self) -> Result<Role, ApiError> {
        Role::parse(&self.role)
            .ok_or_else(|| ApiError::Internal(format!("bad role of user {}", self.id)))
    }

    fn info(&self) -> Result<UserInfo, ApiError> {
        Ok(UserInfo {
            id: uuid(&self.id)?,
            login_name: self.login_name.clone(),
            display_name: self.display_name.clone(),
            role: self.role.clone(),
            scope: self.scope()?,
            must_change_password: self.must_change_password,
            has_reader_key: !self.reader_public_keys.is_empty(),
            reader_keys: self.reader_public_keys.len(),
            created_at: self.created_at.clone(),
            password_changed_at: self.password_changed_at.clone(),
            removed_at: self.removed_at.clone(),
        })
    }

    fn record(self) -> Result<UserRecord, ApiError> {
        let scope = self.scope()?;
        Ok(UserRecord {
            id: uuid(&self.id)?,
            login_name: self.login_name,
            display_name: self.display_name,
            role: self.role,
            scope,
            password_hash: self.password_hash,
            must_change_password: self.must_change_password,
            created_at: self.created_at,
            password_changed_at: self.password_changed_at,
            removed_at: self.removed_at,
            reader_public_key: self.reader_public_keys.first().cloned(),
            reader_public_keys: self.reader_public_keys,
            login_public_key: self.login_public_key,
            login_secret_sealed: self.login_secret_sealed,
        })
    }
}

/// The schools of a device scope and their townships.
fn scope_places(
    conn: &Connection,
    scope: &Scope,
) -> Result<(HashSet<Uuid>, HashSet<String>), ApiError> {
    let schools: HashSet<Uuid> = scope.schools.iter().copied().collect();
    let mut townships = HashSet::new();
    let mut st = conn.prepare_cached("SELECT township FROM school WHERE id = ?1")?;
    for s in &schools {
        if let Some(t) = st
            .query_row([s.to_string()], |r| r.get::<_, String>(0))
            .optional()?
        {
            townships.insert(t);
        }
    }
    Ok((schools, townships))
}

/// Whether a user concerns a device with these schools and townships.
fn user_in_scope(scope: &UserScope, schools: &HashSet<Uuid>, townships: &HashSet<String>) -> bool {
    match scope {
        UserScope::School { school_id, .. } => schools.contains(school_id),
        UserScope::Township { township, .. } => townships.contains(township),
        UserScope::County => true,
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl ServerDb {
    // ------------------------------------------------------------ users

    fn user_by(&self, clause: &str, value: &str) -> Result<Option<UserRow>, ApiError> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {USER_COLS} FROM user WHERE {clause} = ?1"))?
            .query_row([value], user_row)
            .optional()?)
    }

    fn user_by_login(&self, login: &str) -> Result<UserRow, ApiError> {
        let login = login.trim().to_lowercase();
        self.user_by("login_name", &login)?
            .ok_or(ApiError::UserNotFound(login))
    }

    /// Create a user. The role and scope must fit (a teacher, counselor or
    /// principal works in a school, township staff in a township, county
    /// admins and psychology supervisors county-wide).
    pub fn add_user(&mut self, new: NewUser) -> Result<Credentials, ApiError> {
        let login = normalise_login(&new.login_name)?;
        let name = new.display_name.trim();
        if name.is_empty() {
            return Err(ApiError::BadRequest(
                "用户需要姓名 / a user needs a display name".into(),
            ));
        }
        let (kind, school, township) = match (&new.role, &new.scope) {
            (Role::Teacher | Role::Counselor | Role::Principal, NewUserScope::School(s)) => {
                let known: Option<i64> = self
                    .conn
                    .query_row("SELECT 1 FROM school WHERE id = ?1", [s.to_string()], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if known.is_none() {
                    return Err(ApiError::ScopeInvalid {
                        reason: format!("unknown school {s}"),
                    });
                }
                ("school", Some(s.to_string()), None)
            }
            (Role::TownshipStaff, NewUserScope::Township(t)) => {
                let t = t.trim().to_string();
                let known: Option<i64> = self
                    .conn
                    .query_row(
                        "SELECT 1 FROM school WHERE township = ?1 LIMIT 1",
                        [&t],
                        |r| r.get(0),
                    )
                    .optional()?;
                if known.is_none() {
                    return Err(ApiError::ScopeInvalid {
                        reason: format!("no school in township {t}"),
                    });
                }
                ("township", None, Some(t))
            }
            (Role::CountyAdmin | Role::PsychSupervisor, NewUserScope::County) => {
                ("county", None, None)
            }
            (role, _) => {
                let needs = match role {
                    Role::Teacher | Role::Counselor | Role::Principal => "--school",
                    Role::TownshipStaff => "--township",
                    Role::CountyAdmin | Role::PsychSupervisor => "--county",
                };
                return Err(ApiError::ScopeInvalid {
                    reason: format!("{} needs {needs}", role.as_str()),
                });
            }
        };
        let (password, generated) = match new.password {
            Some(p) => {
                check_password(&p, &login)?;
                (p, false)
            }
            None => (initial_password(&login), true),
        };
        let hash = hash(&password)?;
        let (login_public, login_secret, change_key) = login_key(&password)?;
        let id = Uuid::now_v7();
        let now = now_text();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken: Option<i64> = tx
            .query_row("SELECT 1 FROM user WHERE login_name = ?1", [&login], |r| {
                r.get(0)
            })
            .optional()?;
        if taken.is_some() {
            return Err(ApiError::LoginTaken { login });
        }
        tx.execute(
            "INSERT INTO user (id, login_name, display_name, role, scope_kind, school_id, township, password_hash, must_change_password, created_at, password_changed_at, login_public_key, login_secret_sealed, password_change_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9, ?10, ?11, ?12)",
            params![id.to_string(), login, name, new.role.as_str(), kind, school, township, hash, now, login_public, login_secret, change_key],
        )?;
        tx.commit()?;
        Ok(Credentials {
            user: self.user_by_login(&login)?.info()?,
            initial_password: generated.then_some(password),
        })
    }

    /// Every user, removed ones included, by login name.
    pub fn users(&self) -> Result<Vec<UserInfo>, ApiError> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {USER_COLS} FROM user ORDER BY login_name"))?;
        let rows = st.query_map([], user_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?.info()?);
        }
        Ok(out)
    }

    pub fn user(&self, login: &str) -> Result<UserInfo, ApiError> {
        self.user_by_login(login)?.info()
    }

    /// A new initial password (given, or made and returned once); the user
    /// must change it at the next log-in.
    pub fn reset_password(
        &mut self,
        login: &str,
        password: Option<String>,
    ) -> Result<Credentials, ApiError> {
        let user = self.user_by_login(login)?;
        if user.removed_at.is_some() {
            return Err(ApiError::UserRemoved(user.login_name));
        }
        let (password, generated) = match password {
            Some(p) => {
                check_password(&p, &user.login_name)?;
                (p, false)
            }
            None => (initial_password(&user.login_name), true),
        };
        let (login_public, login_secret, change_key) = login_key(&password)?;
        // The reader secrets of the old password cannot open any more on the
        // user's devices: all their reader keys are cleared, so the pairs made
        // at their next log-ins register (an existing reader then re-grants
        // the notes).
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE user SET password_hash = ?2, must_change_password = 1, password_changed_at = ?3,
                             login_public_key = ?4, login_secret_sealed = ?5, password_change_key = ?6
             WHERE id = ?1",
            params![user.id, hash(&password)?, now_text(), login_public, login_secret, change_key],
        )?;
        tx.execute("DELETE FROM reader_key WHERE user_id = ?1", [&user.id])?;
        tx.commit()?;
        Ok(Credentials {
            user: self.user_by_login(&user.login_name)?.info()?,
            initial_password: generated.then_some(password),
        })
    }

    /// Mark a user removed (never deleted). Removing twice keeps the first
    /// time.
    pub fn remove_user(&mut self, login: &str) -> Result<UserInfo, ApiError> {
        let user = self.user_by_login(login)?;
        self.conn.execute(
            "UPDATE user SET removed_at = ?2 WHERE id = ?1 AND removed_at IS NULL",
            params![user.id, now_text()],
        )?;
        self.user_by_login(&user.login_name)?.info()
    }

    /// The users a device with this scope needs: those of its schools, the
    /// township staff of their townships, and county-wide users.
    pub fn users_for_scope(&self, scope: &Scope) -> Result<Vec<UserRecord>, ApiError> {
        let (schools, townships) = scope_places(&self.conn, scope)?;
        let mut st = self
            .conn
            .prepare(&format!("SELECT {USER_COLS} FROM user ORDER BY login_name"))?;
        let rows = st.query_map([], user_row)?;
        let mut out = Vec::new();
        for r in rows {
            let row = r?;
            if user_in_scope(&row.scope()?, &schools, &townships) {
                out.push(row.record()?);
            }
        }
        Ok(out)
    }

    /// Register the reader public key of a counselor or psychology
    /// supervisor in the device's scope (from a device that holds notes).
    /// A user has one key per device that registered one: the same key again
    /// changes nothing, another key from the same device replaces that
    /// device's (its keyring made a new pair), a key from another device is
    /// added to the set.
    pub fn set_reader_key(
        &mut self,
        scope: &Scope,
        device_id: Uuid,
        user_id: Uuid,
        public_key: &str,
    ) -> Result<UserRecord, ApiError> {
        let key: ReaderPublicKey = serde_json::from_value(json!(public_key.trim()))
            .map_err(|_| ApiError::ReaderKeyInvalid)?;
        let key_text = serde_json::to_value(key)?
            .as_str()
            .map(str::to_string)
            .ok_or(ApiError::ReaderKeyInvalid)?;
        let user = self
            .user_by("id", &user_id.to_string())?
            .ok_or_else(|| ApiError::UserNotFound(user_id.to_string()))?;
        if !user.role()?.reads_notes() {
            return Err(ApiError::NotAReader);
        }
        let (schools, townships) = scope_places(&self.conn, scope)?;
        if !user_in_scope(&user.scope()?, &schools, &townships) {
            return Err(ApiError::UserOutOfScope { reason: "user" });
        }
        if !scope.notes {
            return Err(ApiError::UserOutOfScope {
                reason: "device_without_notes",
            });
        }
        if user.removed_at.is_some() {
            return Err(ApiError::UserRemoved(user.login_name));
        }
        let known: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM reader_key WHERE user_id = ?1 AND public_key = ?2",
                params![user.id, key_text],
                |r| r.get(0),
            )
            .optional()?;
        if known.is_none() {
            self.conn.execute(
                "INSERT INTO reader_key (user_id, device_id, public_key, registered_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id, device_id) DO UPDATE
                 SET public_key = excluded.public_key, registered_at = excluded.registered_at",
                params![user.id, device_id.to_string(), key_text, now_text()],
            )?;
        }
        self.user_by("id", &user.id)?
            .ok_or_else(|| ApiError::UserNotFound(user_id.to_string()))?
            .record()
    }

    /// A password the user changed on a device in scope
    /// (`POST /v1/users/{id}/password`): the new hash and the log-in secret
    /// re-sealed with the new password replace the server's, the log-in key
    /// pair and the reader keys stay, and `must_change_password` is cleared
    /// (the user chose it). Taken only with a proof made from the log-in
    /// secret (`shouhu_auth::credential`) and only if the server's credential
    /// is still the one the change replaces, `based_on`: **the server's
    /// newer credential wins** (an administrator's reset, or a change from
    /// another device that got here first, is kept; the late change is
    /// `user.password_stale` and the device drops it).
    pub fn change_password_from_device(
        &mut self,
        scope: &Scope,
        user_id: Uuid,
        req: &shouhu_protocol::PasswordChangeRequest,
    ) -> Result<UserRecord, ApiError> {
        let user = self
            .user_by("id", &user_id.to_string())?
            .ok_or_else(|| ApiError::UserNotFound(user_id.to_string()))?;
        let (schools, townships) = scope_places(&self.conn, scope)?;
        if !user_in_scope(&user.scope()?, &schools, &townships) {
            return Err(ApiError::UserOutOfScope { reason: "user" });
        }
        if user.removed_at.is_some() {
            return Err(ApiError::UserRemoved(user.login_name));
        }
        if req.based_on != user.password_changed_at {
            return Err(ApiError::PasswordStale {
                current: user.password_changed_at,
            });
        }
        let change_key: Option<String> = self.conn.query_row(
            "SELECT password_change_key FROM user WHERE id = ?1",
            [&user.id],
            |r| r.get(0),
        )?;
        let (Some(change_key), Some(login_public)) = (change_key, &user.login_public_key) else {
            return Err(ApiError::PasswordChangeUnavailable);
        };
        if !shouhu_auth::credential::verify(
            &change_key,
            user_id,
            &req.based_on,
            &req.password_hash,
            &req.login_secret_sealed,
            &req.proof,
        ) {
            return Err(ApiError::PasswordProofInvalid);
        }
        if !shouhu_auth::password::is_argon2id_hash(&req.password_hash) {
            return Err(ApiError::BadRequest(
                "新密码的哈希不是 Argon2id / the new password hash is not an Argon2id PHC string"
                    .into(),
            ));
        }
        if shouhu_auth::SealedReaderKey::from_base64(login_public, &req.login_secret_sealed)
            .is_err()
        {
            return Err(ApiError::BadRequest(
                "重新加密的登录密钥无效 / the re-sealed log-in secret is malformed".into(),
            ));
        }
        // Only over the credential it replaces, even against a reset racing
        // in between.
        let n = self.conn.execute(
            "UPDATE user SET password_hash = ?3, login_secret_sealed = ?4, must_change_password = 0,
                             password_changed_at = ?5
             WHERE id = ?1 AND password_changed_at = ?2",
            params![
                user.id,
                req.based_on,
                req.password_hash,
                req.login_secret_sealed.trim(),
                now_text()
            ],
        )?;
        let after = self
            .user_by("id", &user.id)?
            .ok_or_else(|| ApiError::UserNotFound(user_id.to_string()))?;
        if n == 0 {
            return Err(ApiError::PasswordStale {
                current: after.password_changed_at,
            });
        }
        after.record()
    }

    // ------------------------------------------------------------ audit

    /// Store a device's audit entries. Entries the server already holds are
    /// skipped (a resend); entries whose user or school is outside the
    /// device's scope are stored with a flag, never dropped.
    pub fn store_audit(
        &mut self,
        device_id: Uuid,
        scope: &Scope,
        entries: &[AuditRecord],
    ) -> Result<AuditUploadResponse, ApiError> {
        if entries.len() > MAX_AUDIT_ENTRIES {
            return Err(ApiError::BatchTooLarge {
                max: MAX_AUDIT_ENTRIES,
            });
        }
        let (schools, townships) = scope_places(&self.conn, scope)?;
        let received_at = now_text();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = AuditUploadResponse {
            stored: 0,
            duplicates: 0,
            flagged: 0,
        };
        let mut users: HashMap<Uuid, Option<UserScope>> = HashMap::new();
        for e in entries {
            let user_scope = match users.get(&e.user_id) {
                Some(s) => s.clone(),
                None => {
                    let s = tx
                        .prepare_cached(&format!("SELECT {USER_COLS} FROM user WHERE id = ?1"))?
                        .query_row([e.user_id.to_string()], user_row)
                        .optional()?
                        .map(|u| u.scope())
                        .transpose()?;
                    users.insert(e.user_id, s.clone());
                    s
                }
            };
            let at = parse_time(&e.at);
            let flag = match (&user_scope, at) {
                (_, None) => Some("bad_time"),
                (None, _) => Some("user_unknown"),
                (Some(s), _) if !user_in_scope(s, &schools, &townships) => {
                    Some("user_out_of_scope")
                }
                _ => match e.school_id {
                    Some(s) if !schools.contains(&s) => Some("school_out_of_scope"),
                    _ => None,
                },
            };
            let n = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO audit (entry_id, device_id, uploaded_by, user_id, action, target_kind, target_id, school_id, at, details, received_at, flag)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    e.id.to_string(),
                    e.device_id.to_string(),
                    device_id.to_string(),
                    e.user_id.to_string(),
                    e.action,
                    e.entity,
                    e.record_id.map(|r| r.to_string()),
                    e.school_id.map(|s| s.to_string()),
                    at.map(time_text).unwrap_or_else(|| e.at.clone()),
                    serde_json::to_string(&e.details)?,
                    received_at,
                    flag,
                ])?;
            if n == 0 {
                out.duplicates += 1;
            } else {
                out.stored += 1;
                if flag.is_some() {
                    out.flagged += 1;
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Entries devices uploaded (the `audit` table) matching `q`, oldest
    /// first; [`ServerDb::audit_view`] adds the edits. Read-only: nothing
    /// here or anywhere else edits or deletes an entry.
    pub fn audit_entries(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, ApiError> {
        let mut out = Vec::new();
        self.audit_each(q, false, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// The county audit view: the entries devices uploaded and every edit in
    /// the change log (`source` `changes`: who, device, when, the entity,
    /// record and school, and the names of the fields written, never their
    /// values), matching `q`, oldest first.
    pub fn audit_view(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, ApiError> {
        let mut out = Vec::new();
        self.audit_view_each(q, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// [`ServerDb::audit_view`] one entry at a time (the command line writes
    /// each as it comes: a county's change log is hundreds of thousands of
    /// edits).
    pub fn audit_view_each(
        &self,
        q: &AuditQuery,
        f: impl FnMut(AuditRow) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        self.audit_each(q, true, f)
    }

    fn audit_each(
        &self,
        q: &AuditQuery,
        edits: bool,
        mut f: impl FnMut(AuditRow) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let user = match &q.user {
            Some(user) => Some(match Uuid::parse_str(user.trim()) {
                Ok(id) => id.to_string(),
                Err(_) => self.user_by_login(user)?.id,
            }),
            None => None,
        };
        let action = q.action.as_deref().map(str::trim).filter(|a| !a.is_empty());
        let (audit_part, change_part) = action_parts(action);
        let change_part = change_part.filter(|_| edits);
        let limit = q.limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
        let text = |s: &str| SqlValue::Text(s.to_string());

        let mut audit_st = None;
        if let Some((clause, values)) = audit_part {
            let mut sel = Select {
                sql: String::from(
                    "SELECT a.entry_id, a.at, a.device_id, a.uploaded_by, a.user_id, u.login_name, u.display_name, a.action, a.target_kind, a.target_id, a.school_id, a.details, a.received_at, a.flag
                     FROM audit a LEFT JOIN user u ON u.id = a.user_id WHERE 1 = 1",
                ),
                args: Vec::new(),
            };
            sel.and(clause, values);
            if let Some(id) = &user {
                sel.and("a.user_id = ?", vec![text(id)]);
            }
            if let Some(d) = q.device {
                let d = text(&d.to_string());
                sel.and("(a.device_id = ? OR a.uploaded_by = ?)", vec![d.clone(), d]);
            }
            if let Some(t) = &q.target {
                let t = text(t.trim());
                sel.and("(a.target_id = ? OR a.target_kind = ?)", vec![t.clone(), t]);
            }
            if let Some(s) = q.since {
                sel.and("a.at >= ?", vec![SqlValue::Text(time_text(s))]);
            }
            if let Some(u) = q.until {
                sel.and("a.at < ?", vec![SqlValue::Text(time_text(u))]);
            }
            sel.sql.push_str(" ORDER BY a.at, a.seq");
            sel.sql.push_str(&limit);
            audit_st = Some((self.conn.prepare(&sel.sql)?, sel.args));
        }

        let mut change_st = None;
        if let Some((clause, values)) = change_part {
            // Only the names of the fields leave the database: a card's
            // values are personal data the audit view need not repeat.
            let mut sel = Select {
                sql: String::from(
                    "SELECT c.change_id, c.hlc, c.device_id, c.user_id, u.login_name, u.display_name, c.op, c.entity, c.record_id, c.school_id,
                            (SELECT json_group_array(key) FROM json_each(CASE json_type(c.fields) WHEN 'object' THEN c.fields ELSE '{}' END)),
                            c.base_version, c.resolves, c.received_at, c.server_seq
                     FROM changes c LEFT JOIN user u ON u.id = c.user_id WHERE 1 = 1",
                ),
                args: Vec::new(),
            };
            sel.and(clause, values);
            if let Some(id) = &user {
                sel.and("c.user_id = ?", vec![text(id)]);
            }
            if let Some(d) = q.device {
                sel.and("c.device_id = ?", vec![text(&d.to_string())]);
            }
            if let Some(t) = &q.target {
                // A record id, or a kind of record (never a uuid).
                match Uuid::parse_str(t.trim()) {
                    Ok(id) => sel.and("c.record_id = ?", vec![text(&id.to_string())]),
                    Err(_) => sel.and("c.entity = ?", vec![text(t.trim())]),
                }
            }
            if let Some(s) = q.since {
                sel.and("c.hlc >= ?", vec![SqlValue::Integer(hlc_at(s))]);
            }
            if let Some(u) = q.until {
                sel.and("c.hlc < ?", vec![SqlValue::Integer(hlc_at(u))]);
            }
            sel.sql.push_str(" ORDER BY c.hlc, c.server_seq");
            sel.sql.push_str(&limit);
            change_st = Some((self.conn.prepare(&sel.sql)?, sel.args));
        }

        type Rows<'s> = Box<dyn Iterator<Item = Result<AuditRow, ApiError>> + 's>;
        let mut audit_rows: Rows<'_> = match &mut audit_st {
            Some((st, args)) => Box::new(
                st.query_map(rusqlite::params_from_iter(args.iter()), audit_row)?
                    .map(|r| r.map_err(ApiError::from).and_then(|r| r)),
            ),
            None => Box::new(std::iter::empty()),
        };
        let server_id = self.server_id().to_string();
        let mut change_rows: Rows<'_> = match &mut change_st {
            Some((st, args)) => Box::new(
                st.query_map(rusqlite::params_from_iter(args.iter()), move |r| {
                    edit_row(r, &server_id)
                })?
                .map(|r| r.map_err(ApiError::from).and_then(|r| r)),
            ),
            None => Box::new(std::iter::empty()),
        };
        // Both come oldest first: merge them by time (device entries first
        // at the same instant).
        let (mut next_audit, mut next_change) = (audit_rows.next(), change_rows.next());
        let mut n = 0;
        while !matches!(q.limit, Some(l) if n >= l) {
            let audit_first = match (&next_audit, &next_change) {
                (None, None) => break,
                (Some(_), None) | (Some(Err(_)), _) => true,
                (None, Some(_)) | (_, Some(Err(_))) => false,
                (Some(Ok(a)), Some(Ok(c))) => a.at <= c.at,
            };
            let row = if audit_first {
                std::mem::replace(&mut next_audit, audit_rows.next())
            } else {
                std::mem::replace(&mut next_change, change_rows.next())
            };
            if let Some(row) = row {
                f(row?)?;
                n += 1;
            }
        }
        Ok(())
    }
}

/// One row of the `audit` query.
fn audit_row(r: &Row<'_>) -> rusqlite::Result<Result<AuditRow, ApiError>> {
    let (entry, device, by, user): (String, String, String, String) =
        (r.get(0)?, r.get(2)?, r.get(3)?, r.get(4)?);
    let details: String = r.get(11)?;
    let row = (|| -> Result<AuditRow, ApiError> {
        Ok(AuditRow {
            entry_id: uuid(&entry)?,
            at: r.get(1)?,
            device_id: uuid(&device)?,
            uploaded_by: uuid(&by)?,
            user_id: uuid(&user)?,
            login_name: r.get(5)?,
            user_name: r.get(6)?,
            action: r.get(7)?,
            target_kind: r.get(8)?,
            target_id: r.get(9)?,
            school_id: r.get(10)?,
            details: serde_json::from_str(&details)?,
            received_at: r.get(12)?,
            flag: r.get(13)?,
            source: SOURCE_AUDIT.to_string(),
            server_seq: None,
        })
    })();
    Ok(row)
}

/// One row of the change-log query as an audit entry: the action is the
/// change's operation; `at` the instant its device made it (the HLC's wall
/// time); `details` the names of the fields written (`fields`, sorted), the
/// record version it was based on, the conflict it resolves, and
/// `by_server` for the server's own changes (schools it added, conflict
/// records it opened).
fn edit_row(r: &Row<'_>, server_id: &str) -> rusqlite::Result<Result<AuditRow, ApiError>> {
    let (change, device, user): (String, String, String) = (r.get(0)?, r.get(2)?, r.get(3)?);
    let hlc: i64 = r.get(1)?;
    let names: String = r.get(10)?;
    let resolves: Option<String> = r.get(12)?;
    let base_version: i64 = r.get(11)?;
    let row = (|| -> Result<AuditRow, ApiError> {
        // A clock past chrono's range is listed as the raw HLC rather than
        // failing the whole listing.
        let at = DateTime::from_timestamp_millis(hlc >> 16)
            .map(time_text)
            .unwrap_or_else(|| hlc.to_string());
        let mut fields: Vec<String> = serde_json::from_str(&names)?;
        fields.sort();
        let mut details = json!({ "fields": fields, "base_version": base_version });
        if let Some(m) = details.as_object_mut() {
            if let Some(c) = &resolves {
                m.insert("resolves".into(), json!(c));
            }
            if user == server_id {
                m.insert("by_server".into(), json!(true));
            }
        }
        let device_id = uuid(&device)?;
        Ok(AuditRow {
            entry_id: uuid(&change)?,
            at,
            device_id,
            uploaded_by: device_id,
            user_id: uuid(&user)?,
            login_name: r.get(4)?,
            user_name: r.get(5)?,
            action: r.get(6)?,
            target_kind: Some(r.get(7)?),
            target_id: Some(r.get(8)?),
            school_id: r.get(9)?,
            details,
            received_at: r.get(13)?,
            flag: None,
            source: SOURCE_CHANGES.to_string(),
            server_seq: Some(r.get(14)?),
        })
    })();
    Ok(row)
}

/// The header line of [`audit_csv`] (the columns of before first, new ones
/// at the end, so scripts reading by position keep working).
pub const AUDIT_CSV_HEADER: &str = "entry_id,at,device_id,uploaded_by,user_id,login_name,action,target_kind,target_id,school_id,details,received_at,flag,user_name,source,server_seq\n";

/// Audit rows as CSV (RFC 4180 quoting), with a header line.
pub fn audit_csv(rows: &[AuditRow]) -> String {
    let mut out = String::from(AUDIT_CSV_HEADER);
    for r in rows {
        out.push_str(&audit_csv_line(r));
    }
    out
}

/// One audit row as a CSV line (RFC 4180 quoting), ending in a newline.
pub fn audit_csv_line(r: &AuditRow) -> String {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    let cols = [
        r.entry_id.to_string(),
        r.at.clone(),
        r.device_id.to_string(),
        r.uploaded_by.to_string(),
        r.user_id.to_string(),
        r.login_name.clone().unwrap_or_default(),
        r.action.clone(),
        r.target_kind.clone().unwrap_or_default(),
        r.target_id.clone().unwrap_or_default(),
        r.school_id.clone().unwrap_or_default(),
        r.details.to_string(),
        r.received_at.clone(),
        r.flag.clone().unwrap_or_default(),
        r.user_name.clone().unwrap_or_default(),
        r.source.clone(),
        r.server_seq.map(|s| s.to_string()).unwrap_or_default(),
    ];
    let mut line = cols.iter().map(|c| field(c)).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

/// What a change asks of its user's role.
fn action_for(entity: EntityKind) -> Action {
    match entity {
        EntityKind::PsychNote => Action::WriteNotes,
        _ => Action::WriteRecords,
    }
}

/// A server user as the push check needs it.
struct PushUser {
    role: Role,
    scope: role::Scope,
    removed_ms: Option<i64>,
}

/// Hold each change of a push batch to its user's role (`shouhu_auth::role`)
/// for its entity and school. `schools` are the changes' schools from the
/// scope check; changes at or below `high` are already stored (resends) and
/// are not checked again. The first refusal refuses the batch.
pub(crate) fn check_roles(
    tx: &Connection,
    scope: &Scope,
    changes: &[&Change],
    schools: &[Uuid],
    extra: &[Option<Action>],
    high: i64,
) -> Result<(), ApiError> {
    let mut users: HashMap<Uuid, Option<PushUser>> = HashMap::new();
    let mut townships: HashMap<Uuid, String> = HashMap::new();
    for ((c, school), extra) in changes.iter().zip(schools).zip(extra) {
        if c.seq <= high {
            continue;
        }
        if let Entry::Vacant(slot) = users.entry(c.user_id) {
            let row = tx
                .prepare_cached(&format!("SELECT {USER_COLS} FROM user WHERE id = ?1"))?
                .query_row([c.user_id.to_string()], user_row)
                .optional()?;
            let user = match row {
                None => None,
                Some(u) => Some(PushUser {
                    role: u.role()?,
                    scope: match u.scope()? {
                        UserScope::School {
                            school_id,
                            township_id,
                            ..
                        } => role::Scope::School {
                            school_id,
                            township_id,
                        },
                        UserScope::Township { township_id, .. } => {
                            role::Scope::Township { township_id }
                        }
                        UserScope::County => role::Scope::County,
                    },
                    removed_ms: u
                        .removed_at
                        .as_deref()
                        .and_then(parse_time)
                        .map(|t| t.timestamp_millis()),
                }),
            };
            slot.insert(user);
        }
        let details = |reason: &str| {
            json!({
                "seq": c.seq,
                "user_id": c.user_id,
                "entity": c.entity.name(),
                "school_id": school,
                "reason": reason,
            })
        };
        let Some(user) = users.get(&c.user_id).and_then(Option::as_ref) else {
            if scope.local_users {
                continue;
            }
            return Err(ApiError::UnknownUser {
                details: details("unknown_user"),
            });
        };
        let made_ms = i64::try_from(c.hlc >> 16).unwrap_or(i64::MAX);
        if let Some(removed) = user.removed_ms {
            if made_ms >= removed {
                return Err(ApiError::Forbidden {
                    details: details("user_removed"),
                });
            }
        }
        if let Entry::Vacant(slot) = townships.entry(*school) {
            let t: Option<String> = tx
                .prepare_cached("SELECT township FROM school WHERE id = ?1")?
                .query_row([school.to_string()], |r| r.get(0))
                .optional()?;
            slot.insert(t.unwrap_or_default());
        }
        let township = townships.get(school).map(String::as_str).unwrap_or("");
        let target = Target::School {
            school_id: *school,
            township_id: township_id(township),
        };
        let refused = [Some(action_for(c.entity)), *extra]
            .into_iter()
            .flatten()
            .find(|a| !role::allowed(user.role, user.scope, *a, target));
        if let Some(action) = refused {
            let mut d = details(if action == Action::ApprovePlan {
                "plan_approval"
            } else {
                "role"
            });
            if let Some(m) = d.as_object_mut() {
                m.insert("role".into(), json!(user.role.as_str()));
                m.insert("action".into(), json!(action.as_str()));
            }
            return Err(ApiError::Forbidden { details: d });
        }
    }
    Ok(())
}

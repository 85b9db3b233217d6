//! Accounts in the desktop app: what the first screen is (set-up or log-in),
//! the demo accounts, log-in, lock and auto-lock, log-out, passwords and the
//! users of this laptop.
//!
//! [`Account`] owns the laptop's [`Vault`] and, while someone is logged in,
//! their [`shouhu_vault::Session`] (the open, decrypted store). Every data
//! command runs through [`Account::with`]: with no session, or once the idle
//! time has run out, it answers [`Error::Locked`] (`auth.locked`), and the UI
//! shows the log-in screen. Locking drops the session: the store is closed
//! and the data key forgotten.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use shouhu_auth::role::may_add_laptop_user;
use shouhu_auth::{Role, Scope};
use shouhu_core::{Lang, School};
use shouhu_demo::DemoSpec;
use shouhu_store::{AuditAction, Store};
use shouhu_vault::{keyring, Keyring, NewUser, Vault, VaultError, VaultState};
use uuid::Uuid;

use crate::settings::{get_settings, lang, SETTING_DEMO, SETTING_SCHOOL};
use crate::{DemoDone, DemoProgress, Error, Result, Session};

/// The one password of every demo account (a demo store holds fictional
/// people only; the log-in screen shows it, and only for a demo store).
pub const DEMO_PASSWORD: &str = "shouhu2026";

/// The demo accounts, one per role: (log-in name, display name, role).
pub const DEMO_USERS: [(&str, &str, Role); 6] = [
    ("demo-admin", "县教育局管理员（演示）", Role::CountyAdmin),
    ("demo-teacher", "李老师（演示）", Role::Teacher),
    ("demo-counselor", "王心理老师（演示）", Role::Counselor),
    ("demo-principal", "张校长（演示）", Role::Principal),
    ("demo-township", "乡镇教育办（演示）", Role::TownshipStaff),
    (
        "demo-supervisor",
        "县心理督导（演示）",
        Role::PsychSupervisor,
    ),
];

/// `shouhu.db` → `shouhu.db.demo`: beside a store made by "use demo data",
/// so that the log-in screen (the store still closed) knows to show the demo
/// password. It holds nothing secret.
pub fn demo_marker(store_path: &Path) -> PathBuf {
    let mut name = store_path.as_os_str().to_owned();
    name.push(".demo");
    PathBuf::from(name)
}

/// What the first screen needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VaultView {
    /// `empty` (set-up or demo), `plain` (set-up that encrypts the old store)
    /// or `ready` (log-in).
    pub state: &'static str,
    /// The users of this laptop (log-in screen).
    pub users: Vec<UserItem>,
    /// Shown on the log-in screen of a demo store only.
    pub demo_password: Option<String>,
    /// Who is logged in now, if anyone.
    pub current: Option<CurrentUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserItem {
    pub login_name: String,
    pub display_name: String,
    pub role: Role,
}

/// The logged-in user, and what the UI may offer them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentUser {
    pub user_id: Uuid,
    pub login_name: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Scope,
    pub reads_notes: bool,
    /// School staff change records; the other roles only read
    /// ([`Account::with_write`] refuses them).
    pub writes_records: bool,
    /// A principal or county admin: may add laptop users and reset passwords.
    pub manages_users: bool,
    /// Principals, township staff and county admins export (Excel); the UI
    /// hides 导出 Excel from the others ([`crate::check_excel_export`]).
    pub exports: bool,
    pub auto_lock_minutes: u32,
    /// Logged in with an initial password from the county server: the UI
    /// asks for a new password before anything else.
    pub must_change_password: bool,
}

/// The first account of this laptop.
#[derive(Debug, Clone, Deserialize)]
pub struct SetUp {
    pub login_name: String,
    pub display_name: String,
    pub role: Role,
    /// The user's school (teacher, counselor, principal): found by name in
    /// the store, or created.
    #[serde(default)]
    pub school_name: String,
    /// The school's township (school roles, township staff).
    #[serde(default)]
    pub township: String,
    pub password: String,
    pub password_again: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogIn {
    pub login_name: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChangePassword {
    pub old: String,
    pub new: String,
    pub new_again: String,
}

/// A user given access to this laptop by a principal or a county admin.
#[derive(Debug, Clone, Deserialize)]
pub struct AddUser {
    pub login_name: String,
    pub display_name: String,
    pub role: Role,
    /// The school of a school role; `None` keeps the granter's own school
    /// (a principal) or gives county scope (a county admin adding a county
    /// role).
    #[serde(default)]
    pub school_id: Option<Uuid>,
    pub password: String,
    pub password_again: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResetPassword {
    pub login_name: String,
    pub password: String,
    pub password_again: String,
}

struct Open {
    session: shouhu_vault::Session,
    last_active: DateTime<Utc>,
    /// The user's notes keys and the laptop's readers (refreshed when the
    /// laptop's users change).
    notes: std::sync::Arc<crate::NoteKeys>,
}

fn note_keys(session: &shouhu_vault::Session) -> std::sync::Arc<crate::NoteKeys> {
    std::sync::Arc::new(crate::NoteKeys {
        user_id: session.user().user_id,
        keys: session.reader_keys_shared(),
        readers: session.local_readers().unwrap_or_default(),
    })
}

/// The laptop's vault and the logged-in session, if any.
pub struct Account {
    vault: Vault,
    open: Option<Open>,
    /// The language of the last session (errors before log-in use it).
    lang: Lang,
}

fn same(a: &str, b: &str) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(Error::PasswordMismatch)
    }
}

fn school_roles(role: Role) -> bool {
    matches!(role, Role::Teacher | Role::Counselor | Role::Principal)
}

/// A township has no record of its own: its id is made once per name and
/// kept in the store's settings.
fn township_id(store: &mut Store, township: &str) -> Result<Uuid> {
    let key = format!("township_id.{}", township.trim());
    if let Some(id) = store.setting(&key)?.and_then(|s| Uuid::parse_str(&s).ok()) {
        return Ok(id);
    }
    let id = Uuid::now_v7();
    store.set_setting(&key, &id.to_string())?;
    Ok(id)
}

fn required(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        Err(Error::InvalidInput {
            field: field.into(),
            value: String::new(),
        })
    } else {
        Ok(())
    }
}

impl Account {
    pub fn new(vault: Vault) -> Account {
        Account {
            vault,
            open: None,
            lang: Lang::ZhCn,
        }
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    fn current_of(session: &shouhu_vault::Session) -> CurrentUser {
        let u = session.user();
        let auto_lock_minutes = get_settings(session.store())
            .map(|s| s.auto_lock_minutes)
            .unwrap_or(crate::settings::DEFAULT_AUTO_LOCK_MINUTES);
        CurrentUser {
            user_id: u.user_id,
            login_name: u.login_name.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            scope: u.scope,
            reads_notes: u.role.reads_notes(),
            writes_records: shouhu_auth::role::allowed(
                u.role,
                Scope::County,
                shouhu_auth::Action::WriteRecords,
                shouhu_auth::Target::County,
            ),
            manages_users: matches!(u.role, Role::Principal | Role::CountyAdmin),
            exports: shouhu_auth::role::allowed(
                u.role,
                Scope::County,
                shouhu_auth::Action::Export,
                shouhu_auth::Target::County,
            ),
            auto_lock_minutes,
            must_change_password: u.must_change_password,
        }
    }

    /// The first screen: set-up, or log-in with the laptop's users.
    pub fn state(&self) -> Result<VaultView> {
        let (state, users) = match self.vault.state()? {
            VaultState::Empty => ("empty", vec![]),
            VaultState::Plain => ("plain", vec![]),
            VaultState::Ready { .. } => ("ready", self.users()?),
        };
        let demo = state == "ready" && demo_marker(self.vault.store_path()).exists();
        Ok(VaultView {
            state,
            users,
            demo_password: demo.then(|| DEMO_PASSWORD.to_string()),
            current: self.open.as_ref().map(|o| Self::current_of(&o.session)),
        })
    }

    fn users(&self) -> Result<Vec<UserItem>> {
        let ring = Keyring::load(&keyring::path_for(self.vault.store_path()))?
            .ok_or(VaultError::NotSetUp)?;
        // Server users not logged in here yet log in with their initial
        // password like anyone else.
        Ok(ring
            .users
            .iter()
            .map(|u| (&u.login_name, &u.display_name, u.role))
            .chain(
                ring.pending
                    .iter()
                    .map(|u| (&u.login_name, &u.display_name, u.role)),
            )
            .map(|(login_name, display_name, role)| UserItem {
                login_name: login_name.clone(),
                display_name: display_name.clone(),
                role,
            })
            .collect())
    }

    /// The scope of a new first user, from what they typed: a school role's
    /// school is looked up by name in a plain store (or made after set-up);
    /// township staff get their township; county roles the county.
    fn first_scope(&self, req: &SetUp) -> Result<(Scope, Option<School>)> {
        if school_roles(req.role) {
            required("school_name", &req.school_name)?;
            required("township", &req.township)?;
            let existing = if Store::is_plain_file(self.vault.store_path()) {
                let store = Store::open(self.vault.store_path())?;
                store.list_all::<School>()?.into_iter().find(|s| {
                    s.body.name == req.school_name.trim() && s.body.township == req.township.trim()
                })
            } else {
                None
            };
            let (school_id, new) = match existing {
                Some(s) => (s.meta.id, None),
                None => (
                    Uuid::now_v7(),
                    Some(School {
                        name: req.school_name.trim().into(),
                        township: req.township.trim().into(),
                        ..Default::default()
                    }),
                ),
            };
            // The township id is settled once the store is open (set_up_store).
            Ok((
                Scope::School {
                    school_id,
                    township_id: Uuid::nil(),
                },
                new,
            ))
        } else if req.role == Role::TownshipStaff {
            required("township", &req.township)?;
            Ok((
                Scope::Township {
                    township_id: Uuid::nil(),
                },
                None,
            ))
        } else {
            Ok((Scope::County, None))
        }
    }

    /// First set-up: the first account (a plain store from before encryption
    /// is encrypted in place), logged in.
    pub fn set_up(&mut self, req: SetUp, now: DateTime<Utc>) -> Result<CurrentUser> {
        same(&req.password, &req.password_again)?;
        let (scope, new_school) = self.first_scope(&req)?;
        // A township id is made before the store exists; it is written to the
        // store's settings right after, so later users of that township share it.
        let township = (req.township.trim(), Uuid::now_v7());
        let scope = match scope {
            Scope::School { school_id, .. } => Scope::School {
                school_id,
                township_id: township.1,
            },
            Scope::Township { .. } => Scope::Township {
                township_id: township.1,
            },
            Scope::County => Scope::County,
        };
        // A demo marker left from an earlier demo store must not show the
        // demo password on this real one.
        let marker = demo_marker(self.vault.store_path());
        if marker.exists() {
            std::fs::remove_file(&marker).map_err(|e| {
                Error::Store(shouhu_store::StoreError::Open(format!(
                    "{}: {e}",
                    marker.display()
                )))
            })?;
        }
        let mut session = self.vault.set_up(NewUser {
            user_id: Uuid::now_v7(),
            login_name: req.login_name.clone(),
            display_name: req.display_name.clone(),
            role: req.role,
            scope,
            password: req.password.clone(),
        })?;
        let store = session.store_mut();
        if !township.0.is_empty() {
            store.set_setting(
                &format!("township_id.{}", township.0),
                &township.1.to_string(),
            )?;
        }
        if let (Some(school), Scope::School { school_id, .. }) = (new_school, scope) {
            store.write(|w| w.create_with_id(school_id, school))?;
        }
        if let Scope::School { school_id, .. } = scope {
            store.set_setting(SETTING_SCHOOL, &school_id.to_string())?;
        }
        Ok(self.opened(session, now))
    }

    fn opened(&mut self, session: shouhu_vault::Session, now: DateTime<Utc>) -> CurrentUser {
        self.lang = lang(session.store()).unwrap_or(Lang::ZhCn);
        let current = Self::current_of(&session);
        self.open = Some(Open {
            notes: note_keys(&session),
            session,
            last_active: now,
        });
        current
    }

    /// "Use demo data" on an empty laptop: an encrypted store with the demo
    /// county and one demo account per role ([`DEMO_USERS`], password
    /// [`DEMO_PASSWORD`]). Ends locked: the user picks a demo account on the
    /// log-in screen, which shows the password.
    pub fn use_demo(
        &mut self,
        spec: &DemoSpec,
        progress: &mut dyn FnMut(DemoProgress),
    ) -> Result<DemoDone> {
        if self.vault.state()? != VaultState::Empty {
            return Err(Error::NotEmpty);
        }
        let (admin, admin_name, admin_role) = DEMO_USERS[0];
        let mut session = self.vault.set_up(NewUser {
            user_id: Uuid::now_v7(),
            login_name: admin.into(),
            display_name: admin_name.into(),
            role: admin_role,
            scope: Scope::County,
            password: DEMO_PASSWORD.into(),
        })?;
        // The demo's readers get their keys first, so its notes are sealed
        // as they are generated (never stored or logged in plain).
        let mut readers = Vec::new();
        for (login, _, role) in &DEMO_USERS[1..] {
            if role.reads_notes() {
                readers.push((
                    *login,
                    Uuid::now_v7(),
                    shouhu_auth::ReaderKeyPair::generate()?,
                ));
            }
        }
        let publics: Vec<_> = readers.iter().map(|(_, id, p)| (*id, p.public())).collect();
        let done = crate::generate_demo_sealed(session.store_mut(), spec, progress, &publics)?;
        let store = session.store_mut();
        let mut schools = store.list_all::<School>()?;
        schools.sort_by(|a, b| {
            (&a.body.township, &a.body.name).cmp(&(&b.body.township, &b.body.name))
        });
        let school = schools
            .first()
            .map(|s| (s.meta.id, s.body.township.clone()));
        let school_scope = match &school {
            Some((school_id, township)) => {
                let township_id = township_id(store, township)?;
                Some((
                    Scope::School {
                        school_id: *school_id,
                        township_id,
                    },
                    Scope::Township { township_id },
                ))
            }
            None => None,
        };
        store.set_setting(SETTING_DEMO, "true")?;
        for (login, name, role) in &DEMO_USERS[1..] {
            let scope = match (role, school_scope) {
                (Role::TownshipStaff, Some((_, township))) => township,
                (r, Some((school, _))) if school_roles(*r) => school,
                _ => Scope::County,
            };
            let pre = readers
                .iter()
                .position(|(l, _, _)| l == login)
                .map(|i| readers.swap_remove(i));
            let new = NewUser {
                user_id: pre.as_ref().map_or_else(Uuid::now_v7, |(_, id, _)| *id),
                login_name: (*login).into(),
                display_name: (*name).into(),
                role: *role,
                scope,
                password: DEMO_PASSWORD.into(),
            };
            match pre {
                Some((_, _, pair)) => session.add_user_with_reader(new, pair)?,
                None => session.add_user(new)?,
            }
        }
        std::fs::write(demo_marker(self.vault.store_path()), b"demo\n").map_err(|e| {
            Error::Store(shouhu_store::StoreError::Open(format!(
                "{}: {e}",
                demo_marker(self.vault.store_path()).display()
            )))
        })?;
        session.lock_with(AuditAction::Logout)?;
        Ok(done)
    }

    /// Offline log-in; whoever was logged in is logged out first.
    pub fn log_in(&mut self, req: LogIn, now: DateTime<Utc>) -> Result<CurrentUser> {
        self.log_out();
        let session = self.vault.log_in(&req.login_name, &req.password, now)?;
        Ok(self.opened(session, now))
    }

    /// Ends the session (the "退出登录" button).
    pub fn log_out(&mut self) {
        self.close(AuditAction::Logout);
    }

    /// Locks now (the "锁定" button): the same as a log-out for the store (it
    /// is closed, the key forgotten); the UI keeps what was typed.
    pub fn lock(&mut self) {
        self.close(AuditAction::Lock);
    }

    fn close(&mut self, why: AuditAction) {
        if let Some(open) = self.open.take() {
            // Even if the audit entry cannot be written, the session closes.
            let _ = open.session.lock_with(why);
        }
    }

    /// The open session, if its idle time has not run out at `now`; locks
    /// (audited as an auto-lock) when it has. A successful call counts as
    /// activity.
    fn active(&mut self, now: DateTime<Utc>) -> Result<&mut Open> {
        let expired = match &self.open {
            None => return Err(Error::Locked),
            Some(open) => {
                let minutes = get_settings(open.session.store())
                    .map(|s| s.auto_lock_minutes)
                    .unwrap_or(crate::settings::DEFAULT_AUTO_LOCK_MINUTES);
                now - open.last_active > Duration::minutes(i64::from(minutes))
            }
        };
        if expired {
            self.close(AuditAction::AutoLock);
            return Err(Error::Locked);
        }
        let open = self.open.as_mut().ok_or(Error::Locked)?;
        open.last_active = now.max(open.last_active);
        Ok(open)
    }

    /// Runs a data command in the logged-in session: `f` gets the store and
    /// the [`Session`] (language, role, scope). No session, or an expired
    /// one: [`Error::Locked`].
    pub fn with<R>(
        &mut self,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut Store, &Session) -> Result<R>,
    ) -> Result<R> {
        let lang = lang(self.active(now)?.session.store())?;
        self.lang = lang;
        let open = self.open.as_mut().ok_or(Error::Locked)?;
        let user = open.session.user();
        let session = Session {
            lang,
            role: user.role,
            scope: user.scope,
            notes: Some(open.notes.clone()),
        };
        f(open.session.store_mut(), &session)
    }

    /// [`Account::with`] for a command that changes records (cards, visits,
    /// plans, records, conflict resolutions): refused with `auth.forbidden`
    /// to the roles that only read (township staff, county admins, the
    /// county psychology supervisor).
    pub fn with_write<R>(
        &mut self,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut Store, &Session) -> Result<R>,
    ) -> Result<R> {
        self.with(now, |store, session| {
            if !session.may(shouhu_auth::Action::WriteRecords) {
                return Err(shouhu_auth::AuthError::Forbidden {
                    role: session.role,
                    action: shouhu_auth::Action::WriteRecords,
                }
                .into());
            }
            f(store, session)
        })
    }

    /// Who is logged in (after checking the idle time).
    pub fn current(&mut self, now: DateTime<Utc>) -> Result<CurrentUser> {
        let open = self.active(now)?;
        Ok(Self::current_of(&open.session))
    }

    /// Sync from the app (the "同步" button), in the logged-in session:
    ///
    /// 1. plain psychological notes are sealed for the known readers first
    ///    (the server refuses a note in plain);
    /// 2. passwords changed on this laptop by server users go to the server
    ///    first ([`send_password_changes`]), so the users fetched below show
    ///    them;
    /// 3. push, pull, audit up, users down (`shouhu_sync::sync_reporting`:
    ///    a push the server blocked still pulls and brings the users, and
    ///    step 4 runs before its error is returned);
    /// 4. the server users of this laptop's scope go into the keyring
    ///    ([`shouhu_vault::Session::apply_server_users`]: new ones pending,
    ///    resets replaced, removed ones dropped), the readers the server
    ///    published into the store's settings, and the session's note keys
    ///    are refreshed;
    /// 5. a logged-in reader who is a server user registers this laptop's
    ///    reader key when the server does not publish it yet (the server
    ///    holds one key per device: a counselor's two laptops have two), and
    ///    wraps every note this laptop opens for their keys on other laptops
    ///    ([`crate::notes::grant_reader`], pushed at the next sync). A server
    ///    from before key sets keeps one key per user: its
    ///    `user.reader_key_exists` sets `SyncReport::reader_key_mismatch`.
    pub async fn sync(
        &mut self,
        now: DateTime<Utc>,
        progress: &mut (dyn FnMut(shouhu_sync::SyncProgress) + Send),
        cancel: &shouhu_sync::CancelToken,
    ) -> Result<shouhu_sync::SyncReport> {
        let lang = lang(self.active(now)?.session.store())?;
        let open = self.open.as_mut().ok_or(Error::Locked)?;
        let session = Session {
            lang,
            role: open.session.user().role,
            scope: open.session.user().scope,
            notes: Some(open.notes.clone()),
        };
        match crate::notes::seal_plain_notes(open.session.store_mut(), &session) {
            // With no reader known yet, the server refuses the plain notes
            // (the outbox waits) and the users below bring readers.
            Ok(_) | Err(Error::NoNoteReaders) => {}
            Err(e) => return Err(e),
        }
        let opts = shouhu_sync::SyncOptions::default();
        let (sent, refused) = send_password_changes(&mut open.session, &opts, cancel).await?;
        let (mut report, failed) =
            shouhu_sync::sync_reporting(open.session.store_mut(), &opts, progress, cancel).await;
        report.password_changes_sent = sent;
        report.password_changes_refused = refused;
        crate::syncing::forget_removed_schools(open.session.store_mut(), &report)?;
        // A sync that stopped before the users came back changes nothing
        // here; one whose push the server blocked still brings them (and
        // with them, say, the readers a plain note waits for).
        if report.users.is_empty() {
            return match failed {
                Some(e) => Err(e.into()),
                None => Ok(report),
            };
        }
        let server_users: Vec<_> = report
            .users
            .iter()
            .filter_map(crate::syncing::server_user)
            .collect();
        open.session.apply_server_users(&server_users)?;
        let mut published = crate::syncing::published_readers(&report.users);
        crate::notes::set_server_readers(open.session.store_mut(), &published)?;
        open.notes = note_keys(&open.session);
        if let Some(e) = failed {
            return Err(e.into());
        }

        let me = open.session.user().user_id;
        let mine = open.session.reader_keys().map(|k| k.public());
        let record = report
            .users
            .iter()
            .find(|u| u.id == me && u.removed_at.is_none());
        if let (Some(public), Some(record)) = (mine, record) {
            let on_server = crate::syncing::reader_keys_of(record);
            if !on_server.contains(&public) {
                let text = crate::syncing::key_text(public);
                match shouhu_sync::register_reader_key(
                    open.session.store_mut(),
                    me,
                    &text,
                    &opts,
                    cancel,
                )
                .await
                {
                    Ok(_) => {
                        published.push(crate::notes::PublishedReader {
                            user_id: me,
                            public,
                        });
                        crate::notes::set_server_readers(open.session.store_mut(), &published)?;
                    }
                    // A device without notes may not register; it holds
                    // no notes to read either.
                    Err(e) if e.server_code() == Some("user.out_of_scope") => {}
                    // A server from before reader key sets keeps one key.
                    Err(e) if e.server_code() == Some("user.reader_key_exists") => {
                        report.reader_key_mismatch = true;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            // The reader's keys on their other laptops get every note this
            // one opens (they go out with the next sync).
            let session = Session {
                lang,
                role: open.session.user().role,
                scope: open.session.user().scope,
                notes: Some(open.notes.clone()),
            };
            for other in on_server.into_iter().filter(|k| *k != public) {
                crate::notes::grant_reader(open.session.store_mut(), &session, me, other)?;
            }
        }
        Ok(report)
    }
}

/// Sends the password changes queued on this laptop (any user's) to the
/// server; returns how many it took and how many it refused. A refusal
/// (`user.password_stale`: the server's credential changed since, an
/// administrator's reset say; a bad proof; a user removed or from before
/// change keys) drops the change: **the server's newer credential wins**,
/// and the users fetched next bring it. A network failure or an older
/// server without the endpoint keeps it for the next sync.
async fn send_password_changes(
    session: &mut shouhu_vault::Session,
    opts: &shouhu_sync::SyncOptions,
    cancel: &shouhu_sync::CancelToken,
) -> Result<(u64, u64)> {
    let (mut sent, mut refused) = (0, 0);
    for (user_id, change) in session.pending_password_changes()? {
        let req = shouhu_sync::PasswordChangeRequest {
            protocol: shouhu_sync::PROTOCOL_VERSION,
            based_on: change.based_on.clone(),
            password_hash: change.password_hash.clone(),
            login_secret_sealed: change.login_secret_sealed.clone(),
            proof: change.proof.clone(),
        };
        match shouhu_sync::send_password_change(session.store_mut(), user_id, &req, opts, cancel)
            .await
        {
            Ok(record) => {
                session.password_change_answered(
                    user_id,
                    &change,
                    Some(&record.password_changed_at),
                )?;
                sent += 1;
            }
            Err(e)
                if matches!(
                    e.server_code(),
                    Some(
                        "user.password_stale"
                            | "user.password_proof_invalid"
                            | "user.password_change_unavailable"
                            | "user.removed"
                            | "user.not_found"
                            | "user.out_of_scope"
                            | "request.invalid"
                    )
                ) =>
            {
                session.password_change_answered(user_id, &change, None)?;
                refused += 1;
            }
            // Offline, not enrolled: the sync says so; the changes wait
            // (one wait for the network is enough).
            Err(e) if e.is_temporary() || e.server_code().is_none() => break,
            // An older server without the endpoint, or another answer: the
            // change waits for the next sync.
            Err(_) => {}
        }
    }
    Ok((sent, refused))
}

impl Account {
    pub fn change_password(&mut self, req: ChangePassword, now: DateTime<Utc>) -> Result<()> {
        same(&req.new, &req.new_again)?;
        let open = self.active(now)?;
        open.session.change_password(&req.old, &req.new)?;
        Ok(())
    }

    /// The users of this laptop (Settings; a principal or county admin).
    pub fn list_users(&mut self, now: DateTime<Utc>) -> Result<Vec<UserItem>> {
        self.active(now)?;
        self.users()
    }

    pub fn add_user(&mut self, req: AddUser, now: DateTime<Utc>) -> Result<()> {
        same(&req.password, &req.password_again)?;
        let open = self.active(now)?;
        let me = open.session.user().clone();
        let scope = match (req.role, req.school_id, me.scope) {
            (r, Some(school_id), _) if school_roles(r) => {
                let store = open.session.store_mut();
                let school = store.fetch::<School>(school_id)?;
                let township_id = township_id(store, &school.body.township)?;
                Scope::School {
                    school_id,
                    township_id,
                }
            }
            (r, None, own @ Scope::School { .. }) if school_roles(r) => own,
            (Role::TownshipStaff, _, own @ Scope::Township { .. }) => own,
            (r, None, _) if school_roles(r) => {
                return Err(Error::InvalidInput {
                    field: "school_id".into(),
                    value: String::new(),
                })
            }
            _ => Scope::County,
        };
        if !may_add_laptop_user(me.role, me.scope, req.role, scope) {
            return Err(shouhu_auth::AuthError::Forbidden {
                role: me.role,
                action: shouhu_auth::Action::ManageUsers,
            }
            .into());
        }
        open.session.add_user(NewUser {
            user_id: Uuid::now_v7(),
            login_name: req.login_name,
            display_name: req.display_name,
            role: req.role,
            scope,
            password: req.password,
        })?;
        open.notes = note_keys(&open.session);
        Ok(())
    }

    pub fn reset_password(&mut self, req: ResetPassword, now: DateTime<Utc>) -> Result<()> {
        same(&req.password, &req.password_again)?;
        let open = self.active(now)?;
        open.session
            .reset_password(&req.login_name, &req.password)?;
        open.notes = note_keys(&open.session);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::settings::{set_setting, SettingChange};
    use shouhu_auth::password::KdfParams;
    use shouhu_core::EntityKind;

    const FAST: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    fn account(dir: &Path) -> Account {
        Account::new(Vault::new(dir.join("shouhu.db")).with_kdf(FAST))
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn first(role: Role) -> SetUp {
        SetUp {
            login_name: "liming".into(),
            display_name: "李明".into(),
            role,
            school_name: "青山小学".into(),
            township: "青山镇".into(),
            password: "qingshan2026".into(),
            password_again: "qingshan2026".into(),
        }
    }

    fn log_in(name: &str, password: &str) -> LogIn {
        LogIn {
            login_name: name.into(),
            password: password.into(),
        }
    }

    fn children(a: &mut Account, now: DateTime<Utc>) -> Result<i64> {
        a.with(now, |s, _| Ok(s.count(EntityKind::Child)?))
    }

    #[test]
    fn set_up_log_in_lock_and_wrong_password() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = account(dir.path());
        assert_eq!(a.state().unwrap().state, "empty");
        assert_eq!(children(&mut a, t0()).unwrap_err().code(), "auth.locked");
        // Left over from a deleted demo store.
        std::fs::write(demo_marker(&dir.path().join("shouhu.db")), "demo").unwrap();
        let mut bad = first(Role::Teacher);
        bad.password_again = "qingshan2027".into();
        assert_eq!(
            a.set_up(bad, t0()).unwrap_err().code(),
            "auth.password_mismatch"
        );
        let mut weak = first(Role::Teacher);
        weak.password = "qingshan".into();
        weak.password_again = "qingshan".into();
        let e = a.set_up(weak, t0()).unwrap_err();
        assert_eq!(e.code(), "auth.password_too_simple");
        assert_eq!(e.body(Lang::ZhCn).message, "密码需同时包含字母和数字");
        let mut no_school = first(Role::Teacher);
        no_school.school_name = " ".into();
        assert_eq!(
            a.set_up(no_school, t0()).unwrap_err().code(),
            "input.invalid"
        );

        let me = a.set_up(first(Role::Teacher), t0()).unwrap();
        assert_eq!((me.login_name.as_str(), me.role), ("liming", Role::Teacher));
        assert!(!me.reads_notes && !me.manages_users);
        // The school was made and is "my school"; the scope names it.
        let (schools, mine) = a
            .with(t0(), |s, _| {
                Ok((crate::list_schools(s)?, get_settings(s)?.school_id))
            })
            .unwrap();
        assert_eq!(schools.len(), 1);
        assert_eq!(mine, Some(schools[0].id));
        assert!(matches!(me.scope, Scope::School { school_id, .. } if school_id == schools[0].id));
        assert_eq!(children(&mut a, t0()).unwrap(), 0);

        a.lock();
        assert_eq!(children(&mut a, t0()).unwrap_err().code(), "auth.locked");
        let v = a.state().unwrap();
        assert_eq!(v.state, "ready");
        assert_eq!(v.users[0].display_name, "李明");
        assert_eq!(v.demo_password, None);
        assert!(v.current.is_none());
        let e = a
            .log_in(log_in("liming", "qingshan2027"), t0())
            .unwrap_err();
        assert_eq!(e.code(), "auth.wrong_password");
        assert_eq!(e.body(Lang::ZhCn).message, "用户名或密码不正确");
        assert!(!a.is_open());
        a.log_in(log_in("LiMing ", "qingshan2026"), t0()).unwrap();
        assert_eq!(children(&mut a, t0()).unwrap(), 0);
        // The lock went into the audit log as a lock (not a log-out).
        let actions = a
            .with(t0(), |s, _| {
                Ok(s.audit_entries(&shouhu_store::AuditFilter::default())?
                    .into_iter()
                    .map(|e| e.action)
                    .collect::<Vec<_>>())
            })
            .unwrap();
        assert!(actions.contains(&AuditAction::Lock), "{actions:?}");
        a.log_out();
        assert!(!a.is_open());
    }

    #[test]
    fn growing_delays_after_failed_log_ins_say_how_long_to_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = account(dir.path());
        a.set_up(first(Role::Principal), t0()).unwrap();
        a.lock();
        for i in 0..3 {
            let e = a.log_in(log_in("liming", "wrong2026"), t0() + Duration::seconds(i));
            assert_eq!(e.unwrap_err().code(), "auth.wrong_password");
        }
        let e = a
            .log_in(
                log_in("liming", "qingshan2026"),
                t0() + Duration::seconds(3),
            )
            .unwrap_err();
        assert_eq!(e.code(), "auth.locked_out");
        let body = e.body(Lang::ZhCn);
        assert_eq!(body.details["retry_after_secs"], 4, "{body:?}");
        assert!(body.message.contains("4秒"), "{}", body.message);
        a.log_in(
            log_in("liming", "qingshan2026"),
            t0() + Duration::seconds(8),
        )
        .unwrap();
    }

    #[test]
    fn idle_time_locks_in_the_backend_too() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = account(dir.path());
        a.set_up(first(Role::Teacher), t0()).unwrap();
        assert_eq!(a.current(t0()).unwrap().auto_lock_minutes, 10);
        // Activity moves the deadline.
        children(&mut a, t0() + Duration::minutes(9)).unwrap();
        children(&mut a, t0() + Duration::minutes(18)).unwrap();
        a.with(t0() + Duration::minutes(18), |s, _| {
            set_setting(
                s,
                &SettingChange {
                    key: "auto_lock_minutes".into(),
                    value: "5".into(),
                },
            )
        })
        .unwrap();
        let e = children(&mut a, t0() + Duration::minutes(24)).unwrap_err();
        assert_eq!(e.code(), "auth.locked");
        assert!(!a.is_open(), "the session is dropped");
        assert!(a.state().unwrap().current.is_none());
        // The auto-lock is in the audit log.
        a.log_in(
            log_in("liming", "qingshan2026"),
            t0() + Duration::minutes(25),
        )
        .unwrap();
        let actions = a
            .with(t0() + Duration::minutes(25), |s, _| {
                Ok(s.audit_entries(&Default::default())?
                    .into_iter()
                    .map(|e| e.action)
                    .collect::<Vec<_>>())
            })
            .unwrap();
        assert!(actions.contains(&AuditAction::AutoLock), "{actions:?}");
    }

    #[test]
    fn demo_accounts_for_every_role_and_notes_for_readers_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = account(dir.path());
        // Every kind of record (notes for about 3% of children).
        let spec = DemoSpec {
            children: 200,
            visits_per_child: 0.5,
            ..DemoSpec::default()
        };
        let done = a.use_demo(&spec, &mut |_| {}).unwrap();
        assert_eq!(done.children, 200);
        assert!(!a.is_open(), "demo ends on the log-in screen");
        let v = a.state().unwrap();
        assert_eq!(v.state, "ready");
        assert_eq!(v.demo_password.as_deref(), Some(DEMO_PASSWORD));
        let roles: Vec<Role> = v.users.iter().map(|u| u.role).collect();
        for r in Role::ALL {
            assert!(roles.contains(&r), "{r:?} has a demo account");
        }
        assert_eq!(
            a.use_demo(&spec, &mut |_| {}).unwrap_err().code(),
            "demo.store_not_empty"
        );
        for (login, _, role) in DEMO_USERS {
            let me = a.log_in(log_in(login, DEMO_PASSWORD), t0()).unwrap();
            assert_eq!(me.role, role);
            assert_eq!(
                me.manages_users,
                matches!(role, Role::Principal | Role::CountyAdmin)
            );
            let (demo, child) = a
                .with(t0(), |s, session| {
                    // A child this account may open: of its own school.
                    let c = s
                        .list_all::<shouhu_core::ChildCard>()?
                        .into_iter()
                        .find(|c| {
                            session
                                .own_school()
                                .is_none_or(|own| c.body.school_id == Some(own))
                        })
                        .map(|c| c.meta.id)
                        .unwrap_or_default();
                    Ok((get_settings(s)?.demo, c))
                })
                .unwrap();
            assert!(demo);
            let notes = a.with(t0(), |s, session| {
                crate::list_child_records(s, session, child, "psych_note")
            });
            assert_eq!(notes.is_ok(), role.reads_notes(), "{role:?}");
            // Only school staff change records.
            let wrote = a.with_write(t0(), |s, session| {
                let mut card = s.fetch::<shouhu_core::ChildCard>(child)?.body;
                card.grade = "四年级".into();
                crate::save_child(
                    s,
                    session,
                    crate::SaveChild {
                        id: Some(child),
                        card,
                    },
                )
            });
            let writes = matches!(role, Role::Teacher | Role::Counselor | Role::Principal);
            assert_eq!(wrote.is_ok(), writes, "{role:?} writes records");
            assert_eq!(me.writes_records, writes, "{role:?}");
            if !writes {
                assert_eq!(wrote.unwrap_err().code(), "auth.forbidden");
            }
            // The demo's notes were sealed as they were generated, for its
            // counselor and supervisor, who open every one of them.
            let (all, plain) = a
                .with(t0(), |s, session| {
                    let all = s.list_all::<shouhu_core::PsychNote>()?;
                    let rows = if role.reads_notes() {
                        let mut rows = vec![];
                        for n in all.iter().filter(|n| {
                            session
                                .own_school()
                                .is_none_or(|own| n.body.school_id == Some(own))
                        }) {
                            rows.extend(crate::list_child_records(
                                s,
                                session,
                                n.body.child_id,
                                "psych_note",
                            )?);
                        }
                        rows
                    } else {
                        vec![]
                    };
                    assert!(rows.iter().all(|r| !r.locked), "{role:?}");
                    let issues = all
                        .iter()
                        .filter(|n| !n.body.presenting_issue.is_empty())
                        .count();
                    Ok((all, issues))
                })
                .unwrap();
            assert!(!all.is_empty());
            assert!(all.iter().all(|n| n.body.is_sealed()));
            assert_eq!(plain, 0);
        }
        // The store is encrypted: it does not open without the key.
        a.log_out();
        assert!(Store::open(dir.path().join("shouhu.db")).is_err());
    }

    #[test]
    fn a_plain_store_is_encrypted_in_place_keeping_its_school() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shouhu.db");
        let school = {
            let mut s = Store::open(&path).unwrap();
            let id = crate::testutil::school(&mut s);
            crate::testutil::child(&mut s, id);
            id
        };
        let mut a = account(dir.path());
        assert_eq!(a.state().unwrap().state, "plain");
        let me = a.set_up(first(Role::Counselor), t0()).unwrap();
        assert!(matches!(me.scope, Scope::School { school_id, .. } if school_id == school));
        assert!(me.reads_notes);
        assert_eq!(children(&mut a, t0()).unwrap(), 1);
        let schools = a.with(t0(), |s, _| crate::list_schools(s)).unwrap();
        assert_eq!(schools.len(), 1, "the existing school is reused");
        assert!(!Store::is_plain_file(&path));
    }

    #[test]
    fn passwords_and_laptop_users() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = account(dir.path());
        a.set_up(first(Role::Principal), t0()).unwrap();
        let change = |old: &str, new: &str, again: &str| ChangePassword {
            old: old.into(),
            new: new.into(),
            new_again: again.into(),
        };
        let e = a
            .change_password(change("nope2026", "green2027", "green2027"), t0())
            .unwrap_err();
        assert_eq!(e.code(), "auth.wrong_password");
        let e = a
            .change_password(change("qingshan2026", "green2027", "green2028"), t0())
            .unwrap_err();
        assert_eq!(e.code(), "auth.password_mismatch");
        a.change_password(change("qingshan2026", "green2027", "green2027"), t0())
            .unwrap();

        let add = |login: &str, role: Role| AddUser {
            login_name: login.into(),
            display_name: "王芳".into(),
            role,
            school_id: None,
            password: "wangfang2026".into(),
            password_again: "wangfang2026".into(),
        };
        a.add_user(add("wangfang", Role::Teacher), t0()).unwrap();
        let e = a
            .add_user(add("boss", Role::CountyAdmin), t0())
            .unwrap_err();
        assert_eq!(e.code(), "auth.forbidden");
        let e = a
            .add_user(add("wangfang", Role::Teacher), t0())
            .unwrap_err();
        assert_eq!(e.code(), "vault.user_exists");
        assert_eq!(a.list_users(t0()).unwrap().len(), 2);
        a.reset_password(
            ResetPassword {
                login_name: "wangfang".into(),
                password: "reset2026".into(),
                password_again: "reset2026".into(),
            },
            t0(),
        )
        .unwrap();

        a.log_out();
        let e = a
            .log_in(log_in("liming", "qingshan2026"), t0())
            .unwrap_err();
        assert_eq!(e.code(), "auth.wrong_password", "the old password is gone");
        let me = a.log_in(log_in("wangfang", "reset2026"), t0()).unwrap();
        assert!(matches!(me.scope, Scope::School { .. }));
        // A teacher manages no one.
        let e = a.add_user(add("other", Role::Teacher), t0()).unwrap_err();
        assert_eq!(e.code(), "auth.forbidden");
        a.log_in(log_in("liming", "green2027"), t0()).unwrap();
    }
}

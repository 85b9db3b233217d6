//! A laptop's data folder: set-up, log-in, and what a logged-in user may change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use shouhu_auth::password::{check_new_password, KdfParams};
use shouhu_auth::role::may_add_laptop_user;
use shouhu_auth::throttle::Throttle;
use shouhu_auth::{
    AuthError, DataKey, ReaderKeyPair, ReaderPublicKey, Role, Scope, SealedDataKey,
    SealedReaderKey, SealedReaderToLogin, WrappedKey,
};
use shouhu_store::{AuditAction, AuditTarget, Identity, Store};
use uuid::Uuid;

use crate::error::VaultError;
use crate::keyring::{
    self, normalise_login, Keyring, LocalUser, PasswordChange, PendingUser, KEYRING_VERSION,
    MAX_PENDING_FAILURES,
};

/// What the data folder holds, for the first screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultState {
    /// No store and no keyring: offer first set-up.
    Empty,
    /// A store from before encryption, no keyring: set-up encrypts it in place.
    Plain,
    /// An encrypted store with its users (log-in name, display name).
    Ready { users: Vec<(String, String)> },
}

/// An account to put on this laptop.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_id: Uuid,
    pub login_name: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Scope,
    pub password: String,
}

/// A county server user as the last sync gave it (the app turns the
/// protocol's `UserRecord` into this).
#[derive(Debug, Clone)]
pub struct ServerUser {
    pub user_id: Uuid,
    pub login_name: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Scope,
    /// The log-in key of the current server credential; `None` for a user
    /// from before log-in keys (they can log in here after their next reset).
    pub login_key: Option<SealedReaderKey>,
    pub must_change_password: bool,
    pub removed: bool,
    /// When the server's credential last changed (its `password_changed_at`).
    pub password_changed_at: String,
}

/// What [`Session::apply_server_users`] changed, by log-in name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerUsersApplied {
    /// New pending users (they can log in here with their initial password).
    pub added: Vec<String>,
    /// Users whose credential the server reset (pending again).
    pub replaced: Vec<String>,
    /// Users who changed their password on another laptop: the new one
    /// opens their entry here, the old one no more.
    pub password_changed: Vec<String>,
    /// Users removed on the server, taken off this laptop.
    pub removed: Vec<String>,
    /// Left alone, with why: `login_taken` (a user of this laptop has the
    /// name), `no_login_key` (made before log-in keys), `last_user` (the only
    /// one who can open the store).
    pub skipped: Vec<(String, &'static str)>,
}

/// How a keyring entry of a server user stands to the server's credential
/// with the same log-in key pair.
enum Credential {
    Same,
    /// The same, with the server's time now recorded.
    SameNewTime,
    /// The password was changed on another laptop (the secret re-sealed).
    Changed,
}

/// Compares the keyring entry of `su` (a logged-in-here user with the same
/// log-in pair) with the server's credential. An entry with a change still
/// queued is left alone (it goes to the server first; if refused, the next
/// sync brings the server's). An entry from before log-in keys were kept is
/// compared by the server's time: the first time seen is taken as its own.
fn same_credential(ring: &mut Keyring, su: &ServerUser, login_key: &SealedReaderKey) -> Credential {
    let Some(u) = ring.users.iter_mut().find(|u| u.user_id == su.user_id) else {
        return Credential::Same;
    };
    if u.password_change.is_some() {
        return Credential::Same;
    }
    let same = match (&u.login_key, &u.server_password_changed_at) {
        (Some(k), _) => k.sealed_secret == login_key.sealed_secret,
        (None, Some(at)) => *at == su.password_changed_at,
        (None, None) => true,
    };
    if !same {
        return Credential::Changed;
    }
    if u.server_password_changed_at.as_deref() == Some(su.password_changed_at.as_str()) {
        Credential::Same
    } else {
        u.server_password_changed_at = Some(su.password_changed_at.clone());
        Credential::SameNewTime
    }
}

fn pending_failure(failed_at: &mut Vec<DateTime<Utc>>, now: DateTime<Utc>) {
    failed_at.push(now);
    let excess = failed_at.len().saturating_sub(MAX_PENDING_FAILURES);
    failed_at.drain(..excess);
}

#[derive(Debug, Clone)]
pub struct Vault {
    store_path: PathBuf,
    keyring_path: PathBuf,
    identity_dir: Option<PathBuf>,
    kdf: KdfParams,
}

/// A logged-in user and the open store. Dropping it (log-out, auto-lock) closes
/// the store and forgets the key.
pub struct Session {
    vault: Vault,
    user: LocalUser,
    key: DataKey,
    store: Store,
    identity: Option<Identity>,
    /// The user's notes reader keys, opened at log-in (readers only).
    reader: Option<Arc<ReaderKeyPair>>,
}

/// A new reader key pair for `role` (none for roles that do not read notes),
/// sealed with `password`.
fn new_reader(
    role: Role,
    password: &str,
    kdf: KdfParams,
) -> Result<Option<(ReaderKeyPair, SealedReaderKey)>, VaultError> {
    if !role.reads_notes() {
        return Ok(None);
    }
    let pair = ReaderKeyPair::generate()?;
    let sealed = SealedReaderKey::seal(&pair, password, kdf)?;
    Ok(Some((pair, sealed)))
}

fn check_login_name(name: &str) -> Result<String, VaultError> {
    let n = normalise_login(name);
    let ok_len = (2..=32).contains(&n.chars().count());
    let ok_chars = n
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok_len && ok_chars {
        Ok(n)
    } else {
        Err(VaultError::LoginNameInvalid)
    }
}

impl Vault {
    /// The vault of the store at `store_path` (its keyring lies beside it).
    pub fn new(store_path: impl Into<PathBuf>) -> Vault {
        let store_path = store_path.into();
        Vault {
            keyring_path: keyring::path_for(&store_path),
            store_path,
            identity_dir: None,
            kdf: KdfParams::INTERACTIVE,
        }
    }

    /// Check the device identity against this folder on every open (see
    /// `shouhu_store::identity`).
    pub fn with_identity_dir(mut self, dir: impl Into<PathBuf>) -> Vault {
        self.identity_dir = Some(dir.into());
        self
    }

    /// Cheaper key derivation, for tests only.
    pub fn with_kdf(mut self, kdf: KdfParams) -> Vault {
        self.kdf = kdf;
        self
    }

    pub fn store_path(&self) -> &Path {
        &self.store_path
    }

    pub fn state(&self) -> Result<VaultState, VaultError> {
        if let Some(ring) = Keyring::load(&self.keyring_path)? {
            return Ok(VaultState::Ready {
                users: ring
                    .users
                    .iter()
                    .map(|u| (u.login_name.clone(), u.display_name.clone()))
                    .chain(
                        ring.pending
                            .iter()
                            .map(|u| (u.login_name.clone(), u.display_name.clone())),
                    )
                    .collect(),
            });
        }
        if self.store_path.exists() && Store::is_plain_file(&self.store_path) {
            Ok(VaultState::Plain)
        } else {
            Ok(VaultState::Empty)
        }
    }

    fn open(&self, key: &DataKey) -> Result<(Store, Option<Identity>), VaultError> {
        Ok(match &self.identity_dir {
            Some(dir) => {
                let (store, id) =
                    Store::open_encrypted_with_identity(&self.store_path, key.as_bytes(), dir)?;
                (store, Some(id))
            }
            None => (
                Store::open_encrypted(&self.store_path, key.as_bytes())?,
                None,
            ),
        })
    }

    /// First start: makes the data key, wraps it for `first`, encrypts a plain
    /// store in place if there is one (or creates a new encrypted store), and
    /// logs `first` in.
    pub fn set_up(&self, first: NewUser) -> Result<Session, VaultError> {
        if Keyring::load(&self.keyring_path)?.is_some() {
            return Err(VaultError::AlreadySetUp);
        }
        let login_name = check_login_name(&first.login_name)?;
        check_new_password(&first.password, &login_name)?;
        let key = DataKey::generate()?;
        if self.store_path.exists() {
            if Store::is_plain_file(&self.store_path) {
                Store::encrypt_plain_file(&self.store_path, key.as_bytes())?;
            } else {
                // An encrypted store without its keyring: nobody can open it;
                // never overwrite it.
                return Err(VaultError::KeyringUnreadable {
                    path: self.keyring_path.display().to_string(),
                    reason: "missing beside an encrypted store".into(),
                });
            }
        }
        let reader = new_reader(first.role, &first.password, self.kdf)?;
        let user = LocalUser {
            user_id: first.user_id,
            login_name,
            display_name: first.display_name.trim().to_string(),
            role: first.role,
            scope: first.scope,
            wrapped_key: WrappedKey::wrap(&key, first.user_id, &first.password, self.kdf)?,
            throttle: Throttle::default(),
            failed_at: Vec::new(),
            reader: reader.as_ref().map(|(_, sealed)| sealed.clone()),
            server_login_key: None,
            must_change_password: false,
            login_key: None,
            server_password_changed_at: None,
            password_change: None,
            reader_to_login: None,
        };
        let (mut store, identity) = self.open(&key)?;
        // The keyring is written only once the store opened with the key.
        Keyring {
            version: KEYRING_VERSION,
            users: vec![user.clone()],
            pending: Vec::new(),
        }
        .save(&self.keyring_path)?;
        store.set_user(user.user_id);
        store.audit(
            AuditAction::Login,
            AuditTarget::default(),
            json!({ "first_set_up": true }),
        )?;
        Ok(Session {
            vault: self.clone(),
            user,
            key,
            store,
            identity,
            reader: reader.map(|(pair, _)| Arc::new(pair)),
        })
    }

    /// Offline log-in. A wrong password and an unknown name give the same
    /// error; failures of a known user are counted in the keyring, and after
    /// three of them each attempt waits longer ([`Throttle`]).
    pub fn log_in(
        &self,
        login_name: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<Session, VaultError> {
        let mut ring = Keyring::load(&self.keyring_path)?.ok_or(VaultError::NotSetUp)?;
        let wanted = normalise_login(login_name);
        if ring.find(login_name).is_none() {
            if let Some(at) = ring.pending.iter().position(|p| p.login_name == wanted) {
                return self.log_in_pending(ring, at, password, now);
            }
        }
        let Some(user) = ring.find_mut(login_name) else {
            return Err(AuthError::WrongPassword.into());
        };
        user.throttle.check(now)?;
        let key = match user.wrapped_key.unwrap(password) {
            Ok(key) => key,
            Err(AuthError::WrongPassword) => {
                user.throttle.record_failure(now);
                pending_failure(&mut user.failed_at, now);
                ring.save(&self.keyring_path)?;
                return Err(AuthError::WrongPassword.into());
            }
            Err(other) => return Err(other.into()),
        };
        let failures = std::mem::take(&mut user.failed_at);
        // A reader's notes keys open with the same password. A reader from
        // before notes were sealed gets a pair now (the password is at hand).
        let mut new_pair = None;
        let reader = match &user.reader {
            Some(sealed) => Some(Arc::new(sealed.open(password)?)),
            None => match new_reader(user.role, password, self.kdf)? {
                Some((pair, sealed)) => {
                    user.reader = Some(sealed);
                    new_pair = Some(user.clone());
                    Some(Arc::new(pair))
                }
                None => None,
            },
        };
        // A server user's reader pair, sealed to their log-in key, so it
        // survives a password change made on another laptop.
        let to_login = match (&reader, &user.login_key) {
            (Some(pair), Some(login))
                if user.reader_to_login.as_ref().is_none_or(|r| {
                    r.login_public != login.public || r.reader_public != pair.public()
                }) =>
            {
                Some(SealedReaderToLogin::seal(pair, user.user_id, login.public)?)
            }
            _ => None,
        };
        let user = user.clone();
        let (mut store, identity) = self.open(&key)?;
        store.set_user(user.user_id);
        // The failed attempts go into the audit log (with their own times)
        // before the keyring forgets them.
        for at in &failures {
            store.audit_at(
                AuditAction::LoginFailed,
                AuditTarget::default(),
                json!({}),
                *at,
            )?;
        }
        store.audit_at(
            AuditAction::Login,
            AuditTarget::default(),
            json!({ "failed_before": failures.len() }),
            now,
        )?;
        if let Some(u) = ring.find_mut(login_name) {
            if u.throttle != Throttle::default()
                || !u.failed_at.is_empty()
                || new_pair.is_some()
                || to_login.is_some()
            {
                u.throttle.record_success();
                u.failed_at.clear();
                if let Some(with_reader) = &new_pair {
                    u.reader = with_reader.reader.clone();
                }
                if to_login.is_some() {
                    u.reader_to_login = to_login.clone();
                }
                ring.save(&self.keyring_path)?;
            }
        }
        Ok(Session {
            vault: self.clone(),
            user,
            key,
            store,
            identity,
            reader,
        })
    }
}

impl Vault {
    /// The first log-in of a server user on this laptop: the typed password
    /// opens their log-in secret (a wrong one counts like any failure), that
    /// opens the data key, and the entry becomes a normal one: the data key
    /// wrapped by the password, a reader key pair for a reader role.
    fn log_in_pending(
        &self,
        mut ring: Keyring,
        at: usize,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<Session, VaultError> {
        let p = &mut ring.pending[at];
        p.throttle.check(now)?;
        let login = match p.login_key.open(password) {
            Ok(pair) => pair,
            Err(AuthError::WrongPassword) => {
                p.throttle.record_failure(now);
                pending_failure(&mut p.failed_at, now);
                ring.save(&self.keyring_path)?;
                return Err(AuthError::WrongPassword.into());
            }
            Err(other) => return Err(other.into()),
        };
        let p = ring.pending.remove(at);
        if p.data_key.user_id != p.user_id || p.data_key.login_public != p.login_key.public {
            return Err(AuthError::Malformed {
                what: "sealed_data_key",
            }
            .into());
        }
        let key = p.data_key.open(&login)?;
        // The store opens with the key before the keyring changes.
        let (mut store, identity) = self.open(&key)?;
        // The reader pair this laptop had for them (their password changed
        // on another laptop) opens with the log-in key; else a new one.
        let kept = match &p.reader {
            Some(r) if r.user_id == p.user_id && r.login_public == p.login_key.public => {
                Some(r.open(&login)?)
            }
            _ => None,
        };
        let reader = match kept {
            Some(pair) if p.role.reads_notes() => {
                let sealed = SealedReaderKey::seal(&pair, password, self.kdf)?;
                Some((pair, sealed))
            }
            _ => new_reader(p.role, password, self.kdf)?,
        };
        let reader_to_login = match &reader {
            Some((pair, _)) => Some(SealedReaderToLogin::seal(
                pair,
                p.user_id,
                p.login_key.public,
            )?),
            None => None,
        };
        let (server_login_key, _) = p.login_key.to_base64();
        let user = LocalUser {
            user_id: p.user_id,
            login_name: p.login_name.clone(),
            display_name: p.display_name.clone(),
            role: p.role,
            scope: p.scope,
            wrapped_key: WrappedKey::wrap(&key, p.user_id, password, self.kdf)?,
            throttle: Throttle::default(),
            failed_at: Vec::new(),
            reader: reader.as_ref().map(|(_, sealed)| sealed.clone()),
            server_login_key: Some(server_login_key),
            must_change_password: p.must_change_password,
            login_key: Some(p.login_key.clone()),
            server_password_changed_at: p.password_changed_at.clone(),
            password_change: None,
            reader_to_login,
        };
        store.set_user(user.user_id);
        for failed in &p.failed_at {
            store.audit_at(
                AuditAction::LoginFailed,
                AuditTarget::default(),
                json!({}),
                *failed,
            )?;
        }
        store.audit_at(
            AuditAction::Login,
            AuditTarget::default(),
            json!({ "failed_before": p.failed_at.len(), "first_on_this_laptop": true }),
            now,
        )?;
        ring.users.retain(|u| u.user_id != user.user_id);
        ring.users.push(user.clone());
        ring.save(&self.keyring_path)?;
        Ok(Session {
            vault: self.clone(),
            user,
            key,
            store,
            identity,
            reader: reader.map(|(pair, _)| Arc::new(pair)),
        })
    }
}

impl Session {
    pub fn user(&self) -> &LocalUser {
        &self.user
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The logged-in user's notes reader keys (counselors and supervisors).
    pub fn reader_keys(&self) -> Option<&ReaderKeyPair> {
        self.reader.as_deref()
    }

    /// [`Session::reader_keys`], shared (the app hands them to each command).
    pub fn reader_keys_shared(&self) -> Option<Arc<ReaderKeyPair>> {
        self.reader.clone()
    }

    /// The notes readers on this laptop: every user of its keyring with a
    /// reader key (user id, public key), for sealing a new note.
    pub fn local_readers(&self) -> Result<Vec<(Uuid, ReaderPublicKey)>, VaultError> {
        let ring = Keyring::load(&self.vault.keyring_path)?.ok_or(VaultError::NotSetUp)?;
        Ok(ring
            .users
            .iter()
            .filter_map(|u| u.reader.as_ref().map(|r| (u.user_id, r.public)))
            .collect())
    }

    /// What the identity check found when the store opened (when the vault has
    /// an identity folder).
    pub fn identity(&self) -> Option<Identity> {
        self.identity
    }

    fn update_ring(
        &self,
        f: impl FnOnce(&mut Keyring) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        let mut ring = Keyring::load(&self.vault.keyring_path)?.ok_or(VaultError::NotSetUp)?;
        f(&mut ring)?;
        ring.save(&self.vault.keyring_path)
    }

    /// Changes the logged-in user's password (the old one is asked again, so a
    /// laptop left unlocked cannot be taken over). For a county server user
    /// the change is also queued for the server ([`PasswordChange`], sent at
    /// the next sync): the same log-in key pair, its secret re-sealed with
    /// the new password, the new Argon2id hash, and a proof made with the
    /// log-in key. A second change before a sync replaces the first (both
    /// replace the same server credential).
    pub fn change_password(&mut self, old: &str, new: &str) -> Result<(), VaultError> {
        self.user.wrapped_key.unwrap(old)?;
        check_new_password(new, &self.user.login_name)?;
        let wrapped = WrappedKey::wrap(&self.key, self.user.user_id, new, self.vault.kdf)?;
        let reader = match &self.reader {
            Some(pair) => Some(SealedReaderKey::seal(pair, new, self.vault.kdf)?),
            None => None,
        };
        let for_server = self.server_password_change(old, new)?;
        let login = self.user.login_name.clone();
        self.update_ring(|ring| {
            let u = ring
                .find_mut(&login)
                .ok_or_else(|| VaultError::NoSuchUser(login.clone()))?;
            u.wrapped_key = wrapped.clone();
            u.must_change_password = false;
            if reader.is_some() {
                u.reader = reader.clone();
            }
            if let Some((key, change)) = &for_server {
                u.login_key = Some(key.clone());
                u.password_change = Some(change.clone());
            }
            Ok(())
        })?;
        self.user.wrapped_key = wrapped;
        self.user.must_change_password = false;
        if reader.is_some() {
            self.user.reader = reader;
        }
        if let Some((key, change)) = for_server {
            self.user.login_key = Some(key);
            self.user.password_change = Some(change);
        }
        self.audit_account(AuditAction::PasswordChanged, &self.user.login_name.clone())
    }

    /// A server user's change for the server: the log-in key re-sealed with
    /// `new` and the queued request. `None` for a laptop user, or a server
    /// user whose entry holds no log-in key (from before, or reset on this
    /// laptop: the change stays here).
    fn server_password_change(
        &self,
        old: &str,
        new: &str,
    ) -> Result<Option<(SealedReaderKey, PasswordChange)>, VaultError> {
        let (Some(login_key), Some(server_at)) =
            (&self.user.login_key, &self.user.server_password_changed_at)
        else {
            return Ok(None);
        };
        let pair = match login_key.open(old) {
            Ok(pair) => pair,
            // Sealed with another password than the store's (it should not
            // be): the change stays here.
            Err(AuthError::WrongPassword) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let resealed = SealedReaderKey::seal(&pair, new, self.vault.kdf)?;
        let (_, sealed_text) = resealed.to_base64();
        let hash = shouhu_auth::password::hash_password(new, self.vault.kdf)?;
        let based_on = match &self.user.password_change {
            Some(queued) => queued.based_on.clone(),
            None => server_at.clone(),
        };
        let proof = shouhu_auth::credential::proof(
            &shouhu_auth::credential::change_key(&pair),
            self.user.user_id,
            &based_on,
            &hash,
            &sealed_text,
        )?;
        Ok(Some((
            resealed,
            PasswordChange {
                based_on,
                password_hash: hash,
                login_secret_sealed: sealed_text,
                proof,
            },
        )))
    }

    /// The password changes made on this laptop that the server has not
    /// taken yet, by user id (any user's: the proof was made when they
    /// changed it, so whoever syncs sends them).
    pub fn pending_password_changes(&self) -> Result<Vec<(Uuid, PasswordChange)>, VaultError> {
        let ring = Keyring::load(&self.vault.keyring_path)?.ok_or(VaultError::NotSetUp)?;
        Ok(ring
            .users
            .iter()
            .filter_map(|u| u.password_change.clone().map(|c| (u.user_id, c)))
            .collect())
    }

    /// The server answered a queued password change: `taken` is the
    /// server's new `password_changed_at` when it took it, `None` when it
    /// refused it (its newer credential stays and comes down with the users:
    /// **the server's newer credential wins**). Either way the change is no
    /// longer queued. A change queued again meanwhile (another proof) stays.
    pub fn password_change_answered(
        &mut self,
        user_id: Uuid,
        sent: &PasswordChange,
        taken: Option<&str>,
    ) -> Result<(), VaultError> {
        let mut matched = false;
        self.update_ring(|ring| {
            if let Some(u) = ring.users.iter_mut().find(|u| u.user_id == user_id) {
                if u.password_change.as_ref() == Some(sent) {
                    matched = true;
                    u.password_change = None;
                    if let Some(at) = taken {
                        u.server_password_changed_at = Some(at.to_string());
                    }
                }
            }
            Ok(())
        })?;
        if matched && self.user.user_id == user_id {
            self.user.password_change = None;
            if let Some(at) = taken {
                self.user.server_password_changed_at = Some(at.to_string());
            }
        }
        Ok(())
    }

    fn may_manage(&self, role: Role, scope: Scope) -> Result<(), VaultError> {
        if may_add_laptop_user(self.user.role, self.user.scope, role, scope) {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                role: self.user.role,
                action: shouhu_auth::Action::ManageUsers,
            }
            .into())
        }
    }

    /// Gives another user access to this laptop: the new user types their
    /// password here, and the data key is wrapped for it. Only a county admin,
    /// or a principal for their own school's staff.
    pub fn add_user(&mut self, new: NewUser) -> Result<(), VaultError> {
        self.add_user_keyed(new, None)
    }

    /// [`Session::add_user`] for a notes reader whose key pair was made
    /// beforehand (the demo seals its notes for its counselor while it is
    /// generated, before the account exists). Refused for a role that does
    /// not read notes.
    pub fn add_user_with_reader(
        &mut self,
        new: NewUser,
        pair: ReaderKeyPair,
    ) -> Result<(), VaultError> {
        if !new.role.reads_notes() {
            return Err(AuthError::Forbidden {
                role: new.role,
                action: shouhu_auth::Action::ReadNotes,
            }
            .into());
        }
        self.add_user_keyed(new, Some(pair))
    }

    fn add_user_keyed(
        &mut self,
        new: NewUser,
        pair: Option<ReaderKeyPair>,
    ) -> Result<(), VaultError> {
        self.may_manage(new.role, new.scope)?;
        let login_name = check_login_name(&new.login_name)?;
        check_new_password(&new.password, &login_name)?;
        let user = LocalUser {
            user_id: new.user_id,
            login_name: login_name.clone(),
            display_name: new.display_name.trim().to_string(),
            role: new.role,
            scope: new.scope,
            wrapped_key: WrappedKey::wrap(&self.key, new.user_id, &new.password, self.vault.kdf)?,
            throttle: Throttle::default(),
            failed_at: Vec::new(),
            reader: match pair {
                Some(p) => Some(SealedReaderKey::seal(&p, &new.password, self.vault.kdf)?),
                None => new_reader(new.role, &new.password, self.vault.kdf)?.map(|(_, s)| s),
            },
            server_login_key: None,
            must_change_password: false,
            login_key: None,
            server_password_changed_at: None,
            password_change: None,
            reader_to_login: None,
        };
        self.update_ring(|ring| {
            if ring.name_taken(&login_name) {
                return Err(VaultError::UserExists(login_name.clone()));
            }
            ring.users.push(user);
            Ok(())
        })?;
        self.audit_account(AuditAction::UserAdded, &login_name)
    }

    /// Brings the keyring up to date with the county server's users of this
    /// laptop's scope (after a sync; the session's open data key is what
    /// makes it possible). A new server user becomes a [`PendingUser`]: the
    /// data key sealed to their log-in key, so their first log-in works
    /// offline with the initial password. A reset on the server (another
    /// log-in key) replaces their entry likewise; a user removed on the
    /// server is taken off the keyring (their records and unsynced changes
    /// stay in the store). Users made on this laptop are left alone, and so
    /// is a server user whose log-in name one of them has. No role check: the
    /// county admin made these accounts. Each change is audited.
    pub fn apply_server_users(
        &mut self,
        users: &[ServerUser],
    ) -> Result<ServerUsersApplied, VaultError> {
        let mut ring = Keyring::load(&self.vault.keyring_path)?.ok_or(VaultError::NotSetUp)?;
        let mut out = ServerUsersApplied::default();
        let mut audit: Vec<(AuditAction, String)> = Vec::new();
        let mut dirty = false;
        for su in users {
            let login_name = normalise_login(&su.login_name);
            let known_user = ring.users.iter().find(|u| u.user_id == su.user_id).cloned();
            let known = known_user.as_ref();
            let pending_at = ring.pending.iter().position(|p| p.user_id == su.user_id);
            if known.is_some_and(|u| u.server_login_key.is_none()) {
                // A laptop account with the same id: not the server's to change.
                continue;
            }
            if su.removed {
                if known.is_none() && pending_at.is_none() {
                    continue;
                }
                let left = ring
                    .users
                    .iter()
                    .filter(|u| u.user_id != su.user_id)
                    .count()
                    + ring
                        .pending
                        .iter()
                        .filter(|p| p.user_id != su.user_id)
                        .count();
                if left == 0 {
                    out.skipped.push((login_name, "last_user"));
                    continue;
                }
                ring.users.retain(|u| u.user_id != su.user_id);
                ring.pending.retain(|p| p.user_id != su.user_id);
                audit.push((AuditAction::UserRemoved, login_name.clone()));
                out.removed.push(login_name);
                continue;
            }
            let Some(login_key) = &su.login_key else {
                if known.is_none() && pending_at.is_none() {
                    out.skipped.push((login_name, "no_login_key"));
                }
                continue;
            };
            let (key_text, _) = login_key.to_base64();
            let same_pair = match (known, pending_at) {
                (Some(u), _) => u.server_login_key.as_deref() == Some(key_text.as_str()),
                (None, Some(i)) => ring.pending[i].login_key.public == login_key.public,
                (None, None) => false,
            };
            // The same log-in key: the same credential, or the same pair with
            // a password changed on another laptop (its secret re-sealed).
            let mut changed_elsewhere = false;
            if same_pair {
                match (known.is_some(), pending_at) {
                    (true, _) => {
                        match same_credential(&mut ring, su, login_key) {
                            Credential::Same => {}
                            Credential::SameNewTime => dirty = true,
                            Credential::Changed => changed_elsewhere = true,
                        }
                        if !changed_elsewhere {
                            continue;
                        }
                    }
                    (false, Some(i)) => {
                        let p = &mut ring.pending[i];
                        if p.login_key.sealed_secret != login_key.sealed_secret {
                            // Never logged in here: the new password opens the
                            // same pair, so the data key sealed to it stays.
                            p.login_key = login_key.clone();
                            p.must_change_password = su.must_change_password;
                            p.password_changed_at = Some(su.password_changed_at.clone());
                            audit.push((AuditAction::PasswordChanged, login_name.clone()));
                            out.password_changed.push(login_name);
                        } else if p.password_changed_at.as_deref()
                            != Some(su.password_changed_at.as_str())
                        {
                            p.password_changed_at = Some(su.password_changed_at.clone());
                            dirty = true;
                        }
                        continue;
                    }
                    (false, None) => {}
                }
            }
            let exists = known.is_some() || pending_at.is_some();
            let taken_by_other = ring
                .users
                .iter()
                .any(|u| u.login_name == login_name && u.user_id != su.user_id)
                || ring
                    .pending
                    .iter()
                    .any(|p| p.login_name == login_name && p.user_id != su.user_id);
            if taken_by_other {
                out.skipped.push((login_name, "login_taken"));
                continue;
            }
            let entry = PendingUser {
                user_id: su.user_id,
                login_name: login_name.clone(),
                display_name: su.display_name.trim().to_string(),
                role: su.role,
                scope: su.scope,
                login_key: login_key.clone(),
                data_key: SealedDataKey::seal(&self.key, su.user_id, login_key.public)?,
                must_change_password: su.must_change_password,
                throttle: Throttle::default(),
                failed_at: Vec::new(),
                password_changed_at: Some(su.password_changed_at.clone()),
                // Only a change of password keeps the laptop's reader pair
                // (the same log-in key opens it); a reset does not.
                reader: known
                    .filter(|_| changed_elsewhere)
                    .and_then(|u| u.reader_to_login.clone())
                    .filter(|r| r.login_public == login_key.public),
            };
            ring.users.retain(|u| u.user_id != su.user_id);
            ring.pending.retain(|p| p.user_id != su.user_id);
            ring.pending.push(entry);
            if changed_elsewhere {
                audit.push((AuditAction::PasswordChanged, login_name.clone()));
                out.password_changed.push(login_name);
            } else if exists {
                audit.push((AuditAction::PasswordReset, login_name.clone()));
                out.replaced.push(login_name);
            } else {
                audit.push((AuditAction::UserAdded, login_name.clone()));
                out.added.push(login_name);
            }
        }
        if audit.is_empty() && !dirty {
            return Ok(out);
        }
        ring.save(&self.vault.keyring_path)?;
        if let Some(me) = ring.users.iter().find(|u| u.user_id == self.user.user_id) {
            self.user.server_password_changed_at = me.server_password_changed_at.clone();
        }
        for (action, login_name) in audit {
            self.store.audit(
                action,
                AuditTarget::default(),
                json!({ "login_name": login_name, "from_server": true }),
            )?;
        }
        Ok(out)
    }

    fn audit_account(&self, action: AuditAction, login_name: &str) -> Result<(), VaultError> {
        self.store.audit(
            action,
            AuditTarget::default(),
            json!({ "login_name": login_name }),
        )?;
        Ok(())
    }

    /// An administrator's reset of a forgotten password: a new password for
    /// `login_name`, wrapped with the key this session holds; the user's failed
    /// attempts are cleared.
    pub fn reset_password(
        &mut self,
        login_name: &str,
        new_password: &str,
    ) -> Result<(), VaultError> {
        let ring = Keyring::load(&self.vault.keyring_path)?.ok_or(VaultError::NotSetUp)?;
        let target = ring
            .find(login_name)
            .cloned()
            .ok_or_else(|| VaultError::NoSuchUser(normalise_login(login_name)))?;
        self.may_manage(target.role, target.scope)?;
        check_new_password(new_password, &target.login_name)?;
        let wrapped = WrappedKey::wrap(&self.key, target.user_id, new_password, self.vault.kdf)?;
        // The old reader secret cannot be re-sealed without the old password:
        // a reader gets a new pair, and an existing reader re-wraps the notes
        // for it (see `shouhu_auth::note`).
        let reader =
            new_reader(target.role, new_password, self.vault.kdf)?.map(|(_, sealed)| sealed);
        self.update_ring(|ring| {
            let u = ring
                .find_mut(&target.login_name)
                .ok_or_else(|| VaultError::NoSuchUser(target.login_name.clone()))?;
            u.wrapped_key = wrapped.clone();
            u.throttle = Throttle::default();
            u.reader = reader.clone();
            // The log-in secret cannot be re-sealed either: a server user's
            // later changes here stay on this laptop.
            u.login_key = None;
            u.password_change = None;
            u.reader_to_login = None;
            Ok(())
        })?;
        self.audit_account(AuditAction::PasswordReset, &target.login_name)
    }

    /// Takes a user off this laptop (their wrapped key is deleted). Their
    /// records and unsynced changes stay in the store.
    pub fn remove_user(&mut self, login_name: &str) -> Result<(), VaultError> {
        let ring = Keyring::load(&self.vault.keyring_path)?.ok_or(VaultError::NotSetUp)?;
        let target = ring
            .find(login_name)
            .cloned()
            .ok_or_else(|| VaultError::NoSuchUser(normalise_login(login_name)))?;
        self.may_manage(target.role, target.scope)?;
        self.update_ring(|ring| {
            if ring.users.len() <= 1 {
                return Err(VaultError::LastUser);
            }
            ring.users.retain(|u| u.user_id != target.user_id);
            Ok(())
        })?;
        self.audit_account(AuditAction::UserRemoved, &target.login_name)
    }

    /// The open store, for a one-shot program (the CLI) that ends when its
    /// command does; the session's log-in is already in the audit log.
    pub fn into_store(self) -> Store {
        self.store
    }

    /// Closes the store and forgets the key (log-out and auto-lock). The
    /// entry says which (`AuditAction::Logout` or `AuditAction::AutoLock`).
    pub fn lock_with(self, why: AuditAction) -> Result<Vault, VaultError> {
        self.store.audit(why, AuditTarget::default(), json!({}))?;
        Ok(self.vault)
    }

    /// [`Session::lock_with`] a log-out; if even the audit entry cannot be
    /// written, the session still closes.
    pub fn lock(self) -> Vault {
        let vault = self.vault.clone();
        let _ = self.lock_with(AuditAction::Logout);
        vault
    }
}

//! The keyring file beside the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shouhu_auth::throttle::Throttle;
use shouhu_auth::{Role, Scope, SealedDataKey, SealedReaderKey, SealedReaderToLogin, WrappedKey};
use uuid::Uuid;

use crate::error::VaultError;

pub const KEYRING_VERSION: u32 = 1;

/// One user who may open this laptop's store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalUser {
    pub user_id: Uuid,
    pub login_name: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Scope,
    pub wrapped_key: WrappedKey,
    #[serde(default)]
    pub throttle: Throttle,
    /// Failed log-ins not yet in the audit log (the store cannot be opened
    /// without the right password, so they wait here for the next success).
    /// The newest [`MAX_PENDING_FAILURES`] are kept.
    #[serde(default)]
    pub failed_at: Vec<DateTime<Utc>>,
    /// A notes reader's key pair (roles that read psychological notes), its
    /// secret sealed with this user's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<SealedReaderKey>,
    /// A county server user: the log-in public key (base64) of the server
    /// credential this entry was made from. A later reset on the server
    /// (another key) replaces the entry by a [`PendingUser`]. `None`: a
    /// user made on this laptop, which syncing leaves alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_login_key: Option<String>,
    /// Asked for a new password right after log-in (a server user's initial
    /// password); cleared by a password change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_change_password: bool,
    /// A county server user: their log-in key pair, its secret sealed with
    /// their current password (as the server sent it, or re-sealed here by
    /// a password change). A change here opens it to prove the change to the
    /// server; compared with the server's sealed secret, it tells a password
    /// changed elsewhere. `None`: a laptop user, or a server user who logged
    /// in here before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_key: Option<SealedReaderKey>,
    /// The server's `password_changed_at` of the credential this entry holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_password_changed_at: Option<String>,
    /// A password change made here that the server has not taken yet; sent
    /// at the next sync (it survives restarts and offline weeks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_change: Option<PasswordChange>,
    /// A server user's reader pair here, sealed to their log-in public key
    /// (made at log-in): when their password changes on another laptop, the
    /// entry becomes pending again and this keeps the reader pair for the
    /// next log-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_to_login: Option<SealedReaderToLogin>,
}

/// A password changed on this laptop, queued for the county server
/// (`POST /v1/users/{id}/password`): the new hash, the log-in secret
/// re-sealed with the new password and the proof made with the log-in key
/// (`shouhu_auth::credential`). Holds no password and nothing that opens
/// anything without the new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChange {
    /// The server's `password_changed_at` of the credential it replaces.
    pub based_on: String,
    pub password_hash: String,
    /// Base64.
    pub login_secret_sealed: String,
    /// Base64.
    pub proof: String,
}

/// A county server user who has not logged in on this laptop yet. The
/// laptop cannot wrap its data key with a password it does not know, so the
/// key is sealed to the user's log-in public key ([`SealedDataKey`]); the
/// log-in secret, sealed with the initial password by the server, opens at
/// the first log-in, which turns the entry into a [`LocalUser`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUser {
    pub user_id: Uuid,
    pub login_name: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Scope,
    /// The server's log-in key pair, its secret sealed with the initial
    /// password.
    pub login_key: SealedReaderKey,
    /// This laptop's data key sealed to `login_key.public`.
    pub data_key: SealedDataKey,
    pub must_change_password: bool,
    #[serde(default)]
    pub throttle: Throttle,
    #[serde(default)]
    pub failed_at: Vec<DateTime<Utc>>,
    /// The server's `password_changed_at` of `login_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_changed_at: Option<String>,
    /// The reader pair this laptop had for the user before their password
    /// changed elsewhere, sealed to `login_key.public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<SealedReaderToLogin>,
}

pub const MAX_PENDING_FAILURES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyring {
    pub version: u32,
    pub users: Vec<LocalUser>,
    /// Server users not logged in on this laptop yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingUser>,
}

/// `school.db` → `school.db.keys.json`.
pub fn path_for(store_path: &Path) -> PathBuf {
    let mut name = store_path.as_os_str().to_owned();
    name.push(".keys.json");
    PathBuf::from(name)
}

/// Log-in names compare case-insensitively and without surrounding spaces.
pub fn normalise_login(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Keyring {
    pub fn find(&self, login_name: &str) -> Option<&LocalUser> {
        let wanted = normalise_login(login_name);
        self.users.iter().find(|u| u.login_name == wanted)
    }

    pub fn find_mut(&mut self, login_name: &str) -> Option<&mut LocalUser> {
        let wanted = normalise_login(login_name);
        self.users.iter_mut().find(|u| u.login_name == wanted)
    }

    /// Whether any entry, logged in here before or pending, has this log-in
    /// name.
    pub fn name_taken(&self, login_name: &str) -> bool {
        let wanted = normalise_login(login_name);
        self.users.iter().any(|u| u.login_name == wanted)
            || self.pending.iter().any(|u| u.login_name == wanted)
    }

    /// `Ok(None)` when there is no keyring file.
    pub fn load(path: &Path) -> Result<Option<Keyring>, VaultError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(VaultError::KeyringUnreadable {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        let ring: Keyring =
            serde_json::from_str(&text).map_err(|e| VaultError::KeyringUnreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        if ring.version != KEYRING_VERSION {
            return Err(VaultError::KeyringUnreadable {
                path: path.display().to_string(),
                reason: format!(
                    "version {} (this program reads {KEYRING_VERSION})",
                    ring.version
                ),
            });
        }
        Ok(Some(ring))
    }

    /// Writes atomically: a temporary file beside it, fsync, rename, fsync of
    /// the folder. Readers see the old keyring or the new one, never half.
    pub fn save(&self, path: &Path) -> Result<(), VaultError> {
        let fail = |e: std::io::Error| VaultError::KeyringWrite {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let text = serde_json::to_vec_pretty(self).map_err(|e| VaultError::KeyringWrite {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        {
            let mut file = std::fs::File::create(&tmp).map_err(fail)?;
            file.write_all(&text).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, path).map_err(fail)?;
        #[cfg(unix)]
        if let Some(dir) = path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

//! The laptop's account state, shared by the commands: the vault and, while
//! someone is logged in, their session with the open (decrypted) store.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shouhu_api::account::Account;
use shouhu_api::Session;
use shouhu_store::{Store, StoreError};
use shouhu_vault::Vault;

use crate::AppError;

/// The [`Account`] behind a mutex: commands run on Tauri's thread pool,
/// SQLite wants one writer. Cloning shares the same state (long commands
/// such as a sync take a clone to a blocking thread).
#[derive(Clone)]
pub struct AppStore {
    account: Arc<Mutex<Account>>,
    /// The running sync's cancel token (the sync holds the account; the
    /// cancel button must not wait for it).
    sync_cancel: Arc<Mutex<Option<shouhu_sync::CancelToken>>>,
    /// The workbook picked for an Excel import that asked for its password:
    /// the retry with the password reuses it (the webview never sees paths).
    pending_import: Arc<Mutex<Option<PathBuf>>>,
}

impl AppStore {
    pub fn new(account: Account) -> Self {
        AppStore {
            account: Arc::new(Mutex::new(account)),
            sync_cancel: Arc::new(Mutex::new(None)),
            pending_import: Arc::new(Mutex::new(None)),
        }
    }

    /// Keeps (or with `None` forgets) the workbook an import will retry.
    pub fn set_pending_import(&self, path: Option<PathBuf>) {
        if let Ok(mut slot) = self.pending_import.lock() {
            *slot = path;
        }
    }

    /// The workbook kept for a retry, taken (a second retry needs a new pick).
    pub fn take_pending_import(&self) -> Option<PathBuf> {
        self.pending_import.lock().ok().and_then(|mut s| s.take())
    }

    /// A fresh cancel token for a sync about to start.
    pub fn begin_sync(&self) -> shouhu_sync::CancelToken {
        let token = shouhu_sync::CancelToken::new();
        if let Ok(mut slot) = self.sync_cancel.lock() {
            *slot = Some(token.clone());
        }
        token
    }

    pub fn end_sync(&self) {
        if let Ok(mut slot) = self.sync_cancel.lock() {
            *slot = None;
        }
    }

    /// Cancels the running sync, if any (it stops at its next step; what the
    /// server acknowledged stays acknowledged). Whether one was running.
    pub fn cancel_sync(&self) -> bool {
        match self.sync_cancel.lock() {
            Ok(slot) => slot.as_ref().map(|t| t.cancel()).is_some(),
            Err(_) => false,
        }
    }

    /// Wait until no command is using the store, then log out (at exit).
    pub fn close(&self) {
        if let Ok(mut a) = self.account.lock() {
            a.log_out();
        }
    }

    /// Run an account operation; errors become coded [`AppError`]s in the
    /// language of the last session.
    pub fn account<R>(
        &self,
        f: impl FnOnce(&mut Account) -> shouhu_api::Result<R>,
    ) -> Result<R, AppError> {
        let mut guard = self
            .account
            .lock()
            .map_err(|_| AppError::internal("account lock poisoned"))?;
        f(&mut guard).map_err(|e| AppError::from_api(&e, guard.lang()))
    }

    /// Run `f` with the open store and the logged-in session; with no session
    /// (or after the idle time) the error is `auth.locked`.
    pub fn with<R>(
        &self,
        f: impl FnOnce(&mut Store, &Session) -> shouhu_api::Result<R>,
    ) -> Result<R, AppError> {
        self.account(|a| a.with(chrono::Utc::now(), f))
    }
}

impl AppStore {
    /// [`AppStore::with`] for a command that changes records: refused to the
    /// roles that only read (`Account::with_write`).
    pub fn with_write<R>(
        &self,
        f: impl FnOnce(&mut Store, &Session) -> shouhu_api::Result<R>,
    ) -> Result<R, AppError> {
        self.account(|a| a.with_write(chrono::Utc::now(), f))
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::from_api(&shouhu_api::Error::Store(e), shouhu_api::Lang::ZhCn)
    }
}

/// Where the store and the device key live: `$SHOUHU_DB` (tests, portable
/// installs) or `<app data dir>/shouhu.db`; the device key in the app's config
/// folder, which copying the data folder does not carry.
pub fn paths(data_dir: &Path, config_dir: &Path) -> (PathBuf, PathBuf) {
    let db = std::env::var_os("SHOUHU_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("shouhu.db"));
    let identity = std::env::var_os("SHOUHU_IDENTITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| config_dir.join("identity"));
    (db, identity)
}

/// The vault of the store (nothing is opened: the first screen asks
/// `vault_state` and shows set-up or log-in).
pub fn vault(db: &Path, identity: &Path) -> Result<Vault, StoreError> {
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Open(format!("{}: {e}", dir.display())))?;
    }
    Ok(Vault::new(db).with_identity_dir(identity))
}

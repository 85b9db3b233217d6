//! The app's one local store, opened at start-up and shared by the commands.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shouhu_api::Session;
use shouhu_store::{Store, StoreError};

use crate::AppError;

/// The store behind a mutex: commands run on Tauri's thread pool, SQLite
/// wants one writer. Cloning shares the same store (long commands such as a
/// sync take a clone to a blocking thread).
#[derive(Clone)]
pub struct AppStore {
    store: Arc<Mutex<Store>>,
    /// `SHOUHU_NO_DEMO`: never offer demo data (tests start empty).
    pub no_demo: bool,
}

impl AppStore {
    pub fn new(store: Store) -> Self {
        AppStore {
            store: Arc::new(Mutex::new(store)),
            no_demo: std::env::var_os("SHOUHU_NO_DEMO").is_some(),
        }
    }

    /// Run `f` with the store and the session its settings describe; errors
    /// become coded [`AppError`]s in the session's language.
    pub fn with<R>(
        &self,
        f: impl FnOnce(&mut Store, &Session) -> shouhu_api::Result<R>,
    ) -> Result<R, AppError> {
        let mut guard = self
            .store
            .lock()
            .map_err(|_| AppError::internal("store lock poisoned"))?;
        let session = shouhu_api::session(&guard).unwrap_or_default();
        f(&mut guard, &session).map_err(|e| AppError::from_api(&e, session.lang))
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

/// Open the store. An empty store stays empty: the UI offers the demo county
/// (`demo_offer`) unless `SHOUHU_NO_DEMO` is set.
pub fn open(db: &Path, identity: &Path) -> Result<Store, StoreError> {
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Open(format!("{}: {e}", dir.display())))?;
    }
    let (store, _) = Store::open_with_identity(db, identity)?;
    Ok(store)
}

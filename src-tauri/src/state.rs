//! The app's one local store, opened at start-up and shared by the commands.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use shouhu_core::{EntityKind, Lang};
use shouhu_store::{Store, StoreError};

use crate::AppError;

/// The store behind a mutex: commands run on Tauri's thread pool, SQLite
/// wants one writer.
pub struct AppStore(Mutex<Store>);

impl AppStore {
    pub fn new(store: Store) -> Self {
        AppStore(Mutex::new(store))
    }

    /// Run `f` with the store; its errors become coded [`AppError`]s.
    pub fn with<R>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, StoreError>,
    ) -> Result<R, AppError> {
        let mut guard = self
            .0
            .lock()
            .map_err(|_| AppError::internal("store lock poisoned"))?;
        f(&mut guard).map_err(AppError::from)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        let b = e.body(Lang::En);
        AppError::new(b.code, b.message).with_details(b.details)
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

/// Open the store; on the very first start (no children at all) fill it with
/// the demo county so there is something to look at, unless
/// `SHOUHU_NO_DEMO` is set.
pub fn open(db: &Path, identity: &Path) -> Result<Store, StoreError> {
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Open(format!("{}: {e}", dir.display())))?;
    }
    let (mut store, _) = Store::open_with_identity(db, identity)?;
    let empty = store.count(EntityKind::Child)? == 0 && store.count(EntityKind::School)? == 0;
    if empty && std::env::var_os("SHOUHU_NO_DEMO").is_none() {
        shouhu_demo::generate(&mut store, &shouhu_demo::DemoSpec::default(), &mut |_| {})?;
    }
    Ok(store)
}

//! Backups: a consistent copy of the store file, encrypted like the store.

use std::path::Path;

use crate::error::{Result, StoreError};
use crate::Store;

impl Store {
    /// Writes a consistent copy of the whole store to `path` (which must not
    /// exist) with SQLite's `VACUUM INTO`. An encrypted store's copy is
    /// encrypted with the same key (SQLCipher writes it through the same
    /// codec), so the backup opens only with the store's keyring, which the
    /// caller copies beside it; a plain store's copy is plain.
    pub fn backup_to(&self, path: &Path) -> Result<()> {
        if path.exists() {
            return Err(StoreError::Open(format!(
                "{}: exists already",
                path.display()
            )));
        }
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Open(format!("{}: not UTF-8", path.display())))?;
        self.conn
            .execute("VACUUM INTO ?1", [target])
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        Ok(())
    }
}

//! Telling a copied database from the original.
//!
//! A database file copied to a second laptop (or restored there) carries the
//! first laptop's device id; if both kept it, both would number their changes
//! 1, 2, 3… under one id and the server could not tell them apart. So each
//! device also keeps a random *device key* outside the database, in a
//! per-user identity folder that copying the data folder does not carry; the
//! database stores only the key's hash. Opening a database whose device key
//! is missing or different means it was copied: the store takes a new device
//! id (keeping all data; its unacknowledged changes move to the new id) and
//! forgets the sync credential, which belonged to the other laptop. The copy
//! enrolls as a new device before it syncs.
//!
//! A database restored from a backup on the *same* laptop still finds its key;
//! the server notices instead (a sequence number arriving again with a
//! different change id) and the sync engine takes a new id then.

use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::sync::{get_meta, set_meta};

fn key_path(dir: &Path, device: uuid::Uuid) -> PathBuf {
    dir.join(format!("device-{device}.key"))
}

fn hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What opening with an identity folder found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The key matched: this is the laptop the database belongs to.
    Same,
    /// No key yet (a new store, or one made before keys existed): one was made.
    New,
    /// The key was missing or different: the database was copied here. A new
    /// device id was taken and the sync credential dropped.
    Copied { old_device: uuid::Uuid },
}

impl Store {
    /// Open the store and check that it belongs to this laptop (see the module
    /// documentation). `identity_dir` must be outside the data folder.
    pub fn open_with_identity(
        path: impl AsRef<Path>,
        identity_dir: &Path,
    ) -> Result<(Store, Identity)> {
        let mut store = Store::open(path)?;
        let found = store.check_identity(identity_dir)?;
        Ok((store, found))
    }

    /// [`Store::open_with_identity`] for a store encrypted under `key`.
    pub fn open_encrypted_with_identity(
        path: impl AsRef<Path>,
        key: &[u8; 32],
        identity_dir: &Path,
    ) -> Result<(Store, Identity)> {
        let mut store = Store::open_encrypted(path, key)?;
        let found = store.check_identity(identity_dir)?;
        Ok((store, found))
    }

    fn check_identity(&mut self, dir: &Path) -> Result<Identity> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Open(format!("{}: {e}", dir.display())))?;
        let stored = get_meta(&self.conn, "device_key_hash")?;
        let device = self.device_id();
        let on_disk = std::fs::read_to_string(key_path(dir, device)).ok();
        match (stored, on_disk) {
            (Some(h), Some(k)) if h == hash(k.trim()) => Ok(Identity::Same),
            (None, _) => {
                self.write_key(dir)?;
                Ok(Identity::New)
            }
            _ => {
                let old = device;
                self.rotate_device_id()?;
                self.conn
                    .execute("DELETE FROM meta WHERE key = 'setting.credential'", [])?;
                self.write_key(dir)?;
                Ok(Identity::Copied { old_device: old })
            }
        }
    }

    fn write_key(&mut self, dir: &Path) -> Result<()> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let path = key_path(dir, self.device_id());
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &key)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        set_meta(&self.conn, "device_key_hash", &hash(&key))
    }
}

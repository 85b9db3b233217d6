//! Log-in on a shared laptop, and the keys that open its encrypted store.
//!
//! The store file is encrypted (SQLCipher) with one random data key. Beside it
//! lies the **keyring** (`<store>.keys.json`): for each user who may use this
//! laptop, their public account facts (id, log-in name, role, scope), the data
//! key wrapped by their password ([`shouhu_auth::WrappedKey`]), and their
//! failed-attempt state ([`shouhu_auth::throttle::Throttle`]). Logging in needs
//! no network: unwrapping the key with the typed password *is* the password
//! check. The keyring holds no secret that opens anything without a password.
//!
//! # Layout
//!
//! - [`keyring`]: the file, read and written atomically (temporary file,
//!   fsync, rename), so a crash never leaves a half-written keyring.
//! - [`vault`]: [`Vault`] (what a laptop's data folder holds: nothing yet, a
//!   legacy plain store, or an encrypted store with its keyring) and
//!   [`Session`] (a logged-in user with the open store): first set-up, log-in,
//!   password change, a county admin's reset, adding a user to this laptop.
//! - [`error`]: [`VaultError`], each with a stable code.

pub mod error;
pub mod keyring;
pub mod vault;

pub use error::VaultError;
pub use keyring::{Keyring, LocalUser, PasswordChange, PendingUser};
pub use vault::{NewUser, ServerUser, ServerUsersApplied, Session, Vault, VaultState};

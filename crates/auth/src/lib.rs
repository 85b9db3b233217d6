//! Accounts and confidentiality for Shouhu, as plain functions with no I/O: the
//! store, the server and the desktop app call them, so every rule lives once.
//!
//! # Layout
//!
//! - [`role`]: who may do what where. [`Role`] × [`Action`] × scope is one table
//!   ([`role::allowed`]); the library and the server both ask it, the UI only
//!   hides what it would refuse. The table is the one in `shared/domain.md`, plus
//!   the county psychology supervisor who reads notes county-wide.
//! - [`password`]: Argon2id password hashes (PHC strings, so parameters can grow
//!   later without breaking old hashes) and the password rules, with codes.
//! - [`throttle`]: growing delays after failed log-ins. It is a pure state machine
//!   over instants, so the caller persists it next to the user and tests need no
//!   clock.
//! - [`keys`]: the store's one random data key, wrapped once per user by a key
//!   derived from that user's password (Argon2id → XChaCha20-Poly1305). Any
//!   authorised user of a shared laptop unwraps it; a stolen disk holds only
//!   wrapped copies.
//! - [`note`]: counselor-only psychological notes, encrypted on the writer's
//!   device with a fresh per-note key, that key sealed to each allowed reader's
//!   X25519 public key. The server stores and relays ciphertext only; a new
//!   reader is added by an existing reader re-wrapping the note key
//!   ([`note::EncryptedNote::add_reader`]).
//! - [`stream`]: password-sealed files of any size (exports), sealed chunk by
//!   chunk so an old laptop never holds a whole export twice.
//! - [`credential`]: a password changed on a laptop, carried to the county
//!   server: a proof that only the holder of the user's log-in secret can
//!   make, bound to the new credential and the one it replaces.
//! - [`error`]: [`AuthError`], one stable `code` per failure.
//!
//! Secrets (`DataKey`, `ReaderSecret`, note keys) are zeroised on drop and never
//! implement `Debug` with their bytes.

pub mod credential;
pub mod error;
pub mod keys;
pub mod note;
pub mod password;
pub mod role;
pub mod stream;
pub mod throttle;

mod b64;

pub use error::AuthError;
pub use keys::{DataKey, WrappedKey};
pub use note::{
    EncryptedNote, ReaderKeyPair, ReaderPublicKey, SealedDataKey, SealedReaderKey,
    SealedReaderToLogin,
};
pub use role::{Action, Role, Scope, Target};

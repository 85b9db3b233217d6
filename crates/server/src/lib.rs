//! # shouhu-server
//!
//! The county server. Devices push their change logs and pull what changed in
//! their scope; the server applies every device's changes in that device's
//! sequence order, numbers them with one server-wide sequence, merges them
//! field by field, and turns what truly conflicts into conflict records.
//!
//! # Layout
//! - `db`: the SQLite database ([`ServerDb`]): schools, enrollment codes,
//!   devices, the change log, merged record state; push, pull and the admin
//!   operations. No HTTP here, so the simulation tests drive it directly.
//! - `http`: [`app`] (the axum `Router`, for tests) and [`run`] (serve a
//!   listener until a shutdown future completes, for `main`), the JSON body
//!   extractor that gives malformed and oversized bodies the usual error
//!   shape, and authentication.
//! - `accounts`: server users (created by county admins, synced down to the
//!   devices of their scope with their Argon2id hashes), the role check of
//!   every pushed change (`shouhu_auth::role`), and the append-only county
//!   audit log devices upload to.
//! - `error`: [`ApiError`], the one error type, `IntoResponse` as
//!   `{code, message, details}`.
//! - `main.rs`: the `shouhu-server` binary (`serve` and admin subcommands).
//!
//! The merge rules themselves are in `shouhu_core::merge`.

mod accounts;
mod db;
mod error;
mod http;

pub use accounts::{
    audit_csv, normalise_login, township_id, AuditQuery, AuditRow, Credentials, NewUser,
    NewUserScope, UserInfo,
};
pub use db::{hash_secret, DeviceInfo, SchoolInfo, ServerDb, SCHEMA_VERSION};
pub use error::ApiError;
pub use http::{app, run, AppState, BODY_LIMIT};

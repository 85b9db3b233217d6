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
//! - `http`: [`app`] (the axum `Router`, for tests), [`run_tls`] (serve a
//!   listener over HTTPS until a shutdown future completes, for `main`) and
//!   [`run`] (the same over plain HTTP, for tests and `--plain-http`), the JSON body
//!   extractor that gives malformed and oversized bodies the usual error
//!   shape, and authentication.
//! - `accounts`: server users (created by county admins, synced down to the
//!   devices of their scope with their Argon2id hashes), the role check of
//!   every pushed change (`shouhu_auth::role`), the append-only county
//!   audit log devices upload to, and the audit view that lists it with
//!   every edit of the change log (field names, never values).
//! - `scope`: changing an enrolled device's scope (`device set-scope`), its
//!   history (migration 6), the push rule for a school that left the scope
//!   (changes made before it left are still taken) and `GET /v1/device`.
//! - `error`: [`ApiError`], the one error type, `IntoResponse` as
//!   `{code, message, details}`.
//! - `main.rs`: the `shouhu-server` binary (`serve` and admin subcommands).
//!   `serve` speaks HTTPS with the certificate of `shouhu_tls::load_or_create`
//!   (made in the data directory on first start) or the county's own
//!   (`--cert`/`--key`), and prints its SHA-256 fingerprint, which devices pin
//!   at enrollment (`fingerprint` prints it again; `enroll` prints it beside
//!   the code).
//!
//! The merge rules themselves are in `shouhu_core::merge`.

mod accounts;
mod db;
mod error;
mod http;
mod scope;

pub use accounts::{
    audit_csv, audit_csv_line, normalise_login, township_id, AuditQuery, AuditRow, Credentials,
    NewUser, NewUserScope, UserInfo, AUDIT_CSV_HEADER, SOURCE_AUDIT, SOURCE_CHANGES,
};
pub use db::{hash_secret, DeviceInfo, SchoolInfo, ServerDb, SCHEMA_VERSION};
pub use error::ApiError;
pub use http::{app, run, run_tls, AppState, BODY_LIMIT};
pub use scope::{NewDeviceScope, ScopeChange};

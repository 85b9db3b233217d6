//! # shouhu-store
//!
//! The local store of a Shouhu device: one SQLite file (WAL, `synchronous=FULL`)
//! holding every record and the change log that sync ships. One [`Store`] API
//! serves every read and write; nothing else touches the tables.
//!
//! # Layout
//! - `store`: opening, identity (device id, user, hybrid logical clock, the
//!   gapless per-device sequence) and the read API. Reads return
//!   [`shouhu_core::Stored`] records.
//! - `write`: [`Writer`], the only way to change a row. It lives inside one
//!   transaction opened by [`Store::write`]; each row it writes appends its
//!   change-log entry in that transaction (the invariant sync relies on).
//! - `changelog`: [`ChangeEntry`], the shape of one logged change.
//! - `schema`: forward-only numbered migrations (`migrations/NNNN_*.sql`).
//! - `search`: child search by name, pinyin, initials and ID prefix, over an
//!   in-memory copy of the search columns.
//! - `history`: one child's card with everything recorded about it, and the
//!   changes behind it (the timeline).
//! - `identity`: telling a copied database from the original (a device key
//!   kept outside the database).
//! - `stats`: counts for the home screen and the CLI.
//! - `sync`: the outbox and its acknowledgement, applying pulled pages, and
//!   taking a new device id.
//! - `purge`: removing a school that left this device's scope (every row of
//!   it, in one transaction, with no change-log entry: nothing syncs).
//! - `audit`: the append-only audit log (views, exports, log-ins) and its
//!   upload cursor; edits are audited by the change log.
//! - `error`: [`StoreError`], coded and bilingual.

mod audit;
mod backup;
mod changelog;
mod checkpoint;
mod error;
mod history;
mod identity;
mod purge;
pub mod schema;
mod search;
mod stats;
mod store;
mod sync;
mod write;

pub use audit::{AuditAction, AuditEntry, AuditFilter, AuditTarget};
pub use changelog::ChangeEntry;
pub use error::{entity_zh, Result, StoreError};
pub use history::ChildHistory;
pub use identity::Identity;
pub use purge::SchoolPurge;
pub use search::{mask_id, ChildSummary, SearchPage, SearchParams, SortBy};
pub use shouhu_core::Op;
pub use stats::Stats;
pub use store::{RawRecord, Store};
pub use sync::{PullApplied, PulledChange, SyncState};
pub use write::{Upsert, Writer};

//! # shouhu-exchange
//!
//! Moving records in and out of a store as files: JSON Lines now (the CLI's
//! `import`/`export`, backups between stores); Excel rosters and reports come
//! with their own issue and will live here too.
//!
//! # Layout
//! - `jsonl`: the JSON Lines format (documented there and in the README),
//!   streaming export in dependency order, and an import that keeps every good
//!   line and reports every bad one.
//! - `error`: [`ExchangeError`], for failures that stop a whole run.

mod error;
pub mod jsonl;

pub use error::ExchangeError;
pub use jsonl::{
    export_jsonl, import_jsonl, ExportOptions, ExportReport, ImportOptions, ImportReport,
    LineError, Progress,
};

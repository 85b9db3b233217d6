//! # shouhu-exchange
//!
//! Moving records in and out of a store as files: JSON Lines (the CLI's
//! `import`/`export`, backups between stores) and the children register as
//! an Excel workbook (`xlsx`: what schools and township offices send and
//! receive).
//!
//! # Layout
//! - `jsonl`: the JSON Lines format (documented there and in the README),
//!   streaming export in dependency order, and an import that keeps every good
//!   line and reports every bad one.
//! - `xlsx`: the children register (.xlsx) with Chinese headers: export of
//!   given cards, an empty template, and an all-or-nothing import that maps
//!   headers by name and reports every bad cell with its Excel row.
//! - `office_crypt`: Excel's own password protection of .xlsx files
//!   (ECMA-376 agile encryption), to write and to open them.
//! - `error`: [`ExchangeError`], for failures that stop a whole run.

mod error;
pub mod jsonl;
pub mod office_crypt;
pub mod xlsx;

pub use error::ExchangeError;
pub use jsonl::{
    export_jsonl, import_jsonl, ExportOptions, ExportReport, ImportOptions, ImportReport,
    LineError, Progress,
};
pub use xlsx::{
    children_matching, export_children_xlsx, import_children_xlsx, protect_xlsx, template_xlsx,
    RowError, XlsxError, XlsxExportReport, XlsxImportOptions, XlsxImportReport, XlsxProgress,
};

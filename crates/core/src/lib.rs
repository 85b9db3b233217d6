//! # shouhu-core
//!
//! The domain of Shouhu (守护): the records that staff who look after left-behind
//! children keep (一人一卡，一户一策), how each field is checked, and the small
//! pieces of arithmetic the store and sync build on. No I/O happens here, so
//! every rule can be tested in isolation and shared by the desktop app, the CLI
//! and the county server.
//!
//! # Layout
//! - [`model`]: one serde struct per record (child card, household, help plan,
//!   visit, note, aid...) and the [`model::Entity`] trait that gives each its
//!   kind, normalisation, validation and index columns. Record bookkeeping
//!   (id, authors, timestamps, version, tombstone) is [`model::Meta`], kept
//!   apart from the body so that a diff of bodies is what a person changed.
//! - [`validate`]: resident ID numbers (GB 11643), phones, dates, money: each
//!   normalises what people type before checking it.
//! - [`error`]: field errors with stable codes and zh-CN/en messages, and the
//!   `{code, message, details}` body every layer serialises.
//! - [`labels`]: field names for messages.
//! - [`diff`]: field-level (dotted path) diffs and patches of record bodies: the
//!   unit of the change log and of merging.
//! - [`hlc`]: the hybrid logical clock stamped on every change.

pub mod change;
pub mod diff;
pub mod error;
pub mod hlc;
pub mod labels;
pub mod merge;
pub mod model;
pub mod validate;

pub use change::Op;
pub use error::{ErrorBody, FieldError, FieldErrorKind, Lang, ValidationErrors};
pub use model::*;

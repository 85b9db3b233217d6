//! # shouhu-api
//!
//! The application API of the desktop app: one function per IPC command,
//! taking the [`Store`] (and the [`Session`]: who is working, in which
//! language) and serde types, returning [`Result`]. The Tauri shell only
//! adapts these functions to commands; this crate knows nothing of Tauri, so
//! every rule the UI relies on (validation, role checks, what a list shows)
//! is tested here without a window.
//!
//! # Layout
//! - `error`: [`Error`], coded, rendered as `{code, message, details}`.
//! - `account`: the vault (set-up, demo accounts, log-in, lock, auto-lock,
//!   passwords, laptop users) and the open session every other command runs in.
//! - `settings`: language, text size, "my school", auto-lock minutes.
//! - `children`: search, the child card (get, validate as you type, save),
//!   the card's visit rows and timeline.
//! - `visits`: home visits: drafts saved as the user types, finalise, amend,
//!   follow-ups.
//! - `home`: the dashboard.
//! - `households`: household and help plan (一户一策) with earlier versions.
//! - `notes`: psychological notes sealed for their readers before they are
//!   stored, opened for the logged-in reader; plain legacy notes sealed
//!   before a sync; a reader granting a new counselor access.
//! - `records`: psychological notes (counselors only), aid, absences,
//!   dropout and persuasion, family contacts, safety sessions, screening.
//! - `syncing`: sync settings, enrollment, conflicts to review.
//! - `demo`: the demo county offered to an empty store.
//! - `excel`: the children register as .xlsx (export of the scope and the
//!   list's filter, the empty template, all-or-nothing import), audited.

pub mod account;
mod children;
mod demo;
mod error;
mod excel;
mod home;
mod households;
pub mod notes;
mod records;
mod settings;
mod syncing;
mod visits;

pub use children::*;
pub use demo::*;
pub use error::{Error, Result};
pub use excel::*;
pub use home::*;
pub use households::*;
pub use notes::NoteKeys;
pub use records::*;
pub use settings::*;
pub use syncing::*;
pub use visits::*;

pub use shouhu_auth::{Action, Role, Scope};
pub use shouhu_core::Lang;
pub use shouhu_store::Store;

use serde::Serialize;
use shouhu_core::ValidationErrors;

/// Who is working and in which language: the logged-in user's role and
/// scope (from the vault's [`account::Account`]) and the language setting.
/// Every check that depends on the role is made here, so the UI only hides
/// what would be refused.
#[derive(Debug, Clone)]
pub struct Session {
    pub lang: Lang,
    pub role: Role,
    pub scope: Scope,
    /// Sealing and opening psychological notes (see [`notes`]): who is
    /// logged in, their reader keys and the readers this laptop knows.
    pub notes: Option<std::sync::Arc<NoteKeys>>,
}

impl Session {
    /// The school a school-scoped user (teacher, counselor, principal) is
    /// confined to; `None` for township and county users.
    pub fn own_school(&self) -> Option<uuid::Uuid> {
        match self.scope {
            Scope::School { school_id, .. } => Some(school_id),
            _ => None,
        }
    }

    /// A list's school filter as this user may have it: a school-scoped
    /// user sees their own school whatever was asked ("all schools"
    /// included); others get what they asked.
    pub fn school_filter(&self, asked: Option<uuid::Uuid>) -> Option<uuid::Uuid> {
        self.own_school().or(asked)
    }

    /// Refuses a record of another school to a school-scoped user.
    pub fn check_school(&self, school: Option<uuid::Uuid>) -> Result<()> {
        match (self.own_school(), school) {
            (Some(own), Some(s)) if s != own => Err(Error::Forbidden {
                role: self.role.as_str(),
                action: "see another school's records",
            }),
            _ => Ok(()),
        }
    }

    /// Whether the session's role has `action` at all (wherever its scope
    /// reaches), by the one table of `shouhu_auth::role`.
    pub fn may(&self, action: Action) -> bool {
        shouhu_auth::role::allowed(
            self.role,
            Scope::County,
            action,
            shouhu_auth::Target::County,
        )
    }
}

impl Default for Session {
    /// A teacher working in Chinese (tests).
    fn default() -> Self {
        Session {
            lang: Lang::ZhCn,
            role: Role::Teacher,
            scope: Scope::County,
            notes: None,
        }
    }
}

/// One field's problem, for the UI to show under that field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldProblem {
    /// Dotted path in the record (`father.phone`).
    pub field: String,
    pub code: String,
    pub message: String,
}

pub(crate) fn field_problems(v: &ValidationErrors, lang: Lang) -> Vec<FieldProblem> {
    v.errors
        .iter()
        .map(|e| FieldProblem {
            field: e.field.clone(),
            code: e.code().to_string(),
            message: e.message(lang),
        })
        .collect()
}

/// Show a user id: "me" when it is this device's user, else its first block.
pub(crate) fn who(store: &Store, user: uuid::Uuid) -> String {
    if user == store.user_id() {
        "me".to_string()
    } else {
        user.to_string().chars().take(8).collect()
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use shouhu_core::{ChildCard, Gender, School};

    #[allow(clippy::unwrap_used)]
    pub fn store() -> Store {
        let mut s = Store::open_in_memory().unwrap();
        s.set_today(Some(chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()));
        s
    }

    #[allow(clippy::unwrap_used)]
    pub fn school(s: &mut Store) -> uuid::Uuid {
        s.write(|w| {
            w.create(School {
                name: "青山小学".into(),
                township: "青山镇".into(),
                ..Default::default()
            })
        })
        .unwrap()
        .id()
    }

    /// Saves [`card`] through `save_child`, as the app does; returns its id.
    #[allow(clippy::unwrap_used)]
    pub fn child(s: &mut Store, school: uuid::Uuid) -> uuid::Uuid {
        crate::save_child(
            s,
            &crate::Session::default(),
            crate::SaveChild {
                id: None,
                card: card(school),
            },
        )
        .unwrap()
    }

    pub fn card(school: uuid::Uuid) -> ChildCard {
        ChildCard {
            name: "张三".into(),
            gender: Some(Gender::Male),
            birth_date: chrono::NaiveDate::from_ymd_opt(2015, 3, 7),
            school_id: Some(school),
            ..Default::default()
        }
    }
}

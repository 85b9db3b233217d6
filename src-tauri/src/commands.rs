//! IPC commands: thin adapters from the webview to the domain crates.
//!
//! Each command is a few lines: convert input, call the core, map errors to
//! [`AppError`]. Every command must also be listed in `build.rs` (`COMMANDS`)
//! and granted in `capabilities/default.json`.

use serde::Serialize;
use shouhu_core::EntityKind;
use tauri::{AppHandle, Runtime, State};

use crate::state::AppStore;
use crate::AppError;

/// What `app_info` returns to the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppInfo {
    pub name: String,
    pub version: String,
}

/// Name and version of the running app (from `tauri.conf.json` / Cargo).
#[tauri::command]
pub fn app_info<R: Runtime>(app: AppHandle<R>) -> Result<AppInfo, AppError> {
    let package = app.package_info();
    Ok(AppInfo {
        name: package.name.clone(),
        version: package.version.to_string(),
    })
}

/// What the home screen shows about the local store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreSummary {
    pub schools: i64,
    pub children: i64,
    pub households: i64,
    pub home_visits: i64,
    pub pending_changes: i64,
}

/// Counts of the local store (and changes waiting for sync).
#[tauri::command]
pub fn store_summary(store: State<'_, AppStore>) -> Result<StoreSummary, AppError> {
    store.with(|s| {
        Ok(StoreSummary {
            schools: s.count(EntityKind::School)?,
            children: s.count(EntityKind::Child)?,
            households: s.count(EntityKind::Household)?,
            home_visits: s.count(EntityKind::HomeVisit)?,
            pending_changes: s.pending_count()?,
        })
    })
}

//! IPC commands: thin adapters from the webview to the domain crates.
//!
//! Each command is a few lines: convert input, call the core, map errors to
//! [`AppError`]. Every command must also be listed in `build.rs` (`COMMANDS`)
//! and granted in `capabilities/default.json`.

use serde::Serialize;
use tauri::{AppHandle, Runtime};

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

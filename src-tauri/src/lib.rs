//! Tauri shell of 守护 Shouhu.
//!
//! The shell only wires the window, the plugins and the IPC commands; all
//! domain logic lives in the `crates/` workspace members.

mod commands;
mod error;
mod state;

pub use commands::{AppInfo, StoreSummary};
pub use error::AppError;
pub use state::AppStore;

use tauri::{Manager, Runtime};

/// Label of the app's only window (see `tauri.conf.json`).
pub const MAIN_WINDOW: &str = "main";

/// Registers the IPC commands. Shared by [`run`] and the tests (which use
/// Tauri's mock runtime).
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::app_info,
        commands::store_summary
    ])
}

/// The compile-time context: `tauri.conf.json`, capabilities, embedded UI.
pub fn context<R: Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

/// Starts the desktop app and blocks until it exits.
pub fn run() -> tauri::Result<()> {
    // The single-instance plugin must be the first one registered: a second
    // launch exits early and focuses the window of the running instance.
    let builder =
        tauri::Builder::default().plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            focus_main_window(app)
        }));
    with_commands(builder)
        .setup(|app| {
            let (db, identity) =
                state::paths(&app.path().app_data_dir()?, &app.path().app_config_dir()?);
            let store = state::open(&db, &identity)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)?;
            app.manage(AppStore::new(store));
            Ok(())
        })
        .run(context())
}

fn focus_main_window<R: Runtime>(app: &tauri::AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        // Best effort: a window manager may refuse any of these.
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

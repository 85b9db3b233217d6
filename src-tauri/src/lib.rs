//! Tauri shell of 守护 Shouhu.
//!
//! The shell only wires the window, the plugins and the IPC commands; all
//! domain logic lives in the `crates/` workspace members (the commands are
//! adapters over `shouhu-api`).

mod commands;
mod error;
mod state;

pub use commands::{AppInfo, StoreSummary};
pub use error::AppError;
pub use state::AppStore;

use tauri::{Manager, Runtime};

/// Label of the app's only window (see `tauri.conf.json`).
pub const MAIN_WINDOW: &str = "main";

/// The log file is cut when it reaches this size (one old file is kept).
pub const LOG_MAX_BYTES: u128 = 2 * 1024 * 1024;

/// Registers the IPC commands. Shared by [`run`] and the tests (which use
/// Tauri's mock runtime).
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::app_info,
        commands::store_summary,
        commands::get_settings,
        commands::set_setting,
        commands::list_schools,
        commands::search_children,
        commands::get_child,
        commands::validate_child,
        commands::save_child,
        commands::save_visit_draft,
        commands::finalise_visit,
        commands::amend_visit,
        commands::get_visit,
        commands::save_follow_up,
        commands::list_visits,
        commands::dashboard,
        commands::demo_offer,
        commands::generate_demo,
        commands::list_households,
        commands::get_household,
        commands::save_plan,
        commands::list_child_records,
        commands::list_school_records,
        commands::save_record,
        commands::validate_record,
        commands::screening_checklist,
        commands::sync_status,
        commands::enroll,
        commands::run_sync,
        commands::list_conflicts,
        commands::resolve_conflict,
    ])
}

/// The compile-time context: `tauri.conf.json`, capabilities, embedded UI.
pub fn context<R: Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

/// Starts the desktop app and blocks until it exits.
pub fn run() -> tauri::Result<()> {
    use tauri_plugin_log::{RotationStrategy, Target, TargetKind};
    // The single-instance plugin must be the first one registered: a second
    // launch exits early and focuses the window of the running instance.
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            focus_main_window(app)
        }))
        .plugin(
            tauri_plugin_log::Builder::new()
                .clear_targets()
                .targets([
                    Target::new(TargetKind::LogDir {
                        file_name: Some("shouhu".into()),
                    }),
                    Target::new(TargetKind::Stderr),
                ])
                .max_file_size(LOG_MAX_BYTES)
                .rotation_strategy(RotationStrategy::KeepOne)
                .level(log::LevelFilter::Info)
                .build(),
        )
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_dialog::init());
    with_commands(builder)
        .setup(|app| {
            let (db, identity) =
                state::paths(&app.path().app_data_dir()?, &app.path().app_config_dir()?);
            let store = state::open(&db, &identity).map_err(|e| {
                log::error!("cannot open the store {}: {e}", db.display());
                Box::new(e) as Box<dyn std::error::Error>
            })?;
            log::info!("store opened: {}", db.display());
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

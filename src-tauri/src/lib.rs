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

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tauri::{Emitter, Manager, Runtime, WindowEvent};

/// Label of the app's only window (see `tauri.conf.json`).
pub const MAIN_WINDOW: &str = "main";

/// Event asking the UI to save what is being typed (a visit draft) before
/// the window closes; the UI answers with the `close_window` command.
pub const FLUSH_EVENT: &str = "flush-before-close";

/// How long a closing window waits for the UI to save.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

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
        commands::delete_child,
        commands::save_household,
        commands::save_visit_draft,
        commands::finalise_visit,
        commands::amend_visit,
        commands::get_visit,
        commands::save_follow_up,
        commands::list_visits,
        commands::dashboard,
        commands::vault_state,
        commands::set_up,
        commands::use_demo,
        commands::log_in,
        commands::log_out,
        commands::lock,
        commands::change_password,
        commands::add_user,
        commands::reset_password,
        commands::list_users,
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
        commands::cancel_sync,
        commands::list_conflicts,
        commands::resolve_conflict,
        commands::close_window,
        // uiconf: the printable card, household members
        commands::print_child,
        commands::set_child_household,
        // Excel in and out
        commands::export_children_xlsx,
        commands::import_children_xlsx,
    ])
}

/// Closing the main window first lets the UI save what is being typed
/// (`FLUSH_EVENT`); the UI then calls `close_window`, or the window closes
/// anyway after [`FLUSH_TIMEOUT`].
fn on_window_event<R: Runtime>(window: &tauri::Window<R>, event: &WindowEvent) {
    static CLOSING: AtomicBool = AtomicBool::new(false);
    if let WindowEvent::CloseRequested { api, .. } = event {
        if window.label() != MAIN_WINDOW || CLOSING.swap(true, Ordering::SeqCst) {
            return;
        }
        api.prevent_close();
        if let Err(e) = window.emit(FLUSH_EVENT, ()) {
            log::warn!("cannot ask the UI to save before closing: {e}");
        }
        let window = window.clone();
        std::thread::spawn(move || {
            std::thread::sleep(FLUSH_TIMEOUT);
            // Already gone if the UI answered in time.
            let _ = window.destroy();
        });
    }
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
        .on_window_event(on_window_event)
        .setup(|app| {
            let (db, identity) =
                state::paths(&app.path().app_data_dir()?, &app.path().app_config_dir()?);
            // Nothing is opened here: the UI asks `vault_state` and shows
            // set-up or log-in; log-in opens the encrypted store.
            let vault = state::vault(&db, &identity).map_err(|e| {
                log::error!("cannot prepare the data folder {}: {e}", db.display());
                Box::new(e) as Box<dyn std::error::Error>
            })?;
            log::info!("store: {}", db.display());
            app.manage(AppStore::new(shouhu_api::account::Account::new(vault)));
            Ok(())
        })
        .build(context())?
        .run(|app, event| {
            if let tauri::RunEvent::Exit = event {
                // Let a write already running (a draft saved as the window
                // closed) commit, then log out, before the process ends.
                if let Some(store) = app.try_state::<AppStore>() {
                    store.close();
                }
            }
        });
    Ok(())
}

fn focus_main_window<R: Runtime>(app: &tauri::AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        // Best effort: a window manager may refuse any of these.
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

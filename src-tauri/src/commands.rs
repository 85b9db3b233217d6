//! IPC commands: thin adapters from the webview to `shouhu-api`.
//!
//! Each command is a few lines: take the store (and session), call the API
//! function, map errors to [`AppError`]. Every command must also be listed in
//! `build.rs` (`COMMANDS`) and granted in `capabilities/default.json`.
//!
//! Commands that only read the store, and the account commands that derive
//! a key from a password (Argon2id), are `#[tauri::command(async)]`: they run
//! on the async runtime's threads, not on the main thread, so a long one (the
//! county-wide Home dashboard, a first search that builds the index, a
//! log-in) never freezes the window: it keeps drawing, typing and scrolling
//! while the store answers. The store itself is one `Mutex`, so they still
//! run one at a time. Commands that write records (saves, deletes, conflict
//! resolutions, settings, lock and log-out) stay on the main thread: they are
//! short, and there they are ordered with the window's close, so a save the
//! UI makes while the window closes is committed before the app exits (the
//! e2e test `close_window` failed with them async: the process ended with
//! the save still queued on the runtime). `cancel_sync` stays on the main
//! thread too: it only flips a token and must answer while a sync runs.

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use shouhu_api as api;
use shouhu_api::account;
use shouhu_core::{ChildCard, EntityKind, HomeVisit};
use shouhu_store::{SearchPage, SearchParams};
use tauri::ipc::Channel;
use tauri::{AppHandle, Runtime, State};
use uuid::Uuid;

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
#[tauri::command(async)]
pub fn store_summary(store: State<'_, AppStore>) -> Result<StoreSummary, AppError> {
    store.with(|s, _| {
        Ok(StoreSummary {
            schools: s.count(EntityKind::School)?,
            children: s.count(EntityKind::Child)?,
            households: s.count(EntityKind::Household)?,
            home_visits: s.count(EntityKind::HomeVisit)?,
            pending_changes: s.pending_count()?,
        })
    })
}

#[tauri::command(async)]
pub fn get_settings(store: State<'_, AppStore>) -> Result<api::Settings, AppError> {
    store.with(|s, _| api::get_settings(s))
}

#[tauri::command]
pub fn set_setting(
    store: State<'_, AppStore>,
    change: api::SettingChange,
) -> Result<api::Settings, AppError> {
    store.with(|s, _| api::set_setting(s, &change))
}

#[tauri::command(async)]
pub fn list_schools(store: State<'_, AppStore>) -> Result<Vec<api::SchoolItem>, AppError> {
    store.with(|s, _| api::list_schools(s))
}

#[tauri::command(async)]
pub fn search_children(
    store: State<'_, AppStore>,
    params: SearchParams,
) -> Result<SearchPage, AppError> {
    store.with(|s, session| {
        let mut params = params;
        params.school_id = session.school_filter(params.school_id);
        api::search_children(s, &params)
    })
}

#[tauri::command(async)]
pub fn get_child(store: State<'_, AppStore>, id: Uuid) -> Result<api::ChildView, AppError> {
    store.with(|s, session| api::get_child(s, session, id))
}

#[tauri::command(async)]
pub fn validate_child(
    store: State<'_, AppStore>,
    card: ChildCard,
) -> Result<Vec<api::FieldProblem>, AppError> {
    store.with(|s, session| Ok(api::validate_child(s, session, &card)))
}

#[tauri::command]
pub fn save_child(store: State<'_, AppStore>, req: api::SaveChild) -> Result<Uuid, AppError> {
    store.with_write(|s, session| api::save_child(s, session, req))
}

#[tauri::command]
pub fn delete_child(store: State<'_, AppStore>, id: Uuid, reason: String) -> Result<(), AppError> {
    store.with_write(|s, _| api::delete_child(s, id, &reason))
}

#[tauri::command]
pub fn save_household(
    store: State<'_, AppStore>,
    req: api::SaveHousehold,
) -> Result<Uuid, AppError> {
    store.with_write(|s, session| api::save_household(s, session, req))
}

#[tauri::command]
pub fn save_visit_draft(
    store: State<'_, AppStore>,
    req: api::SaveVisit,
) -> Result<api::VisitSaved, AppError> {
    store.with_write(|s, _| api::save_visit_draft(s, req))
}

#[tauri::command]
pub fn finalise_visit(
    store: State<'_, AppStore>,
    id: Uuid,
    visit: HomeVisit,
) -> Result<api::VisitSaved, AppError> {
    store.with_write(|s, _| api::finalise_visit(s, id, visit))
}

#[tauri::command]
pub fn amend_visit(store: State<'_, AppStore>, req: api::AmendVisit) -> Result<Uuid, AppError> {
    store.with_write(|s, _| api::amend_visit(s, req))
}

#[tauri::command(async)]
pub fn get_visit(store: State<'_, AppStore>, id: Uuid) -> Result<api::VisitView, AppError> {
    store.with(|s, _| api::get_visit(s, id))
}

#[tauri::command]
pub fn save_follow_up(
    store: State<'_, AppStore>,
    req: api::SaveFollowUp,
) -> Result<Uuid, AppError> {
    store.with_write(|s, _| api::save_follow_up(s, req))
}

#[tauri::command(async)]
pub fn list_visits(
    store: State<'_, AppStore>,
    filter: api::VisitFilter,
) -> Result<Vec<api::VisitListRow>, AppError> {
    store.with(|s, session| {
        let mut filter = filter;
        filter.school_id = session.school_filter(filter.school_id);
        api::list_visits(s, &filter)
    })
}

#[tauri::command(async)]
pub fn dashboard(
    store: State<'_, AppStore>,
    school_id: Option<Uuid>,
) -> Result<api::Dashboard, AppError> {
    store.with(|s, session| api::dashboard(s, session.school_filter(school_id)))
}

/// What the first screen shows: set-up (`empty`, `plain`) or log-in (`ready`).
#[tauri::command(async)]
pub fn vault_state(store: State<'_, AppStore>) -> Result<account::VaultView, AppError> {
    store.account(|a| a.state())
}

/// The first account of this laptop (encrypts a plain store in place).
#[tauri::command(async)]
pub fn set_up(
    store: State<'_, AppStore>,
    req: account::SetUp,
) -> Result<account::CurrentUser, AppError> {
    store.account(|a| a.set_up(req, Utc::now()))
}

/// An encrypted demo store with one demo account per role, reporting the
/// demo county's progress on the channel (on a blocking thread).
#[tauri::command]
pub async fn use_demo(
    store: State<'_, AppStore>,
    on_progress: Channel<api::DemoProgress>,
) -> Result<api::DemoDone, AppError> {
    let store = store.inner().clone();
    let spec = shouhu_demo::DemoSpec {
        batch_size: 200,
        ..Default::default()
    };
    tauri::async_runtime::spawn_blocking(move || {
        // A closed window just stops hearing about progress.
        store.account(|a| a.use_demo(&spec, &mut |p| drop(on_progress.send(p))))
    })
    .await
    .map_err(|e| AppError::internal(e.to_string()))?
}

#[tauri::command(async)]
pub fn log_in(
    store: State<'_, AppStore>,
    req: account::LogIn,
) -> Result<account::CurrentUser, AppError> {
    store.account(|a| a.log_in(req, Utc::now()))
}

#[tauri::command]
pub fn log_out(store: State<'_, AppStore>) -> Result<(), AppError> {
    store.account(|a| {
        a.log_out();
        Ok(())
    })
}

/// Lock now: the store is closed and the key forgotten.
#[tauri::command]
pub fn lock(store: State<'_, AppStore>) -> Result<(), AppError> {
    store.account(|a| {
        a.lock();
        Ok(())
    })
}

#[tauri::command(async)]
pub fn change_password(
    store: State<'_, AppStore>,
    req: account::ChangePassword,
) -> Result<(), AppError> {
    store.account(|a| a.change_password(req, Utc::now()))
}

#[tauri::command(async)]
pub fn add_user(store: State<'_, AppStore>, req: account::AddUser) -> Result<(), AppError> {
    store.account(|a| a.add_user(req, Utc::now()))
}

#[tauri::command(async)]
pub fn reset_password(
    store: State<'_, AppStore>,
    req: account::ResetPassword,
) -> Result<(), AppError> {
    store.account(|a| a.reset_password(req, Utc::now()))
}

#[tauri::command(async)]
pub fn list_users(store: State<'_, AppStore>) -> Result<Vec<account::UserItem>, AppError> {
    store.account(|a| a.list_users(Utc::now()))
}

#[tauri::command(async)]
pub fn list_households(
    store: State<'_, AppStore>,
    filter: api::HouseholdFilter,
) -> Result<Vec<api::HouseholdRow>, AppError> {
    store.with(|s, session| {
        let mut filter = filter;
        filter.school_id = session.school_filter(filter.school_id);
        api::list_households(s, &filter)
    })
}

#[tauri::command(async)]
pub fn get_household(store: State<'_, AppStore>, id: Uuid) -> Result<api::HouseholdView, AppError> {
    store.with(|s, session| api::get_household(s, session, id))
}

#[tauri::command]
pub fn save_plan(store: State<'_, AppStore>, req: api::SavePlan) -> Result<Uuid, AppError> {
    store.with_write(|s, session| api::save_plan(s, session, req))
}

#[tauri::command(async)]
pub fn list_child_records(
    store: State<'_, AppStore>,
    child_id: Uuid,
    kind: String,
) -> Result<Vec<api::RecordRow>, AppError> {
    store.with(|s, session| api::list_child_records(s, session, child_id, &kind))
}

#[tauri::command(async)]
pub fn list_school_records(
    store: State<'_, AppStore>,
    school_id: Uuid,
    kind: String,
) -> Result<Vec<api::RecordRow>, AppError> {
    store.with(|s, session| api::list_school_records(s, session, school_id, &kind))
}

#[tauri::command]
pub fn save_record(store: State<'_, AppStore>, req: api::SaveRecord) -> Result<Uuid, AppError> {
    store.with_write(|s, session| api::save_record(s, session, req))
}

#[tauri::command(async)]
pub fn validate_record(
    store: State<'_, AppStore>,
    kind: String,
    body: Value,
) -> Result<Vec<api::FieldProblem>, AppError> {
    store.with(|s, session| api::validate_record(s, session, &kind, body))
}

#[tauri::command(async)]
pub fn screening_checklist(
    store: State<'_, AppStore>,
    round_id: Uuid,
) -> Result<Vec<api::ChecklistLine>, AppError> {
    store.with(|s, _| api::screening_checklist(s, round_id))
}

#[tauri::command(async)]
pub fn sync_status(store: State<'_, AppStore>) -> Result<shouhu_sync::SyncStatus, AppError> {
    store.with(|s, _| api::sync_status(s))
}

/// Enroll with the server: address, one-time code and the certificate
/// fingerprint to pin (network: on a blocking thread).
#[tauri::command]
pub async fn enroll(
    store: State<'_, AppStore>,
    server_url: String,
    code: String,
    fingerprint: String,
) -> Result<shouhu_sync::SyncStatus, AppError> {
    let store = store.inner().clone();
    let name = std::env::var("HOSTNAME")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .unwrap_or_else(|_| "shouhu-desktop".into());
    tauri::async_runtime::spawn_blocking(move || {
        store.with(|s, _| {
            tauri::async_runtime::block_on(api::enroll(s, &server_url, &code, &fingerprint, &name))
        })
    })
    .await
    .map_err(|e| AppError::internal(e.to_string()))?
}

/// Push and pull, reporting progress (entries and bytes) on the channel.
#[tauri::command]
pub async fn run_sync(
    store: State<'_, AppStore>,
    on_progress: Channel<shouhu_sync::SyncProgress>,
) -> Result<shouhu_sync::SyncReport, AppError> {
    let store = store.inner().clone();
    let cancel = store.begin_sync();
    // Through the account: plain notes are sealed before the push, and the
    // server's users and readers reach the keyring after it.
    let running = store.clone();
    let result = tauri::async_runtime::spawn_blocking(move || {
        running.account(|a| {
            let mut progress = |p: shouhu_sync::SyncProgress| {
                let _ = on_progress.send(p);
            };
            tauri::async_runtime::block_on(a.sync(Utc::now(), &mut progress, &cancel))
        })
    })
    .await
    .map_err(|e| AppError::internal(e.to_string()));
    store.end_sync();
    result?
}

/// The 取消同步 button: the running sync stops at its next step.
#[tauri::command]
pub fn cancel_sync(store: State<'_, AppStore>) -> bool {
    store.cancel_sync()
}

#[tauri::command(async)]
pub fn list_conflicts(store: State<'_, AppStore>) -> Result<Vec<api::ConflictView>, AppError> {
    store.with(|s, _| api::list_conflicts(s))
}

#[tauri::command]
pub fn resolve_conflict(
    store: State<'_, AppStore>,
    req: api::ResolveConflict,
) -> Result<(), AppError> {
    store.with_write(|s, _| api::resolve_conflict(s, req))
}

/// Close the window once the UI has saved what was being typed (the answer
/// to the `flush-before-close` event).
#[tauri::command]
pub fn close_window<R: Runtime>(window: tauri::WebviewWindow<R>) -> Result<(), AppError> {
    window.destroy().map_err(AppError::from)
}

// uiconf: the printable card, household members

/// The 打印 button of a child card, after the user confirmed and the print
/// view is on the page: the print is audited, then the webview's print
/// dialog opens (wry: a GTK print dialog through WebKitGTK's print
/// operation on Linux, WebView2's on Windows). JavaScript's `window.print()`
/// is not used: in WebKitGTK under this shell it returns without a dialog.
#[tauri::command]
pub fn print_child<R: Runtime>(
    window: tauri::WebviewWindow<R>,
    store: State<'_, AppStore>,
    child_id: Uuid,
) -> Result<(), AppError> {
    store.with(|s, session| api::audit_print(s, session, child_id))?;
    window.print().map_err(AppError::from)
}

/// Add a child to a household (`household_id`) or take it out (`null`).
#[tauri::command]
pub fn set_child_household(
    store: State<'_, AppStore>,
    child_id: Uuid,
    household_id: Option<Uuid>,
) -> Result<(), AppError> {
    store.with_write(|s, session| api::set_child_household(s, session, child_id, household_id))
}

// --- Excel in and out (the children register) ------------------------------
//
// The file dialog opens here, in Rust: the webview names no path and has no
// fs or dialog permission. The API checks the role first, so a refused role
// sees no dialog; a cancelled dialog answers `null`.

/// 导出 Excel (or the empty template): the save dialog, then the export of
/// the user's scope and the list's filter, progress on `on_progress`.
#[tauri::command]
pub async fn export_children_xlsx<R: Runtime>(
    app: AppHandle<R>,
    store: State<'_, AppStore>,
    req: api::ExcelExport,
    on_progress: Channel<api::XlsxProgress>,
) -> Result<Option<api::ExcelExported>, AppError> {
    use tauri_plugin_dialog::DialogExt;
    let store = store.inner().clone();
    let name = store.with(|s, session| {
        api::check_excel_export(session, &req)?;
        Ok(api::excel_file_name(session, s, req.template))
    })?;
    let picked = tauri::async_runtime::spawn_blocking(move || {
        app.dialog()
            .file()
            .add_filter("Excel", &["xlsx"])
            .set_file_name(name)
            .blocking_save_file()
    })
    .await
    .map_err(|e| AppError::internal(e.to_string()))?;
    let Some(picked) = picked else {
        return Ok(None);
    };
    let mut path = picked
        .into_path()
        .map_err(|e| AppError::internal(e.to_string()))?;
    if path
        .extension()
        .is_none_or(|e| !e.eq_ignore_ascii_case("xlsx"))
    {
        path.as_mut_os_string().push(".xlsx");
    }
    tauri::async_runtime::spawn_blocking(move || {
        store.with(|s, session| {
            let mut progress = |p: api::XlsxProgress| {
                let _ = on_progress.send(p);
            };
            api::export_children_xlsx(s, session, &req, &path, &mut progress)
        })
    })
    .await
    .map_err(|e| AppError::internal(e.to_string()))?
    .map(Some)
}

/// 导入 Excel: the open dialog, then the all-or-nothing import (a refusal
/// is `import.rows_invalid` with every bad cell in `details.errors`). A
/// password-protected workbook answers `import.password_required` (or
/// `import.wrong_password`) and is kept: the UI asks for the password and
/// calls again with `retry`, which reuses that file without a dialog.
#[tauri::command]
pub async fn import_children_xlsx<R: Runtime>(
    app: AppHandle<R>,
    store: State<'_, AppStore>,
    password: Option<String>,
    retry: bool,
    on_progress: Channel<api::XlsxProgress>,
) -> Result<Option<api::XlsxImportReport>, AppError> {
    use tauri_plugin_dialog::DialogExt;
    let store = store.inner().clone();
    store.with_write(|_, session| api::check_excel_import(session))?;
    let kept = store.take_pending_import();
    let path = match (retry, kept) {
        (true, Some(path)) => path,
        (true, None) => return Ok(None),
        (false, _) => {
            let picked = tauri::async_runtime::spawn_blocking(move || {
                app.dialog()
                    .file()
                    .add_filter("Excel", &["xlsx"])
                    .blocking_pick_file()
            })
            .await
            .map_err(|e| AppError::internal(e.to_string()))?;
            let Some(picked) = picked else {
                return Ok(None);
            };
            picked
                .into_path()
                .map_err(|e| AppError::internal(e.to_string()))?
        }
    };
    let running = store.clone();
    let file = path.clone();
    let result = tauri::async_runtime::spawn_blocking(move || {
        running.with_write(|s, session| {
            let mut progress = |p: api::XlsxProgress| {
                let _ = on_progress.send(p);
            };
            api::import_children_xlsx(s, session, &file, password.as_deref(), &mut progress)
        })
    })
    .await
    .map_err(|e| AppError::internal(e.to_string()))?;
    if let Err(e) = &result {
        if e.code == "import.password_required" || e.code == "import.wrong_password" {
            store.set_pending_import(Some(path));
        }
    }
    result.map(Some)
}

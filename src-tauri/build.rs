//! Build script of the Tauri shell.
//!
//! * Declares the app's IPC commands, so that `tauri-build` generates the
//!   `allow-<command>` / `deny-<command>` permissions and app commands become
//!   subject to the capabilities in `capabilities/` (nothing is allowed that a
//!   capability does not grant).
//! * Makes sure `frontendDist` (`../ui/dist`) exists: `tauri::generate_context!`
//!   refuses to compile without it, and a fresh clone has not built the UI yet.

use std::path::PathBuf;
use std::process::ExitCode;

/// Every `#[tauri::command]` registered in `src/lib.rs`. Keep in sync with
/// `generate_handler!` and `capabilities/default.json`.
const COMMANDS: &[&str] = &[
    "app_info",
    "store_summary",
    "get_settings",
    "set_setting",
    "list_schools",
    "search_children",
    "get_child",
    "validate_child",
    "save_child",
    "delete_child",
    "save_household",
    "save_visit_draft",
    "finalise_visit",
    "amend_visit",
    "get_visit",
    "save_follow_up",
    "list_visits",
    "dashboard",
    "vault_state",
    "set_up",
    "use_demo",
    "log_in",
    "log_out",
    "lock",
    "change_password",
    "add_user",
    "reset_password",
    "list_users",
    "list_households",
    "get_household",
    "save_plan",
    "list_child_records",
    "list_school_records",
    "save_record",
    "validate_record",
    "screening_checklist",
    "sync_status",
    "enroll",
    "run_sync",
    "cancel_sync",
    "list_conflicts",
    "resolve_conflict",
    "close_window",
    // uiconf: the printable card, household members
    "print_child",
    "set_child_household",
    // Excel in and out
    "export_children_xlsx",
    "import_children_xlsx",
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shouhu-app build script failed: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or("CARGO_MANIFEST_DIR is not set")?;
    let dist = manifest_dir.join("../ui/dist");
    if !dist.exists() {
        std::fs::create_dir_all(&dist)
            .map_err(|e| format!("cannot create {}: {e}", dist.display()))?;
        println!(
            "cargo:warning=ui/dist was missing and has been created empty; \
             run `npm run build` in ui/ to embed the real UI"
        );
    }
    // Assets are embedded by `generate_context!`; rebuild when the UI is rebuilt
    // (also covers the first build after an empty `dist/`).
    println!("cargo:rerun-if-changed={}", dist.display());

    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS))
        .windows_attributes(
            tauri_build::WindowsAttributes::new().app_manifest(WINDOWS_APP_MANIFEST),
        );
    tauri_build::try_build(attributes).map_err(|e| format!("{e:#}"))
}

/// Windows application manifest: Tauri's default (Common Controls v6) plus the
/// declaration that the app targets Windows 10 and later.
const WINDOWS_APP_MANIFEST: &str = r#"<assembly xmlns="urn:schemas-microsoft-com:asm.v1" manifestVersion="1.0">
  <dependency>
    <dependentAssembly>
      <assemblyIdentity
        type="win32"
        name="Microsoft.Windows.Common-Controls"
        version="6.0.0.0"
        processorArchitecture="*"
        publicKeyToken="6595b64144ccf1df"
        language="*"
      />
    </dependentAssembly>
  </dependency>
  <compatibility xmlns="urn:schemas-microsoft-com:compatibility.v1">
    <application>
      <!-- Windows 10 and 11 -->
      <supportedOS Id="{8e0f7a12-bfb3-4fe8-b9a5-48fd50a15a9a}"/>
    </application>
  </compatibility>
</assembly>
"#;

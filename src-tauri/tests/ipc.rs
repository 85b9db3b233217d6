//! IPC tests through Tauri's mock runtime (no display needed), using the real
//! compile-time context: the same `tauri.conf.json` and capabilities (ACL) as
//! the shipped app.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use shouhu_app_lib::{context, with_commands, AppInfo, AppStore, MAIN_WINDOW};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::Manager;
use tauri::WebviewWindowBuilder;

fn invoke(window_label: &str, cmd: &str) -> Result<Value, Value> {
    let app = with_commands(mock_builder())
        .build(context())
        .expect("app builds");
    let store = shouhu_store::Store::open_in_memory().expect("store opens");
    app.manage(AppStore::new(store));
    let window = WebviewWindowBuilder::new(&app, window_label, Default::default())
        .build()
        .expect("window builds");
    let url = if cfg!(windows) {
        "http://tauri.localhost"
    } else {
        "tauri://localhost"
    };
    get_ipc_response(
        &window,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: url.parse().expect("valid url"),
            body: InvokeBody::default(),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|body| body.deserialize::<Value>().expect("json body"))
}

#[test]
fn app_info_returns_name_and_version() {
    let value = invoke(MAIN_WINDOW, "app_info").expect("app_info is allowed");
    let info = AppInfo {
        name: value["name"].as_str().unwrap_or_default().to_owned(),
        version: value["version"].as_str().unwrap_or_default().to_owned(),
    };
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert!(!info.name.is_empty());
    assert_eq!(value.as_object().map(|o| o.len()), Some(2), "{value}");
}

#[test]
fn other_windows_get_no_command() {
    // Capabilities are granted to the `main` window only.
    let denied = invoke("untrusted", "app_info").expect_err("must be denied");
    assert!(denied.to_string().contains("not allowed"), "{denied}");
}

#[test]
fn unknown_commands_are_rejected() {
    assert!(invoke(MAIN_WINDOW, "read_file").is_err());
}

/// The webview gets the app's own commands and core window defaults only:
/// no fs, shell, http or process permission, ever (PIPL: children's data).
#[test]
fn capability_grants_only_the_allowlist() {
    let text = include_str!("../capabilities/default.json");
    let capability: Value = serde_json::from_str(text).unwrap();
    let permissions: Vec<&str> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().expect("plain permission identifiers"))
        .collect();
    assert_eq!(
        permissions,
        [
            "core:app:default",
            "core:event:default",
            "core:window:default",
            "core:webview:default",
            "allow-app-info",
            "allow-store-summary",
        ]
    );
    assert_eq!(capability["windows"], serde_json::json!(["main"]));
    for forbidden in ["fs:", "shell:", "http:", "process:", "opener:"] {
        assert!(!text.contains(forbidden), "{forbidden} must not be granted");
    }
}

#[test]
fn store_summary_counts_the_local_store() {
    let value = invoke(MAIN_WINDOW, "store_summary").expect("store_summary is allowed");
    assert_eq!(value["children"], 0, "{value}");
    assert_eq!(value["pending_changes"], 0, "{value}");
    assert!(value["home_visits"].is_number());
}

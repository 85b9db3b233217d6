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
    invoke_with(window_label, cmd, Value::Object(Default::default()))
}

fn invoke_with(window_label: &str, cmd: &str, args: Value) -> Result<Value, Value> {
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
            body: InvokeBody::Json(args),
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
    // Every command declared in build.rs, and nothing else but the core
    // window defaults.
    let build = include_str!("../build.rs");
    let list = &build[build.find("const COMMANDS").unwrap()..];
    let list = &list[..list.find("];").unwrap()];
    let commands: Vec<String> = list
        .split('"')
        .skip(1)
        .step_by(2)
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .collect();
    assert!(commands.len() > 20, "{commands:?}");
    let mut expected = vec![
        "core:app:default".to_string(),
        "core:event:default".into(),
        "core:window:default".into(),
        "core:webview:default".into(),
    ];
    expected.extend(commands);
    assert_eq!(permissions, expected);
    assert_eq!(capability["windows"], serde_json::json!(["main"]));
    for forbidden in ["fs:", "shell:", "http:", "process:", "opener:", "dialog:"] {
        assert!(!text.contains(forbidden), "{forbidden} must not be granted");
    }
}

#[test]
fn validate_child_reports_fields_in_chinese() {
    let value = invoke_with(
        MAIN_WINDOW,
        "validate_child",
        serde_json::json!({"card": {"name": "", "id_number": "123"}}),
    )
    .expect("validate_child is allowed");
    let problems = value.as_array().unwrap();
    let name = problems.iter().find(|p| p["field"] == "name").unwrap();
    assert_eq!(name["code"], "field.required");
    assert!(name["message"].as_str().unwrap().contains("姓名"), "{name}");
    assert!(problems.iter().any(|p| p["field"] == "id_number"));
}

#[test]
fn save_child_refuses_with_coded_field_errors() {
    let err = invoke_with(
        MAIN_WINDOW,
        "save_child",
        serde_json::json!({"req": {"id": null, "card": {"name": ""}}}),
    )
    .expect_err("an empty card is refused");
    assert_eq!(err["code"], "field.required", "{err}");
    assert!(err["details"]["errors"]
        .as_array()
        .is_some_and(|e| !e.is_empty()));
}

#[test]
fn settings_round_trip_and_demo_offer() {
    let value = invoke(MAIN_WINDOW, "get_settings").unwrap();
    assert_eq!(value["language"], "zh-CN");
    let err = invoke_with(
        MAIN_WINDOW,
        "set_setting",
        serde_json::json!({"change": {"key": "language", "value": "fr"}}),
    )
    .expect_err("unknown language");
    assert_eq!(err["code"], "input.invalid");
    let value = invoke_with(
        MAIN_WINDOW,
        "set_setting",
        serde_json::json!({"change": {"key": "text_size", "value": "large"}}),
    )
    .unwrap();
    assert_eq!(value["text_size"], "large");
    assert!(invoke(MAIN_WINDOW, "demo_offer").unwrap().is_boolean());
}

#[test]
fn store_summary_counts_the_local_store() {
    let value = invoke(MAIN_WINDOW, "store_summary").expect("store_summary is allowed");
    assert_eq!(value["children"], 0, "{value}");
    assert_eq!(value["pending_changes"], 0, "{value}");
    assert!(value["home_visits"].is_number());
}

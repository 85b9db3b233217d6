//! IPC tests through Tauri's mock runtime (no display needed), using the real
//! compile-time context: the same `tauri.conf.json` and capabilities (ACL) as
//! the shipped app.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use shouhu_api::account::Account;
use shouhu_app_lib::{context, with_commands, AppInfo, AppStore, MAIN_WINDOW};
use shouhu_auth::password::KdfParams;
use shouhu_vault::Vault;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::Manager;
use tauri::WebviewWindowBuilder;

fn invoke(window_label: &str, cmd: &str) -> Result<Value, Value> {
    invoke_with(window_label, cmd, Value::Object(Default::default()))
}

/// An account in a fresh folder (cheap key derivation), logged in as a
/// teacher unless `locked`.
fn account(locked: bool) -> Account {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let vault = Vault::new(dir.join("shouhu.db")).with_kdf(KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    });
    let mut account = Account::new(vault);
    if !locked {
        account
            .set_up(
                serde_json::from_value(serde_json::json!({
                    "login_name": "liming", "display_name": "李明", "role": "teacher",
                    "school_name": "青山小学", "township": "青山镇",
                    "password": "qingshan2026", "password_again": "qingshan2026"
                }))
                .expect("set-up request"),
                chrono::Utc::now(),
            )
            .expect("set-up");
    }
    account
}

fn invoke_with(window_label: &str, cmd: &str, args: Value) -> Result<Value, Value> {
    invoke_in(account(false), window_label, cmd, args)
}

fn invoke_in(account: Account, window_label: &str, cmd: &str, args: Value) -> Result<Value, Value> {
    let app = with_commands(mock_builder())
        .build(context())
        .expect("app builds");
    app.manage(AppStore::new(account));
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
fn settings_round_trip_without_a_role() {
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
    assert_eq!(value["auto_lock_minutes"], 10);
    assert!(
        value.get("role").is_none(),
        "the role is the account's: {value}"
    );
}

#[test]
fn without_a_session_data_commands_answer_locked_and_account_commands_work() {
    let err =
        invoke_in(account(true), MAIN_WINDOW, "store_summary", Value::Null).expect_err("locked");
    assert_eq!(err["code"], "auth.locked", "{err}");
    assert_eq!(err["message"], "已锁定，请重新登录");
    let state = invoke_in(account(true), MAIN_WINDOW, "vault_state", Value::Null).unwrap();
    assert_eq!(state["state"], "empty");
    let err = invoke_in(
        account(true),
        MAIN_WINDOW,
        "log_in",
        serde_json::json!({"req": {"login_name": "x", "password": "y"}}),
    )
    .expect_err("not set up");
    assert_eq!(err["code"], "vault.not_set_up", "{err}");
    let state = invoke_in(account(false), MAIN_WINDOW, "vault_state", Value::Null).unwrap();
    assert_eq!(state["state"], "ready");
    assert_eq!(state["current"]["role"], "teacher");
    assert_eq!(state["current"]["reads_notes"], false);
}

#[test]
fn a_teacher_is_refused_notes_and_laptop_users() {
    let err = invoke_with(
        MAIN_WINDOW,
        "save_record",
        serde_json::json!({"req": {"kind": "psych_note", "id": null, "body": {}}}),
    )
    .expect_err("notes are for counselors");
    assert_eq!(err["code"], "auth.forbidden", "{err}");
    let err = invoke_with(
        MAIN_WINDOW,
        "add_user",
        serde_json::json!({"req": {"login_name": "wangfang", "display_name": "王芳",
            "role": "teacher", "password": "wangfang2026", "password_again": "wangfang2026"}}),
    )
    .expect_err("a teacher manages no one");
    assert_eq!(err["code"], "auth.forbidden", "{err}");
}

#[test]
fn store_summary_counts_the_local_store() {
    let value = invoke(MAIN_WINDOW, "store_summary").expect("store_summary is allowed");
    assert_eq!(value["children"], 0, "{value}");
    // Set-up made the teacher's school: one record, one change to sync.
    assert_eq!(value["schools"], 1, "{value}");
    assert_eq!(value["pending_changes"], 1, "{value}");
    assert!(value["home_visits"].is_number());
}

#[test]
fn a_household_is_created_and_a_card_is_deleted_only_with_a_reason() {
    let id = invoke_with(
        MAIN_WINDOW,
        "save_household",
        serde_json::json!({ "req": { "id": null, "household": { "label": "张家", "head_name": "张建国" } } }),
    )
    .expect("a household is saved");
    assert!(id.as_str().is_some_and(|s| s.len() == 36), "{id}");
    let err = invoke_with(
        MAIN_WINDOW,
        "delete_child",
        serde_json::json!({ "id": "01934b6e-0000-7000-8000-0000000000a1", "reason": "  " }),
    )
    .expect_err("a reason is required");
    assert_eq!(err["code"], "record.delete_reason_required");
}

#[test]
fn cancel_sync_answers_whether_a_sync_was_running() {
    let value = invoke(MAIN_WINDOW, "cancel_sync").expect("cancel_sync is allowed");
    assert_eq!(value, serde_json::json!(false));
}

#[test]
fn the_cancel_button_reaches_the_running_sync_only() {
    let store = AppStore::new(account(false));
    assert!(!store.cancel_sync(), "nothing running");
    let token = store.begin_sync();
    assert!(!token.is_cancelled());
    assert!(store.cancel_sync());
    assert!(token.is_cancelled());
    store.end_sync();
    assert!(!store.cancel_sync(), "the finished sync is forgotten");
    assert!(
        !store.begin_sync().is_cancelled(),
        "a new sync starts afresh"
    );
}

// uiconf: the printable card, household members
#[test]
fn printing_and_household_members_are_granted_and_answer_in_codes() {
    let err = invoke_with(
        MAIN_WINDOW,
        "print_child",
        serde_json::json!({ "childId": "01934b6e-0000-7000-8000-0000000000a1" }),
    )
    .expect_err("no such child");
    assert_eq!(err["code"], "record.not_found", "{err}");
    let household = invoke_with(
        MAIN_WINDOW,
        "save_household",
        serde_json::json!({ "req": { "id": null, "household": { "label": "李家" } } }),
    )
    .expect("a household is saved");
    let err = invoke_with(
        MAIN_WINDOW,
        "set_child_household",
        serde_json::json!({ "childId": "01934b6e-0000-7000-8000-0000000000a1", "householdId": household }),
    )
    .expect_err("no such child");
    assert_eq!(err["code"], "record.not_found", "{err}");
    // Each call here runs on a fresh laptop: an edit (with the version it
    // was opened at) of a household this one does not hold.
    let err = invoke_with(
        MAIN_WINDOW,
        "save_household",
        serde_json::json!({ "req": { "id": household, "household": { "label": "李家" }, "version": 5 } }),
    )
    .expect_err("not on this laptop");
    assert_eq!(err["code"], "record.not_found", "{err}");
}

/// Excel: a teacher may import but not export; the refusal comes before any
/// dialog (the mock app has no dialog plugin: reaching it would fail
/// otherwise).
#[test]
fn a_teacher_is_refused_the_excel_export_before_any_dialog() {
    let err = invoke_with(
        MAIN_WINDOW,
        "export_children_xlsx",
        serde_json::json!({"req": {"filter": null, "template": false, "password": "qingshan-2026"}, "onProgress": "__CHANNEL__:7"}),
    )
    .expect_err("teachers export nothing");
    assert_eq!(err["code"], "auth.forbidden", "{err}");
    let err = invoke_in(
        account(true),
        MAIN_WINDOW,
        "import_children_xlsx",
        serde_json::json!({"password": null, "retry": false, "onProgress": "__CHANNEL__:8"}),
    )
    .expect_err("locked");
    assert_eq!(err["code"], "auth.locked", "{err}");
    // A retry with nothing kept opens nothing and imports nothing.
    let none = invoke_with(
        MAIN_WINDOW,
        "import_children_xlsx",
        serde_json::json!({"password": "x", "retry": true, "onProgress": "__CHANNEL__:9"}),
    )
    .expect("nothing to retry");
    assert_eq!(none, Value::Null);
}

//! The admin subcommands of the `shouhu-server` binary: users and the audit
//! log (the logic is `ServerDb`'s, tested in `accounts.rs`; this checks the
//! parsing, the printing and the exit codes).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use shouhu_protocol::{AuditRecord, Scope};
use shouhu_server::ServerDb;
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn server(data: &Path, args: &[&str], stdin: Option<&str>) -> Result<Output, std::io::Error> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shouhu-server"))
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(text.as_bytes())?;
    }
    child.wait_with_output()
}

fn ok(out: &Output) -> Result<String, Box<dyn std::error::Error>> {
    if !out.status.success() {
        return Err(format!("failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout.clone())?)
}

fn refused(out: &Output, code: &str) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("[{code}]")), "{err}");
}

#[test]
fn users_and_the_audit_log_from_the_command_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    let school = ok(&server(
        data,
        &["add-school", "--name", "新寨小学", "--township", "八步街道"],
        None,
    )?)?
    .trim()
    .to_string();

    // A made password is printed once; the JSON shows no hash.
    let out = ok(&server(
        data,
        &[
            "user", "add", "--login", "WangLi", "--name", "王丽", "--role", "teacher", "--school",
            &school,
        ],
        None,
    )?)?;
    assert!(out.contains("initial password"), "{out}");
    assert!(out.contains("\"login_name\": \"wangli\""), "{out}");
    assert!(!out.contains("argon2"));

    // A given password (stdin) is not echoed.
    let out = ok(&server(
        data,
        &[
            "user",
            "add",
            "--login",
            "zhao",
            "--name",
            "赵督导",
            "--role",
            "psych_supervisor",
            "--county",
            "--password-stdin",
        ],
        Some("shouhu2026\n"),
    )?)?;
    assert!(!out.contains("initial password") && !out.contains("shouhu2026"));

    refused(
        &server(
            data,
            &[
                "user", "add", "--login", "li", "--name", "李", "--role", "teacher", "--county",
            ],
            None,
        )?,
        "user.scope_invalid",
    );
    refused(
        &server(
            data,
            &[
                "user", "add", "--login", "wangli", "--name", "王", "--role", "teacher",
                "--school", &school,
            ],
            None,
        )?,
        "user.login_taken",
    );
    refused(
        &server(
            data,
            &[
                "user", "add", "--login", "li", "--name", "李", "--role", "root", "--county",
            ],
            None,
        )?,
        "user.role_unknown",
    );

    let list: Value = serde_json::from_str(&ok(&server(data, &["user", "list"], None)?)?)?;
    let logins: Vec<&str> = list
        .as_array()
        .ok_or("not a list")?
        .iter()
        .filter_map(|u| u["login_name"].as_str())
        .collect();
    assert_eq!(logins, ["wangli", "zhao"]);
    let teacher: Uuid = serde_json::from_value(list[0]["id"].clone())?;

    let out = ok(&server(data, &["user", "reset-password", "WANGLI"], None)?)?;
    assert!(out.contains("initial password"));
    refused(
        &server(data, &["user", "reset-password", "nobody"], None)?,
        "user.not_found",
    );
    let out: Value =
        serde_json::from_str(&ok(&server(data, &["user", "remove", "wangli"], None)?)?)?;
    assert!(out["removed_at"].is_string());

    // Entries as a device uploads them, then read back filtered.
    {
        let mut db = ServerDb::open(data)?;
        let scope = Scope {
            schools: vec![school.parse()?],
            notes: false,
            local_users: false,
        };
        let code = db.create_enrollment(&scope, 1)?;
        let device = Uuid::now_v7();
        db.enroll(&code, device, "laptop")?;
        let entry = |action: &str, at: &str| AuditRecord {
            id: Uuid::now_v7(),
            at: at.into(),
            device_id: device,
            user_id: teacher,
            action: action.into(),
            entity: None,
            record_id: None,
            school_id: None,
            details: json!({}),
        };
        db.store_audit(
            device,
            &scope,
            &[
                entry("login", "2026-10-31T23:00:00Z"),
                entry("export", "2026-11-01T10:00:00Z"),
                entry("logout", "2026-11-02T10:00:00Z"),
            ],
        )?;
    }
    let rows: Value = serde_json::from_str(&ok(&server(
        data,
        &[
            "audit",
            "--user",
            "wangli",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-01",
        ],
        None,
    )?)?)?;
    assert_eq!(
        rows.as_array().map(|r| r.len()),
        Some(1),
        "a date until means through that day: {rows}"
    );
    assert_eq!(rows[0]["action"], "export");
    let csv = ok(&server(
        data,
        &["audit", "--format", "csv", "--action", "login"],
        None,
    )?)?;
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(",wangli,login,"), "{csv}");
    refused(
        &server(data, &["audit", "--since", "yesterday"], None)?,
        "request.invalid",
    );
    Ok(())
}

//! Edits in the county audit view: every change a device pushed is listed by
//! `shouhu-server audit` (who, device, when, entity, record, school and the
//! names of the fields written — never their values) beside the entries
//! devices upload, with the same filters; and the change log is append-only
//! (migration 7, tested from 6).

use std::path::Path;
use std::process::{Command, Output};

use rusqlite::{params, Connection};
use serde_json::{json, Value};
use shouhu_auth::Role;
use shouhu_core::{EntityKind, Op};
use shouhu_protocol::{AuditRecord, Change, PushRequestRaw, PushResponse, Scope};
use shouhu_server::{
    ApiError, AuditQuery, AuditRow, NewUser, NewUserScope, ServerDb, SCHEMA_VERSION, SOURCE_AUDIT,
    SOURCE_CHANGES,
};
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A distinctive value typed into the card: it must never be listed.
const SECRET_PHONE: &str = "13987654321";
/// The names the concurrent edits wrote (values too).
const VALUES: [&str; 4] = [SECRET_PHONE, "张小三", "章三", "新寨村七组"];

fn ms(text: &str) -> Result<u64, Box<dyn std::error::Error>> {
    Ok(u64::try_from(
        text.parse::<chrono::DateTime<chrono::Utc>>()?
            .timestamp_millis(),
    )?)
}

/// Push through the path HTTP uses (fields kept as JSON text).
fn push(
    db: &mut ServerDb,
    device: Uuid,
    scope: &Scope,
    changes: &[Change],
) -> Result<PushResponse, Box<dyn std::error::Error>> {
    let req: PushRequestRaw = serde_json::from_value(json!({"protocol": 1, "changes": changes}))?;
    Ok(db.push_raw(device, scope, &req.changes)?)
}

#[allow(clippy::too_many_arguments)]
fn change(
    seq: i64,
    at: &str,
    entity: EntityKind,
    record: Uuid,
    school: Uuid,
    op: Op,
    fields: Value,
    base_version: i64,
    user: Uuid,
    resolves: Option<Uuid>,
) -> Result<Change, Box<dyn std::error::Error>> {
    Ok(Change {
        seq,
        change_id: Uuid::now_v7(),
        hlc: ms(at)? << 16,
        entity,
        record_id: record,
        school_id: Some(school),
        op,
        fields,
        base_version,
        user_id: user,
        resolves,
    })
}

struct Fixture {
    school: Uuid,
    teacher: Uuid,
    a: Uuid,
    b: Uuid,
    child: Uuid,
    conflict: Uuid,
}

/// A school, a teacher, two laptops. The teacher creates a child on `a`,
/// renames it on `a` while `b` renames it too (a conflict the server
/// opens), resolves the conflict on `a`, then deletes the child; and views
/// it once, after logging in.
fn fixture(db: &mut ServerDb) -> Result<Fixture, Box<dyn std::error::Error>> {
    let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
    let teacher = db
        .add_user(NewUser {
            login_name: "wangli".into(),
            display_name: "王丽".into(),
            role: Role::Teacher,
            scope: NewUserScope::School(school),
            password: None,
        })?
        .user
        .id;
    let scope = Scope {
        schools: vec![school],
        notes: false,
        local_users: false,
    };
    let mut enroll = |name: &str| -> Result<Uuid, ApiError> {
        let code = db.create_enrollment(&scope, 1)?;
        let id = Uuid::now_v7();
        db.enroll(&code, id, name)?;
        Ok(id)
    };
    let (a, b) = (enroll("a")?, enroll("b")?);
    let child = Uuid::now_v7();
    let body = json!({"name": "张三", "father": {"phone": SECRET_PHONE}, "address": "新寨村七组"});
    push(
        db,
        a,
        &scope,
        &[change(
            1,
            "2026-11-01T08:00:00Z",
            EntityKind::Child,
            child,
            school,
            Op::Create,
            body,
            0,
            teacher,
            None,
        )?],
    )?;
    let v1 = db.head()?;
    push(
        db,
        a,
        &scope,
        &[change(
            2,
            "2026-11-02T09:00:00Z",
            EntityKind::Child,
            child,
            school,
            Op::Update,
            json!({"name": "张小三", "father.phone": SECRET_PHONE}),
            v1,
            teacher,
            None,
        )?],
    )?;
    let pushed = push(
        db,
        b,
        &scope,
        &[change(
            1,
            "2026-11-02T10:00:00Z",
            EntityKind::Child,
            child,
            school,
            Op::Update,
            json!({"name": "章三"}),
            v1,
            teacher,
            None,
        )?],
    )?;
    assert_eq!(pushed.conflicts, 1);
    let conflict: String = db.connection().query_row(
        "SELECT record_id FROM changes WHERE entity = 'conflict'",
        [],
        |r| r.get(0),
    )?;
    let conflict: Uuid = conflict.parse()?;
    let head = db.head()?;
    push(
        db,
        a,
        &scope,
        &[
            change(
                3,
                "2026-11-03T08:00:00Z",
                EntityKind::Child,
                child,
                school,
                Op::Update,
                json!({"name": "张小三"}),
                head,
                teacher,
                Some(conflict),
            )?,
            change(
                4,
                "2026-11-03T08:00:01Z",
                EntityKind::Conflict,
                conflict,
                school,
                Op::Update,
                json!({"status": "resolved", "resolution": {"choice": "keep_current", "value": "张小三"}}),
                head,
                teacher,
                Some(conflict),
            )?,
            change(
                5,
                "2026-11-04T08:00:00Z",
                EntityKind::Child,
                child,
                school,
                Op::Delete,
                json!({}),
                head,
                teacher,
                None,
            )?,
        ],
    )?;
    let entry = |action: &str, at: &str, record: Option<Uuid>| AuditRecord {
        id: Uuid::now_v7(),
        at: at.into(),
        device_id: a,
        user_id: teacher,
        action: action.into(),
        entity: record.map(|_| "child".to_string()),
        record_id: record,
        school_id: record.map(|_| school),
        details: json!({}),
    };
    db.store_audit(
        a,
        &scope,
        &[
            entry("login", "2026-11-01T07:59:00Z", None),
            entry("view_child", "2026-11-01T09:00:00Z", Some(child)),
        ],
    )?;
    Ok(Fixture {
        school,
        teacher,
        a,
        b,
        child,
        conflict,
    })
}

fn actions(rows: &[AuditRow]) -> Vec<&str> {
    rows.iter().map(|r| r.action.as_str()).collect()
}

#[test]
fn edits_are_listed_with_field_names_and_no_values() -> TestResult {
    let mut db = ServerDb::open_in_memory()?;
    let f = fixture(&mut db)?;
    let all = db.audit_view(&AuditQuery::default())?;
    // The school the server added, five edits of the child, the conflict
    // the server opened and its resolution, two device entries.
    assert_eq!(all.len(), 10, "{all:#?}");
    assert!(all.windows(2).all(|w| w[0].at <= w[1].at), "by time");
    // The device log alone is unchanged.
    assert_eq!(
        actions(&db.audit_entries(&AuditQuery::default())?),
        ["login", "view_child"]
    );

    let on_child = db.audit_view(&AuditQuery {
        target: Some(f.child.to_string()),
        ..Default::default()
    })?;
    assert_eq!(
        actions(&on_child),
        [
            "create",
            "view_child",
            "update",
            "update",
            "update",
            "delete"
        ]
    );
    let create = &on_child[0];
    assert_eq!(create.source, SOURCE_CHANGES);
    assert_eq!(create.at, "2026-11-01T08:00:00.000Z");
    assert_eq!((create.device_id, create.uploaded_by), (f.a, f.a));
    assert_eq!(create.user_id, f.teacher);
    assert_eq!(create.login_name.as_deref(), Some("wangli"));
    assert_eq!(create.user_name.as_deref(), Some("王丽"));
    assert_eq!(create.target_kind.as_deref(), Some("child"));
    assert_eq!(create.target_id, Some(f.child.to_string()));
    assert_eq!(create.school_id, Some(f.school.to_string()));
    assert_eq!(
        create.details["fields"],
        json!(["address", "father", "name"])
    );
    assert!(!create.received_at.is_empty());
    assert!(create.server_seq.is_some() && create.flag.is_none());
    assert_eq!(on_child[1].source, SOURCE_AUDIT);
    assert_eq!(on_child[1].user_name.as_deref(), Some("王丽"));
    assert_eq!(
        on_child[2].details["fields"],
        json!(["father.phone", "name"])
    );
    assert_eq!(on_child[2].at, "2026-11-02T09:00:00.000Z");
    assert_eq!(on_child[3].device_id, f.b);
    assert_eq!(on_child[4].details["resolves"], json!(f.conflict));
    assert_eq!(on_child[5].details["fields"], json!([]));

    // The conflict record: opened by the server (its own id as user and
    // device), closed by the teacher.
    let on_conflict = db.audit_view(&AuditQuery {
        target: Some(f.conflict.to_string()),
        ..Default::default()
    })?;
    assert_eq!(
        actions(&on_conflict),
        ["update", "create"],
        "made at 11-03, opened now"
    );
    assert_eq!(on_conflict[1].details["by_server"], json!(true));
    assert_eq!(on_conflict[1].user_id, db.server_id());
    assert_eq!(on_conflict[1].device_id, db.server_id());
    assert!(on_conflict[1].login_name.is_none());
    assert_eq!(on_conflict[0].user_id, f.teacher);

    // No value of any field is listed (the conflict record carries both
    // names, the card the phone number).
    let printed = serde_json::to_string(&all)?;
    for v in VALUES {
        assert!(!printed.contains(v), "{v} listed: {printed}");
    }
    let csv = shouhu_server::audit_csv(&all);
    for v in VALUES {
        assert!(!csv.contains(v), "{v} in the CSV");
    }

    // Filters.
    let q = |q: AuditQuery| -> Result<Vec<String>, ApiError> {
        Ok(db
            .audit_view(&q)?
            .into_iter()
            .map(|r| format!("{}:{}", r.source, r.action))
            .collect())
    };
    let action = |a: &str| AuditQuery {
        action: Some(a.into()),
        ..Default::default()
    };
    assert_eq!(q(action("update"))?.len(), 4);
    assert_eq!(q(action("delete"))?, ["changes:delete"]);
    assert_eq!(q(action("resolve"))?, ["changes:update", "changes:update"]);
    assert_eq!(q(action("edit"))?.len(), 8);
    assert!(q(action("edit"))?.iter().all(|a| a.starts_with("changes:")));
    assert_eq!(q(action("view"))?, ["audit:view_child"]);
    assert_eq!(q(action("login"))?, ["audit:login"]);
    assert_eq!(
        q(AuditQuery {
            user: Some("WangLi".into()),
            ..Default::default()
        })?
        .len(),
        8,
        "all but the server's own"
    );
    assert_eq!(
        q(AuditQuery {
            user: Some(f.teacher.to_string()),
            action: Some("create".into()),
            ..Default::default()
        })?,
        ["changes:create"]
    );
    assert_eq!(
        q(AuditQuery {
            device: Some(f.b),
            ..Default::default()
        })?,
        ["changes:update"]
    );
    let t = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>();
    assert_eq!(
        q(AuditQuery {
            since: Some(t("2026-11-02T00:00:00Z")?),
            until: Some(t("2026-11-03T08:00:00Z")?),
            ..Default::default()
        })?,
        ["changes:update", "changes:update"]
    );
    assert_eq!(
        q(AuditQuery {
            target: Some("child".into()),
            since: Some(t("2026-11-03T08:00:00Z")?),
            ..Default::default()
        })?,
        ["changes:update", "changes:delete"]
    );
    assert_eq!(
        q(AuditQuery {
            target: Some("conflict".into()),
            ..Default::default()
        })?
        .len(),
        2
    );
    assert_eq!(
        q(AuditQuery {
            limit: Some(3),
            ..Default::default()
        })?,
        ["audit:login", "changes:create", "audit:view_child"]
    );
    Ok(())
}

fn server(data: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
    Command::new(env!("CARGO_BIN_EXE_shouhu-server"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
}

fn ok(out: &Output) -> Result<String, Box<dyn std::error::Error>> {
    if !out.status.success() {
        return Err(format!("failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout.clone())?)
}

#[test]
fn the_audit_command_lists_edits_as_json_and_csv() -> TestResult {
    let dir = tempfile::tempdir()?;
    let f = fixture(&mut ServerDb::open(dir.path())?)?;
    let child = f.child.to_string();

    let text = ok(&server(dir.path(), &["audit", "--target", &child])?)?;
    for v in VALUES {
        assert!(!text.contains(v), "{v} listed: {text}");
    }
    let rows: Value = serde_json::from_str(&text)?;
    let rows = rows.as_array().ok_or("not a list")?;
    let listed: Vec<&str> = rows.iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(
        listed,
        [
            "create",
            "view_child",
            "update",
            "update",
            "update",
            "delete"
        ]
    );
    let create = &rows[0];
    assert_eq!(create["source"], "changes");
    assert_eq!(create["at"], "2026-11-01T08:00:00.000Z");
    assert_eq!(create["device_id"], json!(f.a));
    assert_eq!(create["user_id"], json!(f.teacher));
    assert_eq!(create["login_name"], "wangli");
    assert_eq!(create["user_name"], "王丽");
    assert_eq!(create["target_kind"], "child");
    assert_eq!(create["target_id"], child.as_str());
    assert_eq!(create["school_id"], json!(f.school));
    assert_eq!(
        create["details"]["fields"],
        json!(["address", "father", "name"])
    );
    assert!(create["received_at"].is_string() && create["server_seq"].is_i64());

    let update: Value = serde_json::from_str(&ok(&server(
        dir.path(),
        &["audit", "--action", "update", "--device", &f.b.to_string()],
    )?)?)?;
    assert_eq!(update.as_array().map(Vec::len), Some(1), "{update}");
    assert_eq!(update[0]["details"]["fields"], json!(["name"]));
    let none: Value = serde_json::from_str(&ok(&server(
        dir.path(),
        &["audit", "--action", "edit", "--since", "2030-01-01"],
    )?)?)?;
    assert_eq!(none, json!([]));
    let limited: Value = serde_json::from_str(&ok(&server(
        dir.path(),
        &["audit", "--user", "wangli", "--limit", "2"],
    )?)?)?;
    assert_eq!(limited.as_array().map(Vec::len), Some(2));

    let csv = ok(&server(
        dir.path(),
        &[
            "audit",
            "--format",
            "csv",
            "--target",
            &child,
            "--since",
            "2026-11-02",
            "--until",
            "2026-11-02",
        ],
    )?)?;
    for v in VALUES {
        assert!(!csv.contains(v), "{v} in the CSV: {csv}");
    }
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[0].starts_with("entry_id,at,") && lines[0].ends_with(",user_name,source,server_seq")
    );
    assert!(
        lines[1].contains(&format!(",wangli,update,child,{child},{},", f.school)),
        "{csv}"
    );
    assert!(lines[1].contains(r#"""base_version"":"#), "{csv}");
    assert!(
        lines[1].contains(r#"""fields"":[""father.phone"",""name""]"#),
        "{csv}"
    );
    assert!(lines[1].contains(",王丽,changes,"), "{csv}");
    assert!(lines[2].contains(&f.b.to_string()), "{csv}");
    Ok(())
}

/// Raw SQL on the change log, in the server's connection and another.
fn refused(conn: &Connection) -> TestResult {
    let before: i64 = conn.query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))?;
    for sql in [
        "UPDATE changes SET fields = '{}'",
        "UPDATE changes SET user_id = 'someone' WHERE op = 'update'",
        "DELETE FROM changes",
        "DELETE FROM changes WHERE op = 'delete'",
    ] {
        let e = conn.execute(sql, []).map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(m) if m.contains("append-only")),
            "{sql}: {e:?}"
        );
    }
    let after: i64 = conn.query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))?;
    assert_eq!(before, after);
    let fields: Vec<String> = conn
        .prepare("SELECT fields FROM changes")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    assert!(fields.iter().any(|f| f.contains(SECRET_PHONE)), "untouched");
    Ok(())
}

#[test]
fn the_change_log_refuses_edits_and_deletions() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut db = ServerDb::open(dir.path())?;
    let f = fixture(&mut db)?;
    refused(db.connection())?;
    let listed = db.audit_view(&AuditQuery::default())?;
    // Pushing still appends.
    let scope = Scope {
        schools: vec![f.school],
        notes: false,
        local_users: false,
    };
    let r = push(
        &mut db,
        f.b,
        &scope,
        &[change(
            2,
            "2026-11-05T08:00:00Z",
            EntityKind::Child,
            Uuid::now_v7(),
            f.school,
            Op::Create,
            json!({"name": "李四"}),
            0,
            f.teacher,
            None,
        )?],
    )?;
    assert_eq!(r.applied, 1);
    assert_eq!(
        db.audit_view(&AuditQuery::default())?.len(),
        listed.len() + 1
    );
    drop(db);
    refused(&Connection::open(dir.path().join("shouhu-server.db"))?)?;
    Ok(())
}

/// A database of schema 6 (the change log not yet append-only, no audit
/// indexes) with edits in it migrates to 7: its edits are listed, and the
/// log refuses edits from then on.
#[test]
fn a_version_6_database_migrates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("shouhu-server.db");
    let f = fixture(&mut ServerDb::open(dir.path())?)?;
    {
        let conn = Connection::open(&path)?;
        conn.execute_batch(
            "DROP TRIGGER changes_no_update; DROP TRIGGER changes_no_delete;
             DROP INDEX changes_record;
             PRAGMA user_version = 6;",
        )?;
        // Version 6 let anyone rewrite the log.
        conn.execute(
            "UPDATE changes SET received_at = received_at WHERE record_id = ?1",
            params![f.child.to_string()],
        )?;
    }
    let db = ServerDb::open(dir.path())?;
    let v: i64 = db
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!((v, SCHEMA_VERSION), (7, 7));
    let indexes: Vec<String> = db
        .connection()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'changes' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    assert!(
        indexes.iter().any(|n| n == "changes_record"),
        "changes_record: {indexes:?}"
    );
    let edits = db.audit_view(&AuditQuery {
        target: Some(f.child.to_string()),
        action: Some("edit".into()),
        ..Default::default()
    })?;
    assert_eq!(
        actions(&edits),
        ["create", "update", "update", "update", "delete"]
    );
    refused(db.connection())?;
    drop(db);
    // Opening again runs nothing twice.
    let db = ServerDb::open(dir.path())?;
    assert_eq!(db.audit_view(&AuditQuery::default())?.len(), 10);
    Ok(())
}

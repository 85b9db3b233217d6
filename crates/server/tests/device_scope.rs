//! Changing an enrolled device's scope: `set_device_scope` and its errors,
//! the scope history (migration 6, from a version 5 database), the push rule
//! for a school that left (changes made before it left are taken, later ones
//! are out of scope), pulls of the current scope only, `GET /v1/device`, and
//! the `device set-scope` subcommand.

use std::path::Path;
use std::process::{Command, Output};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use rusqlite::Connection;
use serde_json::{json, Value};
use shouhu_core::hlc::now_ms;
use shouhu_core::{EntityKind, Op};
use shouhu_protocol::{Change, DeviceResponse, Scope};
use shouhu_server::{app, ApiError, AppState, NewDeviceScope, ServerDb, SCHEMA_VERSION};
use tower::ServiceExt;
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct County {
    db: ServerDb,
    a: Uuid,
    b: Uuid,
    far: Uuid,
}

fn county() -> Result<County, ApiError> {
    let mut db = ServerDb::open_in_memory()?;
    let a = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
    let b = db.add_school(None, "八步中学", "织金县", "八步街道")?;
    let far = db.add_school(None, "龙场中学", "织金县", "龙场镇")?;
    Ok(County { db, a, b, far })
}

fn scope(schools: &[Uuid]) -> Scope {
    Scope {
        schools: schools.to_vec(),
        notes: false,
        local_users: true,
    }
}

/// A device enrolled with `scope`: its id and credential.
fn device(db: &mut ServerDb, scope: &Scope) -> Result<(Uuid, String), ApiError> {
    let code = db.create_enrollment(scope, 1)?;
    let id = Uuid::now_v7();
    let r = db.enroll(&code, id, "乡镇中心校笔记本")?;
    Ok((id, r.credential))
}

fn schools(ids: &[Uuid]) -> NewDeviceScope {
    NewDeviceScope {
        schools: ids.to_vec(),
        townships: Vec::new(),
    }
}

fn change(seq: i64, school: Uuid, at_ms: u64) -> Change {
    Change {
        seq,
        change_id: Uuid::now_v7(),
        hlc: at_ms << 16,
        entity: EntityKind::Child,
        record_id: Uuid::now_v7(),
        school_id: Some(school),
        op: Op::Create,
        fields: json!({"name": "张三"}),
        base_version: 0,
        user_id: Uuid::now_v7(),
        resolves: None,
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

fn current(db: &mut ServerDb, credential: &str) -> Result<Scope, ApiError> {
    Ok(db.authenticate(credential)?.1)
}

#[test]
fn set_scope_checks_what_it_is_given() -> TestResult {
    let County {
        mut db, a, b, far, ..
    } = county()?;
    let (dev, credential) = device(&mut db, &scope(&[a, b]))?;
    // Unknown device, unknown school, a township without schools, nothing.
    assert_eq!(
        code(db.set_device_scope(Uuid::now_v7(), &schools(&[a]))),
        "device.not_found"
    );
    assert_eq!(
        code(db.set_device_scope(dev, &schools(&[a, Uuid::now_v7()]))),
        "device.scope_invalid"
    );
    let nowhere = NewDeviceScope {
        schools: vec![],
        townships: vec!["不存在镇".into()],
    };
    assert_eq!(
        code(db.set_device_scope(dev, &nowhere)),
        "device.scope_invalid"
    );
    assert_eq!(
        code(db.set_device_scope(dev, &NewDeviceScope::default())),
        "device.scope_invalid"
    );
    // Nothing of a refused change was kept.
    assert_eq!(current(&mut db, &credential)?.schools, vec![a, b]);
    assert!(db.device_scope_history(dev)?.is_empty());
    // The same schools (in another order) record nothing.
    assert_eq!(db.set_device_scope(dev, &schools(&[b, a]))?, None);
    assert!(db.device_scope_history(dev)?.is_empty());
    // A township gives its schools; the flags stay as enrolled.
    let longchang = NewDeviceScope {
        schools: vec![a],
        townships: vec![" 龙场镇 ".into()],
    };
    let ch = db.set_device_scope(dev, &longchang)?.ok_or("a change")?;
    assert_eq!(ch.after.schools, vec![a, far]);
    assert_eq!((ch.removed.clone(), ch.added.clone()), (vec![b], vec![far]));
    assert!(ch.after.local_users && !ch.after.notes);
    assert_eq!(current(&mut db, &credential)?, ch.after);
    assert_eq!(db.device_scope_history(dev)?, vec![ch]);
    // A revoked device is not changed.
    db.revoke(dev)?;
    assert_eq!(
        code(db.set_device_scope(dev, &schools(&[a]))),
        "device.revoked"
    );
    // The error body names the device.
    let e = ApiError::DeviceNotFound(dev).body();
    assert_eq!(e.details, json!({ "device": dev }));
    Ok(())
}

#[test]
fn a_school_that_left_takes_only_changes_made_before() -> TestResult {
    let County {
        mut db, a, b, far, ..
    } = county()?;
    let (dev, credential) = device(&mut db, &scope(&[a, b]))?;
    let before_ms = now_ms() - 60_000;
    // An edit of B made offline before the narrowing, another of A.
    let pending = [change(1, b, before_ms), change(2, a, before_ms + 1)];
    std::thread::sleep(std::time::Duration::from_millis(5));
    db.set_device_scope(dev, &schools(&[a]))?;
    let narrowed = current(&mut db, &credential)?;
    assert_eq!(narrowed.schools, vec![a]);
    let r = db.push(dev, &narrowed, &pending)?;
    assert_eq!((r.applied_through, r.applied), (2, 2));
    assert!(
        db.record(pending[0].record_id)?.is_some(),
        "B's edit is on the server"
    );

    // Made after the narrowing: refused, as a school never in scope is.
    let late = change(3, b, now_ms() + 1_000);
    let e = db
        .push(dev, &narrowed, std::slice::from_ref(&late))
        .err()
        .ok_or("refused")?;
    assert_eq!(e.code(), "sync.out_of_scope");
    assert_eq!(e.body().details["reason"], "left_scope");
    assert_eq!(
        code(db.push(dev, &narrowed, &[change(3, far, before_ms)])),
        "sync.out_of_scope"
    );
    assert!(db.record(late.record_id)?.is_none());

    // Pulls follow the current scope: B's records no longer come.
    let pulled = db.pull(&narrowed, 0, 1000)?;
    assert!(pulled.changes.iter().all(|c| c.change.school_id == Some(a)));
    assert!(!pulled.changes.is_empty());

    // The device is told B left, and when.
    let told = db.device_response(dev, &narrowed)?;
    assert_eq!(told.scope, narrowed);
    assert_eq!(told.left_schools.len(), 1);
    assert_eq!(told.left_schools[0].school_id, b);
    assert_eq!(
        Some(told.left_schools[0].left_at.clone()),
        told.scope_changed_at
    );

    // A restored database takes a new id: the history goes with it, so its
    // moved entries made before the narrowing still go through.
    let new = Uuid::now_v7();
    db.rotate_device(dev, new)?;
    let r = db.push(new, &narrowed, &[change(1, b, before_ms + 2)])?;
    assert_eq!(r.applied, 1);
    assert_eq!(db.device_response(new, &narrowed)?.left_schools.len(), 1);
    // set-scope by the old id reaches the new one.
    db.set_device_scope(dev, &schools(&[a, b]))?;
    let widened = current(&mut db, &credential)?;
    assert_eq!(widened.schools, vec![a, b]);
    // Added back: no longer listed as left, and its changes are taken again.
    assert!(db.device_response(new, &widened)?.left_schools.is_empty());
    assert_eq!(
        db.push(new, &widened, &[late.clone().with_seq(2)])?.applied,
        1
    );
    Ok(())
}

trait WithSeq {
    fn with_seq(self, seq: i64) -> Self;
}

impl WithSeq for Change {
    fn with_seq(mut self, seq: i64) -> Self {
        self.seq = seq;
        self
    }
}

/// A database of schema 5 (before scope history) with an enrolled device
/// migrates to 6, and its device's scope can be changed.
#[test]
fn a_version_5_database_migrates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (dev, a, b) = {
        let mut db = ServerDb::open(dir.path())?;
        let a = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
        let b = db.add_school(None, "八步中学", "织金县", "八步街道")?;
        let (dev, _) = device(&mut db, &scope(&[a, b]))?;
        (dev, a, b)
    };
    {
        let conn = Connection::open(dir.path().join("shouhu-server.db"))?;
        conn.execute_batch(
            "DROP TRIGGER changes_no_update; DROP TRIGGER changes_no_delete;
             DROP INDEX changes_record;
             DROP TABLE device_scope_change;
             PRAGMA user_version = 5;",
        )?;
    }
    let mut db = ServerDb::open(dir.path())?;
    let v: i64 = db
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!((v, SCHEMA_VERSION), (7, 7));
    assert_eq!(db.devices()?[0].scope.schools, vec![a, b]);
    let ch = db.set_device_scope(dev, &schools(&[b]))?.ok_or("change")?;
    assert_eq!(ch.removed, vec![a]);
    drop(db);
    // Opening again runs nothing twice; the history is kept.
    let db = ServerDb::open(dir.path())?;
    assert_eq!(db.device_scope_history(dev)?.len(), 1);
    Ok(())
}

async fn get_device(
    state: &AppState,
    token: &str,
) -> Result<(StatusCode, Value), Box<dyn std::error::Error>> {
    let req = Request::builder()
        .method("GET")
        .uri("/v1/device")
        .header("authorization", format!("Bearer {token}"))
        .header("shouhu-protocol", "1")
        .body(Body::empty())?;
    let res = app(state.clone()).oneshot(req).await?;
    let status = res.status();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

#[tokio::test]
async fn a_device_asks_its_scope_over_http() -> TestResult {
    let County { mut db, a, b, .. } = county()?;
    let (dev, credential) = device(&mut db, &scope(&[a, b]))?;
    let state = AppState::new(db);
    let (status, body) = get_device(&state, &credential).await?;
    assert_eq!(status, StatusCode::OK);
    let told: DeviceResponse = serde_json::from_value(body)?;
    assert_eq!((told.device_id, told.scope.schools), (dev, vec![a, b]));
    assert!(told.left_schools.is_empty() && told.scope_changed_at.is_none());
    state
        .with_db(move |db| db.set_device_scope(dev, &schools(&[a])))
        .await?;
    let (_, body) = get_device(&state, &credential).await?;
    let told: DeviceResponse = serde_json::from_value(body)?;
    assert_eq!(told.scope.schools, vec![a]);
    assert_eq!(told.left_schools[0].school_id, b);
    let (status, body) = get_device(&state, "wrong").await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("auth.invalid"))
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

fn refused(out: &Output, code: &str) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("[{code}]")), "{err}");
}

#[test]
fn set_scope_from_the_command_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    let (dev, a, b) = {
        let mut db = ServerDb::open(data)?;
        let a = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
        let b = db.add_school(None, "龙场中学", "织金县", "龙场镇")?;
        let (dev, _) = device(&mut db, &scope(&[a]))?;
        (dev, a, b)
    };
    let (dev_s, a_s) = (dev.to_string(), a.to_string());
    refused(
        &server(
            data,
            &[
                "device",
                "set-scope",
                &Uuid::now_v7().to_string(),
                "--school",
                &a_s,
            ],
        )?,
        "device.not_found",
    );
    refused(
        &server(data, &["device", "set-scope", &dev_s])?,
        "device.scope_invalid",
    );
    refused(
        &server(
            data,
            &["device", "set-scope", &dev_s, "--township", "不存在镇"],
        )?,
        "device.scope_invalid",
    );
    let out = server(
        data,
        &[
            "device",
            "set-scope",
            &dev_s,
            "--school",
            &a_s,
            "--township",
            "龙场镇",
        ],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(printed["added"], json!([b]));
    assert_eq!(printed["after"]["schools"], json!([a, b]));
    let out = server(data, &["device", "scope-history", &dev_s])?;
    let history: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(history.as_array().map(Vec::len), Some(1));
    // The same scope again: nothing recorded.
    let out = server(
        data,
        &[
            "device",
            "set-scope",
            &dev_s,
            "--school",
            &a_s,
            "--school",
            &b.to_string(),
        ],
    )?;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("unchanged"));
    Ok(())
}

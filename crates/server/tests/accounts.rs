//! Accounts on the server: the schema migration, user administration, users
//! syncing down, reader keys, the role check of every pushed change, and the
//! append-only audit log.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use rusqlite::{params, Connection};
use serde_json::{json, Value};
use shouhu_auth::Role;
use shouhu_core::hlc::now_ms;
use shouhu_core::{EntityKind, Op};
use shouhu_protocol::{AuditRecord, Change, Scope, UserRecord, UserScope};
use shouhu_server::{
    app, audit_csv, township_id, ApiError, AppState, AuditQuery, NewUser, NewUserScope, ServerDb,
    SCHEMA_VERSION,
};
use tower::ServiceExt;
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn new_user(login: &str, role: Role, scope: NewUserScope) -> NewUser {
    NewUser {
        login_name: login.into(),
        display_name: format!("{login} 老师"),
        role,
        scope,
        password: None,
    }
}

fn add(db: &mut ServerDb, login: &str, role: Role, scope: NewUserScope) -> Result<Uuid, ApiError> {
    Ok(db.add_user(new_user(login, role, scope))?.user.id)
}

/// A device enrolled with `scope`; returns its id and credential.
fn device(db: &mut ServerDb, scope: Scope) -> Result<(Uuid, String), ApiError> {
    let code = db.create_enrollment(&scope, 1)?;
    let id = Uuid::now_v7();
    let r = db.enroll(&code, id, "laptop")?;
    Ok((id, r.credential))
}

fn scope(schools: &[Uuid], notes: bool) -> Scope {
    Scope {
        schools: schools.to_vec(),
        notes,
        local_users: false,
    }
}

fn change(seq: i64, entity: EntityKind, school: Uuid, user: Uuid, at_ms: u64) -> Change {
    Change {
        seq,
        change_id: Uuid::now_v7(),
        hlc: at_ms << 16,
        entity,
        record_id: Uuid::now_v7(),
        school_id: Some(school),
        op: Op::Create,
        // A note arrives sealed (the server refuses note text in plain).
        fields: if entity == EntityKind::PsychNote {
            json!({"child_id": Uuid::now_v7(), "session_date": "2026-11-20",
                   "sealed": {"ciphertext": "QUJD", "readers": []}})
        } else {
            json!({"name": "张三"})
        },
        base_version: 0,
        user_id: user,
        resolves: None,
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// Two schools in one township, one in another.
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

#[test]
fn a_version_1_database_with_data_migrates() -> TestResult {
    migrate_from(1)
}

/// A database of the first server, before numbered migrations.
#[test]
fn an_unnumbered_database_counts_as_version_1() -> TestResult {
    migrate_from(0)
}

fn migrate_from(version: i64) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("shouhu-server.db");
    let school = Uuid::now_v7();
    let (d1, c1, r1, u1) = (
        Uuid::now_v7().to_string(),
        Uuid::now_v7().to_string(),
        Uuid::now_v7().to_string(),
        Uuid::now_v7().to_string(),
    );
    {
        // The first server's schema (user_version 0) with a school, a device
        // and a change in it.
        let conn = Connection::open(&path)?;
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE school (id TEXT PRIMARY KEY, name TEXT NOT NULL, county TEXT NOT NULL, township TEXT NOT NULL, created_at TEXT NOT NULL);
             CREATE TABLE enrollment (code_hash TEXT PRIMARY KEY, scope TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT, device_id TEXT);
             CREATE TABLE device (id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL, credential_hash TEXT NOT NULL, enrolled_at TEXT NOT NULL, revoked_at TEXT, last_seq INTEGER NOT NULL DEFAULT 0, last_seen TEXT, successor TEXT);
             CREATE TABLE changes (server_seq INTEGER PRIMARY KEY, device_id TEXT NOT NULL, seq INTEGER NOT NULL, change_id TEXT NOT NULL, hlc INTEGER NOT NULL, entity TEXT NOT NULL, record_id TEXT NOT NULL, school_id TEXT, op TEXT NOT NULL, fields TEXT NOT NULL, base_version INTEGER NOT NULL, user_id TEXT NOT NULL, resolves TEXT, received_at TEXT NOT NULL);
             CREATE TABLE record (id TEXT PRIMARY KEY, entity TEXT NOT NULL, school_id TEXT, state TEXT NOT NULL);",
        )?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('server_id', ?1)",
            [Uuid::now_v7().to_string()],
        )?;
        conn.execute(
            "INSERT INTO school VALUES (?1, '新寨小学', '织金县', '八步街道', 'then')",
            [school.to_string()],
        )?;
        conn.execute(
            "INSERT INTO device (id, name, scope, credential_hash, enrolled_at, last_seq) VALUES (?2, 'old', ?1, 'h', 'then', 1)",
            params![json!({"schools": [school], "notes": false}).to_string(), d1],
        )?;
        conn.execute(
            "INSERT INTO changes (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, received_at)
             VALUES (?2, 1, ?3, 1, 'child', ?4, ?1, 'create', '{}', 0, ?5, 'then')",
            params![school.to_string(), d1, c1, r1, u1],
        )?;
        // A note, and a conflict record about a note with its state.
        let (note, conflict) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
        conn.execute(
            "INSERT INTO changes (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id, received_at)
             VALUES (?2, 2, ?3, 1, 'psych_note', ?4, ?1, 'create', '{}', 0, ?5, 'then'),
                    (?2, 3, ?6, 1, 'conflict', ?7, ?1, 'update', '{\"status\":\"resolved\"}', 0, ?5, 'then')",
            params![
                school.to_string(),
                d1,
                Uuid::now_v7().to_string(),
                note,
                u1,
                Uuid::now_v7().to_string(),
                conflict
            ],
        )?;
        conn.execute(
            "INSERT INTO record (id, entity, school_id, state) VALUES (?1, 'conflict', ?2, ?3)",
            params![
                conflict,
                school.to_string(),
                json!({"body": {"entity": "psych_note", "field": "text"}}).to_string()
            ],
        )?;
        conn.pragma_update(None, "user_version", version)?;
    }
    let mut db = ServerDb::open(dir.path())?;
    let v: i64 = db
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(v, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 7);
    // The old data is all there; the old scope (no `local_users`) reads.
    assert_eq!(db.head()?, 3);
    // Notes and the conflict about one reach only devices holding notes.
    let pulled = |notes: bool| -> Result<Vec<String>, ApiError> {
        Ok(db
            .pull(&scope(&[school], notes), 0, 100)?
            .changes
            .iter()
            .map(|c| c.change.entity.name().to_string())
            .collect())
    };
    assert_eq!(pulled(false)?, ["child"]);
    assert_eq!(pulled(true)?, ["child", "psych_note", "conflict"]);
    assert_eq!(db.schools()?.len(), 1);
    let devices = db.devices()?;
    assert_eq!(devices.len(), 1);
    assert!(!devices[0].scope.local_users);
    // And the new tables work.
    add(&mut db, "wang", Role::Teacher, NewUserScope::School(school))?;
    assert_eq!(db.users()?.len(), 1);
    drop(db);
    // Opening again runs nothing twice.
    let db = ServerDb::open(dir.path())?;
    assert_eq!(db.users()?.len(), 1);
    Ok(())
}

/// A database of schema 2 with a user (from before log-in keys) migrates: the
/// user keeps everything and has no log-in key until a reset makes one.
#[test]
fn a_version_2_database_with_users_migrates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (school, wang) = {
        let mut db = ServerDb::open(dir.path())?;
        let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
        let wang = add(&mut db, "wang", Role::Teacher, NewUserScope::School(school))?;
        (school, wang)
    };
    {
        // Back to schema 2: the columns of migration 3, the tables of
        // migrations 4 and 6 and the column of migration 5 did not exist.
        let conn = Connection::open(dir.path().join("shouhu-server.db"))?;
        conn.execute_batch(
            "DROP TRIGGER changes_no_update; DROP TRIGGER changes_no_delete;
             DROP INDEX changes_record;
             DROP TABLE reader_key;
             DROP TABLE device_scope_change;
             ALTER TABLE user DROP COLUMN password_change_key;
             ALTER TABLE user DROP COLUMN login_public_key;
             ALTER TABLE user DROP COLUMN login_secret_sealed;
             PRAGMA user_version = 2;",
        )?;
    }
    let mut db = ServerDb::open(dir.path())?;
    let v: i64 = db
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(v, SCHEMA_VERSION);
    let users = db.users_for_scope(&scope(&[school], false))?;
    assert_eq!(users.len(), 1);
    assert_eq!((users[0].id, users[0].login_name.as_str()), (wang, "wang"));
    assert!(users[0].password_hash.starts_with("$argon2id$"));
    assert_eq!(users[0].login_public_key, None);
    assert_eq!(users[0].login_secret_sealed, None);
    // A reset gives the old user a log-in key.
    db.reset_password("wang", Some("xinmima2026".into()))?;
    let users = db.users_for_scope(&scope(&[school], false))?;
    let key = shouhu_auth::SealedReaderKey::from_base64(
        users[0].login_public_key.as_deref().ok_or("no key")?,
        users[0].login_secret_sealed.as_deref().ok_or("no secret")?,
    )?;
    assert_eq!(key.open("xinmima2026")?.public(), key.public);
    Ok(())
}

/// `user add` and `reset-password` make a log-in key pair: its public half
/// and its secret sealed with the initial password travel in `UserRecord`,
/// never the password itself.
#[test]
fn users_carry_a_log_in_key_sealed_with_the_initial_password() -> TestResult {
    let County { mut db, a, .. } = county()?;
    let mut new = new_user("li", Role::Counselor, NewUserScope::School(a));
    new.password = Some("chushi2026".into());
    db.add_user(new)?;
    let generated = db.add_user(new_user("zhao", Role::Teacher, NewUserScope::School(a)))?;
    let generated_pw = generated.initial_password.ok_or("no password")?;
    let records = db.users_for_scope(&scope(&[a], false))?;
    let login_key =
        |r: &UserRecord| -> Result<shouhu_auth::SealedReaderKey, Box<dyn std::error::Error>> {
            Ok(shouhu_auth::SealedReaderKey::from_base64(
                r.login_public_key.as_deref().ok_or("no key")?,
                r.login_secret_sealed.as_deref().ok_or("no secret")?,
            )?)
        };
    let li = records.iter().find(|r| r.login_name == "li").ok_or("li")?;
    let zhao = records
        .iter()
        .find(|r| r.login_name == "zhao")
        .ok_or("zhao")?;
    let li_key = login_key(li)?;
    assert_eq!(li_key.open("chushi2026")?.public(), li_key.public);
    assert_eq!(
        li_key
            .open("chushi2027")
            .map(|p| p.public())
            .map_err(|e| e.code()),
        Err("auth.wrong_password")
    );
    let zhao_key = login_key(zhao)?;
    assert_eq!(zhao_key.open(&generated_pw)?.public(), zhao_key.public);
    assert_ne!(li_key.public, zhao_key.public);
    // Nothing that goes to devices holds a password.
    let wire = serde_json::to_string(&records)?;
    assert!(!wire.contains("chushi2026") && !wire.contains(&generated_pw));
    // A reset: a new log-in key, and the reader key of the old password is
    // cleared (its secret cannot open on the user's devices any more).
    let text = key_text()?;
    let (laptop, _) = device(&mut db, scope(&[a], true))?;
    db.set_reader_key(&scope(&[a], true), laptop, li.id, &text)?;
    db.reset_password("li", Some("chongzhi2026".into()))?;
    let after = db.users_for_scope(&scope(&[a], false))?;
    let li2 = after.iter().find(|r| r.login_name == "li").ok_or("li")?;
    let li2_key = login_key(li2)?;
    assert_ne!(li2_key.public, li_key.public);
    assert_eq!(li2_key.open("chongzhi2026")?.public(), li2_key.public);
    assert!(li2_key.open("chushi2026").is_err());
    assert_eq!(li2.reader_public_key, None);
    assert!(li2.reader_public_keys.is_empty());
    assert_ne!(li2.password_changed_at, li.password_changed_at);
    Ok(())
}

#[test]
fn a_database_from_a_newer_server_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    drop(ServerDb::open(dir.path())?);
    let conn = Connection::open(dir.path().join("shouhu-server.db"))?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)?;
    drop(conn);
    assert_eq!(
        ServerDb::open(dir.path()).err().map(|e| e.code()),
        Some("server.internal")
    );
    Ok(())
}

#[test]
fn users_are_created_checked_reset_and_removed() -> TestResult {
    let County { mut db, a, .. } = county()?;
    let made = db.add_user(new_user(
        "  Wang.Li ",
        Role::Teacher,
        NewUserScope::School(a),
    ))?;
    assert_eq!(made.user.login_name, "wang.li");
    assert!(made.user.must_change_password);
    let first = made.initial_password.clone().unwrap_or_default();
    assert!(first.len() >= 8, "a made password is given once");
    // Its hash verifies the password (what a device checks offline).
    let record = db
        .users_for_scope(&scope(&[a], false))?
        .into_iter()
        .find(|u| u.login_name == "wang.li")
        .ok_or("teacher not synced")?;
    shouhu_auth::password::verify_password(&first, &record.password_hash)?;

    // Taken logins (case-insensitive), bad scopes, bad roles, weak passwords.
    assert_eq!(
        code(db.add_user(new_user("WANG.LI", Role::Teacher, NewUserScope::School(a)))),
        "user.login_taken"
    );
    for (role, sc) in [
        (Role::Teacher, NewUserScope::County),
        (Role::Counselor, NewUserScope::Township("八步街道".into())),
        (Role::TownshipStaff, NewUserScope::School(a)),
        (Role::TownshipStaff, NewUserScope::Township("无此镇".into())),
        (Role::CountyAdmin, NewUserScope::School(a)),
        (
            Role::PsychSupervisor,
            NewUserScope::Township("八步街道".into()),
        ),
        (Role::Principal, NewUserScope::School(Uuid::now_v7())),
    ] {
        assert_eq!(
            code(db.add_user(new_user("someone", role, sc.clone()))),
            "user.scope_invalid",
            "{role:?} {sc:?}"
        );
    }
    assert_eq!(
        code(db.add_user(new_user("a b", Role::Teacher, NewUserScope::School(a)))),
        "user.login_invalid"
    );
    let mut weak = new_user("zhao", Role::Teacher, NewUserScope::School(a));
    weak.password = Some("short1".into());
    assert_eq!(code(db.add_user(weak)), "user.password_rejected");
    let mut given = new_user("zhao", Role::Teacher, NewUserScope::School(a));
    given.password = Some("shouhu2026".into());
    let zhao = db.add_user(given)?;
    assert_eq!(
        zhao.initial_password, None,
        "a given password is not echoed"
    );

    // The list never shows a hash.
    let listed = serde_json::to_string(&db.users()?)?;
    assert!(!listed.contains("argon2"), "{listed}");
    assert!(listed.contains("wang.li") && listed.contains("zhao"));

    // Reset: a new initial password, the old one stops working.
    let reset = db.reset_password("WANG.LI", None)?;
    let second = reset.initial_password.unwrap_or_default();
    assert_ne!(first, second);
    assert!(reset.user.must_change_password);
    let record = db
        .users_for_scope(&scope(&[a], false))?
        .into_iter()
        .find(|u| u.login_name == "wang.li")
        .ok_or("teacher not synced")?;
    shouhu_auth::password::verify_password(&second, &record.password_hash)?;
    assert!(shouhu_auth::password::verify_password(&first, &record.password_hash).is_err());
    assert_eq!(code(db.reset_password("nobody", None)), "user.not_found");

    // Removal keeps the row, marks it, and syncs down as removed.
    let removed = db.remove_user("wang.li")?;
    let at = removed.removed_at.clone().ok_or("no removed_at")?;
    assert_eq!(db.remove_user("wang.li")?.removed_at, Some(at), "kept");
    assert_eq!(db.users()?.len(), 2);
    assert!(db
        .users_for_scope(&scope(&[a], false))?
        .iter()
        .any(|u| u.login_name == "wang.li" && u.removed_at.is_some()));
    assert_eq!(code(db.reset_password("wang.li", None)), "user.removed");
    Ok(())
}

#[test]
fn a_device_gets_the_users_of_its_scope() -> TestResult {
    let County { mut db, a, b, far } = county()?;
    add(&mut db, "t_a", Role::Teacher, NewUserScope::School(a))?;
    add(&mut db, "c_a", Role::Counselor, NewUserScope::School(a))?;
    add(&mut db, "t_b", Role::Teacher, NewUserScope::School(b))?;
    add(&mut db, "t_far", Role::Teacher, NewUserScope::School(far))?;
    add(
        &mut db,
        "town",
        Role::TownshipStaff,
        NewUserScope::Township("八步街道".into()),
    )?;
    add(
        &mut db,
        "town_far",
        Role::TownshipStaff,
        NewUserScope::Township("龙场镇".into()),
    )?;
    add(&mut db, "admin", Role::CountyAdmin, NewUserScope::County)?;
    add(
        &mut db,
        "super",
        Role::PsychSupervisor,
        NewUserScope::County,
    )?;
    let logins = |users: Vec<UserRecord>| -> Vec<String> {
        users.into_iter().map(|u| u.login_name).collect()
    };
    assert_eq!(
        logins(db.users_for_scope(&scope(&[a], false))?),
        ["admin", "c_a", "super", "t_a", "town"]
    );
    assert_eq!(
        logins(db.users_for_scope(&scope(&[a, b], false))?),
        ["admin", "c_a", "super", "t_a", "t_b", "town"]
    );
    assert_eq!(
        logins(db.users_for_scope(&scope(&[far], false))?),
        ["admin", "super", "t_far", "town_far"]
    );
    let t_a = db
        .users_for_scope(&scope(&[a], false))?
        .into_iter()
        .find(|u| u.login_name == "t_a")
        .ok_or("missing")?;
    assert_eq!(t_a.role, "teacher");
    assert_eq!(
        t_a.scope,
        UserScope::School {
            school_id: a,
            township: "八步街道".into(),
            township_id: township_id("八步街道"),
        }
    );
    Ok(())
}

fn key_text() -> Result<String, Box<dyn std::error::Error>> {
    let key = shouhu_auth::ReaderKeyPair::generate()?.public();
    Ok(serde_json::to_value(key)?
        .as_str()
        .ok_or("not a string")?
        .to_string())
}

#[test]
fn reader_keys_only_for_readers_in_scope() -> TestResult {
    let County { mut db, a, far, .. } = county()?;
    let teacher = add(&mut db, "t_a", Role::Teacher, NewUserScope::School(a))?;
    let counselor = add(&mut db, "c_a", Role::Counselor, NewUserScope::School(a))?;
    let far_counselor = add(&mut db, "c_far", Role::Counselor, NewUserScope::School(far))?;
    let supervisor = add(
        &mut db,
        "super",
        Role::PsychSupervisor,
        NewUserScope::County,
    )?;
    let text = key_text()?;
    let notes = scope(&[a], true);
    let (dev, _) = device(&mut db, notes.clone())?;
    assert_eq!(
        code(db.set_reader_key(&notes, dev, teacher, &text)),
        "user.not_a_reader"
    );
    assert_eq!(
        code(db.set_reader_key(&notes, dev, far_counselor, &text)),
        "user.out_of_scope"
    );
    // A teacher's laptop (no notes) cannot register a counselor's key.
    assert_eq!(
        code(db.set_reader_key(&scope(&[a], false), dev, counselor, &text)),
        "user.out_of_scope"
    );
    assert_eq!(
        code(db.set_reader_key(&notes, dev, counselor, "AAAA")),
        "user.reader_key_invalid"
    );
    let r = db.set_reader_key(&notes, dev, counselor, &text)?;
    assert_eq!(r.reader_public_key.as_deref(), Some(text.as_str()));
    assert_eq!(r.reader_public_keys, std::slice::from_ref(&text));
    // Again: harmless.
    let r = db.set_reader_key(&notes, dev, counselor, &text)?;
    assert_eq!(r.reader_public_keys, std::slice::from_ref(&text));
    db.set_reader_key(&notes, dev, supervisor, &text)?;
    let synced = db.users_for_scope(&scope(&[a], false))?;
    let with_key: Vec<&str> = synced
        .iter()
        .filter(|u| u.reader_public_key.is_some())
        .map(|u| u.login_name.as_str())
        .collect();
    assert_eq!(with_key, ["c_a", "super"]);
    Ok(())
}

/// A counselor on two laptops: each laptop's key joins the set, both are
/// published (the old single field names the first); a laptop's new key
/// replaces its own only; a revoked laptop's key is no longer published; a
/// reset on the server clears them all.
#[test]
fn a_reader_has_one_key_per_device() -> TestResult {
    let County { mut db, a, .. } = county()?;
    let counselor = add(&mut db, "c_a", Role::Counselor, NewUserScope::School(a))?;
    let notes = scope(&[a], true);
    let (laptop_1, _) = device(&mut db, notes.clone())?;
    let (laptop_2, _) = device(&mut db, notes.clone())?;
    let (k1, k2, k2b) = (key_text()?, key_text()?, key_text()?);
    db.set_reader_key(&notes, laptop_1, counselor, &k1)?;
    let r = db.set_reader_key(&notes, laptop_2, counselor, &k2)?;
    assert_eq!(r.reader_public_keys, [k1.clone(), k2.clone()]);
    assert_eq!(r.reader_public_key.as_deref(), Some(k1.as_str()));
    // Laptop 2 registers laptop 1's key again (a copied keyring): no change.
    let r = db.set_reader_key(&notes, laptop_2, counselor, &k1)?;
    assert_eq!(r.reader_public_keys, [k1.clone(), k2.clone()]);
    // Laptop 2 made a new pair: it replaces laptop 2's key only.
    let r = db.set_reader_key(&notes, laptop_2, counselor, &k2b)?;
    assert_eq!(r.reader_public_keys, [k1.clone(), k2b.clone()]);
    let info = db.user("c_a")?;
    assert_eq!((info.has_reader_key, info.reader_keys), (true, 2));
    // What devices get.
    let wire = serde_json::to_value(&db.users_for_scope(&notes)?)?;
    assert_eq!(wire[0]["reader_public_keys"], json!([k1, k2b]));
    // A revoked laptop's key is left out of what devices get.
    db.revoke(laptop_1)?;
    let r = db
        .users_for_scope(&notes)?
        .into_iter()
        .find(|u| u.id == counselor)
        .ok_or("c_a")?;
    assert_eq!(r.reader_public_keys, std::slice::from_ref(&k2b));
    assert_eq!(r.reader_public_key.as_deref(), Some(k2b.as_str()));
    // A reset clears every key of the user.
    db.reset_password("c_a", None)?;
    let r = db
        .users_for_scope(&notes)?
        .into_iter()
        .find(|u| u.id == counselor)
        .ok_or("c_a")?;
    assert!(r.reader_public_keys.is_empty() && r.reader_public_key.is_none());
    // A user without keys leaves the list out of the wire form.
    assert!(serde_json::to_value(&r)?
        .get("reader_public_keys")
        .is_none());
    Ok(())
}

/// A database of schema 3 holding one reader key per user migrates: the key
/// becomes the user's first (of no device) and is still published.
#[test]
fn a_version_3_database_with_a_reader_key_migrates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let k = key_text()?;
    let (school, counselor) = {
        let mut db = ServerDb::open(dir.path())?;
        let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
        let c = add(
            &mut db,
            "c_a",
            Role::Counselor,
            NewUserScope::School(school),
        )?;
        (school, c)
    };
    {
        // Back to schema 3: no key table, the key in the user row.
        let conn = Connection::open(dir.path().join("shouhu-server.db"))?;
        conn.execute_batch(
            "DROP TRIGGER changes_no_update; DROP TRIGGER changes_no_delete;
             DROP INDEX changes_record;
             DROP TABLE reader_key;
             DROP TABLE device_scope_change;
             ALTER TABLE user DROP COLUMN password_change_key;
             PRAGMA user_version = 3;",
        )?;
        conn.execute(
            "UPDATE user SET reader_public_key = ?2 WHERE id = ?1",
            params![counselor.to_string(), k],
        )?;
    }
    let mut db = ServerDb::open(dir.path())?;
    let v: i64 = db
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(v, SCHEMA_VERSION);
    let notes = scope(&[school], true);
    let users = db.users_for_scope(&notes)?;
    assert_eq!(users[0].reader_public_keys, std::slice::from_ref(&k));
    assert_eq!(users[0].reader_public_key.as_deref(), Some(k.as_str()));
    // A device adds its own key beside it.
    let (laptop, _) = device(&mut db, notes.clone())?;
    let k2 = key_text()?;
    let r = db.set_reader_key(&notes, laptop, counselor, &k2)?;
    assert_eq!(r.reader_public_keys, [k, k2]);
    Ok(())
}

/// The role × action matrix, as the server holds pushes to it.
#[test]
fn pushes_are_held_to_the_roles() -> TestResult {
    let County { mut db, a, b, .. } = county()?;
    let teacher = add(&mut db, "t_a", Role::Teacher, NewUserScope::School(a))?;
    let counselor = add(&mut db, "c_a", Role::Counselor, NewUserScope::School(a))?;
    let principal = add(&mut db, "p_a", Role::Principal, NewUserScope::School(a))?;
    let teacher_b = add(&mut db, "t_b", Role::Teacher, NewUserScope::School(b))?;
    let town = add(
        &mut db,
        "town",
        Role::TownshipStaff,
        NewUserScope::Township("八步街道".into()),
    )?;
    let admin = add(&mut db, "admin", Role::CountyAdmin, NewUserScope::County)?;
    let supervisor = add(
        &mut db,
        "super",
        Role::PsychSupervisor,
        NewUserScope::County,
    )?;
    let now = now_ms();
    // (user, entity, school, accepted?)
    let cases = [
        (teacher, EntityKind::Child, a, true),
        (teacher, EntityKind::HomeVisit, a, true),
        (teacher, EntityKind::PsychNote, a, false),
        (counselor, EntityKind::PsychNote, a, true),
        (counselor, EntityKind::Child, a, true),
        (principal, EntityKind::Child, a, true),
        (principal, EntityKind::PsychNote, a, false),
        (teacher_b, EntityKind::Child, a, false),
        (teacher, EntityKind::Child, b, false),
        (town, EntityKind::Child, a, false),
        (admin, EntityKind::Child, a, false),
        (supervisor, EntityKind::PsychNote, a, false),
        (supervisor, EntityKind::Child, a, false),
    ];
    for (i, (user, entity, school, ok)) in cases.into_iter().enumerate() {
        // A fresh device (holding both schools and notes) per case, so only
        // the role decides.
        let sc = scope(&[a, b], true);
        let (dev, _) = device(&mut db, sc.clone())?;
        let before = db.head()?;
        let c = change(1, entity, school, user, now);
        let r = db.push(dev, &sc, &[c]);
        match (ok, r) {
            (true, Ok(p)) => assert_eq!(p.applied, 1, "case {i}"),
            (false, Err(ApiError::Forbidden { details })) => {
                assert_eq!(details["seq"], 1, "case {i}");
                assert_eq!(details["user_id"], json!(user));
                assert_eq!(details["entity"], entity.name());
                assert_eq!(details["school_id"], json!(school));
                assert_eq!(details["reason"], "role");
                assert_eq!(db.head()?, before, "nothing applied, case {i}");
            }
            (ok, r) => panic!("case {i}: expected ok={ok}, got {r:?}"),
        }
    }

    // One refused change refuses the whole batch.
    let sc = scope(&[a], true);
    let (dev, _) = device(&mut db, sc.clone())?;
    let before = db.head()?;
    let batch = [
        change(1, EntityKind::Child, a, teacher, now),
        change(2, EntityKind::PsychNote, a, teacher, now),
    ];
    assert_eq!(code(db.push(dev, &sc, &batch)), "push.forbidden");
    assert_eq!(db.head()?, before);
    // The device's counselor sends the note instead; the batch goes through.
    let batch = [
        batch[0].clone(),
        change(2, EntityKind::PsychNote, a, counselor, now),
    ];
    assert_eq!(db.push(dev, &sc, &batch)?.applied, 2);
    Ok(())
}

#[test]
fn notes_arrive_sealed_and_only_counselors_set_the_counseling_flag() -> TestResult {
    let County { mut db, a, .. } = county()?;
    let teacher = add(&mut db, "t_a", Role::Teacher, NewUserScope::School(a))?;
    let counselor = add(&mut db, "c_a", Role::Counselor, NewUserScope::School(a))?;
    let now = now_ms();
    let refused = |r: Result<shouhu_protocol::PushResponse, ApiError>| match r {
        Err(ApiError::Forbidden { details }) => details,
        other => panic!("expected push.forbidden, got {other:?}"),
    };
    // A note with its text in plain is refused even from a counselor, and
    // nothing of it is stored.
    let sc = scope(&[a], true);
    let (dev, _) = device(&mut db, sc.clone())?;
    let mut plain = change(1, EntityKind::PsychNote, a, counselor, now);
    plain.fields = json!({"child_id": Uuid::now_v7(), "session_date": "2026-11-20",
        "presenting_issue": "想念妈妈", "risk_level": "high"});
    let before = db.head()?;
    let d = refused(db.push(dev, &sc, std::slice::from_ref(&plain)));
    assert_eq!(d["reason"], "note_not_sealed");
    assert_eq!(
        d["fields"],
        json!(["presenting_issue", "risk_level", "sealed"])
    );
    assert_eq!(db.head()?, before);
    // An update that would put text beside the seal is refused too.
    let sealed = change(1, EntityKind::PsychNote, a, counselor, now);
    assert_eq!(db.push(dev, &sc, std::slice::from_ref(&sealed))?.applied, 1);
    let mut leak = change(2, EntityKind::PsychNote, a, counselor, now);
    leak.op = Op::Update;
    leak.record_id = sealed.record_id;
    leak.fields = json!({"intervention": "倾听"});
    assert_eq!(
        refused(db.push(dev, &sc, &[leak]))["reason"],
        "note_not_sealed"
    );

    // The counseling flag: a teacher may not raise it, on a new card or an
    // existing one; the counselor may; a teacher's other edits are fine.
    let sc = scope(&[a], false);
    let (dev, _) = device(&mut db, sc.clone())?;
    let mut flagged = change(1, EntityKind::Child, a, teacher, now);
    flagged.fields = json!({"name": "张三", "counseling": {"active": true, "alert": "urgent", "alert_text": "放学有人接"}});
    let d = refused(db.push(dev, &sc, std::slice::from_ref(&flagged)));
    assert_eq!(d["action"], "write_counseling_flag");
    let mut card = change(1, EntityKind::Child, a, teacher, now);
    card.fields = json!({"name": "张三", "counseling": {"active": false, "since": null, "alert": "none", "alert_text": ""}});
    assert_eq!(db.push(dev, &sc, std::slice::from_ref(&card))?.applied, 1);
    let mut raise = change(2, EntityKind::Child, a, teacher, now);
    raise.op = Op::Update;
    raise.record_id = card.record_id;
    raise.fields = json!({"counseling.active": true});
    let d = refused(db.push(dev, &sc, std::slice::from_ref(&raise)));
    assert_eq!(d["action"], "write_counseling_flag");
    raise.user_id = counselor;
    assert_eq!(db.push(dev, &sc, std::slice::from_ref(&raise))?.applied, 1);
    let mut grade = change(3, EntityKind::Child, a, teacher, now);
    grade.op = Op::Update;
    grade.record_id = card.record_id;
    grade.fields = json!({"grade": "四年级"});
    assert_eq!(db.push(dev, &sc, &[grade])?.applied, 1);
    Ok(())
}

/// A help plan's approval is a principal's act: a teacher's plan is taken,
/// but not one that comes approved, nor an update that sets, changes or
/// clears `approved_by` (`plan_approval`); the principal's is taken. The
/// raw push (what HTTP uses) holds to the same rule.
#[test]
fn only_a_principal_approves_a_plan() -> TestResult {
    let County { mut db, a, .. } = county()?;
    let teacher = add(&mut db, "t_a", Role::Teacher, NewUserScope::School(a))?;
    let counselor = add(&mut db, "c_a", Role::Counselor, NewUserScope::School(a))?;
    let principal = add(&mut db, "p_a", Role::Principal, NewUserScope::School(a))?;
    let now = now_ms();
    let sc = scope(&[a], false);
    let (dev, _) = device(&mut db, sc.clone())?;
    let refused = |r: Result<shouhu_protocol::PushResponse, ApiError>| match r {
        Err(ApiError::Forbidden { details }) => details,
        other => panic!("expected push.forbidden, got {other:?}"),
    };
    let plan = |seq: i64, user: Uuid, approved: Value| {
        let mut c = change(seq, EntityKind::HelpPlan, a, user, now);
        c.fields = json!({"household_id": Uuid::now_v7(), "school_id": a,
            "needs": ["学习辅导"], "measures": [{"kind": "tutoring",
            "description": "每周两次", "responsible": "王老师"}],
            "approved_by": approved});
        c
    };
    let before = db.head()?;
    let d = refused(db.push(dev, &sc, &[plan(1, teacher, json!("王校长"))]));
    assert_eq!(
        (d["reason"].as_str(), d["action"].as_str()),
        (Some("plan_approval"), Some("approve_plan"))
    );
    let raw: Vec<shouhu_protocol::ChangeRaw> = vec![serde_json::from_str(&serde_json::to_string(
        &plan(1, counselor, json!("王校长")),
    )?)?];
    let d = match db.push_raw(dev, &sc, &raw) {
        Err(ApiError::Forbidden { details }) => details,
        other => panic!("expected push.forbidden, got {other:?}"),
    };
    assert_eq!(d["reason"], "plan_approval");
    assert_eq!(db.head()?, before);
    // Not approved (none, or blank): a teacher's plan is taken.
    let draft = plan(1, teacher, Value::Null);
    assert_eq!(db.push(dev, &sc, std::slice::from_ref(&draft))?.applied, 1);
    assert_eq!(
        db.push(dev, &sc, &[plan(2, teacher, json!("  "))])?.applied,
        1
    );
    let update = |seq: i64, user: Uuid, fields: Value| {
        let mut c = change(seq, EntityKind::HelpPlan, a, user, now);
        c.op = Op::Update;
        c.record_id = draft.record_id;
        c.fields = fields;
        c
    };
    // The teacher revises the measures: fine; approves it: refused.
    assert_eq!(
        db.push(
            dev,
            &sc,
            &[update(3, teacher, json!({"review_date": "2026-12-20"}))]
        )?
        .applied,
        1
    );
    let d = refused(db.push(
        dev,
        &sc,
        &[update(4, teacher, json!({"approved_by": "李老师"}))],
    ));
    assert_eq!(d["reason"], "plan_approval");
    // The principal approves; a teacher cannot take the approval away.
    assert_eq!(
        db.push(
            dev,
            &sc,
            &[update(4, principal, json!({"approved_by": "王校长"}))]
        )?
        .applied,
        1
    );
    let d = refused(db.push(
        dev,
        &sc,
        &[update(5, teacher, json!({"approved_by": null}))],
    ));
    assert_eq!(d["reason"], "plan_approval");
    // A principal's approved plan, created approved.
    assert_eq!(
        db.push(dev, &sc, &[plan(5, principal, json!("王校长"))])?
            .applied,
        1
    );
    Ok(())
}

#[test]
fn a_removed_users_earlier_work_is_kept_and_later_refused() -> TestResult {
    let County { mut db, a, .. } = county()?;
    let teacher = add(&mut db, "t_a", Role::Teacher, NewUserScope::School(a))?;
    let sc = scope(&[a], false);
    let (dev, _) = device(&mut db, sc.clone())?;
    let before_removal = now_ms() - 60_000;
    db.remove_user("t_a")?;
    let after_removal = now_ms() + 60_000;
    let early = change(1, EntityKind::Child, a, teacher, before_removal);
    assert_eq!(db.push(dev, &sc, std::slice::from_ref(&early))?.applied, 1);
    let late = change(2, EntityKind::Child, a, teacher, after_removal);
    match db.push(dev, &sc, &[early, late]) {
        Err(ApiError::Forbidden { details }) => {
            assert_eq!(details["reason"], "user_removed");
            assert_eq!(details["seq"], 2);
        }
        r => panic!("expected push.forbidden, got {r:?}"),
    }
    Ok(())
}

#[test]
fn unknown_users_need_a_local_users_device() -> TestResult {
    let County { mut db, a, .. } = county()?;
    let stranger = Uuid::now_v7();
    let sc = scope(&[a], false);
    let (dev, _) = device(&mut db, sc.clone())?;
    let c = change(1, EntityKind::Child, a, stranger, now_ms());
    match db.push(dev, &sc, std::slice::from_ref(&c)) {
        Err(e @ ApiError::UnknownUser { .. }) => {
            assert_eq!(e.code(), "push.unknown_user");
            assert_eq!(e.body().details["user_id"], json!(stranger));
        }
        r => panic!("expected push.unknown_user, got {r:?}"),
    }
    let local = Scope {
        local_users: true,
        ..sc
    };
    let (dev, _) = device(&mut db, local.clone())?;
    assert_eq!(db.push(dev, &local, &[c])?.applied, 1);
    // Known users are still held to their roles on such a device.
    let teacher = add(&mut db, "t_a", Role::Teacher, NewUserScope::School(a))?;
    let note = change(2, EntityKind::PsychNote, a, teacher, now_ms());
    let notes = Scope {
        notes: true,
        ..local
    };
    assert_eq!(code(db.push(dev, &notes, &[note])), "push.forbidden");
    Ok(())
}

async fn call(
    state: &AppState,
    req: Request<Body>,
) -> Result<(StatusCode, Value), Box<dyn std::error::Error>> {
    let res = app(state.clone()).oneshot(req).await?;
    let status = res.status();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

fn authed(
    method: &str,
    uri: &str,
    token: &str,
    body: Value,
) -> Result<Request<Body>, axum::http::Error> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("shouhu-protocol", "1")
        .header("content-type", "application/json")
        .body(if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        })
}

/// A teacher's device pulls neither notes nor another school's records,
/// and gets its users over HTTP.
#[tokio::test]
async fn a_teacher_device_gets_its_school_only() -> TestResult {
    let County { mut db, a, b, .. } = county()?;
    let teacher = add(&mut db, "t_a", Role::Teacher, NewUserScope::School(a))?;
    let counselor = add(&mut db, "c_a", Role::Counselor, NewUserScope::School(a))?;
    let teacher_b = add(&mut db, "t_b", Role::Teacher, NewUserScope::School(b))?;
    let (counselor_dev, _) = device(&mut db, scope(&[a], true))?;
    let (b_dev, _) = device(&mut db, scope(&[b], false))?;
    let (_, token) = device(&mut db, scope(&[a], false))?;
    let now = now_ms();
    db.push(
        counselor_dev,
        &scope(&[a], true),
        &[
            change(1, EntityKind::Child, a, teacher, now),
            change(2, EntityKind::PsychNote, a, counselor, now),
        ],
    )?;
    db.push(
        b_dev,
        &scope(&[b], false),
        &[change(1, EntityKind::Child, b, teacher_b, now)],
    )?;
    // Two counselors edit one note concurrently: the conflict record
    // carries note text, so it is for notes devices only.
    let counselor2 = add(&mut db, "c2_a", Role::Counselor, NewUserScope::School(a))?;
    let (counselor_dev2, _) = device(&mut db, scope(&[a], true))?;
    let note = db
        .pull(&scope(&[a], true), 0, 100)?
        .changes
        .iter()
        .find(|c| c.change.entity == EntityKind::PsychNote)
        .map(|c| (c.change.record_id, c.server_seq))
        .ok_or("no note")?;
    let edit = |seq: i64, user: Uuid, text: &str| Change {
        seq,
        change_id: Uuid::now_v7(),
        hlc: now << 16,
        entity: EntityKind::PsychNote,
        record_id: note.0,
        school_id: Some(a),
        op: Op::Update,
        fields: json!({ "text": text }),
        base_version: note.1,
        user_id: user,
        resolves: None,
    };
    db.push(
        counselor_dev,
        &scope(&[a], true),
        &[edit(3, counselor, "第一位老师的记录")],
    )?;
    let r = db.push(
        counselor_dev2,
        &scope(&[a], true),
        &[edit(1, counselor2, "第二位老师的记录")],
    )?;
    assert_eq!(r.conflicts, 1);
    let for_notes = db.pull(&scope(&[a], true), 0, 100)?;
    assert!(for_notes
        .changes
        .iter()
        .any(|c| c.change.entity == EntityKind::Conflict));

    let state = AppState::new(db);
    let (s, v) = call(
        &state,
        authed("GET", "/v1/pull?after=0", &token, Value::Null)?,
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{v}");
    let changes = v["changes"].as_array().ok_or("no changes")?;
    let entities: Vec<&str> = changes
        .iter()
        .filter_map(|c| c["entity"].as_str())
        .collect();
    assert_eq!(entities, ["school", "child"], "{v}");
    assert!(!v.to_string().contains("老师的记录"), "{v}");
    assert!(changes.iter().all(|c| c["school_id"] == json!(a)));

    let (s, v) = call(&state, authed("GET", "/v1/users", &token, Value::Null)?).await?;
    assert_eq!(s, StatusCode::OK, "{v}");
    let logins: Vec<&str> = v["users"]
        .as_array()
        .ok_or("no users")?
        .iter()
        .filter_map(|u| u["login_name"].as_str())
        .collect();
    assert_eq!(logins, ["c2_a", "c_a", "t_a"]);
    let (s, _) = call(&state, authed("GET", "/v1/users", "wrong", Value::Null)?).await?;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Registering a key from a device without notes: refused, coded.
    let key = serde_json::to_value(shouhu_auth::ReaderKeyPair::generate()?.public())?;
    let (s, v) = call(
        &state,
        authed(
            "POST",
            &format!("/v1/users/{counselor}/reader-key"),
            &token,
            json!({"protocol": 1, "public_key": key}),
        )?,
    )
    .await?;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("user.out_of_scope"))
    );
    let (s, v) = call(
        &state,
        authed(
            "POST",
            &format!("/v1/users/{teacher}/reader-key"),
            &token,
            json!({"protocol": 1, "public_key": key}),
        )?,
    )
    .await?;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("user.not_a_reader"))
    );
    Ok(())
}

fn entry(device: Uuid, user: Uuid, action: &str, school: Option<Uuid>, at: &str) -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        at: at.into(),
        device_id: device,
        user_id: user,
        action: action.into(),
        entity: school.map(|_| "child".to_string()),
        record_id: school.map(|_| Uuid::now_v7()),
        school_id: school,
        details: json!({"note": "查看"}),
    }
}

#[tokio::test]
async fn audit_uploads_are_idempotent_flagged_and_append_only() -> TestResult {
    let County { mut db, a, far, .. } = county()?;
    let teacher = add(&mut db, "t_a", Role::Teacher, NewUserScope::School(a))?;
    let far_teacher = add(&mut db, "t_far", Role::Teacher, NewUserScope::School(far))?;
    let (dev, token) = device(&mut db, scope(&[a], false))?;
    let entries = vec![
        entry(dev, teacher, "login", None, "2026-11-01T08:00:00.000Z"),
        entry(dev, teacher, "view_child", Some(a), "2026-11-01T08:01:00Z"),
        entry(dev, teacher, "export", Some(a), "2026-11-02T09:00:00+08:00"),
        entry(dev, far_teacher, "login", None, "2026-11-03T08:00:00Z"),
        entry(
            dev,
            Uuid::now_v7(),
            "login_failed",
            None,
            "2026-11-03T09:00:00Z",
        ),
        entry(
            dev,
            teacher,
            "view_child",
            Some(far),
            "2026-11-03T10:00:00Z",
        ),
    ];
    let state = AppState::new(db);
    let upload = json!({"protocol": 1, "entries": entries});
    let (s, v) = call(&state, authed("POST", "/v1/audit", &token, upload.clone())?).await?;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"stored": 6, "duplicates": 0, "flagged": 3}));
    // A retry after a lost answer stores nothing twice.
    let (s, v) = call(&state, authed("POST", "/v1/audit", &token, upload)?).await?;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"stored": 0, "duplicates": 6, "flagged": 0}));
    let (s, _) = call(
        &state,
        authed(
            "POST",
            "/v1/audit",
            "wrong",
            json!({"protocol": 1, "entries": []}),
        )?,
    )
    .await?;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let t = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>();
    let (nov2, nov1_0801, nov3_0800) = (
        t("2026-11-02T00:00:00Z")?,
        t("2026-11-01T08:01:00Z")?,
        t("2026-11-03T08:00:00Z")?,
    );
    state
        .with_db(move |db| {
            let all = db.audit_entries(&AuditQuery::default())?;
            assert_eq!(all.len(), 6);
            let flags: Vec<Option<&str>> = all.iter().map(|r| r.flag.as_deref()).collect();
            assert_eq!(
                flags,
                [
                    None,
                    None,
                    None,
                    Some("user_out_of_scope"),
                    Some("user_unknown"),
                    Some("school_out_of_scope")
                ]
            );
            // Times are normalised to UTC: the +08:00 export is at 01:00Z.
            assert_eq!(all[2].at, "2026-11-02T01:00:00.000Z");
            assert_eq!(all[0].login_name.as_deref(), Some("t_a"));

            // The triggers refuse edits and deletions, even in raw SQL.
            let conn = db.connection();
            for sql in [
                "UPDATE audit SET action = 'nothing'",
                "UPDATE audit SET flag = NULL WHERE flag IS NOT NULL",
                "DELETE FROM audit",
                "DELETE FROM audit WHERE action = 'export'",
            ] {
                let e = conn.execute(sql, []).map_err(|e| e.to_string());
                assert!(
                    matches!(&e, Err(m) if m.contains("append-only")),
                    "{sql}: {e:?}"
                );
            }
            assert_eq!(db.audit_entries(&AuditQuery::default())?, all);

            // Filters.
            let q = |q: AuditQuery| -> Result<Vec<String>, ApiError> {
                Ok(db
                    .audit_entries(&q)?
                    .into_iter()
                    .map(|r| r.action)
                    .collect())
            };
            assert_eq!(
                q(AuditQuery {
                    user: Some("T_A".into()),
                    ..Default::default()
                })?,
                ["login", "view_child", "export", "view_child"]
            );
            assert_eq!(
                q(AuditQuery {
                    user: Some(far_teacher.to_string()),
                    ..Default::default()
                })?,
                ["login"]
            );
            assert_eq!(
                q(AuditQuery {
                    action: Some("view_child".into()),
                    since: Some(nov2),
                    ..Default::default()
                })?,
                ["view_child"]
            );
            assert_eq!(
                q(AuditQuery {
                    since: Some(nov1_0801),
                    until: Some(nov3_0800),
                    ..Default::default()
                })?,
                ["view_child", "export"]
            );
            let target = all[1].target_id.clone();
            assert_eq!(
                q(AuditQuery {
                    target: target.clone(),
                    ..Default::default()
                })?,
                ["view_child"]
            );
            assert_eq!(
                q(AuditQuery {
                    target: Some("child".into()),
                    ..Default::default()
                })?
                .len(),
                3
            );
            assert_eq!(
                q(AuditQuery {
                    device: Some(dev),
                    ..Default::default()
                })?
                .len(),
                6
            );
            assert_eq!(
                q(AuditQuery {
                    device: Some(Uuid::now_v7()),
                    ..Default::default()
                })?
                .len(),
                0
            );
            assert_eq!(
                code(db.audit_entries(&AuditQuery {
                    user: Some("nobody".into()),
                    ..Default::default()
                })),
                "user.not_found"
            );
            let csv = audit_csv(&all);
            assert_eq!(csv.lines().count(), 7);
            assert!(csv
                .lines()
                .next()
                .unwrap_or_default()
                .starts_with("entry_id,at,"));
            // The JSON details contain commas and quotes: quoted.
            assert!(csv.contains(r#""{""note"":""查看""}""#), "{csv}");
            Ok(())
        })
        .await?;
    Ok(())
}

#[test]
fn the_audit_table_refuses_edits_after_a_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut db = ServerDb::open(dir.path())?;
    let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
    let (dev, _) = device(&mut db, scope(&[school], false))?;
    db.store_audit(
        dev,
        &scope(&[school], false),
        &[entry(
            dev,
            Uuid::now_v7(),
            "login",
            None,
            "2026-11-01T08:00:00Z",
        )],
    )?;
    drop(db);
    let conn = Connection::open(dir.path().join("shouhu-server.db"))?;
    assert!(conn
        .execute(
            "UPDATE audit SET user_id = ?1",
            params![Uuid::nil().to_string()]
        )
        .is_err());
    assert!(conn.execute("DELETE FROM audit", []).is_err());
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))?;
    assert_eq!(n, 1);
    Ok(())
}

const FAST: shouhu_auth::password::KdfParams = shouhu_auth::password::KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

/// What a laptop sends after the user changed `old` to `new`: the hash, the
/// log-in secret re-sealed, the proof made with the opened log-in key.
fn password_change(
    record: &UserRecord,
    old: &str,
    new: &str,
) -> Result<shouhu_protocol::PasswordChangeRequest, Box<dyn std::error::Error>> {
    let sealed = shouhu_auth::SealedReaderKey::from_base64(
        record.login_public_key.as_deref().ok_or("no key")?,
        record.login_secret_sealed.as_deref().ok_or("no secret")?,
    )?;
    let pair = sealed.open(old)?;
    let (_, resealed) = shouhu_auth::SealedReaderKey::seal(&pair, new, FAST)?.to_base64();
    let hash = shouhu_auth::password::hash_password(new, FAST)?;
    let proof = shouhu_auth::credential::proof(
        &shouhu_auth::credential::change_key(&pair),
        record.id,
        &record.password_changed_at,
        &hash,
        &resealed,
    )?;
    Ok(shouhu_protocol::PasswordChangeRequest {
        protocol: 1,
        based_on: record.password_changed_at.clone(),
        password_hash: hash,
        login_secret_sealed: resealed,
        proof,
    })
}

/// A password changed on a laptop: taken with a proof made from the log-in
/// secret (the same key pair, re-sealed), never without one or for a user
/// outside the device's scope; the server's newer credential wins over a
/// late change; a user from before change keys cannot.
#[test]
fn a_password_changed_on_a_device_reaches_the_server() -> TestResult {
    let County { mut db, a, far, .. } = county()?;
    let mut new = new_user("li", Role::Teacher, NewUserScope::School(a));
    new.password = Some("chushi2026".into());
    let li = db.add_user(new)?.user.id;
    let notes = scope(&[a], true);
    let record = |db: &ServerDb| -> Result<UserRecord, Box<dyn std::error::Error>> {
        Ok(db
            .users_for_scope(&scope(&[a], false))?
            .into_iter()
            .find(|u| u.id == li)
            .ok_or("li")?)
    };
    let before = record(&db)?;
    let req = password_change(&before, "chushi2026", "wode2026li")?;

    // Without the log-in secret: a proof made with another key, or the
    // right proof over another hash, is refused; nothing changes.
    let mut forged = req.clone();
    forged.proof = shouhu_auth::credential::proof(
        &shouhu_auth::credential::change_key(&shouhu_auth::ReaderKeyPair::generate()?),
        li,
        &req.based_on,
        &req.password_hash,
        &req.login_secret_sealed,
    )?;
    assert_eq!(
        code(db.change_password_from_device(&notes, li, &forged)),
        "user.password_proof_invalid"
    );
    let mut swapped = req.clone();
    swapped.password_hash = shouhu_auth::password::hash_password("attacker2026", FAST)?;
    assert_eq!(
        code(db.change_password_from_device(&notes, li, &swapped)),
        "user.password_proof_invalid"
    );
    // A device of another school.
    assert_eq!(
        code(db.change_password_from_device(&scope(&[far], true), li, &req)),
        "user.out_of_scope"
    );
    assert_eq!(record(&db)?, before);

    // The holder's change: the new hash and sealed secret, the same pair.
    let after = db.change_password_from_device(&notes, li, &req)?;
    assert_eq!(after.password_hash, req.password_hash);
    assert_eq!(after.login_public_key, before.login_public_key);
    assert!(!after.must_change_password);
    assert_ne!(after.password_changed_at, before.password_changed_at);
    let key = shouhu_auth::SealedReaderKey::from_base64(
        after.login_public_key.as_deref().ok_or("key")?,
        after.login_secret_sealed.as_deref().ok_or("secret")?,
    )?;
    assert_eq!(key.open("wode2026li")?.public(), key.public);
    assert!(key.open("chushi2026").is_err());
    shouhu_auth::password::verify_password("wode2026li", &after.password_hash)?;
    // The same request again (a resend, or a replay): stale.
    assert_eq!(
        code(db.change_password_from_device(&notes, li, &req)),
        "user.password_stale"
    );

    // A change made on a laptop, then an admin's reset reaching the server
    // first: the reset stays, the late change is stale.
    let late = password_change(&after, "wode2026li", "zaici2026li")?;
    db.reset_password("li", Some("chongzhi2026".into()))?;
    assert_eq!(
        code(db.change_password_from_device(&notes, li, &late)),
        "user.password_stale"
    );
    let reset = record(&db)?;
    assert!(reset.must_change_password);
    shouhu_auth::password::verify_password("chongzhi2026", &reset.password_hash)?;
    // The new key pair after the reset takes changes again.
    let again = password_change(&reset, "chongzhi2026", "zaici2026li")?;
    db.change_password_from_device(&notes, li, &again)?;

    // Not an Argon2id hash: refused even with a good proof.
    let now = record(&db)?;
    let mut weak = password_change(&now, "zaici2026li", "disan2026li")?;
    weak.password_hash = "plain".into();
    weak.proof = {
        let sealed = shouhu_auth::SealedReaderKey::from_base64(
            now.login_public_key.as_deref().ok_or("key")?,
            now.login_secret_sealed.as_deref().ok_or("secret")?,
        )?;
        shouhu_auth::credential::proof(
            &shouhu_auth::credential::change_key(&sealed.open("zaici2026li")?),
            li,
            &weak.based_on,
            &weak.password_hash,
            &weak.login_secret_sealed,
        )?
    };
    assert_eq!(
        code(db.change_password_from_device(&notes, li, &weak)),
        "request.invalid"
    );

    // A removed user: refused.
    let ok = password_change(&now, "zaici2026li", "disan2026li")?;
    db.remove_user("li")?;
    assert_eq!(
        code(db.change_password_from_device(&notes, li, &ok)),
        "user.removed"
    );
    Ok(())
}

/// A user whose log-in key predates change keys (schema 4) cannot change
/// their password from a device until an administrator resets it once.
#[test]
fn a_user_from_before_change_keys_needs_a_reset_first() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (school, wang) = {
        let mut db = ServerDb::open(dir.path())?;
        let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
        let mut new = new_user("wang", Role::Teacher, NewUserScope::School(school));
        new.password = Some("chushi2026".into());
        let wang = db.add_user(new)?.user.id;
        (school, wang)
    };
    {
        let conn = Connection::open(dir.path().join("shouhu-server.db"))?;
        conn.execute_batch(
            "DROP TRIGGER changes_no_update; DROP TRIGGER changes_no_delete;
             DROP INDEX changes_record;
             DROP TABLE device_scope_change;
             ALTER TABLE user DROP COLUMN password_change_key;
             PRAGMA user_version = 4;",
        )?;
    }
    let mut db = ServerDb::open(dir.path())?;
    let v: i64 = db
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(v, SCHEMA_VERSION);
    let notes = scope(&[school], true);
    let rec = db.users_for_scope(&notes)?.remove(0);
    let req = password_change(&rec, "chushi2026", "wode2026wang")?;
    assert_eq!(
        code(db.change_password_from_device(&notes, wang, &req)),
        "user.password_change_unavailable"
    );
    db.reset_password("wang", Some("chongzhi2026".into()))?;
    let rec = db.users_for_scope(&notes)?.remove(0);
    let req = password_change(&rec, "chongzhi2026", "wode2026wang")?;
    db.change_password_from_device(&notes, wang, &req)?;
    Ok(())
}

//! kill -9 of the real server process in the middle of a push, and of a client
//! process in the middle of a pull: after a restart and another sync, nothing
//! is lost and nothing is duplicated.
//!
//! The processes killed are this test binary re-executed in a child role
//! (`SHOUHU_CRASH_ROLE=server|client`): a real process with its own SQLite
//! connections, killed with SIGKILL, nothing flushed on the way out.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use shouhu_core::*;
use shouhu_protocol::Scope;
use shouhu_server::{AppState, ServerDb};
use shouhu_store::Store;
use shouhu_sync::{CancelToken, SyncOptions};
use uuid::Uuid;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default()
}

/// The child roles. Every test calls this first; in the parent it does nothing.
fn child_role() -> Res<bool> {
    let Ok(role) = std::env::var("SHOUHU_CRASH_ROLE") else {
        return Ok(false);
    };
    let rt = tokio::runtime::Runtime::new()?;
    match role.as_str() {
        "server" => {
            let data = PathBuf::from(std::env::var("SHOUHU_CRASH_DATA")?);
            let port: u16 = std::env::var("SHOUHU_CRASH_PORT")
                .unwrap_or_default()
                .parse()
                .unwrap_or(0);
            rt.block_on(async move {
                let db = ServerDb::open(&data)?;
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
                println!("listening on {}", listener.local_addr()?);
                shouhu_server::run(listener, AppState::new(db), std::future::pending()).await?;
                Ok::<_, Box<dyn std::error::Error>>(())
            })?;
        }
        "client" => {
            let db = PathBuf::from(std::env::var("SHOUHU_CRASH_DATA")?);
            rt.block_on(async move {
                let mut s = Store::open(&db)?;
                let opts = SyncOptions {
                    pull_page: 7,
                    ..Default::default()
                };
                shouhu_sync::sync(&mut s, &opts, &mut |_| {}, &CancelToken::new()).await?;
                Ok::<_, Box<dyn std::error::Error>>(())
            })?;
        }
        other => return Err(format!("unknown role {other}").into()),
    }
    Ok(true)
}

fn spawn_role(test: &str, role: &str, data: &Path, port: u16) -> Res<Child> {
    Ok(Command::new(std::env::current_exe()?)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("SHOUHU_CRASH_ROLE", role)
        .env("SHOUHU_CRASH_DATA", data)
        .env("SHOUHU_CRASH_PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?)
}

/// Start the server process; returns it and its address.
fn start_server(test: &str, data: &Path, port: u16) -> Res<(Child, String)> {
    let mut child = spawn_role(test, "server", data, port)?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(out).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(line) = lines.next() else { break };
        // libtest prints "test name ... " before the child's own output.
        let line = line?;
        if let Some((_, addr)) = line.split_once("listening on ") {
            return Ok((child, format!("http://{}", addr.trim())));
        }
    }
    let _ = child.kill();
    Err("the server process did not start".into())
}

fn kill9(child: &mut Child) -> Res<()> {
    // Child::kill sends SIGKILL on Unix.
    child.kill()?;
    child.wait()?;
    Ok(())
}

fn setup_server(data: &Path) -> Res<(Uuid, Vec<String>)> {
    let mut db = ServerDb::open(data)?;
    let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
    let scope = Scope {
        schools: vec![school],
        notes: false,
        local_users: true,
    };
    let codes = vec![
        db.create_enrollment(&scope, 1)?,
        db.create_enrollment(&scope, 1)?,
    ];
    Ok((school, codes))
}

fn fill(s: &mut Store, school: Uuid, n: usize) -> Res<()> {
    s.write(|w| {
        for i in 0..n {
            let c = w.create(ChildCard {
                name: format!("张{i}"),
                gender: Some(Gender::Male),
                birth_date: NaiveDate::from_ymd_opt(2015, 1, 1),
                school_id: Some(school),
                ..Default::default()
            })?;
            w.create(HomeVisit {
                child_id: Some(c.id()),
                visit_date: Some(today()),
                visitors: vec!["刘老师".into()],
                ..Default::default()
            })?;
        }
        Ok(())
    })?;
    Ok(())
}

fn server_counts(data: &Path) -> Res<(i64, i64)> {
    let c = rusqlite::Connection::open(data.join("shouhu-server.db"))?;
    let total: i64 = c.query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))?;
    let distinct: i64 = c.query_row("SELECT COUNT(DISTINCT change_id) FROM changes", [], |r| {
        r.get(0)
    })?;
    Ok((total, distinct))
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[test]
fn kill_9_of_the_server_during_a_push() -> Res<()> {
    if child_role()? {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let (school, codes) = setup_server(&data)?;
    let port = free_port()?;
    let (mut server, url) = start_server("kill_9_of_the_server_during_a_push", &data, port)?;
    let rt = tokio::runtime::Runtime::new()?;
    let mut s = Store::open(dir.path().join("device.db"))?;
    s.set_today(Some(today()));
    rt.block_on(shouhu_sync::enroll(&mut s, &url, &codes[0], None, "laptop"))?;
    // The first sync brings the school record.
    rt.block_on(shouhu_sync::sync(
        &mut s,
        &SyncOptions::default(),
        &mut |_| {},
        &CancelToken::new(),
    ))?;
    fill(&mut s, school, 1500)?;
    let total = s.last_seq();
    // Push in small batches; kill the server once some of them are in.
    let path = dir.path().join("device.db");
    let watcher = std::thread::spawn({
        let data = data.clone();
        move || -> Result<bool, String> {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut started = false;
            while Instant::now() < deadline {
                if server_counts(&data).map(|(n, _)| n > 200).unwrap_or(false) {
                    started = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            kill9(&mut server).map_err(|e| e.to_string())?;
            Ok(started)
        }
    });
    let opts = SyncOptions {
        push_batch: 20,
        max_retries: 1,
        backoff_base: Duration::from_millis(10),
        ..Default::default()
    };
    let first = rt.block_on(shouhu_sync::sync(
        &mut s,
        &opts,
        &mut |_| {},
        &CancelToken::new(),
    ));
    let started = watcher.join().map_err(|_| "watcher panicked")??;
    assert!(started, "the push got going before the kill");
    assert!(first.is_err(), "the server died mid-push");
    assert!(s.pending_count()? > 0, "some entries were not acknowledged");
    drop(s);
    // Restart on the same port and data; sync again.
    let (mut server, url2) = start_server("kill_9_of_the_server_during_a_push", &data, port)?;
    assert_eq!(url, url2);
    let mut s = Store::open(&path)?;
    rt.block_on(shouhu_sync::sync(
        &mut s,
        &SyncOptions::default(),
        &mut |_| {},
        &CancelToken::new(),
    ))?;
    assert_eq!(s.pending_count()?, 0);
    kill9(&mut server)?;
    let (n, distinct) = server_counts(&data)?;
    // The school record (server-made) plus every device change, once each.
    assert_eq!(n, distinct, "nothing duplicated");
    assert_eq!(n, total + 1, "nothing lost");
    Ok(())
}

#[test]
fn kill_9_of_a_client_during_a_pull() -> Res<()> {
    if child_role()? {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let (school, codes) = setup_server(&data)?;
    let port = free_port()?;
    let (mut server, url) = start_server("kill_9_of_a_client_during_a_pull", &data, port)?;
    let rt = tokio::runtime::Runtime::new()?;
    // Device A fills the server.
    let mut a = Store::open(dir.path().join("a.db"))?;
    a.set_today(Some(today()));
    rt.block_on(shouhu_sync::enroll(
        &mut a, &url, &codes[0], None, "laptop-a",
    ))?;
    rt.block_on(shouhu_sync::sync(
        &mut a,
        &SyncOptions::default(),
        &mut |_| {},
        &CancelToken::new(),
    ))?;
    fill(&mut a, school, 1500)?;
    rt.block_on(shouhu_sync::sync(
        &mut a,
        &SyncOptions::default(),
        &mut |_| {},
        &CancelToken::new(),
    ))?;
    // Device B enrolls here, then pulls in a child process that is killed.
    let b_path = dir.path().join("b.db");
    {
        let mut b = Store::open(&b_path)?;
        rt.block_on(shouhu_sync::enroll(
            &mut b, &url, &codes[1], None, "laptop-b",
        ))?;
    }
    let mut client = spawn_role("kill_9_of_a_client_during_a_pull", "client", &b_path, 0)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let cursor = |p: &Path| -> i64 {
        rusqlite::Connection::open(p)
            .and_then(|c| {
                c.query_row(
                    "SELECT value FROM meta WHERE key = 'pull_cursor'",
                    [],
                    |r| r.get::<_, String>(0),
                )
            })
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    while cursor(&b_path) < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    kill9(&mut client)?;
    let at_kill = cursor(&b_path);
    assert!(
        at_kill > 0 && at_kill < a.last_seq(),
        "killed mid-pull (cursor {at_kill})"
    );
    // B restarts and syncs.
    let mut b = Store::open(&b_path)?;
    rt.block_on(shouhu_sync::sync(
        &mut b,
        &SyncOptions::default(),
        &mut |_| {},
        &CancelToken::new(),
    ))?;
    kill9(&mut server)?;
    assert_eq!(b.count(EntityKind::Child)?, 1500);
    assert_eq!(b.count(EntityKind::HomeVisit)?, 1500);
    let dup: i64 = b.connection().query_row(
        "SELECT COUNT(*) - COUNT(DISTINCT change_id) FROM change_log",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(dup, 0, "nothing duplicated");
    let pulled: i64 = b.connection().query_row(
        "SELECT COUNT(*) FROM change_log WHERE device_id = ?1",
        [a.device_id().to_string()],
        |r| r.get(0),
    )?;
    assert_eq!(pulled, a.last_seq(), "every change of A arrived once");
    // Every record on A is on B, identical.
    for k in [EntityKind::Child, EntityKind::HomeVisit] {
        a.for_each_raw(k, false, |r| {
            let id = r.meta()?.id;
            let other = match k {
                EntityKind::Child => b
                    .get::<ChildCard>(id)?
                    .map(|x| serde_json::to_value(x.body)),
                _ => b
                    .get::<HomeVisit>(id)?
                    .map(|x| serde_json::to_value(x.body)),
            };
            let other = other.transpose()?;
            assert_eq!(other, Some(r.body_value()?));
            Ok(())
        })?;
    }
    Ok(())
}

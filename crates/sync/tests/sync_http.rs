//! The sync engine against the real server (`shouhu_server::app`) over real
//! HTTP on 127.0.0.1, with a fault-injecting layer in front of it: answers
//! replaced by 5xx/429, connections cut before the server sees a request or
//! after it acted, slow answers, and a few fake answers the real server
//! would not give (no progress, 413, a captive portal's page).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_ENCODING, RETRY_AFTER};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde_json::{json, Value};
use shouhu_core::{ChildCard, Gender, Lang};
use shouhu_protocol::Scope;
use shouhu_server::{app, AppState, NewUser, NewUserScope, ServerDb};
use shouhu_store::{AuditAction, AuditTarget, Store};
use shouhu_sync::{
    enroll_with, status, sync, CancelToken, SyncError, SyncOptions, SyncPhase, SyncProgress,
    SyncReport,
};
use uuid::Uuid;

type R<T = ()> = Result<T, Box<dyn std::error::Error>>;

// ------------------------------------------------------------------ faults

/// What the layer does with the next request to a path.
#[derive(Debug, Clone)]
enum Fault {
    /// Let it through.
    Pass,
    /// Answer this status with an error body; the server never sees it.
    Status(u16, Option<u64>),
    /// Cut the connection; the server never sees the request.
    DropBefore,
    /// The server acts on the request; then the connection is cut.
    DropAfter,
    /// Wait, then let it through.
    Delay(Duration),
    /// Answer this instead of the server.
    Json(u16, Value),
    /// Answer a captive portal's login page.
    Html,
}

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    request_gzip: bool,
    body_len: usize,
    response_gzip: bool,
}

#[derive(Default)]
struct Faults {
    plan: Mutex<HashMap<String, VecDeque<Fault>>>,
    seen: Mutex<Vec<Seen>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A body that fails at once: hyper aborts the connection.
fn cut() -> Response {
    let s = futures_util::stream::once(async { Err::<Bytes, io::Error>(io::Error::other("cut")) });
    Response::new(Body::from_stream(s))
}

async fn inject(State(f): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let request_gzip = req.headers().get(CONTENT_ENCODING).is_some();
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return cut();
    };
    let body_len = bytes.len();
    let req = Request::from_parts(parts, Body::from(bytes));
    let fault = lock(&f.plan)
        .get_mut(&path)
        .and_then(VecDeque::pop_front)
        .unwrap_or(Fault::Pass);
    let resp = match fault {
        Fault::Pass => next.run(req).await,
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            next.run(req).await
        }
        Fault::Status(code, retry_after) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let body = json!({"code": "test.injected", "message": "injected", "details": null});
            let mut r = (status, axum::Json(body)).into_response();
            if let Some(s) = retry_after {
                if let Ok(v) = s.to_string().parse() {
                    r.headers_mut().insert(RETRY_AFTER, v);
                }
            }
            r
        }
        Fault::DropBefore => cut(),
        Fault::DropAfter => {
            let _ = next.run(req).await;
            cut()
        }
        Fault::Json(code, v) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            (status, axum::Json(v)).into_response()
        }
        Fault::Html => (StatusCode::OK, "<html><body>请先登录 Wi-Fi</body></html>").into_response(),
    };
    let response_gzip = resp.headers().get(CONTENT_ENCODING).is_some();
    lock(&f.seen).push(Seen {
        path,
        request_gzip,
        body_len,
        response_gzip,
    });
    resp
}

// ------------------------------------------------------------------ server

struct Server {
    url: String,
    state: AppState,
    faults: Arc<Faults>,
    school: Uuid,
}

async fn serve(db: ServerDb, school: Uuid) -> R<Server> {
    let state = AppState::new(db);
    let faults = Arc::new(Faults::default());
    let router = app(state.clone()).layer(middleware::from_fn_with_state(faults.clone(), inject));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Server {
        url,
        state,
        faults,
        school,
    })
}

async fn server() -> R<Server> {
    let mut db = ServerDb::open_in_memory()?;
    let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
    serve(db, school).await
}

impl Server {
    async fn code(&self) -> R<String> {
        let scope = Scope {
            schools: vec![self.school],
            notes: false,
            local_users: true,
        };
        Ok(self
            .state
            .with_db(move |db| db.create_enrollment(&scope, 1))
            .await?)
    }

    fn plan(&self, path: &str, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.faults.plan)
            .entry(path.to_string())
            .or_default()
            .extend(faults);
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        lock(&self.faults.seen)
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    fn clear_seen(&self) {
        lock(&self.faults.seen).clear();
    }

    async fn query_i64(&self, sql: &'static str, arg: String) -> R<i64> {
        Ok(self
            .state
            .with_db(move |db| Ok(db.connection().query_row(sql, [arg], |r| r.get(0))?))
            .await?)
    }

    /// Changes the server holds from this device.
    async fn changes_from(&self, device: Uuid) -> R<i64> {
        self.query_i64(
            "SELECT COUNT(*) FROM changes WHERE device_id = ?1",
            device.to_string(),
        )
        .await
    }

    /// Highest sequence of this device the server holds.
    async fn high(&self, device: Uuid) -> R<i64> {
        self.query_i64(
            "SELECT COALESCE(MAX(seq), 0) FROM changes WHERE device_id = ?1",
            device.to_string(),
        )
        .await
    }
}

// ------------------------------------------------------------------ helpers

fn fast() -> SyncOptions {
    SyncOptions {
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
        request_timeout: Duration::from_secs(10),
        ..SyncOptions::default()
    }
}

fn no_retries() -> SyncOptions {
    SyncOptions {
        max_retries: 0,
        ..fast()
    }
}

async fn run(store: &mut Store, opts: &SyncOptions) -> Result<SyncReport, SyncError> {
    sync(store, opts, &mut |_| {}, &CancelToken::new()).await
}

async fn run_logged(
    store: &mut Store,
    opts: &SyncOptions,
) -> (Result<SyncReport, SyncError>, Vec<SyncProgress>) {
    let mut log = Vec::new();
    let r = sync(store, opts, &mut |p| log.push(p), &CancelToken::new()).await;
    (r, log)
}

/// A store enrolled with the server that has pulled its school.
async fn device(srv: &Server, name: &str) -> R<Store> {
    let mut store = Store::open_in_memory()?;
    enroll_with(
        &mut store,
        &srv.url,
        &srv.code().await?,
        None,
        name,
        &fast(),
    )
    .await?;
    run(&mut store, &fast()).await?;
    Ok(store)
}

async fn device_at(srv: &Server, path: &Path) -> R<Store> {
    let mut store = Store::open(path)?;
    enroll_with(
        &mut store,
        &srv.url,
        &srv.code().await?,
        None,
        "laptop",
        &fast(),
    )
    .await?;
    run(&mut store, &fast()).await?;
    Ok(store)
}

fn add_child(store: &mut Store, school: Uuid, name: &str) -> R<Uuid> {
    let card = ChildCard {
        name: name.into(),
        gender: Some(Gender::Female),
        birth_date: NaiveDate::from_ymd_opt(2015, 3, 1),
        school_id: Some(school),
        ..Default::default()
    };
    Ok(store.write(|w| w.create(card))?.id())
}

fn add_children(store: &mut Store, school: Uuid, n: usize) -> R<Vec<Uuid>> {
    (0..n)
        .map(|i| add_child(store, school, &format!("学生{i}")))
        .collect()
}

fn child_name(store: &Store, id: Uuid) -> R<Option<String>> {
    Ok(store.get::<ChildCard>(id)?.map(|c| c.body.name))
}

fn children(store: &Store) -> R<usize> {
    Ok(store.list_all::<ChildCard>()?.len())
}

fn code_of<T>(r: Result<T, SyncError>) -> Option<&'static str> {
    r.err().map(|e| e.code())
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn push_then_pull_round_trip_between_two_stores() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "laptop-a").await?;
    let mut b = device(&srv, "laptop-b").await?;
    let ids = add_children(&mut a, srv.school, 3)?;
    let pending = a.pending_count()?;
    assert!(pending >= 3);

    let (r, log) = run_logged(&mut a, &fast()).await;
    let report = r?;
    assert_eq!(report.pushed, pending as u64);
    assert_eq!(a.pending_count()?, 0);
    assert_eq!(srv.changes_from(a.device_id()).await?, pending);
    assert!(report.bytes_up > 0 && report.bytes_down > 0);
    assert_eq!(report.retries, 0);
    assert!(report.new_device_id.is_none());
    // Progress: push from 0 to the whole outbox, then pull; bytes only grow.
    let push: Vec<&SyncProgress> = log.iter().filter(|p| p.phase == SyncPhase::Push).collect();
    assert_eq!(
        push.first().map(|p| (p.done, p.total)),
        Some((0, pending as u64))
    );
    assert_eq!(push.last().map(|p| p.done), Some(pending as u64));
    assert!(log.iter().any(|p| p.phase == SyncPhase::Pull));
    assert!(log
        .windows(2)
        .all(|w| w[0].bytes_sent <= w[1].bytes_sent && w[0].bytes_received <= w[1].bytes_received));
    assert_eq!(log.last().map(|p| p.bytes_sent), Some(report.bytes_up));
    assert_eq!(
        log.last().map(|p| p.bytes_received),
        Some(report.bytes_down)
    );

    let report = run(&mut b, &fast()).await?;
    assert!(report.pulled >= 3);
    for id in &ids {
        assert!(child_name(&b, *id)?.is_some());
    }
    // An edit on B reaches A.
    let mut card = b.fetch::<ChildCard>(ids[0])?.body;
    card.name = "王小红".into();
    b.write(|w| w.update(ids[0], card))?;
    run(&mut b, &fast()).await?;
    run(&mut a, &fast()).await?;
    assert_eq!(child_name(&a, ids[0])?.as_deref(), Some("王小红"));

    let st = status(&a)?;
    assert!(st.enrolled);
    assert_eq!(st.pending, 0);
    assert_eq!(st.server_url.as_deref(), Some(srv.url.as_str()));
    assert!(st.last_sync.is_some());
    assert_eq!(st.device_name.as_deref(), Some("laptop-a"));
    Ok(())
}

#[tokio::test]
async fn the_sync_future_can_be_spawned() -> R {
    fn assert_send<T: Send>(_: &T) {}
    let mut store = Store::open_in_memory()?;
    let opts = SyncOptions::default();
    let cancel = CancelToken::new();
    let mut cb = |_: SyncProgress| {};
    let fut = sync(&mut store, &opts, &mut cb, &cancel);
    assert_send(&fut);
    assert_eq!(code_of(fut.await), Some("sync.not_enrolled"));
    Ok(())
}

#[tokio::test]
async fn batches_are_gzipped_and_bytes_counted_on_the_wire() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "a").await?;
    let mut b = device(&srv, "b").await?;
    add_children(&mut a, srv.school, 40)?;
    let pending = a.pending_count()?;
    srv.clear_seen();
    let opts = SyncOptions {
        push_batch: 7,
        pull_page: 5,
        ..fast()
    };
    let report = run(&mut a, &opts).await?;
    assert_eq!(report.pushed, pending as u64);
    let pushes = srv.seen("/v1/push");
    assert_eq!(pushes.len() as i64, (pending + 6) / 7);
    assert!(pushes.iter().all(|s| s.request_gzip), "{pushes:?}");
    // Nothing else had a body: the bytes sent are exactly the push bodies.
    let sent: usize = pushes.iter().map(|s| s.body_len).sum();
    assert_eq!(report.bytes_up, sent as u64);

    let report = run(&mut b, &opts).await?;
    assert_eq!(children(&b)?, 40);
    assert!(report.pulled >= 40);
    let pulls = srv.seen("/v1/pull");
    assert!(pulls.len() >= 9, "{}", pulls.len());
    assert!(pulls.iter().any(|s| s.response_gzip));
    Ok(())
}

#[tokio::test]
async fn transient_failures_are_retried_nothing_lost_nothing_duplicated() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "a").await?;
    let mut b = device(&srv, "b").await?;
    add_children(&mut a, srv.school, 10)?;
    let pending = a.pending_count()?;
    srv.plan("/v1/health", [Fault::DropBefore]);
    srv.plan(
        "/v1/push",
        [
            Fault::Status(503, None),
            Fault::DropBefore,
            Fault::Status(500, None),
        ],
    );
    srv.plan("/v1/pull", [Fault::DropBefore, Fault::Status(429, Some(0))]);
    let (r, log) = run_logged(&mut a, &fast()).await;
    let report = r?;
    assert_eq!(report.retries, 6);
    assert_eq!(report.pushed, pending as u64);
    assert_eq!(a.pending_count()?, 0);
    assert_eq!(srv.changes_from(a.device_id()).await?, pending);
    let notices: Vec<_> = log.iter().filter_map(|p| p.retry.clone()).collect();
    assert_eq!(notices.len(), 6);
    assert!(notices.iter().any(|n| n.code == "sync.network"));
    assert!(notices.iter().any(|n| n.code == "test.injected"));
    assert!(notices.iter().all(|n| n.attempt >= 1 && n.max_retries == 5));

    srv.plan("/v1/pull", [Fault::Status(502, None), Fault::DropBefore]);
    run(&mut b, &fast()).await?;
    assert_eq!(children(&b)?, 10);
    Ok(())
}

#[tokio::test]
async fn a_lost_push_answer_is_resent_and_deduplicated() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "a").await?;
    add_children(&mut a, srv.school, 5)?;
    let pending = a.pending_count()?;
    srv.clear_seen();
    srv.plan("/v1/push", [Fault::DropAfter]);
    let report = run(&mut a, &fast()).await?;
    assert_eq!(
        srv.seen("/v1/push").len(),
        2,
        "applied, answer lost, resent"
    );
    assert_eq!(report.retries, 1);
    assert_eq!(report.pushed, pending as u64);
    assert_eq!(a.pending_count()?, 0);
    assert_eq!(srv.changes_from(a.device_id()).await?, pending);

    // The same across two syncs: the first gives up (no retries), the
    // outbox keeps everything, the second resends and the server dedupes.
    add_children(&mut a, srv.school, 4)?;
    srv.plan("/v1/push", [Fault::DropAfter]);
    let e = run(&mut a, &no_retries()).await.err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("sync.network"));
    assert_eq!(
        e.map(|e| e.message(Lang::ZhCn)).as_deref(),
        Some("无法连接服务器，请检查网络后重试")
    );
    assert_eq!(a.pending_count()?, 4, "not acknowledged, not dropped");
    assert_eq!(srv.changes_from(a.device_id()).await?, pending + 4);
    add_child(&mut a, srv.school, "后来的")?;
    let report = run(&mut a, &fast()).await?;
    assert_eq!(report.pushed, 5);
    assert_eq!(a.pending_count()?, 0);
    assert_eq!(srv.changes_from(a.device_id()).await?, pending + 5);
    assert_eq!(srv.high(a.device_id()).await?, a.last_seq());
    Ok(())
}

#[tokio::test]
async fn a_cut_pull_resumes_from_the_last_applied_page() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "a").await?;
    let mut b = device(&srv, "b").await?;
    add_children(&mut a, srv.school, 20)?;
    run(&mut a, &fast()).await?;
    let opts = SyncOptions {
        pull_page: 5,
        ..no_retries()
    };
    srv.plan("/v1/pull", [Fault::Pass, Fault::Pass, Fault::DropAfter]);
    let before = b.sync_state()?.pull_cursor;
    assert_eq!(code_of(run(&mut b, &opts).await), Some("sync.network"));
    let cursor = b.sync_state()?.pull_cursor;
    assert_eq!(children(&b)?, 10, "two pages applied");
    assert!(cursor > before);
    srv.clear_seen();
    let report = run(&mut b, &opts).await?;
    assert_eq!(report.pulled, 10);
    assert_eq!(children(&b)?, 20);
    assert_eq!(
        srv.seen("/v1/pull").len(),
        2,
        "the second sync starts after the applied pages"
    );
    Ok(())
}

#[tokio::test]
async fn exhausted_retries_keep_the_outbox() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "a").await?;
    add_children(&mut a, srv.school, 3)?;
    let pending = a.pending_count()?;
    srv.plan("/v1/push", vec![Fault::Status(503, None); 3]);
    let opts = SyncOptions {
        max_retries: 2,
        ..fast()
    };
    let e = run(&mut a, &opts).await.err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("sync.server"));
    assert_eq!(
        e.as_ref().and_then(SyncError::server_code),
        Some("test.injected")
    );
    assert!(e.as_ref().is_some_and(SyncError::is_temporary));
    assert_eq!(a.pending_count()?, pending);

    // Nobody listening at the address.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let dead_url = format!("http://{}", dead.local_addr()?);
    drop(dead);
    a.set_setting("server_url", &dead_url)?;
    let started = Instant::now();
    assert_eq!(code_of(run(&mut a, &fast()).await), Some("sync.network"));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(a.pending_count()?, pending);
    a.set_setting("server_url", &srv.url)?;
    run(&mut a, &fast()).await?;
    assert_eq!(a.pending_count()?, 0);
    Ok(())
}

#[tokio::test]
async fn cancelling_loses_nothing() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "a").await?;
    add_children(&mut a, srv.school, 20)?;
    let pending = a.pending_count()?;

    // Before it starts: no request at all.
    srv.clear_seen();
    let cancel = CancelToken::new();
    cancel.cancel();
    let r = sync(&mut a, &fast(), &mut |_| {}, &cancel).await;
    assert_eq!(code_of(r), Some("sync.cancelled"));
    assert!(lock(&srv.faults.seen).is_empty());

    // Between batches: the acknowledged batch stays acknowledged.
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    let opts = SyncOptions {
        push_batch: 5,
        ..fast()
    };
    let mut on_progress = |p: SyncProgress| {
        if p.phase == SyncPhase::Push && p.done >= 5 {
            c2.cancel();
        }
    };
    let r = sync(&mut a, &opts, &mut on_progress, &cancel).await;
    assert_eq!(code_of(r), Some("sync.cancelled"));
    assert_eq!(a.pending_count()?, pending - 5);
    assert_eq!(srv.changes_from(a.device_id()).await?, 5);

    // During retry waits.
    srv.plan("/v1/push", vec![Fault::Status(503, None); 10]);
    let slow = SyncOptions {
        backoff_base: Duration::from_secs(20),
        backoff_max: Duration::from_secs(20),
        ..fast()
    };
    let cancel = CancelToken::new();
    let c3 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c3.cancel();
    });
    let started = Instant::now();
    let r = sync(&mut a, &slow, &mut |_| {}, &cancel).await;
    assert_eq!(code_of(r), Some("sync.cancelled"));
    assert!(started.elapsed() < Duration::from_secs(3));
    lock(&srv.faults.plan).clear();

    // While a request is in flight (the server is slow): abandoned at once.
    srv.plan("/v1/push", [Fault::Delay(Duration::from_secs(5))]);
    let cancel = CancelToken::new();
    let c4 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c4.cancel();
    });
    let started = Instant::now();
    let r = sync(&mut a, &fast(), &mut |_| {}, &cancel).await;
    assert_eq!(code_of(r), Some("sync.cancelled"));
    assert!(started.elapsed() < Duration::from_millis(2500));
    // Whether the server applies that abandoned batch before, after or never,
    // the next sync completes the outbox exactly once.
    let report = run(&mut a, &fast()).await?;
    assert!(report.pushed <= (pending - 5) as u64);
    assert_eq!(a.pending_count()?, 0);
    assert_eq!(srv.changes_from(a.device_id()).await?, pending);
    Ok(())
}

#[tokio::test]
async fn credential_and_enrollment_errors_are_coded() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "a").await?;
    add_child(&mut a, srv.school, "张三")?;

    // Not enrolled: no network needed to say so.
    let mut fresh = Store::open_in_memory()?;
    let e = run(&mut fresh, &fast()).await.err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("sync.not_enrolled"));

    // A wrong credential.
    let good = a.setting("credential")?.unwrap_or_default();
    a.set_setting("credential", "not-the-credential")?;
    let e = run(&mut a, &fast()).await.err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("auth.invalid"));
    let body = e.map(|e| e.body(Lang::ZhCn));
    assert_eq!(body.as_ref().map(|b| b.code.as_str()), Some("auth.invalid"));
    assert!(body.is_some_and(|b| b.message.contains("凭证")));
    a.set_setting("credential", &good)?;

    // Revoked: 403, and the pending change stays.
    let id = a.device_id();
    srv.state.with_db(move |db| db.revoke(id)).await?;
    let e = run(&mut a, &fast()).await.err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("auth.revoked"));
    assert!(e
        .as_ref()
        .is_some_and(|e| e.message(Lang::En).contains("revoked")));
    assert_eq!(a.pending_count()?, 1);

    // Enrollment codes are one-time.
    let mut c = Store::open_in_memory()?;
    let code = srv.code().await?;
    enroll_with(&mut c, &srv.url, &code, None, "c", &fast()).await?;
    let mut d = Store::open_in_memory()?;
    let e = enroll_with(&mut d, &srv.url, &code, None, "d", &fast())
        .await
        .err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("enroll.invalid_code"));
    assert!(!status(&d)?.enrolled);
    let e = enroll_with(&mut d, "shouhu.example.cn", &code, None, "d", &fast())
        .await
        .err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("sync.invalid_url"));

    // A server that speaks another version.
    srv.plan(
        "/v1/push",
        [Fault::Json(
            400,
            json!({"code": "protocol.unsupported_version", "message": "x", "details": {"supported": 2}}),
        )],
    );
    let mut e2 = device(&srv, "e").await?;
    add_child(&mut e2, srv.school, "李四")?;
    let e = run(&mut e2, &fast()).await.err();
    assert_eq!(
        e.as_ref().map(SyncError::code),
        Some("protocol.unsupported_version")
    );
    assert_eq!(
        e.map(|e| e.details(Lang::En)["supported"].clone()),
        Some(json!(2))
    );
    Ok(())
}

#[tokio::test]
async fn enrollment_retries_only_when_the_server_did_not_act() -> R {
    let srv = server().await?;
    // A 503 means the code was not spent: retried. A connection cut after
    // the request went out may have spent it: not retried.
    srv.plan("/v1/enroll", [Fault::Status(503, None), Fault::DropBefore]);
    let mut a = Store::open_in_memory()?;
    let e = enroll_with(&mut a, &srv.url, &srv.code().await?, None, "a", &fast())
        .await
        .err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("sync.network"));
    assert_eq!(srv.seen("/v1/enroll").len(), 2);
    lock(&srv.faults.plan).clear();
    srv.plan(
        "/v1/enroll",
        [Fault::Status(503, None), Fault::Status(429, None)],
    );
    let r = enroll_with(&mut a, &srv.url, &srv.code().await?, None, "a", &fast()).await?;
    assert_eq!(r.device_id, a.device_id());
    assert_eq!(srv.seen("/v1/enroll").len(), 5);
    assert!(status(&a)?.enrolled);
    assert_eq!(a.sync_state()?.server_id, Some(r.server_id));
    Ok(())
}

#[tokio::test]
async fn sequence_reused_after_a_restore_takes_a_new_device_id() -> R {
    let srv = server().await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("shouhu.db");
    let backup = dir.path().join("backup.db");

    let mut a = device_at(&srv, &path).await?;
    let first = add_child(&mut a, srv.school, "一号")?;
    run(&mut a, &fast()).await?;
    let old_id = a.device_id();
    a.connection()
        .execute("VACUUM INTO ?1", [backup.to_string_lossy().to_string()])?;
    // After the backup: one more child and an edit, synced.
    let second = add_child(&mut a, srv.school, "二号")?;
    let mut card = a.fetch::<ChildCard>(first)?.body;
    card.name = "一号改".into();
    a.write(|w| w.update(first, card))?;
    run(&mut a, &fast()).await?;
    let server_high = srv.high(old_id).await?;
    assert_eq!(server_high, a.last_seq());
    drop(a);

    // Restore the backup, then write: the sequence numbers after the backup
    // are used again, with other change ids.
    for ext in ["", "-wal", "-shm"] {
        let p = dir.path().join(format!("shouhu.db{ext}"));
        if p.exists() {
            std::fs::remove_file(p)?;
        }
    }
    std::fs::copy(&backup, &path)?;
    let mut a = Store::open(&path)?;
    assert_eq!(a.device_id(), old_id);
    assert!(a.last_seq() < server_high);
    let third = add_child(&mut a, srv.school, "三号")?;

    let report = run(&mut a, &fast()).await?;
    let new_id = report.new_device_id.ok_or("no rotation")?;
    assert_ne!(new_id, old_id);
    assert_eq!(a.device_id(), new_id);
    assert_eq!(a.pending_count()?, 0);
    assert_eq!(srv.changes_from(new_id).await?, a.last_seq());
    assert_eq!(srv.high(old_id).await?, server_high, "old id untouched");
    let devices = srv.state.with_db(|db| db.devices()).await?;
    assert!(devices.iter().any(|d| d.id == new_id));
    // What the restore lost comes back from the server.
    assert_eq!(child_name(&a, first)?.as_deref(), Some("一号改"));
    assert_eq!(child_name(&a, second)?.as_deref(), Some("二号"));
    assert_eq!(child_name(&a, third)?.as_deref(), Some("三号"));
    // And everyone sees everything.
    let mut b = device(&srv, "b").await?;
    run(&mut b, &fast()).await?;
    for id in [first, second, third] {
        assert!(child_name(&b, id)?.is_some());
    }
    // The next sync is an ordinary one.
    add_child(&mut a, srv.school, "四号")?;
    let report = run(&mut a, &fast()).await?;
    assert!(report.new_device_id.is_none());
    assert_eq!(report.pushed, 1);
    Ok(())
}

#[tokio::test]
async fn a_lost_rotation_answer_is_harmless() -> R {
    let srv = server().await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("shouhu.db");
    let backup = dir.path().join("backup.db");
    let mut a = device_at(&srv, &path).await?;
    add_child(&mut a, srv.school, "一号")?;
    run(&mut a, &fast()).await?;
    a.connection()
        .execute("VACUUM INTO ?1", [backup.to_string_lossy().to_string()])?;
    add_child(&mut a, srv.school, "二号")?;
    run(&mut a, &fast()).await?;
    drop(a);
    std::fs::remove_file(&path)?;
    std::fs::copy(&backup, &path)?;
    let mut a = Store::open(&path)?;
    add_child(&mut a, srv.school, "三号")?;
    // The server takes the new id, the answer is lost, the retry is refused
    // ("already known"); the push then goes through under the new id.
    srv.plan("/v1/device/rotate", [Fault::DropAfter]);
    let report = run(&mut a, &fast()).await?;
    assert_eq!(report.new_device_id, Some(a.device_id()));
    assert_eq!(srv.seen("/v1/device/rotate").len(), 2);
    assert_eq!(a.pending_count()?, 0);
    assert_eq!(srv.changes_from(a.device_id()).await?, a.last_seq());
    Ok(())
}

#[tokio::test]
async fn a_server_restored_from_backup_gets_acknowledged_entries_again() -> R {
    let dir = tempfile::tempdir()?;
    let live = dir.path().join("live");
    let restored = dir.path().join("restored");
    std::fs::create_dir_all(&restored)?;
    let mut db = ServerDb::open(&live)?;
    let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
    let srv = serve(db, school).await?;
    let mut a = device(&srv, "a").await?;
    add_children(&mut a, school, 2)?;
    run(&mut a, &fast()).await?;
    let target = restored
        .join("shouhu-server.db")
        .to_string_lossy()
        .to_string();
    srv.state
        .with_db(move |db| Ok(db.connection().execute("VACUUM INTO ?1", [target])?))
        .await?;
    let at_backup = srv.high(a.device_id()).await?;
    add_children(&mut a, school, 3)?;
    run(&mut a, &fast()).await?;

    // The county restores the server from the backup, same address.
    let srv2 = serve(ServerDb::open(&restored)?, school).await?;
    assert_eq!(srv2.high(a.device_id()).await?, at_backup);
    a.set_setting("server_url", &srv2.url)?;
    add_child(&mut a, school, "恢复后")?;
    let e = run(&mut a, &fast()).await.err();
    // Pushed in full (from what the server has on), then the pull is refused:
    // the server hands out numbers below this store's cursor again.
    assert_eq!(e.as_ref().map(SyncError::code), Some("sync.server_rewound"));
    assert_eq!(a.pending_count()?, 0);
    assert_eq!(srv2.high(a.device_id()).await?, a.last_seq());
    assert_eq!(srv2.changes_from(a.device_id()).await?, a.last_seq());
    Ok(())
}

#[tokio::test]
async fn a_server_that_makes_no_progress_is_an_error_not_a_loop() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "a").await?;
    add_children(&mut a, srv.school, 2)?;
    let pending = a.pending_count()?;
    let stuck = json!({"applied_through": 0, "applied": 0, "conflicts": 0, "server_seq": 0});
    srv.plan("/v1/push", vec![Fault::Json(200, stuck); 5]);
    let e = run(&mut a, &fast()).await.err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("sync.no_progress"));
    assert_eq!(a.pending_count()?, pending);
    assert_eq!(srv.seen("/v1/push").len(), 3);
    lock(&srv.faults.plan).clear();
    run(&mut a, &fast()).await?;
    assert_eq!(a.pending_count()?, 0);
    Ok(())
}

#[tokio::test]
async fn a_batch_too_large_is_split() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "a").await?;
    add_children(&mut a, srv.school, 8)?;
    let pending = a.pending_count()?;
    srv.clear_seen();
    srv.plan(
        "/v1/push",
        [Fault::Json(
            413,
            json!({"code": "request.too_large", "message": "x", "details": {"limit": 1}}),
        )],
    );
    let opts = SyncOptions {
        push_batch: 8,
        ..fast()
    };
    let report = run(&mut a, &opts).await?;
    assert_eq!(report.pushed, pending as u64);
    assert_eq!(srv.seen("/v1/push").len() as i64, 1 + (pending + 3) / 4);
    Ok(())
}

#[tokio::test]
async fn another_server_or_a_login_page_is_refused() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "a").await?;
    let other = server().await?;
    a.set_setting("server_url", &other.url)?;
    assert_eq!(
        code_of(run(&mut a, &fast()).await),
        Some("sync.server_mismatch")
    );
    let code = other.code().await?;
    let e = enroll_with(&mut a, &other.url, &code, None, "a", &fast())
        .await
        .err();
    assert_eq!(
        e.as_ref().map(SyncError::code),
        Some("sync.server_mismatch")
    );

    a.set_setting("server_url", &srv.url)?;
    srv.plan("/v1/health", [Fault::Html]);
    let e = run(&mut a, &fast()).await.err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("sync.bad_response"));
    assert!(e.is_some_and(|e| e.message(Lang::ZhCn).contains("无线网络")));
    run(&mut a, &fast()).await?;
    Ok(())
}

#[tokio::test]
async fn an_out_of_scope_change_blocks_the_push_but_not_the_pull() -> R {
    let srv = server().await?;
    let mut a = device(&srv, "a").await?;
    let mut b = device(&srv, "b").await?;
    let from_b = add_child(&mut b, srv.school, "别人录的")?;
    run(&mut b, &fast()).await?;
    add_child(&mut a, srv.school, "张三")?;
    let pending = a.pending_count()?;
    srv.plan(
        "/v1/push",
        [Fault::Json(
            403,
            json!({"code": "sync.out_of_scope", "message": "x", "details": {"seq": 1, "entity": "psych_note"}}),
        )],
    );
    let e = run(&mut a, &fast()).await.err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("sync.out_of_scope"));
    assert_eq!(
        e.map(|e| e.details(Lang::En)["seq"].clone()),
        Some(json!(1))
    );
    assert_eq!(a.pending_count()?, pending, "kept for a person to act on");
    assert!(child_name(&a, from_b)?.is_some(), "pulled all the same");
    Ok(())
}

// ------------------------------------------------------------------ accounts

impl Server {
    /// An enrollment code for a device that holds only server users' work.
    async fn strict_code(&self) -> R<String> {
        let scope = Scope {
            schools: vec![self.school],
            notes: false,
            local_users: false,
        };
        Ok(self
            .state
            .with_db(move |db| db.create_enrollment(&scope, 1))
            .await?)
    }

    async fn add_teacher(&self, login: &'static str) -> R<Uuid> {
        let school = self.school;
        Ok(self
            .state
            .with_db(move |db| {
                Ok(db
                    .add_user(NewUser {
                        login_name: login.into(),
                        display_name: "王老师".into(),
                        role: shouhu_auth::Role::Teacher,
                        scope: NewUserScope::School(school),
                        password: None,
                    })?
                    .user
                    .id)
            })
            .await?)
    }

    async fn audit_rows(&self) -> R<Vec<shouhu_server::AuditRow>> {
        Ok(self
            .state
            .with_db(|db| db.audit_entries(&shouhu_server::AuditQuery::default()))
            .await?)
    }
}

#[tokio::test]
async fn audit_goes_up_once_even_when_an_answer_is_lost() -> R {
    let srv = server().await?;
    let teacher = srv.add_teacher("wang").await?;
    let mut a = device(&srv, "a").await?;
    a.set_user(teacher);
    let child = add_child(&mut a, srv.school, "张三")?;
    for i in 0..3 {
        a.audit(
            AuditAction::ViewChild,
            AuditTarget {
                entity: Some("child".into()),
                record_id: Some(child),
                school_id: Some(srv.school),
            },
            json!({ "i": i }),
        )?;
    }
    a.audit(AuditAction::Export, AuditTarget::default(), json!({}))?;
    // The server stores the first upload, but its answer is lost: the
    // retry is answered as duplicates, nothing is stored twice.
    srv.plan("/v1/audit", [Fault::DropAfter]);
    let report = run(&mut a, &fast()).await?;
    assert_eq!(report.audit_sent, 4);
    assert_eq!(srv.seen("/v1/audit").len(), 2, "the retry");
    let rows = srv.audit_rows().await?;
    assert_eq!(rows.len(), 4);
    assert!(rows
        .iter()
        .all(|r| r.user_id == teacher && r.flag.is_none()));
    assert_eq!(rows[0].login_name.as_deref(), Some("wang"));
    assert!(a.audit_unsent(10)?.is_empty());

    // Nothing new: nothing sent. A new entry: only it.
    srv.clear_seen();
    assert_eq!(run(&mut a, &fast()).await?.audit_sent, 0);
    assert!(srv.seen("/v1/audit").is_empty());
    a.audit(AuditAction::Print, AuditTarget::default(), json!({}))?;
    assert_eq!(run(&mut a, &fast()).await?.audit_sent, 1);
    assert_eq!(srv.audit_rows().await?.len(), 5);

    // An upload that fails keeps the entries for the next sync.
    a.audit(AuditAction::Logout, AuditTarget::default(), json!({}))?;
    srv.plan("/v1/audit", [Fault::Status(403, None)]);
    assert!(run(&mut a, &no_retries()).await.is_err());
    assert_eq!(a.audit_unsent(10)?.len(), 1);
    assert_eq!(run(&mut a, &fast()).await?.audit_sent, 1);
    assert_eq!(srv.audit_rows().await?.len(), 6);
    Ok(())
}

#[tokio::test]
async fn the_users_of_the_scope_come_back_in_the_report() -> R {
    let srv = server().await?;
    let teacher = srv.add_teacher("wang").await?;
    let mut a = device(&srv, "a").await?;
    let report = run(&mut a, &fast()).await?;
    assert_eq!(report.users.len(), 1);
    let u = &report.users[0];
    assert_eq!((u.id, u.login_name.as_str()), (teacher, "wang"));
    assert!(u.password_hash.starts_with("$argon2id$"));
    assert!(u.must_change_password);
    // The report as the app and the CLI print it carries no hashes.
    let printed = serde_json::to_string(&report)?;
    assert!(!printed.contains("argon2"), "{printed}");
    assert_eq!(
        serde_json::from_str::<Value>(&printed)?["audit_sent"],
        json!(0)
    );
    Ok(())
}

#[tokio::test]
async fn a_change_by_an_unknown_user_blocks_the_push_but_not_the_pull() -> R {
    let srv = server().await?;
    let teacher = srv.add_teacher("wang").await?;
    let mut other = device(&srv, "b").await?;
    let from_other = add_child(&mut other, srv.school, "别人录的")?;
    run(&mut other, &fast()).await?;

    let mut a = Store::open_in_memory()?;
    enroll_with(
        &mut a,
        &srv.url,
        &srv.strict_code().await?,
        None,
        "a",
        &fast(),
    )
    .await?;
    run(&mut a, &fast()).await?;
    add_child(&mut a, srv.school, "张三")?;
    a.audit(AuditAction::Login, AuditTarget::default(), json!({}))?;
    let pending = a.pending_count()?;
    let e = run(&mut a, &fast()).await.err();
    assert_eq!(e.as_ref().map(SyncError::code), Some("push.unknown_user"));
    assert_eq!(a.pending_count()?, pending, "kept");
    assert!(child_name(&a, from_other)?.is_some(), "pulled all the same");
    // The audit went up all the same, flagged: its user is unknown.
    assert!(a.audit_unsent(10)?.is_empty());
    let rows = srv.audit_rows().await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].flag.as_deref(), Some("user_unknown"));

    // Work by the server's teacher goes through on the same device.
    let mut b = Store::open_in_memory()?;
    enroll_with(
        &mut b,
        &srv.url,
        &srv.strict_code().await?,
        None,
        "b",
        &fast(),
    )
    .await?;
    run(&mut b, &fast()).await?;
    b.set_user(teacher);
    add_child(&mut b, srv.school, "李四")?;
    let report = run(&mut b, &fast()).await?;
    assert!(report.pushed >= 1);
    assert_eq!(b.pending_count()?, 0);
    Ok(())
}

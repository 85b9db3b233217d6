//! The HTTP API: every bad request gets a 4xx with its code and nothing is
//! applied; push is idempotent and ordered; pull is scoped.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use shouhu_core::{EntityKind, Op};
use shouhu_protocol::{Change, Scope};
use shouhu_server::{app, AppState, ServerDb, BODY_LIMIT};
use tower::ServiceExt;
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Fixture {
    state: AppState,
    school_a: Uuid,
    school_b: Uuid,
    token_a: String,
    device_a: Uuid,
    token_b: String,
}

async fn fixture() -> Result<Fixture, Box<dyn std::error::Error>> {
    let mut db = ServerDb::open_in_memory()?;
    let school_a = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
    let school_b = db.add_school(None, "龙场中学", "织金县", "龙场镇")?;
    let code_a = db.create_enrollment(
        &Scope {
            schools: vec![school_a],
            notes: false,
            local_users: true,
        },
        24,
    )?;
    let code_b = db.create_enrollment(
        &Scope {
            schools: vec![school_b],
            notes: true,
            local_users: true,
        },
        24,
    )?;
    let device_a = Uuid::now_v7();
    let a = db.enroll(&code_a.to_lowercase(), device_a, "laptop-a")?;
    let b = db.enroll(&code_b, Uuid::now_v7(), "laptop-b")?;
    assert!(
        db.enroll(&code_a, Uuid::now_v7(), "again").is_err(),
        "codes are one-time"
    );
    Ok(Fixture {
        state: AppState::new(db),
        school_a,
        school_b,
        token_a: a.credential,
        device_a,
        token_b: b.credential,
    })
}

async fn call(
    state: &AppState,
    req: Request<Body>,
) -> Result<(StatusCode, Value), Box<dyn std::error::Error>> {
    let res = app(state.clone()).oneshot(req).await?;
    let status = res.status();
    let bytes = res.into_body().collect().await?.to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, v))
}

fn push_req(token: &str, body: Body) -> Result<Request<Body>, axum::http::Error> {
    Request::post("/v1/push")
        .header("authorization", format!("Bearer {token}"))
        .header("shouhu-protocol", "1")
        .header("content-type", "application/json")
        .body(body)
}

fn change(seq: i64, school: Uuid, record: Uuid, fields: Value) -> Change {
    Change {
        seq,
        change_id: Uuid::now_v7(),
        hlc: 1,
        entity: EntityKind::Household,
        record_id: record,
        school_id: Some(school),
        op: if seq == 1 { Op::Create } else { Op::Update },
        fields,
        base_version: 0,
        user_id: Uuid::now_v7(),
        resolves: None,
    }
}

fn body(changes: &[Change]) -> Body {
    Body::from(json!({ "protocol": 1, "changes": changes }).to_string())
}

async fn head(state: &AppState) -> Result<i64, Box<dyn std::error::Error>> {
    Ok(state.with_db(|db| db.head()).await?)
}

#[tokio::test]
async fn bad_requests_get_coded_4xx_and_change_nothing() -> TestResult {
    let f = fixture().await?;
    let before = head(&f.state).await?;
    let rec = Uuid::now_v7();
    let good = vec![change(1, f.school_a, rec, json!({"label": "张家"}))];

    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            push_req(&f.token_a, Body::from("{not json"))?,
            StatusCode::BAD_REQUEST,
            "request.malformed_json",
        ),
        (
            push_req(
                &f.token_a,
                Body::from(r#"{"protocol":1,"changes":[{"seq":"x"}]}"#),
            )?,
            StatusCode::BAD_REQUEST,
            "request.malformed_json",
        ),
        (
            push_req(&f.token_a, Body::from(vec![b' '; BODY_LIMIT + 10]))?,
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.too_large",
        ),
        (
            Request::post("/v1/push")
                .header("authorization", format!("Bearer {}", f.token_a))
                .header("shouhu-protocol", "9")
                .body(body(&good))?,
            StatusCode::BAD_REQUEST,
            "protocol.unsupported_version",
        ),
        (
            push_req("wrong-token", body(&good))?,
            StatusCode::UNAUTHORIZED,
            "auth.invalid",
        ),
        (
            Request::post("/v1/push")
                .header("shouhu-protocol", "1")
                .body(body(&good))?,
            StatusCode::UNAUTHORIZED,
            "auth.invalid",
        ),
        (
            push_req(
                &f.token_a,
                body(&[change(1, f.school_b, rec, json!({"label": "李家"}))]),
            )?,
            StatusCode::FORBIDDEN,
            "sync.out_of_scope",
        ),
        (
            Request::get("/v1/nowhere").body(Body::empty())?,
            StatusCode::NOT_FOUND,
            "request.not_found",
        ),
        (
            Request::post("/v1/enroll")
                .header("shouhu-protocol", "1")
                .body(Body::from(
                    json!({"protocol":1,"code":"NOPE","device_id":Uuid::now_v7(),"name":"x"})
                        .to_string(),
                ))?,
            StatusCode::UNAUTHORIZED,
            "enroll.invalid_code",
        ),
    ];
    for (req, status, code) in cases {
        let (s, v) = call(&f.state, req).await?;
        assert_eq!((s, v["code"].as_str().unwrap_or("")), (status, code), "{v}");
        assert!(v["message"].is_string());
    }
    // A batch with one out-of-scope change applies none of it.
    let mixed = vec![
        change(1, f.school_a, rec, json!({"label": "张家"})),
        change(2, f.school_b, rec, json!({"label": "李家"})),
    ];
    let (s, _) = call(&f.state, push_req(&f.token_a, body(&mixed))?).await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(head(&f.state).await?, before, "nothing applied");
    // Revoked device.
    let dev = f.device_a;
    f.state.with_db(move |db| db.revoke(dev)).await?;
    let (s, v) = call(&f.state, push_req(&f.token_a, body(&good))?).await?;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("auth.revoked"))
    );
    assert_eq!(head(&f.state).await?, before);
    Ok(())
}

#[tokio::test]
async fn push_is_idempotent_and_in_order_and_pull_is_scoped() -> TestResult {
    let f = fixture().await?;
    let rec = Uuid::now_v7();
    let c1 = change(1, f.school_a, rec, json!({"label": "张家", "notes": ""}));
    let c2 = change(2, f.school_a, rec, json!({"notes": "奶奶腿脚不便"}));
    let c3 = change(3, f.school_a, rec, json!({"label": "张建国户"}));
    // Out of order: 2..3 before 1 → nothing applied, told to resend from 1.
    let (s, v) = call(
        &f.state,
        push_req(&f.token_a, body(&[c2.clone(), c3.clone()]))?,
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["applied_through"], 0);
    let (_, v) = call(
        &f.state,
        push_req(&f.token_a, body(&[c1.clone(), c2.clone()]))?,
    )
    .await?;
    assert_eq!(
        (v["applied_through"].as_i64(), v["applied"].as_i64()),
        (Some(2), Some(2))
    );
    // Repeated and overlapping batches change nothing.
    let h = head(&f.state).await?;
    let (_, v) = call(
        &f.state,
        push_req(&f.token_a, body(&[c1.clone(), c2.clone()]))?,
    )
    .await?;
    assert_eq!(
        (v["applied_through"].as_i64(), v["applied"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(head(&f.state).await?, h);
    let (_, v) = call(
        &f.state,
        push_req(&f.token_a, body(&[c2.clone(), c3.clone()]))?,
    )
    .await?;
    assert_eq!(
        (v["applied_through"].as_i64(), v["applied"].as_i64()),
        (Some(3), Some(1))
    );
    // The same seq with another change id: the database was restored.
    let mut reused = c3.clone();
    reused.change_id = Uuid::now_v7();
    let (s, v) = call(&f.state, push_req(&f.token_a, body(&[reused]))?).await?;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("sync.sequence_reused"))
    );
    let state = f
        .state
        .with_db(move |db| db.record(rec))
        .await?
        .ok_or("record")?;
    assert_eq!(state.body["label"], "张建国户");
    assert_eq!(state.body["notes"], "奶奶腿脚不便");
    // Pull: device A sees its school only; B sees B's.
    let pull = |token: &str, after: i64| {
        Request::get(format!("/v1/pull?after={after}&limit=2"))
            .header("authorization", format!("Bearer {token}"))
            .header("shouhu-protocol", "1")
            .body(Body::empty())
    };
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let (s, v) = call(&f.state, pull(&f.token_a, after)?).await?;
        assert_eq!(s, StatusCode::OK, "{v}");
        for c in v["changes"].as_array().ok_or("changes")? {
            assert_eq!(c["school_id"], json!(f.school_a));
            seen.push(c["record_id"].as_str().unwrap_or("").to_string());
        }
        after = v["next_after"].as_i64().ok_or("next_after")?;
        if after >= v["head"].as_i64().ok_or("head")? {
            break;
        }
    }
    assert_eq!(seen.len(), 4, "school A's record + 3 changes: {seen:?}");
    let (_, v) = call(&f.state, pull(&f.token_b, 0)?).await?;
    let b_changes = v["changes"].as_array().ok_or("changes")?;
    assert!(b_changes
        .iter()
        .all(|c| c["school_id"] == json!(f.school_b)));
    Ok(())
}

#[tokio::test]
async fn gzip_bodies_are_accepted_and_health_answers() -> TestResult {
    let f = fixture().await?;
    let (s, v) = call(&f.state, Request::get("/v1/health").body(Body::empty())?).await?;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["protocol"], 1);
    use std::io::Write;
    let rec = Uuid::now_v7();
    let plain =
        json!({ "protocol": 1, "changes": [change(1, f.school_b, rec, json!({"label": "王家"}))] })
            .to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(plain.as_bytes())?;
    let req = Request::post("/v1/push")
        .header("authorization", format!("Bearer {}", f.token_b))
        .header("shouhu-protocol", "1")
        .header("content-encoding", "gzip")
        .body(Body::from(gz.finish()?))?;
    let (s, v) = call(&f.state, req).await?;
    assert_eq!((s, v["applied"].as_i64()), (StatusCode::OK, Some(1)), "{v}");
    Ok(())
}

#[tokio::test]
async fn enrollment_and_rotation_are_safe_to_retry() -> TestResult {
    let mut db = ServerDb::open_in_memory()?;
    let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
    let code = db.create_enrollment(
        &Scope {
            schools: vec![school],
            notes: false,
            local_users: true,
        },
        24,
    )?;
    let dev = Uuid::now_v7();
    let first = db.enroll(&code, dev, "laptop")?;
    // The answer was lost: the same device retries and gets a fresh credential.
    let second = db.enroll(&code, dev, "laptop")?;
    assert_ne!(first.credential, second.credential);
    assert!(
        db.authenticate(&first.credential).is_err(),
        "the lost credential no longer works"
    );
    assert_eq!(db.authenticate(&second.credential)?.0, dev);
    // Another device cannot reuse the code.
    assert_eq!(
        db.enroll(&code, Uuid::now_v7(), "other")
            .map(|_| ())
            .map_err(|e| e.code()),
        Err("enroll.invalid_code")
    );
    // Rotation, and its retry.
    let new = Uuid::now_v7();
    db.rotate_device(dev, new)?;
    let (now, _) = db.authenticate(&second.credential)?;
    assert_eq!(now, new);
    db.rotate_device(now, new)?;
    Ok(())
}

//! The HTTP layer: routes, authentication, body limits, compression. Handlers
//! are thin: parse, authenticate, call [`ServerDb`] on a blocking thread.

use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use shouhu_protocol::{
    AuditUpload, EnrollRequest, Health, PasswordChangeRequest, PushRequestRaw, ReaderKeyRequest,
    RotateRequest, Scope, UsersResponse, MAX_AUDIT_ENTRIES, MAX_PUSH_CHANGES, PROTOCOL_HEADER,
    PROTOCOL_VERSION,
};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

use crate::db::ServerDb;
use crate::error::ApiError;

/// Largest request body (after decompression), bytes.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Shared state: the database behind a mutex (SQLite has one writer anyway;
/// handlers hold it on a blocking thread, never across an await).
#[derive(Clone)]
pub struct AppState {
    db: Arc<Mutex<ServerDb>>,
}

impl AppState {
    pub fn new(db: ServerDb) -> Self {
        AppState {
            db: Arc::new(Mutex::new(db)),
        }
    }

    /// Run `f` with the database on a blocking thread.
    pub async fn with_db<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ServerDb) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = db
                .lock()
                .map_err(|_| ApiError::Internal("database lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
    }
}

/// The whole API, for `serve` and for tests.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/enroll", post(enroll))
        .route("/v1/push", post(push))
        .route("/v1/pull", get(pull))
        .route("/v1/device/rotate", post(rotate))
        .route("/v1/device", get(device))
        .route("/v1/users", get(users))
        .route("/v1/users/{id}/reader-key", post(reader_key))
        .route("/v1/users/{id}/password", post(change_password))
        .route("/v1/audit", post(audit))
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestDecompressionLayer::new())
        // Fastest gzip: on a 2-core county server deflate is the largest cost
        // of a first pull, and level 1 still gives ~100 bytes per change.
        .layer(CompressionLayer::new().quality(tower_http::CompressionLevel::Fastest))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serve `app` on `listener` over plain HTTP until `shutdown` completes;
/// in-flight requests finish first. For tests and development on loopback:
/// devices enroll only over HTTPS elsewhere ([`run_tls`]).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// [`run`] over HTTPS: every connection's TLS handshake is done with `tls`
/// (from [`shouhu_tls::load_or_create`] or [`shouhu_tls::load`]) in a task
/// of its own, so a client that never finishes one holds up no one.
pub async fn run_tls(
    listener: TcpListener,
    tls: Arc<shouhu_tls::rustls::ServerConfig>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = shouhu_tls::TlsListener::new(listener, tls)?;
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A JSON body whose every failure (not JSON, wrong shape, too large) is an
/// [`ApiError`] with the usual shape.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge { limit: BODY_LIMIT }
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::MalformedJson(e.to_string()))
    }
}

fn check_protocol(headers: &HeaderMap) -> Result<(), ApiError> {
    let v = headers
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match v.as_deref() {
        Some(s) if s.trim() == PROTOCOL_VERSION.to_string() => Ok(()),
        _ => Err(ApiError::UnsupportedProtocol(v)),
    }
}

fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::InvalidCredential)
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<(Uuid, Scope), ApiError> {
    check_protocol(headers)?;
    let token = bearer(headers)?;
    state.with_db(move |db| db.authenticate(&token)).await
}

async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let (server_id, head) = state.with_db(|db| Ok((db.server_id(), db.head()?))).await?;
    Ok(Json(Health {
        status: "ok".into(),
        protocol: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").into(),
        server_id,
        head,
    }))
}

async fn enroll(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<EnrollRequest>,
) -> Result<Response, ApiError> {
    check_protocol(&headers)?;
    require_protocol(req.protocol)?;
    let r = state
        .with_db(move |db| db.enroll(&req.code, req.device_id, &req.name))
        .await?;
    tracing::info!(device = %r.device_id, schools = r.scope.schools.len(), "device enrolled");
    Ok(Json(r).into_response())
}

async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<PushRequestRaw>,
) -> Result<Response, ApiError> {
    let (device, scope) = authenticate(&state, &headers).await?;
    require_protocol(req.protocol)?;
    if req.changes.len() > MAX_PUSH_CHANGES {
        return Err(ApiError::BatchTooLarge {
            max: MAX_PUSH_CHANGES,
        });
    }
    let n = req.changes.len();
    let r = state
        .with_db(move |db| db.push_raw(device, &scope, &req.changes))
        .await?;
    tracing::info!(%device, received = n, applied = r.applied, conflicts = r.conflicts, through = r.applied_through, "push");
    Ok(Json(r).into_response())
}

#[derive(Deserialize)]
struct PullParams {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    1000
}

async fn pull(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<PullParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (device, scope) = authenticate(&state, &headers).await?;
    let body = state
        .with_db(move |db| db.pull_json(&scope, p.after, p.limit))
        .await?;
    tracing::info!(%device, after = p.after, bytes = body.len(), "pull");
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

async fn rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<RotateRequest>,
) -> Result<Response, ApiError> {
    let (device, _) = authenticate(&state, &headers).await?;
    require_protocol(req.protocol)?;
    let new = req.new_device_id;
    state
        .with_db(move |db| db.rotate_device(device, new))
        .await?;
    tracing::warn!(old = %device, %new, "device took a new id");
    Ok(Json(serde_json::json!({ "device_id": new })).into_response())
}

/// The device's current scope and the schools that left it.
async fn device(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (device, scope) = authenticate(&state, &headers).await?;
    let r = state
        .with_db(move |db| db.device_response(device, &scope))
        .await?;
    tracing::info!(%device, schools = r.scope.schools.len(), left = r.left_schools.len(), "device");
    Ok(Json(r).into_response())
}

async fn users(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (device, scope) = authenticate(&state, &headers).await?;
    let users = state.with_db(move |db| db.users_for_scope(&scope)).await?;
    tracing::info!(%device, users = users.len(), "users");
    Ok(Json(UsersResponse { users }).into_response())
}

async fn reader_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
    JsonBody(req): JsonBody<ReaderKeyRequest>,
) -> Result<Response, ApiError> {
    let Path(user) = id.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (device, scope) = authenticate(&state, &headers).await?;
    require_protocol(req.protocol)?;
    let record = state
        .with_db(move |db| db.set_reader_key(&scope, device, user, &req.public_key))
        .await?;
    tracing::info!(%device, %user, "reader key registered");
    Ok(Json(record).into_response())
}

async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
    JsonBody(req): JsonBody<PasswordChangeRequest>,
) -> Result<Response, ApiError> {
    let Path(user) = id.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (device, scope) = authenticate(&state, &headers).await?;
    require_protocol(req.protocol)?;
    let result = state
        .with_db(move |db| db.change_password_from_device(&scope, user, &req))
        .await;
    match &result {
        Ok(_) => tracing::info!(%device, %user, "password changed from a device"),
        Err(e) => tracing::warn!(%device, %user, code = e.code(), "password change refused"),
    }
    Ok(Json(result?).into_response())
}

async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<AuditUpload>,
) -> Result<Response, ApiError> {
    let (device, scope) = authenticate(&state, &headers).await?;
    require_protocol(req.protocol)?;
    if req.entries.len() > MAX_AUDIT_ENTRIES {
        return Err(ApiError::BatchTooLarge {
            max: MAX_AUDIT_ENTRIES,
        });
    }
    let r = state
        .with_db(move |db| db.store_audit(device, &scope, &req.entries))
        .await?;
    if r.flagged > 0 {
        tracing::warn!(%device, flagged = r.flagged, "audit entries outside the device's scope");
    }
    tracing::info!(%device, stored = r.stored, duplicates = r.duplicates, "audit");
    Ok(Json(r).into_response())
}

/// A request body's `protocol` must be this server's [`PROTOCOL_VERSION`].
fn require_protocol(protocol: u32) -> Result<(), ApiError> {
    if protocol == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ApiError::UnsupportedProtocol(Some(protocol.to_string())))
    }
}

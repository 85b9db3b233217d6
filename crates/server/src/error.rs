//! The server's one error type. Every failure, including a malformed body or
//! an unknown route, answers with the same JSON shape `{code, message,
//! details}` and a 4xx/5xx status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use shouhu_protocol::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON for this endpoint: {0}")]
    MalformedJson(String),
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("unsupported protocol version {0:?}")]
    UnsupportedProtocol(Option<String>),
    #[error("missing or unknown credential")]
    InvalidCredential,
    #[error("this device was revoked")]
    Revoked,
    #[error("a change is outside this device's scope")]
    OutOfScope { details: Value },
    #[error("this database reuses sequence numbers the server already has")]
    SequenceReused { seq: i64 },
    #[error("unknown or expired enrollment code")]
    InvalidEnrollmentCode,
    #[error("too many changes in one push (at most {max})")]
    BatchTooLarge { max: usize },
    #[error("{0}")]
    BadRequest(String),
    #[error("登录名 {login} 已被使用 / the login name {login} is taken")]
    LoginTaken { login: String },
    #[error("登录名无效：{reason} / invalid login name: {reason}")]
    LoginInvalid { reason: String },
    #[error("角色与范围不匹配：{reason} / the role and scope do not fit: {reason}")]
    ScopeInvalid { reason: String },
    #[error("未知角色 {0} / unknown role {0}")]
    UnknownRole(String),
    #[error("没有这个用户：{0} / no such user: {0}")]
    UserNotFound(String),
    #[error("该用户已被移除：{0} / this user was removed: {0}")]
    UserRemoved(String),
    #[error("密码不符合要求 / the password does not meet the rules ({0})")]
    PasswordRejected(&'static str),
    #[error("该用户的角色不阅读心理辅导记录 / this user's role does not read psychological notes")]
    NotAReader,
    #[error("该用户不在本机范围内 / this user is outside this device's scope")]
    UserOutOfScope { reason: &'static str },
    #[error("阅读公钥无效 / the reader public key is invalid")]
    ReaderKeyInvalid,
    #[error("该用户已有不同的阅读公钥 / this user already has a different reader public key")]
    ReaderKeyExists,
    #[error("服务器上的密码已有更新的变更，本次修改作废 / the password on the server changed since this change was made (the server's newer one stays)")]
    PasswordStale { current: String },
    #[error("修改密码的凭证不对 / the proof of the old credential does not match")]
    PasswordProofInvalid,
    #[error("该用户的登录密钥早于此功能，请管理员重置一次密码 / this user's log-in key predates password changes from devices: an administrator must reset it once")]
    PasswordChangeUnavailable,
    #[error("修改者的角色无权这样修改 / the change's user may not make it")]
    Forbidden { details: Value },
    #[error("服务器不认识修改者 / the change's user is unknown to the server")]
    UnknownUser { details: Value },
    #[error("没有这台设备：{0} / no such device: {0}")]
    DeviceNotFound(uuid::Uuid),
    #[error("这台设备已被吊销：{0} / this device was revoked: {0}")]
    DeviceRevoked(uuid::Uuid),
    #[error("设备范围无效：{reason} / invalid device scope: {reason}")]
    DeviceScopeInvalid { reason: String },
    #[error("no such endpoint")]
    NotFound,
    #[error("internal error: {0}")]
    Internal(String),
    /// The server's certificate or key (`serve`, `fingerprint`, `enroll`).
    #[error(transparent)]
    Tls(#[from] shouhu_tls::TlsError),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "request.malformed_json",
            ApiError::TooLarge { .. } => "request.too_large",
            ApiError::UnsupportedProtocol(_) => "protocol.unsupported_version",
            ApiError::InvalidCredential => "auth.invalid",
            ApiError::Revoked => "auth.revoked",
            ApiError::OutOfScope { .. } => "sync.out_of_scope",
            ApiError::SequenceReused { .. } => "sync.sequence_reused",
            ApiError::InvalidEnrollmentCode => "enroll.invalid_code",
            ApiError::BatchTooLarge { .. } => "request.batch_too_large",
            ApiError::BadRequest(_) => "request.invalid",
            ApiError::LoginTaken { .. } => "user.login_taken",
            ApiError::LoginInvalid { .. } => "user.login_invalid",
            ApiError::ScopeInvalid { .. } => "user.scope_invalid",
            ApiError::UnknownRole(_) => "user.role_unknown",
            ApiError::UserNotFound(_) => "user.not_found",
            ApiError::UserRemoved(_) => "user.removed",
            ApiError::PasswordRejected(_) => "user.password_rejected",
            ApiError::NotAReader => "user.not_a_reader",
            ApiError::UserOutOfScope { .. } => "user.out_of_scope",
            ApiError::ReaderKeyInvalid => "user.reader_key_invalid",
            ApiError::ReaderKeyExists => "user.reader_key_exists",
            ApiError::PasswordStale { .. } => "user.password_stale",
            ApiError::PasswordProofInvalid => "user.password_proof_invalid",
            ApiError::PasswordChangeUnavailable => "user.password_change_unavailable",
            ApiError::Forbidden { .. } => "push.forbidden",
            ApiError::UnknownUser { .. } => "push.unknown_user",
            ApiError::DeviceNotFound(_) => "device.not_found",
            ApiError::DeviceRevoked(_) => "device.revoked",
            ApiError::DeviceScopeInvalid { .. } => "device.scope_invalid",
            ApiError::NotFound => "request.not_found",
            ApiError::Internal(_) => "server.internal",
            ApiError::Tls(e) => e.code(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::BadRequest(_)
            | ApiError::LoginInvalid { .. }
            | ApiError::ScopeInvalid { .. }
            | ApiError::UnknownRole(_)
            | ApiError::PasswordRejected(_)
            | ApiError::ReaderKeyInvalid => StatusCode::BAD_REQUEST,
            ApiError::LoginTaken { .. }
            | ApiError::ReaderKeyExists
            | ApiError::UserRemoved(_)
            | ApiError::PasswordStale { .. }
            | ApiError::PasswordChangeUnavailable
            | ApiError::DeviceRevoked(_) => StatusCode::CONFLICT,
            ApiError::PasswordProofInvalid => StatusCode::FORBIDDEN,
            ApiError::UserNotFound(_) | ApiError::DeviceNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::DeviceScopeInvalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotAReader
            | ApiError::UserOutOfScope { .. }
            | ApiError::Forbidden { .. }
            | ApiError::UnknownUser { .. } => StatusCode::FORBIDDEN,
            ApiError::UnsupportedProtocol(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge { .. } | ApiError::BatchTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::InvalidCredential | ApiError::InvalidEnrollmentCode => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Revoked | ApiError::OutOfScope { .. } => StatusCode::FORBIDDEN,
            ApiError::SequenceReused { .. } => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Internal(_) | ApiError::Tls(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let details = match self {
            ApiError::TooLarge { limit } => json!({ "limit": limit }),
            ApiError::BatchTooLarge { max } => json!({ "max": max }),
            ApiError::UnsupportedProtocol(v) => {
                json!({ "got": v, "supported": shouhu_protocol::PROTOCOL_VERSION })
            }
            ApiError::OutOfScope { details }
            | ApiError::Forbidden { details }
            | ApiError::UnknownUser { details } => details.clone(),
            ApiError::LoginTaken { login } => json!({ "login": login }),
            ApiError::LoginInvalid { reason } | ApiError::ScopeInvalid { reason } => {
                json!({ "reason": reason })
            }
            ApiError::UnknownRole(r) => json!({ "role": r }),
            ApiError::UserNotFound(u) | ApiError::UserRemoved(u) => json!({ "user": u }),
            ApiError::PasswordRejected(code) => json!({ "rule": code }),
            ApiError::UserOutOfScope { reason } => json!({ "reason": reason }),
            ApiError::DeviceNotFound(d) | ApiError::DeviceRevoked(d) => json!({ "device": d }),
            ApiError::DeviceScopeInvalid { reason } => json!({ "reason": reason }),
            ApiError::SequenceReused { seq } => json!({ "seq": seq }),
            ApiError::PasswordStale { current } => json!({ "password_changed_at": current }),
            ApiError::MalformedJson(e) => json!({ "error": e }),
            _ => Value::Null,
        };
        ErrorBody {
            code: self.code().to_string(),
            message: self.to_string(),
            details,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, ApiError::Internal(_)) {
            tracing::error!(error = %self, "internal error");
        }
        (self.status(), Json(self.body())).into_response()
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

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
            ApiError::NotFound => "request.not_found",
            ApiError::Internal(_) => "server.internal",
            ApiError::Tls(e) => e.code(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
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
            ApiError::OutOfScope { details } => details.clone(),
            ApiError::SequenceReused { seq } => json!({ "seq": seq }),
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

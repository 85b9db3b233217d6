//! [`SyncError`]: every way a sync or an enrollment can fail, with a stable
//! machine code, a message in zh-CN and en, and the `{code, message, details}`
//! body every layer serialises. The server's own error codes map onto the
//! variants a person can act on (credential, revocation, scope, version);
//! everything else stays `sync.server` with the server's code in `details`.

use serde::Deserialize;
use serde_json::{json, Value};
use shouhu_core::{ErrorBody, Lang};
use shouhu_store::StoreError;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server could not be reached, or the connection failed, after the
    /// allowed retries.
    #[error("cannot reach the server: {detail}")]
    Network { detail: String },
    /// The server answered with an error this client has no special meaning
    /// for (or kept answering 5xx/429 after the retries).
    #[error("server error {status} {code}: {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
        details: Value,
    },
    /// The server answered 2xx with something that is not the protocol (a
    /// captive portal's login page, a proxy, a different program).
    #[error("unexpected answer from the server: {detail}")]
    BadResponse { detail: String },
    #[error("this device is not enrolled with a sync server")]
    NotEnrolled,
    #[error("invalid server address {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("sync cancelled")]
    Cancelled,
    #[error("the server does not accept this device's credential")]
    AuthInvalid,
    #[error("this device's sync access was revoked")]
    AuthRevoked,
    #[error("a change is outside this device's scope")]
    OutOfScope { details: Value },
    /// A pushed change's user may not make it (role, school, removal).
    #[error("a change's user may not make it")]
    PushForbidden { details: Value },
    /// A pushed change's user is unknown to the server.
    #[error("a change's user is unknown to the server")]
    UnknownUser { details: Value },
    #[error("the server does not support this protocol version")]
    UnsupportedVersion { details: Value },
    #[error("unknown, used or expired enrollment code")]
    EnrollInvalidCode,
    /// The server already holds another notes reader key for this user
    /// (made on another device, where they logged in first); it keeps it.
    #[error("the server holds another reader key for this user")]
    ReaderKeyExists { details: Value },
    /// The address now leads to a different server than the one this store
    /// synced with (its sequence numbers mean nothing here).
    #[error("the server at this address is {found}, this store syncs with {expected}")]
    ServerMismatch { expected: Uuid, found: Uuid },
    /// The server's latest sequence is behind this store's pull cursor: it
    /// was restored from an older backup. Pushing still happened.
    #[error("the server's head {head} is behind this store's pull cursor {cursor}")]
    ServerRewound { head: i64, cursor: i64 },
    /// The server keeps answering without taking the next change or page.
    #[error("the server makes no progress ({phase} at {at})")]
    NoProgress { phase: &'static str, at: i64 },
    /// The server showed a certificate that is not the pinned one (at
    /// enrollment: not the one the administrator's fingerprint names).
    /// Someone may stand between this device and its server: nothing was
    /// sent, and it is never retried as a network failure.
    #[error("the server's certificate {found:?} does not match the pinned fingerprint {expected}")]
    CertificateMismatch {
        expected: String,
        found: Option<String>,
        at_enrollment: bool,
    },
    /// An `https://` server without a fingerprint to pin (enrollment), or a
    /// store enrolled before pinning (sync: enroll again).
    #[error("the server's certificate fingerprint is needed for an https:// address")]
    FingerprintRequired,
    #[error("not a certificate fingerprint: {input:?}")]
    BadFingerprint { input: String },
    /// Plain `http://` to anything but this computer.
    #[error("the address must use https:// (plain http:// only on loopback): {url}")]
    HttpsRequired { url: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The server's error body as it arrives (`ErrorBody` itself only serialises).
#[derive(Debug, Deserialize)]
pub(crate) struct WireError {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub details: Value,
}

impl SyncError {
    /// Map a server error answer onto the variant a person can act on.
    pub(crate) fn from_server(status: u16, e: WireError) -> SyncError {
        match e.code.as_str() {
            "auth.invalid" => SyncError::AuthInvalid,
            "auth.revoked" => SyncError::AuthRevoked,
            "sync.out_of_scope" => SyncError::OutOfScope { details: e.details },
            "push.forbidden" => SyncError::PushForbidden { details: e.details },
            "push.unknown_user" => SyncError::UnknownUser { details: e.details },
            "protocol.unsupported_version" => SyncError::UnsupportedVersion { details: e.details },
            "enroll.invalid_code" => SyncError::EnrollInvalidCode,
            "user.reader_key_exists" => SyncError::ReaderKeyExists { details: e.details },
            _ => SyncError::Server {
                status,
                code: e.code,
                message: e.message,
                details: e.details,
            },
        }
    }

    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            SyncError::Network { .. } => "sync.network",
            SyncError::Server { .. } => "sync.server",
            SyncError::BadResponse { .. } => "sync.bad_response",
            SyncError::NotEnrolled => "sync.not_enrolled",
            SyncError::InvalidUrl { .. } => "sync.invalid_url",
            SyncError::Cancelled => "sync.cancelled",
            SyncError::AuthInvalid => "auth.invalid",
            SyncError::AuthRevoked => "auth.revoked",
            SyncError::OutOfScope { .. } => "sync.out_of_scope",
            SyncError::PushForbidden { .. } => "push.forbidden",
            SyncError::UnknownUser { .. } => "push.unknown_user",
            SyncError::UnsupportedVersion { .. } => "protocol.unsupported_version",
            SyncError::EnrollInvalidCode => "enroll.invalid_code",
            SyncError::ReaderKeyExists { .. } => "user.reader_key_exists",
            SyncError::ServerMismatch { .. } => "sync.server_mismatch",
            SyncError::ServerRewound { .. } => "sync.server_rewound",
            SyncError::NoProgress { .. } => "sync.no_progress",
            SyncError::CertificateMismatch { .. } => "sync.certificate_mismatch",
            SyncError::FingerprintRequired => "sync.fingerprint_required",
            SyncError::BadFingerprint { .. } => "sync.bad_fingerprint",
            SyncError::HttpsRequired { .. } => "sync.https_required",
            SyncError::Store(e) => e.code(),
        }
    }

    /// The server's own error code, for [`SyncError::Server`].
    pub fn server_code(&self) -> Option<&str> {
        match self {
            SyncError::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether trying again later, unchanged, may succeed (the network or the
    /// server may recover); otherwise someone has to act first.
    pub fn is_temporary(&self) -> bool {
        match self {
            SyncError::Network { .. } | SyncError::Cancelled => true,
            SyncError::Server { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        let zh = lang == Lang::ZhCn;
        let s = |zh_text: &str, en_text: &str| {
            if zh {
                zh_text.to_string()
            } else {
                en_text.to_string()
            }
        };
        match self {
            SyncError::Network { .. } => s(
                "无法连接服务器，请检查网络后重试",
                "Cannot reach the server. Check the network and try again.",
            ),
            SyncError::Server { status, code, .. } if *status >= 500 || *status == 429 => {
                if zh {
                    format!("服务器暂时无法处理（{code}），请稍后重试；如果一直出现，请联系管理员")
                } else {
                    format!("The server cannot handle the request right now ({code}). Try again later; if it keeps happening, contact the administrator.")
                }
            }
            SyncError::Server { code, .. } => {
                if zh {
                    format!("服务器拒绝了同步请求（{code}），请联系管理员")
                } else {
                    format!("The server refused the sync request ({code}). Contact the administrator.")
                }
            }
            SyncError::BadResponse { .. } => s(
                "服务器返回的内容无法识别，可能连到了别的网站（例如需要先登录的无线网络），请检查网络和服务器地址",
                "The server's answer is not understood; the network may lead elsewhere (for example a Wi-Fi login page). Check the network and the server address.",
            ),
            SyncError::NotEnrolled => s(
                "本机还没有登记同步，请先用管理员给的加入码登记",
                "This computer is not enrolled for sync yet. Enroll it with the code from the administrator.",
            ),
            SyncError::InvalidUrl { url, .. } => {
                if zh {
                    format!("服务器地址“{url}”不正确，应类似 https://shouhu.example.cn")
                } else {
                    format!("The server address “{url}” is not valid; it should look like https://shouhu.example.cn")
                }
            }
            SyncError::Cancelled => s(
                "同步已取消，未发送的修改会在下次同步时发送",
                "Sync cancelled. Changes not yet sent will be sent next time.",
            ),
            SyncError::AuthInvalid => s(
                "本机的同步凭证无效，请联系管理员重新登记",
                "This computer's sync credential is not valid. Ask the administrator to enroll it again.",
            ),
            SyncError::AuthRevoked => s(
                "管理员已停用本机的同步；未发送的修改仍保存在本机，请联系管理员",
                "The administrator has revoked sync for this computer. Unsent changes are kept on this computer; contact the administrator.",
            ),
            SyncError::OutOfScope { .. } => s(
                "有修改涉及本机负责范围以外的学校，服务器没有接收；这些修改仍保存在本机，请联系管理员",
                "Some changes concern schools outside this computer's assignment and the server refused them. They are kept on this computer; contact the administrator.",
            ),
            SyncError::PushForbidden { .. } => s(
                "有修改的录入人没有相应权限（角色、学校或账号已移除），服务器没有接收；这些修改仍保存在本机，请联系管理员",
                "Some changes were made by a user without the right to make them (role, school or a removed account) and the server refused them. They are kept on this computer; contact the administrator.",
            ),
            SyncError::UnknownUser { .. } => s(
                "有修改的录入人不是服务器上的用户，服务器没有接收；这些修改仍保存在本机，请联系管理员在服务器上添加该用户",
                "Some changes were made by a user the server does not know and it refused them. They are kept on this computer; ask the administrator to add the user on the server.",
            ),
            SyncError::UnsupportedVersion { .. } => s(
                "服务器与本软件的版本不兼容，请升级守护软件或联系管理员",
                "The server and this program speak different protocol versions. Update Shouhu or contact the administrator.",
            ),
            SyncError::EnrollInvalidCode => s(
                "加入码无效、已用过或已过期，请向管理员索取新的加入码",
                "The enrollment code is unknown, already used or expired. Ask the administrator for a new one.",
            ),
            SyncError::ReaderKeyExists { .. } => s(
                "服务器上已有您在另一台电脑上登记的心理记录阅读密钥，本机的密钥没有登记：其他电脑写的心理记录在本机打不开。请在那台电脑上打开记录，或联系管理员",
                "The server already holds the notes reader key you registered on another computer, so this computer's key was not registered: notes written on other computers do not open here. Open them on that computer, or contact the administrator.",
            ),
            SyncError::ServerMismatch { .. } => s(
                "这个地址上的服务器不是本机登记时的服务器，请核对服务器地址或联系管理员",
                "The server at this address is not the one this computer is enrolled with. Check the address or contact the administrator.",
            ),
            SyncError::ServerRewound { .. } => s(
                "服务器上的数据比本机已同步的旧（可能从备份恢复过）；本机的修改已发送，请联系管理员",
                "The server holds older data than this computer has already synced (it may have been restored from a backup). This computer's changes were sent; contact the administrator.",
            ),
            SyncError::NoProgress { .. } => s(
                "服务器一直没有接收数据，同步无法继续，请联系管理员",
                "The server keeps not accepting the data, so sync cannot continue. Contact the administrator.",
            ),
            SyncError::CertificateMismatch {
                at_enrollment: false,
                ..
            } => s(
                "服务器的证书变了，与本机登记时记录的不一致，可能有人冒充服务器。为保护儿童信息，本次没有同步，未发送的修改仍保存在本机。请不要继续同步，并联系县里的管理员核实",
                "The server's certificate has changed: it is not the one recorded when this computer enrolled, and someone may be impersonating the server. Nothing was synced and unsent changes are kept on this computer. Do not sync; contact the county administrator.",
            ),
            SyncError::CertificateMismatch {
                at_enrollment: true,
                ..
            } => s(
                "服务器的证书与管理员给的证书指纹不一致，本机没有登记。请核对指纹是否抄错；如果没有抄错，请不要登记，并联系县里的管理员",
                "The server's certificate does not match the fingerprint from the administrator, so this computer was not enrolled. Check the fingerprint you typed; if it is right, do not enroll, and contact the county administrator.",
            ),
            SyncError::FingerprintRequired => s(
                "缺少服务器证书指纹：请填写管理员给的证书指纹（全部64位，或至少前16位），与加入码一起登记",
                "The server's certificate fingerprint is missing: enter the fingerprint from the administrator (all 64 characters, or at least the first 16) and enroll with the code.",
            ),
            SyncError::BadFingerprint { .. } => s(
                "证书指纹不正确：应为64位十六进制字符（0-9、A-F，可带冒号或空格），或至少前16位，请核对",
                "The certificate fingerprint is not valid: it is 64 hexadecimal characters (0-9, A-F; colons or spaces allowed), or at least the first 16 of them. Check it.",
            ),
            SyncError::HttpsRequired { .. } => s(
                "服务器地址必须以 https:// 开头（只有本机上的测试服务器可以用 http://）",
                "The server address must start with https:// (plain http:// only for a test server on this computer).",
            ),
            SyncError::Store(e) => e.message(lang),
        }
    }

    pub fn details(&self, lang: Lang) -> Value {
        match self {
            SyncError::Network { detail } | SyncError::BadResponse { detail } => {
                json!({ "error": detail })
            }
            SyncError::Server {
                status,
                code,
                message,
                details,
            } => json!({ "status": status, "code": code, "message": message, "details": details }),
            SyncError::InvalidUrl { url, reason } => json!({ "url": url, "reason": reason }),
            SyncError::OutOfScope { details }
            | SyncError::PushForbidden { details }
            | SyncError::UnknownUser { details }
            | SyncError::UnsupportedVersion { details }
            | SyncError::ReaderKeyExists { details } => details.clone(),
            SyncError::ServerMismatch { expected, found } => {
                json!({ "expected": expected, "found": found })
            }
            SyncError::ServerRewound { head, cursor } => json!({ "head": head, "cursor": cursor }),
            SyncError::NoProgress { phase, at } => json!({ "phase": phase, "at": at }),
            SyncError::CertificateMismatch {
                expected,
                found,
                at_enrollment,
            } => json!({ "expected": expected, "found": found, "at_enrollment": at_enrollment }),
            SyncError::BadFingerprint { input } => json!({ "input": input }),
            SyncError::HttpsRequired { url } => json!({ "url": url }),
            SyncError::Store(e) => e.details(lang),
            _ => Value::Null,
        }
    }

    pub fn body(&self, lang: Lang) -> ErrorBody {
        ErrorBody {
            code: self.code().to_string(),
            message: self.message(lang),
            details: self.details(lang),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_map_to_actionable_variants() {
        let w = |code: &str| WireError {
            code: code.into(),
            message: String::new(),
            details: json!({"x": 1}),
        };
        assert_eq!(
            SyncError::from_server(401, w("auth.invalid")).code(),
            "auth.invalid"
        );
        let exists = SyncError::from_server(409, w("user.reader_key_exists"));
        assert_eq!(exists.code(), "user.reader_key_exists");
        assert!(!exists.is_temporary());
        assert!(exists.message(Lang::ZhCn).contains("阅读密钥"));
        assert_eq!(
            SyncError::from_server(403, w("auth.revoked")).code(),
            "auth.revoked"
        );
        let e = SyncError::from_server(403, w("sync.out_of_scope"));
        assert_eq!(e.code(), "sync.out_of_scope");
        assert_eq!(e.details(Lang::En), json!({"x": 1}));
        for code in ["push.forbidden", "push.unknown_user"] {
            let e = SyncError::from_server(403, w(code));
            assert_eq!(e.code(), code);
            assert_eq!(e.details(Lang::En), json!({"x": 1}));
            assert!(!e.message(Lang::ZhCn).is_ascii());
        }
        let e = SyncError::from_server(409, w("sync.sequence_reused"));
        assert_eq!(e.code(), "sync.server");
        assert_eq!(e.server_code(), Some("sync.sequence_reused"));
        assert_eq!(e.body(Lang::En).details["code"], "sync.sequence_reused");
        assert!(!e.is_temporary());
        assert!(SyncError::from_server(503, w("server.internal")).is_temporary());
    }

    #[test]
    fn messages_in_both_languages() {
        let e = SyncError::Network {
            detail: "refused".into(),
        };
        assert_eq!(e.message(Lang::ZhCn), "无法连接服务器，请检查网络后重试");
        assert!(e.message(Lang::En).starts_with("Cannot reach the server"));
        for e in [
            SyncError::NotEnrolled,
            SyncError::Cancelled,
            SyncError::AuthInvalid,
            SyncError::AuthRevoked,
            SyncError::EnrollInvalidCode,
            SyncError::FingerprintRequired,
            SyncError::BadFingerprint { input: "x".into() },
            SyncError::HttpsRequired {
                url: "http://10.0.0.5".into(),
            },
        ] {
            assert_ne!(e.message(Lang::ZhCn), e.message(Lang::En));
            assert!(!e.message(Lang::ZhCn).is_ascii(), "{}", e.code());
        }
        // A changed certificate says so, says what to do, and is no blip.
        let changed = SyncError::CertificateMismatch {
            expected: "AB:CD".into(),
            found: Some("EF:01".into()),
            at_enrollment: false,
        };
        assert_eq!(changed.code(), "sync.certificate_mismatch");
        assert!(!changed.is_temporary());
        let zh = changed.message(Lang::ZhCn);
        assert!(zh.contains("证书变了") && zh.contains("不要继续同步") && zh.contains("管理员"));
        assert_eq!(changed.details(Lang::En)["found"], "EF:01");
        let at_enrollment = SyncError::CertificateMismatch {
            expected: "AB:CD".into(),
            found: None,
            at_enrollment: true,
        };
        assert_ne!(at_enrollment.message(Lang::ZhCn), zh);
        assert!(at_enrollment.message(Lang::ZhCn).contains("核对指纹"));
        let store = SyncError::from(StoreError::DeleteReasonRequired);
        assert_eq!(store.code(), "record.delete_reason_required");
        assert_eq!(store.message(Lang::ZhCn), "删除记录必须填写原因");
    }
}

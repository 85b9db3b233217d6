//! One error type for the crate, each variant with a stable machine `code`.

use serde_json::{json, Value};

use crate::role::{Action, Role};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The role may not do this at all, or not in this place.
    #[error("role {role:?} may not {action:?} here")]
    Forbidden { role: Role, action: Action },
    /// User name or password wrong (never says which).
    #[error("wrong user name or password")]
    WrongPassword,
    /// Too many failed attempts: try again after this many seconds.
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    LockedOut { retry_after_secs: u64 },
    #[error("password must have at least {min} characters")]
    PasswordTooShort { min: usize },
    #[error("password must have at most {max} characters")]
    PasswordTooLong { max: usize },
    #[error("password must contain letters and digits")]
    PasswordTooSimple,
    #[error("password must differ from the user name")]
    PasswordIsUserName,
    /// A stored hash that is not a valid Argon2 PHC string.
    #[error("stored password hash is unreadable")]
    HashCorrupt,
    /// Authenticated decryption failed: wrong key or the bytes were changed.
    #[error("decryption failed: wrong key or tampered data")]
    DecryptFailed,
    /// A note has no key wrapped for this reader.
    #[error("no key for this reader")]
    NotAReader,
    /// A key or ciphertext of the wrong length or version.
    #[error("malformed key material: {what}")]
    Malformed { what: &'static str },
    /// The operating system's random source failed.
    #[error("random source failed")]
    Random,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Forbidden { .. } => "auth.forbidden",
            AuthError::WrongPassword => "auth.wrong_password",
            AuthError::LockedOut { .. } => "auth.locked_out",
            AuthError::PasswordTooShort { .. } => "auth.password_too_short",
            AuthError::PasswordTooLong { .. } => "auth.password_too_long",
            AuthError::PasswordTooSimple => "auth.password_too_simple",
            AuthError::PasswordIsUserName => "auth.password_is_user_name",
            AuthError::HashCorrupt => "auth.hash_corrupt",
            AuthError::DecryptFailed => "crypto.decrypt_failed",
            AuthError::NotAReader => "crypto.not_a_reader",
            AuthError::Malformed { .. } => "crypto.malformed",
            AuthError::Random => "crypto.random_failed",
        }
    }

    /// Machine-readable details for `{code, message, details}`.
    pub fn details(&self) -> Value {
        match self {
            AuthError::Forbidden { role, action } => {
                json!({ "role": role.as_str(), "action": action.as_str() })
            }
            AuthError::LockedOut { retry_after_secs } => {
                json!({ "retry_after_secs": retry_after_secs })
            }
            AuthError::PasswordTooShort { min } => json!({ "min": min }),
            AuthError::PasswordTooLong { max } => json!({ "max": max }),
            AuthError::Malformed { what } => json!({ "what": what }),
            _ => Value::Null,
        }
    }

    /// The Chinese message shown when a client has no catalog entry for the code.
    pub fn message_zh(&self) -> String {
        match self {
            AuthError::Forbidden { role, action } => {
                format!("{}无权{}", role.label_zh(), action.label_zh())
            }
            AuthError::WrongPassword => "用户名或密码不正确".into(),
            AuthError::LockedOut { retry_after_secs } => {
                format!("登录失败次数过多，请{retry_after_secs}秒后再试")
            }
            AuthError::PasswordTooShort { min } => format!("密码至少需要{min}个字符"),
            AuthError::PasswordTooLong { max } => format!("密码最多{max}个字符"),
            AuthError::PasswordTooSimple => "密码需同时包含字母和数字".into(),
            AuthError::PasswordIsUserName => "密码不能与用户名相同".into(),
            AuthError::HashCorrupt => "保存的密码数据已损坏，请联系管理员重置密码".into(),
            AuthError::DecryptFailed => "无法解密：密钥不正确或数据已被篡改".into(),
            AuthError::NotAReader => "您没有查看此记录的权限".into(),
            AuthError::Malformed { .. } => "密钥数据格式不正确".into(),
            AuthError::Random => "系统随机数生成失败".into(),
        }
    }
}

use serde_json::Value;
use shouhu_auth::AuthError;
use shouhu_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Set-up was asked for where a keyring already exists.
    #[error("this laptop is already set up")]
    AlreadySetUp,
    /// Log-in was asked for where there is no keyring yet.
    #[error("this laptop is not set up yet")]
    NotSetUp,
    /// A user with this log-in name is already on this laptop.
    #[error("user name {0} is already on this laptop")]
    UserExists(String),
    #[error("no user {0} on this laptop")]
    NoSuchUser(String),
    #[error("log-in name must be 2-32 letters, digits, '.', '_' or '-'")]
    LoginNameInvalid,
    /// The keyring file exists but cannot be read (damaged, or from a newer
    /// program).
    #[error("keyring {path} cannot be read: {reason}")]
    KeyringUnreadable { path: String, reason: String },
    #[error("keyring {path} cannot be written: {reason}")]
    KeyringWrite { path: String, reason: String },
    /// The last user who can open the store may not be removed.
    #[error("the last user of this laptop cannot be removed")]
    LastUser,
}

impl VaultError {
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::Auth(e) => e.code(),
            VaultError::Store(e) => e.code(),
            VaultError::AlreadySetUp => "vault.already_set_up",
            VaultError::NotSetUp => "vault.not_set_up",
            VaultError::UserExists(_) => "vault.user_exists",
            VaultError::NoSuchUser(_) => "vault.no_such_user",
            VaultError::LoginNameInvalid => "vault.login_name_invalid",
            VaultError::KeyringUnreadable { .. } => "vault.keyring_unreadable",
            VaultError::KeyringWrite { .. } => "vault.keyring_write_failed",
            VaultError::LastUser => "vault.last_user",
        }
    }

    pub fn details(&self) -> Value {
        match self {
            VaultError::Auth(e) => e.details(),
            VaultError::UserExists(name) | VaultError::NoSuchUser(name) => {
                serde_json::json!({ "login_name": name })
            }
            _ => Value::Null,
        }
    }

    pub fn message_zh(&self) -> String {
        match self {
            VaultError::Auth(e) => e.message_zh(),
            VaultError::Store(e) => e.message(shouhu_core::Lang::ZhCn),
            VaultError::AlreadySetUp => "本机已完成初始设置".into(),
            VaultError::NotSetUp => "本机尚未设置，请先创建第一个用户".into(),
            VaultError::UserExists(n) => format!("用户名“{n}”在本机已存在"),
            VaultError::NoSuchUser(n) => format!("本机没有用户“{n}”"),
            VaultError::LoginNameInvalid => "用户名须为2至32位字母、数字或 . _ - 符号".into(),
            VaultError::KeyringUnreadable { .. } => {
                "本机的用户密钥文件无法读取，请联系管理员".into()
            }
            VaultError::KeyringWrite { .. } => "无法保存用户密钥文件，请检查磁盘空间".into(),
            VaultError::LastUser => "不能删除本机最后一个用户".into(),
        }
    }
}

//! [`Error`]: what an API call can fail with. Every variant has a stable code;
//! [`Error::body`] gives the `{code, message, details}` the UI receives (it
//! translates the code and shows per-field messages under their fields).

use serde_json::{json, Value};
use shouhu_core::{ErrorBody, Lang, ValidationErrors};
use shouhu_store::StoreError;
use shouhu_sync::SyncError;
use shouhu_vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The current user's role may not do this (psychological notes are for
    /// counselors only).
    #[error("the {role} role may not {action}")]
    Forbidden {
        role: &'static str,
        action: &'static str,
    },
    /// A value the UI sent is not one the API knows (a setting, a field).
    #[error("invalid value {value:?} for {field}")]
    InvalidInput { field: String, value: String },
    /// Demo data is only offered to an empty store.
    #[error("the store already holds data")]
    NotEmpty,
    /// Log-in, set-up, passwords, laptop users (wrong password, throttled,
    /// weak new password...).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// No one is logged in (never was, logged out, locked, or the idle time
    /// ran out): the UI shows the log-in screen.
    #[error("locked: log in first")]
    Locked,
    /// The new password and its repetition differ.
    #[error("the two passwords differ")]
    PasswordMismatch,
    /// A note would be sealed for nobody: no counselor or supervisor key is
    /// known on this laptop yet (sync first, or a counselor logs in here).
    #[error("no reader of psychological notes is known on this laptop")]
    NoNoteReaders,
    /// An edit opened at one version of a record, saved after a sync
    /// changed it: saving would undo what the sync brought.
    #[error("the {entity} {id} changed since it was opened (version {opened}, now {now})")]
    Changed {
        entity: &'static str,
        id: uuid::Uuid,
        opened: i64,
        now: i64,
    },
    /// An Excel import or export failed (unreadable file, missing headers,
    /// bad rows: `details.errors` lists each with its Excel row).
    #[error(transparent)]
    Xlsx(#[from] shouhu_exchange::XlsxError),
    /// An export of children without a password for the workbook.
    #[error("an export must be protected with a password")]
    ExportPasswordRequired,
    /// A file chosen in the dialog cannot be read or written.
    #[error("cannot {} {path}: {error}", if *.write { "write" } else { "read" })]
    File {
        path: String,
        error: String,
        write: bool,
    },
}

impl From<shouhu_auth::AuthError> for Error {
    fn from(e: shouhu_auth::AuthError) -> Self {
        Error::Vault(VaultError::Auth(e))
    }
}

impl From<ValidationErrors> for Error {
    fn from(v: ValidationErrors) -> Self {
        Error::Store(StoreError::Invalid(v))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> String {
        match self {
            Error::Store(e) => e.code().to_string(),
            Error::Sync(e) => e.code().to_string(),
            Error::Forbidden { .. } => "auth.forbidden".into(),
            Error::InvalidInput { .. } => "input.invalid".into(),
            Error::NotEmpty => "demo.store_not_empty".into(),
            Error::Vault(e) => e.code().into(),
            Error::Locked => "auth.locked".into(),
            Error::PasswordMismatch => "auth.password_mismatch".into(),
            Error::NoNoteReaders => "notes.no_readers".into(),
            Error::Changed { .. } => "record.changed".into(),
            Error::Xlsx(e) => e.code().into(),
            Error::ExportPasswordRequired => "export.password_required".into(),
            Error::File { write: false, .. } => "io.read_failed".into(),
            Error::File { write: true, .. } => "io.write_failed".into(),
        }
    }

    pub fn body(&self, lang: Lang) -> ErrorBody {
        let zh = lang == Lang::ZhCn;
        match self {
            Error::Store(e) => e.body(lang),
            Error::Sync(e) => e.body(lang),
            Error::Forbidden { role, action } => ErrorBody {
                code: self.code(),
                message: if zh {
                    "您的角色无权进行此操作".into()
                } else {
                    self.to_string()
                },
                details: json!({ "role": role, "action": action }),
            },
            Error::InvalidInput { field, value } => ErrorBody {
                code: self.code(),
                message: if zh {
                    format!("“{value}”不是{field}的有效值")
                } else {
                    self.to_string()
                },
                details: json!({ "field": field, "value": value }),
            },
            Error::NotEmpty => ErrorBody {
                code: self.code(),
                message: if zh {
                    "已有数据，不能再生成演示数据".into()
                } else {
                    self.to_string()
                },
                details: Value::Null,
            },
            Error::Vault(VaultError::Store(e)) => e.body(lang),
            Error::Vault(e) => ErrorBody {
                code: self.code(),
                message: if zh { e.message_zh() } else { e.to_string() },
                details: e.details(),
            },
            Error::Locked => ErrorBody {
                code: self.code(),
                message: if zh {
                    "已锁定，请重新登录".into()
                } else {
                    self.to_string()
                },
                details: Value::Null,
            },
            Error::NoNoteReaders => ErrorBody {
                code: self.code(),
                message: if zh {
                    "本机还没有任何心理教师或督导的密钥，心理辅导记录无法加密保存：请先同步，或请心理教师在本机登录一次".into()
                } else {
                    self.to_string()
                },
                details: Value::Null,
            },
            Error::Changed {
                entity,
                id,
                opened,
                now,
            } => ErrorBody {
                code: self.code(),
                message: if zh {
                    "这条记录在您打开后已被同步更新，请重新打开后再修改".into()
                } else {
                    "This record was changed by a sync after you opened it: open it again, then edit"
                        .into()
                },
                details: json!({ "entity": entity, "id": id, "opened": opened, "now": now }),
            },
            Error::Xlsx(e) => e.body(lang),
            Error::ExportPasswordRequired => ErrorBody {
                code: self.code(),
                message: if zh {
                    "导出的儿童信息必须设置打开密码：请输入密码（至少8位）".into()
                } else {
                    self.to_string()
                },
                details: Value::Null,
            },
            Error::File { path, error, write } => ErrorBody {
                code: self.code(),
                message: match (zh, write) {
                    (true, false) => format!("无法读取文件 {path}：{error}"),
                    (true, true) => {
                        format!("无法写入文件 {path}：{error}（文件是否正在Excel中打开？）")
                    }
                    (false, _) => self.to_string(),
                },
                details: json!({ "path": path, "error": error }),
            },
            Error::PasswordMismatch => ErrorBody {
                code: self.code(),
                message: if zh {
                    "两次输入的密码不一致，请重新输入".into()
                } else {
                    self.to_string()
                },
                details: Value::Null,
            },
        }
    }

    /// The field errors of a validation failure (empty for other errors).
    pub fn field_errors(&self, lang: Lang) -> Vec<crate::FieldProblem> {
        match self {
            Error::Store(StoreError::Invalid(v)) => crate::field_problems(v, lang),
            _ => vec![],
        }
    }
}

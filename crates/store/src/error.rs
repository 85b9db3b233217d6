//! The store's one error type: every variant has a stable machine code and a
//! message in zh-CN and en; [`StoreError::body`] gives `{code, message, details}`.

use serde_json::{json, Value};
use shouhu_core::{ErrorBody, Lang, ValidationErrors};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid record: {0}")]
    Invalid(#[from] ValidationErrors),
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: Uuid },
    #[error("{entity} {id} is deleted")]
    Deleted { entity: &'static str, id: Uuid },
    #[error("{entity} records cannot be changed once written")]
    Immutable { entity: &'static str },
    #[error("home visit {id} is finalised; amend it instead")]
    VisitFinalised { id: Uuid },
    #[error("home visit {id} is still a draft; edit it instead of amending")]
    VisitNotFinalised { id: Uuid },
    #[error("home visit has no field {field}")]
    UnknownField { field: String },
    #[error("{field} refers to {entity} {id}, which does not exist")]
    MissingReference {
        field: &'static str,
        entity: &'static str,
        id: Uuid,
    },
    #[error("a reason is required to delete a record")]
    DeleteReasonRequired,
    #[error("conflict {id} is already resolved")]
    ConflictResolved { id: Uuid },
    #[error("that choice does not fit conflict {id}")]
    ResolutionInvalid { id: Uuid },
    #[error("{entity} {id} already exists")]
    AlreadyExists { entity: &'static str, id: Uuid },
    #[error("the database has schema version {found}; this program knows up to {supported}")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("cannot open the database: {0}")]
    Open(String),
    /// An encrypted store did not open with the key: a wrong key, or a file
    /// that is damaged or was changed.
    #[error("the database does not open with this key (wrong key, or the file is damaged or was changed)")]
    KeyRejected,
    #[error("stored record {id} cannot be read: {source}")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    /// A change-log sequence number outside 1 ..= 2^40 - 1 (a log position
    /// holds no more).
    #[error("change-log sequence {seq} of device {device_id} is out of range")]
    BadSequence { device_id: Uuid, seq: i64 },
    /// A school that left the scope still has changes of this device the
    /// server does not hold: they are pushed before the school is removed.
    #[error("school {school_id} has {pending} changes not yet sent; it is removed once they are")]
    PurgePending { school_id: Uuid, pending: i64 },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("serialisation error: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Invalid(v) => v.code(),
            StoreError::NotFound { .. } => "record.not_found",
            StoreError::Deleted { .. } => "record.deleted",
            StoreError::Immutable { .. } => "record.immutable",
            StoreError::VisitFinalised { .. } => "visit.finalised",
            StoreError::VisitNotFinalised { .. } => "visit.not_finalised",
            StoreError::UnknownField { .. } => "visit.unknown_field",
            StoreError::MissingReference { .. } => "record.reference_missing",
            StoreError::DeleteReasonRequired => "record.delete_reason_required",
            StoreError::AlreadyExists { .. } => "record.already_exists",
            StoreError::ConflictResolved { .. } => "conflict.already_resolved",
            StoreError::ResolutionInvalid { .. } => "conflict.resolution_invalid",
            StoreError::SchemaTooNew { .. } => "store.schema_too_new",
            StoreError::Open(_) => "store.open_failed",
            StoreError::KeyRejected => "store.key_rejected",
            StoreError::Corrupt { .. } => "store.corrupt_record",
            StoreError::BadSequence { .. } => "sync.bad_sequence",
            StoreError::PurgePending { .. } => "sync.purge_pending",
            StoreError::Sqlite(_) => "store.database",
            StoreError::Json(_) => "store.serialisation",
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        let zh = matches!(lang, Lang::ZhCn);
        match self {
            StoreError::Invalid(v) => v.message(lang),
            StoreError::NotFound { entity, .. } if zh => {
                format!("找不到该{}，可能已被删除或尚未同步", entity_zh(entity))
            }
            StoreError::Deleted { entity, .. } if zh => format!("该{}已删除", entity_zh(entity)),
            StoreError::Immutable { entity } if zh => {
                format!("{}一经保存不能修改", entity_zh(entity))
            }
            StoreError::VisitFinalised { .. } if zh => {
                "家访记录已定稿，不能直接修改，请添加更正记录".to_string()
            }
            StoreError::VisitNotFinalised { .. } if zh => {
                "家访记录还是草稿，请直接修改草稿".to_string()
            }
            StoreError::UnknownField { field } if zh => format!("家访记录没有“{field}”这一项"),
            StoreError::MissingReference { entity, .. } if zh => {
                format!("关联的{}不存在，请先录入或同步", entity_zh(entity))
            }
            StoreError::DeleteReasonRequired if zh => "删除记录必须填写原因".to_string(),
            StoreError::AlreadyExists { entity, .. } if zh => {
                format!("该{}已存在（编号重复）", entity_zh(entity))
            }
            StoreError::ConflictResolved { .. } if zh => "该冲突已处理过".to_string(),
            StoreError::ResolutionInvalid { .. } if zh => {
                "这种处理方式不适用于该冲突（合并时请填写合并后的值）".to_string()
            }
            StoreError::SchemaTooNew { .. } if zh => {
                "数据库版本比本程序新，请升级守护软件后再打开".to_string()
            }
            StoreError::Open(e) if zh => format!("无法打开数据库：{e}"),
            StoreError::KeyRejected if zh => {
                "无法用此密钥打开数据库：密钥不正确，或数据库文件已损坏、被改动".to_string()
            }
            StoreError::Corrupt { .. } if zh => {
                "数据库中有一条记录无法读取，请联系管理员".to_string()
            }
            StoreError::BadSequence { .. } if zh => {
                "同步数据中的变更序号超出范围，请联系管理员".to_string()
            }
            StoreError::PurgePending { pending, .. } if zh => {
                format!("该学校还有 {pending} 条修改未上传，上传后才会从本机移除")
            }
            StoreError::Sqlite(e) if zh => format!("数据库错误：{e}"),
            StoreError::Json(e) if zh => format!("数据格式错误：{e}"),
            other => other.to_string(),
        }
    }

    pub fn details(&self, lang: Lang) -> Value {
        match self {
            StoreError::Invalid(v) => v.details(lang),
            StoreError::NotFound { entity, id }
            | StoreError::Deleted { entity, id }
            | StoreError::AlreadyExists { entity, id } => json!({ "entity": entity, "id": id }),
            StoreError::Immutable { entity } => json!({ "entity": entity }),
            StoreError::VisitFinalised { id }
            | StoreError::VisitNotFinalised { id }
            | StoreError::ConflictResolved { id }
            | StoreError::ResolutionInvalid { id } => {
                json!({ "id": id })
            }
            StoreError::UnknownField { field } => json!({ "field": field }),
            StoreError::MissingReference { field, entity, id } => {
                json!({ "field": field, "entity": entity, "id": id })
            }
            StoreError::SchemaTooNew { found, supported } => {
                json!({ "found": found, "supported": supported })
            }
            StoreError::Corrupt { id, .. } => json!({ "id": id }),
            StoreError::BadSequence { device_id, seq } => {
                json!({ "device_id": device_id, "seq": seq })
            }
            StoreError::PurgePending { school_id, pending } => {
                json!({ "school_id": school_id, "pending": pending })
            }
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

/// Chinese names of record kinds, for messages.
pub fn entity_zh(entity: &str) -> &'static str {
    match entity {
        "school" => "学校",
        "child" => "儿童档案",
        "household" => "家庭",
        "help_plan" => "帮扶计划",
        "plan_version" => "帮扶计划历史版本",
        "home_visit" => "家访记录",
        "visit_amendment" => "家访更正记录",
        "follow_up" => "跟进事项",
        "psych_note" => "心理辅导记录",
        "aid" => "救助记录",
        "absence" => "缺勤记录",
        "dropout_event" => "辍学记录",
        "persuasion_visit" => "劝返记录",
        "family_contact" => "亲情联系记录",
        "safety_session" => "安全教育记录",
        "screening_round" => "排查批次",
        "screening_entry" => "排查记录",
        "conflict" => "同步冲突",
        _ => "记录",
    }
}

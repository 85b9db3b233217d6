//! Conflict records: when two people changed the same field without either
//! having seen the other's edit (or one edited what the other deleted), the
//! server keeps one value in the record (its order decides) and writes the
//! other here, for a person to review. Conflicts sync to every device in scope;
//! resolving one is an ordinary change that syncs too.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::*;
use crate::error::{Checker, FieldErrorKind, ValidationErrors};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// Both changed the same field.
    #[default]
    SameField,
    /// One edited a record another had deleted (the record stays deleted; the
    /// edit's values are kept in it).
    EditVsDelete,
    /// One deleted a record another had edited.
    DeleteVsEdit,
}

/// Who made one side of a conflict, and when (their clock, and the server's
/// order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeStamp {
    pub device_id: Uuid,
    pub user_id: Uuid,
    /// The device's hybrid logical clock (physical ms << 16 | counter).
    pub hlc: u64,
    pub server_seq: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictStatus {
    #[default]
    Open,
    Resolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionChoice {
    /// Keep the value the record has.
    KeepCurrent,
    /// Take the value that was set aside.
    KeepOther,
    /// A value a person typed, merging both.
    Merged,
    /// Edit-versus-delete: bring the record back.
    Restore,
    /// Edit-versus-delete: leave it deleted.
    KeepDeleted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub choice: ResolutionChoice,
    /// The value the field ends with (null for restore / keep-deleted).
    pub value: Value,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conflict {
    pub entity: Option<EntityKind>,
    pub record_id: Uuid,
    pub school_id: Option<Uuid>,
    pub kind: ConflictKind,
    /// The dotted field path (same-field conflicts).
    pub field: Option<String>,
    /// The value the record kept (the later change in the server's order).
    pub current_value: Value,
    pub current_by: ChangeStamp,
    /// The value set aside.
    pub other_value: Value,
    pub other_by: ChangeStamp,
    pub status: ConflictStatus,
    pub resolution: Option<Resolution>,
}

impl Entity for Conflict {
    const KIND: EntityKind = EntityKind::Conflict;
    fn validate(&self, _today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "record_id", self.record_id);
        if self.entity.is_none() {
            c.push("entity", FieldErrorKind::Required);
        }
        if self.status == ConflictStatus::Resolved && self.resolution.is_none() {
            c.push("resolution", FieldErrorKind::Required);
        }
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: None,
            parent_id: Some(self.record_id),
            date: None,
        }
    }
}

//! The operation of one change, shared by the store's change log, the wire
//! protocol and the server.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `fields` is the whole body.
    Create,
    /// `fields` maps dotted paths to their new values.
    Update,
    /// `fields` is `{"reason": "..."}`.
    Delete,
    /// Undo a delete (resolving an edit-versus-delete conflict); `fields` is
    /// `{}`.
    Restore,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Restore => "restore",
        }
    }
    pub fn parse(s: &str) -> Option<Op> {
        match s {
            "create" => Some(Op::Create),
            "update" => Some(Op::Update),
            "delete" => Some(Op::Delete),
            "restore" => Some(Op::Restore),
            _ => None,
        }
    }
}

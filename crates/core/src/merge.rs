//! The merge rules: how the server applies one change to its copy of a record.
//!
//! The server applies every device's changes in that device's sequence order
//! and numbers them with one server-wide sequence; that order is the truth.
//! For each field a record remembers the stamp of the change that last wrote it
//! (server sequence and device). A change carries the record version it was
//! based on (the highest server sequence the editing device had applied to the
//! record). An edit of field `p` is **concurrent** with the last write of `p`
//! when that write is newer than the edit's base and came from another device:
//! neither had seen the other. Then:
//!
//! - different fields of one record never conflict: each keeps its own edit;
//! - the same field, concurrently, with different values: the later change in
//!   the server's order sets the field, and the earlier value is kept in a
//!   conflict record for a person to resolve (nothing vanishes silently);
//! - an edit of a deleted record keeps its values in the (still deleted)
//!   record and opens an edit-versus-delete conflict; a delete of a record
//!   someone edited concurrently opens a delete-versus-edit conflict. A record
//!   is never silently resurrected nor silently lost;
//! - a change that resolves a conflict, and any change to a conflict record,
//!   never opens a new conflict (so resolutions cannot loop).
//!
//! Wall clocks play no part: laptop clocks are off by days.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::diff::{self, Fields};
use crate::model::{ChangeStamp, ConflictKind, EntityKind};
use crate::Op;

/// The server's copy of one record with what the merge needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordState {
    pub body: Value,
    pub deleted: bool,
    /// Who created the record (stamps every field not written since).
    pub created: ChangeStamp,
    /// Stamps of fields written after creation, by dotted path.
    #[serde(default)]
    pub fields: BTreeMap<String, ChangeStamp>,
    /// The delete (or restore) that set `deleted`, if any.
    #[serde(default)]
    pub deleted_by: Option<ChangeStamp>,
    /// Server sequence of the last change applied.
    pub version: i64,
}

/// An incoming change, as the merge sees it.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    pub entity: EntityKind,
    pub op: Op,
    pub fields: &'a Value,
    pub base_version: i64,
    pub resolves: Option<Uuid>,
    pub stamp: ChangeStamp,
}

/// A conflict to record (the server turns it into a conflict record).
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictDraft {
    pub kind: ConflictKind,
    pub field: Option<String>,
    pub current_value: Value,
    pub current_by: ChangeStamp,
    pub other_value: Value,
    pub other_by: ChangeStamp,
}

fn related(a: &str, b: &str) -> bool {
    a == b
        || (b.len() > a.len() && b.starts_with(a) && b.as_bytes()[a.len()] == b'.')
        || (a.len() > b.len() && a.starts_with(b) && a.as_bytes()[b.len()] == b'.')
}

impl RecordState {
    /// The stamp of the last write that touched `path` (or a path above or
    /// below it).
    pub fn stamp_of(&self, path: &str) -> &ChangeStamp {
        self.fields
            .iter()
            .filter(|(p, _)| related(p, path))
            .map(|(_, s)| s)
            .max_by_key(|s| s.server_seq)
            .filter(|s| s.server_seq > self.created.server_seq)
            .unwrap_or(&self.created)
    }

    /// The newest write of any field (or the delete).
    fn newest(&self) -> &ChangeStamp {
        self.fields
            .values()
            .chain(std::iter::once(&self.created))
            .chain(self.deleted_by.iter())
            .max_by_key(|s| s.server_seq)
            .unwrap_or(&self.created)
    }
}

fn concurrent(last: &ChangeStamp, inc: &Incoming<'_>) -> bool {
    last.server_seq > inc.base_version && last.device_id != inc.stamp.device_id
}

fn may_conflict(inc: &Incoming<'_>) -> bool {
    inc.resolves.is_none() && inc.entity != EntityKind::Conflict
}

fn fields_of(inc: &Incoming<'_>) -> Fields {
    match (inc.op, inc.fields) {
        (Op::Create, v) => diff::flatten(v),
        (_, Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Fields::new(),
    }
}

/// Apply `inc` to `state` (None: the record is new to the server). Returns the
/// new state and the conflicts to record.
pub fn apply(state: Option<RecordState>, inc: &Incoming<'_>) -> (RecordState, Vec<ConflictDraft>) {
    let seq = inc.stamp.server_seq;
    let mut conflicts = Vec::new();
    let Some(mut st) = state else {
        // New to the server. An update or delete of an unknown record can only
        // come from a store that lost its create; keep what it says.
        let body = match inc.op {
            Op::Create => inc.fields.clone(),
            _ => {
                let mut b = Value::Object(Map::new());
                if inc.op == Op::Update {
                    diff::apply(&mut b, &fields_of(inc));
                }
                b
            }
        };
        let st = RecordState {
            body,
            deleted: inc.op == Op::Delete,
            created: inc.stamp.clone(),
            fields: BTreeMap::new(),
            deleted_by: (inc.op == Op::Delete).then(|| inc.stamp.clone()),
            version: seq,
        };
        return (st, conflicts);
    };
    match inc.op {
        Op::Create | Op::Update => {
            let fields = fields_of(inc);
            if st.deleted && may_conflict(inc) {
                if let Some(del) = st.deleted_by.clone() {
                    conflicts.push(ConflictDraft {
                        kind: ConflictKind::EditVsDelete,
                        field: None,
                        current_value: Value::Null,
                        current_by: del,
                        other_value: Value::Object(
                            fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                        ),
                        other_by: inc.stamp.clone(),
                    });
                }
            }
            for (path, value) in &fields {
                let last = st.stamp_of(path).clone();
                let current = diff::get_path(&st.body, path)
                    .cloned()
                    .unwrap_or(Value::Null);
                if may_conflict(inc) && concurrent(&last, inc) && current != *value {
                    conflicts.push(ConflictDraft {
                        kind: ConflictKind::SameField,
                        field: Some(path.clone()),
                        current_value: value.clone(),
                        current_by: inc.stamp.clone(),
                        other_value: current,
                        other_by: last,
                    });
                }
                diff::set_path(&mut st.body, path, value.clone());
                // A write of `father` replaces `father.phone`'s stamp.
                st.fields
                    .retain(|p, _| !(p.len() > path.len() && related(p, path)));
                st.fields.insert(path.clone(), inc.stamp.clone());
            }
        }
        Op::Delete => {
            if !st.deleted {
                let newest = st.newest().clone();
                if may_conflict(inc) && concurrent(&newest, inc) {
                    conflicts.push(ConflictDraft {
                        kind: ConflictKind::DeleteVsEdit,
                        field: None,
                        current_value: Value::Null,
                        current_by: inc.stamp.clone(),
                        other_value: st.body.clone(),
                        other_by: newest,
                    });
                }
                st.deleted = true;
                st.deleted_by = Some(inc.stamp.clone());
            }
        }
        Op::Restore => {
            if st.deleted {
                st.deleted = false;
                st.deleted_by = Some(inc.stamp.clone());
            }
        }
    }
    st.version = st.version.max(seq);
    (st, conflicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dev(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn stamp(device: u128, seq: i64) -> ChangeStamp {
        ChangeStamp {
            device_id: dev(device),
            user_id: dev(100 + device),
            hlc: 0,
            server_seq: seq,
        }
    }

    fn inc<'a>(op: Op, fields: &'a Value, base: i64, device: u128, seq: i64) -> Incoming<'a> {
        Incoming {
            entity: EntityKind::Child,
            op,
            fields,
            base_version: base,
            resolves: None,
            stamp: stamp(device, seq),
        }
    }

    fn created() -> RecordState {
        let body =
            json!({"name": "张三", "boarding": false, "father": {"phone": null, "name": "张大"}});
        apply(None, &inc(Op::Create, &body, 0, 1, 1)).0
    }

    #[test]
    fn different_fields_both_kept() {
        let s = created();
        let a = json!({"boarding": true});
        let b = json!({"father.phone": "13812345678"});
        let (s, c1) = apply(Some(s), &inc(Op::Update, &a, 1, 1, 2));
        let (s, c2) = apply(Some(s), &inc(Op::Update, &b, 1, 2, 3));
        assert!(c1.is_empty() && c2.is_empty());
        assert_eq!(s.body["boarding"], json!(true));
        assert_eq!(s.body["father"]["phone"], json!("13812345678"));
    }

    #[test]
    fn same_field_concurrent_keeps_the_other_value() {
        let s = created();
        let a = json!({"father.phone": "13800000001"});
        let b = json!({"father.phone": "13900000002"});
        let (s, _) = apply(Some(s), &inc(Op::Update, &a, 1, 1, 2));
        let (s, c) = apply(Some(s), &inc(Op::Update, &b, 1, 2, 3));
        assert_eq!(
            s.body["father"]["phone"],
            json!("13900000002"),
            "server order: later wins"
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].other_value, json!("13800000001"));
        assert_eq!(c[0].other_by.device_id, dev(1));
        // Same value on both sides: nothing to review.
        let (_, c) = apply(Some(s.clone()), &inc(Op::Update, &b, 1, 3, 4));
        assert!(c.is_empty());
        // An edit that had seen the other (base ≥ its seq) is just later.
        let d = json!({"father.phone": "13700000003"});
        let (_, c) = apply(Some(s.clone()), &inc(Op::Update, &d, 3, 1, 5));
        assert!(c.is_empty());
        // The same device's own earlier write is never concurrent.
        let (_, c) = apply(Some(s), &inc(Op::Update, &d, 1, 2, 5));
        assert!(c.is_empty());
    }

    #[test]
    fn parent_and_child_paths_overlap() {
        let s = created();
        let a = json!({"father.phone": "13800000001"});
        let b = json!({"father": null});
        let (s, _) = apply(Some(s), &inc(Op::Update, &a, 1, 1, 2));
        let (s, c) = apply(Some(s), &inc(Op::Update, &b, 1, 2, 3));
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].other_value,
            json!({"phone": "13800000001", "name": "张大"})
        );
        assert_eq!(s.body["father"], Value::Null);
    }

    #[test]
    fn edit_vs_delete_neither_resurrects_nor_loses() {
        let s = created();
        let del = json!({"reason": "重复录入"});
        let edit = json!({"boarding": true});
        let (s, c) = apply(Some(s), &inc(Op::Delete, &del, 1, 1, 2));
        assert!(c.is_empty());
        let (s, c) = apply(Some(s), &inc(Op::Update, &edit, 1, 2, 3));
        assert!(s.deleted, "not resurrected");
        assert_eq!(s.body["boarding"], json!(true), "the edit is kept");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].kind, ConflictKind::EditVsDelete);
        // The other order: delete after a concurrent edit.
        let s = created();
        let (s, _) = apply(Some(s), &inc(Op::Update, &edit, 1, 2, 2));
        let (s, c) = apply(Some(s), &inc(Op::Delete, &del, 1, 1, 3));
        assert!(s.deleted);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].kind, ConflictKind::DeleteVsEdit);
        // Restore brings it back.
        let (s, _) = apply(Some(s), &inc(Op::Restore, &json!({}), 3, 2, 4));
        assert!(!s.deleted);
    }

    #[test]
    fn resolutions_never_open_conflicts() {
        let s = created();
        let a = json!({"name": "张叁"});
        let (s, _) = apply(Some(s), &inc(Op::Update, &a, 1, 1, 2));
        let b = json!({"name": "张三丰"});
        let mut i = inc(Op::Update, &b, 1, 2, 3);
        i.resolves = Some(dev(77));
        let (s, c) = apply(Some(s), &i);
        assert!(c.is_empty());
        assert_eq!(s.body["name"], json!("张三丰"));
    }
}

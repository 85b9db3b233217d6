//! Conversions between the store's [`ChangeEntry`] and the wire types of
//! `shouhu-protocol` (neither crate depends on the other, so the mapping
//! lives with the one component that needs both).

use shouhu_core::hlc::Hlc;
use shouhu_protocol::{Change, ServerChange};
use shouhu_store::ChangeEntry;

/// An outbox entry as pushed (the device id travels as the credential).
pub fn to_wire(e: &ChangeEntry) -> Change {
    Change {
        seq: e.seq,
        change_id: e.change_id,
        hlc: e.hlc.0,
        entity: e.entity,
        record_id: e.record_id,
        school_id: e.school_id,
        op: e.op,
        fields: e.fields.clone(),
        base_version: e.base_version,
        user_id: e.user_id,
        resolves: e.resolves,
    }
}

/// [`to_wire`] taking the entry: its fields move instead of being copied.
pub fn into_wire(e: ChangeEntry) -> Change {
    Change {
        seq: e.seq,
        change_id: e.change_id,
        hlc: e.hlc.0,
        entity: e.entity,
        record_id: e.record_id,
        school_id: e.school_id,
        op: e.op,
        fields: e.fields,
        base_version: e.base_version,
        user_id: e.user_id,
        resolves: e.resolves,
    }
}

/// A pulled change as the store applies it.
pub fn from_wire(c: ServerChange) -> ChangeEntry {
    let ServerChange {
        server_seq,
        device_id,
        change,
    } = c;
    ChangeEntry {
        device_id,
        seq: change.seq,
        change_id: change.change_id,
        hlc: Hlc(change.hlc),
        entity: change.entity,
        record_id: change.record_id,
        school_id: change.school_id,
        op: change.op,
        fields: change.fields,
        base_version: change.base_version,
        user_id: change.user_id,
        server_seq: Some(server_seq),
        resolves: change.resolves,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shouhu_core::{EntityKind, Op};
    use uuid::Uuid;

    #[test]
    fn round_trip_keeps_every_field() {
        let e = ChangeEntry {
            device_id: Uuid::now_v7(),
            seq: 7,
            change_id: Uuid::now_v7(),
            hlc: Hlc(123 << 16 | 4),
            entity: EntityKind::Child,
            record_id: Uuid::now_v7(),
            school_id: Some(Uuid::now_v7()),
            op: Op::Update,
            fields: json!({"name": "张三"}),
            base_version: 12,
            user_id: Uuid::now_v7(),
            server_seq: Some(99),
            resolves: Some(Uuid::now_v7()),
        };
        let sc = ServerChange {
            server_seq: 99,
            device_id: e.device_id,
            change: to_wire(&e),
        };
        assert_eq!(from_wire(sc.clone()), e);
        assert_eq!(into_wire(e.clone()), sc.change);
    }
}

//! Counts for the home screen and `shouhu stats`.

use std::collections::BTreeMap;

use serde::Serialize;
use shouhu_core::EntityKind;

use crate::error::Result;
use crate::store::Store;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Live records per kind.
    pub records: BTreeMap<String, i64>,
    /// Active children by left-behind type, guardianship type, and all children
    /// by status.
    pub by_left_behind_type: BTreeMap<String, i64>,
    pub by_guardianship_type: BTreeMap<String, i64>,
    pub by_status: BTreeMap<String, i64>,
    pub by_township: BTreeMap<String, i64>,
    /// Sum of aid amounts, in fen.
    pub aid_total_fen: i64,
    /// Follow-ups not done whose due date has passed.
    pub overdue_follow_ups: i64,
    /// Local changes not yet acknowledged by the server.
    pub pending_changes: i64,
}

impl Store {
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        for k in EntityKind::ALL {
            s.records.insert(k.name().to_string(), self.count(k)?);
        }
        let group = |col: &str, active_only: bool| -> Result<BTreeMap<String, i64>> {
            let filter = if active_only {
                "AND status = 'active'"
            } else {
                ""
            };
            let sql = format!(
                "SELECT {col}, COUNT(*) FROM child WHERE deleted_at IS NULL {filter} GROUP BY {col}"
            );
            let mut st = self.conn.prepare(&sql)?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        s.by_left_behind_type = group("left_behind_type", true)?;
        s.by_guardianship_type = group("guardianship_type", true)?;
        s.by_status = group("status", false)?;
        s.by_township = group("township", true)?;
        s.aid_total_fen = self.conn.query_row(
            "SELECT COALESCE(SUM(json_extract(body, '$.amount_fen')), 0) FROM aid WHERE deleted_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        s.overdue_follow_ups = self.conn.query_row(
            "SELECT COUNT(*) FROM follow_up WHERE deleted_at IS NULL AND json_extract(body, '$.done') = 0 AND date < ?1",
            [self.today().to_string()],
            |r| r.get(0),
        )?;
        s.pending_changes = self.pending_count()?;
        Ok(s)
    }
}

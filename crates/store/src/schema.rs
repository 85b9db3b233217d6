//! Forward-only numbered migrations. `PRAGMA user_version` holds the number of
//! migrations applied; each migration runs in its own transaction together with
//! the version bump, so a crash leaves the database at one version or the next.

use rusqlite::Connection;

use crate::error::{Result, StoreError};

/// Every migration ever shipped, in order. Never edit one that has shipped: add
/// the next file instead (the migration test opens a database at every earlier
/// version and upgrades it).
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../migrations/0001_init.sql")),
    ("0002_sync", include_str!("../migrations/0002_sync.sql")),
    (
        "0003_log_rowid",
        include_str!("../migrations/0003_log_rowid.sql"),
    ),
    ("0004_audit", include_str!("../migrations/0004_audit.sql")),
    (
        "0005_log_entry",
        include_str!("../migrations/0005_log_entry.sql"),
    ),
    (
        "0006_read_indexes",
        include_str!("../migrations/0006_read_indexes.sql"),
    ),
];

pub const LATEST: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Apply migrations `version+1 ..= upto`.
pub fn migrate_to(conn: &mut Connection, upto: i64) -> Result<()> {
    let current = version(conn)?;
    if current > LATEST {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: LATEST,
        });
    }
    for (i, (_name, sql)) in MIGRATIONS.iter().enumerate() {
        let n = i as i64 + 1;
        if n <= current || n > upto {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", n)?;
        tx.commit()?;
    }
    Ok(())
}

pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, LATEST)
}

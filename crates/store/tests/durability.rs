//! Migrations, atomicity under injected failures, and what survives a reopen.

mod common;
use common::*;

use rusqlite::Connection;
use shouhu_core::*;
use shouhu_store::schema::{self, MIGRATIONS};
use shouhu_store::{Store, StoreError};

/// A small representative data set, written through the store.
fn fill(s: &mut Store) -> Result<(uuid::Uuid, uuid::Uuid), StoreError> {
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?;
    let c = s.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), sch.id())))?;
    s.write(|w| w.create(visit(c.id(), d(2026, 7, 1))))?;
    Ok((sch.id(), c.id()))
}

#[test]
fn migrates_from_every_earlier_version() -> TestResult {
    for from in 0..=MIGRATIONS.len() as i64 {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path)?;
            schema::migrate_to(&mut conn, from)?;
            assert_eq!(schema::version(&conn)?, from);
            if from >= 5 {
                // Since 0005 the log is `log_entry`, ids as 16-byte blobs.
                conn.execute(
                    "INSERT INTO log_device (id) VALUES ('01934b6e-0000-7000-8000-00000000d001')",
                    [],
                )?;
                let n = conn.last_insert_rowid();
                conn.execute(
                    "INSERT INTO log_entry (pos, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id)
                     VALUES (?1 << 40 | 1, unhex('01934b6e00007000800000000000c001'), 5, 'school',
                             unhex('01934b6e00007000800000000000a001'), NULL, 'create', '{\"name\":\"旧学校\"}', 0,
                             unhex('01934b6e00007000800000000000e001'))",
                    [n],
                )?;
            } else if from >= 1 {
                // A change-log entry written by a build at this version.
                conn.execute(
                    "INSERT INTO change_log (device_id, seq, change_id, hlc, entity, record_id, school_id, op, fields, base_version, user_id)
                     VALUES ('01934b6e-0000-7000-8000-00000000d001', 1, '01934b6e-0000-7000-8000-00000000c001', 5, 'school',
                             '01934b6e-0000-7000-8000-00000000a001', NULL, 'create', '{\"name\":\"旧学校\"}', 0,
                             '01934b6e-0000-7000-8000-00000000e001')",
                    [],
                )?;
            }
        }
        let mut s = Store::open(&path)?;
        s.set_today(Some(today()));
        assert_eq!(s.schema_version()?, schema::LATEST, "from version {from}");
        let (_, child) = fill(&mut s)?;
        drop(s);
        let s = Store::open(&path)?;
        assert_eq!(s.fetch::<ChildCard>(child)?.body.name, "张三");
        if from >= 1 {
            let old = s.changes_for_record(uuid::Uuid::parse_str(
                "01934b6e-0000-7000-8000-00000000a001",
            )?)?;
            assert_eq!(
                old.len(),
                1,
                "entries written before the upgrade survive it"
            );
            assert_eq!(old[0].fields["name"], "旧学校");
        }
        // The upgraded schema is the fresh schema.
        let fresh = Store::open_in_memory()?;
        assert_eq!(
            schema_sql(s.connection())?,
            schema_sql(fresh.connection())?,
            "from {from}"
        );
    }
    Ok(())
}

fn schema_sql(c: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")?;
    let rows = st.query_map([], |r| r.get(0))?;
    rows.collect()
}

#[test]
fn refuses_a_newer_schema_and_a_non_database() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("new.db");
    {
        let c = Connection::open(&path)?;
        c.pragma_update(None, "user_version", 999)?;
    }
    let e = Store::open(&path).map(|_| ()).map_err(|e| e.code());
    assert_eq!(e, Err("store.schema_too_new"));
    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        b"this is not a database, it is a spreadsheet".repeat(100),
    )?;
    let e = Store::open(&junk).map(|_| ()).map_err(|e| e.code());
    assert_eq!(e, Err("store.open_failed"));
    Ok(())
}

#[test]
fn a_failed_change_log_write_leaves_no_row() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.db");
    let mut s = Store::open(&path)?;
    s.set_today(Some(today()));
    let (sch, _) = fill(&mut s)?;
    let seq = s.last_seq();
    let children = s.count(EntityKind::Child)?;
    // Inject a failure: a trigger (made from another connection) aborts any
    // change-log insert, i.e. after the row itself was written.
    let other = Connection::open(&path)?;
    other.execute_batch(
        "CREATE TRIGGER fail_log BEFORE INSERT ON log_entry BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )?;
    let e = s.write(|w| w.create(child("李四", Gender::Female, d(2015, 3, 3), sch)));
    assert!(matches!(e, Err(StoreError::Sqlite(_))), "{e:?}");
    assert_eq!(
        s.count(EntityKind::Child)?,
        children,
        "no row without its entry"
    );
    // A batch that fails on its third record keeps none of the first two.
    other.execute_batch("DROP TRIGGER fail_log;")?;
    let e = s.write(|w| {
        w.create(child("王五", Gender::Male, d(2015, 4, 4), sch))?;
        w.create(child("赵六", Gender::Male, d(2015, 5, 5), sch))?;
        let mut bad = child("钱七", Gender::Male, d(2015, 6, 6), sch);
        bad.birth_date = Some(d(2030, 1, 1));
        w.create(bad)
    });
    assert_eq!(e.map(|_| ()).map_err(|e| e.code()), Err("date.in_future"));
    assert_eq!(s.count(EntityKind::Child)?, children);
    let orphan: i64 = s.connection().query_row(
        "SELECT COUNT(*) FROM change_log WHERE record_id NOT IN (SELECT id FROM child UNION SELECT id FROM school UNION SELECT id FROM home_visit)",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(orphan, 0);
    // The sequence was not advanced by the failures: the next write is gapless.
    assert_eq!(s.last_seq(), seq);
    let ok = s.write(|w| w.create(child("孙八", Gender::Female, d(2015, 7, 7), sch)))?;
    let log = s.changes_for_record(ok.id())?;
    assert_eq!(log[0].seq, seq + 1);
    Ok(())
}

#[test]
fn identity_and_sequence_survive_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.db");
    let (device, seq) = {
        let mut s = Store::open(&path)?;
        s.set_today(Some(today()));
        fill(&mut s)?;
        (s.device_id(), s.last_seq())
    };
    let mut s = Store::open(&path)?;
    s.set_today(Some(today()));
    assert_eq!(s.device_id(), device);
    assert_eq!(s.last_seq(), seq);
    let (_, c) = fill(&mut s)?;
    let log = s.changes_for_record(c)?;
    assert_eq!(log[0].seq, seq + 2, "a school, then this child");
    let all = s.local_changes_after(0, 100)?;
    for w in all.windows(2) {
        assert!(w[0].hlc < w[1].hlc, "hlc increases with seq");
    }
    assert_eq!(s.pending_count()?, all.len() as i64);
    Ok(())
}

#[test]
fn a_copied_database_takes_a_new_device_id_and_keeps_its_data() -> TestResult {
    use shouhu_store::Identity;
    let dir = tempfile::tempdir()?;
    let laptop_a = dir.path().join("a-identity");
    let laptop_b = dir.path().join("b-identity");
    let path = dir.path().join("s.db");
    let (mut s, found) = Store::open_with_identity(&path, &laptop_a)?;
    assert_eq!(found, Identity::New);
    s.set_today(Some(today()));
    s.set_setting("credential", "secret-of-laptop-a")?;
    let (_, child) = fill(&mut s)?;
    s.ack_through(2)?; // the server holds the school and the child
    let device_a = s.device_id();
    let pending_before: Vec<_> = s.outbox(100)?.iter().map(|e| e.change_id).collect();
    assert_eq!(pending_before.len(), 1, "the visit is not acknowledged yet");
    drop(s);
    // Reopened on the same laptop: the same device.
    let (s, found) = Store::open_with_identity(&path, &laptop_a)?;
    assert_eq!((found, s.device_id()), (Identity::Same, device_a));
    drop(s);
    // The folder copied to laptop B.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy)?;
    let (s, found) = Store::open_with_identity(&copy, &laptop_b)?;
    assert_eq!(
        found,
        Identity::Copied {
            old_device: device_a
        }
    );
    assert_ne!(s.device_id(), device_a);
    assert_eq!(
        s.setting("credential")?,
        None,
        "the other laptop's credential is dropped"
    );
    assert_eq!(s.fetch::<ChildCard>(child)?.body.name, "张三", "data kept");
    let pending: Vec<_> = s.outbox(100)?;
    assert_eq!(
        pending.iter().map(|e| e.change_id).collect::<Vec<_>>(),
        pending_before
    );
    assert_eq!(pending[0].seq, 1, "renumbered under the new id");
    assert_eq!(pending[0].device_id, s.device_id());
    // And B keeps being B.
    let id_b = s.device_id();
    drop(s);
    let (s, found) = Store::open_with_identity(&copy, &laptop_b)?;
    assert_eq!((found, s.device_id()), (Identity::Same, id_b));
    Ok(())
}

#[test]
fn the_wal_is_checkpointed_and_stays_bounded() -> TestResult {
    // Commits land in the WAL; a checkpoint (on the store's checkpoint
    // thread) copies them into the file, and the WAL starts over: it stays
    // about one large write long, however many there are.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.db");
    let wal = side_file(&path, "-wal");
    let mut s = Store::open(&path)?;
    s.set_today(Some(today()));
    let (_, child) = fill(&mut s)?;
    let mut first_wal = 0;
    for round in 0..5 {
        let before = file_len(&path);
        big_write(&mut s, child, 1_200)?;
        assert!(
            wait_for_checkpoint(&path, before),
            "round {round}: the WAL was not checkpointed into the file"
        );
        if round == 0 {
            first_wal = file_len(&wal);
        }
    }
    assert!(first_wal > 0);
    // Settled on demand too: a large write, then the caller's own checkpoint.
    let before = file_len(&path);
    big_write(&mut s, child, 1_200)?;
    let mut settled = false;
    for _ in 0..600 {
        if s.checkpoint()? {
            settled = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(settled, "the WAL never settled");
    assert!(file_len(&path) > before);
    assert!(
        file_len(&wal) < 3 * first_wal,
        "the WAL grew to {} bytes (one write: {first_wal})",
        file_len(&wal)
    );
    drop(s);
    // The last connection to close folded the WAL in and removed it: the file
    // alone holds everything.
    assert!(!wal.exists(), "WAL left after the store was dropped");
    let conn = Connection::open(&path)?;
    let visits: i64 = conn.query_row("SELECT count(*) FROM home_visit", [], |r| r.get(0))?;
    assert_eq!(visits, 1 + 6 * 1_200);
    Ok(())
}

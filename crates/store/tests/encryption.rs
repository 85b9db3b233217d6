//! The store encrypted at rest with SQLCipher: the right key opens it, a wrong
//! key or no key does not, the file holds no plaintext, a changed byte is
//! detected, and a plain store can be converted in place.

mod common;
use common::*;

use shouhu_core::*;
use shouhu_store::{Store, StoreError};

const KEY: [u8; 32] = [7; 32];
const NAME: &str = "欧阳守护";

/// A school and a child in it; returns the child's id.
fn add_child(store: &mut Store) -> Result<uuid::Uuid, StoreError> {
    store.write(|w| {
        let sch = w.create(school("新寨小学", "八步街道"))?;
        let c = w.create(child(NAME, Gender::Female, d(2016, 5, 4), sch.id()))?;
        Ok(c.id())
    })
}

fn file_contains(path: &std::path::Path, needle: &str) -> bool {
    let mut bytes = std::fs::read(path).unwrap_or_default();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    bytes.extend(std::fs::read(std::path::PathBuf::from(wal)).unwrap_or_default());
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn only_the_key_opens_it_and_the_disk_holds_no_plaintext() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    let id = {
        let mut store = Store::open_encrypted(&path, &KEY)?;
        add_child(&mut store)?
    };
    assert!(!Store::is_plain_file(&path));
    assert!(!file_contains(&path, NAME));
    assert!(
        !file_contains(&path, "child"),
        "even table names are encrypted"
    );

    let store = Store::open_encrypted(&path, &KEY)?;
    assert_eq!(store.fetch::<ChildCard>(id)?.body.name, NAME);
    drop(store);

    let wrong = Store::open_encrypted(&path, &[8; 32])
        .err()
        .map(|e| e.code());
    assert_eq!(wrong, Some("store.key_rejected"));
    // Without a key the file is not a database at all.
    let plain = Store::open(&path).err().map(|e| e.code());
    assert_eq!(plain, Some("store.open_failed"));
    // Neither failed attempt damaged it.
    let store = Store::open_encrypted(&path, &KEY)?;
    assert_eq!(store.fetch::<ChildCard>(id)?.body.name, NAME);
    Ok(())
}

#[test]
fn a_changed_byte_is_detected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    {
        let mut store = Store::open_encrypted(&path, &KEY)?;
        for _ in 0..50 {
            add_child(&mut store)?;
        }
        store
            .connection()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    let mut bytes = std::fs::read(&path)?;
    assert!(bytes.len() > 8192, "{} bytes", bytes.len());
    // A byte inside the second page's encrypted content.
    let at = 4096 + 1000;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes)?;
    // Opening (which reads the schema) or reading the records must fail; it
    // must never return changed data as if it were good.
    match Store::open_encrypted(&path, &KEY) {
        Err(e) => assert!(
            ["store.key_rejected", "store.database", "store.open_failed"].contains(&e.code()),
            "{e}"
        ),
        Ok(store) => {
            let listed = store.list_all::<ChildCard>();
            assert!(listed.is_err(), "tampered page read without error");
        }
    }
    Ok(())
}

#[test]
fn a_plain_store_is_encrypted_in_place() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    let id = {
        let mut store = Store::open(&path)?;
        add_child(&mut store)?
    };
    assert!(Store::is_plain_file(&path));
    Store::encrypt_plain_file(&path, &KEY)?;
    assert!(!Store::is_plain_file(&path));
    assert!(!file_contains(&path, NAME));
    let mut store = Store::open_encrypted(&path, &KEY)?;
    assert_eq!(store.fetch::<ChildCard>(id)?.body.name, NAME);
    // Still writable, and its change log continues where it was.
    add_child(&mut store)?;
    assert_eq!(store.outbox(100)?.len(), 4);
    Ok(())
}

#[test]
fn a_backup_is_encrypted_like_the_store_and_never_overwrites() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    let backup = dir.path().join("backup.db");
    let mut store = Store::open_encrypted(&path, &KEY)?;
    let id = add_child(&mut store)?;
    store.backup_to(&backup)?;
    assert!(!Store::is_plain_file(&backup));
    assert!(!file_contains(&backup, NAME));
    let wrong = Store::open_encrypted(&backup, &[8; 32])
        .err()
        .map(|e| e.code());
    assert_eq!(wrong, Some("store.key_rejected"));
    let restored = Store::open_encrypted(&backup, &KEY)?;
    assert_eq!(restored.fetch::<ChildCard>(id)?.body.name, NAME);
    drop(restored);
    // A second backup to the same file is refused; the first stays whole.
    let again = store.backup_to(&backup).err().map(|e| e.code());
    assert_eq!(again, Some("store.open_failed"));
    let restored = Store::open_encrypted(&backup, &KEY)?;
    assert_eq!(restored.fetch::<ChildCard>(id)?.body.name, NAME);
    Ok(())
}

#[test]
fn an_encrypted_store_is_checkpointed_with_its_key() -> TestResult {
    // The checkpoint thread's own connection is keyed like the store's: the
    // WAL's pages reach the file, encrypted, and the store reopens whole.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    let child = {
        let mut store = Store::open_encrypted(&path, &KEY)?;
        let child = add_child(&mut store)?;
        let before = file_len(&path);
        big_write(&mut store, child, 1_200)?;
        assert!(
            wait_for_checkpoint(&path, before),
            "the WAL was not checkpointed into the file"
        );
        child
    };
    assert!(!side_file(&path, "-wal").exists());
    assert!(!Store::is_plain_file(&path));
    assert!(!file_contains(&path, "作业无人辅导"));
    let store = Store::open_encrypted(&path, &KEY)?;
    assert_eq!(store.list_by_child::<HomeVisit>(child)?.len(), 1_200);
    Ok(())
}

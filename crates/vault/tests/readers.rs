//! Notes readers' keys on a shared laptop: made for the roles that read
//! psychological notes, opened at their log-in, kept across a password
//! change, renewed by an administrator's reset.

mod common;
use common::*;

use shouhu_auth::{EncryptedNote, Role};
use shouhu_vault::Vault;
use uuid::Uuid;

#[test]
fn counselors_get_reader_keys_teachers_do_not() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vault = Vault::new(dir.path().join("school.db")).with_kdf(FAST);
    let mut principal = vault.set_up(user("wang", Role::Principal, "wang2026ok"))?;
    assert!(principal.reader_keys().is_none());
    principal.add_user(user("xinli", Role::Counselor, "xinli2026ok"))?;
    principal.add_user(user("li", Role::Teacher, "li2026ok"))?;
    let readers = principal.local_readers()?;
    assert_eq!(readers.len(), 1, "only the counselor reads notes");
    drop(principal);

    let counselor = vault.log_in("xinli", "xinli2026ok", now())?;
    let keys = counselor
        .reader_keys()
        .ok_or("counselor without reader keys")?;
    assert_eq!(readers[0], (counselor.user().user_id, keys.public()));
    // A note sealed for the laptop's readers opens with the counselor's keys.
    let note_id = Uuid::now_v7();
    let note = EncryptedNote::encrypt(note_id, "孩子说想妈妈", &readers)?;
    assert_eq!(
        note.decrypt(counselor.user().user_id, keys)?,
        "孩子说想妈妈"
    );
    drop(counselor);
    let teacher = vault.log_in("li", "li2026ok", now())?;
    assert!(teacher.reader_keys().is_none());
    // The keyring file holds no reader secret in the clear: it is sealed.
    let ring = std::fs::read_to_string(dir.path().join("school.db.keys.json"))?;
    assert!(ring.contains("sealed_secret"));
    Ok(())
}

#[test]
fn a_password_change_keeps_the_reader_keys_and_a_reset_renews_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vault = Vault::new(dir.path().join("school.db")).with_kdf(FAST);
    let mut principal = vault.set_up(user("wang", Role::Principal, "wang2026ok"))?;
    principal.add_user(user("xinli", Role::Counselor, "xinli2026ok"))?;
    drop(principal);

    let mut counselor = vault.log_in("xinli", "xinli2026ok", now())?;
    let id = counselor.user().user_id;
    let public = counselor.reader_keys().ok_or("no keys")?.public();
    let note = EncryptedNote::encrypt(Uuid::now_v7(), "第一次辅导", &[(id, public)])?;
    counselor.change_password("xinli2026ok", "xinli2027new")?;
    drop(counselor);
    let counselor = vault.log_in("xinli", "xinli2027new", now())?;
    let keys = counselor.reader_keys().ok_or("no keys after change")?;
    assert_eq!(keys.public(), public);
    assert_eq!(note.decrypt(id, keys)?, "第一次辅导");
    drop(counselor);

    // The principal cannot re-seal the old secret without the old password:
    // the counselor gets a new pair (notes are re-wrapped for it by a reader).
    let mut principal = vault.log_in("wang", "wang2026ok", now())?;
    principal.reset_password("xinli", "xinli2028reset")?;
    drop(principal);
    let counselor = vault.log_in("xinli", "xinli2028reset", now())?;
    let keys = counselor.reader_keys().ok_or("no keys after reset")?;
    assert_ne!(keys.public(), public);
    assert!(note.decrypt(id, keys).is_err());
    Ok(())
}

#[test]
fn a_counselor_from_before_reader_keys_gets_them_at_log_in() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    let vault = Vault::new(&path).with_kdf(FAST);
    drop(vault.set_up(user("xinli", Role::Counselor, "xinli2026ok"))?);
    // Strip the reader key, as a keyring written before this version.
    let ring_path = dir.path().join("school.db.keys.json");
    let mut ring: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ring_path)?)?;
    if let Some(users) = ring["users"].as_array_mut() {
        for u in users {
            if let Some(m) = u.as_object_mut() {
                m.remove("reader");
            }
        }
    }
    std::fs::write(&ring_path, serde_json::to_string(&ring)?)?;
    let first = vault.log_in("xinli", "xinli2026ok", now())?;
    let public = first
        .reader_keys()
        .ok_or("no keys made at log-in")?
        .public();
    drop(first);
    // Made once, kept: the next log-in opens the same pair.
    let again = vault.log_in("xinli", "xinli2026ok", now())?;
    assert_eq!(again.reader_keys().map(|k| k.public()), Some(public));
    Ok(())
}

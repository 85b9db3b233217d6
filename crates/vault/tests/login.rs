//! Log-in on a shared laptop: set-up, offline log-in, growing delays,
//! several users on one encrypted store, password change and reset.

mod common;
use common::*;

use chrono::Duration;
use shouhu_auth::{Role, Scope};
use shouhu_store::Store;
use shouhu_vault::{Vault, VaultState};
use uuid::Uuid;

fn add_school(store: &mut Store, name: &str) -> Result<Uuid, shouhu_store::StoreError> {
    store.write(|w| {
        let school = shouhu_core::School {
            name: name.into(),
            township: "八步街道".into(),
            county: "凤冈县".into(),
            ..Default::default()
        };
        Ok(w.create(school)?.id())
    })
}

fn code<T>(r: Result<T, shouhu_vault::VaultError>) -> Option<&'static str> {
    r.err().map(|e| e.code())
}

#[test]
fn set_up_then_log_in_offline() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    let vault = Vault::new(&path).with_kdf(FAST);
    assert_eq!(vault.state()?, VaultState::Empty);
    assert_eq!(
        code(vault.log_in("wang", "x", now())),
        Some("vault.not_set_up")
    );

    // The password rules apply at set-up, in Chinese too.
    let weak = vault.set_up(user("wang", Role::Principal, "123"));
    assert_eq!(code(weak), Some("auth.password_too_short"));
    assert_eq!(
        vault.state()?,
        VaultState::Empty,
        "nothing written by a refused set-up"
    );

    let mut s = vault.set_up(user("Wang", Role::Principal, "wang2026ok"))?;
    let sid = add_school(s.store_mut(), "新寨守护小学")?;
    assert_eq!(s.user().login_name, "wang");
    let uid = s.user().user_id;
    assert_eq!(s.store().user_id(), uid, "writes are stamped with the user");
    let vault = s.lock();
    assert_eq!(
        vault.state()?,
        VaultState::Ready {
            users: vec![("wang".into(), "Wang 老师".into())]
        }
    );
    assert_eq!(
        code(vault.set_up(user("li", Role::Teacher, "li2026ok"))),
        Some("vault.already_set_up")
    );

    // Log-in names ignore case and spaces.
    let s = vault.log_in(" WANG ", "wang2026ok", now())?;
    assert!(s.store().get::<shouhu_core::School>(sid)?.is_some());

    // A stolen disk: neither the store nor the keyring holds the data or the key.
    let mut disk = std::fs::read(&path)?;
    disk.extend(std::fs::read(dir.path().join("school.db.keys.json"))?);
    for needle in ["新寨守护小学", "八步街道", "wang2026ok"] {
        assert!(
            !disk.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle}"
        );
    }
    Ok(())
}

#[test]
fn failed_attempts_slow_down_and_survive_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    Vault::new(&path)
        .with_kdf(FAST)
        .set_up(user("wang", Role::Principal, "wang2026ok"))?;

    let t = now();
    for i in 0..3 {
        let vault = Vault::new(&path).with_kdf(FAST);
        assert_eq!(
            code(vault.log_in("wang", "guess", t + Duration::seconds(i))),
            Some("auth.wrong_password")
        );
    }
    // A fresh program (the throttle is in the keyring, not in memory).
    let vault = Vault::new(&path).with_kdf(FAST);
    let locked = vault.log_in("wang", "wang2026ok", t + Duration::seconds(3));
    match locked {
        Err(shouhu_vault::VaultError::Auth(shouhu_auth::AuthError::LockedOut {
            retry_after_secs,
        })) => {
            assert_eq!(retry_after_secs, 4)
        }
        Err(other) => return Err(format!("expected a lock-out, got {other}").into()),
        Ok(_) => return Err("logged in while locked out".into()),
    }
    // An unknown name says the same as a wrong password, and is not throttled.
    assert_eq!(
        code(vault.log_in("nobody", "x", t)),
        Some("auth.wrong_password")
    );
    // After the wait, the right password works and clears the count.
    vault.log_in("wang", "wang2026ok", t + Duration::seconds(8))?;
    assert_eq!(
        code(vault.log_in("wang", "guess", t + Duration::seconds(9))),
        Some("auth.wrong_password")
    );
    assert!(vault
        .log_in("wang", "wang2026ok", t + Duration::seconds(9))
        .is_ok());
    Ok(())
}

#[test]
fn several_users_share_one_encrypted_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    let vault = Vault::new(&path).with_kdf(FAST);
    let mut principal = vault.set_up(user("wang", Role::Principal, "wang2026ok"))?;
    let sid = add_school(principal.store_mut(), "新寨小学")?;
    principal.add_user(user("li", Role::Teacher, "li2026ok"))?;
    assert_eq!(
        code(principal.add_user(user("LI", Role::Counselor, "li2026ok2"))),
        Some("vault.user_exists")
    );
    let mut outsider = user("zhao", Role::Teacher, "zhao2026ok");
    outsider.scope = Scope::School {
        school_id: Uuid::from_u128(9),
        township_id: Uuid::from_u128(2),
    };
    assert_eq!(code(principal.add_user(outsider)), Some("auth.forbidden"));
    drop(principal);

    let mut teacher = vault.log_in("li", "li2026ok", now())?;
    assert!(teacher.store().get::<shouhu_core::School>(sid)?.is_some());
    // A teacher may not add users or reset passwords.
    assert_eq!(
        code(teacher.add_user(user("sun", Role::Teacher, "sun2026ok"))),
        Some("auth.forbidden")
    );
    assert_eq!(
        code(teacher.reset_password("wang", "hacked2026")),
        Some("auth.forbidden")
    );
    // Changing one's password needs the old one.
    assert_eq!(
        code(teacher.change_password("wrong", "li2027new")),
        Some("auth.wrong_password")
    );
    teacher.change_password("li2026ok", "li2027new")?;
    drop(teacher);
    assert_eq!(
        code(vault.log_in("li", "li2026ok", now())),
        Some("auth.wrong_password")
    );
    let _ = vault.log_in("li", "guess1", now());
    let _ = vault.log_in("li", "guess2", now());
    assert_eq!(
        code(vault.log_in("li", "li2027new", now())),
        Some("auth.locked_out")
    );

    // The principal resets the forgotten password; that also clears the lock.
    let mut principal = vault.log_in("wang", "wang2026ok", now())?;
    principal.reset_password("li", "li2028reset")?;
    assert_eq!(
        code(principal.remove_user("nobody")),
        Some("vault.no_such_user")
    );
    drop(principal);
    let teacher = vault.log_in("li", "li2028reset", now())?;
    assert!(teacher.store().get::<shouhu_core::School>(sid)?.is_some());
    drop(teacher);

    let mut principal = vault.log_in("wang", "wang2026ok", now())?;
    principal.remove_user("li")?;
    assert_eq!(
        code(vault.log_in("li", "li2028reset", now())),
        Some("auth.wrong_password")
    );
    assert_eq!(code(principal.remove_user("wang")), Some("vault.last_user"));
    Ok(())
}

#[test]
fn a_plain_store_is_encrypted_at_set_up() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    let sid = {
        let mut plain = Store::open(&path)?;
        add_school(&mut plain, "旧版数据小学")?
    };
    let vault = Vault::new(&path).with_kdf(FAST);
    assert_eq!(vault.state()?, VaultState::Plain);
    let s = vault.set_up(user("wang", Role::Principal, "wang2026ok"))?;
    assert!(s.store().get::<shouhu_core::School>(sid)?.is_some());
    drop(s);
    assert!(!Store::is_plain_file(&path));
    Ok(())
}

#[test]
fn a_damaged_keyring_is_reported_and_nothing_is_overwritten() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    let vault = Vault::new(&path).with_kdf(FAST);
    drop(vault.set_up(user("wang", Role::Principal, "wang2026ok"))?);
    let ring = dir.path().join("school.db.keys.json");
    let before_db = std::fs::read(&path)?;
    std::fs::write(&ring, "{ not json")?;
    assert_eq!(
        code(vault.log_in("wang", "wang2026ok", now())),
        Some("vault.keyring_unreadable")
    );
    assert_eq!(code(vault.state()), Some("vault.keyring_unreadable"));
    assert_eq!(
        code(vault.set_up(user("wang", Role::Principal, "wang2026ok"))),
        Some("vault.keyring_unreadable")
    );
    // Without its keyring, an encrypted store is never overwritten by set-up.
    std::fs::remove_file(&ring)?;
    assert_eq!(
        code(vault.set_up(user("wang", Role::Principal, "wang2026ok"))),
        Some("vault.keyring_unreadable")
    );
    assert_eq!(std::fs::read(&path)?, before_db);
    Ok(())
}

#[test]
fn log_ins_failures_and_account_changes_are_audited() -> TestResult {
    use shouhu_store::{AuditAction, AuditFilter};
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("school.db");
    let vault = Vault::new(&path).with_kdf(FAST);
    let mut principal = vault.set_up(user("wang", Role::Principal, "wang2026ok"))?;
    principal.add_user(user("li", Role::Teacher, "li2026ok"))?;
    let principal_id = principal.user().user_id;
    principal.lock();

    let t = now();
    assert!(vault.log_in("li", "guess1", t).is_err());
    assert!(vault
        .log_in("li", "guess2", t + Duration::seconds(1))
        .is_err());
    let teacher = vault.log_in("li", "li2026ok", t + Duration::seconds(2))?;
    let li = teacher.user().user_id;
    let mine = teacher.store().audit_entries(&AuditFilter {
        user_id: Some(li),
        ..Default::default()
    })?;
    let seen: Vec<_> = mine.iter().map(|e| (e.action, e.at)).collect();
    assert_eq!(
        seen,
        [
            (AuditAction::Login, t + Duration::seconds(2)),
            (AuditAction::LoginFailed, t + Duration::seconds(1)),
            (AuditAction::LoginFailed, t),
        ]
    );
    teacher.lock_with(AuditAction::AutoLock)?;
    // The failures were handed over once: a later log-in does not repeat them.
    let teacher = vault.log_in("li", "li2026ok", t + Duration::seconds(30))?;
    let failed = teacher.store().audit_entries(&AuditFilter {
        action: Some(AuditAction::LoginFailed),
        ..Default::default()
    })?;
    assert_eq!(failed.len(), 2);
    let all = teacher.store().audit_entries(&AuditFilter::default())?;
    let principal_actions: Vec<_> = all
        .iter()
        .filter(|e| e.user_id == principal_id)
        .map(|e| e.action)
        .collect();
    assert_eq!(
        principal_actions,
        [
            AuditAction::Logout,
            AuditAction::UserAdded,
            AuditAction::Login
        ]
    );
    assert!(all
        .iter()
        .any(|e| e.user_id == li && e.action == AuditAction::AutoLock));
    Ok(())
}

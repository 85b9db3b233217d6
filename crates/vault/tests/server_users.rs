//! County server users on a laptop: after a sync they are pending users of
//! the keyring (the data key sealed to their log-in key), log in offline with
//! their initial password, are replaced by a reset and dropped by a removal.

mod common;
use common::*;

use chrono::Duration;
use shouhu_auth::{Role, SealedReaderKey};
use shouhu_store::AuditAction;
use shouhu_vault::{ServerUser, Vault, VaultState};
use uuid::Uuid;

/// A server user as the server makes one: a log-in key sealed with the
/// initial password.
fn server_user(id: Uuid, login: &str, role: Role, initial: &str) -> TestResult<ServerUser> {
    Ok(ServerUser {
        user_id: id,
        login_name: login.into(),
        display_name: format!("{login}（县里建）"),
        role,
        scope: school_scope(),
        login_key: Some(SealedReaderKey::generate_sealed(initial, FAST)?),
        must_change_password: true,
        removed: false,
    })
}

fn code<T>(r: Result<T, shouhu_vault::VaultError>) -> Option<&'static str> {
    r.err().map(|e| e.code())
}

fn logins(vault: &Vault) -> TestResult<Vec<String>> {
    Ok(match vault.state()? {
        VaultState::Ready { users } => users.into_iter().map(|(l, _)| l).collect(),
        other => return Err(format!("{other:?}").into()),
    })
}

#[test]
fn a_server_user_logs_in_offline_with_the_initial_password_only() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    let vault = Vault::new(dir.path().join("school.db")).with_kdf(FAST);
    let mut s = vault.set_up(user("wang", Role::Principal, "wang2026ok"))?;
    let teacher = Uuid::now_v7();
    let counselor = Uuid::now_v7();
    let users = [
        server_user(teacher, "Li.Hua", Role::Teacher, "chushi2026")?,
        server_user(counselor, "zhao", Role::Counselor, "xinli2026")?,
    ];
    let applied = s.apply_server_users(&users)?;
    assert_eq!(applied.added, ["li.hua", "zhao"]);
    // Again: nothing changes.
    let again = s.apply_server_users(&users)?;
    assert!(again.added.is_empty() && again.replaced.is_empty());
    // A pending user is no reader yet (no reader key on this laptop).
    assert_eq!(s.local_readers()?.len(), 0);
    drop(s.lock());
    assert_eq!(logins(&vault)?, ["wang", "li.hua", "zhao"]);

    // A wrong password: the same error as for anyone, and it counts.
    for i in 0..3 {
        assert_eq!(
            code(vault.log_in("li.hua", "chushi2027", now() + Duration::seconds(i))),
            Some("auth.wrong_password")
        );
    }
    assert_eq!(
        code(vault.log_in("li.hua", "chushi2026", now() + Duration::seconds(3))),
        Some("auth.locked_out")
    );
    let s = vault.log_in("LI.HUA", "chushi2026", now() + Duration::seconds(60))?;
    assert_eq!(s.user().user_id, teacher);
    assert_eq!(s.user().role, Role::Teacher);
    assert!(s.user().must_change_password);
    // The failed attempts before it are in the audit log, then the log-in.
    let actions: Vec<AuditAction> = s
        .store()
        .audit_entries(&Default::default())?
        .into_iter()
        .filter(|e| e.user_id == teacher)
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == AuditAction::LoginFailed)
            .count(),
        3
    );
    assert!(actions.contains(&AuditAction::Login));
    drop(s.lock());

    // Now a normal user of this laptop: the initial password still works
    // until they change it, and the change clears the flag.
    let mut s = vault.log_in("li.hua", "chushi2026", now() + Duration::seconds(61))?;
    assert!(s.user().must_change_password);
    s.change_password("chushi2026", "wode2026mima")?;
    assert!(!s.user().must_change_password);
    drop(s.lock());
    assert_eq!(
        code(vault.log_in("li.hua", "chushi2026", now() + Duration::seconds(62))),
        Some("auth.wrong_password")
    );
    let s = vault.log_in("li.hua", "wode2026mima", now() + Duration::seconds(63))?;
    assert!(!s.user().must_change_password);
    drop(s.lock());

    // A counselor gets reader keys at the first log-in.
    let s = vault.log_in("zhao", "xinli2026", now() + Duration::seconds(64))?;
    assert!(s.reader_keys().is_some());
    let readers = s.local_readers()?;
    assert_eq!(readers.len(), 1);
    assert_eq!(readers[0].0, counselor);
    // Syncing the same records again leaves the converted users alone.
    let mut s = s;
    let after = s.apply_server_users(&users)?;
    assert!(
        after.added.is_empty() && after.replaced.is_empty(),
        "{after:?}"
    );
    drop(s.lock());
    vault.log_in("li.hua", "wode2026mima", now() + Duration::seconds(65))?;
    Ok(())
}

#[test]
fn a_reset_on_the_server_replaces_the_credential() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    let vault = Vault::new(dir.path().join("school.db")).with_kdf(FAST);
    let mut s = vault.set_up(user("wang", Role::Principal, "wang2026ok"))?;
    let id = Uuid::now_v7();
    s.apply_server_users(&[server_user(id, "li", Role::Teacher, "chushi2026")?])?;
    // Reset before the first log-in here: the pending credential changes.
    let reset = s.apply_server_users(&[server_user(id, "li", Role::Teacher, "chongzhi2026")?])?;
    assert_eq!(reset.replaced, ["li"]);
    drop(s.lock());
    assert_eq!(
        code(vault.log_in("li", "chushi2026", now())),
        Some("auth.wrong_password")
    );
    let mut s = vault.log_in("li", "chongzhi2026", now())?;
    s.change_password("chongzhi2026", "wode2026mima")?;
    drop(s.lock());
    // A reset after they logged in here (forgotten password): the laptop
    // entry is replaced too, and only the new initial password opens it.
    let mut s = vault.log_in("wang", "wang2026ok", now())?;
    let again = s.apply_server_users(&[server_user(id, "li", Role::Teacher, "zaici2026")?])?;
    assert_eq!(again.replaced, ["li"]);
    drop(s.lock());
    assert_eq!(
        code(vault.log_in("li", "wode2026mima", now())),
        Some("auth.wrong_password")
    );
    let s = vault.log_in("li", "zaici2026", now())?;
    assert_eq!(s.user().user_id, id);
    Ok(())
}

#[test]
fn a_removed_server_user_is_dropped_and_their_changes_stay() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    let vault = Vault::new(dir.path().join("school.db")).with_kdf(FAST);
    let mut s = vault.set_up(user("wang", Role::Principal, "wang2026ok"))?;
    let id = Uuid::now_v7();
    let pending_id = Uuid::now_v7();
    let mut li = server_user(id, "li", Role::Teacher, "chushi2026")?;
    let mut zhou = server_user(pending_id, "zhou", Role::Teacher, "zhou2026ab")?;
    s.apply_server_users(&[li.clone(), zhou.clone()])?;
    drop(s.lock());
    // Li works on the laptop: a change waiting to be pushed.
    let mut s = vault.log_in("li", "chushi2026", now())?;
    let school = s.store_mut().write(|w| {
        Ok(w.create(shouhu_core::School {
            name: "新寨小学".into(),
            township: "八步街道".into(),
            ..Default::default()
        })?
        .id())
    })?;
    drop(s.lock());

    let mut s = vault.log_in("wang", "wang2026ok", now())?;
    li.removed = true;
    zhou.removed = true;
    let applied = s.apply_server_users(&[li, zhou])?;
    assert_eq!(applied.removed, ["li", "zhou"]);
    let pending_changes = s.store().outbox(100)?;
    assert!(
        pending_changes
            .iter()
            .any(|c| c.record_id == school && c.user_id == id),
        "Li's unsynced change stays"
    );
    drop(s.lock());
    assert_eq!(logins(&vault)?, ["wang"]);
    assert_eq!(
        code(vault.log_in("li", "chushi2026", now())),
        Some("auth.wrong_password")
    );
    assert_eq!(
        code(vault.log_in("zhou", "zhou2026ab", now())),
        Some("auth.wrong_password")
    );
    Ok(())
}

#[test]
fn laptop_users_are_left_alone() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    let vault = Vault::new(dir.path().join("school.db")).with_kdf(FAST);
    let mut s = vault.set_up(user("wang", Role::Principal, "wang2026ok"))?;
    let laptop_id = s.user().user_id;
    // A server user with a laptop user's name is not added; the laptop's own
    // account, even "removed" by id, is not touched; a server user from
    // before log-in keys is skipped.
    let mut clash = server_user(Uuid::now_v7(), "wang", Role::Teacher, "chushi2026")?;
    let mut same_id = server_user(laptop_id, "wang", Role::Principal, "chushi2026")?;
    same_id.removed = true;
    let mut old = server_user(Uuid::now_v7(), "old", Role::Teacher, "chushi2026")?;
    old.login_key = None;
    let applied = s.apply_server_users(&[clash.clone(), same_id, old])?;
    assert!(applied.added.is_empty() && applied.removed.is_empty());
    assert_eq!(
        applied.skipped,
        [
            ("wang".to_string(), "login_taken"),
            ("old".to_string(), "no_login_key")
        ]
    );
    clash.removed = true;
    s.apply_server_users(&[clash])?;
    drop(s.lock());
    assert_eq!(logins(&vault)?, ["wang"]);
    vault.log_in("wang", "wang2026ok", now())?;
    Ok(())
}

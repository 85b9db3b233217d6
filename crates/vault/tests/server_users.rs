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
        password_changed_at: "2026-11-01T08:00:00.000Z".into(),
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

/// A password changed on laptop A goes to the server queued (offline-first)
/// with a proof made from the log-in key; once the server took it, laptop B
/// (where the user logged in before, and laptop C where they never did)
/// opens with the new password only. A change that meets a newer reset on
/// the server is dropped: the reset wins.
#[test]
fn a_password_changed_on_one_laptop_opens_the_others() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    let laptop = |name: &str, admin: &str| -> TestResult<(Vault, shouhu_vault::Session)> {
        let v = Vault::new(dir.path().join(name)).with_kdf(FAST);
        let s = v.set_up(user(admin, Role::Principal, "wang2026ok"))?;
        Ok((v, s))
    };
    let (va, mut a) = laptop("a.db", "wang")?;
    let (vb, mut b) = laptop("b.db", "wu")?;
    let (vc, mut c) = laptop("c.db", "zhou")?;
    // The server's credential: a log-in pair, its secret sealed with the
    // initial password, and the change key the server keeps.
    let id = Uuid::now_v7();
    let pair = shouhu_auth::ReaderKeyPair::generate()?;
    let change_key = shouhu_auth::credential::change_key_text(&pair);
    let mut li = server_user(id, "li", Role::Counselor, "chushi2026")?;
    li.login_key = Some(SealedReaderKey::seal(&pair, "chushi2026", FAST)?);
    for s in [&mut a, &mut b, &mut c] {
        s.apply_server_users(std::slice::from_ref(&li))?;
    }
    drop(a.lock());
    drop(c.lock());
    drop(b.lock());
    // Li logs in on B first (with the initial password), then on A, where
    // she changes it: queued, nothing sent yet.
    let on_b = vb.log_in("li", "chushi2026", now())?;
    let reader_b = on_b.reader_keys().ok_or("no reader keys")?.public();
    drop(on_b.lock());
    let mut a = va.log_in("li", "chushi2026", now())?;
    assert!(a.pending_password_changes()?.is_empty());
    a.change_password("chushi2026", "wode2026li")?;
    drop(a.lock());
    // Offline: a restart later, the change still waits, whoever logs in.
    let mut a = va.log_in("wang", "wang2026ok", now())?;
    let queued = a.pending_password_changes()?;
    assert_eq!(queued.len(), 1);
    let (who, change) = queued[0].clone();
    assert_eq!(who, id);
    assert_eq!(change.based_on, li.password_changed_at);
    // The server checks the proof with its key; the same pair, re-sealed.
    assert!(shouhu_auth::credential::verify(
        &change_key,
        id,
        &change.based_on,
        &change.password_hash,
        &change.login_secret_sealed,
        &change.proof
    ));
    shouhu_auth::password::verify_password("wode2026li", &change.password_hash)?;
    let resealed = SealedReaderKey::from_base64(
        &li.login_key.as_ref().ok_or("key")?.to_base64().0,
        &change.login_secret_sealed,
    )?;
    assert_eq!(resealed.open("wode2026li")?.public(), pair.public());
    assert!(resealed.open("chushi2026").is_err());
    let keyring = std::fs::read_to_string(dir.path().join("a.db.keys.json"))?;
    assert!(!keyring.contains("wode2026li"));

    // The server takes it; the users it sends carry the re-sealed secret.
    let mut changed = li.clone();
    changed.login_key = Some(resealed);
    changed.must_change_password = false;
    changed.password_changed_at = "2026-11-29T09:00:00.000Z".into();
    a.password_change_answered(id, &change, Some(&changed.password_changed_at))?;
    assert!(a.pending_password_changes()?.is_empty());
    let on_a = a.apply_server_users(std::slice::from_ref(&changed))?;
    assert!(on_a.password_changed.is_empty() && on_a.replaced.is_empty());
    drop(a.lock());
    assert!(va.log_in("li", "wode2026li", now()).is_ok());

    // Laptop B (Li logged in there before) and C (never): after their
    // users fetch, the new password opens them and the old one does not.
    for (v, admin) in [(&vb, "wu"), (&vc, "zhou")] {
        let mut s = v.log_in(admin, "wang2026ok", now())?;
        let applied = s.apply_server_users(std::slice::from_ref(&changed))?;
        assert_eq!(applied.password_changed, ["li"]);
        assert!(s
            .apply_server_users(std::slice::from_ref(&changed))?
            .password_changed
            .is_empty());
        let actions: Vec<AuditAction> = s
            .store()
            .audit_entries(&Default::default())?
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert!(actions.contains(&AuditAction::PasswordChanged));
        drop(s.lock());
        assert_eq!(
            code(v.log_in("li", "chushi2026", now())),
            Some("auth.wrong_password")
        );
        let s = v.log_in("li", "wode2026li", now())?;
        assert!(!s.user().must_change_password);
        // B keeps the reader pair it had for Li (the notes sealed for it
        // still open there); C, where she never logged in, makes one.
        let reader = s.reader_keys().ok_or("no reader keys")?.public();
        assert_eq!(reader == reader_b, admin == "wu");
        drop(s.lock());
    }

    // Li changes it again on B, but the admin resets it on the server
    // before B syncs: the server refuses B's change (stale), B drops it and
    // takes the reset; the reset password opens B, B's does not.
    let mut b = vb.log_in("li", "wode2026li", now())?;
    b.change_password("wode2026li", "disan2026li")?;
    let (_, late) = b.pending_password_changes()?.remove(0);
    assert_eq!(late.based_on, changed.password_changed_at);
    let reset = server_user(id, "li", Role::Counselor, "chongzhi2026")?;
    b.password_change_answered(id, &late, None)?;
    assert!(b.pending_password_changes()?.is_empty());
    let applied = b.apply_server_users(&[reset])?;
    assert_eq!(applied.replaced, ["li"]);
    drop(b.lock());
    assert_eq!(
        code(vb.log_in("li", "disan2026li", now())),
        Some("auth.wrong_password")
    );
    assert!(
        vb.log_in("li", "chongzhi2026", now())?
            .user()
            .must_change_password
    );
    Ok(())
}

/// A user made on the laptop changes a password that stays on the laptop:
/// nothing is queued for the server.
#[test]
fn a_laptop_users_change_is_not_queued() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    let vault = Vault::new(dir.path().join("school.db")).with_kdf(FAST);
    let mut s = vault.set_up(user("wang", Role::Principal, "wang2026ok"))?;
    s.change_password("wang2026ok", "wang2027ok")?;
    assert!(s.pending_password_changes()?.is_empty());
    Ok(())
}

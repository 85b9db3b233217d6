//! A password changed on one laptop reaches the county server and the
//! user's other laptops, over real HTTPS (a server on port 0): the change is
//! queued on the laptop, sent at its next sync with a proof made from the
//! user's log-in key, and the other laptop, after its sync, opens with the
//! new password only. When an administrator's reset reaches the server
//! before a laptop's change, the reset wins.

use chrono::Utc;
use shouhu_api::account::{Account, ChangePassword, LogIn, SetUp};
use shouhu_auth::password::{verify_password, KdfParams};
use shouhu_auth::Role;
use shouhu_server::{AppState, NewUser, NewUserScope, ServerDb};
use shouhu_sync::CancelToken;
use shouhu_vault::Vault;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const FAST: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

fn log_in(name: &str, password: &str) -> LogIn {
    LogIn {
        login_name: name.into(),
        password: password.into(),
    }
}

fn change(old: &str, new: &str) -> ChangePassword {
    ChangePassword {
        old: old.into(),
        new: new.into(),
        new_again: new.into(),
    }
}

/// A laptop of the school, set up by its own administrator and enrolled.
fn laptop(dir: &std::path::Path, url: &str, fp: &str, code: &str) -> Res<Account> {
    std::fs::create_dir_all(dir)?;
    let mut a = Account::new(Vault::new(dir.join("shouhu.db")).with_kdf(FAST));
    a.set_up(
        SetUp {
            login_name: "admin".into(),
            display_name: "管理员".into(),
            role: Role::CountyAdmin,
            school_name: String::new(),
            township: String::new(),
            password: "guanli2026".into(),
            password_again: "guanli2026".into(),
        },
        Utc::now(),
    )?;
    a.with(Utc::now(), |s, _| {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(shouhu_api::enroll(s, url, code, fp, "laptop"))
        })
    })?;
    Ok(a)
}

async fn sync(a: &mut Account) -> Res<shouhu_sync::SyncReport> {
    Ok(a.sync(Utc::now(), &mut |_| {}, &CancelToken::new()).await?)
}

/// The server's password hash of `login`.
async fn server_hash(server: &AppState, login: &'static str) -> Res<String> {
    let users = server
        .with_db(|db| {
            let scope = shouhu_protocol::Scope {
                schools: db.schools()?.into_iter().map(|s| s.id).collect(),
                notes: true,
                local_users: false,
            };
            db.users_for_scope(&scope)
        })
        .await?;
    Ok(users
        .into_iter()
        .find(|u| u.login_name == login)
        .ok_or("no such user")?
        .password_hash)
}

fn wrong(a: &mut Account, name: &str, password: &str) -> bool {
    matches!(a.log_in(log_in(name, password), Utc::now()), Err(e) if e.code() == "auth.wrong_password")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_changed_on_one_laptop_opens_the_other() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let mut db = ServerDb::open_in_memory()?;
    let school = db.add_school(None, "青山小学", "", "青山镇")?;
    db.add_user(NewUser {
        login_name: "li".into(),
        display_name: "李老师".into(),
        role: Role::Teacher,
        scope: NewUserScope::School(school),
        password: Some("chushi2026".into()),
    })?;
    let scope = shouhu_protocol::Scope {
        schools: vec![school],
        notes: true,
        local_users: true,
    };
    let codes = [
        db.create_enrollment(&scope, 1)?,
        db.create_enrollment(&scope, 1)?,
    ];
    let id = shouhu_tls::load_or_create(dir.path(), &[])?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://{}", listener.local_addr()?);
    let server = AppState::new(db);
    tokio::spawn(shouhu_server::run_tls(
        listener,
        id.config,
        server.clone(),
        std::future::pending(),
    ));
    let fp = id.fingerprint.to_string();

    // Two laptops of the school sync; Li logs in on both with the initial
    // password the admin gave her.
    let mut a = laptop(&dir.path().join("a"), &url, &fp, &codes[0])?;
    let mut b = laptop(&dir.path().join("b"), &url, &fp, &codes[1])?;
    for l in [&mut a, &mut b] {
        sync(l).await?;
        l.log_out();
        assert!(
            l.log_in(log_in("li", "chushi2026"), Utc::now())?
                .must_change_password
        );
        l.log_out();
    }

    // On A she changes it: only A knows, until A syncs.
    a.log_in(log_in("li", "chushi2026"), Utc::now())?;
    a.change_password(change("chushi2026", "wode2026li"), Utc::now())?;
    a.log_out();
    verify_password("chushi2026", &server_hash(&server, "li").await?)?;

    // A syncs (the admin is logged in: anyone's sync sends it).
    a.log_in(log_in("admin", "guanli2026"), Utc::now())?;
    let report = sync(&mut a).await?;
    assert_eq!(
        (
            report.password_changes_sent,
            report.password_changes_refused
        ),
        (1, 0)
    );
    a.log_out();
    let hash = server_hash(&server, "li").await?;
    verify_password("wode2026li", &hash)?;
    assert!(verify_password("chushi2026", &hash).is_err());
    // Sent once: the next sync has nothing to send.
    a.log_in(log_in("admin", "guanli2026"), Utc::now())?;
    assert_eq!(sync(&mut a).await?.password_changes_sent, 0);
    a.log_out();
    assert!(
        !a.log_in(log_in("li", "wode2026li"), Utc::now())?
            .must_change_password
    );
    a.log_out();

    // B, before its sync, still has the old one; after it, the new one only.
    b.log_in(log_in("admin", "guanli2026"), Utc::now())?;
    sync(&mut b).await?;
    b.log_out();
    assert!(wrong(&mut b, "li", "chushi2026"));
    let li = b.log_in(log_in("li", "wode2026li"), Utc::now())?;
    assert!(!li.must_change_password);

    // On B she changes it again, but the admin resets it on the server
    // before B syncs: the reset wins on the server and on both laptops.
    b.change_password(change("wode2026li", "disan2026li"), Utc::now())?;
    b.log_out();
    server
        .with_db(|db| {
            db.reset_password("li", Some("chongzhi2026".into()))
                .map(|_| ())
        })
        .await?;
    b.log_in(log_in("admin", "guanli2026"), Utc::now())?;
    let report = sync(&mut b).await?;
    assert_eq!(
        (
            report.password_changes_sent,
            report.password_changes_refused
        ),
        (0, 1)
    );
    b.log_out();
    verify_password("chongzhi2026", &server_hash(&server, "li").await?)?;
    a.log_in(log_in("admin", "guanli2026"), Utc::now())?;
    sync(&mut a).await?;
    a.log_out();
    for l in [&mut a, &mut b] {
        assert!(wrong(l, "li", "disan2026li"));
        assert!(wrong(l, "li", "wode2026li"));
        assert!(
            l.log_in(log_in("li", "chongzhi2026"), Utc::now())?
                .must_change_password
        );
        l.log_out();
    }
    Ok(())
}

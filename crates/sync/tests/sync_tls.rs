//! The sync engine against the real server over real HTTPS on 127.0.0.1
//! (`shouhu_server::run_tls` with a self-signed certificate from
//! `shouhu_tls::load_or_create`): the device pins the certificate at
//! enrollment, a wrong fingerprint is refused before the code is spent, and a
//! server whose certificate changed after enrollment gets nothing.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use shouhu_core::{ChildCard, Gender, Lang};
use shouhu_protocol::Scope;
use shouhu_server::{run_tls, AppState, ServerDb};
use shouhu_store::Store;
use shouhu_sync::{
    enroll_with, status, sync, CancelToken, SyncError, SyncOptions, SyncProgress, SyncReport,
    SETTING_SERVER_CERT,
};
use shouhu_tls::{load_or_create, Fingerprint};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

type R<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The county server on HTTPS; restartable on the same address with
/// another certificate.
struct County {
    state: AppState,
    school: Uuid,
    addr: SocketAddr,
    url: String,
    fingerprint: Fingerprint,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

async fn listen(addr: SocketAddr) -> R<tokio::net::TcpListener> {
    // After a restart the old socket may take a moment to close.
    let mut tries = 0;
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if tries < 100 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl County {
    async fn start(cert_dir: &Path) -> R<County> {
        let mut db = ServerDb::open_in_memory()?;
        let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
        let listener = listen("127.0.0.1:0".parse()?).await?;
        let addr = listener.local_addr()?;
        let mut c = County {
            state: AppState::new(db),
            school,
            addr,
            url: format!("https://127.0.0.1:{}", addr.port()),
            fingerprint: Fingerprint([0; 32]),
            stop: None,
            task: None,
        };
        c.serve(listener, cert_dir)?;
        Ok(c)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener, cert_dir: &Path) -> R {
        let identity = load_or_create(cert_dir, &[])?;
        self.fingerprint = identity.fingerprint;
        let (stop, stopped) = oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(run_tls(
            listener,
            identity.config,
            self.state.clone(),
            async {
                let _ = stopped.await;
            },
        )));
        Ok(())
    }

    /// Stop, and serve the same database at the same address with the
    /// certificate in `cert_dir` (a new one if it holds none).
    async fn restart_with(&mut self, cert_dir: &Path) -> R {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        let listener = listen(self.addr).await?;
        self.serve(listener, cert_dir)
    }

    async fn code(&self) -> R<String> {
        let scope = Scope {
            schools: vec![self.school],
            notes: false,
            // Devices' own users (the tests' stores) push as local users.
            local_users: true,
        };
        Ok(self
            .state
            .with_db(move |db| db.create_enrollment(&scope, 1))
            .await?)
    }

    async fn changes_from(&self, device: Uuid) -> R<i64> {
        let id = device.to_string();
        Ok(self
            .state
            .with_db(move |db| {
                Ok(db.connection().query_row(
                    "SELECT COUNT(*) FROM changes WHERE device_id = ?1",
                    [id],
                    |r| r.get(0),
                )?)
            })
            .await?)
    }

    async fn devices(&self) -> R<usize> {
        Ok(self.state.with_db(|db| db.devices()).await?.len())
    }
}

fn fast() -> SyncOptions {
    SyncOptions {
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
        request_timeout: Duration::from_secs(10),
        ..SyncOptions::default()
    }
}

async fn run(store: &mut Store) -> Result<SyncReport, SyncError> {
    sync(store, &fast(), &mut |_| {}, &CancelToken::new()).await
}

async fn run_logged(store: &mut Store) -> (Result<SyncReport, SyncError>, Vec<SyncProgress>) {
    let mut log = Vec::new();
    let r = sync(store, &fast(), &mut |p| log.push(p), &CancelToken::new()).await;
    (r, log)
}

fn add_child(store: &mut Store, school: Uuid, name: &str) -> R<Uuid> {
    let card = ChildCard {
        name: name.into(),
        gender: Some(Gender::Female),
        birth_date: NaiveDate::from_ymd_opt(2015, 3, 1),
        school_id: Some(school),
        ..Default::default()
    };
    Ok(store.write(|w| w.create(card))?.id())
}

fn code_of<T>(r: &Result<T, SyncError>) -> Option<&'static str> {
    r.as_ref().err().map(|e| e.code())
}

#[tokio::test]
async fn enroll_with_the_fingerprint_then_sync_over_https() -> R {
    let certs = tempfile::tempdir()?;
    let county = County::start(certs.path()).await?;
    let fp = county.fingerprint;

    // The whole fingerprint, as pasted from a chat message: lower case, no
    // colons.
    let mut a = Store::open_in_memory()?;
    let hex = fp.to_hex();
    enroll_with(
        &mut a,
        &county.url,
        &county.code().await?,
        Some(&hex),
        "a",
        &fast(),
    )
    .await?;
    let st = status(&a)?;
    assert!(st.enrolled);
    assert_eq!(st.server_fingerprint, Some(fp.to_string()));
    assert!(run(&mut a).await?.pulled >= 1, "the school");
    let kid = add_child(&mut a, county.school, "张三")?;
    let report = run(&mut a).await?;
    assert_eq!(report.pushed, 1);
    assert_eq!(a.pending_count()?, 0);
    assert_eq!(county.changes_from(a.device_id()).await?, 1);

    // Only the first 16 digits, typed in two groups: the device pins the
    // whole fingerprint of the certificate it was shown.
    let mut b = Store::open_in_memory()?;
    let typed = format!("{} {}", &hex[..8].to_uppercase(), &hex[8..16]);
    enroll_with(
        &mut b,
        &county.url,
        &county.code().await?,
        Some(&typed),
        "b",
        &fast(),
    )
    .await?;
    assert_eq!(b.setting(SETTING_SERVER_CERT)?, Some(fp.to_string()));
    let report = run(&mut b).await?;
    assert_eq!(report.pulled, 2, "the school and the child: {report:?}");
    assert_eq!(
        b.get::<ChildCard>(kid)?.map(|c| c.body.name).as_deref(),
        Some("张三")
    );
    Ok(())
}

#[tokio::test]
async fn a_wrong_fingerprint_is_refused_at_enrollment_before_the_code_is_sent() -> R {
    let certs = tempfile::tempdir()?;
    let county = County::start(certs.path()).await?;
    let elsewhere = tempfile::tempdir()?;
    let other = load_or_create(elsewhere.path(), &[])?.fingerprint;
    assert_ne!(other, county.fingerprint);
    let code = county.code().await?;

    let mut a = Store::open_in_memory()?;
    let other_text = other.to_string();
    let other_prefix = &other.to_hex()[..16];
    for wrong in [other_text.as_str(), other_prefix] {
        let e = enroll_with(&mut a, &county.url, &code, Some(wrong), "a", &fast()).await;
        assert_eq!(code_of(&e), Some("sync.certificate_mismatch"), "{wrong}");
        let e = e.err().ok_or("enrolled")?;
        assert!(e.message(Lang::ZhCn).contains("证书指纹不一致"), "{e}");
        let details = e.details(Lang::En);
        assert_eq!(details["at_enrollment"], true);
        assert_eq!(details["found"], county.fingerprint.to_string());
        assert!(!e.is_temporary());
    }
    assert!(!status(&a)?.enrolled);
    assert_eq!(a.setting(SETTING_SERVER_CERT)?, None);
    assert_eq!(county.devices().await?, 0, "the code never reached it");

    // Missing, malformed, or with plain http elsewhere: refused before any
    // connection, with their own codes.
    let e = enroll_with(&mut a, &county.url, &code, None, "a", &fast()).await;
    assert_eq!(code_of(&e), Some("sync.fingerprint_required"));
    for bad in [
        "AB:CD",
        "not a fingerprint",
        &county.fingerprint.to_hex()[..15],
    ] {
        let e = enroll_with(&mut a, &county.url, &code, Some(bad), "a", &fast()).await;
        assert_eq!(code_of(&e), Some("sync.bad_fingerprint"), "{bad}");
    }
    let e = enroll_with(&mut a, "http://10.1.2.3:8470", &code, None, "a", &fast()).await;
    assert_eq!(code_of(&e), Some("sync.https_required"));
    let plain = county.url.replace("https://", "http://");
    let fp = county.fingerprint.to_string();
    let e = enroll_with(&mut a, &plain, &code, Some(&fp), "a", &fast()).await;
    assert_eq!(code_of(&e), Some("sync.https_required"));

    // The same code, with the right fingerprint, still works: it was never
    // spent.
    enroll_with(&mut a, &county.url, &code, Some(&fp), "a", &fast()).await?;
    assert!(status(&a)?.enrolled);
    Ok(())
}

#[tokio::test]
async fn a_changed_certificate_gets_nothing_and_pending_changes_stay() -> R {
    let certs = tempfile::tempdir()?;
    let mut county = County::start(certs.path()).await?;
    let original = county.fingerprint;
    let mut a = Store::open_in_memory()?;
    let fp = original.to_string();
    enroll_with(
        &mut a,
        &county.url,
        &county.code().await?,
        Some(&fp),
        "a",
        &fast(),
    )
    .await?;
    run(&mut a).await?;
    add_child(&mut a, county.school, "张三")?;
    add_child(&mut a, county.school, "李四")?;
    let pending = a.pending_count()?;
    assert_eq!(pending, 2);

    // Same address, same data, another certificate (a new machine set up
    // without the old certificate, or someone in between).
    let replaced = tempfile::tempdir()?;
    county.restart_with(replaced.path()).await?;
    assert_ne!(county.fingerprint, original);
    let (r, log) = run_logged(&mut a).await;
    assert_eq!(code_of(&r), Some("sync.certificate_mismatch"));
    let e = r.err().ok_or("synced")?;
    let zh = e.message(Lang::ZhCn);
    assert!(
        zh.contains("证书变了") && zh.contains("不要继续同步"),
        "{zh}"
    );
    let details = e.details(Lang::En);
    assert_eq!(details["expected"], fp);
    assert_eq!(details["found"], county.fingerprint.to_string());
    assert_eq!(details["at_enrollment"], false);
    // Not a network blip: no retry, nothing pushed, everything kept.
    assert!(log.iter().all(|p| p.retry.is_none()), "{log:?}");
    assert_eq!(a.pending_count()?, pending);
    assert_eq!(county.changes_from(a.device_id()).await?, 0);
    assert_eq!(a.setting(SETTING_SERVER_CERT)?, Some(fp.clone()));

    // The real certificate back: the pending changes go through.
    county.restart_with(certs.path()).await?;
    assert_eq!(county.fingerprint, original);
    let report = run(&mut a).await?;
    assert_eq!(report.pushed, 2);
    assert_eq!(a.pending_count()?, 0);
    Ok(())
}

#[tokio::test]
async fn a_revoked_device_over_https_is_told_so() -> R {
    let certs = tempfile::tempdir()?;
    let county = County::start(certs.path()).await?;
    let mut a = Store::open_in_memory()?;
    let fp = county.fingerprint.to_string();
    enroll_with(
        &mut a,
        &county.url,
        &county.code().await?,
        Some(&fp),
        "a",
        &fast(),
    )
    .await?;
    run(&mut a).await?;
    add_child(&mut a, county.school, "张三")?;
    let id = a.device_id();
    county.state.with_db(move |db| db.revoke(id)).await?;
    let r = run(&mut a).await;
    assert_eq!(code_of(&r), Some("auth.revoked"));
    assert!(r
        .err()
        .is_some_and(|e| e.message(Lang::ZhCn).contains("停用")));
    assert_eq!(a.pending_count()?, 1, "unsent work stays");
    // Handed to an administrator: enrolled again with a new code, the
    // laptop sends the work it kept.
    let code = county.code().await?;
    enroll_with(&mut a, &county.url, &code, Some(&fp), "a", &fast()).await?;
    let report = run(&mut a).await?;
    assert_eq!(report.pushed, 1);
    assert_eq!(a.pending_count()?, 0);
    Ok(())
}

#[tokio::test]
async fn a_store_enrolled_without_a_pin_must_enroll_again() -> R {
    // An https address with no stored fingerprint (enrolled before pinning,
    // or the setting lost), and plain http to another machine: refused
    // without connecting.
    let mut a = Store::open_in_memory()?;
    a.set_setting("server_url", "https://shouhu.example.cn")?;
    a.set_setting("credential", "c")?;
    assert_eq!(
        code_of(&run(&mut a).await),
        Some("sync.fingerprint_required")
    );
    a.set_setting("server_url", "http://10.1.2.3:8470")?;
    assert_eq!(code_of(&run(&mut a).await), Some("sync.https_required"));
    Ok(())
}

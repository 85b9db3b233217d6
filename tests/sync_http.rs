//! Two devices offline, then sync through a real server over HTTPS on
//! 127.0.0.1 (its self-signed certificate pinned at enrollment): different fields of one child, the same field, edit versus
//! delete, visits on both sides. Afterwards both devices and the server hold
//! identical data, and every edit is either the value or in a conflict record.
//! One device syncs through the `shouhu` CLI, as a township office would.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::Value;
use shouhu_core::*;
use shouhu_protocol::Scope;
use shouhu_server::{AppState, AuditQuery, ServerDb};
use shouhu_store::Store;
use shouhu_sync::{CancelToken, SyncOptions};
use uuid::Uuid;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default()
}

struct County {
    url: String,
    /// The server certificate's fingerprint, as `shouhu-server` prints it.
    fingerprint: String,
    state: AppState,
    school: Uuid,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    dir: tempfile::TempDir,
}

async fn county() -> Res<County> {
    let dir = tempfile::tempdir()?;
    let mut db = ServerDb::open(&dir.path().join("server"))?;
    let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
    let state = AppState::new(db);
    let identity = shouhu_tls::load_or_create(&dir.path().join("server"), &[])?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let st = state.clone();
    tokio::spawn(async move {
        let _ = shouhu_server::run_tls(listener, identity.config, st, async {
            let _ = rx.await;
        })
        .await;
    });
    Ok(County {
        url,
        fingerprint: identity.fingerprint.to_string(),
        state,
        school,
        _shutdown: tx,
        dir,
    })
}

impl County {
    async fn code(&self) -> Res<String> {
        let school = self.school;
        Ok(self
            .state
            .with_db(move |db| {
                db.create_enrollment(
                    &Scope {
                        schools: vec![school],
                        notes: false,
                        local_users: true,
                    },
                    1,
                )
            })
            .await?)
    }

    async fn device(&self, name: &str) -> Res<Store> {
        let mut s = Store::open(self.dir.path().join(format!("{name}.db")))?;
        s.set_today(Some(today()));
        let code = self.code().await?;
        shouhu_sync::enroll(&mut s, &self.url, &code, Some(&self.fingerprint), name).await?;
        Ok(s)
    }
}

async fn sync(s: &mut Store) -> Res<shouhu_sync::SyncReport> {
    Ok(shouhu_sync::sync(s, &SyncOptions::default(), &mut |_| {}, &CancelToken::new()).await?)
}

fn replica(s: &Store) -> Res<BTreeMap<Uuid, (bool, Value)>> {
    let mut out = BTreeMap::new();
    for k in EntityKind::ALL {
        s.for_each_raw(k, true, |r| {
            out.insert(r.meta()?.id, (r.deleted_at.is_some(), r.body_value()?));
            Ok(())
        })?;
    }
    Ok(out)
}

async fn server_replica(c: &County) -> Res<BTreeMap<Uuid, (bool, Value)>> {
    let ids: Vec<String> = c
        .state
        .with_db(|db| {
            let mut st = db.connection().prepare("SELECT id FROM record")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await?;
    let mut out = BTreeMap::new();
    for id in ids {
        let uid = Uuid::parse_str(&id)?;
        let st = c
            .state
            .with_db(move |db| db.record(uid))
            .await?
            .ok_or("record")?;
        out.insert(uid, (st.deleted, st.body));
    }
    Ok(out)
}

fn card(name: &str, school: Uuid) -> ChildCard {
    ChildCard {
        name: name.into(),
        gender: Some(Gender::Female),
        birth_date: NaiveDate::from_ymd_opt(2015, 4, 1),
        school_id: Some(school),
        ..Default::default()
    }
}

fn conflicts(s: &Store) -> Res<Vec<Conflict>> {
    Ok(s.list_all::<Conflict>()?
        .into_iter()
        .map(|c| c.body)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_offline_then_sync() -> Res<()> {
    let c = county().await?;
    let mut a = c.device("laptop-a").await?;
    let mut b = c.device("laptop-b").await?;
    sync(&mut a).await?;
    sync(&mut b).await?;
    // A creates three children; both devices get them.
    let (x, y, z) = a.write(|w| {
        Ok((
            w.create(card("张三", c.school))?.id(),
            w.create(card("李四", c.school))?.id(),
            w.create(card("王五", c.school))?.id(),
        ))
    })?;
    sync(&mut a).await?;
    sync(&mut b).await?;
    assert_eq!(b.fetch::<ChildCard>(x)?.body.name, "张三");

    // Offline, both edit.
    // 1. Different fields of X.
    let mut ax = a.fetch::<ChildCard>(x)?.body;
    ax.boarding = true;
    a.write(|w| w.update(x, ax))?;
    let mut bx = b.fetch::<ChildCard>(x)?.body;
    bx.father.phone = Some("13812345678".into());
    b.write(|w| w.update(x, bx))?;
    // 2. The same field of Y.
    let mut ay = a.fetch::<ChildCard>(y)?.body;
    ay.guardian.name = "王桂兰".into();
    a.write(|w| w.update(y, ay))?;
    let mut by = b.fetch::<ChildCard>(y)?.body;
    by.guardian.name = "李秀英".into();
    b.write(|w| w.update(y, by))?;
    // 3. A deletes Z while B edits it.
    a.write(|w| w.delete(EntityKind::Child, z, "重复录入"))?;
    let mut bz = b.fetch::<ChildCard>(z)?.body;
    bz.notes = "奶奶说孩子想妈妈".into();
    b.write(|w| w.update(z, bz))?;
    // 4. Both add visits for X.
    let visit = |by: &str| HomeVisit {
        child_id: Some(x),
        visit_date: Some(today()),
        visitors: vec![by.into()],
        problems_found: format!("{by}发现的问题"),
        ..Default::default()
    };
    let va = a.write(|w| w.create(visit("刘老师")))?.id();
    let vb = b.write(|w| w.create(visit("王老师")))?.id();

    // Sync: A, then B, then A again (so A sees B's changes).
    sync(&mut a).await?;
    let rb = sync(&mut b).await?;
    assert_eq!(
        rb.conflicts, 2,
        "same field of Y, and the edit of deleted Z"
    );
    sync(&mut a).await?;

    // Identical everywhere.
    let ra = replica(&a)?;
    assert_eq!(ra, replica(&b)?, "both devices hold the same data");
    let server = server_replica(&c).await?;
    for (id, v) in &ra {
        assert_eq!(server.get(id), Some(v), "device and server agree on {id}");
    }
    assert_eq!(ra.len(), server.len());

    // 1. Both edits kept.
    let fx = a.fetch::<ChildCard>(x)?.body;
    assert!(fx.boarding);
    assert_eq!(fx.father.phone.as_deref(), Some("13812345678"));
    // 2. B's value (later in the server's order) is the value; A's is in a
    //    conflict record, with who made it.
    let fy = a.fetch::<ChildCard>(y)?.body;
    assert_eq!(fy.guardian.name, "李秀英");
    let all = conflicts(&a)?;
    let cy = all
        .iter()
        .find(|k| k.record_id == y)
        .ok_or("conflict for Y")?;
    assert_eq!(cy.kind, ConflictKind::SameField);
    assert_eq!(cy.field.as_deref(), Some("guardian.name"));
    assert_eq!(cy.other_value, Value::from("王桂兰"));
    assert_eq!(cy.other_by.device_id, a.device_id());
    assert_eq!(cy.current_by.device_id, b.device_id());
    // 3. Z stays deleted, B's edit is kept in it and flagged.
    let fz = a.get::<ChildCard>(z)?.ok_or("z")?;
    assert!(fz.meta.deleted_at.is_some(), "not resurrected");
    assert_eq!(fz.body.notes, "奶奶说孩子想妈妈", "the edit is not lost");
    assert!(all
        .iter()
        .any(|k| k.record_id == z && k.kind == ConflictKind::EditVsDelete));
    // 4. Both visits everywhere.
    for s in [&a, &b] {
        assert!(s.get::<HomeVisit>(va)?.is_some() && s.get::<HomeVisit>(vb)?.is_some());
    }

    // Resolving on B closes the conflict everywhere and the chosen value wins.
    let cid = b
        .list_all::<Conflict>()?
        .into_iter()
        .find(|k| k.body.record_id == y)
        .ok_or("conflict on B")?
        .id();
    b.write(|w| w.resolve_conflict(cid, ResolutionChoice::KeepOther, None))?;
    sync(&mut b).await?;
    sync(&mut a).await?;
    for s in [&a, &b] {
        assert_eq!(s.fetch::<ChildCard>(y)?.body.guardian.name, "王桂兰");
        assert_eq!(
            s.fetch::<Conflict>(cid)?.body.status,
            ConflictStatus::Resolved
        );
    }
    assert_eq!(replica(&a)?, replica(&b)?);
    Ok(())
}

/// A laptop's edits reach the county audit view with who, device, when,
/// the record and the names of the fields written, never their values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_laptops_edits_are_in_the_county_audit_view() -> Res<()> {
    const PHONE: &str = "13698765432";
    let c = county().await?;
    let mut a = c.device("laptop-a").await?;
    sync(&mut a).await?;
    let x = a.write(|w| Ok(w.create(card("张秘密", c.school))?.id()))?;
    let mut ax = a.fetch::<ChildCard>(x)?.body;
    ax.father.phone = Some(PHONE.into());
    a.write(|w| w.update(x, ax))?;
    a.write(|w| w.delete(EntityKind::Child, x, "重复录入"))?;
    sync(&mut a).await?;
    let rows = c
        .state
        .with_db(move |db| {
            db.audit_view(&AuditQuery {
                target: Some(x.to_string()),
                ..Default::default()
            })
        })
        .await?;
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["create", "update", "delete"]);
    for r in &rows {
        assert_eq!(r.source, "changes");
        assert_eq!((r.device_id, r.user_id), (a.device_id(), a.user_id()));
        assert_eq!(r.target_kind.as_deref(), Some("child"));
        assert_eq!(r.school_id, Some(c.school.to_string()));
    }
    assert_eq!(
        rows[1].details["fields"],
        serde_json::json!(["father.phone"])
    );
    let printed = format!(
        "{}{}",
        serde_json::to_string(&rows)?,
        shouhu_server::audit_csv(&rows)
    );
    assert!(
        !printed.contains(PHONE) && !printed.contains("张秘密"),
        "{printed}"
    );
    // `--action edit --device`: the same three; views only: none here.
    let device = a.device_id();
    let (edits, views) = c
        .state
        .with_db(move |db| {
            let q = |action: &str| AuditQuery {
                action: Some(action.into()),
                device: Some(device),
                ..Default::default()
            };
            Ok((db.audit_view(&q("edit"))?, db.audit_view(&q("view"))?))
        })
        .await?;
    assert_eq!(edits, rows);
    assert!(views.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_enrolls_and_syncs() -> Res<()> {
    let c = county().await?;
    let code = c.code().await?;
    let mut a = c.device("laptop-a").await?;
    sync(&mut a).await?;
    let kid = a.write(|w| w.create(card("张三", c.school)))?.id();
    sync(&mut a).await?;
    let db = c.dir.path().join("township.db");
    let identity = c.dir.path().join("township-identity");
    let url = c.url.clone();
    let fingerprint = c.fingerprint.clone();
    let run = move |args: Vec<String>| {
        let mut all = vec![
            "shouhu".to_string(),
            "--db".into(),
            db.display().to_string(),
            "--identity-dir".into(),
            identity.display().to_string(),
        ];
        all.extend(args);
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = shouhu_cli::run(all, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    };
    // A fingerprint that is not the server's: refused, coded, the code
    // not spent.
    let (code_, _, err) = tokio::task::spawn_blocking({
        let run = run.clone();
        let url = url.clone();
        let code = code.clone();
        let wrong = "00".repeat(32);
        move || {
            run(vec![
                "enroll".into(),
                "--server".into(),
                url,
                "--code".into(),
                code,
                "--fingerprint".into(),
                wrong,
            ])
        }
    })
    .await?;
    assert_eq!(code_, 1);
    assert!(err.contains("[sync.certificate_mismatch]"), "{err}");
    let (code_, out, err) = tokio::task::spawn_blocking({
        let run = run.clone();
        let url = url.clone();
        move || {
            run(vec![
                "sync".into(),
                "--server".into(),
                url,
                "--code".into(),
                code,
                "--fingerprint".into(),
                fingerprint,
                "--json".into(),
            ])
        }
    })
    .await?;
    assert_eq!(code_, 0, "{err}");
    let report: Value = serde_json::from_str(&out)?;
    assert!(report["pulled"].as_u64().unwrap_or(0) >= 2, "{report}");
    let (code_, out, _) =
        tokio::task::spawn_blocking(move || run(vec!["search".into(), "zs".into()])).await?;
    assert_eq!(code_, 0);
    assert!(out.contains(&kid.to_string()), "{out}");
    // A wrong server address is a coded, Chinese error.
    let (code_, _, err) = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let db = dir.path().join("x.db");
        let code = shouhu_cli::run(
            [
                "shouhu",
                "--db",
                &db.display().to_string(),
                "--identity-dir",
                &dir.path().join("id").display().to_string(),
                "sync",
            ],
            &mut out,
            &mut err,
        );
        Ok::<_, String>((
            code,
            String::new(),
            String::from_utf8_lossy(&err).into_owned(),
        ))
    })
    .await??;
    assert_eq!(code_, 1);
    assert!(err.contains("[sync.not_enrolled]"), "{err}");
    Ok(())
}

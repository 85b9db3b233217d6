//! A device holds only its scope, end to end over HTTPS on 127.0.0.1: a
//! township device with schools A and B has unsent edits for B when the
//! county admin narrows it to A. Its next sync pushes those edits (made
//! before the narrowing: accepted), then removes B from the device — no
//! tombstone in its change log, the server keeps all of B. An edit of B made
//! after the narrowing is refused, stays pending, and keeps B on the device
//! until it can go; adding B back sends it and pulls B again.

use chrono::NaiveDate;
use shouhu_core::*;
use shouhu_protocol::Scope;
use shouhu_server::{AppState, NewDeviceScope, ServerDb};
use shouhu_store::Store;
use shouhu_sync::{CancelToken, SyncError, SyncOptions, SyncReport};
use uuid::Uuid;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default()
}

struct County {
    url: String,
    fingerprint: String,
    state: AppState,
    a: Uuid,
    b: Uuid,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    dir: tempfile::TempDir,
}

async fn county() -> Res<County> {
    let dir = tempfile::tempdir()?;
    let mut db = ServerDb::open(&dir.path().join("server"))?;
    let a = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
    let b = db.add_school(None, "八步中学", "织金县", "八步街道")?;
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
        a,
        b,
        _shutdown: tx,
        dir,
    })
}

impl County {
    /// The township office's device: every school of 八步街道.
    async fn township_device(&self) -> Res<Store> {
        let code = self
            .state
            .with_db(|db| {
                let schools = db.township_schools("八步街道")?;
                db.create_enrollment(
                    &Scope {
                        schools,
                        notes: false,
                        local_users: true,
                    },
                    1,
                )
            })
            .await?;
        let mut s = Store::open(self.dir.path().join("township.db"))?;
        s.set_today(Some(today()));
        shouhu_sync::enroll(
            &mut s,
            &self.url,
            &code,
            Some(&self.fingerprint),
            "乡镇中心校",
        )
        .await?;
        Ok(s)
    }

    /// `shouhu-server device set-scope DEVICE --school …`.
    async fn set_scope(&self, device: Uuid, schools: Vec<Uuid>) -> Res<()> {
        let change = self
            .state
            .with_db(move |db| {
                db.set_device_scope(
                    device,
                    &NewDeviceScope {
                        schools,
                        townships: Vec::new(),
                    },
                )
            })
            .await?;
        assert!(change.is_some(), "the scope changed");
        // The device's next clock reading is after the change's instant.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Ok(())
    }

    async fn server_record(&self, id: Uuid) -> Res<Option<shouhu_core::merge::RecordState>> {
        Ok(self.state.with_db(move |db| db.record(id)).await?)
    }

    /// Live records of a school on the server.
    async fn server_school_records(&self, school: Uuid) -> Res<i64> {
        Ok(self
            .state
            .with_db(move |db| {
                Ok(db.connection().query_row(
                    "SELECT COUNT(*) FROM record WHERE school_id = ?1 AND json_extract(state, '$.deleted') = 0",
                    [school.to_string()],
                    |r| r.get(0),
                )?)
            })
            .await?)
    }
}

async fn sync(s: &mut Store) -> Res<SyncReport> {
    Ok(shouhu_sync::sync(s, &SyncOptions::default(), &mut |_| {}, &CancelToken::new()).await?)
}

async fn sync_reporting(s: &mut Store) -> (SyncReport, Option<SyncError>) {
    shouhu_sync::sync_reporting(s, &SyncOptions::default(), &mut |_| {}, &CancelToken::new()).await
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

fn visit(child: Uuid, by: &str) -> HomeVisit {
    HomeVisit {
        child_id: Some(child),
        visit_date: Some(today()),
        visitors: vec![by.into()],
        problems_found: format!("{by}发现的问题"),
        ..Default::default()
    }
}

/// Rows of `school` in every table of the device.
fn local_rows(s: &Store, school: Uuid) -> Res<i64> {
    let mut n = 0;
    for k in EntityKind::ALL {
        n += s.connection().query_row(
            &format!("SELECT COUNT(*) FROM {} WHERE school_id = ?1", k.name()),
            [school.to_string()],
            |r| r.get::<_, i64>(0),
        )?;
    }
    Ok(n)
}

fn tombstones(s: &Store, school: Uuid) -> Res<i64> {
    Ok(s.connection().query_row(
        "SELECT COUNT(*) FROM change_log WHERE school_id = ?1 AND op = 'delete'",
        [school.to_string()],
        |r| r.get(0),
    )?)
}

/// A child and a visit in each school, synced.
async fn seeded(c: &County) -> Res<(Store, Uuid, Uuid)> {
    let mut d = c.township_device().await?;
    sync(&mut d).await?;
    let (xa, xb) = d.write(|w| {
        let xa = w.create(card("张三", c.a))?.id();
        let xb = w.create(card("李四", c.b))?.id();
        w.create(visit(xa, "刘老师"))?;
        w.create(visit(xb, "王老师"))?;
        Ok((xa, xb))
    })?;
    let r = sync(&mut d).await?;
    assert_eq!(r.pushed, 4);
    assert_eq!(
        r.scope.as_ref().map(|s| s.schools.len()),
        Some(2),
        "the device knows its scope"
    );
    assert_eq!(
        shouhu_sync::stored_scope(&d)?.map(|s| s.schools.len()),
        Some(2)
    );
    Ok((d, xa, xb))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_device_pushes_its_pending_edits_then_drops_the_school() -> Res<()> {
    let c = county().await?;
    let (mut d, xa, xb) = seeded(&c).await?;
    // Offline: edits of B (and one of A) not yet sent.
    let mut b_card = d.fetch::<ChildCard>(xb)?.body;
    b_card.notes = "奶奶说孩子想妈妈".into();
    let vb = d.write(|w| {
        w.update(xb, b_card)?;
        Ok(w.create(visit(xb, "赵老师"))?.id())
    })?;
    let mut a_card = d.fetch::<ChildCard>(xa)?.body;
    a_card.boarding = true;
    d.write(|w| w.update(xa, a_card))?;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    // The county narrows the device to A.
    let device = d.device_id();
    c.set_scope(device, vec![c.a]).await?;
    let b_on_server = c.server_school_records(c.b).await?;

    let r = sync(&mut d).await?;
    // The pending edits went through, B's included, and are on the server.
    assert_eq!(r.pushed, 3);
    assert_eq!(d.pending_count()?, 0);
    let server_b = c
        .server_record(xb)
        .await?
        .ok_or("B's child on the server")?;
    assert_eq!(server_b.body["notes"], "奶奶说孩子想妈妈");
    assert!(
        c.server_record(vb).await?.is_some(),
        "B's new visit on the server"
    );
    // Then B left the device: every row, in the report.
    assert_eq!(r.scope.as_ref().map(|s| s.schools.clone()), Some(vec![c.a]));
    assert_eq!(r.schools_removed.len(), 1);
    let removed = &r.schools_removed[0];
    assert_eq!(removed.school_id, c.b);
    assert_eq!(removed.name.as_deref(), Some("八步中学"));
    // The school, its child and its two visits.
    assert_eq!(removed.records, 4);
    assert!(r.schools_kept.is_empty());
    assert_eq!(local_rows(&d, c.b)?, 0);
    assert!(d.get::<ChildCard>(xb)?.is_none() && d.get::<HomeVisit>(vb)?.is_none());
    assert!(d.get::<School>(c.b)?.is_none());
    // A remains, with its edit.
    assert!(d.fetch::<ChildCard>(xa)?.body.boarding);
    assert!(d.get::<School>(c.a)?.is_some());
    assert_eq!(local_rows(&d, c.a)?, 3);
    // No tombstone: nothing of the purge is in the outbox or the log as a
    // delete, and the server still has all of B.
    assert_eq!(tombstones(&d, c.b)?, 0);
    let leftover: Vec<(String, Option<String>)> = {
        let mut st = d
            .connection()
            .prepare("SELECT device_id, fields FROM change_log WHERE school_id = ?1")?;
        let rows = st.query_map([c.b.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    assert!(!leftover.is_empty());
    for (device_id, fields) in &leftover {
        assert_eq!(
            device_id,
            &d.device_id().to_string(),
            "only this device's own entries"
        );
        assert_eq!(fields.as_deref(), Some("{}"), "emptied of B's data");
    }
    let again = sync(&mut d).await?;
    assert_eq!((again.pushed, again.schools_removed.len()), (0, 0));
    assert_eq!(c.server_school_records(c.b).await?, b_on_server + 1);
    assert_eq!(c.server_school_records(c.b).await?, 4);
    let server_b = c.server_record(xb).await?.ok_or("B's child")?;
    assert!(!server_b.deleted);

    // B added back: it comes back whole with the next sync.
    c.set_scope(device, vec![c.a, c.b]).await?;
    let r = sync(&mut d).await?;
    assert_eq!(r.schools_added, vec![c.b]);
    assert_eq!(d.fetch::<ChildCard>(xb)?.body.notes, "奶奶说孩子想妈妈");
    assert!(d.get::<HomeVisit>(vb)?.is_some());
    assert_eq!(local_rows(&d, c.b)?, 4);
    assert!(d.fetch::<ChildCard>(xa)?.body.boarding);
    // This device's own entries about B, emptied by the purge, have their
    // content again: the child's history reads as before.
    let emptied: i64 = d.connection().query_row(
        "SELECT COUNT(*) FROM change_log WHERE school_id = ?1 AND fields = '{}'",
        [c.b.to_string()],
        |r| r.get(0),
    )?;
    assert_eq!(emptied, 0);
    let history = d.changes_for_record(xb)?;
    assert_eq!(history[0].op, Op::Create);
    assert_eq!(history[0].fields["name"], "李四");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_made_after_the_narrowing_is_refused_and_keeps_the_school() -> Res<()> {
    let c = county().await?;
    let (mut d, _xa, xb) = seeded(&c).await?;
    // One edit of B before the narrowing, one after (the device does not
    // know yet).
    let mut first = d.fetch::<ChildCard>(xb)?.body;
    first.notes = "之前的记录".into();
    d.write(|w| w.update(xb, first))?;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let device = d.device_id();
    c.set_scope(device, vec![c.a]).await?;
    let mut late = d.fetch::<ChildCard>(xb)?.body;
    late.boarding = true;
    d.write(|w| w.update(xb, late))?;

    let (r, e) = sync_reporting(&mut d).await;
    // The earlier edit is taken, the later one refused as out of scope.
    match e {
        Some(SyncError::OutOfScope { details }) => {
            assert_eq!(details["reason"], "left_scope");
            assert_eq!(details["school_id"], c.b.to_string());
        }
        other => return Err(format!("expected sync.out_of_scope, got {other:?}").into()),
    }
    assert_eq!(r.pushed, 1);
    let on_server = c.server_record(xb).await?.ok_or("B's child")?;
    assert_eq!(on_server.body["notes"], "之前的记录");
    assert_eq!(on_server.body["boarding"], false);
    // The refused edit stays pending, and B stays on the device for it.
    assert_eq!(d.pending_count()?, 1);
    assert!(r.schools_removed.is_empty());
    assert_eq!(
        r.schools_kept,
        vec![shouhu_sync::KeptSchool {
            school_id: c.b,
            name: Some("八步中学".into()),
            pending: 1
        }]
    );
    assert!(
        d.fetch::<ChildCard>(xb)?.body.boarding,
        "the edit is not lost"
    );
    assert_eq!(local_rows(&d, c.b)?, 3);
    assert_eq!(tombstones(&d, c.b)?, 0);
    // A second sync changes nothing of that.
    let (r, e) = sync_reporting(&mut d).await;
    assert!(matches!(e, Some(SyncError::OutOfScope { .. })));
    assert_eq!(r.schools_kept.len(), 1);
    assert_eq!(local_rows(&d, c.b)?, 3);

    // The admin adds B back: the edit goes, and B stays.
    c.set_scope(device, vec![c.a, c.b]).await?;
    let r = sync(&mut d).await?;
    assert_eq!(r.pushed, 1);
    assert_eq!(d.pending_count()?, 0);
    let on_server = c.server_record(xb).await?.ok_or("B's child")?;
    assert_eq!(on_server.body["boarding"], true);
    assert!(r.schools_removed.is_empty() && r.schools_kept.is_empty());
    assert_eq!(local_rows(&d, c.b)?, 3);
    Ok(())
}

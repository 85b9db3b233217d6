//! A counselor's psychological note crosses the county server sealed: after
//! the note is written through the app's API and synced, a grep of every
//! file in the server's data folder (database, WAL) and of everything the
//! server logged, at trace level, finds none of its text. The grep is shown
//! to work on the same bytes: the child's name (not confidential) is found.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use serde_json::json;
use shouhu_auth::password::KdfParams;
use shouhu_auth::Role;
use shouhu_core::{ChildCard, Gender, PsychNote};
use shouhu_protocol::Scope;
use shouhu_server::{AppState, ServerDb};
use shouhu_sync::{CancelToken, SyncOptions};
use shouhu_vault::{NewUser, Vault};
use uuid::Uuid;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const NOTE_TEXT: &str = "夜里常梦见在广东打工的妈妈";
const INTERVENTION: &str = "约定每周二午休时间谈话";
const CHILD_NAME: &str = "欧阳小梅";

/// Everything the server logs, kept for the grep.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn sync(s: &mut shouhu_store::Store) -> Res<shouhu_sync::SyncReport> {
    Ok(shouhu_sync::sync(s, &SyncOptions::default(), &mut |_| {}, &CancelToken::new()).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_never_holds_or_logs_note_text() -> Res<()> {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .map_err(|e| e.to_string())?;

    // The county server, on loopback HTTPS, its data in a folder of its own.
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let mut db = ServerDb::open(&data)?;
    let school = db.add_school(None, "新寨小学", "织金县", "八步街道")?;
    let code = db.create_enrollment(
        &Scope {
            schools: vec![school],
            notes: true,
            local_users: true,
        },
        1,
    )?;
    let state = AppState::new(db);
    let identity = shouhu_tls::load_or_create(&data, &[])?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(shouhu_server::run_tls(
        listener,
        identity.config,
        state.clone(),
        async {
            let _ = stopped.await;
        },
    ));

    // A counselor's laptop: encrypted store, the counselor logged in.
    let vault = Vault::new(dir.path().join("school.db")).with_kdf(KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    });
    let user_id = Uuid::now_v7();
    let scope = shouhu_auth::Scope::School {
        school_id: school,
        township_id: Uuid::now_v7(),
    };
    let mut session = vault.set_up(NewUser {
        user_id,
        login_name: "xinli".into(),
        display_name: "心理老师".into(),
        role: Role::Counselor,
        scope,
        password: "xinli2026ok".into(),
    })?;
    let today = NaiveDate::from_ymd_opt(2026, 11, 28).ok_or("date")?;
    session.store_mut().set_today(Some(today));
    let fp = identity.fingerprint.to_string();
    shouhu_sync::enroll(session.store_mut(), &url, &code, Some(&fp), "xinli-laptop").await?;
    sync(session.store_mut()).await?; // the school arrives

    // A child and a note, written as the app writes them.
    let child = session.store_mut().write(|w| {
        w.create(ChildCard {
            name: CHILD_NAME.into(),
            gender: Some(Gender::Female),
            birth_date: NaiveDate::from_ymd_opt(2016, 5, 4),
            school_id: Some(school),
            ..Default::default()
        })
    })?;
    let api = shouhu_api::Session {
        lang: shouhu_core::Lang::ZhCn,
        role: Role::Counselor,
        scope,
        notes: Some(Arc::new(shouhu_api::NoteKeys {
            user_id,
            keys: session.reader_keys_shared(),
            readers: session.local_readers()?,
        })),
    };
    let note_id = shouhu_api::save_record(
        session.store_mut(),
        &api,
        shouhu_api::SaveRecord {
            kind: "psych_note".into(),
            id: None,
            body: json!({
                "child_id": child.id(),
                "school_id": school,
                "session_date": "2026-11-20",
                "presenting_issue": NOTE_TEXT,
                "risk_level": "high",
                "intervention": INTERVENTION,
            }),
        },
    )
    .map_err(|e| e.to_string())?;
    let report = sync(session.store_mut()).await?;
    assert!(report.pushed >= 2, "{report:?}");

    // The note reached the server (sealed) and reads back on the laptop.
    let on_server = state
        .with_db(move |db| db.record(note_id))
        .await?
        .ok_or("the note is not on the server")?;
    let body: PsychNote = serde_json::from_value(on_server.body)?;
    assert!(body.is_sealed());
    let rows = shouhu_api::list_child_records(session.store(), &api, child.id(), "psych_note")
        .map_err(|e| e.to_string())?;
    assert_eq!(rows[0].body["presenting_issue"], NOTE_TEXT);

    // Stop the server (checkpointing nothing on purpose: the WAL is read
    // too), then grep its folder and its logs.
    let _ = stop.send(());
    let _ = server.await;
    drop(state);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&data)? {
        let path = entry?.path();
        if path.is_file() {
            files.push((path.clone(), std::fs::read(&path)?));
        }
    }
    assert!(
        files.iter().any(|(p, _)| p.ends_with("shouhu-server.db")),
        "{files:?}"
    );
    let all: Vec<u8> = files.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    assert!(
        contains(&all, CHILD_NAME),
        "the grep must see plain text where there is some"
    );
    for secret in [NOTE_TEXT, INTERVENTION, "\"risk_level\":\"high\""] {
        for (path, bytes) in &files {
            assert!(!contains(bytes, secret), "{secret} in {}", path.display());
        }
    }
    let logged = logs.0.lock().map_err(|_| "log lock")?.clone();
    assert!(contains(&logged, "push"), "the server's logs were captured");
    for secret in [NOTE_TEXT, INTERVENTION] {
        assert!(!contains(&logged, secret), "{secret} in the server's logs");
    }
    Ok(())
}

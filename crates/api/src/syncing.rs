//! Sync from the app: status, enrollment and sync (async, over
//! `shouhu-sync`), and the conflicts to review.

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shouhu_auth::{ReaderPublicKey, SealedReaderKey};
use shouhu_core::hlc::Hlc;
use shouhu_core::{
    ChangeStamp, ChildCard, Conflict, ConflictKind, ConflictStatus, EntityKind, Household,
    ResolutionChoice,
};
use shouhu_sync::{
    CancelToken, SyncOptions, SyncProgress, SyncReport, SyncStatus, UserRecord, UserScope,
};
use shouhu_vault::ServerUser;
use uuid::Uuid;

use crate::notes::PublishedReader;
use crate::{who, Result, Role, Scope, Store};

/// After a sync that removed schools that left this device's scope: the
/// school chosen in the settings (`ui.school_id`, the lists' default) is
/// cleared if it was one of them. (The laptop accounts of such a school stay
/// in the keyring until the server removes the user; held to a school with
/// no records here, they see empty lists and cannot add to it.)
pub(crate) fn forget_removed_schools(store: &mut Store, report: &SyncReport) -> Result<()> {
    let chosen = store
        .setting(crate::settings::SETTING_SCHOOL)?
        .and_then(|s| Uuid::parse_str(&s).ok());
    if let Some(chosen) = chosen {
        if report.schools_removed.iter().any(|p| p.school_id == chosen) {
            store.set_setting(crate::settings::SETTING_SCHOOL, "")?;
        }
    }
    Ok(())
}

pub fn sync_status(store: &Store) -> Result<SyncStatus> {
    Ok(shouhu_sync::status(store)?)
}

/// Enroll this device with a server, remembering it: the address, the
/// one-time code and the certificate fingerprint the county administrator
/// gave (`shouhu-server enroll` prints both; all 64 hex digits or at least
/// the first 16). The certificate is pinned: every later sync talks only to
/// that certificate. An empty fingerprint is only accepted for a plain
/// `http://` server on this computer (tests).
pub async fn enroll(
    store: &mut Store,
    server_url: &str,
    code: &str,
    fingerprint: &str,
    device_name: &str,
) -> Result<SyncStatus> {
    let fingerprint = Some(fingerprint.trim()).filter(|f| !f.is_empty());
    shouhu_sync::enroll(
        store,
        server_url.trim(),
        code.trim(),
        fingerprint,
        device_name,
    )
    .await?;
    sync_status(store)
}

/// The vault's form of a server user (`None`: a role this program does not
/// know).
pub fn server_user(u: &UserRecord) -> Option<ServerUser> {
    let role = Role::parse(&u.role)?;
    let scope = match &u.scope {
        UserScope::School {
            school_id,
            township_id,
            ..
        } => Scope::School {
            school_id: *school_id,
            township_id: *township_id,
        },
        UserScope::Township { township_id, .. } => Scope::Township {
            township_id: *township_id,
        },
        UserScope::County => Scope::County,
    };
    let login_key = match (&u.login_public_key, &u.login_secret_sealed) {
        (Some(public), Some(secret)) => SealedReaderKey::from_base64(public, secret).ok(),
        _ => None,
    };
    Some(ServerUser {
        user_id: u.id,
        login_name: u.login_name.clone(),
        display_name: u.display_name.clone(),
        role,
        scope,
        login_key,
        must_change_password: u.must_change_password,
        removed: u.removed_at.is_some(),
        password_changed_at: u.password_changed_at.clone(),
    })
}

/// The notes readers the server published: users whose role reads notes,
/// not removed, with each registered reader key (one per device that
/// registered one; from an older server, its one key).
pub fn published_readers(users: &[UserRecord]) -> Vec<PublishedReader> {
    users
        .iter()
        .filter(|u| u.removed_at.is_none())
        .filter(|u| Role::parse(&u.role).is_some_and(Role::reads_notes))
        .flat_map(|u| {
            reader_keys_of(u).into_iter().map(|public| PublishedReader {
                user_id: u.id,
                public,
            })
        })
        .collect()
}

/// A user's published reader keys (the set, or an older server's one key),
/// each once; keys that do not parse are left out.
pub(crate) fn reader_keys_of(u: &UserRecord) -> Vec<ReaderPublicKey> {
    let texts: Vec<&String> = if u.reader_public_keys.is_empty() {
        u.reader_public_key.iter().collect()
    } else {
        u.reader_public_keys.iter().collect()
    };
    let mut out: Vec<ReaderPublicKey> = Vec::new();
    for t in texts {
        if let Ok(k) = serde_json::from_value::<ReaderPublicKey>(Value::from(t.as_str())) {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

/// A reader public key as the protocol carries it (base64).
pub(crate) fn key_text(public: ReaderPublicKey) -> String {
    serde_json::to_value(public)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Push and pull on a bare store (no keyring: the CLI, tests); the app syncs
/// through [`crate::account::Account::sync`], which also seals plain notes
/// first and brings the keyring up to date after. `progress` hears about
/// every request.
pub async fn run_sync(
    store: &mut Store,
    progress: &mut (dyn FnMut(SyncProgress) + Send),
    cancel: &CancelToken,
) -> Result<SyncReport> {
    Ok(shouhu_sync::sync(store, &SyncOptions::default(), progress, cancel).await?)
}

#[derive(Debug, Clone, Serialize)]
pub struct Stamp {
    /// `me` or the first block of the user id.
    pub by: String,
    pub device: String,
    /// RFC 3339, UTC.
    pub at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConflictView {
    pub id: Uuid,
    pub entity: Option<EntityKind>,
    pub record_id: Uuid,
    /// The child's name or the household's label, when it is one of those.
    pub record_label: Option<String>,
    pub kind: ConflictKind,
    pub field: Option<String>,
    /// The value the record holds now (the server's order kept it).
    pub current_value: Value,
    pub current_by: Stamp,
    /// The value that lost.
    pub other_value: Value,
    pub other_by: Stamp,
    /// Which side came from this device: `current`, `other` or `neither`.
    pub local_side: &'static str,
}

fn stamp(store: &Store, s: &ChangeStamp) -> Stamp {
    let ms = Hlc::from_i64(i64::try_from(s.hlc).unwrap_or(i64::MAX)).physical_ms();
    Stamp {
        by: who(store, s.user_id),
        device: s.device_id.to_string().chars().take(8).collect(),
        at: Utc
            .timestamp_millis_opt(i64::try_from(ms).unwrap_or(0))
            .single()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
    }
}

/// Open conflicts, oldest first.
pub fn list_conflicts(store: &Store) -> Result<Vec<ConflictView>> {
    let mut out = Vec::new();
    let mut all = store.list_all::<Conflict>()?;
    all.sort_by_key(|c| c.meta.created_at);
    for c in all {
        if c.body.status != ConflictStatus::Open {
            continue;
        }
        let b = c.body;
        let record_label = match b.entity {
            Some(EntityKind::Child) => store.get::<ChildCard>(b.record_id)?.map(|r| r.body.name),
            Some(EntityKind::Household) => {
                store.get::<Household>(b.record_id)?.map(|r| r.body.label)
            }
            _ => None,
        };
        let local_side = if b.current_by.device_id == store.device_id() {
            "current"
        } else if b.other_by.device_id == store.device_id() {
            "other"
        } else {
            "neither"
        };
        out.push(ConflictView {
            local_side,
            id: c.meta.id,
            entity: b.entity,
            record_id: b.record_id,
            record_label,
            kind: b.kind,
            field: b.field,
            current_by: stamp(store, &b.current_by),
            other_by: stamp(store, &b.other_by),
            current_value: b.current_value,
            other_value: b.other_value,
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResolveConflict {
    pub id: Uuid,
    pub choice: ResolutionChoice,
    /// The merged value, for `merged`.
    pub merged: Option<Value>,
}

pub fn resolve_conflict(store: &mut Store, req: ResolveConflict) -> Result<()> {
    store.write(|w| w.resolve_conflict(req.id, req.choice, req.merged))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::account::Account;
    use crate::testutil;

    /// The lists' school is forgotten when a sync removed it from the
    /// device, and only then.
    #[test]
    fn a_removed_school_is_no_longer_the_chosen_one() {
        let mut store = Store::open_in_memory().unwrap();
        let (kept, gone) = (Uuid::now_v7(), Uuid::now_v7());
        let report = SyncReport {
            schools_removed: vec![shouhu_sync::SchoolPurge {
                school_id: gone,
                ..Default::default()
            }],
            ..Default::default()
        };
        let key = crate::settings::SETTING_SCHOOL;
        store.set_setting(key, &kept.to_string()).unwrap();
        forget_removed_schools(&mut store, &report).unwrap();
        assert_eq!(store.setting(key).unwrap(), Some(kept.to_string()));
        store.set_setting(key, &gone.to_string()).unwrap();
        forget_removed_schools(&mut store, &report).unwrap();
        assert_eq!(store.setting(key).unwrap(), Some(String::new()));
    }

    /// A county server on HTTPS (127.0.0.1) with one school; its address,
    /// fingerprint and an enrollment code.
    async fn county(dir: &std::path::Path) -> (String, shouhu_tls::Fingerprint, String) {
        let mut db = shouhu_server::ServerDb::open_in_memory().unwrap();
        let school = db.add_school(None, "青山小学", "", "青山镇").unwrap();
        let code = db
            .create_enrollment(
                &shouhu_protocol::Scope {
                    schools: vec![school],
                    notes: false,
                    local_users: true,
                },
                1,
            )
            .unwrap();
        let id = shouhu_tls::load_or_create(dir, &[]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let state = shouhu_server::AppState::new(db);
        tokio::spawn(shouhu_server::run_tls(
            listener,
            id.config,
            state,
            std::future::pending(),
        ));
        (url, id.fingerprint, code)
    }

    #[tokio::test]
    async fn enrollment_pins_the_fingerprint_the_admin_gave() {
        let dir = tempfile::tempdir().unwrap();
        let (url, fp, code) = county(dir.path()).await;
        let mut s = testutil::store();
        // Required, and checked, before anything is sent.
        let e = enroll(&mut s, &url, &code, "  ", "laptop")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "sync.fingerprint_required");
        let e = enroll(&mut s, &url, &code, "12:34", "laptop")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "sync.bad_fingerprint");
        let e = enroll(&mut s, "http://10.1.2.3:8470", &code, "", "laptop")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "sync.https_required");
        // Someone else's certificate.
        let other = shouhu_tls::Fingerprint::of(b"another certificate").to_string();
        let e = enroll(&mut s, &url, &code, &other, "laptop")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "sync.certificate_mismatch");
        assert!(!sync_status(&s).unwrap().enrolled);
        // The first 16 digits, as typed from the admin's slip of paper.
        let typed = fp.to_string()[..23].to_string();
        let st = enroll(&mut s, &url, &code, &typed, "laptop").await.unwrap();
        assert!(st.enrolled);
        assert_eq!(st.server_fingerprint, Some(fp.to_string()));
        let report = run_sync(&mut s, &mut |_| {}, &CancelToken::new())
            .await
            .unwrap();
        assert_eq!(report.pulled, 1, "the school");
    }

    const FAST: shouhu_auth::password::KdfParams = shouhu_auth::password::KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    /// A county server on HTTPS with one school, a teacher and two
    /// counselors made by the admin (initial passwords given), and two
    /// enrollment codes for notes laptops.
    async fn county_with_users(
        dir: &std::path::Path,
    ) -> (String, String, shouhu_server::AppState, Uuid, Vec<String>) {
        use shouhu_server::{NewUser, NewUserScope};
        let mut db = shouhu_server::ServerDb::open_in_memory().unwrap();
        let school = db.add_school(None, "青山小学", "", "青山镇").unwrap();
        for (login, role, password) in [
            ("li", Role::Teacher, "chushi2026"),
            ("zhao", Role::Counselor, "xinli2026a"),
            ("qian", Role::Counselor, "xinli2026b"),
        ] {
            db.add_user(NewUser {
                login_name: login.into(),
                display_name: format!("{login}老师"),
                role,
                scope: NewUserScope::School(school),
                password: Some(password.into()),
            })
            .unwrap();
        }
        let scope = shouhu_protocol::Scope {
            schools: vec![school],
            notes: true,
            local_users: true,
        };
        let codes = (0..2)
            .map(|_| db.create_enrollment(&scope, 1).unwrap())
            .collect();
        let id = shouhu_tls::load_or_create(dir, &[]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let state = shouhu_server::AppState::new(db);
        tokio::spawn(shouhu_server::run_tls(
            listener,
            id.config,
            state.clone(),
            std::future::pending(),
        ));
        (url, id.fingerprint.to_string(), state, school, codes)
    }

    fn now() -> chrono::DateTime<Utc> {
        Utc::now()
    }

    fn log_in(name: &str, password: &str) -> crate::account::LogIn {
        crate::account::LogIn {
            login_name: name.into(),
            password: password.into(),
        }
    }

    /// A laptop set up by a local county admin account and enrolled.
    fn laptop(dir: &std::path::Path, url: &str, fp: &str, code: &str) -> Account {
        let mut a = Account::new(shouhu_vault::Vault::new(dir.join("shouhu.db")).with_kdf(FAST));
        a.set_up(
            crate::account::SetUp {
                login_name: "admin".into(),
                display_name: "管理员".into(),
                role: Role::CountyAdmin,
                school_name: String::new(),
                township: String::new(),
                password: "guanli2026".into(),
                password_again: "guanli2026".into(),
            },
            now(),
        )
        .unwrap();
        a.with(now(), |s, _| {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(enroll(s, url, code, fp, "laptop"))
            })
        })
        .unwrap();
        a
    }

    async fn sync(a: &mut Account) -> Result<SyncReport> {
        a.sync(now(), &mut |_| {}, &CancelToken::new()).await
    }

    fn note_body(child: Uuid, issue: &str) -> Value {
        serde_json::to_value(shouhu_core::PsychNote {
            child_id: child,
            session_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 20),
            presenting_issue: issue.into(),
            risk_level: shouhu_core::RiskLevel::Medium,
            ..Default::default()
        })
        .unwrap()
    }

    /// Users made on the county server log in on a laptop of their school
    /// after it synced, offline, with their initial password (then asked for
    /// a new one); a counselor's reader key is registered on the server, so
    /// notes written on another laptop are sealed for them; a plain note is
    /// sealed before the push; a user removed on the server leaves the
    /// keyring.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn server_users_log_in_on_the_laptop_and_readers_reach_other_laptops() {
        let dir = tempfile::tempdir().unwrap();
        let (url, fp, server, school, codes) = county_with_users(dir.path()).await;
        let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&dir_a).unwrap();
        std::fs::create_dir_all(&dir_b).unwrap();

        // Laptop A: before a sync, nobody from the server can log in.
        let mut a = laptop(&dir_a, &url, &fp, &codes[0]);
        a.lock();
        assert_eq!(
            a.log_in(log_in("li", "chushi2026"), now())
                .unwrap_err()
                .code(),
            "auth.wrong_password"
        );
        a.log_in(log_in("admin", "guanli2026"), now()).unwrap();
        sync(&mut a).await.unwrap();
        let names: Vec<String> = a
            .list_users(now())
            .unwrap()
            .into_iter()
            .map(|u| u.login_name)
            .collect();
        assert_eq!(names, ["admin", "li", "qian", "zhao"]);
        a.log_out();

        // The teacher logs in offline (the server is not asked), with the
        // initial password only, and is asked for a new one.
        assert_eq!(
            a.log_in(log_in("li", "chushi2027"), now())
                .unwrap_err()
                .code(),
            "auth.wrong_password"
        );
        let li = a.log_in(log_in("li", "chushi2026"), now()).unwrap();
        assert_eq!(li.role, Role::Teacher);
        assert!(li.must_change_password);
        assert!(matches!(li.scope, Scope::School { school_id, .. } if school_id == school));
        a.change_password(
            crate::account::ChangePassword {
                old: "chushi2026".into(),
                new: "wode2026li".into(),
                new_again: "wode2026li".into(),
            },
            now(),
        )
        .unwrap();
        assert!(!a.current(now()).unwrap().must_change_password);
        a.log_out();
        let li = a.log_in(log_in("li", "wode2026li"), now()).unwrap();
        assert!(!li.must_change_password);
        a.log_out();

        // The counselor Zhao logs in on A and syncs: their reader key is
        // registered on the server.
        a.log_in(log_in("zhao", "xinli2026a"), now()).unwrap();
        let zhao_key = a
            .with(now(), |_, s| {
                Ok(s.notes.as_ref().unwrap().keys.as_ref().unwrap().public())
            })
            .unwrap();
        sync(&mut a).await.unwrap();
        let on_server = server
            .with_db(move |db| {
                db.users_for_scope(&shouhu_protocol::Scope {
                    schools: vec![school],
                    notes: true,
                    local_users: false,
                })
            })
            .await
            .unwrap();
        let zhao = on_server.iter().find(|u| u.login_name == "zhao").unwrap();
        assert_eq!(
            zhao.reader_public_key.as_deref(),
            Some(key_text(zhao_key).as_str())
        );
        let zhao_id = zhao.id;
        a.log_out();

        // Laptop B: its admin has a plain note (from before sealing); the
        // sync seals it for the readers the server published, and the
        // server takes it.
        let mut b = laptop(&dir_b, &url, &fp, &codes[1]);
        sync(&mut b).await.unwrap();
        let (plain_child, plain_note) = b
            .with(now(), |s, _| {
                let child = s.write(|w| w.create(testutil::card(school)))?.meta.id;
                let note: shouhu_core::PsychNote =
                    serde_json::from_value(note_body(child, "旧的未加密记录")).unwrap();
                let id = s.write(|w| w.create(note))?.meta.id;
                Ok((child, id))
            })
            .unwrap();
        let report = sync(&mut b).await.unwrap();
        // The child, the note's create (sent sealed) and its sealing.
        assert_eq!(report.pushed, 3);
        let sealed = b
            .with(now(), |s, _| {
                Ok(s.fetch::<shouhu_core::PsychNote>(plain_note)?.body)
            })
            .unwrap();
        assert!(sealed.is_sealed());
        let readers: Vec<Uuid> =
            shouhu_auth::note::parse_sealed(plain_note, sealed.sealed.as_ref().unwrap())
                .unwrap()
                .reader_ids()
                .collect();
        assert_eq!(readers, [zhao_id]);
        b.log_out();

        // Qian, a counselor, logs in on B and writes a note: sealed for Qian
        // and for Zhao (known from the server), pushed.
        let qian = b.log_in(log_in("qian", "xinli2026b"), now()).unwrap();
        assert!(qian.must_change_password && qian.reads_notes);
        sync(&mut b).await.unwrap();
        let note = b
            .with_write(now(), |s, session| {
                crate::save_record(
                    s,
                    session,
                    crate::SaveRecord {
                        kind: "psych_note".into(),
                        id: None,
                        body: note_body(plain_child, "夜里常梦见妈妈"),
                    },
                )
            })
            .unwrap();
        assert_eq!(sync(&mut b).await.unwrap().pushed, 1);
        b.log_out();

        // Zhao on laptop A opens both notes written on B.
        a.log_in(log_in("zhao", "xinli2026a"), now()).unwrap();
        sync(&mut a).await.unwrap();
        let rows = a
            .with(now(), |s, session| {
                crate::list_child_records(s, session, plain_child, "psych_note")
            })
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| !r.locked), "{rows:?}");
        let issues: Vec<&str> = rows
            .iter()
            .map(|r| r.body["presenting_issue"].as_str().unwrap_or_default())
            .collect();
        assert!(issues.contains(&"夜里常梦见妈妈"), "{issues:?}");
        assert!(issues.contains(&"旧的未加密记录"), "{issues:?}");
        assert!(rows.iter().any(|r| r.id == note));

        // Zhao on laptop B too (pending there): B's own reader pair joins
        // the server's set beside A's.
        a.log_out();
        b.log_in(log_in("zhao", "xinli2026a"), now()).unwrap();
        let zhao_key_b = b
            .with(now(), |_, s| {
                Ok(s.notes.as_ref().unwrap().keys.as_ref().unwrap().public())
            })
            .unwrap();
        assert_ne!(zhao_key_b, zhao_key);
        let report = sync(&mut b).await.unwrap();
        assert!(!report.reader_key_mismatch);
        let zhao_keys = |server: shouhu_server::AppState| async move {
            server
                .with_db(move |db| db.user("zhao"))
                .await
                .unwrap()
                .reader_keys
        };
        assert_eq!(zhao_keys(server.clone()).await, 2);
        // A note Zhao writes on B is sealed for both of Zhao's keys.
        let write = |a: &mut Account, issue: &str| {
            let body = note_body(plain_child, issue);
            a.with_write(now(), move |s, session| {
                crate::save_record(
                    s,
                    session,
                    crate::SaveRecord {
                        kind: "psych_note".into(),
                        id: None,
                        body,
                    },
                )
            })
            .unwrap()
        };
        let on_b = write(&mut b, "在第二台电脑上写的");
        sync(&mut b).await.unwrap();
        b.log_out();
        let open_rows = |a: &mut Account| {
            a.with(now(), |s, session| {
                crate::list_child_records(s, session, plain_child, "psych_note")
            })
            .unwrap()
        };
        // On A, after its sync, Zhao opens it, and writes one there.
        a.log_in(log_in("zhao", "xinli2026a"), now()).unwrap();
        sync(&mut a).await.unwrap();
        let rows = open_rows(&mut a);
        let from_b = rows.iter().find(|r| r.id == on_b).unwrap();
        assert!(!from_b.locked);
        assert_eq!(from_b.body["presenting_issue"], "在第二台电脑上写的");
        let on_a = write(&mut a, "在第一台电脑上写的");
        // This sync also sends the notes A re-wrapped for B's key.
        sync(&mut a).await.unwrap();
        a.log_out();
        // On B, after its sync: the note from A opens, and so do the notes
        // sealed before B had a key (A wrapped them for it).
        b.log_in(log_in("zhao", "xinli2026a"), now()).unwrap();
        sync(&mut b).await.unwrap();
        let rows = open_rows(&mut b);
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| !r.locked), "{rows:?}");
        let from_a = rows.iter().find(|r| r.id == on_a).unwrap();
        assert_eq!(from_a.body["presenting_issue"], "在第一台电脑上写的");
        let sealed = b
            .with(now(), |s, _| {
                Ok(s.fetch::<shouhu_core::PsychNote>(on_a)?.body)
            })
            .unwrap();
        let enc = shouhu_auth::note::parse_sealed(on_a, sealed.sealed.as_ref().unwrap()).unwrap();
        assert!(enc.has_reader_key(zhao_id, zhao_key) && enc.has_reader_key(zhao_id, zhao_key_b));
        b.log_out();
        // A reset on the server clears both keys.
        server
            .with_db(|db| db.reset_password("zhao", None).map(|_| ()))
            .await
            .unwrap();
        assert_eq!(zhao_keys(server.clone()).await, 0);

        // Li is removed on the server: A's next sync takes Li off the
        // keyring (Li's changes stay in the store).
        server
            .with_db(|db| db.remove_user("li").map(|_| ()))
            .await
            .unwrap();
        a.log_in(log_in("admin", "guanli2026"), now()).unwrap();
        sync(&mut a).await.unwrap();
        a.log_out();
        assert_eq!(
            a.log_in(log_in("li", "wode2026li"), now())
                .unwrap_err()
                .code(),
            "auth.wrong_password"
        );
        let names: Vec<String> = a
            .state()
            .unwrap()
            .users
            .into_iter()
            .map(|u| u.login_name)
            .collect();
        assert!(!names.contains(&"li".to_string()), "{names:?}");
    }

    /// A plain note on a laptop that knows no reader yet cannot be sealed:
    /// the server refuses it and the outbox waits, but the sync still brings
    /// the users; once a counselor from the server logs in, the next sync
    /// seals the note for them and it goes through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plain_note_waits_for_a_reader_then_goes_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let (url, fp, server, school, codes) = county_with_users(dir.path()).await;
        let mut a = laptop(dir.path(), &url, &fp, &codes[0]);
        sync(&mut a).await.unwrap();
        // Zhao's password is reset on the server: only the blocked sync
        // below can bring the new credential.
        server
            .with_db(|db| {
                db.reset_password("zhao", Some("chongzhi2026".into()))
                    .map(|_| ())
            })
            .await
            .unwrap();
        let note = a
            .with(now(), |s, _| {
                let child = s.write(|w| w.create(testutil::card(school)))?.meta.id;
                let note: shouhu_core::PsychNote =
                    serde_json::from_value(note_body(child, "旧的未加密记录")).unwrap();
                Ok(s.write(|w| w.create(note))?.meta.id)
            })
            .unwrap();
        let e = sync(&mut a).await.unwrap_err();
        assert_eq!(e.code(), "push.forbidden");
        assert_eq!(
            e.body(crate::Lang::ZhCn).details["reason"],
            "note_not_sealed"
        );
        a.log_out();
        // The users came anyway: Zhao logs in with the new initial password.
        assert_eq!(
            a.log_in(log_in("zhao", "xinli2026a"), now())
                .unwrap_err()
                .code(),
            "auth.wrong_password"
        );
        a.log_in(log_in("zhao", "chongzhi2026"), now()).unwrap();
        let report = sync(&mut a).await.unwrap();
        // The child went with the blocked sync (the changes before a refused
        // one are sent on their own); the note's create and its sealing now.
        assert_eq!(report.pushed, 2);
        let rows = a
            .with(now(), |s, session| {
                let child = s.fetch::<shouhu_core::PsychNote>(note)?.body.child_id;
                crate::list_child_records(s, session, child, "psych_note")
            })
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].locked);
        assert_eq!(rows[0].body["presenting_issue"], "旧的未加密记录");
    }

    #[test]
    fn status_of_a_new_store_and_no_conflicts() {
        let s = testutil::store();
        let st = sync_status(&s).unwrap();
        assert!(!st.enrolled);
        assert_eq!(st.pending, 0);
        assert!(list_conflicts(&s).unwrap().is_empty());
    }

    #[test]
    fn a_conflict_is_listed_and_resolved_with_a_merged_value() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let c = testutil::child(&mut s, school);
        let conflict = s
            .write(|w| {
                w.create(Conflict {
                    entity: Some(EntityKind::Child),
                    record_id: c,
                    school_id: Some(school),
                    kind: ConflictKind::SameField,
                    field: Some("grade".into()),
                    current_value: serde_json::json!("三年级"),
                    other_value: serde_json::json!("四年级"),
                    ..Default::default()
                })
            })
            .unwrap()
            .id();
        let list = list_conflicts(&s).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].record_label.as_deref(), Some("张三"));
        resolve_conflict(
            &mut s,
            ResolveConflict {
                id: conflict,
                choice: ResolutionChoice::Merged,
                merged: Some(serde_json::json!("四年级（下）")),
            },
        )
        .unwrap();
        assert!(list_conflicts(&s).unwrap().is_empty());
        assert_eq!(s.fetch::<ChildCard>(c).unwrap().body.grade, "四年级（下）");
        let e = resolve_conflict(
            &mut s,
            ResolveConflict {
                id: conflict,
                choice: ResolutionChoice::KeepCurrent,
                merged: None,
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), "conflict.already_resolved");
    }
}

//! A conflict that came from real sync between two devices, reviewed and
//! resolved in the real app: a county server (`shouhu-server`, HTTPS with
//! its self-signed certificate), a second device through the `shouhu` CLI,
//! and the app enrolled through its Sync screen. Both devices edit the
//! guardian's phone and the notes of the same child; the CLI syncs first,
//! the app's sync then opens two conflicts, which the conflicts screen shows
//! side by side; one is settled by keeping the server's value, the other by
//! a merged value; after the next syncs both devices hold the chosen values
//! and the conflicts are closed on both.

use serde_json::{json, Value};
use shouhu_core::{ChildCard, Conflict, ConflictStatus, ResolutionChoice};
use shouhu_e2e::app::has_chinese;
use shouhu_e2e::county::{CliDevice, CountyServer};
use shouhu_e2e::flows::{open_child, open_children, quit};
use shouhu_e2e::{fixtures, testid, App, E2eError, Harness};
use uuid::Uuid;

const PHONE_FIRST: &str = "13800001111";
const PHONE_APP: &str = "13900002222";
const PHONE_CLI: &str = "13700003333";
const NOTES_FIRST: &str = "奶奶身体尚可";
const NOTES_APP: &str = "奶奶腿脚不便，接送靠邻居";
const NOTES_CLI: &str = "爸爸春节回家，已电话联系";
const NOTES_MERGED: &str = "奶奶腿脚不便，接送靠邻居；爸爸春节回家，已电话联系";

fn child_line(id: Uuid, school: Uuid, phone: &str, notes: &str) -> Value {
    json!({
        "type": "child",
        "id": id,
        "record": {
            "name": "赵小雨",
            "gender": "female",
            "birth_date": "2015-06-01",
            "school_id": school,
            "grade": "四年级",
            "class_name": "2班",
            "left_behind_type": "both_away",
            "guardian": { "name": "赵奶奶", "relation": "grandparent", "phone": phone, "age": 66 },
            "notes": notes,
        }
    })
}

fn count(report: &Value, key: &str) -> u64 {
    report.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Press 同步 on the Sync screen and wait for the result line; its
/// `(pushed, pulled, conflicts)`.
fn sync_in_app(app: &App) -> Result<(u64, u64, u64), E2eError> {
    if !app.is_shown("screen-sync")? {
        app.click("nav-sync")?;
        app.wait("screen-sync")?;
    }
    // A result line from an earlier sync must not be taken for this one.
    app.click("sync-run")?;
    let result = app.wait_for("the sync result (or an error)", || {
        if let Some(e) = app
            .session
            .find_all(&testid("sync-error"))?
            .into_iter()
            .next()
        {
            let text = app.session.inner_text(&e)?;
            return Err(E2eError::Process(format!("the app's sync failed: {text}")));
        }
        let running = app.all("sync-cancel")?;
        if !running.is_empty() {
            return Ok(None);
        }
        Ok(app
            .session
            .find_all(&testid("sync-result"))?
            .into_iter()
            .next())
    })?;
    let n = |a: &str| -> Result<u64, E2eError> {
        Ok(app
            .session
            .attribute(&result, a)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    };
    Ok((n("data-pushed")?, n("data-pulled")?, n("data-conflicts")?))
}

/// The conflict row of field `field` on the conflicts screen.
fn row_sel(field: &str) -> String {
    format!("{}[data-field=\"{field}\"]", testid("conflict-row"))
}

#[test]
fn a_conflict_between_two_devices_is_resolved_in_the_app_and_closed_on_both() -> Result<(), E2eError>
{
    let h = Harness::start()?;
    let mut server = CountyServer::new(&h.dir().join("server"))?;
    let school = server.add_school("青山小学", "青山镇")?;
    let app_code = server.enroll(school)?;
    let cli_code = server.enroll(school)?;
    server.serve()?;
    assert_eq!(server.fingerprint, app_code.fingerprint);

    // The second device enrolls (the school comes down), then the child's
    // card is created there and sent.
    let cli = CliDevice::new(&h.dir().join("cli"))?;
    let synced = cli.sync(&server.url, Some(&cli_code))?;
    assert_eq!(count(&synced, "pulled"), 1, "the school: {synced}");
    let child = Uuid::now_v7();
    let report = cli.import(&[child_line(child, school, PHONE_FIRST, NOTES_FIRST)])?;
    assert_eq!(count(&report, "created"), 1, "{report}");
    let synced = cli.sync(&server.url, None)?;
    assert_eq!(count(&synced, "pushed"), 1, "{synced}");

    // The app enrolls through its Sync screen (address, code, fingerprint)
    // and receives the card.
    let app = h.launch()?;
    app.click("nav-sync")?;
    app.wait("screen-sync")?;
    app.fill("sync-server", &server.url)?;
    app.fill("sync-code", &app_code.code)?;
    app.fill("sync-fingerprint", &app_code.fingerprint)?;
    let (_, pulled, conflicts) = sync_in_app(&app)?;
    assert!(pulled >= 2, "the school and the child pulled: {pulled}");
    assert_eq!(conflicts, 0);
    let pinned = app.text("sync-pinned-fingerprint")?;
    assert!(pinned.contains(&server.fingerprint), "{pinned:?}");

    // The app's user edits the guardian's phone and the notes ...
    open_children(&app)?;
    open_child(&app, child)?;
    assert_eq!(app.value("child-field-guardian.phone")?, PHONE_FIRST);
    app.fill("child-field-guardian.phone", PHONE_APP)?;
    app.fill("child-field-notes", NOTES_APP)?;
    app.click("child-save")?;
    app.wait_text("toast", "says it was saved (保存)", |t| {
        t.contains("保存")
    })?;

    // ... while the other device changes the same two fields and syncs first.
    let report = cli.import(&[child_line(child, school, PHONE_CLI, NOTES_CLI)])?;
    assert_eq!(count(&report, "updated"), 1, "{report}");
    let synced = cli.sync(&server.url, None)?;
    assert_eq!(count(&synced, "pushed"), 1, "{synced}");

    // The app's sync opens two conflicts.
    let (pushed, _, conflicts) = sync_in_app(&app)?;
    assert_eq!(pushed, 1, "the app's edit sent");
    assert_eq!(conflicts, 2, "guardian.phone and notes conflict");
    let summary = app.text("sync-conflict-count")?;
    assert!(summary.contains('2'), "{summary:?}");
    app.click("sync-open-conflicts")?;
    app.wait("screen-conflicts")?;
    let phone_row = app.wait_for("the guardian phone's conflict", || {
        Ok(app
            .session
            .find_all(&row_sel("guardian.phone"))?
            .into_iter()
            .next())
    })?;
    let phone_text = app.session.inner_text(&phone_row)?;
    for expected in ["赵小雨", "监护人", PHONE_APP, PHONE_CLI, "本机", "服务器"] {
        assert!(
            phone_text.contains(expected),
            "the conflict shows {expected:?}: {phone_text:?}"
        );
    }
    let notes_row = app.session.find(&row_sel("notes"))?;
    let notes_text = app.session.inner_text(&notes_row)?;
    assert!(
        notes_text.contains(NOTES_APP) && notes_text.contains(NOTES_CLI),
        "{notes_text:?}"
    );
    assert!(has_chinese(&app.text("screen-conflicts")?));
    app.screenshot("17-conflicts")?;

    // Keep the other device's phone; type a merged note.
    let keep_server = app.session.find(&format!(
        "{} {}",
        row_sel("guardian.phone"),
        testid("conflict-keep-server")
    ))?;
    app.session.click(&keep_server)?;
    app.wait_for("the phone conflict to leave the list", || {
        Ok(app
            .session
            .find_all(&row_sel("guardian.phone"))?
            .is_empty()
            .then_some(()))
    })?;
    let merged = app.session.find(&format!(
        "{} {}",
        row_sel("notes"),
        testid("conflict-merged")
    ))?;
    app.session.clear(&merged)?;
    app.session.send_keys(&merged, NOTES_MERGED)?;
    let use_merged = app.session.find(&format!(
        "{} {}",
        row_sel("notes"),
        testid("conflict-use-merged")
    ))?;
    app.session.click(&use_merged)?;
    app.wait("conflicts-none")?;
    app.screenshot("18-conflicts-resolved")?;

    // The resolutions go to the server; nothing new conflicts.
    let (pushed, _, conflicts) = sync_in_app(&app)?;
    assert!(
        pushed >= 4,
        "two field changes and two closed conflicts: {pushed}"
    );
    assert_eq!(conflicts, 0);
    let summary = app.text("sync-conflict-count")?;
    assert!(summary.contains('0'), "{summary:?}");
    quit(&h, app)?;

    // The app's own store.
    let cards = fixtures::children(&h.db, &h.identity_dir)?;
    let card = cards
        .iter()
        .find(|c| c.meta.id == child)
        .ok_or_else(|| E2eError::Process("the child is not in the app's store".into()))?;
    assert_eq!(card.body.guardian.phone.as_deref(), Some(PHONE_CLI));
    assert_eq!(card.body.notes, NOTES_MERGED);

    // The other device, after its sync: the chosen values, the conflicts closed.
    let synced = cli.sync(&server.url, None)?;
    assert!(count(&synced, "pulled") >= 4, "{synced}");
    let (card, conflicts) =
        cli.with_store(|s| (s.get::<ChildCard>(child), s.list_all::<Conflict>()))?;
    let card = card
        .map_err(|e| E2eError::Process(format!("reading the card: {e}")))?
        .ok_or_else(|| E2eError::Process("the child is not on the CLI device".into()))?;
    assert_eq!(card.body.guardian.phone.as_deref(), Some(PHONE_CLI));
    assert_eq!(card.body.notes, NOTES_MERGED);
    let conflicts = conflicts.map_err(|e| E2eError::Process(format!("listing conflicts: {e}")))?;
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");
    for c in &conflicts {
        assert_eq!(c.body.record_id, child);
        assert_eq!(c.body.status, ConflictStatus::Resolved, "{c:?}");
        let resolution = c
            .body
            .resolution
            .as_ref()
            .ok_or_else(|| E2eError::Process(format!("no resolution: {c:?}")))?;
        match c.body.field.as_deref() {
            Some("guardian.phone") => assert_eq!(resolution.value, json!(PHONE_CLI)),
            Some("notes") => {
                assert_eq!(resolution.choice, ResolutionChoice::Merged);
                assert_eq!(resolution.value, json!(NOTES_MERGED));
            }
            other => panic!("unexpected conflict field {other:?}"),
        }
    }
    Ok(())
}

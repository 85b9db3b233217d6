//! Steps shared by the end-to-end tests (by the UI contract's testids).

use std::time::Duration;

use chrono::NaiveDate;
use shouhu_core::Gender;
use uuid::Uuid;

use crate::app::has_chinese;
use crate::fixtures::{self, NewChild};
use crate::webdriver::keys;
use crate::{testid, App, E2eError, Harness};

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Open the children list.
pub fn open_children(app: &App) -> Result<(), E2eError> {
    app.click("nav-children")?;
    app.wait("screen-children").map(drop)
}

/// Open the card of child `id` from the children list.
pub fn open_child(app: &App, id: Uuid) -> Result<(), E2eError> {
    let sel = format!("{}[data-id=\"{id}\"]", testid("children-row"));
    let row = app.wait_for(&format!("the row of child {id}"), || {
        Ok(app.session.find_all(&sel)?.into_iter().next())
    })?;
    app.session.click(&row)?;
    app.wait("screen-child").map(drop)
}

/// Leave the field `id` (Tab), so that on-blur validation runs.
pub fn blur(app: &App, id: &str) -> Result<(), E2eError> {
    let e = app.wait(id)?;
    app.session.send_keys(&e, &keys::TAB.to_string())
}

/// Quit the app and wait until its process is gone (the store is closed).
pub fn quit(h: &Harness, app: App) -> Result<(), E2eError> {
    drop(app);
    h.wait_app_exit(Duration::from_secs(20))
}

/// A visit draft typed in two parts, the window closed right after the
/// second, and the draft reopened in a restarted app.
#[derive(Debug, Clone)]
pub struct ClosedDraft {
    /// Typed, then the draft status waited for until "saved".
    pub first: &'static str,
    /// Typed right before the window was closed.
    pub second: &'static str,
    /// The field's text in the reopened draft.
    pub reopened: String,
}

/// Seed a child, open its card, add a visit, type into `problems_found`,
/// wait for the autosave, type more and close the window at once; check the
/// store holds one draft of that child; restart the app, open the draft from
/// the child's card and read the field back.
pub fn visit_draft_close_reopen(h: &Harness) -> Result<ClosedDraft, E2eError> {
    let child = fixtures::seed_children(
        &h.db,
        &h.identity_dir,
        &[NewChild {
            name: "刘小红",
            gender: Gender::Female,
            birth_date: date(2014, 10, 20),
        }],
    )?[0];
    let field = "visit-field-problems_found";
    let first = "孩子想念在外打工的妈妈，";
    let second = "最近成绩有所下降";

    let app = h.launch()?;
    open_children(&app)?;
    open_child(&app, child)?;
    app.click("child-add-visit")?;
    app.wait("screen-visit")?;
    if app.value("visit-field-visit_date")?.trim().is_empty() {
        app.fill("visit-field-visit_date", "2026-11-20")?;
    }
    app.type_into(field, first)?;
    let saved = format!("{}[data-state=\"saved\"]", testid("visit-draft-status"));
    app.wait_for("the draft status 'saved'", || {
        Ok(app.session.find_all(&saved)?.into_iter().next())
    })?;
    let status = app.text("visit-draft-status")?;
    assert!(has_chinese(&status), "draft status in Chinese: {status:?}");
    app.screenshot("06-visit-draft")?;
    // More typing, and the window is closed right away, before any autosave delay.
    app.type_into(field, second)?;
    app.close_window()?;
    h.wait_app_exit(Duration::from_secs(20))?;

    let visits = fixtures::visits(&h.db, &h.identity_dir)?;
    assert_eq!(visits.len(), 1, "one draft visit stored: {visits:?}");
    assert_eq!(visits[0].body.child_id, Some(child));

    let app = h.launch()?;
    open_children(&app)?;
    open_child(&app, child)?;
    let draft = app.wait_for("a draft visit row on the card", || {
        for r in app.all("visit-row")? {
            if app.session.attribute(&r, "data-status")?.as_deref() == Some("draft") {
                return Ok(Some(r));
            }
        }
        Ok(None)
    })?;
    app.session.click(&draft)?;
    app.wait("screen-visit")?;
    let reopened = app.wait_for("the draft's text in the visit form", || {
        let v = app.value(field)?;
        Ok((!v.is_empty()).then_some(v))
    })?;
    Ok(ClosedDraft {
        first,
        second,
        reopened,
    })
}

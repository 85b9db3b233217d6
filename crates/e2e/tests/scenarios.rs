//! The end-to-end scenarios through the real built app, by the
//! `data-testid`s of the UI contract. Each test starts its own Xvfb, D-Bus
//! and tauri-driver, on a fresh store (`SHOUHU_NO_DEMO=1`) that it may seed
//! before the app starts and read back after the app has quit.

use std::time::Duration;

use chrono::NaiveDate;
use shouhu_core::Gender;
use shouhu_e2e::app::has_chinese;
use shouhu_e2e::fixtures::{self, NewChild};
use shouhu_e2e::webdriver::keys;
use shouhu_e2e::{testid, App, E2eError, Harness};
use uuid::Uuid;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Open the children list.
fn open_children(app: &App) -> Result<(), E2eError> {
    app.click("nav-children")?;
    app.wait("screen-children").map(drop)
}

/// Open the card of child `id` from the children list.
fn open_child(app: &App, id: Uuid) -> Result<(), E2eError> {
    let sel = format!("{}[data-id=\"{id}\"]", testid("children-row"));
    let row = app.wait_for(&format!("the row of child {id}"), || {
        Ok(app.session.find_all(&sel)?.into_iter().next())
    })?;
    app.session.click(&row)?;
    app.wait("screen-child").map(drop)
}

/// Leave the field `id` (Tab), so that on-blur validation runs.
fn blur(app: &App, id: &str) -> Result<(), E2eError> {
    let e = app.wait(id)?;
    app.session.send_keys(&e, &keys::TAB.to_string())
}

/// Quit the app and wait until its process is gone (the store is closed).
fn quit(h: &Harness, app: App) -> Result<(), E2eError> {
    drop(app);
    h.wait_app_exit(Duration::from_secs(20))
}

#[test]
fn new_child_bad_id_number_shows_chinese_error_then_fixed_and_saved() -> Result<(), E2eError> {
    let h = Harness::start()?;
    let app = h.launch()?;
    open_children(&app)?;
    app.click("child-new")?;
    app.wait("screen-child")?;

    let birth = date(2015, 3, 7);
    let good = fixtures::id_number("520522", birth, 13); // 13: odd, a boy
    let bad = fixtures::with_wrong_check(&good);
    app.fill("child-field-name", "王小明")?;
    app.select("child-field-gender", "male")?;
    app.fill("child-field-birth_date", "2015-03-07")?;
    app.fill("child-field-id_number", &bad)?;
    blur(&app, "child-field-id_number")?;

    let message = app.wait_text(
        "child-error-id_number",
        "shows a Chinese message",
        has_chinese,
    )?;
    assert_eq!(
        app.value("child-field-id_number")?,
        bad,
        "the typed ID number must stay in the field next to the error {message:?}"
    );
    app.screenshot("03-child-id-number-error")?;

    // Saving is refused while the ID number is wrong; the error stays.
    app.click("child-save")?;
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        app.is_shown("child-error-id_number")?,
        "the error must stay after a refused save"
    );
    assert_eq!(app.value("child-field-id_number")?, bad);

    app.fill("child-field-id_number", &good)?;
    blur(&app, "child-field-id_number")?;
    app.wait_gone("child-error-id_number")?;
    app.click("child-save")?;
    app.wait_text("toast", "says it was saved (保存)", |t| {
        t.contains("保存")
    })?;
    app.screenshot("04-child-saved")?;

    quit(&h, app)?;
    let children = fixtures::children(&h.db, &h.identity_dir)?;
    assert_eq!(children.len(), 1, "exactly one child saved: {children:?}");
    let child = &children[0].body;
    assert_eq!(child.name, "王小明");
    assert_eq!(child.gender, Some(Gender::Male));
    assert_eq!(child.birth_date, Some(birth));
    assert_eq!(child.id_number.as_deref(), Some(good.as_str()));
    Ok(())
}

#[test]
fn child_found_by_pinyin_initials() -> Result<(), E2eError> {
    let h = Harness::start()?;
    let ids = fixtures::seed_children(
        &h.db,
        &h.identity_dir,
        &[
            NewChild {
                name: "张三丰",
                gender: Gender::Male,
                birth_date: date(2014, 5, 1),
            },
            NewChild {
                name: "李四",
                gender: Gender::Male,
                birth_date: date(2013, 9, 2),
            },
            NewChild {
                name: "王五",
                gender: Gender::Male,
                birth_date: date(2016, 1, 3),
            },
            NewChild {
                name: "张小花",
                gender: Gender::Female,
                birth_date: date(2015, 7, 4),
            },
        ],
    )?;
    let app = h.launch()?;
    open_children(&app)?;
    app.wait_for("all four children listed", || {
        Ok((app.all("children-row")?.len() == 4).then_some(()))
    })?;

    for (query, index, name) in [
        ("zsf", 0, "张三丰"),
        ("zxh", 3, "张小花"),
        ("ls", 1, "李四"),
    ] {
        app.fill("children-search", query)?;
        let want = ids[index].to_string();
        let rows = app.wait_for(&format!("only {name} listed for {query:?}"), || {
            let rows = app.all("children-row")?;
            let mut found = Vec::new();
            for r in &rows {
                found.push(app.session.attribute(r, "data-id")?.unwrap_or_default());
            }
            Ok((found == [want.clone()]).then_some(rows))
        })?;
        let text = app.session.text(&rows[0])?;
        assert!(
            text.contains(name),
            "row for {query:?} shows {text:?}, not {name}"
        );
        app.wait_text("children-count", "counts one match", |t| {
            t.chars().filter(char::is_ascii_digit).collect::<String>() == "1"
        })?;
        if query == "zsf" {
            app.screenshot("05-children-search-initials")?;
        }
    }
    Ok(())
}

#[test]
fn visit_draft_survives_closing_the_window_mid_typing() -> Result<(), E2eError> {
    let h = Harness::start()?;
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
    app.wait_text("visit-draft-status", "says the draft is saved", |t| {
        !t.trim().is_empty()
    })?;
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
    let text = app.wait_for("the draft's text in the visit form", || {
        let v = app.value(field)?;
        Ok((!v.is_empty()).then_some(v))
    })?;
    assert_eq!(
        text,
        format!("{first}{second}"),
        "the reopened draft must hold everything typed before the window closed"
    );
    Ok(())
}

#[test]
fn language_switches_to_english_and_stays_after_restart() -> Result<(), E2eError> {
    let h = Harness::start()?;
    let app = h.launch()?;
    assert_eq!(app.lang()?, "zh-CN");
    app.click("nav-settings")?;
    app.wait("screen-settings")?;
    let nav_zh = app.text("nav-children")?;
    assert!(
        has_chinese(&nav_zh),
        "nav-children in Chinese first: {nav_zh:?}"
    );
    app.select("settings-language", "en")?;
    app.wait_for("<html lang=\"en\">", || {
        Ok((app.lang()? == "en").then_some(()))
    })?;
    let nav_en = app.wait_text("nav-children", "in English", |t| {
        !has_chinese(t) && !t.trim().is_empty()
    })?;
    app.screenshot("10-settings-english")?;

    quit(&h, app)?;
    let app = h.launch()?;
    app.wait_for("<html lang=\"en\"> after a restart", || {
        Ok((app.lang()? == "en").then_some(()))
    })?;
    let again = app.wait_text("nav-children", "still in English", |t| {
        !has_chinese(t) && !t.trim().is_empty()
    })?;
    assert_eq!(again, nav_en);
    Ok(())
}

/// Every main screen, with a small demo county, at 1366x768 in Chinese.
#[test]
fn every_main_screen_screenshotted_in_chinese() -> Result<(), E2eError> {
    let h = Harness::start()?;
    fixtures::seed_demo(&h.db, &h.identity_dir, 40)?;
    let app = h.launch()?;
    let screens = [
        ("nav-home", "screen-home", "01-home"),
        ("nav-children", "screen-children", "02-children"),
        ("nav-households", "screen-household", "07-households"),
        ("nav-visits", "screen-visits", "08-visits"),
        ("nav-records", "screen-records", "09-records"),
        ("nav-sync", "screen-sync", "11-sync"),
        ("nav-settings", "screen-settings", "12-settings"),
    ];
    for (nav, root, shot) in screens {
        app.click(nav)?;
        // The households list may have its own root; accept either.
        app.wait_for(&format!("{root} after {nav}"), || {
            Ok((app.is_shown(root)?
                || (root == "screen-household" && app.is_shown("screen-households")?))
            .then_some(()))
        })?;
        std::thread::sleep(Duration::from_millis(300));
        let text = app.page_text()?;
        assert!(has_chinese(&text), "{root} should be in Chinese: {text:?}");
        app.screenshot(shot)?;
    }
    // A child card and one of its visits.
    app.click("nav-children")?;
    app.wait("screen-children")?;
    let row = app.wait("children-row")?;
    app.session.click(&row)?;
    app.wait("screen-child")?;
    std::thread::sleep(Duration::from_millis(300));
    app.screenshot("03-child-card")?;
    let visit = app.wait("visit-row")?;
    app.session.click(&visit)?;
    app.wait("screen-visit")?;
    std::thread::sleep(Duration::from_millis(300));
    app.screenshot("06-visit")?;
    Ok(())
}

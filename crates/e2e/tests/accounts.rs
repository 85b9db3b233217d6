//! Accounts through the real app: first set-up on an empty laptop, log-in,
//! lock with a form being typed, a wrong password's Chinese message, log-in
//! again with the typed text still there; the store on disk is encrypted.

use shouhu_e2e::app::has_chinese;
use shouhu_e2e::flows::{open_children, quit};
use shouhu_e2e::{E2eError, Harness};

#[test]
fn set_up_then_lock_and_log_in_again_keeping_what_was_typed() -> Result<(), E2eError> {
    let h = Harness::start()?;
    let app = h.launch_bare()?;
    app.wait("screen-setup")?;
    assert_eq!(app.lang()?, "zh-CN");
    app.fill("setup-login", "liming")?;
    app.fill("setup-name", "李明")?;
    app.select("setup-role", "teacher")?;
    app.fill("setup-township", "青山镇")?;
    app.fill("setup-school", "青山小学")?;
    app.fill("setup-password", "qingshan2026")?;
    app.fill("setup-password-again", "qingshan2027")?;
    app.click("setup-submit")?;
    let mismatch = app.wait_text("setup-error", "the mismatch in Chinese", has_chinese)?;
    assert!(mismatch.contains("不一致"), "{mismatch:?}");
    app.fill("setup-password-again", "qingshan2026")?;
    app.screenshot("13-setup")?;
    app.click("setup-submit")?;
    app.wait("screen-home")?;
    let who = app.text("app-user")?;
    assert!(who.contains("李明"), "{who:?}");

    // A new child card, typed but not saved.
    open_children(&app)?;
    app.click("child-new")?;
    app.wait("screen-child")?;
    app.fill("child-field-name", "王小红")?;
    app.click("nav-lock")?;
    app.wait("login-locked-note")?;
    // The card stays in the page (so its text survives) but the log-in
    // form covers the whole window.
    let covered = app.session.execute(
        "return [[20, 20], [683, 384], [1300, 700]].every(([x, y]) => \
         document.elementFromPoint(x, y)?.closest('[data-testid=screen-login]') != null)",
        vec![],
    )?;
    assert_eq!(
        covered,
        serde_json::json!(true),
        "the log-in form covers the card"
    );
    app.screenshot("14-locked")?;
    assert_eq!(app.value("login-user")?, "liming");
    app.log_in("liming", "qingshan2025")?;
    let wrong = app.wait_text("login-error", "the wrong password in Chinese", has_chinese)?;
    assert_eq!(wrong, "用户名或密码不正确");
    app.screenshot("15-locked-wrong-password")?;
    app.log_in("liming", "qingshan2026")?;
    app.wait_gone("login-locked-note")?;
    app.wait("screen-child")?;
    assert_eq!(
        app.value("child-field-name")?,
        "王小红",
        "the typed name survives lock and log-in"
    );
    quit(&h, app)?;

    // The store on disk is encrypted; a restart asks for the password.
    assert!(!shouhu_store::Store::is_plain_file(&h.db));
    let app = h.launch_bare()?;
    app.wait("screen-login")?;
    app.log_in("liming", "qingshan2026")?;
    app.wait("screen-home")?;
    Ok(())
}

/// README's first command ends here: "使用演示数据" on an empty laptop, then
/// the log-in screen with the demo password, and a demo account logs in.
#[test]
fn demo_data_then_log_in_with_the_shown_demo_password() -> Result<(), E2eError> {
    let h = Harness::start()?;
    let mut app = h.launch_bare()?;
    app.click("setup-use-demo")?;
    // The demo county (600 children) takes a while in a debug build.
    app.timeout = std::time::Duration::from_secs(300);
    let hint = app.wait_text("login-demo-password", "the demo password", |t| {
        !t.trim().is_empty()
    })?;
    app.timeout = shouhu_e2e::app::default_timeout();
    assert!(hint.contains("shouhu2026"), "{hint:?}");
    app.screenshot("16-demo-log-in")?;
    app.log_in("demo-teacher", "shouhu2026")?;
    app.wait("screen-home")?;
    assert_eq!(
        app.session
            .attribute(&app.wait("app-user")?, "data-role")?
            .as_deref(),
        Some("teacher")
    );
    // A teacher is refused counseling notes; the page says so in Chinese.
    app.click("nav-records")?;
    app.select("records-kind", "psych_note")?;
    let refused = app.wait_text("records-forbidden", "notes refused", has_chinese)?;
    assert!(refused.contains("心理"), "{refused:?}");
    Ok(())
}

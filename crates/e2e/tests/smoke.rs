//! End-to-end smoke test through the real built app (see the crate docs and
//! `scripts/e2e.sh`). It fails, never skips, when a prerequisite is missing.

use shouhu_e2e::app::has_chinese;
use shouhu_e2e::{E2eError, Harness};

#[test]
fn app_starts_in_chinese_and_shows_its_version() -> Result<(), E2eError> {
    let h = Harness::start()?;
    let app = h.launch()?;
    app.wait("nav-home")?;
    assert_eq!(app.lang()?, "zh-CN", "the default language is zh-CN");
    let text = app.page_text()?;
    assert!(
        has_chinese(&text),
        "the first screen should be in Chinese: {text:?}"
    );
    app.screenshot("00-start")?;
    app.click("nav-settings")?;
    app.wait("screen-settings")?;
    let version = app.wait_text("app-version", "shows a version", |t| !t.trim().is_empty())?;
    assert!(
        version.contains(env!("CARGO_PKG_VERSION")),
        "app-version {version:?} should name the version {}",
        env!("CARGO_PKG_VERSION")
    );
    Ok(())
}

//! Closing the window loses nothing: keystrokes typed right before the window
//! closes reach the store (the UI flushes its pending save on the close
//! request). In CI's list (scripts/e2e.sh `E2E_TESTS`).

use shouhu_e2e::{flows, E2eError, Harness};

/// The draft autosaves as the user types; a close request first flushes the
/// save in flight (`flush-before-close`), so the last keystrokes are kept.
#[test]
fn visit_keystrokes_right_before_closing_the_window_are_kept() -> Result<(), E2eError> {
    let h = Harness::start()?;
    let draft = flows::visit_draft_close_reopen(&h)?;
    assert_eq!(
        draft.reopened,
        format!("{}{}", draft.first, draft.second),
        "the reopened draft must hold everything typed before the window closed"
    );
    Ok(())
}

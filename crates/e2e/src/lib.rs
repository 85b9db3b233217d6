//! End-to-end tests of the desktop app through the real built binary.
//!
//! [`Harness`] starts a private X server (Xvfb, 1366x768), a private D-Bus
//! session bus and `tauri-driver` (which drives WebKitGTK through
//! `WebKitWebDriver`); [`Harness::launch`] starts the app on a fresh store of
//! the harness's temporary folder and gives an [`App`] to drive it by the
//! `data-testid`s of the UI contract. Everything started is stopped when the
//! harness is dropped.
//!
//! Prerequisites are never skipped silently: a missing binary is an
//! [`E2eError::Missing`] that names what to run (`scripts/e2e.sh` builds and
//! installs everything).

pub mod app;
pub mod bench;
pub mod county;
pub mod fixtures;
pub mod flows;
pub mod harness;
pub mod procs;
pub mod webdriver;

pub use app::App;
pub use harness::{Harness, Tools};

/// What can go wrong while driving the app.
#[derive(thiserror::Error)]
pub enum E2eError {
    /// A program or file the tests need is not there.
    #[error("{what} not found: {hint}")]
    Missing { what: String, hint: String },
    /// A helper process (Xvfb, dbus-daemon, tauri-driver) failed.
    #[error("{0}")]
    Process(String),
    /// The WebDriver connection failed or answered nonsense.
    #[error("webdriver: {0}")]
    Http(String),
    /// The remote end answered with a W3C error.
    #[error("webdriver {request}: HTTP {status} {error}: {message}")]
    WebDriver {
        status: u16,
        error: String,
        message: String,
        request: String,
    },
    /// Waited too long for something on screen.
    #[error("timed out after {waited_ms} ms waiting for {what}")]
    Timeout { what: String, waited_ms: u128 },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Tests return `Result<(), E2eError>`; a failure prints this, so it is the
/// readable message rather than the derived structure.
impl std::fmt::Debug for E2eError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl E2eError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> E2eError {
        let context = context.into();
        move |source| E2eError::Io { context, source }
    }

    /// The W3C error code, if the remote end answered with one.
    pub fn webdriver_code(&self) -> Option<&str> {
        match self {
            E2eError::WebDriver { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A CSS selector for `data-testid="id"`.
pub fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

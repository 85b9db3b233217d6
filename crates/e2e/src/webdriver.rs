//! A small W3C WebDriver client over plain HTTP (blocking, loopback only).
//!
//! Only what the end-to-end tests and the UI bench need: sessions, finding
//! elements by CSS selector, clicking, typing, reading text/attributes,
//! running scripts, key actions, window size and screenshots. Every error of
//! the remote end keeps its W3C error code (`no such element`, ...).

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::E2eError;

/// The key of a web element reference in W3C WebDriver JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Unicode code points WebDriver uses for special keys.
pub mod keys {
    pub const CONTROL: char = '\u{E009}';
    pub const ENTER: char = '\u{E007}';
    pub const TAB: char = '\u{E004}';
    pub const BACKSPACE: char = '\u{E003}';
}

/// One WebDriver session.
pub struct Session {
    base: String,
    id: String,
    agent: ureq::Agent,
    closed: bool,
}

/// A reference to an element of the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(pub String);

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        // Creating a session starts the app; a loaded 2-core machine can take long.
        .timeout(Duration::from_secs(120))
        .build()
}

/// Send one request; returns the `value` member of the answer, or the W3C
/// error as [`E2eError::WebDriver`].
fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, E2eError> {
    let request = agent.request(method, url);
    let result = match body {
        Some(b) => request.send_json(b.clone()),
        None => request.call(),
    };
    let (status, response) = match result {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(ureq::Error::Transport(t)) => {
            return Err(E2eError::Http(format!("{method} {url}: {t}")));
        }
    };
    let text = response
        .into_string()
        .map_err(|e| E2eError::Http(format!("{method} {url}: reading the answer: {e}")))?;
    let parsed: Value = serde_json::from_str(&text).map_err(|e| {
        E2eError::Http(format!(
            "{method} {url}: HTTP {status}, not JSON ({e}): {text}"
        ))
    })?;
    let value = parsed.get("value").cloned().unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(value);
    }
    let error = value
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown error")
        .to_string();
    let message = value
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Err(E2eError::WebDriver {
        status,
        error,
        message,
        request: format!("{method} {url}"),
    })
}

/// Whether the driver at `base` (e.g. `http://127.0.0.1:4444`) answers.
pub fn is_ready(base: &str) -> bool {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(2))
        .build();
    // tauri-driver proxies `/status` to the native driver; any HTTP answer means it listens.
    match agent.get(&format!("{base}/status")).call() {
        Ok(_) | Err(ureq::Error::Status(..)) => true,
        Err(ureq::Error::Transport(_)) => false,
    }
}

impl Session {
    /// Start a session with `capabilities` (the `alwaysMatch` object).
    pub fn start(base: &str, capabilities: Value) -> Result<Session, E2eError> {
        let agent = agent();
        let value = call(
            &agent,
            "POST",
            &format!("{base}/session"),
            Some(&json!({ "capabilities": { "alwaysMatch": capabilities } })),
        )?;
        let id = value
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                E2eError::Http(format!("new session answer without sessionId: {value}"))
            })?
            .to_string();
        Ok(Session {
            base: base.to_string(),
            id,
            agent,
            closed: false,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{}", self.base, self.id, path)
    }

    fn get(&self, path: &str) -> Result<Value, E2eError> {
        call(&self.agent, "GET", &self.url(path), None)
    }

    fn post(&self, path: &str, body: Value) -> Result<Value, E2eError> {
        call(&self.agent, "POST", &self.url(path), Some(&body))
    }

    /// The first element matching the CSS `selector`.
    pub fn find(&self, selector: &str) -> Result<Element, E2eError> {
        let v = self.post(
            "/element",
            json!({ "using": "css selector", "value": selector }),
        )?;
        element_of(&v)
    }

    /// Every element matching the CSS `selector` (possibly none).
    pub fn find_all(&self, selector: &str) -> Result<Vec<Element>, E2eError> {
        let v = self.post(
            "/elements",
            json!({ "using": "css selector", "value": selector }),
        )?;
        v.as_array()
            .ok_or_else(|| E2eError::Http(format!("find elements: not a list: {v}")))?
            .iter()
            .map(element_of)
            .collect()
    }

    pub fn click(&self, e: &Element) -> Result<(), E2eError> {
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .map(drop)
    }

    /// Type `text` into `e` (focuses it first), key by key.
    pub fn send_keys(&self, e: &Element, text: &str) -> Result<(), E2eError> {
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .map(drop)
    }

    pub fn clear(&self, e: &Element) -> Result<(), E2eError> {
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .map(drop)
    }

    /// The rendered text of `e`.
    pub fn text(&self, e: &Element) -> Result<String, E2eError> {
        let v = self.get(&format!("/element/{}/text", e.0))?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub fn attribute(&self, e: &Element, name: &str) -> Result<Option<String>, E2eError> {
        let v = self.get(&format!("/element/{}/attribute/{name}", e.0))?;
        Ok(v.as_str().map(str::to_string))
    }

    /// A DOM property (e.g. `value` of an input or select).
    pub fn property(&self, e: &Element, name: &str) -> Result<Value, E2eError> {
        self.get(&format!("/element/{}/property/{name}", e.0))
    }

    pub fn is_displayed(&self, e: &Element) -> Result<bool, E2eError> {
        let v = self.get(&format!("/element/{}/displayed", e.0))?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// Run `script` (a function body; `arguments` holds `args`) in the page.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, E2eError> {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
    }

    /// Run an asynchronous `script`: it ends by calling its last argument
    /// (`arguments[arguments.length - 1]`) with the result.
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value, E2eError> {
        self.post("/execute/async", json!({ "script": script, "args": args }))
    }

    /// Press and release keys as one chord (e.g. Ctrl+S: `[CONTROL, 's']`):
    /// all go down in order, then up in reverse order.
    pub fn chord(&self, keys: &[char]) -> Result<(), E2eError> {
        let mut actions: Vec<Value> = keys
            .iter()
            .map(|k| json!({ "type": "keyDown", "value": k.to_string() }))
            .collect();
        actions.extend(
            keys.iter()
                .rev()
                .map(|k| json!({ "type": "keyUp", "value": k.to_string() })),
        );
        self.post(
            "/actions",
            json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] }),
        )?;
        // Release everything so a failed chord does not leave a key down.
        call(&self.agent, "DELETE", &self.url("/actions"), None).map(drop)
    }

    /// Set the window's outer size.
    pub fn set_window_size(&self, width: u32, height: u32) -> Result<(), E2eError> {
        self.post(
            "/window/rect",
            json!({ "x": 0, "y": 0, "width": width, "height": height }),
        )
        .map(drop)
    }

    /// The window's rectangle `{x, y, width, height}`.
    pub fn window_rect(&self) -> Result<Value, E2eError> {
        self.get("/window/rect")
    }

    /// A PNG of the page's viewport.
    pub fn screenshot_png(&self) -> Result<Vec<u8>, E2eError> {
        let v = self.get("/screenshot")?;
        let b64 = v
            .as_str()
            .ok_or_else(|| E2eError::Http("screenshot answer is not a string".into()))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| E2eError::Http(format!("screenshot is not base64: {e}")))
    }

    /// Close the current window (the app's only one: the app quits).
    pub fn close_window(&self) -> Result<(), E2eError> {
        call(&self.agent, "DELETE", &self.url("/window"), None).map(drop)
    }

    /// End the session (the driver stops the app). Idempotent.
    pub fn quit(&mut self) -> Result<(), E2eError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        call(
            &self.agent,
            "DELETE",
            &format!("{}/session/{}", self.base, self.id),
            None,
        )
        .map(drop)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Best effort: the harness kills the driver's whole process group anyway.
        let _ = self.quit();
    }
}

fn element_of(v: &Value) -> Result<Element, E2eError> {
    v.get(ELEMENT_KEY)
        .and_then(Value::as_str)
        .map(|s| Element(s.to_string()))
        .ok_or_else(|| E2eError::Http(format!("not an element reference: {v}")))
}

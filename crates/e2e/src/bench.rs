//! Measurements of the running app for `ui-bench` (BENCHMARKS.md, "Desktop app").

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procs;
use crate::webdriver::Session;
use crate::{testid, E2eError};

/// Poll `probe` every `step` until `Some`, for at most `timeout`.
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    step: Duration,
    mut probe: impl FnMut() -> Result<Option<T>, E2eError>,
) -> Result<T, E2eError> {
    let started = Instant::now();
    loop {
        match probe() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e)
                if matches!(
                    e.webdriver_code(),
                    Some("no such element" | "stale element reference")
                ) => {}
            Err(e) => return Err(e),
        }
        if started.elapsed() > timeout {
            return Err(E2eError::Timeout {
                what: what.to_string(),
                waited_ms: started.elapsed().as_millis(),
            });
        }
        std::thread::sleep(step);
    }
}

/// Resident memory of the app and of WebKit's helper processes, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// The app process (Rust, the store, GTK, WebKit's UI side).
    pub app: u64,
    /// WebKitWebProcess (the page: DOM, JavaScript).
    pub web: u64,
    /// WebKitNetworkProcess.
    pub network: u64,
    /// Any other process below the app (e.g. a sandbox helper).
    pub other: u64,
}

impl Memory {
    pub fn total(&self) -> u64 {
        self.app + self.web + self.network + self.other
    }

    /// VmRSS of `app_pid` and of everything below it.
    pub fn of(app_pid: u32) -> Memory {
        Memory::measure(app_pid, procs::Metric::Rss)
    }

    /// `metric` of `app_pid` and of everything below it.
    pub fn measure(app_pid: u32, metric: procs::Metric) -> Memory {
        let mut m = Memory {
            app: procs::memory_kib(app_pid, metric).unwrap_or(0),
            ..Memory::default()
        };
        for p in procs::descendants(app_pid) {
            let rss = procs::memory_kib(p.pid, metric).unwrap_or(0);
            if p.comm.starts_with("WebKitWebProc") {
                m.web += rss;
            } else if p.comm.starts_with("WebKitNetwork") {
                m.network += rss;
            } else {
                m.other += rss;
            }
        }
        m
    }
}

/// In-page instrumentation of the children list: a `MutationObserver` on
/// the list records when its result signature (the `children-count` text and
/// the first rows' `data-id`s) changes, and a capturing `keydown` listener
/// records when the next key arrives; both on `performance.now()`. Each
/// change also records the next animation frame (the change on screen).
const INSTALL: &str = r#"
const root = document.querySelector('[data-testid="screen-children"]') || document.body;
const sig = () => {
  const c = document.querySelector('[data-testid="children-count"]');
  const rows = Array.from(document.querySelectorAll('[data-testid="children-row"]'))
    .slice(0, 30).map(r => r.getAttribute('data-id'));
  return (c ? c.textContent : '') + '|' + rows.join(',');
};
const old = window.__shouhuBench;
if (old && old.observer) old.observer.disconnect();
const b = { key: null, armed: false, changes: [], last: sig(), sig };
b.observer = new MutationObserver(() => {
  const s = sig();
  if (s !== b.last) {
    b.last = s;
    const entry = { t: performance.now(), s, painted: null };
    b.changes.push(entry);
    requestAnimationFrame(() => { entry.painted = performance.now(); });
  }
});
b.observer.observe(root, { subtree: true, childList: true, characterData: true,
  attributes: true, attributeFilter: ['data-id'] });
if (!window.__shouhuBenchKeys) {
  window.__shouhuBenchKeys = true;
  document.addEventListener('keydown', () => {
    const cur = window.__shouhuBench;
    if (cur && cur.armed) { cur.key = performance.now(); cur.armed = false; }
  }, true);
}
window.__shouhuBench = b;
return b.last;
"#;

const ARM: &str = r#"
const b = window.__shouhuBench;
b.changes = []; b.key = null; b.armed = true;
return b.last;
"#;

const READ: &str = r#"
const b = window.__shouhuBench;
return { key: b.key, now: performance.now(), last: b.last,
         changes: b.changes.map(c => ({ t: c.t, s: c.s, painted: c.painted })) };
"#;

/// One keystroke's measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Keystroke {
    pub key: char,
    /// keydown → the DOM shows the final results of this keystroke.
    pub to_results: Duration,
    /// keydown → the next animation frame after that (on screen).
    pub to_painted: Option<Duration>,
    /// The `children-count` text afterwards.
    pub count: String,
}

/// Results of typing into `children-search`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Typing {
    pub keystrokes: Vec<Keystroke>,
    /// Keys after which the results did not change (not timed).
    pub unchanged: usize,
}

pub fn install(session: &Session) -> Result<String, E2eError> {
    let v = session.execute(INSTALL, vec![])?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

fn ms(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Type `text` into `children-search` one key at a time; after each key wait
/// until the results have been quiet for `quiet` (at most `timeout`).
pub fn type_and_time(
    session: &Session,
    text: &str,
    quiet: Duration,
    timeout: Duration,
) -> Result<Typing, E2eError> {
    let input = session.find(&testid("children-search"))?;
    let mut out = Typing::default();
    for key in text.chars() {
        session.execute(ARM, vec![])?;
        session.send_keys(&input, &key.to_string())?;
        let started = Instant::now();
        let reading = loop {
            let r = session.execute(READ, vec![])?;
            let now = r.get("now").and_then(ms).unwrap_or(0.0);
            let changes = r
                .get("changes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let last_t = changes.last().and_then(|c| c.get("t")).and_then(ms);
            let settled = match last_t {
                Some(t) => now - t >= quiet.as_secs_f64() * 1000.0,
                None => false,
            };
            let painted = changes
                .last()
                .map(|c| !c.get("painted").is_some_and(Value::is_null))
                .unwrap_or(true);
            if (settled && painted) || started.elapsed() > timeout {
                break r;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let key_t = reading.get("key").and_then(ms);
        let changes = reading
            .get("changes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(final_sig) = changes
            .last()
            .and_then(|c| c.get("s"))
            .and_then(Value::as_str)
        else {
            out.unchanged += 1;
            continue;
        };
        let Some(key_t) = key_t else {
            return Err(E2eError::Process(format!(
                "no keydown seen for {key:?} in the page"
            )));
        };
        // The first moment the DOM showed what it finally shows.
        let Some(first) = changes
            .iter()
            .find(|c| c.get("s").and_then(Value::as_str) == Some(final_sig))
        else {
            continue;
        };
        let t = first.get("t").and_then(ms).unwrap_or(key_t);
        let painted = first.get("painted").and_then(ms);
        let count = final_sig.split('|').next().unwrap_or_default().to_string();
        out.keystrokes.push(Keystroke {
            key,
            to_results: Duration::from_secs_f64(((t - key_t) / 1000.0).max(0.0)),
            to_painted: painted.map(|p| Duration::from_secs_f64(((p - key_t) / 1000.0).max(0.0))),
            count,
        });
    }
    Ok(out)
}

/// The `q`-quantile (0..=1) of `values` (nearest rank); zero when empty.
pub fn quantile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut v = values.to_vec();
    v.sort();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

//! The running app, driven by the `data-testid`s of the UI contract.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{screens_dir, Harness, SCREEN};
use crate::webdriver::{Element, Session};
use crate::{testid, E2eError};

/// How long a wait lasts: `$SHOUHU_E2E_TIMEOUT_MS` or 20 s (a debug build on
/// a loaded 2-core machine is slow).
pub fn default_timeout() -> Duration {
    std::env::var("SHOUHU_E2E_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(20))
}

/// One running app (one WebDriver session).
pub struct App {
    pub session: Session,
    pub timeout: Duration,
    screens: PathBuf,
}

impl App {
    /// Wrap a fresh session: wait for the page, size the window to the
    /// screen (1366x768).
    pub fn new(session: Session, _harness: &Harness) -> Result<App, E2eError> {
        let app = App {
            session,
            timeout: default_timeout(),
            screens: screens_dir(),
        };
        app.wait_for("the page to load", || {
            let state = app.session.execute("return document.readyState", vec![])?;
            Ok((state.as_str() == Some("complete")).then_some(()))
        })?;
        let (w, h) = SCREEN;
        app.session.set_window_size(w, h)?;
        // The page lays itself out again a moment later.
        let mut seen = (0, 0);
        let fits = app.wait_for("the page to fill the 1366x768 window", || {
            let v = app
                .session
                .execute("return [window.innerWidth, window.innerHeight]", vec![])?;
            let got = |i: usize| v.get(i).and_then(Value::as_u64).unwrap_or(0);
            seen = (got(0), got(1));
            Ok((seen == (u64::from(w), u64::from(h))).then_some(()))
        });
        if let Err(E2eError::Timeout { waited_ms, .. }) = fits {
            return Err(E2eError::Process(format!(
                "the page is {}x{} after resizing the window to {w}x{h} ({waited_ms} ms)",
                seen.0, seen.1
            )));
        }
        fits?;
        Ok(app)
    }

    /// Poll `probe` every 25 ms until it gives `Some`, up to the timeout.
    /// "no such element" / "stale element" answers count as "not yet".
    pub fn wait_for<T>(
        &self,
        what: &str,
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
            if started.elapsed() > self.timeout {
                return Err(E2eError::Timeout {
                    what: what.to_string(),
                    waited_ms: started.elapsed().as_millis(),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The element with `data-testid="id"`, once it is there.
    pub fn wait(&self, id: &str) -> Result<Element, E2eError> {
        let sel = testid(id);
        self.wait_for(&format!("[data-testid={id}]"), || {
            Ok(self.session.find_all(&sel)?.into_iter().next())
        })
    }

    /// Every element with `data-testid="id"` (none if there is none now).
    pub fn all(&self, id: &str) -> Result<Vec<Element>, E2eError> {
        self.session.find_all(&testid(id))
    }

    /// Whether an element with `data-testid="id"` is displayed now.
    pub fn is_shown(&self, id: &str) -> Result<bool, E2eError> {
        for e in self.all(id)? {
            match self.session.is_displayed(&e) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(err) if err.webdriver_code() == Some("stale element reference") => {}
                Err(err) => return Err(err),
            }
        }
        Ok(false)
    }

    /// Wait until no element with `data-testid="id"` is displayed.
    pub fn wait_gone(&self, id: &str) -> Result<(), E2eError> {
        self.wait_for(&format!("[data-testid={id}] to disappear"), || {
            Ok((!self.is_shown(id)?).then_some(()))
        })
    }

    pub fn click(&self, id: &str) -> Result<(), E2eError> {
        let e = self.wait(id)?;
        self.session.click(&e)
    }

    /// Type `text` into the field `id` (appends to what is there).
    pub fn type_into(&self, id: &str, text: &str) -> Result<(), E2eError> {
        let e = self.wait(id)?;
        self.session.send_keys(&e, text)
    }

    /// Clear the field `id`, then type `text`.
    pub fn fill(&self, id: &str, text: &str) -> Result<(), E2eError> {
        let e = self.wait(id)?;
        self.session.clear(&e)?;
        self.session.send_keys(&e, text)
    }

    /// Log in on the log-in screen (or the lock screen): user, password,
    /// submit. The caller waits for what should follow (the home screen, or
    /// `login-error`).
    pub fn log_in(&self, login: &str, password: &str) -> Result<(), E2eError> {
        self.wait("login-password")?;
        self.fill("login-user", login)?;
        self.fill("login-password", password)?;
        self.click("login-submit")
    }

    /// Choose `value` in the `<select>` `id` by clicking its option.
    pub fn select(&self, id: &str, value: &str) -> Result<(), E2eError> {
        self.wait(id)?;
        let option = self
            .session
            .find(&format!("{} option[value=\"{value}\"]", testid(id)))?;
        self.session.click(&option)?;
        let now = self.value(id)?;
        if now != value {
            return Err(E2eError::Process(format!(
                "selecting {value:?} in [data-testid={id}] left it at {now:?}"
            )));
        }
        Ok(())
    }

    /// The `value` property of the input/select `id`.
    pub fn value(&self, id: &str) -> Result<String, E2eError> {
        let e = self.wait(id)?;
        Ok(match self.session.property(&e, "value")? {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        })
    }

    /// The rendered text of `id`.
    pub fn text(&self, id: &str) -> Result<String, E2eError> {
        let e = self.wait(id)?;
        self.session.inner_text(&e)
    }

    /// Wait until the text of `id` satisfies `ok`; returns it.
    pub fn wait_text(
        &self,
        id: &str,
        what: &str,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String, E2eError> {
        let sel = testid(id);
        let mut last = String::new();
        let r = self.wait_for(&format!("[data-testid={id}] {what}"), || {
            for e in self.session.find_all(&sel)? {
                let t = self.session.inner_text(&e)?;
                if ok(&t) {
                    return Ok(Some(t));
                }
                last = t;
            }
            Ok(None)
        });
        r.map_err(|e| match e {
            E2eError::Timeout { what, waited_ms } => E2eError::Timeout {
                what: format!("{what} (last text: {last:?})"),
                waited_ms,
            },
            other => other,
        })
    }

    /// `<html lang>`.
    pub fn lang(&self) -> Result<String, E2eError> {
        let v = self
            .session
            .execute("return document.documentElement.lang", vec![])?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The whole visible text of the page.
    pub fn page_text(&self) -> Result<String, E2eError> {
        let v = self.session.execute(
            "return document.body ? document.body.innerText : ''",
            vec![],
        )?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Save a screenshot of the window as `<screens>/<name>.png` and check it
    /// is 1366x768. Returns the file.
    pub fn screenshot(&self, name: &str) -> Result<PathBuf, E2eError> {
        self.settle()?;
        let png = self.session.screenshot_png()?;
        let (w, h) =
            png_size(&png).ok_or_else(|| E2eError::Http("the screenshot is not a PNG".into()))?;
        let colours = distinct_colours(&png, 64)?;
        std::fs::create_dir_all(&self.screens)
            .map_err(E2eError::io(format!("creating {}", self.screens.display())))?;
        let path = self.screens.join(format!("{name}.png"));
        std::fs::write(&path, &png).map_err(E2eError::io(format!("writing {}", path.display())))?;
        eprintln!("e2e: screenshot {} ({w}x{h})", path.display());
        if (w, h) != SCREEN {
            return Err(E2eError::Process(format!(
                "screenshot {} is {w}x{h}, not {}x{}",
                path.display(),
                SCREEN.0,
                SCREEN.1
            )));
        }
        if colours < 16 {
            return Err(E2eError::Process(format!(
                "screenshot {} is blank ({colours} colours): the page was not painted",
                path.display()
            )));
        }
        Ok(path)
    }

    /// Wait until the page has painted: fonts loaded, then two animation frames.
    pub fn settle(&self) -> Result<(), E2eError> {
        self.session
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const frames = () => requestAnimationFrame(() => requestAnimationFrame(() => done(true)));
                 (document.fonts ? document.fonts.ready : Promise.resolve()).then(frames, frames);",
                vec![],
            )
            .map(drop)
    }

    /// Close the app's window (the app quits) and end the session.
    pub fn close_window(mut self) -> Result<(), E2eError> {
        let r = self.session.close_window();
        let _ = self.session.quit();
        r
    }
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(png[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(png[20..24].try_into().ok()?);
    Some((w, h))
}

/// How many different pixel values a PNG has (counting stops at `cap`).
pub fn distinct_colours(png: &[u8], cap: usize) -> Result<usize, E2eError> {
    let bad = |e: png::DecodingError| E2eError::Http(format!("the screenshot is not a PNG: {e}"));
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .map_err(bad)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| E2eError::Http("the screenshot is too large".into()))?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let bytes_per_pixel = info.color_type.samples() * usize::from(info.bit_depth as u8).div_ceil(8);
    let mut seen = std::collections::HashSet::new();
    for line in buf.chunks(info.line_size).take(info.height as usize) {
        for px in line.chunks_exact(bytes_per_pixel.max(1)) {
            seen.insert(px.to_vec());
            if seen.len() >= cap {
                return Ok(seen.len());
            }
        }
    }
    Ok(seen.len())
}

/// Whether `s` contains Chinese characters (CJK Unified Ideographs).
pub fn has_chinese(s: &str) -> bool {
    s.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    type R<T> = Result<T, Box<dyn std::error::Error>>;

    fn png_of(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> R<Vec<u8>> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let data: Vec<u8> = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| pixel(x, y))
            .collect();
        let mut w = enc.write_header()?;
        w.write_image_data(&data)?;
        drop(w);
        Ok(out)
    }

    #[test]
    fn a_blank_screenshot_has_one_colour_and_a_busy_one_many() -> R<()> {
        let blank = png_of(40, 30, |_, _| [255, 255, 255])?;
        assert_eq!(png_size(&blank), Some((40, 30)));
        assert_eq!(distinct_colours(&blank, 64)?, 1);
        let busy = png_of(40, 30, |x, y| [x as u8 * 6, y as u8 * 8, 0])?;
        assert_eq!(distinct_colours(&busy, 64)?, 64);
        assert!(png_size(b"not a png at all, no").is_none());
        Ok(())
    }

    #[test]
    fn chinese_is_recognised() {
        assert!(has_chinese("Version 0.1.0 版本"));
        assert!(!has_chinese("Children 0.1.0"));
    }
}

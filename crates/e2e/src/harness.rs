//! Xvfb + D-Bus + tauri-driver, and the app's environment.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::webdriver::{self, Session};
use crate::{procs, App, E2eError};

/// Screen size of the private X server (and of the screenshots).
pub const SCREEN: (u32, u32) = (1366, 768);

const HINT: &str = "run `bash scripts/e2e.sh` (builds the UI and the app, installs tauri-driver) \
                    or `bash scripts/deps.sh` for system packages";

/// The programs the harness runs.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The app binary under test (`shouhu-app`).
    pub app: PathBuf,
    pub tauri_driver: PathBuf,
    /// `WebKitWebDriver`.
    pub native_driver: PathBuf,
    pub xvfb: PathBuf,
    pub dbus_daemon: PathBuf,
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Cargo's target folder: `$CARGO_TARGET_DIR` (now or when this crate was
/// built) or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_DIR").map(PathBuf::from))
        .map(|p| {
            if p.is_relative() {
                workspace_root().join(p)
            } else {
                p
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where screenshots go: `$SHOUHU_E2E_SCREENS` or `<target>/e2e-screens`.
pub fn screens_dir() -> PathBuf {
    std::env::var_os("SHOUHU_E2E_SCREENS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("e2e-screens"))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn existing(what: &str, candidates: Vec<Option<PathBuf>>, hint: &str) -> Result<PathBuf, E2eError> {
    let tried: Vec<String> = candidates
        .iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect();
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(&p).ok())
        .ok_or_else(|| E2eError::Missing {
            what: what.to_string(),
            hint: format!("looked at [{}] and $PATH; {hint}", tried.join(", ")),
        })
}

impl Tools {
    /// Find every program, from environment overrides, the target folder and
    /// `$PATH`: `SHOUHU_E2E_APP` (default `<target>/debug/shouhu-app`),
    /// `SHOUHU_E2E_TAURI_DRIVER` (default `<target>/e2e-tools/bin/tauri-driver`),
    /// `SHOUHU_E2E_NATIVE_DRIVER` (default `WebKitWebDriver`).
    pub fn locate() -> Result<Tools, E2eError> {
        // An override, when set, is the only candidate (no silent fallback).
        let or = |k: &str, defaults: Vec<Option<PathBuf>>| match std::env::var_os(k) {
            Some(p) => vec![Some(PathBuf::from(p))],
            None => defaults,
        };
        let app = existing(
            "the app binary (shouhu-app)",
            or(
                "SHOUHU_E2E_APP",
                vec![Some(target_dir().join("debug/shouhu-app"))],
            ),
            HINT,
        )?;
        let tauri_driver = existing(
            "tauri-driver",
            or(
                "SHOUHU_E2E_TAURI_DRIVER",
                vec![
                    Some(target_dir().join("e2e-tools/bin/tauri-driver")),
                    on_path("tauri-driver"),
                ],
            ),
            HINT,
        )?;
        let native_driver = existing(
            "WebKitWebDriver (Debian package webkit2gtk-driver)",
            or("SHOUHU_E2E_NATIVE_DRIVER", vec![on_path("WebKitWebDriver")]),
            HINT,
        )?;
        let xvfb = existing("Xvfb (Debian package xvfb)", vec![on_path("Xvfb")], HINT)?;
        let dbus_daemon = existing(
            "dbus-daemon (Debian package dbus-daemon)",
            vec![on_path("dbus-daemon")],
            HINT,
        )?;
        Ok(Tools {
            app,
            tauri_driver,
            native_driver,
            xvfb,
            dbus_daemon,
        })
    }
}

/// How the app is started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Store file (`SHOUHU_DB`); default: a fresh file in the harness's folder.
    pub db: Option<PathBuf>,
    /// Device key folder (`SHOUHU_IDENTITY_DIR`); default: in the harness's folder.
    pub identity_dir: Option<PathBuf>,
    /// Let the app fill an empty store with the demo county (default: no, `SHOUHU_NO_DEMO=1`).
    pub demo: bool,
}

/// A private display, session bus and tauri-driver; stops them on drop.
pub struct Harness {
    pub tools: Tools,
    dir: tempfile::TempDir,
    pub db: PathBuf,
    pub identity_dir: PathBuf,
    display: u32,
    xvfb: Option<Child>,
    dbus: Option<Child>,
    driver: Option<Child>,
    driver_log: PathBuf,
    bus: String,
    base: String,
}

/// Read the first line a child writes on stdout (Xvfb's display number,
/// dbus-daemon's address), failing if it exits first or takes too long.
fn first_line(child: &mut Child, what: &str, log: &Path) -> Result<String, E2eError> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| E2eError::Process(format!("{what}: no stdout pipe")))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let r = reader.read_line(&mut line).map(|_| line);
        let _ = tx.send(r);
        // Keep draining so the child never blocks on a full pipe.
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(line)) if !line.trim().is_empty() => Ok(line.trim().to_string()),
        Ok(Ok(_)) => Err(E2eError::Process(format!(
            "{what} exited before it was ready: {}",
            log_tail(log)
        ))),
        Ok(Err(e)) => Err(E2eError::Process(format!("{what}: reading stdout: {e}"))),
        Err(_) => Err(E2eError::Process(format!(
            "{what} did not get ready in 30 s: {}",
            log_tail(log)
        ))),
    }
}

/// The last lines of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(30);
    format!("[{}]\n{}", path.display(), lines[start..].join("\n"))
}

fn free_port() -> Result<u16, E2eError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(E2eError::io("binding a free port"))?;
    let port = l
        .local_addr()
        .map_err(E2eError::io("reading a bound port"))?
        .port();
    Ok(port)
}

fn log_file(path: &Path) -> Result<Stdio, E2eError> {
    let f = std::fs::File::create(path)
        .map_err(E2eError::io(format!("creating {}", path.display())))?;
    Ok(Stdio::from(f))
}

/// Stop `child`: SIGTERM, then SIGKILL after `grace`.
fn stop(child: &mut Child, grace: Duration) {
    let pid = child.id();
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    procs::signal(pid, libc::SIGTERM);
    let until = Instant::now() + grace;
    while Instant::now() < until {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Harness {
    /// Start with a fresh empty store (`SHOUHU_NO_DEMO=1`).
    pub fn start() -> Result<Harness, E2eError> {
        Harness::with_options(Options::default())
    }

    pub fn with_options(options: Options) -> Result<Harness, E2eError> {
        let tools = Tools::locate()?;
        let dir = tempfile::Builder::new()
            .prefix("shouhu-e2e-")
            .tempdir()
            .map_err(E2eError::io("creating a temporary folder"))?;
        let root = dir.path().to_path_buf();
        let db = options
            .db
            .clone()
            .unwrap_or_else(|| root.join("data/shouhu.db"));
        let identity_dir = options
            .identity_dir
            .clone()
            .unwrap_or_else(|| root.join("identity"));
        let mut h = Harness {
            tools,
            dir,
            db,
            identity_dir,
            display: 0,
            xvfb: None,
            dbus: None,
            driver: None,
            driver_log: root.join("tauri-driver.log"),
            bus: String::new(),
            base: String::new(),
        };
        // On error `h` is dropped, which stops whatever already started.
        h.start_xvfb()?;
        h.start_dbus()?;
        h.start_driver(&options)?;
        Ok(h)
    }

    /// The harness's temporary folder (store, logs, XDG folders).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The X display, e.g. `:93`.
    pub fn display(&self) -> String {
        format!(":{}", self.display)
    }

    fn start_xvfb(&mut self) -> Result<(), E2eError> {
        let log = self.dir().join("xvfb.log");
        let (w, h) = SCREEN;
        // `-displayfd 1`: Xvfb picks a free display and writes its number on stdout.
        let mut child = Command::new(&self.tools.xvfb)
            .args(["-displayfd", "1", "-screen", "0"])
            .arg(format!("{w}x{h}x24"))
            .args(["-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file(&log)?)
            .spawn()
            .map_err(E2eError::io("starting Xvfb"))?;
        let line = first_line(&mut child, "Xvfb", &log);
        self.xvfb = Some(child);
        self.display = line?
            .parse()
            .map_err(|e| E2eError::Process(format!("Xvfb wrote no display number: {e}")))?;
        Ok(())
    }

    fn start_dbus(&mut self) -> Result<(), E2eError> {
        let log = self.dir().join("dbus.log");
        let mut child = Command::new(&self.tools.dbus_daemon)
            .args(["--session", "--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file(&log)?)
            .spawn()
            .map_err(E2eError::io("starting dbus-daemon"))?;
        let line = first_line(&mut child, "dbus-daemon", &log);
        self.dbus = Some(child);
        self.bus = line?;
        Ok(())
    }

    fn start_driver(&mut self, options: &Options) -> Result<(), E2eError> {
        let root = self.dir().to_path_buf();
        for sub in ["xdg/data", "xdg/config", "xdg/cache", "xdg/runtime"] {
            std::fs::create_dir_all(root.join(sub))
                .map_err(E2eError::io(format!("creating {sub}")))?;
        }
        // The runtime dir must be private (0700) or GLib complains.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(
                root.join("xdg/runtime"),
                std::fs::Permissions::from_mode(0o700),
            );
        }
        let port = free_port()?;
        let native_port = free_port()?;
        let mut cmd = Command::new(&self.tools.tauri_driver);
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--native-port")
            .arg(native_port.to_string())
            .arg("--native-driver")
            .arg(&self.tools.native_driver)
            .env("DISPLAY", self.display())
            .env_remove("WAYLAND_DISPLAY")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("XDG_DATA_HOME", root.join("xdg/data"))
            .env("XDG_CONFIG_HOME", root.join("xdg/config"))
            .env("XDG_CACHE_HOME", root.join("xdg/cache"))
            .env("XDG_RUNTIME_DIR", root.join("xdg/runtime"))
            .env("SHOUHU_DB", &self.db)
            .env("SHOUHU_IDENTITY_DIR", &self.identity_dir)
            .env("NO_AT_BRIDGE", "1")
            .stdin(Stdio::null())
            .stdout(log_file(&self.driver_log)?)
            .stderr(log_file(&root.join("tauri-driver.err.log"))?)
            // Its own process group, so that nothing it starts outlives the harness.
            .process_group(0);
        if options.demo {
            cmd.env_remove("SHOUHU_NO_DEMO");
        } else {
            cmd.env("SHOUHU_NO_DEMO", "1");
        }
        let child = cmd.spawn().map_err(E2eError::io("starting tauri-driver"))?;
        self.driver = Some(child);
        self.base = format!("http://127.0.0.1:{port}");
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if webdriver::is_ready(&self.base) {
                return Ok(());
            }
            if let Some(d) = self.driver.as_mut() {
                if let Ok(Some(status)) = d.try_wait() {
                    return Err(E2eError::Process(format!(
                        "tauri-driver exited ({status}) before it was ready: {}\n{}",
                        log_tail(&self.driver_log),
                        log_tail(&root.join("tauri-driver.err.log"))
                    )));
                }
            }
            if Instant::now() > until {
                return Err(E2eError::Process(format!(
                    "tauri-driver did not answer on {} in 30 s: {}",
                    self.base,
                    log_tail(&root.join("tauri-driver.err.log"))
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The names of the X server's top-level windows (`xwininfo -root
    /// -tree`, from Debian's x11-utils): e.g. the app's print dialog, which
    /// is a GTK window outside the webview that WebDriver cannot see.
    pub fn x_windows(&self) -> Result<Vec<String>, E2eError> {
        let xwininfo = existing(
            "xwininfo (Debian package x11-utils)",
            vec![on_path("xwininfo")],
            HINT,
        )?;
        let out = Command::new(xwininfo)
            .args(["-display", &self.display(), "-root", "-children"])
            .stdin(Stdio::null())
            .output()
            .map_err(E2eError::io("running xwininfo"))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let start = l.find('"')? + 1;
                let len = l[start..].find('"')?;
                Some(l[start..start + len].to_string())
            })
            .collect())
    }

    /// The WebDriver URL of tauri-driver.
    pub fn webdriver_url(&self) -> &str {
        &self.base
    }

    /// Start the app logged in: the e2e user is made the laptop's first
    /// account if there is none (`fixtures::ensure_account`), the app is
    /// started and the user logs in through the log-in screen.
    pub fn launch(&self) -> Result<App, E2eError> {
        crate::fixtures::ensure_account(&self.db, &self.identity_dir)?;
        let app = self.launch_bare()?;
        app.log_in(crate::fixtures::E2E_LOGIN, crate::fixtures::E2E_PASSWORD)?;
        app.wait("nav-home")?;
        Ok(app)
    }

    /// Start the app as it is (a new WebDriver session) and wait until its
    /// page is loaded: on a fresh folder it shows the set-up screen.
    pub fn launch_bare(&self) -> Result<App, E2eError> {
        let session = self.new_session()?;
        App::new(session, self)
    }

    /// A bare WebDriver session on the app (the bench times it itself).
    pub fn new_session(&self) -> Result<Session, E2eError> {
        let caps = json!({
            "browserName": "wry",
            "tauri:options": { "application": self.tools.app },
        });
        Session::start(&self.base, caps).map_err(|e| match e {
            E2eError::WebDriver { .. } | E2eError::Http(_) => E2eError::Process(format!(
                "could not start the app {} through tauri-driver: {e}\n{}",
                self.tools.app.display(),
                log_tail(&self.dir().join("tauri-driver.err.log"))
            )),
            other => other,
        })
    }

    /// Live processes running the app binary (started by this harness's
    /// driver), matched by executable or, for one that is exiting (its
    /// executable link is gone already), by command name.
    pub fn app_pids(&self) -> Vec<u32> {
        let Some(driver) = self.driver.as_ref() else {
            return Vec::new();
        };
        let below = procs::descendants(driver.id());
        let by_exe = procs::with_exe(&below, &self.tools.app);
        // The kernel keeps the first 15 bytes of the name.
        let name: String = self
            .tools
            .app
            .file_name()
            .map(|n| n.to_string_lossy().chars().take(15).collect())
            .unwrap_or_default();
        below
            .iter()
            .filter(|p| by_exe.contains(&p.pid) || (!name.is_empty() && p.comm == name))
            .map(|p| p.pid)
            .filter(|p| procs::alive(*p))
            .collect()
    }

    /// Every process below tauri-driver (WebKitWebDriver, the app, WebKit's
    /// web and network processes).
    pub fn driver_descendants(&self) -> Vec<procs::ProcStat> {
        self.driver
            .as_ref()
            .map(|d| procs::descendants(d.id()))
            .unwrap_or_default()
    }

    /// Wait until no app process of this harness is left (after closing its window).
    pub fn wait_app_exit(&self, timeout: Duration) -> Result<(), E2eError> {
        let started = Instant::now();
        loop {
            let left = self.app_pids();
            if left.is_empty() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(E2eError::Timeout {
                    what: format!("the app to exit (pids {left:?})"),
                    waited_ms: started.elapsed().as_millis(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(mut driver) = self.driver.take() {
            // Everything the driver started (WebKitWebDriver, the app, WebKit's
            // helper processes), youngest first, then the driver itself.
            let mut below = procs::descendants(driver.id());
            below.sort_by_key(|p| std::cmp::Reverse(p.start_ticks));
            for p in &below {
                procs::signal(p.pid, libc::SIGTERM);
            }
            stop(&mut driver, Duration::from_secs(3));
            let until = Instant::now() + Duration::from_secs(3);
            while below.iter().any(|p| procs::alive(p.pid)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            for p in below.iter().filter(|p| procs::alive(p.pid)) {
                // Only if it is still the same process (pids are reused).
                if procs::stat(p.pid).is_some_and(|s| s.start_ticks == p.start_ticks) {
                    procs::signal(p.pid, libc::SIGKILL);
                }
            }
        }
        if let Some(mut dbus) = self.dbus.take() {
            stop(&mut dbus, Duration::from_secs(2));
        }
        if let Some(mut xvfb) = self.xvfb.take() {
            stop(&mut xvfb, Duration::from_secs(2));
        }
        if std::env::var_os("SHOUHU_E2E_KEEP").is_some() {
            let kept = self.dir.path().to_path_buf();
            eprintln!("e2e: keeping {}", kept.display());
            // Leak the folder on purpose so its logs can be read.
            let dir = std::mem::replace(
                &mut self.dir,
                match tempfile::tempdir() {
                    Ok(d) => d,
                    Err(_) => return,
                },
            );
            let _ = dir.keep();
        }
    }
}

//! A real county sync server (`shouhu-server`, HTTPS with its self-signed
//! certificate on 127.0.0.1, port chosen by the system) and a second device
//! driven through the `shouhu` CLI, for end-to-end tests of sync and
//! conflicts. Both are the binaries cargo built (`target/debug`, or
//! `SHOUHU_E2E_SERVER` / `SHOUHU_E2E_CLI`).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::harness::target_dir;
use crate::{procs, E2eError};

const HINT: &str = "run `cargo build -p shouhu-server -p shouhu-cli` (scripts/e2e.sh does)";

fn binary(env: &str, name: &str) -> Result<PathBuf, E2eError> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug").join(name));
    if path.is_file() {
        Ok(path)
    } else {
        Err(E2eError::Missing {
            what: format!("{name} ({})", path.display()),
            hint: format!("set {env} or {HINT}"),
        })
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<String, E2eError> {
    let out: Output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(E2eError::io(format!("running {what}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(E2eError::Process(format!(
            "{what} failed ({}): {stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(stdout)
}

/// A county server's data folder, its admin subcommands, and (after
/// [`CountyServer::serve`]) the running server, stopped on drop.
pub struct CountyServer {
    bin: PathBuf,
    data: PathBuf,
    child: Option<Child>,
    /// `https://127.0.0.1:<port>` once serving.
    pub url: String,
    /// The certificate's SHA-256 fingerprint (`AB:CD:…`) once known.
    pub fingerprint: String,
}

/// A one-time enrollment code and the fingerprint printed under it.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub code: String,
    pub fingerprint: String,
}

impl CountyServer {
    /// A server whose data lives in `data` (created); not serving yet.
    pub fn new(data: &Path) -> Result<CountyServer, E2eError> {
        std::fs::create_dir_all(data)
            .map_err(E2eError::io(format!("creating {}", data.display())))?;
        Ok(CountyServer {
            bin: binary("SHOUHU_E2E_SERVER", "shouhu-server")?,
            data: data.to_path_buf(),
            child: None,
            url: String::new(),
            fingerprint: String::new(),
        })
    }

    fn admin(&self, args: &[&str]) -> Result<String, E2eError> {
        run(
            Command::new(&self.bin)
                .arg("--data")
                .arg(&self.data)
                .args(args)
                .env_remove("SHOUHU_SERVER_DATA"),
            &format!("shouhu-server {}", args.join(" ")),
        )
    }

    /// `add-school`: the new school's id.
    pub fn add_school(&self, name: &str, township: &str) -> Result<Uuid, E2eError> {
        let out = self.admin(&["add-school", "--name", name, "--township", township])?;
        Uuid::parse_str(out.trim())
            .map_err(|e| E2eError::Process(format!("add-school printed {out:?}: {e}")))
    }

    /// `enroll --school S --local-users`: a code for a device of `school`
    /// whose users are laptop accounts (the app's e2e user, the CLI's
    /// plain store), with the certificate's fingerprint.
    pub fn enroll(&self, school: Uuid) -> Result<Enrollment, E2eError> {
        let school = school.to_string();
        let out = self.admin(&["enroll", "--school", &school, "--local-users"])?;
        let mut lines = out.lines();
        let code = lines.next().unwrap_or_default().trim().to_string();
        let fingerprint = lines
            .find_map(|l| {
                l.split_once("(SHA-256):")
                    .map(|(_, f)| f.trim().to_string())
            })
            .unwrap_or_default();
        if code.is_empty() || fingerprint.is_empty() {
            return Err(E2eError::Process(format!("enroll printed {out:?}")));
        }
        Ok(Enrollment { code, fingerprint })
    }

    /// Start `serve` on 127.0.0.1 (a free port) over HTTPS; read its address
    /// and fingerprint from its first two lines.
    pub fn serve(&mut self) -> Result<(), E2eError> {
        let log = self.data.join("server.log");
        let mut child = Command::new(&self.bin)
            .arg("--data")
            .arg(&self.data)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env_remove("SHOUHU_SERVER_DATA")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(&log)
                    .map_err(E2eError::io(format!("creating {}", log.display())))?,
            ))
            .process_group(0)
            .spawn()
            .map_err(E2eError::io("starting shouhu-server serve"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| E2eError::Process("shouhu-server: no stdout pipe".into()))?;
        self.child = Some(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let mut second = String::new();
            let r = reader
                .read_line(&mut first)
                .and_then(|_| reader.read_line(&mut second))
                .map(|_| (first, second));
            let _ = tx.send(r);
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let (first, second) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(lines)) => lines,
            Ok(Err(e)) => return Err(E2eError::Process(format!("shouhu-server stdout: {e}"))),
            Err(_) => {
                return Err(E2eError::Process(format!(
                    "shouhu-server did not print its address in 60 s: {}",
                    crate::harness::log_tail(&log)
                )))
            }
        };
        self.url = first
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_string)
            .ok_or_else(|| {
                E2eError::Process(format!(
                    "shouhu-server printed {first:?}: {}",
                    crate::harness::log_tail(&log)
                ))
            })?;
        self.fingerprint = second
            .split_once("(SHA-256):")
            .map(|(_, f)| f.trim().to_string())
            .ok_or_else(|| E2eError::Process(format!("shouhu-server printed {second:?}")))?;
        Ok(())
    }
}

impl Drop for CountyServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            procs::signal(child.id(), libc::SIGTERM);
            for _ in 0..100 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A second device: a plain store used through the `shouhu` CLI.
pub struct CliDevice {
    bin: PathBuf,
    pub db: PathBuf,
    pub identity_dir: PathBuf,
}

impl CliDevice {
    /// A device whose store and device key live in `dir` (created).
    pub fn new(dir: &Path) -> Result<CliDevice, E2eError> {
        std::fs::create_dir_all(dir)
            .map_err(E2eError::io(format!("creating {}", dir.display())))?;
        Ok(CliDevice {
            bin: binary("SHOUHU_E2E_CLI", "shouhu")?,
            db: dir.join("cli.db"),
            identity_dir: dir.join("identity"),
        })
    }

    /// Run `shouhu <args>` on this device's store; its standard output.
    pub fn run(&self, args: &[&str]) -> Result<String, E2eError> {
        run(
            Command::new(&self.bin)
                .arg("--db")
                .arg(&self.db)
                .arg("--identity-dir")
                .arg(&self.identity_dir)
                .args(args)
                .env_remove("SHOUHU_DB")
                .env_remove("SHOUHU_USER")
                .env_remove("SHOUHU_PASSWORD")
                .env_remove("SHOUHU_IDENTITY_DIR"),
            &format!("shouhu {}", args.join(" ")),
        )
    }

    /// `shouhu import` of these JSON Lines records (an existing id is
    /// updated: only the fields that differ change); the import report.
    pub fn import(&self, lines: &[Value]) -> Result<Value, E2eError> {
        let file = self.db.with_extension("import.jsonl");
        let mut f = std::fs::File::create(&file)
            .map_err(E2eError::io(format!("creating {}", file.display())))?;
        for l in lines {
            writeln!(f, "{l}").map_err(E2eError::io("writing the import file"))?;
        }
        drop(f);
        let path = file.display().to_string();
        let out = self.run(&["import", &path, "--json"])?;
        serde_json::from_str(&out)
            .map_err(|e| E2eError::Process(format!("import printed {out:?}: {e}")))
    }

    /// `shouhu sync --json` (enrolling first with `enroll`); the report.
    pub fn sync(&self, server: &str, enroll: Option<&Enrollment>) -> Result<Value, E2eError> {
        let mut args = vec!["sync", "--server", server, "--json"];
        if let Some(e) = enroll {
            args.extend(["--code", &e.code, "--fingerprint", &e.fingerprint]);
        }
        let out = self.run(&args)?;
        serde_json::from_str(&out)
            .map_err(|e| E2eError::Process(format!("sync printed {out:?}: {e}")))
    }

    /// Read this device's store directly (the CLI must not be running).
    pub fn with_store<R>(&self, f: impl FnOnce(&shouhu_store::Store) -> R) -> Result<R, E2eError> {
        let (store, _) = shouhu_store::Store::open_with_identity(&self.db, &self.identity_dir)
            .map_err(|e| E2eError::Process(format!("opening {}: {e}", self.db.display())))?;
        Ok(f(&store))
    }
}

//! The `shouhu-server` binary: `serve` speaks HTTPS by default and prints its
//! address first, then the certificate's fingerprint; `fingerprint` and
//! `enroll` print the same fingerprint; `--plain-http` warns loudly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shouhu_tls::{pinned_client_config, Fingerprint};

type R<T = ()> = Result<T, Box<dyn std::error::Error>>;

const LABEL: &str = "certificate fingerprint (SHA-256): ";

fn server(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shouhu-server"));
    cmd.arg("--data")
        .arg(data)
        .args(args)
        .env_remove("SHOUHU_SERVER_CERT")
        .env_remove("SHOUHU_SERVER_KEY")
        .env_remove("SHOUHU_SERVER_DATA");
    cmd
}

fn output(data: &Path, args: &[&str]) -> R<(bool, String, String)> {
    let out = server(data, args).output()?;
    Ok((
        out.status.success(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on a free loopback port; its first two stdout lines.
fn start(data: &Path, extra: &[&str]) -> R<(Running, String, String)> {
    let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = Running(
        server(data, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().ok_or("no first line")??;
    let second = lines.next().ok_or("no second line")??;
    // Keep draining so that the server's log lines never block it.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, first, second))
}

fn health(url: &str, pin: Fingerprint) -> R<reqwest::StatusCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(pinned_client_config(pin)?)
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(client
            .get(format!("{url}/v1/health"))
            .send()
            .await?
            .status())
    })
}

#[test]
fn serve_speaks_https_and_every_command_prints_the_same_fingerprint() -> R {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");

    // `fingerprint` makes the certificate the first time, then reads it.
    let (ok, out, err) = output(&data, &["fingerprint"])?;
    assert!(ok, "{err}");
    assert!(err.contains("made a new self-signed certificate"), "{err}");
    let fp = Fingerprint::parse(out.trim())?;
    assert_eq!(out.trim(), fp.to_string());
    let (ok, again, err) = output(&data, &["fingerprint"])?;
    assert!(ok && err.is_empty(), "{err}");
    assert_eq!(again, out);
    assert_eq!(
        shouhu_tls::fingerprint_of_file(&data.join(shouhu_tls::cert::CERT_FILE))?,
        fp
    );

    // `enroll`: the code, then the fingerprint the device pins.
    let (ok, school, err) = output(
        &data,
        &["add-school", "--name", "新寨小学", "--township", "八步街道"],
    )?;
    assert!(ok, "{err}");
    let (ok, out, err) = output(&data, &["enroll", "--school", school.trim()])?;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(!lines[0].is_empty() && !lines[0].contains(' '), "{out}");
    assert_eq!(lines[1], format!("{LABEL}{fp}"));

    // `serve`: the https address first, the fingerprint next; a device
    // pinning that fingerprint is answered.
    let (_server, first, second) = start(&data, &[])?;
    let url = first
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("first line: {first}"))?
        .to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert_eq!(second, format!("{LABEL}{fp}"));
    assert_eq!(health(&url, fp)?, reqwest::StatusCode::OK);
    // Any other pin is refused by the device.
    let other = Fingerprint::of(b"another certificate");
    let refused = health(&url, other)
        .err()
        .ok_or("a wrong pin was accepted")?;
    let refused = refused
        .downcast_ref::<reqwest::Error>()
        .ok_or("not a reqwest error")?;
    assert!(shouhu_tls::is_pin_mismatch(refused), "{refused:?}");
    Ok(())
}

#[test]
fn a_countys_own_certificate_is_served_and_printed() -> R {
    let dir = tempfile::tempdir()?;
    // "The county's own" certificate: here one made elsewhere.
    let own = dir.path().join("own");
    let own_fp = shouhu_tls::load_or_create(&own, &["shouhu.example.cn".into()])?.fingerprint;
    let cert = own.join(shouhu_tls::cert::CERT_FILE);
    let key = own.join(shouhu_tls::cert::KEY_FILE);
    let data = dir.path().join("data");
    let files = [
        "--cert",
        cert.to_str().ok_or("path")?,
        "--key",
        key.to_str().ok_or("path")?,
    ];
    let mut args = files.to_vec();
    args.push("fingerprint");
    let (ok, out, err) = output(&data, &args)?;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), own_fp.to_string());
    assert!(
        !data.join(shouhu_tls::cert::CERT_FILE).exists(),
        "no self-signed certificate made beside the county's own"
    );
    let (_server, first, second) = start(&data, &files)?;
    assert_eq!(second, format!("{LABEL}{own_fp}"));
    let url = first.strip_prefix("listening on ").ok_or("first line")?;
    assert_eq!(health(url, own_fp)?, reqwest::StatusCode::OK);

    // --cert without --key is refused before anything happens.
    let (ok, _, err) = output(&data, &["--cert", "x.pem", "fingerprint"])?;
    assert!(!ok);
    assert!(err.contains("--key"), "{err}");
    // An unreadable certificate is a coded error.
    let (ok, _, err) = output(
        &data,
        &[
            "--cert",
            "missing.pem",
            "--key",
            "missing.pem",
            "fingerprint",
        ],
    )?;
    assert!(!ok);
    assert!(err.contains("[tls.io]"), "{err}");
    Ok(())
}

#[test]
fn plain_http_is_for_tests_only_and_says_so() -> R {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut child = Running(
        server(&data, &["serve", "--addr", "127.0.0.1:0", "--plain-http"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    let first = BufReader::new(stdout)
        .lines()
        .next()
        .ok_or("no first line")??;
    assert!(
        first.starts_with("listening on http://127.0.0.1:"),
        "{first}"
    );
    let stderr = child.0.stderr.take().ok_or("no stderr")?;
    let warning: Vec<String> = BufReader::new(stderr)
        .lines()
        .take(3)
        .collect::<Result<_, _>>()?;
    assert!(warning.join("\n").contains("NO TLS"), "{warning:?}");
    assert!(
        !data.join(shouhu_tls::cert::CERT_FILE).exists(),
        "no certificate needed"
    );
    Ok(())
}

//! `ui-bench`: figures of the real desktop app for BENCHMARKS.md ("Desktop app").
//!
//! For each county size it fills a store with `shouhu-demo`, then starts the
//! app through tauri-driver (Xvfb 1366x768) several times and measures:
//! * start → a usable children list: from the WebDriver "new session" request
//!   (which launches the app) and from the app process's own start time until
//!   the first `children-row` is in the page (opening the list through
//!   `nav-children` if the app starts elsewhere);
//! * keystroke → results in `children-search`: in-page, from the `keydown` to
//!   the DOM showing the final results (and to the next animation frame);
//! * resident memory (VmRSS) of the app process and of WebKit's web and
//!   network processes.
//!
//! Build the app first: `cargo build --release -p shouhu-app --features custom-protocol`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use shouhu_e2e::bench::{self, poll, quantile, Memory};
use shouhu_e2e::harness::{target_dir, Options};
use shouhu_e2e::webdriver::keys;
use shouhu_e2e::{procs, testid, E2eError, Harness};

#[derive(Parser, Debug)]
#[command(about = "Start-up, search-as-you-type and memory figures of the desktop app")]
struct Args {
    /// County sizes (children), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [5000usize, 40000])]
    children: Vec<usize>,
    /// Home visits per child in the generated county.
    #[arg(long, default_value_t = 10)]
    visits_per_child: usize,
    /// App starts per size (the first is reported apart: fresh WebKit caches).
    #[arg(long, default_value_t = 5)]
    starts: usize,
    /// Queries typed key by key into the search box, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = ["zs".to_string(), "wang".to_string(), "李".to_string(), "5205".to_string()])]
    queries: Vec<String>,
    /// The app binary (default: <target>/release/shouhu-app).
    #[arg(long)]
    app: Option<PathBuf>,
    /// Seed of the county.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ui-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.0} MB", kib as f64 / 1024.0)
}

struct Start {
    session: Duration,
    rows: Duration,
    process_age: Option<Duration>,
}

fn run(args: &Args) -> Result<(), E2eError> {
    let app = args
        .app
        .clone()
        .unwrap_or_else(|| target_dir().join("release/shouhu-app"));
    if !app.is_file() {
        return Err(E2eError::Missing {
            what: format!("the app binary {}", app.display()),
            hint: "build it: cargo build --release -p shouhu-app --features custom-protocol".into(),
        });
    }
    std::env::set_var("SHOUHU_E2E_APP", &app);
    println!("app: {}", app.display());
    let mut report = Vec::new();
    for &n in &args.children {
        report.push(measure(args, n)?);
    }
    println!();
    println!("| children | first start → list | start → list (median of {} later) | from process start (median) | keystroke → results p50 / p95 / max | → on screen p50 / p95 | RSS app + web + network = total |", args.starts.saturating_sub(1));
    println!("|---:|---:|---:|---:|---:|---:|---|");
    for line in report {
        println!("{line}");
    }
    Ok(())
}

fn measure(args: &Args, n: usize) -> Result<String, E2eError> {
    let dir = tempfile::Builder::new()
        .prefix("shouhu-ui-bench-")
        .tempdir()
        .map_err(|e| E2eError::Process(format!("temporary folder: {e}")))?;
    let db = dir.path().join("data/shouhu.db");
    let identity = dir.path().join("identity");
    std::fs::create_dir_all(dir.path().join("data"))
        .map_err(|e| E2eError::Process(format!("creating the data folder: {e}")))?;
    {
        let started = Instant::now();
        let spec = shouhu_demo::DemoSpec::bench(n, n * args.visits_per_child, args.seed);
        let r = shouhu_e2e::fixtures::with_store(&db, &identity, |store| {
            shouhu_demo::generate(store, &spec, &mut |_| {})
        })?
        .map_err(|e| E2eError::Process(format!("filling the store: {e}")))?;
        println!(
            "\n{n} children: {} records written in {:.1} s",
            r.total,
            started.elapsed().as_secs_f64()
        );
    }
    let h = Harness::with_options(Options {
        db: Some(db),
        identity_dir: Some(identity),
        demo: false,
    })?;
    let timeout = Duration::from_secs(60);
    let step = Duration::from_millis(5);
    let mut starts: Vec<Start> = Vec::new();
    let mut typing = bench::Typing::default();
    let mut memory = Memory::default();
    for run in 0..args.starts.max(1) {
        let t0 = Instant::now();
        let session = h.new_session()?;
        let session_time = t0.elapsed();
        // The list may be the first screen; otherwise open it.
        let row = testid("children-row");
        let nav = testid("nav-children");
        let password = testid("login-password");
        let mut logged_in = false;
        let rows = poll("a children-row", timeout, step, || {
            if !session.find_all(&row)?.is_empty() {
                return Ok(Some(()));
            }
            // The store is encrypted: log in first (part of the start time).
            if !logged_in {
                if let Some(pw) = session.find_all(&password)?.into_iter().next() {
                    let user = session.find(&testid("login-user"))?;
                    session.clear(&user)?;
                    session.send_keys(&user, shouhu_e2e::fixtures::E2E_LOGIN)?;
                    session.send_keys(&pw, shouhu_e2e::fixtures::E2E_PASSWORD)?;
                    session.click(&session.find(&testid("login-submit"))?)?;
                    logged_in = true;
                }
                return Ok(None);
            }
            if let Some(link) = session.find_all(&nav)?.into_iter().next() {
                if session.find_all(&testid("screen-children"))?.is_empty() {
                    session.click(&link)?;
                }
            }
            Ok(None)
        });
        let rows_time = t0.elapsed();
        let pid = h.app_pids().into_iter().next();
        let process_age = pid.and_then(procs::age);
        rows?;
        println!(
            "  start {}: session {} , rows {}{}",
            run + 1,
            fmt_ms(session_time),
            fmt_ms(rows_time),
            process_age
                .map(|a| format!(", app process age {}", fmt_ms(a)))
                .unwrap_or_default()
        );
        starts.push(Start {
            session: session_time,
            rows: rows_time,
            process_age,
        });
        if run + 1 == args.starts.max(1) {
            // Last start: type the queries, then read memory.
            session.set_window_size(1366, 768)?;
            bench::install(&session)?;
            for q in &args.queries {
                let t = bench::type_and_time(
                    &session,
                    q,
                    Duration::from_millis(400),
                    Duration::from_secs(10),
                )?;
                for k in &t.keystrokes {
                    println!(
                        "  typed {:?} of {q:?}: results {}{} (count {:?})",
                        k.key,
                        fmt_ms(k.to_results),
                        k.to_painted
                            .map(|p| format!(", on screen {}", fmt_ms(p)))
                            .unwrap_or_default(),
                        k.count
                    );
                }
                typing.unchanged += t.unchanged;
                typing.keystrokes.extend(t.keystrokes);
                // Back to the whole list, as a user would: Backspace per character.
                let input = session.find(&testid("children-search"))?;
                let back: String = q.chars().map(|_| keys::BACKSPACE).collect();
                session.send_keys(&input, &back)?;
                std::thread::sleep(Duration::from_millis(800));
            }
            std::thread::sleep(Duration::from_secs(1));
            if let Some(pid) = h.app_pids().into_iter().next() {
                memory = Memory::of(pid);
                println!(
                    "  RSS: app {}, WebKitWebProcess {}, WebKitNetworkProcess {}, other {}",
                    mib(memory.app),
                    mib(memory.web),
                    mib(memory.network),
                    mib(memory.other)
                );
            }
        }
        drop(session);
        h.wait_app_exit(Duration::from_secs(20))?;
    }
    let later: Vec<&Start> = starts.iter().skip(1).collect();
    let med = |v: Vec<Duration>| quantile(&v, 0.5);
    let first = starts.first().map(|s| s.rows).unwrap_or_default();
    let later_rows = med(later.iter().map(|s| s.rows).collect());
    let later_age = med(later.iter().filter_map(|s| s.process_age).collect());
    let later_session = med(later.iter().map(|s| s.session).collect());
    let res: Vec<Duration> = typing.keystrokes.iter().map(|k| k.to_results).collect();
    let painted: Vec<Duration> = typing
        .keystrokes
        .iter()
        .filter_map(|k| k.to_painted)
        .collect();
    Ok(format!(
        "| {n} | {} | {} (session {}) | {} | {} / {} / {} ({} keys) | {} / {} | {} + {} + {} = **{}** |",
        fmt_ms(first),
        fmt_ms(later_rows),
        fmt_ms(later_session),
        fmt_ms(later_age),
        fmt_ms(quantile(&res, 0.5)),
        fmt_ms(quantile(&res, 0.95)),
        fmt_ms(quantile(&res, 1.0)),
        res.len(),
        fmt_ms(quantile(&painted, 0.5)),
        fmt_ms(quantile(&painted, 0.95)),
        mib(memory.app),
        mib(memory.web),
        mib(memory.network),
        mib(memory.total()),
    ))
}

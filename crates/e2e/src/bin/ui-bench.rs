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
//!   The store is encrypted, so a start shows the log-in screen first: the
//!   time to it and the time from the log-in click to the list (which holds
//!   the password's Argon2id derivation) are reported apart;
//! * resident memory of the app process and of WebKit's web and network
//!   processes: VmRSS, PSS (shared pages divided among the processes that
//!   map them, so the three add up) and private (USS).
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
    /// Fill the store and time the library's share of log-in → list (the
    /// `library:` line, with the dashboard's parts), without the app.
    #[arg(long)]
    library_only: bool,
    /// Library timings per size with `--library-only` (medians reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Keep the stores in this folder (`<dir>/<children>/`) and reuse one
    /// that is there instead of filling a new one (iterating on the library;
    /// a store written by an older build is migrated when it is opened).
    #[arg(long)]
    store_dir: Option<PathBuf>,
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
    /// From the start to the log-in screen.
    login_shown: Option<Duration>,
    /// From the log-in click to the first row.
    login_to_rows: Option<Duration>,
}

fn run(args: &Args) -> Result<(), E2eError> {
    if args.library_only {
        return library_only(args);
    }
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
    println!("| children | first start → list | start → list (median of {} later) | from process start (median) | start → log-in screen | log-in click → list | keystroke → results p50 / p95 / max | → on screen p50 / p95 | RSS app + web + network = total | PSS app + web + network = total | private app + web |", args.starts.saturating_sub(1));
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|");
    for line in report {
        println!("{line}");
    }
    Ok(())
}

/// A store folder: a temporary one, or `<store_dir>/<n>` kept for reuse.
enum StoreDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl StoreDir {
    fn path(&self) -> &std::path::Path {
        match self {
            StoreDir::Temp(t) => t.path(),
            StoreDir::Kept(p) => p,
        }
    }
}

/// The store of a county of `n` children: filled now, or reused from
/// `--store-dir`. Its folder, database and identity folder.
fn county_store(args: &Args, n: usize) -> Result<(StoreDir, PathBuf, PathBuf), E2eError> {
    let dir = match &args.store_dir {
        Some(d) => StoreDir::Kept(d.join(n.to_string())),
        None => StoreDir::Temp(
            tempfile::Builder::new()
                .prefix("shouhu-ui-bench-")
                .tempdir()
                .map_err(|e| E2eError::Process(format!("temporary folder: {e}")))?,
        ),
    };
    let db = dir.path().join("data/shouhu.db");
    let identity = dir.path().join("identity");
    let done = dir.path().join("filled");
    if done.is_file() {
        println!(
            "\n{n} children: reusing the store in {}",
            dir.path().display()
        );
        return Ok((dir, db, identity));
    }
    if let StoreDir::Kept(p) = &dir {
        // A half-filled store from an interrupted run is refilled.
        let _ = std::fs::remove_dir_all(p);
    }
    std::fs::create_dir_all(dir.path().join("data"))
        .map_err(|e| E2eError::Process(format!("creating the data folder: {e}")))?;
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
    std::fs::write(
        &done,
        format!("{n} children, {} visits each\n", args.visits_per_child),
    )
    .map_err(|e| E2eError::Process(format!("marking the store filled: {e}")))?;
    Ok((dir, db, identity))
}

/// `--library-only`: the `library:` line per size, `--repeat` times, and
/// the medians.
fn library_only(args: &Args) -> Result<(), E2eError> {
    let mut table = Vec::new();
    for &n in &args.children {
        let (_dir, db, identity) = county_store(args, n)?;
        let mut runs = Vec::new();
        for _ in 0..args.repeat.max(1) {
            runs.push(library_timings(&db, &identity)?);
        }
        let med = |f: &dyn Fn(&Library) -> Duration| {
            quantile(&runs.iter().map(f).collect::<Vec<_>>(), 0.5)
        };
        let mut parts = String::new();
        if let Some(first) = runs.first() {
            for (i, (name, _)) in first.dashboard_parts.iter().enumerate() {
                let d =
                    med(&|l: &Library| l.dashboard_parts.get(i).map(|p| p.1).unwrap_or_default());
                parts.push_str(&format!("{name} {}, ", fmt_ms(d)));
            }
        }
        table.push(format!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fmt_ms(med(&|l| l.login)),
            fmt_ms(med(&|l| l.dashboard)),
            fmt_ms(med(&|l| l.dashboard_cpu)),
            fmt_ms(med(&|l| l.first_page)),
            fmt_ms(med(&|l| l.first_page_cpu)),
            fmt_ms(med(&|l| l.second_page)),
            fmt_ms(med(&|l| l.dashboard + l.first_page)),
            parts.trim_end_matches(", "),
        ));
    }
    println!();
    println!(
        "| children | log-in | dashboard | (its CPU time) | first list page | (its CPU time) | next page | dashboard + first page | dashboard's parts |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for line in table {
        println!("{line}");
    }
    Ok(())
}

fn measure(args: &Args, n: usize) -> Result<String, E2eError> {
    let (_dir, db, identity) = county_store(args, n)?;
    library_timings(&db, &identity)?;
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
    let mut pss = Memory::default();
    let mut private = Memory::default();
    for run in 0..args.starts.max(1) {
        let t0 = Instant::now();
        let session = h.new_session()?;
        let session_time = t0.elapsed();
        // The list may be the first screen; otherwise open it.
        let row = testid("children-row");
        let nav = testid("nav-children");
        let password = testid("login-password");
        let mut logged_in = false;
        let mut login_shown: Option<Duration> = None;
        let mut submitted: Option<Duration> = None;
        let rows = poll("a children-row", timeout, step, || {
            if !session.find_all(&row)?.is_empty() {
                return Ok(Some(()));
            }
            // The store is encrypted: log in first (part of the start time).
            if !logged_in {
                if let Some(pw) = session.find_all(&password)?.into_iter().next() {
                    login_shown = Some(t0.elapsed());
                    let user = session.find(&testid("login-user"))?;
                    session.clear(&user)?;
                    session.send_keys(&user, shouhu_e2e::fixtures::E2E_LOGIN)?;
                    session.send_keys(&pw, shouhu_e2e::fixtures::E2E_PASSWORD)?;
                    let submit = session.find(&testid("login-submit"))?;
                    submitted = Some(t0.elapsed());
                    session.click(&submit)?;
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
        let login_to_rows = submitted.map(|s| rows_time.saturating_sub(s));
        println!(
            "  start {}: session {} , log-in screen {}, log-in → rows {}, rows {}{}",
            run + 1,
            fmt_ms(session_time),
            login_shown.map(fmt_ms).unwrap_or_else(|| "-".into()),
            login_to_rows.map(fmt_ms).unwrap_or_else(|| "-".into()),
            fmt_ms(rows_time),
            process_age
                .map(|a| format!(", app process age {}", fmt_ms(a)))
                .unwrap_or_default()
        );
        starts.push(Start {
            session: session_time,
            rows: rows_time,
            process_age,
            login_shown,
            login_to_rows,
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
                memory = Memory::measure(pid, procs::Metric::Rss);
                pss = Memory::measure(pid, procs::Metric::Pss);
                private = Memory::measure(pid, procs::Metric::Private);
                for (name, m) in [("RSS", &memory), ("PSS", &pss), ("private", &private)] {
                    println!(
                        "  {name}: app {}, WebKitWebProcess {}, WebKitNetworkProcess {}, other {}, total {}",
                        mib(m.app),
                        mib(m.web),
                        mib(m.network),
                        mib(m.other),
                        mib(m.total())
                    );
                }
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
    let later_login = med(later.iter().filter_map(|s| s.login_shown).collect());
    let later_login_rows = med(later.iter().filter_map(|s| s.login_to_rows).collect());
    let res: Vec<Duration> = typing.keystrokes.iter().map(|k| k.to_results).collect();
    let painted: Vec<Duration> = typing
        .keystrokes
        .iter()
        .filter_map(|k| k.to_painted)
        .collect();
    Ok(format!(
        "| {n} | {} | {} (session {}) | {} | {} | {} | {} / {} / {} ({} keys) | {} / {} | {} + {} + {} = **{}** | {} + {} + {} = **{}** | {} + {} = **{}** |",
        fmt_ms(first),
        fmt_ms(later_rows),
        fmt_ms(later_session),
        fmt_ms(later_age),
        fmt_ms(later_login),
        fmt_ms(later_login_rows),
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
        mib(pss.app),
        mib(pss.web),
        mib(pss.network),
        mib(pss.total()),
        mib(private.app),
        mib(private.web),
        mib(private.app + private.web),
    ))
}

/// The library's share of log-in → list.
struct Library {
    login: Duration,
    dashboard: Duration,
    dashboard_parts: Vec<(&'static str, Duration)>,
    first_page: Duration,
    second_page: Duration,
    /// This thread's CPU time in the dashboard and the first page.
    dashboard_cpu: Duration,
    first_page_cpu: Duration,
}

/// What the app does between the log-in click and the list, timed in the
/// library without the window: the vault's log-in (Argon2id, opening the
/// encrypted store), the Home screen's dashboard, the first page of the
/// children list (which loads the search index) and a second one.
fn library_timings(db: &std::path::Path, identity: &std::path::Path) -> Result<Library, E2eError> {
    let started = Instant::now();
    let r = shouhu_e2e::fixtures::with_store(db, identity, |store| {
        let login = started.elapsed();
        let t = Instant::now();
        let cpu = procs::thread_cpu_time();
        let d = shouhu_api::dashboard_timed(store, None);
        let dashboard = t.elapsed();
        let dashboard_cpu = procs::thread_cpu_time().saturating_sub(cpu);
        let (d, parts) = match d {
            Ok((d, parts)) => (Ok(d.active_children), parts),
            Err(e) => (Err(e), Vec::new()),
        };
        let params = shouhu_store::SearchParams::default();
        let t = Instant::now();
        let cpu = procs::thread_cpu_time();
        let first = shouhu_api::search_children(store, &params).map(|p| p.total);
        let first_page = t.elapsed();
        let first_page_cpu = procs::thread_cpu_time().saturating_sub(cpu);
        let t = Instant::now();
        let again = shouhu_api::search_children(store, &params).map(|p| p.total);
        let second_page = t.elapsed();
        (
            login,
            d,
            dashboard,
            parts,
            first,
            first_page,
            again,
            second_page,
            dashboard_cpu,
            first_page_cpu,
        )
    })?;
    let (
        login,
        d,
        dashboard,
        parts,
        first,
        first_page,
        again,
        second_page,
        dashboard_cpu,
        first_page_cpu,
    ) = r;
    let parts_text: Vec<String> = parts
        .iter()
        .map(|(name, t)| format!("{name} {}", fmt_ms(*t)))
        .collect();
    println!(
        "  library: log-in {}, dashboard {} (CPU {}; {:?} active; {}), first list page {} (CPU {}; {:?}), next {} ({:?})",
        fmt_ms(login),
        fmt_ms(dashboard),
        fmt_ms(dashboard_cpu),
        d.ok(),
        parts_text.join(", "),
        fmt_ms(first_page),
        fmt_ms(first_page_cpu),
        first.ok(),
        fmt_ms(second_page),
        again.ok()
    );
    Ok(Library {
        login,
        dashboard,
        dashboard_parts: parts,
        first_page,
        second_page,
        dashboard_cpu,
        first_page_cpu,
    })
}

//! `shouhu-sync-bench`: sync figures on loopback HTTP with a real server.
//!
//! 1. A synthetic county (`--children`, `--visits`) is generated into device
//!    A's store (not timed).
//! 2. Initial push from A (timed up to the end of its push phase; the sync
//!    then pulls A's own changes back, which is reported apart).
//! 3. Initial pull into a fresh device B.
//! 4. An incremental week on A (`--week-edits` children edited, `--week-visits`
//!    new visits): A's sync, then B's.
//! 5. Bytes on the wire per change for each of those.
//! 6. `--devices` devices, each with its own school, syncing a small outbox at
//!    once: throughput and p50/p99 per push batch.
//!
//! Prints a Markdown table. Run with `--release`.

use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};
use shouhu_core::*;
use shouhu_protocol::Scope;
use shouhu_server::{AppState, ServerDb};
use shouhu_store::Store;
use shouhu_sync::{CancelToken, SyncOptions, SyncPhase, SyncProgress, SyncReport};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 30_000)]
    children: usize,
    #[arg(long, default_value_t = 300_000)]
    visits: usize,
    #[arg(long, default_value_t = 1_000)]
    week_edits: usize,
    #[arg(long, default_value_t = 2_000)]
    week_visits: usize,
    #[arg(long, default_value_t = 200)]
    devices: usize,
    /// Changes each of the concurrent devices sends.
    #[arg(long, default_value_t = 50)]
    device_changes: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A small run (3,000 children, 30,000 visits, 20 devices).
    #[arg(long)]
    quick: bool,
    /// Keep the county after the first push and pull in this directory (if
    /// it holds none yet), or start from the one it holds: steps 1–3 and
    /// the many-devices step are skipped, only the week is run and timed.
    /// For iterating on the week's figures without the minutes of set-up.
    #[arg(long)]
    snapshot: Option<std::path::PathBuf>,
    /// Run the incremental week this many times (each a new week of edits
    /// on A, synced by A then pulled by B) and report each and the median.
    #[arg(long, default_value_t = 1)]
    weeks: usize,
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Timed {
    report: SyncReport,
    push: Duration,
    total: Duration,
    /// CPU seconds of the whole process (device and server) in the push
    /// phase and in the whole sync.
    push_cpu: f64,
    total_cpu: f64,
    /// Bytes read and written in the sync (set for B's week pulls).
    io: ProcIo,
    /// Wall and CPU seconds from the sync's end until its WAL checkpoint
    /// (on the store's own thread) was done (set for B's week pulls).
    checkpoint_after: (f64, f64),
}

/// CPU seconds (user + system) this process has used so far: on a machine
/// shared with other work, the wall time alone says little.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

async fn timed_sync(s: &mut Store, opts: &SyncOptions) -> Res<Timed> {
    let start = Instant::now();
    let cpu0 = cpu_secs();
    let mut push_end: Option<(Duration, f64)> = None;
    let mut progress = |p: SyncProgress| {
        if p.phase == SyncPhase::Pull && push_end.is_none() {
            push_end = Some((start.elapsed(), cpu_secs() - cpu0));
        }
    };
    let report = shouhu_sync::sync(s, opts, &mut progress, &CancelToken::new()).await?;
    let total = start.elapsed();
    let total_cpu = cpu_secs() - cpu0;
    let (push, push_cpu) = push_end.unwrap_or((total, total_cpu));
    Ok(Timed {
        report,
        push,
        total,
        push_cpu,
        total_cpu,
        io: ProcIo::default(),
        checkpoint_after: (0.0, 0.0),
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn per_change(bytes: u64, n: u64) -> String {
    if n == 0 {
        "-".into()
    } else {
        format!("{:.0}", bytes as f64 / n as f64)
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let mut args = Args::parse();
    if args.quick {
        args.children = 3_000;
        args.visits = 30_000;
        args.week_edits = 100;
        args.week_visits = 200;
        args.devices = 20;
    }
    let dir = tempfile::tempdir()?;
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).ok_or("date")?;
    let opts = SyncOptions {
        push_batch: 2_000,
        pull_page: 5_000,
        ..Default::default()
    };
    if let Some(snap) = args.snapshot.as_ref().filter(|s| s.join(READY).exists()) {
        return weeks_from_snapshot(&args, snap, dir.path(), today, &opts).await;
    }

    // 1. The county, on device A.
    let t = Instant::now();
    let mut a = Store::open(dir.path().join("a.db"))?;
    a.set_today(Some(today));
    let spec = shouhu_demo::DemoSpec::bench(args.children, args.visits, args.seed);
    let demo = shouhu_demo::generate(&mut a, &spec, &mut |_| {})?;
    eprintln!(
        "generated {} records in {:.1}s",
        demo.total,
        t.elapsed().as_secs_f64()
    );
    let schools: Vec<Stored<School>> = a.list_all()?;

    // The server, on loopback.
    let mut db = ServerDb::open(&dir.path().join("server"))?;
    for s in &schools {
        db.register_existing_school(s.id(), &s.body.name, &s.body.county, &s.body.township)?;
    }
    let all = Scope {
        schools: schools.iter().map(|s| s.id()).collect(),
        notes: true,
        local_users: true,
    };
    let code_a = db.create_enrollment(&all, 1)?;
    let code_b = db.create_enrollment(&all, 1)?;
    let mut load_codes = Vec::new();
    let mut load_schools = Vec::new();
    for i in 0..args.devices {
        let id = db.add_school(None, &format!("负载测试学校{i}"), "织金县", "负载镇")?;
        load_schools.push(id);
        load_codes.push(db.create_enrollment(
            &Scope {
                schools: vec![id],
                notes: false,
                local_users: true,
            },
            1,
        )?);
    }
    let mut server = Server::start(db).await?;

    // 2. Initial push.
    shouhu_sync::enroll(&mut a, &server.url, &code_a, None, "bench-a").await?;
    let changes = a.pending_count()?;
    settle(&a)?;
    let first = timed_sync(&mut a, &opts).await?;
    settle(&a)?;
    eprintln!("initial push done");

    // 3. Initial pull into a fresh device.
    let mut b = Store::open(dir.path().join("b.db"))?;
    b.set_today(Some(today));
    shouhu_sync::enroll(&mut b, &server.url, &code_b, None, "bench-b").await?;
    let pull = timed_sync(&mut b, &opts).await?;
    settle(&b)?;
    eprintln!("initial pull done");

    if let Some(snap) = &args.snapshot {
        // Closed first, so that the files copied are whole databases.
        drop((a, b));
        server.stop().await?;
        save_snapshot(dir.path(), snap)?;
        eprintln!("county kept in {}", snap.display());
        a = Store::open(dir.path().join("a.db"))?;
        a.set_today(Some(today));
        b = Store::open(dir.path().join("b.db"))?;
        b.set_today(Some(today));
        server = Server::start(ServerDb::open(&dir.path().join("server"))?).await?;
        a.set_setting(shouhu_sync::SETTING_SERVER_URL, &server.url)?;
        b.set_setting(shouhu_sync::SETTING_SERVER_URL, &server.url)?;
    }
    let url = server.url.clone();

    // 4. An incremental week on A (`--weeks` of them).
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut weeks = Vec::new();
    for _ in 0..args.weeks.max(1) {
        weeks.push(week(&mut a, &mut b, &mut rng, &args, today, &opts).await?);
    }
    eprintln!("week done");
    let (week_changes, week_a, week_b) = &weeks[0];

    // 6. Many devices at once.
    let mut devices = Vec::new();
    for (i, code) in load_codes.iter().enumerate() {
        let mut s = Store::open(dir.path().join(format!("load-{i}.db")))?;
        s.set_today(Some(today));
        shouhu_sync::enroll(&mut s, &url, code, None, &format!("load-{i}")).await?;
        timed_sync(&mut s, &opts).await?; // its school record
        let school = load_schools[i];
        s.write(|w| {
            let mut made = 0;
            while made < args.device_changes {
                let c = w.create(ChildCard {
                    name: format!("负载{i}号{made}"),
                    gender: Some(Gender::Female),
                    birth_date: chrono::NaiveDate::from_ymd_opt(2015, 3, 3),
                    school_id: Some(school),
                    ..Default::default()
                })?;
                made += 1;
                if made < args.device_changes {
                    w.create(HomeVisit {
                        child_id: Some(c.id()),
                        visit_date: Some(today),
                        visitors: vec!["王老师".into()],
                        ..Default::default()
                    })?;
                    made += 1;
                }
            }
            Ok(())
        })?;
        devices.push(s);
    }
    let load_opts = SyncOptions {
        push_batch: 10,
        ..Default::default()
    };
    let start = Instant::now();
    let cpu0 = cpu_secs();
    let mut tasks = Vec::new();
    for mut s in devices {
        let o = load_opts.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = Instant::now();
            let mut lat = Vec::new();
            let mut progress = |p: SyncProgress| {
                if p.phase == SyncPhase::Push && p.done > 0 {
                    lat.push(last.elapsed());
                }
                last = Instant::now();
            };
            let r = shouhu_sync::sync(&mut s, &o, &mut progress, &CancelToken::new()).await;
            (r.map(|r| r.pushed).map_err(|e| e.to_string()), lat)
        }));
    }
    let mut pushed = 0u64;
    let mut lat = Vec::new();
    for t in tasks {
        let (r, l) = t.await?;
        pushed += r?;
        lat.extend(l);
    }
    let load_wall = start.elapsed();
    let load_cpu = cpu_secs() - cpu0;
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    server.stop().await?;

    println!("| measure | figure | CPU (device + server) | goal |");
    println!("|---|---|---|---|");
    println!(
        "| county | {} children, {} visits, {} changes from device A | | |",
        args.children, args.visits, changes
    );
    println!(
        "| initial push (A → server) | {} ({:.0} changes/s) | {:.2} s | < 10 s |",
        secs(first.push),
        first.report.pushed as f64 / first.push.as_secs_f64(),
        first.push_cpu
    );
    println!(
        "| A's pull of its own changes back (same sync) | {} | {:.2} s | |",
        secs(first.total - first.push),
        first.total_cpu - first.push_cpu
    );
    println!(
        "| initial pull (server → fresh B) | {} ({} changes) | {:.2} s | < 10 s |",
        secs(pull.total),
        pull.report.pulled,
        pull.total_cpu
    );
    println!(
        "| week: A pushes {} changes | {} (push), {} (whole sync) | {:.2} s, {:.2} s | < 0.2 s |",
        week_changes,
        secs(week_a.push),
        secs(week_a.total),
        week_a.push_cpu,
        week_a.total_cpu
    );
    println!(
        "| week: B pulls them | {} ({} changes) | {:.2} s | < 0.2 s |",
        secs(week_b.total),
        week_b.report.pulled,
        week_b.total_cpu
    );
    println!(
        "| bytes per change, initial push / pull | {} / {} | | < 250 |",
        per_change(first.report.bytes_up, first.report.pushed),
        per_change(pull.report.bytes_down, pull.report.pulled)
    );
    println!(
        "| bytes per change, week push / pull | {} / {} | | < 250 |",
        per_change(week_a.report.bytes_up, week_a.report.pushed),
        per_change(week_b.report.bytes_down, week_b.report.pulled)
    );
    println!(
        "| {} devices at once, {} changes each (batches of 10) | {} wall, {:.0} changes/s; per batch p50 {:.1} ms, p99 {:.1} ms | {:.2} s | |",
        args.devices,
        args.device_changes,
        secs(load_wall),
        pushed as f64 / load_wall.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        load_cpu
    );
    if weeks.len() > 1 {
        print_weeks(&weeks);
    }
    println!();
    println!(
        "load average at the end: {} (the machine's other work shares these 2 cores)",
        load_average()
    );
    Ok(())
}

/// The file in a snapshot directory that says it is complete.
const READY: &str = "ready";

/// The server on loopback, until [`Server::stop`].
struct Server {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(db: ServerDb) -> Res<Server> {
        let state = AppState::new(db);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(shouhu_server::run(listener, state, async {
            let _ = stopped.await;
        }));
        Ok(Server { url, stop, task })
    }

    async fn stop(self) -> Res<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

/// Copy every file under `from` into `to` (directories made as needed).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> Res<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

fn save_snapshot(dir: &std::path::Path, snap: &std::path::Path) -> Res<()> {
    for name in ["a.db", "b.db"] {
        std::fs::create_dir_all(snap)?;
        std::fs::copy(dir.join(name), snap.join(name))?;
    }
    copy_tree(&dir.join("server"), &snap.join("server"))?;
    std::fs::write(snap.join(READY), "")?;
    Ok(())
}

/// Only the weeks, on a copy of a kept county.
async fn weeks_from_snapshot(
    args: &Args,
    snap: &std::path::Path,
    dir: &std::path::Path,
    today: chrono::NaiveDate,
    opts: &SyncOptions,
) -> Res<()> {
    copy_tree(snap, dir)?;
    let server = Server::start(ServerDb::open(&dir.join("server"))?).await?;
    let mut a = Store::open(dir.join("a.db"))?;
    a.set_today(Some(today));
    let mut b = Store::open(dir.join("b.db"))?;
    b.set_today(Some(today));
    a.set_setting(shouhu_sync::SETTING_SERVER_URL, &server.url)?;
    b.set_setting(shouhu_sync::SETTING_SERVER_URL, &server.url)?;
    eprintln!("county copied from {}", snap.display());
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut weeks = Vec::new();
    for _ in 0..args.weeks.max(1) {
        weeks.push(week(&mut a, &mut b, &mut rng, args, today, opts).await?);
    }
    server.stop().await?;
    print_weeks(&weeks);
    println!();
    println!("load average at the end: {}", load_average());
    Ok(())
}

/// One incremental week: `--week-edits` children edited and `--week-visits`
/// new visits on A, A's sync, then B's. Returns A's change count and both
/// syncs.
async fn week(
    a: &mut Store,
    b: &mut Store,
    rng: &mut rand::rngs::StdRng,
    args: &Args,
    today: chrono::NaiveDate,
    opts: &SyncOptions,
) -> Res<(i64, Timed, Timed)> {
    let kids: Vec<Stored<ChildCard>> = a.list_all()?;
    a.write(|w| {
        for i in 0..args.week_edits.min(kids.len()) {
            let k = &kids[rng.gen_range(0..kids.len())];
            let mut body = k.body.clone();
            body.notes = format!("本周家访后更新 {i}");
            body.boarding = !body.boarding;
            w.update(k.id(), body)?;
        }
        for i in 0..args.week_visits {
            let k = &kids[rng.gen_range(0..kids.len())];
            w.create(HomeVisit {
                child_id: Some(k.id()),
                visit_date: Some(today),
                visitors: vec!["刘老师".into()],
                living_conditions: "住砖房，屋内整洁".into(),
                problems_found: format!("作业无人辅导 {i}"),
                help_given: "送去课外读物".into(),
                ..Default::default()
            })?;
        }
        Ok(())
    })?;
    let changes = a.pending_count()?;
    settle(a)?;
    let week_a = timed_sync(a, opts).await?;
    settle(a)?;
    perf_control("enable")?;
    let io0 = ProcIo::now();
    let mut week_b = timed_sync(b, opts).await?;
    week_b.io = ProcIo::now().since(&io0);
    perf_control("disable")?;
    // The pull's checkpoint, if still running on the store's thread.
    week_b.checkpoint_after = settle(b)?;
    Ok((changes, week_a, week_b))
}

/// Wait until `s`'s WAL is wholly in its file (the store's checkpoint thread
/// may still be copying a large write's pages): each timed phase starts with
/// no background work left over from an untimed one. Returns the wall and
/// CPU seconds the wait took.
fn settle(s: &Store) -> Res<(f64, f64)> {
    let start = Instant::now();
    let cpu0 = cpu_secs();
    while !s.checkpoint()? {
        if start.elapsed() > Duration::from_secs(60) {
            return Err("the WAL did not settle in 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok((start.elapsed().as_secs_f64(), cpu_secs() - cpu0))
}

/// Bytes this process read and wrote through system calls (`rchar`,
/// `wchar` of `/proc/self/io`: files and sockets, whether or not the disk was
/// touched).
#[derive(Default, Clone, Copy)]
struct ProcIo {
    read: u64,
    written: u64,
}

impl ProcIo {
    fn now() -> ProcIo {
        let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or(0)
        };
        ProcIo {
            read: field("rchar:"),
            written: field("wchar:"),
        }
    }

    fn since(&self, before: &ProcIo) -> ProcIo {
        ProcIo {
            read: self.read.saturating_sub(before.read),
            written: self.written.saturating_sub(before.written),
        }
    }
}

/// With `SHOUHU_BENCH_PERF_CTL` naming the control FIFO of a `perf record
/// -D -1 --control fifo:...`, profile B's week pulls only.
fn perf_control(cmd: &str) -> Res<()> {
    if let Some(path) = std::env::var_os("SHOUHU_BENCH_PERF_CTL") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        writeln!(f, "{cmd}")?;
    }
    Ok(())
}

/// Each week's figures, and the median of B's pulls.
fn print_weeks(weeks: &[(i64, Timed, Timed)]) {
    println!();
    println!(
        "| week | A: changes | A: push (whole sync) | A: CPU | B: pull | B: CPU | B: MB read / written | B: checkpoint left after the sync, wall / CPU |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, (n, wa, wb)) in weeks.iter().enumerate() {
        println!(
            "| {} | {} | {} ({}) | {:.2} s ({:.2} s) | {} ({} changes) | {:.2} s | {:.1} / {:.1} | {:.3} s / {:.2} s |",
            i + 1,
            n,
            secs(wa.push),
            secs(wa.total),
            wa.push_cpu,
            wa.total_cpu,
            secs(wb.total),
            wb.report.pulled,
            wb.total_cpu,
            wb.io.read as f64 / 1e6,
            wb.io.written as f64 / 1e6,
            wb.checkpoint_after.0,
            wb.checkpoint_after.1,
        );
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    println!(
        "| median | | {:.2} s | {:.2} s | {:.2} s | {:.2} s | | |",
        median(weeks.iter().map(|w| w.1.push.as_secs_f64()).collect()),
        median(weeks.iter().map(|w| w.1.push_cpu).collect()),
        median(weeks.iter().map(|w| w.2.total.as_secs_f64()).collect()),
        median(weeks.iter().map(|w| w.2.total_cpu).collect()),
    );
}

//! `shouhu-bench`: the figures in BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p shouhu-bench              # the issue's sizes: 40,000 children, 400,000 visits
//! cargo run --release -p shouhu-bench -- --experiments --repeat 3   # BENCHMARKS.md's figures
//! cargo run --release -p shouhu-bench -- --quick   # a small smoke run
//! ```
//!
//! 1. **Insert**: a seeded county (shouhu-demo: schools, households,
//!    children, visits) is written through `store.write`, `--batch` records
//!    per transaction, into a fresh file; then the same rows (regenerated
//!    from the same seed) with bare prepared `INSERT`s into the same schema
//!    in the same batches; then the bare path with the store's steps added
//!    back one by one. Only the transactions are timed, not generating the
//!    records.
//! 2. **Search** on the store: name substring, pinyin initials, full pinyin
//!    prefix and ID prefix, with and without a school filter, from a fresh
//!    `Store` (the first search loads the in-memory index: reported apart).
//! 3. **Child history**: `child_history(id, true)` of random children.
//! 4. Peak RSS (VmHWM) and the database size.
//!
//! Prints Markdown tables on stdout, progress on stderr.

mod bare;
mod search_exp;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clap::Parser;
use pinyin::ToPinyin;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::Connection;
use shouhu_core::validate::today_cst;
use shouhu_core::EntityKind;
use shouhu_demo::{children, records, DemoSpec, Record};
use shouhu_store::{SearchParams, Store};
use uuid::Uuid;

use bare::{Bare, Extra};

#[derive(Parser, Debug)]
#[command(
    name = "shouhu-bench",
    about = "Store benchmarks on a generated county"
)]
struct Args {
    /// Children in the county.
    #[arg(long, default_value_t = 40_000)]
    children: usize,
    /// Home visits in the county.
    #[arg(long, default_value_t = 400_000)]
    visits: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A small smoke run: 2,000 children, 20,000 visits, 200 queries each.
    #[arg(long)]
    quick: bool,
    /// Records per transaction.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Queries per search kind and filter.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Children whose history is opened.
    #[arg(long, default_value_t = 1000)]
    histories: usize,
    /// Run every insert path this many times (median reported).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Skip the ladder of bare variants (change log, validation, references).
    #[arg(long)]
    no_breakdown: bool,
    /// Also run experiments: the store's steps as they were before migration
    /// 0003 (the change log repeating a create's body, in a `WITHOUT ROWID`
    /// table; every reference looked up), a larger SQLite page cache, and
    /// the search algorithm before and after the presorted index.
    #[arg(long)]
    experiments: bool,
    /// Also run the change-log row in candidate shapes (BLOB ids, no
    /// `record_id` index, an integer `pos` key): each "bare + change-log row"
    /// with the log in that shape.
    #[arg(long)]
    log_experiments: bool,
    /// With --store-only: raise the store's `PRAGMA cache_size` to this many MB.
    #[arg(long)]
    cache_mb: Option<u32>,
    /// Only the store insert (for profiling it, e.g. under `perf record`).
    #[arg(long)]
    store_only: bool,
    /// Directory for the database files (default: a fresh temporary one).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let mut args = Args::parse();
    if args.quick {
        args.children = args.children.min(2_000);
        args.visits = args.visits.min(20_000);
        args.queries = args.queries.min(200);
        args.histories = args.histories.min(200);
    }
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let today = today_cst();
    let spec = DemoSpec {
        batch_size: args.batch.max(1),
        ..DemoSpec::bench(args.children, args.visits, args.seed)
    };

    println!("# shouhu-bench\n");
    println!(
        "{} children, {} visits, seed {}, {} records per transaction; {}; {} cores; {}\n",
        spec.children,
        spec.total_visits(),
        spec.seed,
        spec.batch_size,
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        today,
    );

    // ---------------------------------------------------------------- insert
    let store_path = dir.join("store.db");
    remove_db(&store_path);
    let main_cache = if args.store_only {
        args.cache_mb.map(|mb| mb * 1024)
    } else {
        None
    };
    let (store_run, counts) = insert_store(&store_path, &spec, today, main_cache)?;
    eprintln!(
        "{}: {:.1}s",
        Variant::Store(None).label(),
        store_run.write.as_secs_f64()
    );
    let rss_insert = vm_kb("VmHWM");
    let (db_bytes, wal_bytes) = (file_len(&store_path), file_len(&wal(&store_path)));
    if args.store_only {
        println!(
            "store insert: {} rows in {:.2} s ({:.0} rows/s)",
            store_run.rows,
            store_run.write.as_secs_f64(),
            store_run.rows as f64 / store_run.write.as_secs_f64()
        );
        return Ok(());
    }

    let mut later = String::new();
    // ---------------------------------------------------------------- search
    let people = sample_people(&spec, today);
    let rss_before_open = vm_kb("VmRSS");
    let mut store = Store::open(&store_path)?;
    store.set_today(Some(today));
    let t = Instant::now();
    store.search_children(&SearchParams {
        query: "张".into(),
        ..Default::default()
    })?;
    let cold = t.elapsed();
    let rss_index = vm_kb("VmRSS") - rss_before_open;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed.wrapping_add(1000));
    writeln!(later, "## Search\n")?;
    writeln!(
        later,
        "{} children; {} queries per row, 50 results a page. First search of a fresh `Store` (loads the in-memory index): **{:.1} ms**.\n",
        people.len(),
        args.queries,
        ms(cold)
    )?;
    writeln!(
        later,
        "| query | school filter | example | median hits | p50 | p99 | max | on-CPU p50 | on-CPU p99 |"
    )?;
    writeln!(later, "|---|---|---|---:|---:|---:|---:|---:|---:|")?;
    let mut worst_p99 = Duration::ZERO;
    let mut worst_cpu_p99 = Duration::ZERO;
    let mut misses = 0;
    let mut id_prefixes = Vec::new();
    for kind in [
        QueryKind::Name,
        QueryKind::Initials,
        QueryKind::Pinyin,
        QueryKind::IdPrefix,
    ] {
        for filtered in [false, true] {
            let mut times = Vec::with_capacity(args.queries);
            let mut cpu_times = Vec::with_capacity(args.queries);
            let mut hits = Vec::with_capacity(args.queries);
            let mut example = String::new();
            for _ in 0..args.queries {
                let p = loop {
                    let p = &people[rng.gen_range(0..people.len())];
                    if kind != QueryKind::IdPrefix || p.id_number.is_some() {
                        break p;
                    }
                };
                let query = kind.query(p, &mut rng);
                if kind == QueryKind::IdPrefix && !filtered {
                    id_prefixes.push(query.clone());
                }
                if example.is_empty() {
                    example = query.clone();
                }
                let params = SearchParams {
                    query,
                    school_id: filtered.then_some(p.school_id).flatten(),
                    ..Default::default()
                };
                let (t, c) = (Instant::now(), thread_cpu());
                let page = store.search_children(&params)?;
                times.push(t.elapsed());
                cpu_times.push(thread_cpu().saturating_sub(c));
                if page.total == 0 {
                    misses += 1;
                }
                hits.push(page.total);
            }
            let s = Summary::of(&mut times);
            let cs = Summary::of(&mut cpu_times);
            worst_p99 = worst_p99.max(s.p99);
            worst_cpu_p99 = worst_cpu_p99.max(cs.p99);
            hits.sort_unstable();
            writeln!(
                later,
                "| {} | {} | `{}` | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
                kind.label(),
                if filtered { "yes" } else { "no" },
                example,
                hits.get(hits.len() / 2).copied().unwrap_or(0),
                ms(s.p50),
                ms(s.p99),
                ms(s.max),
                ms(cs.p50),
                ms(cs.p99)
            )?;
        }
    }
    writeln!(
        later,
        "\nQueries that found nothing: {misses} (every query is taken from a real child). Goal: p99 < 20 ms: **{}** (worst p99 {:.2} ms; worst on-CPU p99 {:.2} ms).\n",
        pass(worst_p99 < Duration::from_millis(20)),
        ms(worst_p99),
        ms(worst_cpu_p99)
    )?;

    if args.experiments {
        let short = id_prefixes.iter().filter(|q| q.len() == 6).count();
        let o = search_exp::run(store.connection(), &id_prefixes)?;
        writeln!(later, "Experiment: the unfiltered ID-prefix queries above ({short} of {} are 6 digits, the county's region code, which most children share), re-enacted outside the store on the same rows:\n", id_prefixes.len())?;
        writeln!(later, "| step | p50 | p99 |")?;
        writeln!(later, "|---|---:|---:|")?;
        writeln!(
            later,
            "| filter only (scan of {} entries, count hits) | | {:.2} ms |",
            people.len(),
            ms(o.scan_p99)
        )?;
        for (label, (p50, p99)) in search_exp::LABELS.iter().zip(o.variants) {
            writeln!(later, "| {label} | {:.2} ms | {:.2} ms |", ms(p50), ms(p99))?;
        }
        writeln!(later)?;
    }

    // ---------------------------------------------------------------- history
    let mut times = Vec::with_capacity(args.histories);
    let mut cpu_times = Vec::with_capacity(args.histories);
    let mut sizes = Vec::with_capacity(args.histories);
    for i in 0..args.histories + 10 {
        let p = &people[rng.gen_range(0..people.len())];
        let (t, c) = (Instant::now(), thread_cpu());
        let h = store.child_history(p.id, true)?;
        let e = t.elapsed();
        let ce = thread_cpu().saturating_sub(c);
        if i >= 10 {
            times.push(e);
            cpu_times.push(ce);
            sizes.push(
                1 + h.siblings.len()
                    + h.visits.len()
                    + h.plans.len()
                    + h.follow_ups.len()
                    + h.aid.len()
                    + h.absences.len()
                    + h.contacts.len()
                    + h.screenings.len()
                    + h.card_changes.len()
                    + usize::from(h.household.is_some()),
            );
        }
    }
    let s = Summary::of(&mut times);
    let cs = Summary::of(&mut cpu_times);
    sizes.sort_unstable();
    writeln!(later, "## Child history\n")?;
    writeln!(
        later,
        "| children opened | median records | p50 | p99 | max | on-CPU p50 | on-CPU p99 |"
    )?;
    writeln!(later, "|---:|---:|---:|---:|---:|---:|---:|")?;
    writeln!(
        later,
        "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
        times.len(),
        sizes.get(sizes.len() / 2).copied().unwrap_or(0),
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        ms(cs.p50),
        ms(cs.p99)
    )?;
    writeln!(
        later,
        "\n`child_history(id, true)` after 10 warm-up calls. Goal: p99 < 5 ms: **{}**.\n",
        pass(s.p99 < Duration::from_millis(5))
    )?;

    // ------------------------------------------------- the other insert paths
    let mut variants = vec![Variant::Store(None), Variant::Bare(Extra::default())];
    if !args.no_breakdown {
        variants.extend([
            Variant::Bare(Extra {
                log: true,
                ..Extra::default()
            }),
            Variant::Bare(Extra {
                log: true,
                validate: true,
                ..Extra::default()
            }),
            Variant::Bare(Extra {
                log: true,
                validate: true,
                refs: true,
                ..Extra::default()
            }),
        ]);
    }
    if args.log_experiments {
        use bare::LogShape;
        if args.no_breakdown {
            variants.push(Variant::Bare(Extra {
                log: true,
                ..Extra::default()
            }));
        }
        for shape in [
            LogShape::Text,
            LogShape::BlobIds,
            LogShape::NoRecordIndex,
            LogShape::PosKeyNoRecordIndex,
        ] {
            variants.push(Variant::Bare(Extra {
                log: true,
                log_shape: Some(shape),
                ..Extra::default()
            }));
        }
    }
    if args.experiments {
        variants.extend([
            // The store's steps as they were before migration 0003.
            Variant::Bare(Extra {
                log: true,
                log_with_body: true,
                ..Extra::default()
            }),
            Variant::Bare(Extra {
                log: true,
                log_with_body: true,
                log_without_rowid: true,
                ..Extra::default()
            }),
            Variant::Bare(Extra {
                log: true,
                validate: true,
                refs: true,
                refs_uncached: true,
                ..Extra::default()
            }),
            Variant::Bare(Extra {
                log: true,
                log_with_body: true,
                log_without_rowid: true,
                validate: true,
                refs: true,
                refs_uncached: true,
                ..Extra::default()
            }),
            Variant::Bare(Extra {
                cache_mb: Some(64),
                ..Extra::default()
            }),
            // SQLite's default page cache is 2 MB.
            Variant::Store(Some(64)),
        ]);
    }
    // Repetitions are interleaved (every path once, then again) so that a
    // slow spell of the machine does not land on one path only.
    let mut runs: Vec<Vec<Run>> = variants.iter().map(|_| Vec::new()).collect();
    runs[0].push(store_run);
    let mut bare_size = 0;
    for rep in 0..args.repeat.max(1) {
        for (i, v) in variants.iter().enumerate() {
            if rep == 0 && i == 0 {
                continue;
            }
            let path = dir.join("scratch.db");
            remove_db(&path);
            let run = match v {
                Variant::Store(cache) => {
                    insert_store(&path, &spec, today, cache.map(|mb| mb * 1024))?.0
                }
                Variant::Bare(extra) => insert_bare(&path, &spec, today, *extra)?,
            };
            eprintln!("{}: {:.1}s", v.label(), run.write.as_secs_f64());
            if *v == Variant::Bare(Extra::default()) {
                bare_size = file_len(&path) + file_len(&wal(&path));
            }
            runs[i].push(run);
            remove_db(&path);
        }
    }
    let medians: Vec<(Duration, f64)> = runs
        .iter_mut()
        .map(|r| {
            let mut w: Vec<Duration> = r.iter().map(|x| x.write).collect();
            let mut c: Vec<f64> = r.iter().map(|x| x.cpu).collect();
            w.sort_unstable();
            c.sort_by(f64::total_cmp);
            (w[w.len() / 2], c[c.len() / 2])
        })
        .collect();
    let spread: Vec<(Duration, Duration)> = runs
        .iter()
        .map(|r| {
            let min = r.iter().map(|x| x.write).min().unwrap_or_default();
            let max = r.iter().map(|x| x.write).max().unwrap_or_default();
            (min, max)
        })
        .collect();
    let rows = runs[0].first().map_or(0, |r| r.rows);
    let generate = runs[0].first().map_or(Duration::ZERO, |r| r.generate);
    println!("## Insert\n");
    println!(
        "{} rows: {}. Each path into a fresh file, {} time{} (median shown; runs interleaved).\n",
        rows,
        counts
            .iter()
            .map(|(k, n)| format!("{n} {}", k.name()))
            .collect::<Vec<_>>()
            .join(", "),
        args.repeat.max(1),
        if args.repeat.max(1) == 1 { "" } else { "s" }
    );
    println!("| path | time (min–max) | rows/s | × bare | per row | CPU |");
    println!("|---|---:|---:|---:|---:|---:|");
    let base = medians[1].0;
    for (i, v) in variants.iter().enumerate() {
        let (t, cpu) = medians[i];
        let (min, max) = spread[i];
        let range = if runs[i].len() > 1 {
            format!(" ({:.1}–{:.1})", min.as_secs_f64(), max.as_secs_f64())
        } else {
            String::new()
        };
        println!(
            "| {} | {:.2} s{range} | {:.0} | {:.2} | {:.1} µs | {:.2} s |",
            v.label(),
            t.as_secs_f64(),
            rows as f64 / t.as_secs_f64(),
            t.as_secs_f64() / base.as_secs_f64(),
            t.as_secs_f64() * 1e6 / rows as f64,
            cpu
        );
    }
    let ratio = medians[0].0.as_secs_f64() / base.as_secs_f64();
    println!(
        "\nCPU: user + system time of the process during the timed transactions (the rest of the time is waiting for the disk). Generating the records (not timed above): {:.2} s. Goal: store ≤ 1.5 × bare: **{}** ({ratio:.2}×).\n",
        generate.as_secs_f64(),
        pass(ratio <= 1.5),
    );
    print!("{later}");

    // ---------------------------------------------------------------- resources
    store
        .connection()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let checkpointed = file_len(&store_path);
    drop(store);
    println!("## Resources\n");
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| peak RSS after the store insert (VmHWM) | {:.0} MB |",
        rss_insert / 1024.0
    );
    println!(
        "| RSS growth from opening the store and its first search (the in-memory search index) | {:.0} MB |",
        rss_index / 1024.0
    );
    println!(
        "| peak RSS of the whole run{} | {:.0} MB |",
        if args.experiments {
            " (includes the 64 MB page-cache experiments)"
        } else {
            ""
        },
        vm_kb("VmHWM") / 1024.0
    );
    println!(
        "| store file after the insert (+ WAL) | {:.0} MB (+ {:.0} MB) |",
        mb(db_bytes),
        mb(wal_bytes)
    );
    println!(
        "| store file after a checkpoint | {:.0} MB |",
        mb(checkpointed)
    );
    if bare_size > 0 {
        println!(
            "| bare file (no change log), + WAL | {:.0} MB |",
            mb(bare_size)
        );
    }
    println!();
    Ok(())
}

// -------------------------------------------------------------------- insert

struct Run {
    write: Duration,
    /// User + system CPU seconds during the timed transactions.
    cpu: f64,
    generate: Duration,
    rows: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Through `store.write`; `Some(mb)`: with `PRAGMA cache_size` raised.
    Store(Option<u32>),
    Bare(Extra),
}

impl Variant {
    fn label(self) -> String {
        match self {
            Variant::Store(None) => "Store API (`store.write`)".into(),
            Variant::Store(Some(mb)) => {
                format!("experiment: Store API with `PRAGMA cache_size` {mb} MB")
            }
            Variant::Bare(e) => e.label(),
        }
    }
}

/// CPU seconds (user + system) this process has used so far.
/// Time this thread has spent on a CPU (`CLOCK_THREAD_CPUTIME_ID`, to the
/// nanosecond): a latency measure that a machine busy with other work inflates
/// far less than wall time (it still includes cache misses the others cause).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

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

/// Pull the next batch from the generator (not timed as writing).
fn next_batch(it: &mut impl Iterator<Item = Record>, n: usize) -> Vec<Record> {
    it.take(n).collect()
}

fn insert_store(
    path: &Path,
    spec: &DemoSpec,
    today: NaiveDate,
    cache_kib: Option<u32>,
) -> Result<(Run, Vec<(EntityKind, usize)>), Error> {
    let mut store = Store::open(path)?;
    store.set_today(Some(today));
    if let Some(kib) = cache_kib {
        store
            .connection()
            .execute_batch(&format!("PRAGMA cache_size = -{kib};"))?;
    }
    let mut it = records(spec, today);
    let mut run = Run {
        write: Duration::ZERO,
        cpu: 0.0,
        generate: Duration::ZERO,
        rows: 0,
    };
    let mut counts = std::collections::BTreeMap::new();
    loop {
        let t = Instant::now();
        let batch = next_batch(&mut it, spec.batch_size);
        run.generate += t.elapsed();
        if batch.is_empty() {
            break;
        }
        run.rows += batch.len();
        for r in &batch {
            *counts.entry(r.kind()).or_insert(0usize) += 1;
        }
        let (t, c) = (Instant::now(), cpu_secs());
        store.write(|w| {
            for r in batch {
                r.apply(w)?;
            }
            Ok(())
        })?;
        run.write += t.elapsed();
        run.cpu += cpu_secs() - c;
    }
    Ok((run, counts.into_iter().collect()))
}

fn insert_bare(path: &Path, spec: &DemoSpec, today: NaiveDate, extra: Extra) -> Result<Run, Error> {
    // The store creates and migrates the schema; then it is left alone.
    drop(Store::open(path)?);
    let mut conn = Connection::open(path)?;
    if extra.log_without_rowid {
        conn.execute_batch(bare::OLD_LOG)?;
    }
    if let Some(shape) = extra.log_shape {
        conn.execute_batch(shape.ddl())?;
    }
    if let Some(mb) = extra.cache_mb {
        conn.execute_batch(&format!("PRAGMA cache_size = -{};", mb * 1024))?;
    }
    let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(96);
    let device = Uuid::now_v7().to_string();
    let user = Uuid::now_v7().to_string();
    let mut seq = 0;
    // Like the store, references checked are remembered across transactions.
    let mut known = std::collections::HashSet::new();
    let mut it = records(spec, today);
    let mut run = Run {
        write: Duration::ZERO,
        cpu: 0.0,
        generate: Duration::ZERO,
        rows: 0,
    };
    loop {
        let t = Instant::now();
        let batch = next_batch(&mut it, spec.batch_size);
        run.generate += t.elapsed();
        if batch.is_empty() {
            break;
        }
        run.rows += batch.len();
        let (t, c) = (Instant::now(), cpu_secs());
        if known.len() > 100_000 {
            // The store's bound on what it remembers (`KnownRefs::MAX`).
            known.clear();
        }
        let tx = conn.transaction()?;
        {
            let mut sink = Bare {
                conn: &tx,
                extra,
                today,
                device: device.clone(),
                user: user.clone(),
                seq,
                known: std::mem::take(&mut known),
            };
            for r in batch {
                r.apply(&mut sink).map_err(|e| e.0)?;
            }
            seq = sink.seq;
            known = std::mem::take(&mut sink.known);
        }
        tx.commit()?;
        run.write += t.elapsed();
        run.cpu += cpu_secs() - c;
    }
    Ok(run)
}

// -------------------------------------------------------------------- search

struct Person {
    id: Uuid,
    name: String,
    id_number: Option<String>,
    school_id: Option<Uuid>,
}

fn sample_people(spec: &DemoSpec, today: NaiveDate) -> Vec<Person> {
    children(spec, today)
        .map(|(id, c)| Person {
            id,
            name: c.name,
            id_number: c.id_number,
            school_id: c.school_id,
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryKind {
    Name,
    Initials,
    Pinyin,
    IdPrefix,
}

impl QueryKind {
    fn label(self) -> &'static str {
        match self {
            QueryKind::Name => "name substring",
            QueryKind::Initials => "pinyin initials",
            QueryKind::Pinyin => "full pinyin prefix",
            QueryKind::IdPrefix => "ID prefix (6–10 digits)",
        }
    }

    fn query(self, p: &Person, rng: &mut impl Rng) -> String {
        let syllables: Vec<&str> = p
            .name
            .as_str()
            .to_pinyin()
            .flatten()
            .map(|s| s.plain())
            .collect();
        match self {
            // A surname alone (张), or a surname and the first given
            // character (王芳).
            QueryKind::Name => {
                let n = if rng.gen_bool(0.5) { 1 } else { 2 };
                p.name.chars().take(n).collect()
            }
            QueryKind::Initials => syllables.iter().filter_map(|s| s.chars().next()).collect(),
            // The surname's pinyin and part of the given name's: zhangs,
            // wangfang.
            QueryKind::Pinyin => {
                let full: String = syllables.concat();
                let min = syllables.first().map_or(1, |s| s.len() + 1).min(full.len());
                let n = rng.gen_range(min..=full.len());
                full[..n].to_string()
            }
            QueryKind::IdPrefix => {
                let id = p.id_number.as_deref().unwrap_or("");
                let n = rng.gen_range(6..=10).min(id.len());
                id[..n].to_string()
            }
        }
    }
}

// -------------------------------------------------------------------- helpers

struct Summary {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Summary {
    /// Nearest-rank percentiles.
    fn of(times: &mut [Duration]) -> Summary {
        times.sort_unstable();
        let at = |q: f64| {
            if times.is_empty() {
                return Duration::ZERO;
            }
            let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len());
            times[rank - 1]
        };
        Summary {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "missed"
    }
}

fn wal(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-wal");
    s.into()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut s = path.as_os_str().to_owned();
        s.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(s));
    }
}

/// A `Vm*` line of /proc/self/status, in kB (0 where there is none).
fn vm_kb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

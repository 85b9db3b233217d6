//! Linux `/proc` helpers: process trees, start times, resident memory.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// One line of `/proc/<pid>/stat` that we care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub comm: String,
    pub ppid: u32,
    /// Start time after boot, in clock ticks.
    pub start_ticks: u64,
}

/// Parse `/proc/<pid>/stat` (the command name may contain spaces and parentheses).
pub fn stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] = state (field 3), rest[1] = ppid (4), rest[19] = starttime (22).
    let ppid = rest.get(1)?.parse().ok()?;
    let start_ticks = rest.get(19)?.parse().ok()?;
    Some(ProcStat {
        pid,
        comm,
        ppid,
        start_ticks,
    })
}

/// Every live process.
pub fn all() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter_map(stat)
        .collect()
}

/// Every descendant of `root` (children, grandchildren, ...), not `root`.
pub fn descendants(root: u32) -> Vec<ProcStat> {
    let procs = all();
    let mut found: Vec<ProcStat> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in procs.iter().filter(|p| p.ppid == parent) {
            if !found.iter().any(|f| f.pid == p.pid) {
                frontier.push(p.pid);
                found.push(p.clone());
            }
        }
    }
    found
}

/// The executable of `pid`.
pub fn exe(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// Which resident-memory figure to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `VmRSS`: every resident page the process maps, shared libraries
    /// included (pages shared by the app and WebKit's helpers count in each).
    Rss,
    /// `Pss` of `smaps_rollup`: each shared page divided among the processes
    /// that map it, so the figures of several processes add up.
    Pss,
    /// `Private_Clean + Private_Dirty` of `smaps_rollup` (USS): what the
    /// process alone holds, freed when it exits.
    Private,
}

/// `metric` of `pid` in KiB.
pub fn memory_kib(pid: u32, metric: Metric) -> Option<u64> {
    match metric {
        Metric::Rss => rss_kib(pid),
        Metric::Pss => rollup_kib(pid, &["Pss:"]),
        Metric::Private => rollup_kib(pid, &["Private_Clean:", "Private_Dirty:"]),
    }
}

/// The sum of `fields` of `/proc/<pid>/smaps_rollup`, in KiB.
fn rollup_kib(pid: u32, fields: &[&str]) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    parse_rollup(&text, fields)
}

fn parse_rollup(text: &str, fields: &[&str]) -> Option<u64> {
    let mut total = 0;
    for field in fields {
        total += text
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())?;
    }
    Some(total)
}

/// `VmHWM` (peak resident set) of `pid` in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

/// Time since boot (`CLOCK_BOOTTIME`, the clock of `/proc/<pid>/stat`'s start time).
pub fn since_boot() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time this thread has used (`CLOCK_THREAD_CPUTIME_ID`): what a
/// stretch of work would take on an idle machine, near enough, when other
/// processes take turns on the cores.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// How long ago `pid` started (tick resolution, usually 10 ms).
pub fn age(pid: u32) -> Option<Duration> {
    let st = stat(pid)?;
    let tps = clock_ticks_per_second();
    let started = Duration::from_nanos(st.start_ticks.saturating_mul(1_000_000_000) / tps);
    since_boot().checked_sub(started)
}

/// Send `signal` to `pid`; false if it is gone.
pub fn signal(pid: u32, signal: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with a positive pid only targets that process.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Whether `pid` still runs: some thread of it is not dead. (When the main
/// thread of a multi-threaded process has exited, the process shows as a
/// zombie while its other threads are still running.)
pub fn alive(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(|t| t.ok()).any(|t| {
        std::fs::read_to_string(t.path().join("stat")).is_ok_and(|s| {
            s.rsplit_once(')').is_some_and(|(_, rest)| {
                !matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))
            })
        })
    })
}

/// Processes among `procs` whose executable is `path`.
pub fn with_exe(procs: &[ProcStat], path: &Path) -> Vec<u32> {
    let want = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    procs
        .iter()
        .filter(|p| exe(p.pid).is_some_and(|e| e == want))
        .map(|p| p.pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLLUP: &str = "55d0c0a0d000-7ffd8f5fe000 ---p 00000000 00:00 0    [rollup]
Rss:              181236 kB
Pss:               95012 kB
Pss_Anon:          60000 kB
Shared_Clean:      80000 kB
Private_Clean:      9000 kB
Private_Dirty:     61000 kB
";

    #[test]
    fn rollup_fields_are_summed_and_a_missing_one_is_none() {
        assert_eq!(parse_rollup(ROLLUP, &["Pss:"]), Some(95012));
        assert_eq!(
            parse_rollup(ROLLUP, &["Private_Clean:", "Private_Dirty:"]),
            Some(70000)
        );
        assert_eq!(parse_rollup(ROLLUP, &["Swap:"]), None);
    }

    #[test]
    fn this_process_has_every_metric() {
        let me = std::process::id();
        for m in [Metric::Rss, Metric::Pss, Metric::Private] {
            assert!(memory_kib(me, m).is_some_and(|k| k > 0), "{m:?}");
        }
        let rss = memory_kib(me, Metric::Rss).unwrap_or(0);
        let private = memory_kib(me, Metric::Private).unwrap_or(u64::MAX);
        assert!(private <= rss);
    }
}

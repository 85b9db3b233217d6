//! Experiment (`--experiments`): the store's search algorithm re-enacted on
//! the same rows, to show where a broad query's time goes. The store keeps
//! every child's search columns in memory, filters them, then selects and
//! sorts the first page with a comparator that builds `(String, String)` keys
//! (two `String` clones per key, two keys per comparison). Here the same
//! filter and selection run twice: with that comparator, and with one that
//! compares the stored keys by reference.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use uuid::Uuid;

struct Entry {
    id: Uuid,
    sort_key: String,
    id_number: String,
    student_number: String,
    deleted: bool,
}

pub struct Outcome {
    pub cloned_p50: Duration,
    pub cloned_p99: Duration,
    pub borrowed_p50: Duration,
    pub borrowed_p99: Duration,
    pub scan_p99: Duration,
}

fn load(conn: &Connection) -> rusqlite::Result<Vec<Entry>> {
    let mut st =
        conn.prepare("SELECT id, sort_key, id_number, student_number, deleted_at FROM child")?;
    let rows = st.query_map([], |r| {
        let id: String = r.get(0)?;
        let id_number: Option<String> = r.get(2)?;
        let deleted: Option<String> = r.get(4)?;
        Ok(Entry {
            id: Uuid::parse_str(&id).unwrap_or_default(),
            sort_key: r.get(1)?,
            id_number: id_number.unwrap_or_default(),
            student_number: r.get(3)?,
            deleted: deleted.is_some(),
        })
    })?;
    rows.collect()
}

fn percentile(v: &mut [Duration], q: f64) -> Duration {
    v.sort_unstable();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Run `prefixes` (ID prefixes) through both comparators; 50 results a page.
pub fn run(conn: &Connection, prefixes: &[String]) -> rusqlite::Result<Outcome> {
    let entries = load(conn)?;
    let mut cloned = Vec::new();
    let mut borrowed = Vec::new();
    let mut scan = Vec::new();
    let limit = 50;
    for q in prefixes {
        for variant in 0..3 {
            let t = Instant::now();
            let mut hits: Vec<&Entry> = entries
                .iter()
                .filter(|e| {
                    !e.deleted
                        && (e.id_number.starts_with(q.as_str())
                            || e.student_number.starts_with(q.as_str()))
                })
                .collect();
            let end = limit.min(hits.len());
            match variant {
                0 => {
                    let key = |e: &&Entry| -> (String, String) {
                        (e.sort_key.clone(), e.sort_key.clone())
                    };
                    let cmp = |a: &&Entry, b: &&Entry| key(a).cmp(&key(b)).then(a.id.cmp(&b.id));
                    if end < hits.len() {
                        hits.select_nth_unstable_by(end, cmp);
                        hits.truncate(end);
                    }
                    hits.sort_by(cmp);
                }
                1 => {
                    let cmp =
                        |a: &&Entry, b: &&Entry| a.sort_key.cmp(&b.sort_key).then(a.id.cmp(&b.id));
                    if end < hits.len() {
                        hits.select_nth_unstable_by(end, cmp);
                        hits.truncate(end);
                    }
                    hits.sort_by(cmp);
                }
                _ => {}
            }
            std::hint::black_box(&hits);
            let e = t.elapsed();
            match variant {
                0 => cloned.push(e),
                1 => borrowed.push(e),
                _ => scan.push(e),
            }
        }
    }
    Ok(Outcome {
        cloned_p50: percentile(&mut cloned, 0.5),
        cloned_p99: percentile(&mut cloned, 0.99),
        borrowed_p50: percentile(&mut borrowed, 0.5),
        borrowed_p99: percentile(&mut borrowed, 0.99),
        scan_p99: percentile(&mut scan, 0.99),
    })
}

//! Experiment (`--experiments`): the store's search algorithm as it was
//! before its entries were kept in name order, re-enacted on the same rows, to
//! show where a broad query's time went.
//!
//! The store kept every child's search columns in memory (one `Entry` with a
//! `ChildSummary` per child, loaded by the same SQL as here, so the memory
//! layout is alike), filters them, then selects and sorts the first page with
//! a comparator that builds `(String, String)` keys: two `String` clones per
//! key, two keys per comparison, each a pointer chase into a 40,000-entry
//! heap. Three variants run on the same queries:
//!
//! 1. as the store did it;
//! 2. the comparator borrowing the keys (`&str`) instead of cloning them;
//! 3. entries kept in name order once, at load: the default sort (by name)
//!    then needs no selection or sort, only the first 50 hits of the scan
//!    (what the store does now).

use std::time::{Duration, Instant};

use rusqlite::Connection;
use shouhu_store::{mask_id, ChildSummary};
use uuid::Uuid;

#[allow(dead_code)]
struct Entry {
    id: Uuid,
    summary: ChildSummary,
    sort_key: String,
    search_keys: String,
    name_lower: String,
    id_number: String,
    student_number: String,
    birth_date: String,
    updated_at: String,
    deleted: bool,
}

pub struct Outcome {
    pub variants: [(Duration, Duration); 3],
    pub scan_p99: Duration,
}

pub const LABELS: [&str; 3] = [
    "as the store did: select + sort with a comparator cloning `String` keys",
    "comparator borrowing the keys",
    "entries kept in name order at load: first 50 hits of the scan, no sort",
];

fn load(conn: &Connection) -> rusqlite::Result<Vec<Entry>> {
    let mut st = conn.prepare(
        "SELECT id, name, sort_key, search_keys, id_number, student_number, gender, date, school_id, township, grade, class_name, left_behind_type, guardianship_type, status, updated_at, deleted_at FROM child",
    )?;
    let rows = st.query_map([], |r| {
        let id: String = r.get(0)?;
        let id = Uuid::parse_str(&id).unwrap_or_default();
        let name: String = r.get(1)?;
        let id_number: Option<String> = r.get(4)?;
        let school: Option<String> = r.get(8)?;
        let birth: Option<String> = r.get(7)?;
        let deleted: Option<String> = r.get(16)?;
        Ok(Entry {
            id,
            name_lower: name.to_lowercase(),
            summary: ChildSummary {
                id,
                name,
                gender: r.get(6)?,
                birth_date: birth.clone(),
                id_number_masked: id_number.as_deref().map(mask_id),
                school_id: school.and_then(|s| Uuid::parse_str(&s).ok()),
                township: r.get(9)?,
                grade: r.get(10)?,
                class_name: r.get(11)?,
                left_behind_type: r.get(12)?,
                guardianship_type: r.get(13)?,
                status: r.get(14)?,
            },
            sort_key: r.get(2)?,
            search_keys: r.get(3)?,
            id_number: id_number.unwrap_or_default(),
            student_number: r.get(5)?,
            birth_date: birth.unwrap_or_default(),
            updated_at: r.get(15)?,
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

fn matches(e: &Entry, q: &str) -> bool {
    !e.deleted && (e.id_number.starts_with(q) || e.student_number.starts_with(q))
}

/// Run `prefixes` (ID prefixes) through each variant; 50 results a page.
pub fn run(conn: &Connection, prefixes: &[String]) -> rusqlite::Result<Outcome> {
    let entries = load(conn)?;
    let mut ordered = load(conn)?;
    ordered.sort_by(|a, b| a.sort_key.cmp(&b.sort_key).then(a.id.cmp(&b.id)));
    let mut times: [Vec<Duration>; 4] = Default::default();
    let limit = 50;
    for q in prefixes {
        for (variant, times) in times.iter_mut().enumerate() {
            let t = Instant::now();
            let page: Vec<ChildSummary> = match variant {
                0 | 1 => {
                    let mut hits: Vec<&Entry> = entries.iter().filter(|e| matches(e, q)).collect();
                    let end = limit.min(hits.len());
                    if variant == 0 {
                        let key = |e: &&Entry| -> (String, String) {
                            (e.sort_key.clone(), e.sort_key.clone())
                        };
                        let cmp =
                            |a: &&Entry, b: &&Entry| key(a).cmp(&key(b)).then(a.id.cmp(&b.id));
                        if end < hits.len() {
                            hits.select_nth_unstable_by(end, cmp);
                            hits.truncate(end);
                        }
                        hits.sort_by(cmp);
                    } else {
                        let cmp = |a: &&Entry, b: &&Entry| {
                            a.sort_key.cmp(&b.sort_key).then(a.id.cmp(&b.id))
                        };
                        if end < hits.len() {
                            hits.select_nth_unstable_by(end, cmp);
                            hits.truncate(end);
                        }
                        hits.sort_by(cmp);
                    }
                    hits.iter().map(|e| e.summary.clone()).collect()
                }
                2 => {
                    let mut total = 0usize;
                    let mut page = Vec::with_capacity(limit);
                    for e in ordered.iter().filter(|e| matches(e, q)) {
                        if total < limit {
                            page.push(e.summary.clone());
                        }
                        total += 1;
                    }
                    std::hint::black_box(total);
                    page
                }
                _ => {
                    let hits = entries.iter().filter(|e| matches(e, q)).count();
                    std::hint::black_box(hits);
                    Vec::new()
                }
            };
            std::hint::black_box(&page);
            times.push(t.elapsed());
        }
    }
    let [a, b, c, scan] = &mut times;
    Ok(Outcome {
        variants: [
            (percentile(a, 0.5), percentile(a, 0.99)),
            (percentile(b, 0.5), percentile(b, 0.99)),
            (percentile(c, 0.5), percentile(c, 0.99)),
        ],
        scan_p99: percentile(scan, 0.99),
    })
}

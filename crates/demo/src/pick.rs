//! Small seeded-choice helpers.

use chrono::{Days, NaiveDate};
use rand::Rng;

/// One element, uniformly. `items` must not be empty (all callers pass
/// constant, non-empty tables).
pub fn pick<T: Copy>(rng: &mut impl Rng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

/// One element by integer weight. Weights must not all be zero.
pub fn pick_weighted<T: Copy>(rng: &mut impl Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (item, w) in items {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

/// `k` distinct indices of `0..n` (all of them when `k >= n`), in order.
pub fn sample_indices(rng: &mut impl Rng, n: usize, k: usize) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    let mut v = rand::seq::index::sample(rng, n, k).into_vec();
    v.sort_unstable();
    v
}

/// A date `days` before `d` (saturating at `d` itself, which never happens
/// for the ranges used here).
pub fn days_before(d: NaiveDate, days: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(days)).unwrap_or(d)
}

pub fn days_after(d: NaiveDate, days: u64) -> NaiveDate {
    d.checked_add_days(Days::new(days)).unwrap_or(d)
}

/// A uniformly random date in `from..=to` (`from` when the range is empty).
pub fn date_between(rng: &mut impl Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days();
    if span <= 0 {
        return from;
    }
    days_after(from, rng.gen_range(0..=span) as u64)
}

/// A mobile number: a real carrier prefix and eight random digits.
pub fn mobile(rng: &mut impl Rng) -> String {
    const PREFIXES: &[&str] = &[
        "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
        "156", "157", "158", "159", "166", "173", "177", "180", "181", "182", "183", "185", "186",
        "187", "188", "189", "191", "198", "199",
    ];
    format!(
        "{}{:08}",
        pick(rng, PREFIXES),
        rng.gen_range(0..100_000_000u32)
    )
}

//! Retry waits: exponential with jitter, so that thirty laptops that lost
//! the county link together do not all come back in the same second.

use std::time::Duration;

use rand::Rng;

/// The wait before retry number `attempt` (1-based): the exponential step
/// `base·2^(attempt−1)`, capped at `max`, of which the second half is random.
/// A server's `Retry-After` (capped at `max`) is a floor.
pub(crate) fn delay(
    attempt: u32,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    rng: &mut impl Rng,
) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    let step = base.saturating_mul(1u32 << exp).min(max);
    let half = step / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    let d = half + Duration::from_millis(rng.gen_range(0..=jitter_ms));
    match retry_after {
        Some(r) => d.max(r.min(max)),
        None => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn grows_exponentially_within_jitter_and_cap() {
        let mut rng = StdRng::seed_from_u64(7);
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 1..=10u32 {
            let step = (base * 2u32.pow(attempt - 1)).min(max);
            for _ in 0..50 {
                let d = delay(attempt, base, max, None, &mut rng);
                assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn retry_after_is_a_floor_capped_at_max() {
        let mut rng = StdRng::seed_from_u64(1);
        let base = Duration::from_millis(10);
        let max = Duration::from_secs(5);
        let d = delay(1, base, max, Some(Duration::from_secs(3)), &mut rng);
        assert_eq!(d, Duration::from_secs(3));
        let d = delay(1, base, max, Some(Duration::from_secs(3600)), &mut rng);
        assert_eq!(d, max);
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let mut rng = StdRng::seed_from_u64(2);
        let d = delay(
            u32::MAX,
            Duration::from_secs(1),
            Duration::from_secs(30),
            None,
            &mut rng,
        );
        assert!(d <= Duration::from_secs(30));
    }
}

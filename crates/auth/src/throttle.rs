//! Growing delays after failed log-ins.
//!
//! The first [`FREE_ATTEMPTS`] failures cost nothing (typos happen); after that
//! each failure doubles the wait, from [`FIRST_DELAY_SECS`] up to
//! [`MAX_DELAY_SECS`]. A success resets it. The state is plain data that the
//! caller stores with the user record, so a restarted app does not forget it,
//! and every function takes `now`, so tests need no clock.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::AuthError;

pub const FREE_ATTEMPTS: u32 = 3;
pub const FIRST_DELAY_SECS: i64 = 5;
pub const MAX_DELAY_SECS: i64 = 15 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Throttle {
    pub failures: u32,
    pub last_failure_at: Option<DateTime<Utc>>,
}

impl Throttle {
    /// The wait after `failures` consecutive failures.
    pub fn delay_after(failures: u32) -> Duration {
        if failures < FREE_ATTEMPTS {
            return Duration::zero();
        }
        let doublings = (failures - FREE_ATTEMPTS).min(20);
        let secs = FIRST_DELAY_SECS.saturating_mul(1i64 << doublings);
        Duration::seconds(secs.min(MAX_DELAY_SECS))
    }

    /// Ok when an attempt may be made at `now`; otherwise how long to wait.
    /// A clock set backwards (now before the last failure) waits the full delay
    /// from now rather than letting the attempt through.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), AuthError> {
        let Some(last) = self.last_failure_at else {
            return Ok(());
        };
        let delay = Self::delay_after(self.failures);
        if delay.is_zero() {
            return Ok(());
        }
        let waited = now - last;
        let remaining = if waited < Duration::zero() {
            delay
        } else {
            delay - waited
        };
        if remaining > Duration::zero() {
            let secs = remaining.num_milliseconds().div_euclid(1000)
                + i64::from(remaining.num_milliseconds().rem_euclid(1000) > 0);
            Err(AuthError::LockedOut {
                retry_after_secs: u64::try_from(secs).unwrap_or(0),
            })
        } else {
            Ok(())
        }
    }

    pub fn record_failure(&mut self, now: DateTime<Utc>) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure_at = Some(now);
    }

    pub fn record_success(&mut self) {
        *self = Throttle::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn delays_grow_and_cap() {
        let secs: Vec<i64> = (0..14)
            .map(|n| Throttle::delay_after(n).num_seconds())
            .collect();
        assert_eq!(
            secs,
            [0, 0, 0, 5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900]
        );
        assert_eq!(Throttle::delay_after(u32::MAX).num_seconds(), 900);
    }

    #[test]
    fn locked_until_the_delay_passes_then_reset_by_success() {
        let mut th = Throttle::default();
        for i in 0..3 {
            assert_eq!(th.check(t0() + Duration::seconds(i)), Ok(()));
            th.record_failure(t0() + Duration::seconds(i));
        }
        // Third failure at t0+2: 5 s wait.
        assert_eq!(
            th.check(t0() + Duration::seconds(3)),
            Err(AuthError::LockedOut {
                retry_after_secs: 4
            })
        );
        assert_eq!(th.check(t0() + Duration::seconds(7)), Ok(()));
        th.record_failure(t0() + Duration::seconds(7));
        assert_eq!(
            th.check(t0() + Duration::seconds(8)).map_err(|e| e.code()),
            Err("auth.locked_out")
        );
        th.record_success();
        assert_eq!(th.check(t0() + Duration::seconds(8)), Ok(()));
        assert_eq!(th.failures, 0);
    }

    #[test]
    fn a_clock_set_backwards_does_not_unlock() {
        let mut th = Throttle::default();
        for _ in 0..5 {
            th.record_failure(t0());
        }
        assert_eq!(
            th.check(t0() - Duration::days(1)),
            Err(AuthError::LockedOut {
                retry_after_secs: 20
            })
        );
    }
}

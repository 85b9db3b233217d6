//! Hybrid logical clock. A timestamp is `physical_ms << 16 | counter` in one `u64`:
//! it orders like wall-clock milliseconds when clocks agree and never goes
//! backwards on one device. Laptop clocks in villages are off by days, so the
//! clock *never rejects* a remote timestamp, however far ahead; the server's
//! order is the truth for merging, the HLC only orders one device's own changes
//! and gives humans an approximate "when".

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Hlc(pub u64);

impl Hlc {
    pub fn new(physical_ms: u64, counter: u16) -> Hlc {
        Hlc((physical_ms << 16) | u64::from(counter))
    }
    pub fn physical_ms(self) -> u64 {
        self.0 >> 16
    }
    pub fn counter(self) -> u16 {
        (self.0 & 0xFFFF) as u16
    }
    /// Stored in SQLite as a signed 64-bit integer; physical ms fit 47 bits.
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }
    pub fn from_i64(v: i64) -> Hlc {
        Hlc(v as u64)
    }
}

/// The clock state: the last timestamp issued or observed.
#[derive(Debug, Clone, Copy, Default)]
pub struct HlcClock {
    last: Hlc,
}

impl HlcClock {
    pub fn new(last: Hlc) -> Self {
        Self { last }
    }

    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A new timestamp for a local event at wall time `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        let wall = Hlc::new(now_ms, 0);
        self.last = if wall > self.last {
            wall
        } else {
            Hlc(self.last.0 + 1)
        };
        self.last
    }

    /// Take a remote timestamp into account (never rejected).
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> Hlc {
        let wall = Hlc::new(now_ms, 0);
        let max = wall.max(self.last).max(remote);
        self.last = if max == wall && wall > self.last && wall > remote {
            wall
        } else {
            Hlc(max.0 + 1)
        };
        self.last
    }
}

pub fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_even_when_wall_clock_goes_back() {
        let mut c = HlcClock::default();
        let a = c.tick(1_000);
        let b = c.tick(500);
        let d = c.tick(500);
        assert!(a < b && b < d);
        assert_eq!(b.physical_ms(), 1_000);
    }

    #[test]
    fn remote_far_ahead_is_accepted() {
        let mut c = HlcClock::default();
        let three_days = 3 * 24 * 3600 * 1000;
        let r = Hlc::new(10_000 + three_days, 5);
        let o = c.observe(r, 10_000);
        assert!(o > r);
        assert!(c.tick(10_001) > o);
    }
}

//! What a caller can tune ([`SyncOptions`]) and the [`CancelToken`] that stops
//! a sync between (or during) requests without losing anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shouhu_protocol::{MAX_PULL_LIMIT, MAX_PUSH_CHANGES};

use crate::error::SyncError;

/// Knobs of one sync. `SyncOptions::default()` suits a slow village link.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOptions {
    /// Outbox entries per push request (1..=2000, the server's limit).
    pub push_batch: usize,
    /// Entries per pull page (1..=5000, the server's limit).
    pub pull_page: usize,
    /// Retries of one request after a transient failure (connection refused
    /// or dropped, timeout, 5xx, 429). Each retry waits longer.
    pub max_retries: u32,
    /// The first retry waits about this long; each next one twice as long.
    pub backoff_base: Duration,
    /// No retry waits longer than this (nor longer than a `Retry-After`
    /// capped at this).
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    /// The whole of one request: sending the body and reading the answer.
    pub request_timeout: Duration,
    /// Push bodies larger than this many bytes are gzip-compressed.
    pub gzip_above: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            push_batch: 500,
            pull_page: 1000,
            max_retries: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(120),
            gzip_above: 1024,
        }
    }
}

impl SyncOptions {
    pub(crate) fn push_batch(&self) -> usize {
        self.push_batch.clamp(1, MAX_PUSH_CHANGES)
    }

    pub(crate) fn pull_page(&self) -> usize {
        self.pull_page.clamp(1, MAX_PULL_LIMIT)
    }
}

/// A cheap, cloneable cancellation flag. Cancelling makes the running sync
/// return [`SyncError::Cancelled`] at its next check: before each request,
/// during a retry wait, or by abandoning the request in flight. Nothing is
/// lost either way: the store only changes after a whole answer arrived (an
/// acknowledgement, or a page applied with its cursor in one transaction),
/// and a push the server applied but whose answer was abandoned is simply
/// resent next time and recognised as a duplicate.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn check(&self) -> Result<(), SyncError> {
        if self.is_cancelled() {
            Err(SyncError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Completes once cancelled (polls the flag; cheap at this interval).
    pub(crate) async fn cancelled(&self) {
        while !self.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let a = CancelToken::new();
        let b = a.clone();
        assert!(a.check().is_ok());
        b.cancel();
        assert!(a.is_cancelled());
        assert!(matches!(a.check(), Err(SyncError::Cancelled)));
    }

    #[test]
    fn sizes_are_clamped_to_the_server_limits() {
        let o = SyncOptions {
            push_batch: 0,
            pull_page: 1_000_000,
            ..Default::default()
        };
        assert_eq!(o.push_batch(), 1);
        assert_eq!(o.pull_page(), MAX_PULL_LIMIT);
    }
}

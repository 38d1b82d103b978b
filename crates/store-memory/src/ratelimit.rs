//! The in-process rate limiter: the single-node adapter of
//! [`RateLimiter`](fleetpass_ports::ratelimit::RateLimiter), and the local fallback of a
//! shared one.
//!
//! One counter per key, holding only its current window: a hit in a later window
//! replaces it, so memory grows with the keys active in a window, and `purge` drops the
//! ones whose window ended.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_ports::RepoError;
use fleetpass_ports::ratelimit::{Decision, Limit, RateLimiter};

/// A key's counter in one window.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Unix seconds of the window's start.
    start: i64,
    /// Unix seconds of its end.
    end: i64,
    hits: u64,
}

/// The in-process limiter. Share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    windows: Mutex<HashMap<String, Window>>,
}

impl MemoryRateLimiter {
    /// A limiter with no counts.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Window>> {
        // Counters are plain integers: whatever a panic left is still a valid count.
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The hits `window` holds for the window starting at `start` (none if it is another).
fn hits_in(window: Option<&Window>, start: i64) -> u64 {
    window.filter(|w| w.start == start).map_or(0, |w| w.hits)
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn add(
        &self,
        key: &str,
        limit: Limit,
        hits: u32,
        now: Timestamp,
    ) -> Result<u64, RepoError> {
        let start = limit.window_start(now);
        let mut windows = self.lock();
        let hits = hits_in(windows.get(key), start).saturating_add(u64::from(hits));
        windows.insert(
            key.to_owned(),
            Window {
                start,
                end: start + i64::from(limit.window_secs.get()),
                hits,
            },
        );
        Ok(hits)
    }

    async fn peek(&self, key: &str, limit: Limit, now: Timestamp) -> Result<Decision, RepoError> {
        let hits = hits_in(self.lock().get(key), limit.window_start(now));
        Ok(Decision::from_count(limit, hits.saturating_add(1), now))
    }

    async fn purge(&self, now: Timestamp) -> Result<u64, RepoError> {
        let mut windows = self.lock();
        let before = windows.len();
        let now = now.unix_timestamp();
        windows.retain(|_, w| w.end > now);
        Ok(u64::try_from(before - windows.len()).unwrap_or(u64::MAX))
    }
}

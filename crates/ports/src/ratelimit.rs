//! The rate-limiter port (spec §1): fixed-window counters, shared by every replica when
//! the backend is shared.
//!
//! Windows are aligned to their size on the Unix epoch (a 60 s window starts on a whole
//! minute), so every replica and every request agrees on which window a moment falls
//! in, and the seconds until the window resets follow from the clock alone: with a
//! pinned clock `Retry-After` is exact. Every adapter computes its answer with
//! [`Decision::from_count`], so the arithmetic cannot drift between them.

use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use fleetpass_domain::Timestamp;

use crate::RepoError;

mod leased;

pub use leased::{Leased, lease_size};

/// A limit: at most `max` hits per window of `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Hits allowed per window.
    pub max: u32,
    /// The window's length in seconds.
    pub window_secs: NonZeroU32,
}

impl Limit {
    /// `max` hits a minute.
    pub const fn per_minute(max: u32) -> Self {
        Self {
            max,
            window_secs: NonZeroU32::MIN.saturating_add(59),
        }
    }

    /// The start of the window `now` falls in, in Unix seconds.
    pub fn window_start(&self, now: Timestamp) -> i64 {
        let size = i64::from(self.window_secs.get());
        now.unix_timestamp().div_euclid(size) * size
    }

    /// The start of the window `now` falls in.
    pub fn window_start_at(&self, now: Timestamp) -> Timestamp {
        // Every whole second of a `Timestamp` is a valid Unix time.
        Timestamp::from_unix_timestamp(self.window_start(now)).unwrap_or(now)
    }

    /// The end of the window `now` falls in (the start of the next).
    pub fn window_end_at(&self, now: Timestamp) -> Timestamp {
        self.window_start_at(now) + time::Duration::seconds(i64::from(self.window_secs.get()))
    }
}

/// The answer to one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the hit is within the limit.
    pub allowed: bool,
    /// The limit (`RateLimit-Limit`).
    pub limit: u32,
    /// Hits left in this window (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Whole seconds until the window resets, at least 1 (`RateLimit-Reset`, and
    /// `Retry-After` when refused).
    pub reset_after_secs: u64,
}

impl Decision {
    /// The decision for a window that has seen `count` hits (this one included), at
    /// `now`.
    pub fn from_count(limit: Limit, count: u64, now: Timestamp) -> Self {
        let end = limit.window_end_at(now);
        let left = u128::try_from((end - now).whole_nanoseconds()).unwrap_or(0);
        // Round up: a client that waits this long is in the next window.
        let reset_after_secs = u64::try_from(left.div_ceil(1_000_000_000))
            .unwrap_or(u64::MAX)
            .max(1);
        Self {
            allowed: count <= u64::from(limit.max),
            limit: limit.max,
            remaining: u32::try_from(u64::from(limit.max).saturating_sub(count))
                .unwrap_or(limit.max),
            reset_after_secs,
        }
    }
}

/// Fixed-window counters.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one hit of `key` in the window `now` falls in and decides it.
    ///
    /// # Errors
    /// As [`RateLimiter::add`]; the answer is [`Decision::from_count`] of the count
    /// after this hit.
    async fn hit(&self, key: &str, limit: Limit, now: Timestamp) -> Result<Decision, RepoError> {
        let count = self.add(key, limit, 1, now).await?;
        Ok(Decision::from_count(limit, count, now))
    }

    /// Adds `hits` to the count of `key` in the window `now` falls in, at once, and
    /// returns the count after them.
    ///
    /// # Errors
    /// - MUST count atomically: concurrent adds on one key and window (from any number
    ///   of processes sharing the backend) each see the count after their own hits,
    ///   and the counts seen are distinct partial sums of all of them.
    /// - MUST count a window from zero once `now` is past its end, and keep keys apart.
    /// - MUST return `RepoError::Unavailable` when the backend cannot be reached.
    async fn add(
        &self,
        key: &str,
        limit: Limit,
        hits: u32,
        now: Timestamp,
    ) -> Result<u64, RepoError>;

    /// Decides as if one more hit came, without counting it: whether `key` is already
    /// at its limit (`allowed` is false once `limit.max` hits were counted).
    ///
    /// # Errors
    /// - MUST NOT change any count.
    /// - MUST return `RepoError::Unavailable` when the backend cannot be reached.
    async fn peek(&self, key: &str, limit: Limit, now: Timestamp) -> Result<Decision, RepoError>;

    /// Forgets every window that ended at or before `now`. Returns how many went. Safe
    /// to run on several replicas at once.
    ///
    /// # Errors
    /// - MUST NOT forget a window that has not ended.
    /// - MUST return `RepoError::Unavailable` when the backend cannot be reached.
    async fn purge(&self, now: Timestamp) -> Result<u64, RepoError>;
}

/// A shared limiter that falls back to a local one while the shared backend is down:
/// limits then hold per replica instead of for the service as a whole, which is better
/// than refusing everything (the limiter would turn a database blip into an outage) or
/// allowing everything (an abusive client would get through unmetered).
pub struct WithFallback {
    shared: Arc<dyn RateLimiter>,
    local: Arc<dyn RateLimiter>,
}

impl WithFallback {
    /// `shared` first, `local` when `shared` fails.
    pub fn new(shared: Arc<dyn RateLimiter>, local: Arc<dyn RateLimiter>) -> Self {
        Self { shared, local }
    }
}

impl std::fmt::Debug for WithFallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WithFallback")
    }
}

#[async_trait]
impl RateLimiter for WithFallback {
    async fn add(
        &self,
        key: &str,
        limit: Limit,
        hits: u32,
        now: Timestamp,
    ) -> Result<u64, RepoError> {
        match self.shared.add(key, limit, hits, now).await {
            Ok(count) => Ok(count),
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limiter failed; limiting per replica");
                self.local.add(key, limit, hits, now).await
            }
        }
    }

    async fn peek(&self, key: &str, limit: Limit, now: Timestamp) -> Result<Decision, RepoError> {
        match self.shared.peek(key, limit, now).await {
            Ok(decision) => Ok(decision),
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limiter failed; limiting per replica");
                self.local.peek(key, limit, now).await
            }
        }
    }

    async fn purge(&self, now: Timestamp) -> Result<u64, RepoError> {
        let local = self.local.purge(now).await?;
        Ok(local + self.shared.purge(now).await?)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn windows_align_to_their_size() {
        let limit = Limit::per_minute(5);
        assert_eq!(limit.window_secs.get(), 60);
        let now = datetime!(2026-11-22 10:00:20 UTC);
        assert_eq!(limit.window_start_at(now), datetime!(2026-11-22 10:00 UTC));
        assert_eq!(limit.window_end_at(now), datetime!(2026-11-22 10:01 UTC));
        let on_the_edge = datetime!(2026-11-22 10:01 UTC);
        assert_eq!(limit.window_start_at(on_the_edge), on_the_edge);
    }

    #[test]
    fn decisions_count_down_and_reset_is_rounded_up() {
        let limit = Limit::per_minute(5);
        let now = datetime!(2026-11-22 10:00:20 UTC);
        let d = Decision::from_count(limit, 1, now);
        assert_eq!((d.allowed, d.remaining, d.reset_after_secs), (true, 4, 40));
        let d = Decision::from_count(limit, 5, now);
        assert_eq!((d.allowed, d.remaining), (true, 0));
        let d = Decision::from_count(limit, 6, now);
        assert_eq!((d.allowed, d.remaining), (false, 0));
        let later = datetime!(2026-11-22 10:00:20.5 UTC);
        assert_eq!(Decision::from_count(limit, 1, later).reset_after_secs, 40);
        let start = datetime!(2026-11-22 10:01 UTC);
        assert_eq!(Decision::from_count(limit, 1, start).reset_after_secs, 60);
    }
}

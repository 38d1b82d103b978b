//! [`Leased`]: a shared limiter's budget spent in leases, so that in the steady state a
//! request is decided in process while the limit still holds for the whole service.
//!
//! A replica that sees the first hit of a key in a window takes a lease: it adds a
//! block of hits to the shared count at once ([`RateLimiter::add`]) and is granted what
//! of that block fits under the limit. Later hits spend the lease locally; when it is
//! spent, the next hit takes another. Once the shared count reaches the limit, a lease
//! grants nothing and the replica refuses the key locally until the window ends, so
//! 429s cost no round trip either.
//!
//! The shared count is the sum of everything leased, so the service never admits more
//! than the limit in a window. What a lease held but did not spend when the window
//! ends is lost: across `n` replicas at most `n × (lease − 1)` hits of a window may be
//! refused although the limit was not reached. Leases are sized to the limit
//! ([`lease_size`]), so small limits lease one hit at a time and stay exact.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use fleetpass_domain::Timestamp;

use super::{Decision, Limit, RateLimiter};
use crate::RepoError;

/// The hits one lease asks for: 1/32 of the limit, at least 1 and at most 256. A limit
/// under 64 a window leases one hit at a time (every hit is a round trip, and exact);
/// the default 300 a minute leases 9; the largest limits one round trip per 256 hits.
pub fn lease_size(limit: Limit) -> u32 {
    (limit.max / 32).clamp(1, 256)
}

/// What this replica holds of a key's budget in one window.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// The window's start (Unix seconds).
    window: i64,
    /// Leased hits not yet spent.
    left: u32,
    /// The shared count after this replica's last lease.
    shared: u64,
    /// The last lease was cut short: the window's budget is gone.
    spent: bool,
}

/// A [`RateLimiter`] that spends the budget of a shared one in leases (see the module
/// docs). Peeks and purges go to the shared limiter.
pub struct Leased {
    shared: Arc<dyn RateLimiter>,
    budgets: Mutex<HashMap<String, Budget>>,
}

impl Leased {
    /// Leases from `shared`.
    pub fn new(shared: Arc<dyn RateLimiter>) -> Self {
        Self {
            shared,
            budgets: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one leased hit of `key` if this replica holds one, or refuses it when the
    /// window's budget is known to be gone; `None` when a lease must be taken.
    fn spend(&self, key: &str, limit: Limit, now: Timestamp) -> Option<Decision> {
        let window = limit.window_start(now);
        // Budgets are plain numbers: whatever a panic left is still a valid count.
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let budget = budgets.get_mut(key).filter(|b| b.window == window)?;
        if budget.left > 0 {
            budget.left -= 1;
            Some(local_decision(limit, budget, now))
        } else if budget.spent {
            Some(Decision::from_count(
                limit,
                u64::from(limit.max).saturating_add(1),
                now,
            ))
        } else {
            None
        }
    }
}

/// The decision for a hit spent from `budget`: what is left is this replica's lease
/// plus what the shared count had left at the last lease (an upper bound when other
/// replicas lease too; exact on one).
fn local_decision(limit: Limit, budget: &Budget, now: Timestamp) -> Decision {
    let unleased = u64::from(limit.max).saturating_sub(budget.shared);
    let left = unleased.saturating_add(u64::from(budget.left));
    Decision::from_count(limit, u64::from(limit.max).saturating_sub(left), now)
}

impl std::fmt::Debug for Leased {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leased").finish_non_exhaustive()
    }
}

#[async_trait]
impl RateLimiter for Leased {
    async fn hit(&self, key: &str, limit: Limit, now: Timestamp) -> Result<Decision, RepoError> {
        if let Some(decision) = self.spend(key, limit, now) {
            return Ok(decision);
        }
        let want = lease_size(limit);
        let after = self.shared.add(key, limit, want, now).await?;
        let before = after.saturating_sub(u64::from(want));
        let fits = u64::from(limit.max).saturating_sub(before);
        let granted = u32::try_from(fits.min(u64::from(want))).unwrap_or(want);
        if granted == 0 {
            // The window is used up; remember it, so the next refusals are local.
            let budget = Budget {
                window: limit.window_start(now),
                left: 0,
                shared: after,
                spent: true,
            };
            self.budgets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.to_owned(), budget);
            return Ok(Decision::from_count(limit, before.saturating_add(1), now));
        }
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let window = limit.window_start(now);
        // Concurrent hits of one key may each have leased: their leases add up.
        let held = budgets
            .get(key)
            .filter(|b| b.window == window)
            .map_or(0, |b| b.left);
        let budget = Budget {
            window,
            left: held.saturating_add(granted - 1),
            shared: after,
            spent: granted < want,
        };
        budgets.insert(key.to_owned(), budget);
        Ok(local_decision(limit, &budget, now))
    }

    async fn add(
        &self,
        key: &str,
        limit: Limit,
        hits: u32,
        now: Timestamp,
    ) -> Result<u64, RepoError> {
        self.shared.add(key, limit, hits, now).await
    }

    async fn peek(&self, key: &str, limit: Limit, now: Timestamp) -> Result<Decision, RepoError> {
        self.shared.peek(key, limit, now).await
    }

    async fn purge(&self, now: Timestamp) -> Result<u64, RepoError> {
        // Budgets of ended windows are worth nothing; a minute is the longest window.
        let current = now.unix_timestamp() - 60;
        self.budgets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, b| b.window > current);
        self.shared.purge(now).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use time::macros::datetime;

    use super::*;

    /// One shared counter for every key, counting the round trips made to it.
    #[derive(Default)]
    struct Shared {
        count: Mutex<HashMap<(String, i64), u64>>,
        trips: AtomicU64,
    }

    #[async_trait]
    impl RateLimiter for Shared {
        async fn add(
            &self,
            key: &str,
            limit: Limit,
            hits: u32,
            now: Timestamp,
        ) -> Result<u64, RepoError> {
            self.trips.fetch_add(1, Ordering::SeqCst);
            let mut count = self.count.lock().unwrap();
            let c = count
                .entry((key.to_owned(), limit.window_start(now)))
                .or_default();
            *c += u64::from(hits);
            Ok(*c)
        }

        async fn peek(&self, _: &str, _: Limit, _: Timestamp) -> Result<Decision, RepoError> {
            unreachable!("not used")
        }

        async fn purge(&self, _: Timestamp) -> Result<u64, RepoError> {
            Ok(0)
        }
    }

    const NOW: Timestamp = datetime!(2026-11-22 10:00:30 UTC);

    /// Hits `n` times alternating over `replicas`; returns how many were allowed.
    async fn allowed(replicas: &[Leased], limit: Limit, n: usize) -> usize {
        let mut allowed = 0;
        for i in 0..n {
            let replica = &replicas[i % replicas.len()];
            if replica.hit("k", limit, NOW).await.unwrap().allowed {
                allowed += 1;
            }
        }
        allowed
    }

    #[tokio::test]
    async fn small_limits_stay_exact_across_replicas() {
        let shared = Arc::new(Shared::default());
        let replicas = [Leased::new(shared.clone()), Leased::new(shared.clone())];
        let limit = Limit::per_minute(5);
        assert_eq!(lease_size(limit), 1);
        assert_eq!(allowed(&replicas, limit, 20).await, 5);
        let d = replicas[0]
            .hit("k", Limit::per_minute(5), NOW)
            .await
            .unwrap();
        assert_eq!((d.allowed, d.reset_after_secs), (false, 30));
    }

    #[tokio::test]
    async fn large_limits_are_decided_in_process_and_never_exceeded() {
        let shared = Arc::new(Shared::default());
        let replicas = [Leased::new(shared.clone()), Leased::new(shared.clone())];
        let limit = Limit::per_minute(10_000);
        let lease = lease_size(limit);
        assert_eq!(lease, 256);
        let got = allowed(&replicas, limit, 20_000).await;
        assert!(got <= 10_000, "never more than the limit: {got}");
        let lost = 2 * (lease as usize - 1);
        assert!(
            got >= 10_000 - lost,
            "at most a lease per replica is lost: {got}"
        );
        let trips = shared.trips.load(Ordering::SeqCst);
        assert!(
            trips < 100,
            "one round trip per lease, then local refusals: {trips}"
        );
    }

    #[tokio::test]
    async fn one_replica_reports_exact_remaining_hits() {
        let shared = Arc::new(Shared::default());
        let leased = Leased::new(shared);
        let limit = Limit::per_minute(300);
        for expected in (0..300).rev() {
            let d = leased.hit("k", limit, NOW).await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, expected);
        }
        assert!(!leased.hit("k", limit, NOW).await.unwrap().allowed);
        let next = NOW + time::Duration::minutes(1);
        assert!(
            leased.hit("k", limit, next).await.unwrap().allowed,
            "a new window"
        );
    }
}

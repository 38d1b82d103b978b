//! The contract cases of the two guard ports, [`IdempotencyStore`] and [`RateLimiter`],
//! run against every adapter by [`guard_suite!`](crate::guard_suite) so that the
//! in-process and the PostgreSQL implementations cannot drift apart.
//!
//! Each case panics with a message naming the broken obligation. Cases make their own
//! scopes and keys, so they also hold when they share one backend. Times are pinned:
//! every case starts 20 s into a minute, so window arithmetic is checked exactly.

use fleetpass_domain::Timestamp;
use fleetpass_ports::idempotency::{Begin, Claim, IdempotencyStore, LEASE, REPLAY_WINDOW};
use fleetpass_ports::ratelimit::{Decision, Limit, RateLimiter};
use futures_util::future::join_all;
use time::Duration;
use time::macros::datetime;
use uuid::Uuid;

/// The names of every idempotency case [`guard_suite!`](crate::guard_suite) runs.
pub const IDEMPOTENCY: &[&str] = crate::__guard_cases!(names idempotency);

/// The names of every rate-limiter case [`guard_suite!`](crate::guard_suite) runs.
pub const LIMITER: &[&str] = crate::__guard_cases!(names limiter);

/// When every case starts: 20 s into a minute.
fn t0() -> Timestamp {
    datetime!(2026-11-22 10:00:20 UTC)
}

/// A scope no other case uses.
fn scope() -> String {
    format!("test:{}", Uuid::now_v7())
}

/// A fingerprint made of one repeated byte.
fn fp(byte: u8) -> [u8; 32] {
    [byte; 32]
}

/// A claim on `key` in `scope` at `now`, with a fresh claim id.
fn claim(scope: &str, key: &str, fingerprint: [u8; 32], now: Timestamp) -> Claim {
    Claim::new(
        scope.to_owned(),
        key.to_owned(),
        fingerprint,
        Uuid::now_v7(),
        now,
    )
}

/// A stored response with bytes that are not text, to prove they come back unchanged.
fn response(tag: u8) -> Vec<u8> {
    let mut bytes = vec![0, 255, tag, b'\n', 0x80];
    bytes.extend_from_slice(b"sealed response");
    bytes
}

async fn begin(store: &dyn IdempotencyStore, claim: &Claim, what: &str) -> Begin {
    store
        .begin(claim)
        .await
        .unwrap_or_else(|e| panic!("{what}: begin failed: {e:?}"))
}

async fn complete(store: &dyn IdempotencyStore, claim: &Claim, bytes: &[u8], what: &str) -> bool {
    store
        .complete(&claim.scope, &claim.key, claim.claim_id, bytes)
        .await
        .unwrap_or_else(|e| panic!("{what}: complete failed: {e:?}"))
}

// ---------- idempotency ----------

/// The first claim of a key is `Fresh`; the same request again, while it runs, is
/// `InFlight`.
pub async fn idem_first_claim_is_fresh_then_in_flight(store: &dyn IdempotencyStore) {
    let s = scope();
    let first = claim(&s, "k1", fp(1), t0());
    assert_eq!(begin(store, &first, "first claim").await, Begin::Fresh);
    let again = claim(&s, "k1", fp(1), t0() + Duration::seconds(5));
    assert_eq!(
        begin(store, &again, "same request while the first runs").await,
        Begin::InFlight,
        "a claim with an unexpired lease MUST answer InFlight"
    );
}

/// A completed request replays its stored bytes exactly, as often as asked.
pub async fn idem_complete_then_replay_bytes_unchanged(store: &dyn IdempotencyStore) {
    let s = scope();
    let first = claim(&s, "k", fp(1), t0());
    assert_eq!(begin(store, &first, "claim").await, Begin::Fresh);
    assert!(
        complete(store, &first, &response(1), "complete").await,
        "the holder's complete MUST store the response"
    );
    for n in 0..2 {
        let again = claim(&s, "k", fp(1), t0() + Duration::minutes(n + 1));
        assert_eq!(
            begin(store, &again, "replay").await,
            Begin::Replay(response(1)),
            "a completed request MUST replay the stored bytes unchanged"
        );
    }
}

/// A key used for another request is `Mismatch`, while the first runs and after.
pub async fn idem_different_request_is_mismatch(store: &dyn IdempotencyStore) {
    let s = scope();
    let first = claim(&s, "k", fp(1), t0());
    assert_eq!(begin(store, &first, "claim").await, Begin::Fresh);
    let other = claim(&s, "k", fp(2), t0());
    assert_eq!(
        begin(store, &other, "another request while the first runs").await,
        Begin::Mismatch
    );
    complete(store, &first, &response(1), "complete").await;
    assert_eq!(
        begin(store, &other, "another request after the first completed").await,
        Begin::Mismatch
    );
    // The mismatch left the record alone.
    assert_eq!(
        begin(
            store,
            &claim(&s, "k", fp(1), t0()),
            "the first request again"
        )
        .await,
        Begin::Replay(response(1))
    );
}

/// Keys of different scopes, and different keys of one scope, never meet.
pub async fn idem_scopes_and_keys_are_independent(store: &dyn IdempotencyStore) {
    let (a, b) = (scope(), scope());
    let first = claim(&a, "k", fp(1), t0());
    assert_eq!(begin(store, &first, "scope a").await, Begin::Fresh);
    complete(store, &first, &response(1), "complete in scope a").await;
    assert_eq!(
        begin(store, &claim(&b, "k", fp(2), t0()), "same key, scope b").await,
        Begin::Fresh,
        "another scope's key MUST NOT be seen"
    );
    assert_eq!(
        begin(store, &claim(&a, "k2", fp(2), t0()), "another key, scope a").await,
        Begin::Fresh
    );
}

/// A record counts for exactly the replay window from its claim; after it the key is
/// free for any request.
pub async fn idem_window_expiry_frees_the_key(store: &dyn IdempotencyStore) {
    let s = scope();
    let first = claim(&s, "k", fp(1), t0());
    assert_eq!(begin(store, &first, "claim").await, Begin::Fresh);
    complete(store, &first, &response(1), "complete").await;
    let just_inside = t0() + REPLAY_WINDOW - Duration::seconds(1);
    assert_eq!(
        begin(
            store,
            &claim(&s, "k", fp(1), just_inside),
            "a second before the window closes"
        )
        .await,
        Begin::Replay(response(1))
    );
    let closed = t0() + REPLAY_WINDOW;
    let later = claim(&s, "k", fp(2), closed);
    assert_eq!(
        begin(store, &later, "when the window closes, another request").await,
        Begin::Fresh,
        "a record whose window closed MUST count as absent"
    );
    complete(store, &later, &response(2), "complete the new request").await;
    assert_eq!(
        begin(
            store,
            &claim(&s, "k", fp(2), closed),
            "the new request again"
        )
        .await,
        Begin::Replay(response(2))
    );
}

/// A claim whose lease ran out (its process died) is taken over by the same request;
/// the old holder can then neither complete nor abandon it.
pub async fn idem_expired_lease_is_taken_over(store: &dyn IdempotencyStore) {
    let s = scope();
    let crashed = claim(&s, "k", fp(1), t0());
    assert_eq!(begin(store, &crashed, "claim").await, Begin::Fresh);
    let before = t0() + LEASE - Duration::seconds(1);
    assert_eq!(
        begin(
            store,
            &claim(&s, "k", fp(1), before),
            "a second before the lease ends"
        )
        .await,
        Begin::InFlight
    );
    let after = t0() + LEASE;
    assert_eq!(
        begin(
            store,
            &claim(&s, "k", fp(2), after),
            "another request after the lease"
        )
        .await,
        Begin::Mismatch,
        "an expired lease frees the key only for the same request"
    );
    let retry = claim(&s, "k", fp(1), after);
    assert_eq!(
        begin(store, &retry, "the same request after the lease").await,
        Begin::Fresh,
        "an expired lease MUST be taken over"
    );
    assert!(
        !complete(store, &crashed, &response(1), "the old holder completes").await,
        "a claim taken over MUST NOT be completed by its old holder"
    );
    store
        .abandon(&s, "k", crashed.claim_id)
        .await
        .unwrap_or_else(|e| panic!("abandon by the old holder: {e:?}"));
    assert_eq!(
        begin(
            store,
            &claim(&s, "k", fp(1), after),
            "after the old holder's abandon"
        )
        .await,
        Begin::InFlight,
        "the old holder's abandon MUST change nothing"
    );
    assert!(complete(store, &retry, &response(2), "the new holder completes").await);
    assert_eq!(
        begin(store, &claim(&s, "k", fp(1), after), "replay").await,
        Begin::Replay(response(2))
    );
}

/// Abandoning (a 5xx) frees the key at once, but only for the holder of an uncompleted
/// claim.
pub async fn idem_abandon_frees_the_key(store: &dyn IdempotencyStore) {
    let s = scope();
    let first = claim(&s, "k", fp(1), t0());
    assert_eq!(begin(store, &first, "claim").await, Begin::Fresh);
    store
        .abandon(&s, "k", Uuid::now_v7())
        .await
        .unwrap_or_else(|e| panic!("abandon by a stranger: {e:?}"));
    assert_eq!(
        begin(
            store,
            &claim(&s, "k", fp(1), t0()),
            "after a stranger's abandon"
        )
        .await,
        Begin::InFlight
    );
    store
        .abandon(&s, "k", first.claim_id)
        .await
        .unwrap_or_else(|e| panic!("abandon: {e:?}"));
    let retry = claim(&s, "k", fp(1), t0());
    assert_eq!(
        begin(store, &retry, "retry after abandon").await,
        Begin::Fresh,
        "an abandoned key MUST be free at once"
    );
    complete(store, &retry, &response(1), "complete").await;
    store
        .abandon(&s, "k", retry.claim_id)
        .await
        .unwrap_or_else(|e| panic!("abandon after completion: {e:?}"));
    assert_eq!(
        begin(
            store,
            &claim(&s, "k", fp(1), t0()),
            "after abandoning a completed record"
        )
        .await,
        Begin::Replay(response(1)),
        "abandon MUST NOT delete a completed record"
    );
}

/// Completing twice keeps the first outcome.
pub async fn idem_complete_twice_keeps_the_first(store: &dyn IdempotencyStore) {
    let s = scope();
    let first = claim(&s, "k", fp(1), t0());
    assert_eq!(begin(store, &first, "claim").await, Begin::Fresh);
    assert!(complete(store, &first, &response(1), "complete").await);
    assert!(
        !complete(store, &first, &response(2), "complete again").await,
        "a completed record MUST NOT be overwritten"
    );
    assert_eq!(
        begin(store, &claim(&s, "k", fp(1), t0()), "replay").await,
        Begin::Replay(response(1))
    );
    assert!(
        !complete(
            store,
            &claim(&s, "none", fp(1), t0()),
            &response(3),
            "complete unknown"
        )
        .await,
        "completing a key that was never claimed MUST store nothing"
    );
}

/// Purging drops records whose window closed, and only those.
pub async fn idem_purge_drops_closed_windows_only(store: &dyn IdempotencyStore) {
    let s = scope();
    let old = claim(&s, "old", fp(1), t0());
    let young = claim(&s, "young", fp(1), t0() + Duration::hours(1));
    for c in [&old, &young] {
        assert_eq!(begin(store, c, "claim").await, Begin::Fresh);
        complete(store, c, &response(1), "complete").await;
    }
    let now = t0() + REPLAY_WINDOW;
    let gone = store
        .purge(now)
        .await
        .unwrap_or_else(|e| panic!("purge: {e:?}"));
    assert!(gone >= 1, "purge MUST report what it deleted, got {gone}");
    assert_eq!(
        begin(
            store,
            &claim(&s, "young", fp(1), now),
            "the record in its window"
        )
        .await,
        Begin::Replay(response(1)),
        "purge MUST NOT delete a record whose window is open"
    );
    // The old record is gone: a claim in its own past would see it if it were not.
    assert_eq!(
        begin(store, &claim(&s, "old", fp(2), t0()), "the purged key").await,
        Begin::Fresh,
        "purge MUST delete a record whose window closed"
    );
}

/// Of many concurrent claims of one key exactly one is `Fresh`; the others see it in
/// flight.
pub async fn idem_concurrent_claims_one_fresh(store: &dyn IdempotencyStore) {
    let s = scope();
    let claims: Vec<Claim> = (0..16).map(|_| claim(&s, "k", fp(7), t0())).collect();
    let outcomes = join_all(claims.iter().map(|c| store.begin(c))).await;
    let mut fresh = 0;
    for outcome in outcomes {
        match outcome.unwrap_or_else(|e| panic!("concurrent begin: {e:?}")) {
            Begin::Fresh => fresh += 1,
            Begin::InFlight => {}
            other => panic!("concurrent begin: expected Fresh or InFlight, got {other:?}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one concurrent claim MUST be Fresh");
}

// ---------- rate limits ----------

async fn hit(limiter: &dyn RateLimiter, key: &str, limit: Limit, now: Timestamp) -> Decision {
    limiter
        .hit(key, limit, now)
        .await
        .unwrap_or_else(|e| panic!("hit {key}: {e:?}"))
}

/// A key limited to 5 gets exactly 5, counting down, then refusals that say when the
/// window resets, to the second.
pub async fn limit_allows_exactly_max_then_refuses(limiter: &dyn RateLimiter) {
    let key = scope();
    let limit = Limit::per_minute(5);
    for n in 1..=5u32 {
        let d = hit(limiter, &key, limit, t0()).await;
        assert_eq!(
            d,
            Decision {
                allowed: true,
                limit: 5,
                remaining: 5 - n,
                reset_after_secs: 40
            },
            "hit {n} of 5"
        );
    }
    for _ in 0..3 {
        let d = hit(limiter, &key, limit, t0() + Duration::seconds(9)).await;
        assert_eq!(
            d,
            Decision {
                allowed: false,
                limit: 5,
                remaining: 0,
                reset_after_secs: 31
            },
            "a hit over the limit MUST be refused, with the seconds to the window's end"
        );
    }
}

/// The next window counts from zero.
pub async fn limit_next_window_counts_from_zero(limiter: &dyn RateLimiter) {
    let key = scope();
    let limit = Limit::per_minute(2);
    for _ in 0..3 {
        hit(limiter, &key, limit, t0()).await;
    }
    let next = t0() + Duration::seconds(40);
    let d = hit(limiter, &key, limit, next).await;
    assert_eq!(
        (d.allowed, d.remaining, d.reset_after_secs),
        (true, 1, 60),
        "a new window MUST count from zero"
    );
}

/// Keys are counted apart.
pub async fn limit_keys_are_independent(limiter: &dyn RateLimiter) {
    let (a, b) = (scope(), scope());
    let limit = Limit::per_minute(1);
    assert!(hit(limiter, &a, limit, t0()).await.allowed);
    assert!(!hit(limiter, &a, limit, t0()).await.allowed);
    assert!(
        hit(limiter, &b, limit, t0()).await.allowed,
        "another key MUST have its own count"
    );
}

/// Peeking counts nothing, and says whether the next hit would be refused.
pub async fn limit_peek_does_not_count(limiter: &dyn RateLimiter) {
    let key = scope();
    let limit = Limit::per_minute(2);
    for _ in 0..5 {
        let d = limiter
            .peek(&key, limit, t0())
            .await
            .unwrap_or_else(|e| panic!("peek: {e:?}"));
        assert!(d.allowed, "peek MUST NOT count");
    }
    assert_eq!(hit(limiter, &key, limit, t0()).await.remaining, 1);
    assert_eq!(hit(limiter, &key, limit, t0()).await.remaining, 0);
    let d = limiter
        .peek(&key, limit, t0())
        .await
        .unwrap_or_else(|e| panic!("peek: {e:?}"));
    assert!(
        !d.allowed,
        "peek at the limit MUST say the next hit is refused"
    );
    assert_eq!(d.reset_after_secs, 40);
}

/// Of many concurrent hits exactly `max` are allowed.
pub async fn limit_concurrent_hits_count_once_each(limiter: &dyn RateLimiter) {
    let key = scope();
    let limit = Limit::per_minute(5);
    let decisions = join_all((0..20).map(|_| limiter.hit(&key, limit, t0()))).await;
    let allowed = decisions
        .into_iter()
        .map(|d| d.unwrap_or_else(|e| panic!("concurrent hit: {e:?}")))
        .filter(|d| d.allowed)
        .count();
    assert_eq!(allowed, 5, "exactly max concurrent hits MUST be allowed");
}

/// Concurrent adds of several hits each see the count after their own: distinct
/// partial sums, the largest of which is the total.
pub async fn limit_add_counts_many_at_once(limiter: &dyn RateLimiter) {
    let key = scope();
    let limit = Limit::per_minute(5);
    let counts = join_all((0..10).map(|_| limiter.add(&key, limit, 3, t0()))).await;
    let mut counts: Vec<u64> = counts
        .into_iter()
        .map(|c| c.unwrap_or_else(|e| panic!("concurrent add: {e:?}")))
        .collect();
    counts.sort_unstable();
    let expected: Vec<u64> = (1..=10).map(|i| i * 3).collect();
    assert_eq!(
        counts, expected,
        "each add MUST see the count after its own hits, atomically"
    );
    let d = hit(limiter, &key, limit, t0()).await;
    assert!(!d.allowed, "hits added in bulk count like single ones");
}

/// Purging forgets windows that ended, and only those.
pub async fn limit_purge_forgets_ended_windows_only(limiter: &dyn RateLimiter) {
    let (old, current) = (scope(), scope());
    let limit = Limit::per_minute(5);
    hit(limiter, &old, limit, t0()).await;
    let next_minute = t0() + Duration::seconds(40);
    hit(limiter, &current, limit, next_minute).await;
    let gone = limiter
        .purge(next_minute)
        .await
        .unwrap_or_else(|e| panic!("purge: {e:?}"));
    assert!(gone >= 1, "purge MUST report what it forgot, got {gone}");
    assert_eq!(
        hit(limiter, &current, limit, next_minute).await.remaining,
        3,
        "purge MUST NOT forget a window that has not ended"
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every case in this file runs in the suite.
    #[test]
    fn the_suite_runs_every_case() {
        let defined: BTreeSet<&str> = include_str!("guards.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split('(').next())
            .collect();
        let listed: BTreeSet<&str> = super::IDEMPOTENCY
            .iter()
            .chain(super::LIMITER)
            .copied()
            .collect();
        assert_eq!(
            listed.len(),
            super::IDEMPOTENCY.len() + super::LIMITER.len(),
            "a case is listed twice"
        );
        assert_eq!(defined, listed, "cases defined vs cases the suite runs");
    }
}

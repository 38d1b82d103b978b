//! What authentication reads, cached in process: API token lookups by secret digest
//! (found or not), agent credentials by id, and the caller's tenant and its token policy,
//! so that a request with a known credential (`GET /api/me` included) costs no round
//! trip.
//!
//! Correctness rests on three things:
//! - **This replica's writes** that can change an answer (a token revoked, rotated,
//!   changed or its secret retired; an owner changed or deleted; an agent revoked or its
//!   fleet deleted; a tenant's token policy set) call [`AuthCache::forget`] once they
//!   committed, so the next request here sees them: as strict as without a cache.
//! - **Other replicas' writes** send `NOTIFY fleetpass_auth` in their transaction;
//!   [`PgStore::watch_auth_changes`](crate::PgStore::watch_auth_changes) listens and
//!   forgets on each. A lookup that started before a forget cannot store its (maybe
//!   stale) answer afterwards: entries carry the generation they were read in.
//! - **A safety net** for a lost notification or a dropped listener: every entry
//!   expires [`TTL`] after it was read, well inside the spec's 5 s.
//!
//! Expiry, revocation times and grace ends are decided by the domain on every request
//! from the cached row, so they stay exact to the second. The caches are bounded (a
//! flood of random tokens evicts cold entries, it cannot grow memory).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fleetpass_domain::Timestamp;
use fleetpass_domain::fleet::Agent;
use fleetpass_domain::identity::Tenant;
use fleetpass_domain::ids::{AgentId, TenantId, TokenId};
use fleetpass_domain::policy::TokenPolicy;
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::token::TokenLookup;
use quick_cache::sync::Cache;

use crate::store::wakeups::{self, Relay};

/// How long a cached answer is trusted without a notification.
pub(crate) const TTL: Duration = Duration::from_secs(2);

/// How many answers of each kind are kept.
const CAPACITY: usize = 100_000;

/// What a write sends in its transaction, and what the listener subscribes to.
pub(crate) const NOTIFY: &str = "NOTIFY fleetpass_auth";
pub(crate) const LISTEN: &str = "LISTEN fleetpass_auth";

/// A cached answer and when (and in which generation) it was read.
#[derive(Clone)]
struct Entry<T> {
    generation: u64,
    read_at: Instant,
    value: T,
}

/// The caches of one store (shared by its clones).
pub(crate) struct AuthCache {
    generation: AtomicU64,
    tokens: Cache<[u8; 32], Entry<Option<TokenLookup>>>,
    agents: Cache<AgentId, Entry<(Agent, SecretDigest)>>,
    /// Tenants by id (`GET /api/me` names the caller's). No endpoint changes one today;
    /// they expire and are forgotten like the rest, so one that later does stays right.
    tenants: Cache<TenantId, Entry<Tenant>>,
    /// Token policies by tenant (`GET /api/me` shows the caller's; creating and
    /// rotating tokens checks it). Setting one notifies and forgets like the rest.
    policies: Cache<TenantId, Entry<TokenPolicy>>,
    /// When this process last wrote each token's `last_used_at`.
    touched: Mutex<std::collections::HashMap<TokenId, Timestamp>>,
    ttl: Duration,
}

impl AuthCache {
    pub(crate) fn new() -> Self {
        Self::with_ttl(TTL)
    }

    pub(crate) fn with_ttl(ttl: Duration) -> Self {
        Self {
            generation: AtomicU64::new(0),
            tokens: Cache::new(CAPACITY),
            agents: Cache::new(CAPACITY),
            tenants: Cache::new(CAPACITY),
            policies: Cache::new(CAPACITY),
            touched: Mutex::new(std::collections::HashMap::new()),
            ttl,
        }
    }

    /// The generation to tag a lookup with; read it *before* querying.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Drops every answer: something they may depend on changed.
    pub(crate) fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.tokens.clear();
        self.agents.clear();
        self.tenants.clear();
        self.policies.clear();
    }

    fn fresh<T: Clone>(&self, entry: Option<Entry<T>>) -> Option<T> {
        entry
            .filter(|e| e.generation == self.generation() && e.read_at.elapsed() < self.ttl)
            .map(|e| e.value)
    }

    pub(crate) fn token(&self, digest: &SecretDigest) -> Option<Option<TokenLookup>> {
        self.fresh(self.tokens.get(digest.as_bytes()))
    }

    /// Keeps `value` under `key` in `cache`, unless something changed since
    /// `generation` was read (the value may predate the change).
    fn keep<K: Eq + std::hash::Hash, V: Clone>(
        &self,
        cache: &Cache<K, Entry<V>>,
        key: K,
        generation: u64,
        value: V,
    ) {
        if generation == self.generation() {
            let read_at = Instant::now();
            cache.insert(
                key,
                Entry {
                    generation,
                    read_at,
                    value,
                },
            );
        }
    }

    pub(crate) fn keep_token(
        &self,
        digest: &SecretDigest,
        generation: u64,
        value: Option<TokenLookup>,
    ) {
        self.keep(&self.tokens, *digest.as_bytes(), generation, value);
    }

    pub(crate) fn agent(&self, id: AgentId) -> Option<(Agent, SecretDigest)> {
        self.fresh(self.agents.get(&id))
    }

    /// Keeps a found agent (unknown ids are not cached: only enrolled agents hold tokens
    /// that name an id, so misses are rare and cheap to repeat).
    pub(crate) fn keep_agent(&self, id: AgentId, generation: u64, value: (Agent, SecretDigest)) {
        self.keep(&self.agents, id, generation, value);
    }

    pub(crate) fn tenant(&self, id: TenantId) -> Option<Tenant> {
        self.fresh(self.tenants.get(&id))
    }

    pub(crate) fn keep_tenant(&self, generation: u64, tenant: Tenant) {
        self.keep(&self.tenants, tenant.id, generation, tenant);
    }

    pub(crate) fn token_policy(&self, tenant: TenantId) -> Option<TokenPolicy> {
        self.fresh(self.policies.get(&tenant))
    }

    pub(crate) fn keep_token_policy(&self, tenant: TenantId, generation: u64, policy: TokenPolicy) {
        self.keep(&self.policies, tenant, generation, policy);
    }

    /// Whether a use of `id` at `at` needs writing: the first one a minute per token
    /// and process (cached lookups show an old `last_used_at`, so the caller's own
    /// check cannot decide this alone).
    pub(crate) fn use_is_news(&self, id: TokenId, at: Timestamp) -> bool {
        let mut touched = self
            .touched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match touched.get(&id) {
            Some(last) if at - *last < time::Duration::minutes(1) && at >= *last => false,
            _ => {
                if touched.len() >= CAPACITY {
                    touched.clear();
                }
                touched.insert(id, at);
                true
            }
        }
    }
}

/// The first wait before the listener reconnects; it doubles on each failure in a row
/// up to [`RECONNECT_AT_MOST`].
const RECONNECT_FIRST: Duration = Duration::from_secs(1);

/// The longest wait between reconnection attempts during an outage. Cached answers
/// expire within [`TTL`] meanwhile, so a slow reconnect costs lookups, not correctness.
const RECONNECT_AT_MOST: Duration = Duration::from_secs(15);

/// An outage of the listener's connection: when it began and how many attempts failed.
struct Outage {
    since: Instant,
    failures: u32,
}

/// Listens for other replicas' changes on a connection of its own and forgets the
/// cache on each, for as long as it runs; with a `relay`, the same connection also
/// hears the wake-ups of held check-ins (`store/wakeups.rs`) and delivers them: one
/// listening connection per replica. When the connection is lost it forgets then too
/// and wakes every waiter (notifications may have been missed meanwhile), and
/// reconnects with a doubling wait (1 s up to 15 s). An outage logs one warning when it
/// begins and one line when the listener is back, not a line per attempt.
pub(crate) async fn listen(url: &str, cache: &AuthCache, relay: Option<&Relay>) {
    let mut outage: Option<Outage> = None;
    loop {
        let ended = listen_once(url, cache, relay, &mut outage).await;
        cache.forget();
        match (&mut outage, ended) {
            (None, ended) => {
                match ended {
                    Ok(()) => tracing::warn!(
                        "the auth-change listener's connection ended; reconnecting with backoff \
                         (cached credentials expire within 2 s meanwhile)"
                    ),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "the auth-change listener failed; reconnecting with backoff \
                         (cached credentials expire within 2 s meanwhile)"
                    ),
                }
                outage = Some(Outage {
                    since: Instant::now(),
                    failures: 1,
                });
            }
            (Some(o), ended) => {
                o.failures += 1;
                if let Err(e) = ended {
                    tracing::debug!(error = %e, failures = o.failures, "the auth-change listener is still down");
                }
            }
        }
        let failures = outage.as_ref().map_or(1, |o| o.failures);
        let wait = RECONNECT_FIRST
            .saturating_mul(1 << failures.saturating_sub(1).min(4))
            .min(RECONNECT_AT_MOST);
        tokio::time::sleep(wait).await;
    }
}

/// One connection's worth of [`listen`]: returns when the connection ends. Once it
/// listens again after an outage it logs the recovery and clears `outage`.
async fn listen_once(
    url: &str,
    cache: &AuthCache,
    relay: Option<&Relay>,
    outage: &mut Option<Outage>,
) -> Result<(), tokio_postgres::Error> {
    use futures_util::StreamExt as _;
    use tokio_postgres::AsyncMessage;

    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    // The connection must be polled for the client to make progress; its messages are
    // where notifications arrive.
    let (tx, mut notified) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let wakeup = (n.channel() == wakeups::CHANNEL).then(|| n.payload().to_owned());
                    if tx.send(wakeup).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    // `listen` reports the end of the connection, once per outage.
                    tracing::debug!(error = %e, "the auth-change listener's connection failed");
                    break;
                }
            }
        }
    });
    client.batch_execute(LISTEN).await?;
    if relay.is_some() {
        client.batch_execute(wakeups::LISTEN).await?;
    }
    // Anything that changed before LISTEN took effect is unknown: start afresh.
    cache.forget();
    if let Some(ended) = outage.take() {
        tracing::info!(
            down_seconds = ended.since.elapsed().as_secs(),
            failed_attempts = ended.failures,
            "the auth-change listener has reconnected"
        );
    }
    if let Some(relay) = relay {
        relay.missed();
        relay.rearm(&client).await;
    }
    while let Some(wakeup) = notified.recv().await {
        match (wakeup, relay) {
            (Some(payload), Some(relay)) => relay.deliver(&payload, &client).await,
            (Some(_), None) => {}
            (None, _) => cache.forget(),
        }
    }
    driver.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn digest(byte: u8) -> SecretDigest {
        SecretDigest::from_slice(&[byte; 32]).unwrap()
    }

    #[test]
    fn a_lookup_that_raced_a_forget_is_not_kept() {
        let cache = AuthCache::new();
        let before = cache.generation();
        cache.forget();
        cache.keep_token(&digest(1), before, None);
        assert_eq!(
            cache.token(&digest(1)),
            None,
            "read before the change: dropped"
        );
        cache.keep_token(&digest(1), cache.generation(), None);
        assert_eq!(
            cache.token(&digest(1)),
            Some(None),
            "an unknown digest is cached"
        );
        cache.forget();
        assert_eq!(cache.token(&digest(1)), None);
    }

    #[test]
    fn answers_expire_without_a_notification() {
        let cache = AuthCache::with_ttl(Duration::from_millis(20));
        cache.keep_token(&digest(2), cache.generation(), None);
        assert_eq!(cache.token(&digest(2)), Some(None));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.token(&digest(2)), None);
    }

    #[test]
    fn a_token_use_is_written_once_a_minute() {
        let cache = AuthCache::new();
        let id = TokenId::from_uuid(uuid::Uuid::nil());
        let t = datetime!(2026-11-22 10:00 UTC);
        assert!(cache.use_is_news(id, t));
        assert!(!cache.use_is_news(id, t + time::Duration::seconds(59)));
        assert!(cache.use_is_news(id, t + time::Duration::seconds(61)));
    }
}

//! The idempotency-key port (spec §1): a record per (scope, key) that lets a retried
//! POST replay the first outcome instead of running twice.
//!
//! A record is *claimed* before the request runs and *completed* with the response
//! afterwards. The claim is the whole guarantee, so it MUST be atomic in the backend
//! (a unique row, never a read-then-write): of any number of concurrent
//! [`IdempotencyStore::begin`] calls with one scope and key, on one process or many,
//! exactly one gets [`Begin::Fresh`]. A claim holds a *lease* ([`LEASE`]); a process that
//! dies mid-request leaves a claim whose lease runs out, after which the next request
//! with the same key takes it over, so no key is blocked forever.
//!
//! The store keeps the response as opaque bytes: the HTTP adapter seals them with the
//! master key before they get here (a stored response may carry a secret), so no
//! adapter ever sees plain text.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use uuid::Uuid;

use crate::RepoError;

/// How long a completed request's outcome is replayed (and its record kept).
pub const REPLAY_WINDOW: time::Duration = time::Duration::hours(24);

/// How long a claim holds its key while its request runs. Long enough for any request
/// (statements time out after 10 s); short enough that a crashed request's key is free
/// again within a minute.
pub const LEASE: time::Duration = time::Duration::seconds(60);

/// A request's claim on a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Whose key it is: the tenant for authenticated callers, the client address on
    /// public endpoints. Keys of different scopes never meet.
    pub scope: String,
    /// The client's `Idempotency-Key` (1-255 printable ASCII characters).
    pub key: String,
    /// SHA-256 over the request (method, path and query, body).
    pub fingerprint: [u8; 32],
    /// This claim's own id, so that only its holder can complete or abandon it.
    pub claim_id: Uuid,
    /// Now, from the clock port.
    pub now: Timestamp,
    /// When the claim lapses if its request never completes (`now + LEASE`).
    pub lease_until: Timestamp,
    /// When the record stops counting (`now + REPLAY_WINDOW`).
    pub expires_at: Timestamp,
}

impl Claim {
    /// A claim made at `now` with the standard lease and window.
    pub fn new(
        scope: String,
        key: String,
        fingerprint: [u8; 32],
        claim_id: Uuid,
        now: Timestamp,
    ) -> Self {
        Self {
            scope,
            key,
            fingerprint,
            claim_id,
            now,
            lease_until: now + LEASE,
            expires_at: now + REPLAY_WINDOW,
        }
    }
}

/// What [`IdempotencyStore::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is now claimed by this request: run it, then complete or abandon.
    Fresh,
    /// The same request already completed: here is its stored (sealed) response.
    Replay(Vec<u8>),
    /// The same request is still running under an unexpired lease.
    InFlight,
    /// The key was used, within the window, for a different request.
    Mismatch,
}

/// Where idempotency records live.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `claim.key` in `claim.scope`, or reports why not.
    ///
    /// A record counts only while `claim.now < expires_at`; an older one is treated as
    /// absent (and replaced).
    ///
    /// # Errors
    /// - MUST be atomic: of concurrent calls with one scope and key (from any number of
    ///   processes) exactly one returns `Fresh` while a live record exists or is made.
    /// - MUST return `Mismatch` when a live record's fingerprint differs, whatever its
    ///   state; `Replay` with the stored bytes, unchanged, when it matches and is
    ///   complete; `InFlight` when it matches, is not complete and its lease is
    ///   unexpired; and `Fresh` (taking the record over under the new claim id and
    ///   lease) when it matches, is not complete and its lease has expired.
    /// - MUST return `RepoError::Unavailable` when the backend cannot be reached.
    async fn begin(&self, claim: &Claim) -> Result<Begin, RepoError>;

    /// Stores the outcome of the request holding `claim_id`; later `begin`s of the same
    /// request replay `response`. Returns whether it was stored.
    ///
    /// # Errors
    /// - MUST store nothing and return `Ok(false)` when the record is no longer held by
    ///   `claim_id` (its lease expired and another request took it over, or it is
    ///   gone): a slow request must never overwrite its successor's claim.
    /// - MUST keep the record's `expires_at`: the window runs from the first claim.
    /// - MUST return `RepoError::Unavailable` when the backend cannot be reached.
    async fn complete(
        &self,
        scope: &str,
        key: &str,
        claim_id: Uuid,
        response: &[u8],
    ) -> Result<bool, RepoError>;

    /// Releases the claim of a request whose outcome must not be stored (a 5xx), so a
    /// retry runs again at once.
    ///
    /// # Errors
    /// - MUST delete the record only while `claim_id` holds it and it is not complete;
    ///   otherwise MUST change nothing and still return `Ok(())`.
    /// - MUST return `RepoError::Unavailable` when the backend cannot be reached.
    async fn abandon(&self, scope: &str, key: &str, claim_id: Uuid) -> Result<(), RepoError>;

    /// Deletes every record whose window closed (`expires_at <= now`), stored responses
    /// included. Returns how many went. Safe to run on several replicas at once.
    ///
    /// # Errors
    /// - MUST NOT delete a record whose window is still open.
    /// - MUST return `RepoError::Unavailable` when the backend cannot be reached.
    async fn purge(&self, now: Timestamp) -> Result<u64, RepoError>;
}

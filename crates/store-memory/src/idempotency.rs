//! In-memory idempotency records: the single-node adapter of
//! [`IdempotencyStore`](fleetpass_ports::idempotency::IdempotencyStore).
//!
//! One mutex over a map keyed by (scope, key); every method decides and changes under
//! it, which is what makes a claim atomic within the process.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_ports::RepoError;
use fleetpass_ports::idempotency::{Begin, Claim, IdempotencyStore};
use uuid::Uuid;

/// One record.
#[derive(Debug, Clone)]
struct Record {
    fingerprint: [u8; 32],
    claim_id: Uuid,
    lease_until: Timestamp,
    response: Option<Vec<u8>>,
    expires_at: Timestamp,
}

/// The in-memory idempotency store. Share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryIdempotency {
    records: Mutex<HashMap<(String, String), Record>>,
}

impl MemoryIdempotency {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), Record>> {
        // Every method finishes its decision before it changes the map, so a panic
        // cannot leave a half-made record behind: recovering keeps the service up.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every stored response, exactly as held (sealed by the caller): lets tests check
    /// that nothing is kept in plain text.
    pub fn stored_responses(&self) -> Vec<Vec<u8>> {
        self.lock()
            .values()
            .filter_map(|r| r.response.clone())
            .collect()
    }

    /// How many records are held, complete or not.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotency {
    async fn begin(&self, claim: &Claim) -> Result<Begin, RepoError> {
        let mut records = self.lock();
        let id = (claim.scope.clone(), claim.key.clone());
        let fresh = Record {
            fingerprint: claim.fingerprint,
            claim_id: claim.claim_id,
            lease_until: claim.lease_until,
            response: None,
            expires_at: claim.expires_at,
        };
        let outcome = match records.get(&id) {
            None => Begin::Fresh,
            Some(r) if r.expires_at <= claim.now => Begin::Fresh,
            Some(r) if r.fingerprint != claim.fingerprint => return Ok(Begin::Mismatch),
            Some(r) => match &r.response {
                Some(response) => return Ok(Begin::Replay(response.clone())),
                None if r.lease_until > claim.now => return Ok(Begin::InFlight),
                // The holder's lease ran out (it crashed or hung): take the key over.
                None => Begin::Fresh,
            },
        };
        records.insert(id, fresh);
        Ok(outcome)
    }

    async fn complete(
        &self,
        scope: &str,
        key: &str,
        claim_id: Uuid,
        response: &[u8],
    ) -> Result<bool, RepoError> {
        let mut records = self.lock();
        match records.get_mut(&(scope.to_owned(), key.to_owned())) {
            Some(r) if r.claim_id == claim_id && r.response.is_none() => {
                r.response = Some(response.to_vec());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn abandon(&self, scope: &str, key: &str, claim_id: Uuid) -> Result<(), RepoError> {
        let mut records = self.lock();
        let id = (scope.to_owned(), key.to_owned());
        if records
            .get(&id)
            .is_some_and(|r| r.claim_id == claim_id && r.response.is_none())
        {
            records.remove(&id);
        }
        Ok(())
    }

    async fn purge(&self, now: Timestamp) -> Result<u64, RepoError> {
        let mut records = self.lock();
        let before = records.len();
        records.retain(|_, r| r.expires_at > now);
        Ok(u64::try_from(before - records.len()).unwrap_or(u64::MAX))
    }
}

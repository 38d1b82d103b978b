//! The [`KeyStore`](fleetpass_ports::store::KeyStore) part of the in-memory store: the JWT
//! signing keys, sealed by the caller.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_ports::store::{KeyStore, RepoError, StoredSigningKey, constraint};

use crate::MemoryStore;

#[async_trait]
impl KeyStore for MemoryStore {
    // ---- signing keys ----

    async fn list_signing_keys(&self) -> Result<Vec<StoredSigningKey>, RepoError> {
        self.read(|s| {
            let mut keys: Vec<StoredSigningKey> = s.signing_keys.values().cloned().collect();
            keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
            Ok(keys)
        })
    }

    async fn add_signing_key(&self, key: &StoredSigningKey) -> Result<(), RepoError> {
        self.with(|s| {
            if s.signing_keys.contains_key(&key.kid) {
                return Err(RepoError::Conflict {
                    constraint: constraint::SIGNING_KEY_ID,
                });
            }
            s.signing_keys.insert(key.kid.clone(), key.clone());
            Ok(())
        })
    }

    async fn retire_signing_key(&self, kid: &str, at: Timestamp) -> Result<(), RepoError> {
        self.with(|s| {
            let key = s.signing_keys.get_mut(kid).ok_or(RepoError::NotFound)?;
            key.retired_at.get_or_insert(at);
            Ok(())
        })
    }
}

//! The [`KeyStore`] part of the store port: the JWT signing keys, sealed by the caller.
//!
//! The obligations in the [`store`](super) module docs hold for every method here.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;

use super::{RepoError, StoredSigningKey};

/// The part of [`Store`](super::Store) for the JWT signing keys, sealed by the caller.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    // ---- signing keys ----

    /// Every signing key, retired ones included, oldest first.
    async fn list_signing_keys(&self) -> Result<Vec<StoredSigningKey>, RepoError>;

    /// Adds a signing key. `Conflict { constraint: SIGNING_KEY_ID }` on a taken kid.
    async fn add_signing_key(&self, key: &StoredSigningKey) -> Result<(), RepoError>;

    /// Retires a signing key at `at` (no-op if retired). `NotFound` for an unknown kid.
    async fn retire_signing_key(&self, kid: &str, at: Timestamp) -> Result<(), RepoError>;
}

//! The ports of Fleetpass: the traits the core needs from the outside world (a store, a
//! clock, ids, randomness) and the use-case services written against them.
//!
//! Adapters (`fleetpass-store-memory`, `fleetpass-store-postgres`, `fleetpass-http`)
//! depend on this crate; it depends only on `fleetpass-domain`. Services take their
//! ports as trait objects in [`Deps`], so the HTTP layer, the CLI and tests share one
//! wiring and tests pin the clock, ids and secrets.

pub mod claims;
pub mod conflict;
pub mod idempotency;
pub mod keys;
pub mod ratelimit;
pub mod service;
pub mod store;
pub mod system;
pub mod wakeups;

use std::sync::Arc;

use fleetpass_domain::Timestamp;
use uuid::Uuid;

pub use conflict::Conflict;
pub use store::{
    AuditStore, FleetStore, KeyStore, RepoError, ScanStore, ScheduleStore, Store, TenantStore,
    TokenStore,
};

/// The current time. Every expiry and ordering rule reads it through this port.
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> Timestamp;
}

/// Makes new ids. Production makes UUID v7 (time-ordered), so ordering by id is
/// ordering by creation.
pub trait IdGen: Send + Sync + 'static {
    /// A fresh, unique id.
    fn new_id(&self) -> Uuid;
}

/// Draws secret randomness.
pub trait SecretGen: Send + Sync + 'static {
    /// 32 bytes (256 bits) from a cryptographically secure source.
    fn random_32(&self) -> [u8; 32];
}

/// Everything a service needs, as shared trait objects.
#[derive(Clone)]
pub struct Deps {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The id generator.
    pub ids: Arc<dyn IdGen>,
    /// The secret generator.
    pub secrets: Arc<dyn SecretGen>,
    /// What wakes held check-ins.
    pub wakeups: Arc<dyn wakeups::Wakeups>,
    /// Where woken check-ins claim their fan-out parts together.
    pub part_claims: Arc<claims::PartClaims>,
}

impl Deps {
    /// Production wiring over `store`: system clock, UUID v7 ids, `ring` randomness and
    /// in-process wake-ups for at most [`wakeups::DEFAULT_MAX_HELD`] waiters (the server
    /// replaces them with its configured ones).
    pub fn system(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            clock: Arc::new(system::SystemClock),
            ids: Arc::new(system::UuidV7),
            secrets: Arc::new(system::RingSecrets::default()),
            wakeups: Arc::new(wakeups::LocalWakeups::new(wakeups::DEFAULT_MAX_HELD)),
            part_claims: Arc::default(),
        }
    }
}

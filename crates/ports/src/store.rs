//! The store port: every read and write the core makes, as one trait per area
//! ([`TenantStore`], [`TokenStore`], [`FleetStore`], [`KeyStore`], [`ScanStore`],
//! [`ScheduleStore`], [`AuditStore`], [`StatsStore`], one module each) and [`Store`], which is all of them
//! at once and what the core holds (`Arc<dyn Store>`).
//!
//! Obligations every adapter MUST meet (the contract suite in `fleetpass-contract`
//! checks each one against every adapter):
//! - Every method that changes state writes its audit event(s) atomically with the
//!   change: both happen or neither does.
//! - Every tenant-scoped read or write takes the tenant id and MUST treat a row of
//!   another tenant exactly like a missing row (`RepoError::NotFound`).
//! - Lists are newest first (descending id) and keyset-paginated: fetch rows with
//!   `id < cursor` and build the page with `Page::from_overfetch`.
//! - A uniqueness or state clash is `RepoError::Conflict` with the [`Conflict`] it breaks.
//! - An unreachable backend is `RepoError::Unavailable`, never `Other`.

use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::{Agent, EnrollmentToken};
use fleetpass_domain::identity::{Environment, Principal, Tenant};
use fleetpass_domain::ids::{EnvironmentId, FleetId};
use fleetpass_domain::scan::{Jws, Report, Scan, ScanStatus, Scenario, Sha256Hex};
use fleetpass_domain::schedule::Schedule;
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::ShareLink;
use fleetpass_domain::token::ApiToken;
use uuid::Uuid;

pub use crate::conflict::Conflict;

/// Short names for the store-level [`Conflict`]s, so the adapters' and the contract
/// suite's call sites read as the rules they raise.
pub mod constraint {
    use super::Conflict;

    /// See [`Conflict::TenantName`].
    pub const TENANT_NAME: Conflict = Conflict::TenantName;
    /// See [`Conflict::EnvironmentName`].
    pub const ENVIRONMENT_NAME: Conflict = Conflict::EnvironmentName;
    /// See [`Conflict::EnvironmentInUse`].
    pub const ENVIRONMENT_IN_USE: Conflict = Conflict::EnvironmentInUse;
    /// See [`Conflict::UserEmail`].
    pub const USER_EMAIL: Conflict = Conflict::UserEmail;
    /// See [`Conflict::ServiceAccountName`].
    pub const SERVICE_ACCOUNT_NAME: Conflict = Conflict::ServiceAccountName;
    /// See [`Conflict::SigningKeyId`].
    pub const SIGNING_KEY_ID: Conflict = Conflict::SigningKeyId;
    /// See [`Conflict::TokenOwnerChanged`].
    pub const TOKEN_OWNER_CHANGED: Conflict = Conflict::TokenOwnerChanged;
    /// See [`Conflict::ScanNotRunning`].
    pub const SCAN_NOT_RUNNING: Conflict = Conflict::ScanNotRunning;
    /// See [`Conflict::TargetEmpty`].
    pub const TARGET_EMPTY: Conflict = Conflict::TargetEmpty;
    /// See [`Conflict::TargetNotInFleet`].
    pub const TARGET_NOT_IN_FLEET: Conflict = Conflict::TargetNotInFleet;
    /// See [`Conflict::ScanFinished`].
    pub const SCAN_FINISHED: Conflict = Conflict::ScanFinished;
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No such row in this tenant.
    #[error("not found")]
    NotFound,
    /// The write clashes with a uniqueness or state rule.
    #[error("conflict on {constraint}")]
    Conflict {
        /// Which rule: one of the store-level [`Conflict`]s.
        constraint: Conflict,
    },
    /// The backend cannot be reached; the caller may retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else; logged in full, never shown to a client.
    #[error("store error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// How the service keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// In the process's memory; gone when it exits.
    Memory,
    /// In PostgreSQL.
    Postgres,
}

impl Persistence {
    /// The name `/readyz` reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Postgres => "postgres",
        }
    }
}

/// Everything created with a new tenant, written in one transaction.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// The tenant.
    pub tenant: Tenant,
    /// Its first environment, `production`.
    pub environment: Environment,
    /// The service account that owns the first admin token.
    pub admin: Principal,
    /// The first admin token.
    pub token: ApiToken,
    /// The digest of that token's secret.
    pub digest: SecretDigest,
    /// The audit events of all of the above.
    pub audit: Vec<AuditEvent>,
}

/// Which kind of principal a listing wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalFilter {
    /// Users only.
    Users,
    /// Service accounts only.
    ServiceAccounts,
}

/// Filters of the audit-log listing; all optional, all must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exact action name.
    pub action: Option<String>,
    /// The acting token's id.
    pub actor_id: Option<Uuid>,
    /// The target's id.
    pub target_id: Option<Uuid>,
    /// Events at or after this instant.
    pub since: Option<Timestamp>,
    /// Only events concerning these environments alone (an env-scoped caller's view:
    /// tenant-wide events and events reaching other environments are left out).
    pub environments: Option<Vec<EnvironmentId>>,
}

/// A JWT signing key as stored: the private half sealed (encrypted) by the caller with
/// the configured master key, so a store never holds a usable private key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// The key id (`kid` in JWT headers and the JWKS).
    pub kid: String,
    /// The sealed PKCS#8 private key.
    pub sealed_private_key: Vec<u8>,
    /// The raw public key (32 bytes for Ed25519).
    pub public_key: Vec<u8>,
    /// When it was made; the newest unretired key signs.
    pub created_at: Timestamp,
    /// When it was retired: it then neither signs nor verifies.
    pub retired_at: Option<Timestamp>,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// Builds the agent an enrollment creates, and its audit event, from the token being
/// used: the store calls it inside its transaction, after the token was claimed.
pub type EnrollBuilder<'a> = &'a (dyn Fn(&EnrollmentToken) -> (Agent, AuditEvent) + Send + Sync);

/// Filters of the scan listing; all optional, all must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanFilter {
    /// Only this fleet's scans.
    pub fleet: Option<FleetId>,
    /// Only scans in this status.
    pub status: Option<ScanStatus>,
    /// Only this scenario.
    pub scenario: Option<Scenario>,
    /// Only scans in these environments (an env-scoped caller's view).
    pub environments: Option<Vec<EnvironmentId>>,
}

/// Everything a completed scan keeps, made once when its results arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanArtifacts {
    /// The bundle: the canonical JSON of the results, byte for byte as hashed.
    pub bundle_json: String,
    /// SHA-256 of `bundle_json`.
    pub bundle_sha256: Sha256Hex,
    /// The report.
    pub report: Report,
    /// The passport: a compact JWS.
    pub passport: Jws,
}

/// Builds the scan a due schedule enqueues, and its audit event.
pub type ScheduleRun<'a> = &'a (dyn Fn(&Schedule) -> (Scan, AuditEvent) + Send + Sync);

/// The outcome of opening a share link.
// One lives for the span of a request; boxing the scan would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareAccess {
    /// Counted: the link as changed, and its scan.
    Opened(ShareLink, Scan),
    /// The link works but does not grant the artifact asked for.
    OutOfScope(ShareLink),
    /// Unknown, expired, revoked or used up.
    Unavailable,
}

/// Builds the audit event of a state change the store decides on (a claim, a sweep, a
/// share-link access): the store calls it inside the transaction, with the row as
/// changed.
pub type AuditFor<'a, T> = &'a (dyn Fn(&T) -> AuditEvent + Send + Sync);

mod audit;
mod directory;
mod fleet_agents;
mod keys;
mod scans;
mod schedules;
mod stats;
mod tokens;

pub use audit::{AuditStore, ChainRange, ChainedEvent};
pub use directory::TenantStore;
pub use fleet_agents::FleetStore;
pub use keys::KeyStore;
pub use scans::ScanStore;
pub use schedules::ScheduleStore;
pub use stats::{LastSeen, PoolStats, ServiceStats, StatsStore};
pub use tokens::TokenStore;

/// The store: every per-area trait at once, so that `Arc<dyn Store>` reaches all of
/// them. Each adapter implements every area on one type, so a transaction can still
/// span any of its parts; see the module docs for the obligations every method carries.
pub trait Store:
    TenantStore
    + TokenStore
    + FleetStore
    + KeyStore
    + ScanStore
    + ScheduleStore
    + AuditStore
    + StatsStore
{
}

/// Every type with all the parts is a store.
impl<
    T: ?Sized
        + TenantStore
        + TokenStore
        + FleetStore
        + KeyStore
        + ScanStore
        + ScheduleStore
        + AuditStore
        + StatsStore,
> Store for T
{
}

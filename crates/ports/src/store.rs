//! The store port: every read and write the core makes, as one trait.
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

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::{
    Agent, AgentVersion, EnrollmentRefusal, EnrollmentToken, Fleet, FleetName,
};
use fleetpass_domain::identity::{Environment, EnvironmentName, Principal, Tenant};
use fleetpass_domain::ids::{
    AgentId, EnrollmentTokenId, EnvironmentId, FleetId, PrincipalId, ScanId, ScheduleId,
    ShareLinkId, TenantId, TokenId,
};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::{Jws, Report, Scan, ScanStatus, Scenario, Sha256Hex};
use fleetpass_domain::schedule::Schedule;
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::{Artifact, ShareLink};
use fleetpass_domain::token::{ApiToken, TokenLookup};
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

/// The store. One trait so that a transaction can span any of its parts; see the module
/// docs for the obligations every method carries.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// How this store persists data.
    fn persistence(&self) -> Persistence;

    /// Checks the backend answers.
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), RepoError>;

    // ---- tenants ----

    /// Creates a tenant with its first environment, admin principal and admin token.
    ///
    /// # Errors
    /// MUST return `Conflict { constraint: TENANT_NAME }` when the name is taken.
    async fn create_tenant(&self, new: &NewTenant) -> Result<(), RepoError>;

    /// Reads a tenant. `NotFound` when there is none.
    async fn get_tenant(&self, id: TenantId) -> Result<Tenant, RepoError>;

    /// Lists tenants, newest first.
    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>, RepoError>;

    // ---- environments ----

    /// Creates an environment.
    ///
    /// # Errors
    /// MUST return `Conflict { constraint: ENVIRONMENT_NAME }` when the tenant already
    /// has one of that name.
    async fn create_environment(
        &self,
        env: &Environment,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Reads an environment of `tenant`.
    async fn get_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
    ) -> Result<Environment, RepoError>;

    /// Reads an environment of `tenant` by name.
    async fn find_environment_by_name(
        &self,
        tenant: TenantId,
        name: &EnvironmentName,
    ) -> Result<Environment, RepoError>;

    /// Lists the environments of `tenant`, newest first.
    async fn list_environments(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<Environment>, RepoError>;

    /// Of `ids`, the ones that are not environments of `tenant`.
    async fn missing_environments(
        &self,
        tenant: TenantId,
        ids: &[EnvironmentId],
    ) -> Result<Vec<EnvironmentId>, RepoError>;

    /// Renames an environment and returns it.
    ///
    /// # Errors
    /// `NotFound`; MUST return `Conflict { constraint: ENVIRONMENT_NAME }` on a clash.
    async fn rename_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
        name: &EnvironmentName,
        audit: &AuditEvent,
    ) -> Result<Environment, RepoError>;

    /// Deletes an environment.
    ///
    /// # Errors
    /// `NotFound`; MUST return `Conflict { constraint: ENVIRONMENT_IN_USE }` when a token
    /// that is not revoked is scoped to it, or when a fleet lives in it.
    async fn delete_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    // ---- principals (users and service accounts) ----

    /// Creates a user or service account.
    ///
    /// # Errors
    /// MUST return `Conflict` with `USER_EMAIL` / `SERVICE_ACCOUNT_NAME` on a clash.
    async fn create_principal(
        &self,
        principal: &Principal,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Reads a principal of `tenant`.
    async fn get_principal(
        &self,
        tenant: TenantId,
        id: PrincipalId,
    ) -> Result<Principal, RepoError>;

    /// Lists the users or the service accounts of `tenant`, newest first.
    async fn list_principals(
        &self,
        tenant: TenantId,
        filter: PrincipalFilter,
        page: PageRequest,
    ) -> Result<Page<Principal>, RepoError>;

    /// Replaces a principal's mutable fields (names, role, disabled) with `principal`'s.
    /// When `revoke_tokens_at` is set, every unrevoked token it owns is revoked then, in
    /// the same transaction.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` as for `create_principal`.
    async fn update_principal(
        &self,
        principal: &Principal,
        revoke_tokens_at: Option<Timestamp>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Deletes a principal, revoking its tokens at `at` and clearing their owner.
    async fn delete_principal(
        &self,
        tenant: TenantId,
        id: PrincipalId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    // ---- API tokens ----

    /// Stores a new token and the digest of its secret.
    ///
    /// # Errors
    /// MUST return `Conflict { constraint: TOKEN_OWNER_CHANGED }` when the owner is
    /// disabled, gone or holds a lower role than the token, decided in the same
    /// transaction as the insert and under a lock that a concurrent change of the owner
    /// waits for: no token ever outranks its owner.
    async fn create_token(
        &self,
        token: &ApiToken,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Finds the token a secret digest belongs to, in any tenant; `Ok(None)` when none.
    /// Rotated-out secrets are still found (with `secret_valid_until` set) until they
    /// are purged; deciding whether they still work is the domain's job.
    async fn find_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<TokenLookup>, RepoError>;

    /// Reads a token of `tenant`.
    async fn get_token(&self, tenant: TenantId, id: TokenId) -> Result<ApiToken, RepoError>;

    /// Lists the tokens of `tenant`, newest first; with `environments`, only the
    /// tokens scoped to some of those environments and no others (an env-scoped
    /// caller's view: all-environment tokens are left out).
    async fn list_tokens(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<ApiToken>, RepoError>;

    /// Writes a token's mutable fields (`name`, `rate_limit_per_minute`) from `token`.
    async fn update_token(&self, token: &ApiToken, audit: &AuditEvent) -> Result<(), RepoError>;

    /// Revokes a token at `at` and returns it. Revoking a revoked token changes nothing
    /// (its first `revoked_at` stays) and writes no audit event.
    async fn revoke_token(
        &self,
        tenant: TenantId,
        id: TokenId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ApiToken, RepoError>;

    /// Gives a token a new secret: every current secret of it stops working at
    /// `old_valid_until` (or earlier, if it already would), the new one has no end of its
    /// own, and the token's hint becomes `new_hint`. Returns the updated token.
    async fn rotate_token(
        &self,
        tenant: TenantId,
        id: TokenId,
        new_digest: &SecretDigest,
        new_hint: &str,
        old_valid_until: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ApiToken, RepoError>;

    /// Ends the rotated-out secret with `digest` at `at` (or keeps its earlier end) and
    /// writes `audit`; the token and its current secret are untouched. A digest that is
    /// not a rotated-out secret changes nothing but the audit log.
    async fn retire_token_secret(
        &self,
        digest: &SecretDigest,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Records a use of a token at `at` (callers rate-limit this to once a minute).
    /// A store MAY write it later (`lastUsedAt` is coarse), but its own later reads of
    /// the token MUST show it, and it MUST NOT move `last_used_at` backwards. An unknown
    /// token MAY be ignored.
    async fn touch_token(&self, id: TokenId, at: Timestamp) -> Result<(), RepoError>;

    // ---- fleets ----

    /// Creates a fleet together with its first enrollment token (and that token's
    /// digest), writing `audit` (fleet.created, enrollment_token.issued).
    ///
    /// # Errors
    /// `NotFound` when the fleet's environment is not one of its tenant's.
    async fn create_fleet(
        &self,
        fleet: &Fleet,
        token: &EnrollmentToken,
        digest: &SecretDigest,
        audit: &[AuditEvent],
    ) -> Result<(), RepoError>;

    /// Reads a fleet of `tenant`.
    async fn get_fleet(&self, tenant: TenantId, id: FleetId) -> Result<Fleet, RepoError>;

    /// Lists the fleets of `tenant`, newest first; with `environments`, only the fleets
    /// in those environments (an env-scoped caller's view).
    async fn list_fleets(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<Fleet>, RepoError>;

    /// Renames a fleet and returns it.
    async fn rename_fleet(
        &self,
        tenant: TenantId,
        id: FleetId,
        name: &FleetName,
        audit: &AuditEvent,
    ) -> Result<Fleet, RepoError>;

    /// Deletes a fleet with its enrollment tokens, agents, schedules, scans (and their
    /// artifacts) and those scans' share links: every secret among them stops working
    /// with it.
    async fn delete_fleet(
        &self,
        tenant: TenantId,
        id: FleetId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    // ---- enrollment tokens ----

    /// Issues an enrollment token for its fleet.
    ///
    /// # Errors
    /// `NotFound` when the fleet is not one of the token's tenant's.
    async fn create_enrollment_token(
        &self,
        token: &EnrollmentToken,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Lists a fleet's enrollment tokens, newest first. `NotFound` for an unknown fleet.
    async fn list_enrollment_tokens(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        page: PageRequest,
    ) -> Result<Page<EnrollmentToken>, RepoError>;

    /// Revokes an enrollment token of `fleet` and returns it; revoking a revoked one
    /// changes nothing and writes no audit event.
    async fn revoke_enrollment_token(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        id: EnrollmentTokenId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<EnrollmentToken, RepoError>;

    /// Enrolls an agent with the enrollment token whose secret has `digest`, atomically:
    /// the token's use is claimed (refused unless `check_usable(now)` passes) and the
    /// agent `build` makes from the token is stored with its secret digest and audit
    /// event, or nothing happens. N concurrent calls on a token with m uses left succeed
    /// exactly min(N, m) times, across processes too.
    ///
    /// # Errors
    /// `Ok(Err(refusal))` when the token is unknown, revoked, used up or expired.
    async fn enroll(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
        agent_secret: &SecretDigest,
        build: EnrollBuilder<'_>,
    ) -> Result<Result<Agent, EnrollmentRefusal>, RepoError>;

    // ---- agents ----

    /// Reads an agent of `tenant`.
    async fn get_agent(&self, tenant: TenantId, id: AgentId) -> Result<Agent, RepoError>;

    /// Lists a fleet's agents, newest first. `NotFound` for an unknown fleet.
    async fn list_agents(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        page: PageRequest,
    ) -> Result<Page<Agent>, RepoError>;

    /// Revokes an agent at `at` and returns it; revoking a revoked one changes nothing
    /// and writes no audit event.
    async fn revoke_agent(
        &self,
        tenant: TenantId,
        id: AgentId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Agent, RepoError>;

    /// An agent and its secret's digest, in any tenant: for exchanging the secret for an
    /// access token. `Ok(None)` when there is no such agent.
    async fn find_agent_credentials(
        &self,
        id: AgentId,
    ) -> Result<Option<(Agent, SecretDigest)>, RepoError>;

    /// Records a heartbeat: `last_seen_at = at` and, when given, the reported version.
    /// Returns the agent. `NotFound` for an unknown agent.
    async fn record_heartbeat(
        &self,
        id: AgentId,
        at: Timestamp,
        version: Option<&AgentVersion>,
    ) -> Result<Agent, RepoError>;

    // ---- signing keys ----

    /// Every signing key, retired ones included, oldest first.
    async fn list_signing_keys(&self) -> Result<Vec<StoredSigningKey>, RepoError>;

    /// Adds a signing key. `Conflict { constraint: SIGNING_KEY_ID }` on a taken kid.
    async fn add_signing_key(&self, key: &StoredSigningKey) -> Result<(), RepoError>;

    /// Retires a signing key at `at` (no-op if retired). `NotFound` for an unknown kid.
    async fn retire_signing_key(&self, kid: &str, at: Timestamp) -> Result<(), RepoError>;

    // ---- scans ----

    /// Stores a requested scan (status queued).
    ///
    /// # Errors
    /// `NotFound` when its fleet is not one of its tenant's.
    async fn create_scan(&self, scan: &Scan, audit: &AuditEvent) -> Result<(), RepoError>;

    /// Reads a scan of `tenant`.
    async fn get_scan(&self, tenant: TenantId, id: ScanId) -> Result<Scan, RepoError>;

    /// Lists the scans of `tenant` that pass `filter`, newest first (filter before
    /// paginating, so pages are full).
    async fn list_scans(
        &self,
        tenant: TenantId,
        filter: &ScanFilter,
        page: PageRequest,
    ) -> Result<Page<Scan>, RepoError>;

    /// Claims for `agent` the oldest scan of its fleet that is `claimable(now)`: it
    /// becomes running, claimed by the agent at `now`, and `audit` records it. Two
    /// concurrent claims never get the same scan (Postgres: `FOR UPDATE SKIP LOCKED`),
    /// across processes too. `Ok(None)` when there is nothing to claim.
    async fn claim_scan(
        &self,
        agent: &Agent,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<Option<Scan>, RepoError>;

    /// Completes a running scan claimed by `agent` at `at`, storing its artifacts;
    /// returns the completed scan.
    ///
    /// # Errors
    /// MUST return `NotFound` when the scan does not exist or was not claimed by this
    /// agent, and `Conflict { constraint: SCAN_NOT_RUNNING }` when it was, but is no
    /// longer running (completed already, or failed by the sweeper).
    async fn complete_scan(
        &self,
        agent: AgentId,
        id: ScanId,
        at: Timestamp,
        artifacts: &ScanArtifacts,
        audit: &AuditEvent,
    ) -> Result<Scan, RepoError>;

    /// The artifacts of a completed scan of `tenant`; `Ok(None)` when it has none yet
    /// (`NotFound` for an unknown scan).
    async fn get_scan_artifacts(
        &self,
        tenant: TenantId,
        id: ScanId,
    ) -> Result<Option<ScanArtifacts>, RepoError>;

    /// Moves every overdue scan (`Scan::overdue(now)`) to failed or expired, with
    /// `finished_at = now` and an audit event each; returns how many moved. Safe to run
    /// on several replicas at once: each scan moves once.
    async fn sweep_scans(
        &self,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<usize, RepoError>;

    // ---- share links ----

    /// Stores a share link and its token's digest.
    ///
    /// # Errors
    /// `NotFound` when its scan is not one of its tenant's.
    async fn create_share_link(
        &self,
        link: &ShareLink,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Reads a share link of `tenant`.
    async fn get_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
    ) -> Result<ShareLink, RepoError>;

    /// Lists a scan's share links, newest first. `NotFound` for an unknown scan.
    async fn list_share_links(
        &self,
        tenant: TenantId,
        scan: ScanId,
        page: PageRequest,
    ) -> Result<Page<ShareLink>, RepoError>;

    /// Revokes a share link and returns it; revoking a revoked one changes nothing and
    /// writes no audit event.
    async fn revoke_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ShareLink, RepoError>;

    /// Opens the share link whose token has `digest` for `artifact`, atomically: when
    /// its status at `now` is active and it grants `artifact`, its access count goes up
    /// by one, `last_accessed_at = now`, the `audit` event is written, and the link (as
    /// changed) and its scan are returned. An active link that does not grant the
    /// artifact is `OutOfScope` and nothing is written (a refused request is no
    /// access). An unknown, expired, revoked or used-up link is `Unavailable` —
    /// indistinguishably — and nothing is written. N concurrent opens of a link with m
    /// accesses left succeed exactly min(N, m) times.
    async fn access_share_link(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
        artifact: Artifact,
        audit: AuditFor<'_, ShareLink>,
    ) -> Result<ShareAccess, RepoError>;

    // ---- schedules ----

    /// Stores a schedule.
    ///
    /// # Errors
    /// `NotFound` when its fleet is not one of its tenant's.
    async fn create_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Reads a schedule of `tenant`.
    async fn get_schedule(&self, tenant: TenantId, id: ScheduleId) -> Result<Schedule, RepoError>;

    /// Lists the schedules of `tenant`, newest first; with `environments`, only those in
    /// them (filtered before paginating).
    async fn list_schedules(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<Schedule>, RepoError>;

    /// Writes a schedule's mutable fields (scenario, limits, interval, enabled) from
    /// `schedule`. MUST NOT write `next_run_at` or `last_run_at`: only the runner moves
    /// them, so an update racing a run cannot bring back a due time that already ran.
    /// `NotFound` when it is not one of its tenant's.
    async fn update_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Deletes a schedule (the scans it enqueued stay).
    async fn delete_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Enqueues one scan for every schedule that is `due(now)`: in one transaction per
    /// schedule, the scan `enqueue` builds from it (with its audit event) is stored and
    /// the schedule moves to `last_run_at = now`, `next_run_at = next_after(now)`.
    /// Returns how many scans were enqueued. Several replicas running this at once
    /// enqueue each due time once (Postgres: `FOR UPDATE SKIP LOCKED`).
    async fn run_due_schedules(
        &self,
        now: Timestamp,
        enqueue: ScheduleRun<'_>,
    ) -> Result<usize, RepoError>;

    // ---- leaked secrets ----

    /// The enrollment token whose secret has `digest`, in any tenant (revoked, expired
    /// and used-up ones too); `Ok(None)` when there is none.
    async fn find_enrollment_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<EnrollmentToken>, RepoError>;

    /// The share link whose token has `digest`, in any tenant (in any state); `Ok(None)`
    /// when there is none.
    async fn find_share_link_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<ShareLink>, RepoError>;

    /// The agent whose secret has `digest`, in any tenant (revoked ones too); `Ok(None)`
    /// when there is none.
    async fn find_agent_by_secret_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<Agent>, RepoError>;

    // ---- audit log ----

    /// Lists the audit events of `tenant` that pass `filter`, newest first.
    async fn list_audit_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, RepoError>;
}

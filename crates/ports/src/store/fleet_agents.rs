//! The [`FleetStore`] part of the store port: fleets, their enrollment tokens and the
//! agents enrolled with them.
//!
//! The obligations in the [`store`](super) module docs hold for every method here.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::{
    Agent, AgentVersion, EnrollmentRefusal, EnrollmentToken, Fleet, FleetName,
};
use fleetpass_domain::ids::{AgentId, EnrollmentTokenId, EnvironmentId, FleetId, TenantId};
use fleetpass_domain::label::{LabelSelector, Labels};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::secret::SecretDigest;

use super::{EnrollBuilder, RepoError};

/// The part of [`Store`](super::Store) for fleets, their enrollment tokens and the agents
/// enrolled with them.
#[async_trait]
pub trait FleetStore: Send + Sync + 'static {
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

    /// Lists a fleet's agents, newest first, only those that carry every label of
    /// `labels` when given (filtered before paginating). `NotFound` for an unknown fleet.
    async fn list_agents(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        labels: Option<&LabelSelector>,
        page: PageRequest,
    ) -> Result<Page<Agent>, RepoError>;

    /// Replaces the labels of agent `id` of `tenant` (revoked or not) and returns it.
    /// `NotFound` for an unknown agent.
    async fn relabel_agent(
        &self,
        tenant: TenantId,
        id: AgentId,
        labels: &Labels,
        audit: &AuditEvent,
    ) -> Result<Agent, RepoError>;

    /// Revokes an agent at `at` and returns it; revoking a revoked one changes nothing
    /// and writes no audit event. Its open parts of fan-out scans fail with it
    /// (`PartFailure::AgentRevoked`), so it never holds a scan open.
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

    /// Marks an agent seen at `at` (every authenticated agent request, and every held
    /// check-in now and then). A store MAY write it later, in a batch (`lastSeenAt` is
    /// presence, not an audit record), but its own later reads of the agent MUST show
    /// it, and it MUST NOT move `last_seen_at` backwards. An unknown agent MAY be
    /// ignored.
    async fn mark_agent_seen(&self, id: AgentId, at: Timestamp) -> Result<(), RepoError>;

    /// The enrollment token whose secret has `digest`, in any tenant (revoked, expired
    /// and used-up ones too); `Ok(None)` when there is none.
    async fn find_enrollment_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<EnrollmentToken>, RepoError>;

    /// The agent whose secret has `digest`, in any tenant (revoked ones too); `Ok(None)`
    /// when there is none.
    async fn find_agent_by_secret_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<Agent>, RepoError>;
}

//! Use cases: each function takes the ports ([`Deps`]), the caller and domain values
//! already validated at the edge, decides access with the domain's pure functions and
//! makes one store call that writes the change and its audit event together.
//!
//! One error type, [`ServiceError`], serves every use case: the HTTP layer maps each
//! variant to exactly one row of the spec's error table.

pub mod agents;
pub mod auth;
pub mod directory;
pub mod fleets;
pub mod policy;
pub mod scans;
pub mod schedules;
pub mod shares;
pub mod tenants;
pub mod tokens;

use fleetpass_domain::Timestamp;
use fleetpass_domain::access::{Action, Actor, Denied, authorize};
use fleetpass_domain::audit::{AuditAction, AuditActor, AuditEvent};
use fleetpass_domain::identity::EnvScope;
use fleetpass_domain::ids::{AuditEventId, EnvironmentId, TenantId};
use uuid::Uuid;

use fleetpass_domain::fleet::EnrollmentRefusal;
use fleetpass_domain::scan::Constraint;

use crate::{Deps, RepoError};

/// The input a broken rule is about, in the domain's terms; the HTTP adapter maps each
/// to the wire field the client sent it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A presented secret, of any kind.
    Secret,
    /// The role asked for.
    Role,
    /// The environment a fleet lives in.
    Environment,
    /// The environments a token is scoped to.
    Environments,
    /// The user who owns a token (the caller's own, when no owner is named).
    OwnerUser,
    /// The service account named as a token's owner.
    OwnerServiceAccount,
    /// An agent's scan results.
    Results,
    /// A scan constraint.
    Constraint(Constraint),
    /// The agents a scan targets.
    Target,
    /// An API token's lifetime in days.
    TokenTtl,
    /// An enrollment token's lifetime in hours.
    EnrollmentTtl,
}

/// What a caller refused for its credentials can do, in the domain's terms; the HTTP
/// adapter words each, naming the routes involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// Send the enrollment token exactly as it was issued.
    EnrollmentTokenAsIssued,
    /// Act on why the enrollment was refused (most often: issue a new token).
    Enrollment(EnrollmentRefusal),
    /// Get a fresh agent access token with the agent's secret.
    FreshAccessToken,
    /// Send the agent id and secret handed out at enrollment.
    AgentCredentials,
    /// The agent was revoked (or deleted): nothing it holds works any more; the host
    /// must enroll again.
    AgentRevoked,
}

/// Why a use case did not go through.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A well-formed request that breaks a rule.
    #[error("{field:?} {message}")]
    Invalid {
        /// The offending input.
        field: Field,
        /// What is wrong, read after the field name.
        message: String,
        /// How to fix it, when the rule has more to say than the adapter's hint for
        /// the field.
        hint: Option<String>,
    },
    /// No or bad credentials; the message says which, without leaking anything.
    #[error("{message}")]
    Unauthorized {
        /// What is wrong with the credentials.
        message: String,
        /// How to get good ones, when there is more to say than the default.
        hint: Option<Remedy>,
    },
    /// Authenticated, but not allowed.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// A credential presented from outside the networks its `allowedCidrs` name.
    #[error("{} may not be used from this address", credential.with_article())]
    OutsideNetwork {
        /// Which kind of credential.
        credential: fleetpass_domain::secret::SecretKind,
        /// The address it came from, as the server judged it.
        client: Option<std::net::IpAddr>,
    },
    /// No such thing in the caller's tenant.
    #[error("not found")]
    NotFound,
    /// A uniqueness or state clash.
    #[error("conflict on {constraint}")]
    Conflict {
        /// Which rule.
        constraint: crate::conflict::Conflict,
    },
    /// The feature is off in this deployment (retrying will not help).
    #[error("{message}")]
    NotConfigured {
        /// What is off.
        message: &'static str,
        /// How to turn it on.
        hint: &'static str,
    },
    /// This process is at its configured limit (of waiting check-ins); retry after
    /// the given time, here or on another replica.
    #[error("busy; retry after {retry_after_seconds} s")]
    Busy {
        /// When to try again.
        retry_after_seconds: u64,
    },
    /// The store cannot be reached; retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else; logged, never shown.
    #[error("internal error")]
    Internal(#[source] RepoError),
}

impl From<RepoError> for ServiceError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound => Self::NotFound,
            RepoError::Conflict { constraint } => Self::Conflict { constraint },
            RepoError::Unavailable(why) => Self::Unavailable(why),
            other @ RepoError::Other(_) => Self::Internal(other),
        }
    }
}

impl ServiceError {
    /// Bad credentials, with the default hint.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized {
            message: message.into(),
            hint: None,
        }
    }

    /// A rule broken by `field`.
    pub fn invalid(
        field: Field,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// Shorthand for service results.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// Checks access; the one place services call the domain's `authorize`.
pub fn require(actor: &Actor, action: Action, env: Option<EnvironmentId>) -> ServiceResult<()> {
    authorize(actor, action, env).map_err(ServiceError::from)
}

/// A resource that an operation's path names, in an environment: what
/// [`authorize_target`] decides access to before the operation's body is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathTarget {
    /// `/tenant/discovery/fleets/{fleet_id}…`
    Fleet(fleetpass_domain::ids::FleetId),
    /// `/tenant/scans/{scan_id}…`
    Scan(fleetpass_domain::ids::ScanId),
    /// `/tenant/schedules/{schedule_id}`
    Schedule(fleetpass_domain::ids::ScheduleId),
    /// `/tenant/discovery/agents/{agent_id}`
    Agent(fleetpass_domain::ids::AgentId),
}

/// Whether `actor` may take `action` on `target`, judged as the operation itself will
/// judge it (role, then the resource's environment), so that the HTTP layer can answer
/// 404 or 403 `FORBIDDEN_SCOPE` before it says anything about a body. The operation
/// checks again; this is the early answer, not the authority.
///
/// # Errors
/// `Denied` or `NotFound`, as the operation on `target` would answer.
pub async fn authorize_target(
    deps: &Deps,
    actor: &Actor,
    action: Action,
    target: PathTarget,
) -> ServiceResult<()> {
    match target {
        PathTarget::Fleet(id) => fleets::fleet_for(deps, actor, action, id).await.map(drop),
        PathTarget::Scan(id) => scans::scan_for(deps, actor, action, id).await.map(drop),
        PathTarget::Schedule(id) => schedules::schedule_for(deps, actor, action, id)
            .await
            .map(drop),
        PathTarget::Agent(id) => fleets::agent_for(deps, actor, action, id).await.map(drop),
    }
}

impl Deps {
    /// Now, from the clock port.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// An audit event stamped with a fresh id and the current time.
    pub fn audit(
        &self,
        tenant_id: TenantId,
        actor: AuditActor,
        action: AuditAction,
        target_id: Option<Uuid>,
        details: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent {
            id: AuditEventId::from_uuid(self.ids.new_id()),
            tenant_id,
            actor,
            action,
            target_id,
            at: self.now(),
            details,
            scope: EnvScope::All,
        }
    }

    /// An audit event caused by `actor`'s token, in `actor`'s tenant.
    pub fn audit_by(
        &self,
        actor: &Actor,
        action: AuditAction,
        target_id: Uuid,
        details: serde_json::Value,
    ) -> AuditEvent {
        self.audit(
            actor.tenant_id,
            AuditActor::Token(actor.token_id.as_uuid()),
            action,
            Some(target_id),
            details,
        )
    }
}

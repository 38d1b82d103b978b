//! Audit events: one per state change, written in the same transaction as the change.

use crate::Timestamp;
use crate::identity::EnvScope;
use crate::ids::{AuditEventId, EnvironmentId, TenantId};
use uuid::Uuid;

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditActor {
    /// A tenant API token (its id).
    Token(Uuid),
    /// The platform operator (admin key or CLI).
    Platform,
    /// An unauthenticated caller, such as a secret scanner revoking a leaked token.
    Public,
    /// An agent (its id).
    Agent(Uuid),
    /// The service itself, such as the sweeper that fails overdue scans.
    System,
}

impl AuditActor {
    /// The stored kind.
    pub const fn kind(self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::Platform => "platform",
            Self::Public => "public",
            Self::Agent(_) => "agent",
            Self::System => "system",
        }
    }

    /// The stored id, if the actor has one.
    pub const fn id(self) -> Option<Uuid> {
        match self {
            Self::Token(id) | Self::Agent(id) => Some(id),
            Self::Platform | Self::Public | Self::System => None,
        }
    }

    /// Rebuilds an actor from its stored kind and id.
    pub fn from_parts(kind: &str, id: Option<Uuid>) -> Option<Self> {
        match (kind, id) {
            ("token", Some(id)) => Some(Self::Token(id)),
            ("platform", None) => Some(Self::Platform),
            ("public", None) => Some(Self::Public),
            ("agent", Some(id)) => Some(Self::Agent(id)),
            ("system", None) => Some(Self::System),
            _ => None,
        }
    }
}

/// One audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Its id (time-ordered).
    pub id: AuditEventId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// Who caused it.
    pub actor: AuditActor,
    /// What happened, `noun.verb` (see [`actions`]).
    pub action: String,
    /// The id of the thing it happened to.
    pub target_id: Option<Uuid>,
    /// When it happened.
    pub at: Timestamp,
    /// Extra, non-secret facts (names, roles, counts).
    pub details: serde_json::Value,
    /// The environments the event concerns, which decide who may read it: an
    /// environment-scoped admin sees the events its scope covers. `All` (the default)
    /// marks a tenant-wide event — principals, all-environment tokens — that only
    /// all-environments admins see.
    pub scope: EnvScope,
}

impl AuditEvent {
    /// The event, concerning only `env`.
    #[must_use]
    pub fn in_environment(self, env: EnvironmentId) -> Self {
        self.within(EnvScope::Only(std::iter::once(env).collect()))
    }

    /// The event, concerning the environments of `scope`.
    #[must_use]
    pub fn within(mut self, scope: EnvScope) -> Self {
        self.scope = scope;
        self
    }
}

/// The action names. Once written they are part of the audit log's contract.
pub mod actions {
    /// A tenant was created.
    pub const TENANT_CREATED: &str = "tenant.created";
    /// An environment was created.
    pub const ENVIRONMENT_CREATED: &str = "environment.created";
    /// An environment was renamed.
    pub const ENVIRONMENT_UPDATED: &str = "environment.updated";
    /// An environment was deleted.
    pub const ENVIRONMENT_DELETED: &str = "environment.deleted";
    /// A user was created.
    pub const USER_CREATED: &str = "user.created";
    /// A user was changed.
    pub const USER_UPDATED: &str = "user.updated";
    /// A user was deleted.
    pub const USER_DELETED: &str = "user.deleted";
    /// A service account was created.
    pub const SERVICE_ACCOUNT_CREATED: &str = "service_account.created";
    /// A service account was changed.
    pub const SERVICE_ACCOUNT_UPDATED: &str = "service_account.updated";
    /// A service account was deleted.
    pub const SERVICE_ACCOUNT_DELETED: &str = "service_account.deleted";
    /// An API token was created.
    pub const TOKEN_CREATED: &str = "token.created";
    /// An API token's name or limit changed.
    pub const TOKEN_UPDATED: &str = "token.updated";
    /// An API token was revoked.
    pub const TOKEN_REVOKED: &str = "token.revoked";
    /// An API token was rotated.
    pub const TOKEN_ROTATED: &str = "token.rotated";
    /// A token's rotated-out secret was reported as leaked and ended; the token and
    /// its current secret were left alone.
    pub const TOKEN_SECRET_RETIRED: &str = "token.secret_retired";
    /// A fleet was created (with its first enrollment token).
    pub const FLEET_CREATED: &str = "fleet.created";
    /// A fleet was renamed.
    pub const FLEET_UPDATED: &str = "fleet.updated";
    /// A fleet was deleted, with its enrollment tokens and agents.
    pub const FLEET_DELETED: &str = "fleet.deleted";
    /// An enrollment token was issued.
    pub const ENROLLMENT_TOKEN_ISSUED: &str = "enrollment_token.issued";
    /// An enrollment token was revoked.
    pub const ENROLLMENT_TOKEN_REVOKED: &str = "enrollment_token.revoked";
    /// An agent enrolled.
    pub const AGENT_ENROLLED: &str = "agent.enrolled";
    /// An agent was revoked.
    pub const AGENT_REVOKED: &str = "agent.revoked";
    /// A scan was requested.
    pub const SCAN_REQUESTED: &str = "scan.requested";
    /// An agent claimed a scan.
    pub const SCAN_CLAIMED: &str = "scan.claimed";
    /// A scan's results arrived.
    pub const SCAN_COMPLETED: &str = "scan.completed";
    /// A claimed scan got no results in time.
    pub const SCAN_FAILED: &str = "scan.failed";
    /// A queued scan passed its `notAfter`.
    pub const SCAN_EXPIRED: &str = "scan.expired";
    /// A share link was created.
    pub const SHARE_LINK_CREATED: &str = "share_link.created";
    /// A share link was opened.
    pub const SHARE_LINK_ACCESSED: &str = "share_link.accessed";
    /// A share link was revoked.
    pub const SHARE_LINK_REVOKED: &str = "share_link.revoked";
    /// A schedule was created.
    pub const SCHEDULE_CREATED: &str = "schedule.created";
    /// A schedule was changed.
    pub const SCHEDULE_UPDATED: &str = "schedule.updated";
    /// A schedule was deleted.
    pub const SCHEDULE_DELETED: &str = "schedule.deleted";
}

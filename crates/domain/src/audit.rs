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
    /// What happened.
    pub action: AuditAction,
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

/// Declares [`AuditAction`], its [`AuditAction::ALL`] and its stored names from one list.
macro_rules! audit_actions {
    ($( $(#[$doc:meta])* $name:ident => $text:literal, )*) => {
        /// What an audit event records, `noun.verb` once stored. The names are part of
        /// the audit log's contract: once written they never change.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $( $(#[$doc])* $name, )*
        }

        impl AuditAction {
            /// Every action, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$name),*];

            /// The stored (and listed) name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$name => $text, )*
                }
            }

            /// The action stored as `name`, if there is one.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $( $text => Some(Self::$name), )*
                    _ => None,
                }
            }
        }
    };
}

audit_actions! {
    /// A tenant was created.
    TenantCreated => "tenant.created",
    /// An environment was created.
    EnvironmentCreated => "environment.created",
    /// An environment was renamed.
    EnvironmentUpdated => "environment.updated",
    /// An environment was deleted.
    EnvironmentDeleted => "environment.deleted",
    /// A user was created.
    UserCreated => "user.created",
    /// A user was changed.
    UserUpdated => "user.updated",
    /// A user was deleted.
    UserDeleted => "user.deleted",
    /// A service account was created.
    ServiceAccountCreated => "service_account.created",
    /// A service account was changed.
    ServiceAccountUpdated => "service_account.updated",
    /// A service account was deleted.
    ServiceAccountDeleted => "service_account.deleted",
    /// An API token was created.
    TokenCreated => "token.created",
    /// An API token's name or limit changed.
    TokenUpdated => "token.updated",
    /// An API token was revoked.
    TokenRevoked => "token.revoked",
    /// An API token was rotated.
    TokenRotated => "token.rotated",
    /// A token's rotated-out secret was reported as leaked and ended; the token and
    /// its current secret were left alone.
    TokenSecretRetired => "token.secret_retired",
    /// An API token was presented from outside its `allowedCidrs` and refused.
    TokenNetworkRefused => "token.network_refused",
    /// The tenant's token policy (the longest lifetimes of new tokens) was set.
    TokenPolicyUpdated => "token_policy.updated",
    /// A fleet was created (with its first enrollment token).
    FleetCreated => "fleet.created",
    /// A fleet was renamed.
    FleetUpdated => "fleet.updated",
    /// A fleet was deleted, with its enrollment tokens and agents.
    FleetDeleted => "fleet.deleted",
    /// An enrollment token was issued.
    EnrollmentTokenIssued => "enrollment_token.issued",
    /// An enrollment token was revoked.
    EnrollmentTokenRevoked => "enrollment_token.revoked",
    /// An enrollment token was presented from outside its `allowedCidrs` and refused.
    EnrollmentTokenNetworkRefused => "enrollment_token.network_refused",
    /// An agent enrolled.
    AgentEnrolled => "agent.enrolled",
    /// An agent was revoked.
    AgentRevoked => "agent.revoked",
    /// An agent's labels were changed.
    AgentUpdated => "agent.updated",
    /// A scan was requested.
    ScanRequested => "scan.requested",
    /// An agent claimed a scan.
    ScanClaimed => "scan.claimed",
    /// A scan's results arrived.
    ScanCompleted => "scan.completed",
    /// A claimed scan got no results in time.
    ScanFailed => "scan.failed",
    /// A queued scan passed its `notAfter`.
    ScanExpired => "scan.expired",
    /// A scan was cancelled.
    ScanCancelled => "scan.cancelled",
    /// A share link was created.
    ShareLinkCreated => "share_link.created",
    /// A share link was opened.
    ShareLinkAccessed => "share_link.accessed",
    /// A share link was revoked.
    ShareLinkRevoked => "share_link.revoked",
    /// A schedule was created.
    ScheduleCreated => "schedule.created",
    /// A schedule was changed.
    ScheduleUpdated => "schedule.updated",
    /// A schedule was deleted.
    ScheduleDeleted => "schedule.deleted",
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored name, for filters and rows that hold text.
impl From<AuditAction> for String {
    fn from(a: AuditAction) -> Self {
        a.as_str().to_owned()
    }
}

/// Short names for the [`AuditAction`]s, so call sites read as the events they record.
pub mod actions {
    use super::AuditAction;

    /// See [`AuditAction::TenantCreated`].
    pub const TENANT_CREATED: AuditAction = AuditAction::TenantCreated;
    /// See [`AuditAction::EnvironmentCreated`].
    pub const ENVIRONMENT_CREATED: AuditAction = AuditAction::EnvironmentCreated;
    /// See [`AuditAction::EnvironmentUpdated`].
    pub const ENVIRONMENT_UPDATED: AuditAction = AuditAction::EnvironmentUpdated;
    /// See [`AuditAction::EnvironmentDeleted`].
    pub const ENVIRONMENT_DELETED: AuditAction = AuditAction::EnvironmentDeleted;
    /// See [`AuditAction::UserCreated`].
    pub const USER_CREATED: AuditAction = AuditAction::UserCreated;
    /// See [`AuditAction::UserUpdated`].
    pub const USER_UPDATED: AuditAction = AuditAction::UserUpdated;
    /// See [`AuditAction::UserDeleted`].
    pub const USER_DELETED: AuditAction = AuditAction::UserDeleted;
    /// See [`AuditAction::ServiceAccountCreated`].
    pub const SERVICE_ACCOUNT_CREATED: AuditAction = AuditAction::ServiceAccountCreated;
    /// See [`AuditAction::ServiceAccountUpdated`].
    pub const SERVICE_ACCOUNT_UPDATED: AuditAction = AuditAction::ServiceAccountUpdated;
    /// See [`AuditAction::ServiceAccountDeleted`].
    pub const SERVICE_ACCOUNT_DELETED: AuditAction = AuditAction::ServiceAccountDeleted;
    /// See [`AuditAction::TokenCreated`].
    pub const TOKEN_CREATED: AuditAction = AuditAction::TokenCreated;
    /// See [`AuditAction::TokenUpdated`].
    pub const TOKEN_UPDATED: AuditAction = AuditAction::TokenUpdated;
    /// See [`AuditAction::TokenRevoked`].
    pub const TOKEN_REVOKED: AuditAction = AuditAction::TokenRevoked;
    /// See [`AuditAction::TokenRotated`].
    pub const TOKEN_ROTATED: AuditAction = AuditAction::TokenRotated;
    /// See [`AuditAction::TokenSecretRetired`].
    pub const TOKEN_SECRET_RETIRED: AuditAction = AuditAction::TokenSecretRetired;
    /// See [`AuditAction::TokenNetworkRefused`].
    pub const TOKEN_NETWORK_REFUSED: AuditAction = AuditAction::TokenNetworkRefused;
    /// See [`AuditAction::EnrollmentTokenNetworkRefused`].
    pub const ENROLLMENT_TOKEN_NETWORK_REFUSED: AuditAction =
        AuditAction::EnrollmentTokenNetworkRefused;
    /// See [`AuditAction::TokenPolicyUpdated`].
    pub const TOKEN_POLICY_UPDATED: AuditAction = AuditAction::TokenPolicyUpdated;
    /// See [`AuditAction::FleetCreated`].
    pub const FLEET_CREATED: AuditAction = AuditAction::FleetCreated;
    /// See [`AuditAction::FleetUpdated`].
    pub const FLEET_UPDATED: AuditAction = AuditAction::FleetUpdated;
    /// See [`AuditAction::FleetDeleted`].
    pub const FLEET_DELETED: AuditAction = AuditAction::FleetDeleted;
    /// See [`AuditAction::EnrollmentTokenIssued`].
    pub const ENROLLMENT_TOKEN_ISSUED: AuditAction = AuditAction::EnrollmentTokenIssued;
    /// See [`AuditAction::EnrollmentTokenRevoked`].
    pub const ENROLLMENT_TOKEN_REVOKED: AuditAction = AuditAction::EnrollmentTokenRevoked;
    /// See [`AuditAction::AgentEnrolled`].
    pub const AGENT_ENROLLED: AuditAction = AuditAction::AgentEnrolled;
    /// See [`AuditAction::AgentRevoked`].
    pub const AGENT_REVOKED: AuditAction = AuditAction::AgentRevoked;
    /// See [`AuditAction::AgentUpdated`].
    pub const AGENT_UPDATED: AuditAction = AuditAction::AgentUpdated;
    /// See [`AuditAction::ScanRequested`].
    pub const SCAN_REQUESTED: AuditAction = AuditAction::ScanRequested;
    /// See [`AuditAction::ScanClaimed`].
    pub const SCAN_CLAIMED: AuditAction = AuditAction::ScanClaimed;
    /// See [`AuditAction::ScanCompleted`].
    pub const SCAN_COMPLETED: AuditAction = AuditAction::ScanCompleted;
    /// See [`AuditAction::ScanFailed`].
    pub const SCAN_FAILED: AuditAction = AuditAction::ScanFailed;
    /// See [`AuditAction::ScanExpired`].
    pub const SCAN_EXPIRED: AuditAction = AuditAction::ScanExpired;
    /// See [`AuditAction::ScanCancelled`].
    pub const SCAN_CANCELLED: AuditAction = AuditAction::ScanCancelled;
    /// See [`AuditAction::ShareLinkCreated`].
    pub const SHARE_LINK_CREATED: AuditAction = AuditAction::ShareLinkCreated;
    /// See [`AuditAction::ShareLinkAccessed`].
    pub const SHARE_LINK_ACCESSED: AuditAction = AuditAction::ShareLinkAccessed;
    /// See [`AuditAction::ShareLinkRevoked`].
    pub const SHARE_LINK_REVOKED: AuditAction = AuditAction::ShareLinkRevoked;
    /// See [`AuditAction::ScheduleCreated`].
    pub const SCHEDULE_CREATED: AuditAction = AuditAction::ScheduleCreated;
    /// See [`AuditAction::ScheduleUpdated`].
    pub const SCHEDULE_UPDATED: AuditAction = AuditAction::ScheduleUpdated;
    /// See [`AuditAction::ScheduleDeleted`].
    pub const SCHEDULE_DELETED: AuditAction = AuditAction::ScheduleDeleted;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_through_its_stored_name() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
        }
        assert_eq!(
            AuditAction::TokenSecretRetired.as_str(),
            "token.secret_retired"
        );
        assert_eq!(AuditAction::parse("environment"), None);
    }
}

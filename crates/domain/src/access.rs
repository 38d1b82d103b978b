//! Access control as a pure function: who is asking (an [`Actor`]), what they want to do
//! (an [`Action`]) and where (the resource's environment, if it has one).
//!
//! The HTTP layer gathers these inputs and maps the outcome to 403 `FORBIDDEN_ROLE` or
//! `FORBIDDEN_SCOPE`; nothing else decides access.

use crate::identity::{EnvScope, Principal, Role};
use crate::ids::{EnvironmentId, PrincipalId, TenantId, TokenId};

/// An authenticated caller: a live API token and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The tenant the token belongs to; every lookup is confined to it.
    pub tenant_id: TenantId,
    /// The token presented.
    pub token_id: TokenId,
    /// The token's owner, if it still exists.
    pub owner_id: Option<PrincipalId>,
    /// The token's role.
    pub role: Role,
    /// The token's environment scope.
    pub scope: EnvScope,
}

/// What an actor wants to do, at the granularity of the RBAC matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read fleets, agents, scans, artifacts, share-link metadata, schedules; `/api/me`.
    Read,
    /// Create, change or delete fleets, enrollment tokens, scans, share links, schedules.
    Operate,
    /// Anything under `/api/admin/*` except managing environments.
    Administer,
    /// Create, rename or delete environments, or set the tenant's token policy: settings
    /// that reach every environment, so they need an all-environments admin.
    ManageEnvironments,
}

impl Action {
    /// The least role that may take this action.
    pub const fn min_role(self) -> Role {
        match self {
            Self::Read => Role::Viewer,
            Self::Operate => Role::Operator,
            Self::Administer | Self::ManageEnvironments => Role::Admin,
        }
    }
}

/// Why access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The token's role is below what the action needs.
    #[error("this action needs the {needed} role; the token has {has}")]
    Role {
        /// The least role that would do.
        needed: Role,
        /// The token's role.
        has: Role,
    },
    /// The resource, or the requested scope, lies outside the token's environments.
    #[error("the resource is outside the token's environments")]
    Scope,
}

/// Decides whether `actor` may take `action` on a resource living in `resource_env`
/// (`None` for tenant-wide resources such as tokens or users).
///
/// Role is checked before scope, so a viewer learns nothing about environments.
///
/// # Errors
/// [`Denied::Role`] when the role is too low, else [`Denied::Scope`] when the resource
/// (or, for [`Action::ManageEnvironments`], the tenant) is outside the token's scope.
///
/// # Examples
/// ```
/// use fleetpass_domain::access::{Action, Actor, Denied, authorize};
/// use fleetpass_domain::identity::{EnvScope, Role};
/// use fleetpass_domain::ids::{EnvironmentId, TenantId, TokenId};
/// use uuid::Uuid;
///
/// let (staging, production) = (EnvironmentId::from_uuid(Uuid::from_u128(1)), EnvironmentId::from_uuid(Uuid::from_u128(2)));
/// let operator = Actor {
///     tenant_id: TenantId::from_uuid(Uuid::from_u128(10)),
///     token_id: TokenId::from_uuid(Uuid::from_u128(11)),
///     owner_id: None,
///     role: Role::Operator,
///     scope: EnvScope::from_wire(false, vec![staging]).unwrap(),
/// };
/// assert_eq!(authorize(&operator, Action::Operate, Some(staging)), Ok(()));
/// assert_eq!(authorize(&operator, Action::Operate, Some(production)), Err(Denied::Scope));
/// assert_eq!(
///     authorize(&operator, Action::Administer, None),
///     Err(Denied::Role { needed: Role::Admin, has: Role::Operator })
/// );
/// ```
pub fn authorize(
    actor: &Actor,
    action: Action,
    resource_env: Option<EnvironmentId>,
) -> Result<(), Denied> {
    let needed = action.min_role();
    if actor.role < needed {
        return Err(Denied::Role {
            needed,
            has: actor.role,
        });
    }
    if action == Action::ManageEnvironments && !actor.scope.is_all() {
        return Err(Denied::Scope);
    }
    match resource_env {
        Some(env) if !actor.scope.contains(env) => Err(Denied::Scope),
        _ => Ok(()),
    }
}

/// Why a token may not be minted with the requested powers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Asked for a role above the calling token's.
    #[error("role cannot be higher than the calling token's role ({0})")]
    RoleAboveCaller(Role),
    /// Asked for a role above the owner's.
    #[error("role cannot be higher than the owner's role ({0})")]
    RoleAboveOwner(Role),
    /// Asked for environments the calling token does not reach.
    #[error("the requested environments are broader than the calling token's scope")]
    ScopeBroaderThanCaller,
    /// The owner is disabled and may not own new tokens.
    #[error("the owner is disabled")]
    OwnerDisabled,
}

/// Checks that `actor` may mint a token owned by `owner` with `role` and `scope`: no
/// token can create one more powerful than itself or than its owner.
///
/// # Errors
/// The first rule the grant breaks: a disabled owner, a role above the caller's or the
/// owner's, or a scope the caller does not cover.
pub fn check_grant(
    actor: &Actor,
    owner: &Principal,
    role: Role,
    scope: &EnvScope,
) -> Result<(), GrantError> {
    if owner.disabled {
        return Err(GrantError::OwnerDisabled);
    }
    if role > actor.role {
        return Err(GrantError::RoleAboveCaller(actor.role));
    }
    if role > owner.role {
        return Err(GrantError::RoleAboveOwner(owner.role));
    }
    if !actor.scope.covers(scope) {
        return Err(GrantError::ScopeBroaderThanCaller);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{PrincipalKind, ServiceAccountName};
    use time::macros::datetime;
    use uuid::Uuid;

    fn env(n: u128) -> EnvironmentId {
        EnvironmentId::from_uuid(Uuid::from_u128(n))
    }

    fn actor(role: Role, scope: EnvScope) -> Actor {
        Actor {
            tenant_id: TenantId::from_uuid(Uuid::from_u128(1)),
            token_id: TokenId::from_uuid(Uuid::from_u128(2)),
            owner_id: None,
            role,
            scope,
        }
    }

    fn owner(role: Role, disabled: bool) -> Principal {
        Principal {
            id: PrincipalId::from_uuid(Uuid::from_u128(3)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(1)),
            kind: PrincipalKind::ServiceAccount {
                name: ServiceAccountName::new("ci").unwrap(),
            },
            role,
            disabled,
            created_at: datetime!(2026-11-22 10:00 UTC),
        }
    }

    #[test]
    fn rbac_matrix() {
        use Action::*;
        let expect = [
            (Role::Viewer, [true, false, false, false]),
            (Role::Operator, [true, true, false, false]),
            (Role::Admin, [true, true, true, true]),
        ];
        for (role, allowed) in expect {
            let a = actor(role, EnvScope::All);
            for (action, ok) in [Read, Operate, Administer, ManageEnvironments]
                .into_iter()
                .zip(allowed)
            {
                assert_eq!(authorize(&a, action, None).is_ok(), ok, "{role} {action:?}");
            }
        }
    }

    #[test]
    fn scope_limits_resources_and_environment_management() {
        let a = actor(
            Role::Admin,
            EnvScope::from_wire(false, vec![env(1)]).unwrap(),
        );
        assert_eq!(authorize(&a, Action::Read, Some(env(1))), Ok(()));
        assert_eq!(
            authorize(&a, Action::Read, Some(env(2))),
            Err(Denied::Scope)
        );
        assert_eq!(
            authorize(&a, Action::ManageEnvironments, None),
            Err(Denied::Scope)
        );
        let viewer = actor(
            Role::Viewer,
            EnvScope::from_wire(false, vec![env(1)]).unwrap(),
        );
        assert!(matches!(
            authorize(&viewer, Action::Operate, Some(env(2))),
            Err(Denied::Role { .. })
        ));
    }

    #[test]
    fn no_token_mints_a_stronger_one() {
        let scoped = EnvScope::from_wire(false, vec![env(1)]).unwrap();
        let admin_all = actor(Role::Admin, EnvScope::All);
        let admin_scoped = actor(Role::Admin, scoped.clone());
        assert_eq!(
            check_grant(
                &admin_all,
                &owner(Role::Admin, false),
                Role::Admin,
                &EnvScope::All
            ),
            Ok(())
        );
        assert_eq!(
            check_grant(
                &admin_all,
                &owner(Role::Viewer, false),
                Role::Operator,
                &EnvScope::All
            ),
            Err(GrantError::RoleAboveOwner(Role::Viewer))
        );
        assert_eq!(
            check_grant(
                &actor(Role::Operator, EnvScope::All),
                &owner(Role::Admin, false),
                Role::Admin,
                &EnvScope::All
            ),
            Err(GrantError::RoleAboveCaller(Role::Operator))
        );
        assert_eq!(
            check_grant(
                &admin_scoped,
                &owner(Role::Admin, false),
                Role::Viewer,
                &EnvScope::All
            ),
            Err(GrantError::ScopeBroaderThanCaller)
        );
        let wider = EnvScope::from_wire(false, vec![env(1), env(2)]).unwrap();
        assert_eq!(
            check_grant(
                &admin_scoped,
                &owner(Role::Admin, false),
                Role::Viewer,
                &wider
            ),
            Err(GrantError::ScopeBroaderThanCaller)
        );
        assert_eq!(
            check_grant(
                &admin_scoped,
                &owner(Role::Admin, false),
                Role::Viewer,
                &scoped
            ),
            Ok(())
        );
        assert_eq!(
            check_grant(
                &admin_all,
                &owner(Role::Admin, true),
                Role::Viewer,
                &EnvScope::All
            ),
            Err(GrantError::OwnerDisabled)
        );
    }
}

//! API token administration: create, read, list, change, revoke, rotate.

use fleetpass_domain::access::Denied;
use fleetpass_domain::access::{Action, Actor, GrantError, check_grant};
use fleetpass_domain::audit::actions;
use fleetpass_domain::identity::{EnvScope, Principal, Role};
use fleetpass_domain::ids::{PrincipalId, TokenId};
use fleetpass_domain::network::AllowedCidrs;
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::secret::{PlainSecret, SecretKind};
use fleetpass_domain::token::{
    ApiToken, GraceHours, RateLimitPerMinute, TokenName, TokenStatus, TokenTtlDays,
};
use serde_json::json;

use super::{Field, ServiceError, ServiceResult, policy, require};
use crate::{Conflict, Deps, RepoError};

/// Who will own a new token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerRef {
    /// The calling token's owner (neither owner field given).
    Caller,
    /// A user of the tenant (`ownerUserId`).
    User(PrincipalId),
    /// A service account of the tenant (`ownerServiceAccountId`).
    ServiceAccount(PrincipalId),
}

impl OwnerRef {
    /// The input that named the owner, for error messages.
    fn field(self) -> Field {
        match self {
            Self::ServiceAccount(_) => Field::OwnerServiceAccount,
            Self::Caller | Self::User(_) => Field::OwnerUser,
        }
    }
}

/// A validated token creation request.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Its name.
    pub name: TokenName,
    /// Its owner.
    pub owner: OwnerRef,
    /// Its role.
    pub role: Role,
    /// Its environments.
    pub scope: EnvScope,
    /// Its lifetime.
    pub ttl: TokenTtlDays,
    /// Its own rate limit, if any.
    pub rate_limit: Option<RateLimitPerMinute>,
    /// The networks it may be used from.
    pub allowed_cidrs: AllowedCidrs,
}

/// A token and its secret, shown this once.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token's metadata.
    pub token: ApiToken,
    /// Its secret.
    pub secret: PlainSecret,
}

/// A validated change to a token: only the name and the rate limit can change.
#[derive(Debug, Clone, Default)]
pub struct TokenPatch {
    /// A new name.
    pub name: Option<TokenName>,
    /// A new limit; `Some(None)` goes back to the default.
    pub rate_limit: Option<Option<RateLimitPerMinute>>,
    /// New network restrictions; an empty list lifts them.
    pub allowed_cidrs: Option<AllowedCidrs>,
}

async fn resolve_owner(deps: &Deps, actor: &Actor, owner: OwnerRef) -> ServiceResult<Principal> {
    let field = owner.field();
    let unknown = |what: &str| {
        ServiceError::invalid(
            field,
            format!("does not name a {what} of this tenant"),
            None,
        )
    };
    let (id, want_user) = match owner {
        OwnerRef::Caller => (actor.owner_id.ok_or_else(|| unknown("user"))?, None),
        OwnerRef::User(id) => (id, Some(true)),
        OwnerRef::ServiceAccount(id) => (id, Some(false)),
    };
    let principal = match deps.store.get_principal(actor.tenant_id, id).await {
        Err(RepoError::NotFound) => None,
        other => Some(other?),
    };
    match (principal, want_user) {
        (Some(p), Some(user)) if p.is_user() != user => {
            Err(unknown(if user { "user" } else { "service account" }))
        }
        (Some(p), _) => Ok(p),
        (None, Some(false)) => Err(unknown("service account")),
        (None, _) => Err(unknown("user")),
    }
}

/// Creates a token for `new.owner`, never more powerful than the caller or the owner.
///
/// # Errors
/// `Denied` for a non-admin caller or a scope broader than the caller's; `Invalid` for
/// an unknown or disabled owner, unknown environments, a role above the caller's or
/// the owner's, or a lifetime above the tenant's token policy; store errors.
pub async fn create_token(deps: &Deps, actor: &Actor, new: NewToken) -> ServiceResult<IssuedToken> {
    require(actor, Action::Administer, None)?;
    let owner = resolve_owner(deps, actor, new.owner).await?;
    let missing = deps
        .store
        .missing_environments(actor.tenant_id, &new.scope.ids())
        .await?;
    if !missing.is_empty() {
        let list = missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ServiceError::invalid(
            Field::Environments,
            format!("names environments that do not exist in this tenant: {list}"),
            None,
        ));
    }
    check_grant(actor, &owner, new.role, &new.scope).map_err(|e| match e {
        GrantError::ScopeBroaderThanCaller => ServiceError::Denied(Denied::Scope),
        GrantError::OwnerDisabled => {
            ServiceError::invalid(new.owner.field(), "names a disabled owner", None)
        }
        GrantError::RoleAboveCaller(max) => ServiceError::invalid(
            Field::Role,
            format!("cannot be higher than the calling token's role ({max})"),
            format!("Use {max} or a lower role."),
        ),
        GrantError::RoleAboveOwner(max) => ServiceError::invalid(
            Field::Role,
            format!("cannot be higher than the owner's role ({max})"),
            format!("Use {max} or a lower role."),
        ),
    })?;
    deps.store
        .get_token_policy(actor.tenant_id)
        .await?
        .check_token_ttl(new.ttl)
        .map_err(policy::exceeded)?;
    let now = deps.now();
    let secret = PlainSecret::from_random(SecretKind::ApiToken, deps.secrets.random_32());
    let token = ApiToken {
        id: TokenId::from_uuid(deps.ids.new_id()),
        tenant_id: actor.tenant_id,
        owner_id: Some(owner.id),
        name: new.name,
        role: new.role,
        scope: new.scope,
        rate_limit_per_minute: new.rate_limit,
        expires_at: new.ttl.expiry_from(now),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
        hint: secret.hint(),
        allowed_cidrs: new.allowed_cidrs,
    };
    let audit = deps
        .audit_by(
            actor,
            actions::TOKEN_CREATED,
            token.id.as_uuid(),
            json!({"name": token.name.as_str(), "role": token.role.as_str(), "hint": token.hint,
                   "allowedCidrs": token.allowed_cidrs.to_strings()}),
        )
        .within(token.scope.clone());
    deps.store
        .create_token(&token, &secret.digest(), &audit)
        .await?;
    Ok(IssuedToken { token, secret })
}

/// Reads a token the caller may manage: one whose scope the caller's covers.
async fn manageable(deps: &Deps, actor: &Actor, id: TokenId) -> ServiceResult<ApiToken> {
    require(actor, Action::Administer, None)?;
    let token = deps.store.get_token(actor.tenant_id, id).await?;
    if actor.scope.covers(&token.scope) {
        Ok(token)
    } else {
        Err(Denied::Scope.into())
    }
}

/// Reads a token.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn get_token(deps: &Deps, actor: &Actor, id: TokenId) -> ServiceResult<ApiToken> {
    manageable(deps, actor, id).await
}

/// Lists the tenant's tokens, newest first.
///
/// # Errors
/// `Denied`, store errors.
pub async fn list_tokens(
    deps: &Deps,
    actor: &Actor,
    page: PageRequest,
) -> ServiceResult<Page<ApiToken>> {
    require(actor, Action::Administer, None)?;
    let environments = (!actor.scope.is_all()).then(|| actor.scope.ids());
    Ok(deps
        .store
        .list_tokens(actor.tenant_id, environments.as_deref(), page)
        .await?)
}

/// Changes a token's name or rate limit.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn update_token(
    deps: &Deps,
    actor: &Actor,
    id: TokenId,
    patch: TokenPatch,
) -> ServiceResult<ApiToken> {
    let mut token = manageable(deps, actor, id).await?;
    if let Some(name) = patch.name {
        token.name = name;
    }
    if let Some(limit) = patch.rate_limit {
        token.rate_limit_per_minute = limit;
    }
    if let Some(cidrs) = patch.allowed_cidrs {
        token.allowed_cidrs = cidrs;
    }
    let audit = deps.audit_by(
        actor,
        actions::TOKEN_UPDATED,
        id.as_uuid(),
        json!({"name": token.name.as_str(), "rateLimitPerMinute": token.rate_limit_per_minute.map(RateLimitPerMinute::get),
               "allowedCidrs": token.allowed_cidrs.to_strings()}),
    )
    .within(token.scope.clone());
    deps.store.update_token(&token, &audit).await?;
    Ok(token)
}

/// Revokes a token at once. Revoking a revoked token is a no-op.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn revoke_token(deps: &Deps, actor: &Actor, id: TokenId) -> ServiceResult<ApiToken> {
    let token = manageable(deps, actor, id).await?;
    let audit = deps
        .audit_by(actor, actions::TOKEN_REVOKED, id.as_uuid(), json!({}))
        .within(token.scope);
    Ok(deps
        .store
        .revoke_token(actor.tenant_id, id, deps.now(), &audit)
        .await?)
}

/// Gives a token a new secret with the same settings; the old secret keeps working for
/// `grace`.
///
/// Under a tenant token policy, a token that would outlive `now` plus the policy's
/// maximum is capped to it: a rotation hands out a new secret, and a new secret must
/// not carry a lifetime the policy no longer allows (refusing the rotation instead
/// would leave the old, longer-lived secret in use). A token expiring sooner keeps its
/// expiry; rotation never extends one.
///
/// # Errors
/// `Denied`, `NotFound`; `Conflict(TokenNotActive)` for a revoked or expired token;
/// store errors.
pub async fn rotate_token(
    deps: &Deps,
    actor: &Actor,
    id: TokenId,
    grace: GraceHours,
) -> ServiceResult<IssuedToken> {
    let token = manageable(deps, actor, id).await?;
    let now = deps.now();
    if token.status(now) != TokenStatus::Active {
        return Err(ServiceError::Conflict {
            constraint: Conflict::TokenNotActive,
        });
    }
    let policy = deps.store.get_token_policy(actor.tenant_id).await?;
    let expires_at_most = policy.max_token_days.map(|max| max.expiry_from(now));
    let capped = policy.rotated_expiry(token.expires_at, now) < token.expires_at;
    let secret = PlainSecret::from_random(SecretKind::ApiToken, deps.secrets.random_32());
    let old_valid_until = now + time::Duration::hours(i64::from(grace.get()));
    let audit = deps
        .audit_by(
            actor,
            actions::TOKEN_ROTATED,
            id.as_uuid(),
            json!({
                "graceHours": grace.get(),
                "hint": secret.hint(),
                "expiryCappedToDays": capped.then(|| policy.max_token_days.map(TokenTtlDays::get)).flatten(),
            }),
        )
        .within(token.scope.clone());
    let token = deps
        .store
        .rotate_token(
            actor.tenant_id,
            id,
            &secret.digest(),
            &secret.hint(),
            old_valid_until,
            expires_at_most,
            &audit,
        )
        .await?;
    Ok(IssuedToken { token, secret })
}

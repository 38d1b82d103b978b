//! The tenant's token policy: the longest lifetimes of new API tokens and enrollment
//! tokens. Any admin reads it, every caller sees it in `/api/me`, and only an admin whose
//! token covers all environments sets it: a policy reaches every environment, like the
//! environments themselves, so it takes the same check ([`Action::ManageEnvironments`]).
//! The token and fleet use cases enforce it.

use fleetpass_domain::access::{Action, Actor};
use fleetpass_domain::audit::actions;
use fleetpass_domain::fleet::EnrollmentTtlHours;
use fleetpass_domain::policy::{PolicyExceeded, TokenPolicy};
use fleetpass_domain::token::TokenTtlDays;
use serde_json::json;

use super::{Field, ServiceError, ServiceResult, require};
use crate::Deps;

/// Reads the caller's tenant's token policy, for an admin.
///
/// # Errors
/// `Denied` below admin; store errors.
pub async fn get_token_policy(deps: &Deps, actor: &Actor) -> ServiceResult<TokenPolicy> {
    require(actor, Action::Administer, None)?;
    Ok(deps.store.get_token_policy(actor.tenant_id).await?)
}

/// Reads the caller's tenant's token policy, for any role: `/api/me` shows it, so that
/// whoever creates tokens can see the limits they will meet.
///
/// # Errors
/// Store errors.
pub async fn own_token_policy(deps: &Deps, actor: &Actor) -> ServiceResult<TokenPolicy> {
    require(actor, Action::Read, None)?;
    Ok(deps.store.get_token_policy(actor.tenant_id).await?)
}

/// Replaces the caller's tenant's token policy (both maxima at once; `None` lifts one).
/// Tokens that exist keep their expiry; the policy applies to what is created or
/// rotated from now on.
///
/// # Errors
/// `Denied` below admin, or for an admin scoped to some environments; store errors.
pub async fn set_token_policy(
    deps: &Deps,
    actor: &Actor,
    policy: TokenPolicy,
) -> ServiceResult<TokenPolicy> {
    require(actor, Action::ManageEnvironments, None)?;
    let audit = deps.audit_by(
        actor,
        actions::TOKEN_POLICY_UPDATED,
        actor.tenant_id.as_uuid(),
        json!({
            "maxExpiresInDays": policy.max_token_days.map(TokenTtlDays::get),
            "maxEnrollmentExpiresHours": policy.max_enrollment_hours.map(EnrollmentTtlHours::get),
        }),
    );
    deps.store
        .set_token_policy(actor.tenant_id, &policy, &audit)
        .await?;
    Ok(policy)
}

/// The 422 of a lifetime above the policy: on the field that asked for it, with the
/// policy's maximum in the message and how to fix it in the hint.
pub(crate) fn exceeded(e: PolicyExceeded) -> ServiceError {
    let field = match e {
        PolicyExceeded::TokenDays { .. } => Field::TokenTtl,
        PolicyExceeded::EnrollmentHours { .. } => Field::EnrollmentTtl,
    };
    ServiceError::invalid(field, e.to_string(), e.hint())
}

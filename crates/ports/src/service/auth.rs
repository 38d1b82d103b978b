//! Authentication of API tokens, `/api/me`, and the public leaked-secret revocation.

use fleetpass_domain::access::Actor;
use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::secret::{PlainSecret, SecretKind};
use fleetpass_domain::token::{ApiToken, authenticate as decide};
use serde_json::json;

use super::{Field, ServiceError, ServiceResult};
use crate::Deps;

/// Turns a presented API token into an [`Actor`]: checks its shape and checksum before
/// any lookup, then asks the domain whether the stored token still works. Records the
/// use (coarsely) as `lastUsedAt`.
pub async fn authenticate(deps: &Deps, presented: &str) -> ServiceResult<(Actor, ApiToken)> {
    let secret = PlainSecret::parse_kind(presented, SecretKind::ApiToken)
        .map_err(|e| ServiceError::unauthorized(e.refusal(SecretKind::ApiToken)))?;
    let lookup = deps.store.find_token_by_digest(&secret.digest()).await?;
    let now = deps.now();
    let (actor, token) =
        decide(lookup, now).map_err(|e| ServiceError::unauthorized(e.to_string()))?;
    if token.last_used_is_stale(now) {
        // A lost `lastUsedAt` write must not fail the request it describes.
        if let Err(e) = deps.store.touch_token(token.id, now).await {
            tracing::warn!(error = %e, token_id = %token.id, "could not record lastUsedAt");
        }
    }
    Ok((actor, token))
}

/// Revokes whatever Fleetpass secret this is, if it exists, without credentials: for
/// secret scanners and anyone who finds a leak. The outcome is the same whether or not
/// the secret existed, so this reveals nothing; the owner's tenant gets an audit event.
///
/// # Errors
/// `Invalid` when the text is not a Fleetpass secret at all (wrong prefix, shape or
/// checksum): that is decided without any lookup, so it leaks nothing either.
pub async fn revoke_leaked(deps: &Deps, presented: &str) -> ServiceResult<()> {
    let secret = PlainSecret::parse(presented).map_err(|e| {
        ServiceError::invalid(
            Field::Secret,
            e.to_string(),
            "Send the complete secret as found, including its prefix.".to_owned(),
        )
    })?;
    let now = deps.now();
    let reported = |tenant, action, target: uuid::Uuid| {
        deps.audit(
            tenant,
            AuditActor::Public,
            action,
            Some(target),
            json!({"reason": "reported as leaked", "hint": secret.hint()}),
        )
    };
    // Each store's revoke is idempotent: an already revoked secret writes nothing more.
    match secret.kind() {
        SecretKind::ApiToken => {
            if let Some(found) = deps.store.find_token_by_digest(&secret.digest()).await? {
                let t = found.token;
                if found.secret_valid_until.is_some() {
                    // A rotated-out secret: it stops working (if it still did), and its
                    // replacement, which did not leak, goes on working.
                    let audit =
                        reported(t.tenant_id, actions::TOKEN_SECRET_RETIRED, t.id.as_uuid())
                            .within(t.scope);
                    deps.store
                        .retire_token_secret(&secret.digest(), now, &audit)
                        .await?;
                } else {
                    let audit = reported(t.tenant_id, actions::TOKEN_REVOKED, t.id.as_uuid())
                        .within(t.scope);
                    deps.store
                        .revoke_token(t.tenant_id, t.id, now, &audit)
                        .await?;
                }
            }
        }
        SecretKind::Enrollment => {
            if let Some(t) = deps
                .store
                .find_enrollment_token_by_digest(&secret.digest())
                .await?
            {
                let audit = reported(
                    t.tenant_id,
                    actions::ENROLLMENT_TOKEN_REVOKED,
                    t.id.as_uuid(),
                );
                deps.store
                    .revoke_enrollment_token(t.tenant_id, t.fleet_id, t.id, now, &audit)
                    .await?;
            }
        }
        SecretKind::Share => {
            if let Some(l) = deps
                .store
                .find_share_link_by_digest(&secret.digest())
                .await?
            {
                let audit = reported(l.tenant_id, actions::SHARE_LINK_REVOKED, l.id.as_uuid());
                deps.store
                    .revoke_share_link(l.tenant_id, l.id, now, &audit)
                    .await?;
            }
        }
        SecretKind::Agent => {
            if let Some(a) = deps
                .store
                .find_agent_by_secret_digest(&secret.digest())
                .await?
            {
                let audit = reported(a.tenant_id, actions::AGENT_REVOKED, a.id.as_uuid());
                deps.store
                    .revoke_agent(a.tenant_id, a.id, now, &audit)
                    .await?;
            }
        }
    }
    Ok(())
}

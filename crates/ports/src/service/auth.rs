//! Authentication of API tokens, `/api/me`, and the public leaked-secret revocation.

use fleetpass_domain::access::Actor;
use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::secret::{PlainSecret, SecretKind};
use fleetpass_domain::token::{ApiToken, authenticate as decide};
use serde_json::json;

use super::{ServiceError, ServiceResult};
use crate::Deps;

/// Turns a presented API token into an [`Actor`]: checks its shape and checksum before
/// any lookup, then asks the domain whether the stored token still works. Records the
/// use (coarsely) as `lastUsedAt`.
pub async fn authenticate(deps: &Deps, presented: &str) -> ServiceResult<(Actor, ApiToken)> {
    let secret = PlainSecret::parse_kind(presented, SecretKind::ApiToken)
        .map_err(|e| ServiceError::unauthorized(format!("the API token {e}")))?;
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
            "token",
            e.to_string(),
            "Send the complete secret as found, including its prefix.".to_owned(),
        )
    })?;
    match secret.kind() {
        SecretKind::ApiToken => {
            let Some(found) = deps.store.find_token_by_digest(&secret.digest()).await? else {
                return Ok(());
            };
            let token = found.token;
            if token.revoked_at.is_some() {
                return Ok(());
            }
            let audit = deps.audit(
                token.tenant_id,
                AuditActor::Public,
                actions::TOKEN_REVOKED,
                Some(token.id.as_uuid()),
                json!({"reason": "reported as leaked", "hint": secret.hint()}),
            );
            deps.store
                .revoke_token(token.tenant_id, token.id, deps.now(), &audit)
                .await?;
            Ok(())
        }
        // Enrollment, share and agent secrets arrive with fleets, share links and agents;
        // until then no such secret can exist, which is exactly "nothing to revoke".
        SecretKind::Enrollment | SecretKind::Share | SecretKind::Agent => Ok(()),
    }
}

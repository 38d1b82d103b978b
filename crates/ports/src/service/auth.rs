//! Authentication of API tokens, `/api/me`, and the public leaked-secret revocation.

use std::net::IpAddr;

use fleetpass_domain::access::Actor;
use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::fleet::EnrollmentStatus;
use fleetpass_domain::secret::{PlainSecret, SecretKind};
use fleetpass_domain::share::ShareStatus;
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

/// What a report of a leaked secret found, for the one caller that may hear it (a
/// signature-verified secret-scanning partner); the public endpoint answers the same
/// whatever it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakOutcome {
    /// It was a live Fleetpass secret (it would have been accepted now): it is
    /// revoked, and its tenant has the audit event.
    Revoked,
    /// Anything else: not a Fleetpass secret, a bad checksum, unknown, or already
    /// revoked, expired, used up or rotated out. Whatever existed is revoked all the
    /// same (revoking is idempotent).
    NotLive,
}

/// Refuses `token` when `client` is outside its `allowedCidrs`, and audits the attempt
/// in the token's tenant (the address and the token, never the secret). Called after
/// the token's own rate limit counted the request, so refusals cost at most that many
/// audit writes a minute. A failed audit write is logged and the request refused all
/// the same: a restriction never fails open.
///
/// # Errors
/// `OutsideNetwork` when the address is not allowed.
pub async fn check_network(
    deps: &Deps,
    token: &ApiToken,
    client: Option<IpAddr>,
) -> ServiceResult<()> {
    if token.allowed_cidrs.allows(client) {
        return Ok(());
    }
    let audit = deps
        .audit(
            token.tenant_id,
            AuditActor::Token(token.id.as_uuid()),
            actions::TOKEN_NETWORK_REFUSED,
            Some(token.id.as_uuid()),
            json!({"client": client.map(|ip| ip.to_string()), "allowedCidrs": token.allowed_cidrs.to_strings()}),
        )
        .within(token.scope.clone());
    if let Err(e) = deps.store.record_audit(&audit).await {
        tracing::warn!(error = %e, token_id = %token.id, "could not audit a refused network");
    }
    Err(ServiceError::OutsideNetwork {
        credential: SecretKind::ApiToken,
        client,
    })
}

/// Revokes whatever Fleetpass secret this is, if it exists, without credentials: for
/// secret scanners and anyone who finds a leak. The public endpoint answers the same
/// whatever the outcome, so it reveals nothing; the owner's tenant gets an audit event.
///
/// # Errors
/// `Invalid` when the text is not a Fleetpass secret at all (wrong prefix, shape or
/// checksum): that is decided without any lookup, so it leaks nothing either.
pub async fn revoke_leaked(deps: &Deps, presented: &str) -> ServiceResult<LeakOutcome> {
    let secret = PlainSecret::parse(presented).map_err(|e| {
        ServiceError::invalid(
            Field::Secret,
            e.to_string(),
            "Send the complete secret as found, including its prefix.".to_owned(),
        )
    })?;
    revoke_secret(deps, &secret).await
}

/// [`revoke_leaked`] for a batch a secret-scanning partner reported, in order: one
/// outcome per text, a text that is not a Fleetpass secret being `NotLive`. The same
/// secret twice is `Revoked` the first time and `NotLive` after (it is revoked then).
///
/// # Errors
/// A store failure, at the first one: the secrets before it are revoked already.
pub async fn revoke_reported<'a>(
    deps: &Deps,
    presented: impl IntoIterator<Item = &'a str>,
) -> ServiceResult<Vec<LeakOutcome>> {
    let mut outcomes = Vec::new();
    for text in presented {
        outcomes.push(match PlainSecret::parse(text) {
            Ok(secret) => revoke_secret(deps, &secret).await?,
            Err(_) => LeakOutcome::NotLive,
        });
    }
    Ok(outcomes)
}

/// The one revocation of a reported secret: whether it was live is read from the
/// record found before it is revoked.
async fn revoke_secret(deps: &Deps, secret: &PlainSecret) -> ServiceResult<LeakOutcome> {
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
    let live = |yes: bool| {
        if yes {
            LeakOutcome::Revoked
        } else {
            LeakOutcome::NotLive
        }
    };
    // Each store's revoke is idempotent: an already revoked secret writes nothing more.
    let outcome = match secret.kind() {
        SecretKind::ApiToken => {
            let Some(found) = deps.store.find_token_by_digest(&secret.digest()).await? else {
                return Ok(LeakOutcome::NotLive);
            };
            // Live exactly when it would authenticate now: the one rule for that.
            let outcome = live(decide(Some(found.clone()), now).is_ok());
            let t = found.token;
            if found.secret_valid_until.is_some() {
                // A rotated-out secret: it stops working (if it still did), and its
                // replacement, which did not leak, goes on working.
                let audit = reported(t.tenant_id, actions::TOKEN_SECRET_RETIRED, t.id.as_uuid())
                    .within(t.scope);
                deps.store
                    .retire_token_secret(&secret.digest(), now, &audit)
                    .await?;
            } else {
                let audit =
                    reported(t.tenant_id, actions::TOKEN_REVOKED, t.id.as_uuid()).within(t.scope);
                deps.store
                    .revoke_token(t.tenant_id, t.id, now, &audit)
                    .await?;
            }
            outcome
        }
        SecretKind::Enrollment => {
            let Some(t) = deps
                .store
                .find_enrollment_token_by_digest(&secret.digest())
                .await?
            else {
                return Ok(LeakOutcome::NotLive);
            };
            let outcome = live(t.status(now) == EnrollmentStatus::Active);
            let audit = reported(
                t.tenant_id,
                actions::ENROLLMENT_TOKEN_REVOKED,
                t.id.as_uuid(),
            );
            deps.store
                .revoke_enrollment_token(t.tenant_id, t.fleet_id, t.id, now, &audit)
                .await?;
            outcome
        }
        SecretKind::Share => {
            let Some(l) = deps
                .store
                .find_share_link_by_digest(&secret.digest())
                .await?
            else {
                return Ok(LeakOutcome::NotLive);
            };
            let outcome = live(l.status(now) == ShareStatus::Active);
            let audit = reported(l.tenant_id, actions::SHARE_LINK_REVOKED, l.id.as_uuid());
            deps.store
                .revoke_share_link(l.tenant_id, l.id, now, &audit)
                .await?;
            outcome
        }
        SecretKind::Agent => {
            let Some(a) = deps
                .store
                .find_agent_by_secret_digest(&secret.digest())
                .await?
            else {
                return Ok(LeakOutcome::NotLive);
            };
            let outcome = live(a.revoked_at.is_none());
            let audit = reported(a.tenant_id, actions::AGENT_REVOKED, a.id.as_uuid());
            deps.store
                .revoke_agent(a.tenant_id, a.id, now, &audit)
                .await?;
            outcome
        }
    };
    Ok(outcome)
}

//! The agent side: enrolling with an enrollment token, exchanging the agent secret for
//! short-lived access tokens, authenticating those, heartbeats and job claims.

use std::net::IpAddr;

use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::fleet::{Agent, AgentClaims, AgentVersion, Hostname, Platform};
use fleetpass_domain::ids::AgentId;
use fleetpass_domain::jose::TokenType;
use fleetpass_domain::label::Labels;
use fleetpass_domain::secret::{PlainSecret, SecretKind};
use serde_json::json;

use super::{Remedy, ServiceError, ServiceResult};
use crate::Deps;
use crate::keys::KeyRing;

/// What an agent reports when it enrolls.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// Its host.
    pub hostname: Hostname,
    /// Its platform.
    pub platform: Platform,
    /// Its version, if it says.
    pub agent_version: Option<AgentVersion>,
    /// The labels it gives itself; the enrollment token's are laid over them.
    pub labels: Labels,
}

/// A fresh access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The JWT.
    pub token: String,
    /// When it expires.
    pub expires_at: Timestamp,
}

/// An enrolled agent with its secret (shown this once) and a first access token.
#[derive(Debug)]
pub struct Enrolled {
    /// The agent.
    pub agent: Agent,
    /// Its long-lived secret, exchanged for access tokens at `/agent/token`.
    pub secret: PlainSecret,
    /// A first access token.
    pub access: AccessToken,
}

fn internal(e: crate::keys::KeyError) -> ServiceError {
    ServiceError::Internal(crate::RepoError::Other(Box::new(e)))
}

async fn mint(deps: &Deps, keys: &KeyRing, agent: &Agent) -> ServiceResult<AccessToken> {
    let claims = AgentClaims::new(agent, keys.issuer(), deps.ids.new_id(), deps.now());
    let token = keys
        .sign(&claims, TokenType::AgentAccess)
        .await
        .map_err(internal)?;
    Ok(AccessToken {
        token,
        expires_at: claims.expires_at(),
    })
}

/// Enrolls an agent with an enrollment token: exactly as many enrollments succeed as
/// the token has uses, however many arrive at once.
///
/// # Errors
/// `Unauthorized` saying whether the token is malformed, unknown, expired, revoked or
/// used up, with a hint; `OutsideNetwork` when `client` is outside the token's
/// `allowedCidrs` (audited in the token's tenant); store errors.
pub async fn enroll(
    deps: &Deps,
    keys: &KeyRing,
    presented: &str,
    report: Enrollment,
    client: Option<IpAddr>,
) -> ServiceResult<Enrolled> {
    let token = PlainSecret::parse_kind(presented, SecretKind::Enrollment).map_err(|e| {
        ServiceError::Unauthorized {
            message: e.refusal(SecretKind::Enrollment),
            hint: Some(Remedy::EnrollmentTokenAsIssued),
        }
    })?;
    // Before the use is claimed, so a refused address uses nothing up. A token's
    // networks never change once issued, so this read cannot go stale before the claim.
    if let Some(t) = deps
        .store
        .find_enrollment_token_by_digest(&token.digest())
        .await?
        && !t.allowed_cidrs.allows(client)
    {
        let audit = deps.audit(
            t.tenant_id,
            AuditActor::Public,
            actions::ENROLLMENT_TOKEN_NETWORK_REFUSED,
            Some(t.id.as_uuid()),
            json!({"fleetId": t.fleet_id.to_string(), "client": client.map(|ip| ip.to_string()),
                       "allowedCidrs": t.allowed_cidrs.to_strings()}),
        );
        if let Err(e) = deps.store.record_audit(&audit).await {
            tracing::warn!(error = %e, "could not audit a refused network");
        }
        return Err(ServiceError::OutsideNetwork {
            credential: SecretKind::Enrollment,
            client,
        });
    }
    let secret = PlainSecret::from_random(SecretKind::Agent, deps.secrets.random_32());
    let agent_id = AgentId::from_uuid(deps.ids.new_id());
    let now = deps.now();
    let build = |t: &fleetpass_domain::fleet::EnrollmentToken| {
        let agent = Agent {
            id: agent_id,
            tenant_id: t.tenant_id,
            fleet_id: t.fleet_id,
            hostname: report.hostname.clone(),
            platform: report.platform.clone(),
            agent_version: report.agent_version.clone(),
            enrolled_at: now,
            last_seen_at: None,
            revoked_at: None,
            // The operator's labels (on the token) win over the agent's own; should the
            // two together be more than an agent may carry, the operator's alone.
            labels: report
                .labels
                .overlaid(&t.labels)
                .unwrap_or_else(|_| t.labels.clone()),
        };
        let audit = deps.audit(
            t.tenant_id,
            AuditActor::Agent(agent_id.as_uuid()),
            actions::AGENT_ENROLLED,
            Some(agent_id.as_uuid()),
            json!({"fleetId": t.fleet_id.to_string(), "enrollmentTokenId": t.id.to_string(),
                   "hostname": agent.hostname.as_str(), "platform": agent.platform.as_str()}),
        );
        (agent, audit)
    };
    let agent = deps
        .store
        .enroll(&token.digest(), now, &secret.digest(), &build)
        .await?
        .map_err(|refusal| ServiceError::Unauthorized {
            message: refusal.to_string(),
            hint: Some(Remedy::Enrollment(refusal)),
        })?;
    let access = mint(deps, keys, &agent).await?;
    Ok(Enrolled {
        agent,
        secret,
        access,
    })
}

const BAD_CREDENTIALS: &str = "invalid agent credentials";

/// Exchanges an agent's id and secret for a fresh access token.
///
/// # Errors
/// `Unauthorized` for an unknown agent, a wrong secret or a revoked agent; store errors.
pub async fn exchange(
    deps: &Deps,
    keys: &KeyRing,
    agent: AgentId,
    presented: &str,
) -> ServiceResult<AccessToken> {
    let refused = |message: String, hint| ServiceError::Unauthorized {
        message,
        hint: Some(hint),
    };
    let secret = PlainSecret::parse_kind(presented, SecretKind::Agent)
        .map_err(|e| refused(e.refusal(SecretKind::Agent), Remedy::AgentCredentials))?;
    let Some((agent, digest)) = deps.store.find_agent_credentials(agent).await? else {
        return Err(refused(
            BAD_CREDENTIALS.to_owned(),
            Remedy::AgentCredentials,
        ));
    };
    // `SecretDigest` compares in constant time.
    if digest != secret.digest() {
        return Err(refused(
            BAD_CREDENTIALS.to_owned(),
            Remedy::AgentCredentials,
        ));
    }
    if agent.revoked_at.is_some() {
        return Err(refused(
            "the agent was revoked".to_owned(),
            Remedy::AgentRevoked,
        ));
    }
    mint(deps, keys, &agent).await
}

/// Authenticates an agent by its access token, and marks it seen: every authenticated
/// agent request is presence (the store may write it later, in a batch). A revoked
/// agent is refused at once, even while its token has life left.
///
/// # Errors
/// `Unauthorized` saying why; store errors.
pub async fn authenticate(deps: &Deps, keys: &KeyRing, token: &str) -> ServiceResult<Agent> {
    let now = deps.now();
    let id = keys
        .verify_agent_token(token, now)
        .await
        .map_err(|e| ServiceError::Unauthorized {
            message: e.to_string(),
            hint: Some(Remedy::FreshAccessToken),
        })?;
    match deps.store.find_agent_credentials(id).await? {
        Some((mut agent, _)) if agent.revoked_at.is_none() => {
            deps.store.mark_agent_seen(agent.id, now).await?;
            agent.last_seen_at = agent.last_seen_at.max(Some(now));
            Ok(agent)
        }
        Some(_) => Err(ServiceError::Unauthorized {
            message: "the agent was revoked".to_owned(),
            hint: Some(Remedy::AgentRevoked),
        }),
        None => Err(ServiceError::Unauthorized {
            message: "the agent no longer exists".to_owned(),
            hint: Some(Remedy::AgentRevoked),
        }),
    }
}

/// Records a heartbeat. The agent was marked seen when it authenticated; the store is
/// written only when the reported version differs from the one it holds, so a
/// heartbeat costs no write of its own.
///
/// # Errors
/// Store errors.
pub async fn heartbeat(
    deps: &Deps,
    agent: &Agent,
    version: Option<AgentVersion>,
) -> ServiceResult<Agent> {
    match version {
        Some(version) if agent.agent_version.as_ref() != Some(&version) => Ok(deps
            .store
            .record_heartbeat(agent.id, deps.now(), Some(&version))
            .await?),
        _ => {
            let now = deps.now();
            deps.store.mark_agent_seen(agent.id, now).await?;
            let mut seen = agent.clone();
            seen.last_seen_at = seen.last_seen_at.max(Some(now));
            Ok(seen)
        }
    }
}

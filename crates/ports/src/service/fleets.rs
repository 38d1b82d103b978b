//! Fleets, their enrollment tokens and their agents, as operators manage them.

use fleetpass_domain::access::{Action, Actor};
use fleetpass_domain::audit::actions;
use fleetpass_domain::fleet::{
    Agent, EnrollmentToken, EnrollmentTtlHours, Fleet, FleetName, MaxUses,
};
use fleetpass_domain::identity::EnvironmentName;
use fleetpass_domain::ids::{AgentId, EnrollmentTokenId, EnvironmentId, FleetId};
use fleetpass_domain::label::{LabelSelector, Labels};
use fleetpass_domain::network::AllowedCidrs;
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::secret::{PlainSecret, SecretKind};
use serde_json::json;

use super::{Field, ServiceError, ServiceResult, policy, require};
use crate::wakeups::Wakeup;
use crate::{Deps, RepoError};

/// An enrollment token and its secret, shown this once.
#[derive(Debug)]
pub struct IssuedEnrollment {
    /// The token's metadata.
    pub token: EnrollmentToken,
    /// Its secret.
    pub secret: PlainSecret,
}

/// A new fleet and its first enrollment token.
#[derive(Debug)]
pub struct CreatedFleet {
    /// The fleet.
    pub fleet: Fleet,
    /// Its first, one-time enrollment token: 72 hours, or the tenant's token policy's
    /// maximum if that is shorter.
    pub enrollment: IssuedEnrollment,
}

fn new_enrollment(
    deps: &Deps,
    fleet: &Fleet,
    ttl: EnrollmentTtlHours,
    max_uses: MaxUses,
    labels: Labels,
    allowed_cidrs: AllowedCidrs,
) -> IssuedEnrollment {
    let now = deps.now();
    let secret = PlainSecret::from_random(SecretKind::Enrollment, deps.secrets.random_32());
    let token = EnrollmentToken {
        id: EnrollmentTokenId::from_uuid(deps.ids.new_id()),
        tenant_id: fleet.tenant_id,
        fleet_id: fleet.id,
        max_uses,
        uses: 0,
        expires_at: ttl.expiry_from(now),
        created_at: now,
        revoked_at: None,
        hint: secret.hint(),
        labels,
        allowed_cidrs,
    };
    IssuedEnrollment { token, secret }
}

fn unknown_environment() -> ServiceError {
    ServiceError::invalid(
        Field::Environment,
        "does not name an environment of this tenant",
        None,
    )
}

/// Creates a fleet in `environment` (default: `production`) with a one-time enrollment
/// token that expires in 72 hours, or in the tenant's token policy's maximum if that is
/// shorter: the caller chose no lifetime, so a default never fails the request.
///
/// # Errors
/// `Denied` (role, or environment outside the caller's scope); `Invalid` on
/// `environmentId` when it names no environment of the tenant; store errors.
pub async fn create_fleet(
    deps: &Deps,
    actor: &Actor,
    name: Option<FleetName>,
    environment: Option<EnvironmentId>,
) -> ServiceResult<CreatedFleet> {
    require(actor, Action::Operate, None)?;
    let environment = match environment {
        Some(id) => id,
        None => match deps
            .store
            .find_environment_by_name(actor.tenant_id, &EnvironmentName::production())
            .await
        {
            Ok(env) => env.id,
            Err(RepoError::NotFound) => {
                return Err(ServiceError::invalid(
                    Field::Environment,
                    "is required: this tenant has no production environment",
                    "Name the environment the fleet lives in.".to_owned(),
                ));
            }
            Err(e) => return Err(e.into()),
        },
    };
    require(actor, Action::Operate, Some(environment))?;
    let fleet = Fleet {
        id: FleetId::from_uuid(deps.ids.new_id()),
        tenant_id: actor.tenant_id,
        environment_id: environment,
        name: name.unwrap_or_else(FleetName::untitled),
        created_at: deps.now(),
    };
    let ttl = deps
        .store
        .get_token_policy(actor.tenant_id)
        .await?
        .enrollment_ttl(None)
        .map_err(policy::exceeded)?;
    let enrollment = new_enrollment(
        deps,
        &fleet,
        ttl,
        MaxUses::once(),
        Labels::none(),
        AllowedCidrs::anywhere(),
    );
    let audit = [
        deps.audit_by(
            actor,
            actions::FLEET_CREATED,
            fleet.id.as_uuid(),
            json!({"name": fleet.name.as_str(), "environmentId": environment.to_string()}),
        )
        .in_environment(fleet.environment_id),
        deps.audit_by(
            actor,
            actions::ENROLLMENT_TOKEN_ISSUED,
            enrollment.token.id.as_uuid(),
            json!({"fleetId": fleet.id.to_string(), "maxUses": enrollment.token.max_uses.get(), "expiresHours": ttl.get(), "hint": enrollment.token.hint}),
        )
        .in_environment(fleet.environment_id),
    ];
    match deps
        .store
        .create_fleet(
            &fleet,
            &enrollment.token,
            &enrollment.secret.digest(),
            &audit,
        )
        .await
    {
        Err(RepoError::NotFound) => Err(unknown_environment()),
        other => other.map_err(ServiceError::from),
    }?;
    Ok(CreatedFleet { fleet, enrollment })
}

/// Reads a fleet and checks `action` on it, scope included.
pub(crate) async fn fleet_for(
    deps: &Deps,
    actor: &Actor,
    action: Action,
    id: FleetId,
) -> ServiceResult<Fleet> {
    require(actor, action, None)?;
    let fleet = deps.store.get_fleet(actor.tenant_id, id).await?;
    require(actor, action, Some(fleet.environment_id))?;
    Ok(fleet)
}

/// Reads a fleet.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn get_fleet(deps: &Deps, actor: &Actor, id: FleetId) -> ServiceResult<Fleet> {
    fleet_for(deps, actor, Action::Read, id).await
}

/// Lists the fleets in the caller's environments, newest first.
///
/// # Errors
/// `Denied`, store errors.
pub async fn list_fleets(
    deps: &Deps,
    actor: &Actor,
    page: PageRequest,
) -> ServiceResult<Page<Fleet>> {
    require(actor, Action::Read, None)?;
    let scope = (!actor.scope.is_all()).then(|| actor.scope.ids());
    Ok(deps
        .store
        .list_fleets(actor.tenant_id, scope.as_deref(), page)
        .await?)
}

/// Renames a fleet.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn rename_fleet(
    deps: &Deps,
    actor: &Actor,
    id: FleetId,
    name: FleetName,
) -> ServiceResult<Fleet> {
    let fleet = fleet_for(deps, actor, Action::Operate, id).await?;
    let audit = deps
        .audit_by(
            actor,
            actions::FLEET_UPDATED,
            id.as_uuid(),
            json!({"name": name.as_str()}),
        )
        .in_environment(fleet.environment_id);
    Ok(deps
        .store
        .rename_fleet(actor.tenant_id, id, &name, &audit)
        .await?)
}

/// Deletes a fleet with its enrollment tokens and agents.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn delete_fleet(deps: &Deps, actor: &Actor, id: FleetId) -> ServiceResult<()> {
    let fleet = fleet_for(deps, actor, Action::Operate, id).await?;
    let audit = deps
        .audit_by(
            actor,
            actions::FLEET_DELETED,
            id.as_uuid(),
            json!({"name": fleet.name.as_str()}),
        )
        .in_environment(fleet.environment_id);
    deps.store.delete_fleet(actor.tenant_id, id, &audit).await?;
    deps.wakeups
        .publish(id, Wakeup::FleetGone, std::time::Duration::ZERO);
    Ok(())
}

/// Issues an enrollment token for a fleet, living `ttl` or, when none is asked for,
/// 72 hours or the tenant's token policy's maximum if that is shorter.
///
/// # Errors
/// `Denied`, `NotFound`; `Invalid` for a `ttl` above the tenant's token policy; store
/// errors.
pub async fn issue_enrollment_token(
    deps: &Deps,
    actor: &Actor,
    fleet: FleetId,
    ttl: Option<EnrollmentTtlHours>,
    max_uses: MaxUses,
    labels: Labels,
    allowed_cidrs: AllowedCidrs,
) -> ServiceResult<IssuedEnrollment> {
    let fleet = fleet_for(deps, actor, Action::Operate, fleet).await?;
    let ttl = deps
        .store
        .get_token_policy(actor.tenant_id)
        .await?
        .enrollment_ttl(ttl)
        .map_err(policy::exceeded)?;
    let issued = new_enrollment(deps, &fleet, ttl, max_uses, labels, allowed_cidrs);
    let audit = deps
        .audit_by(
            actor,
            actions::ENROLLMENT_TOKEN_ISSUED,
            issued.token.id.as_uuid(),
            json!({"fleetId": fleet.id.to_string(), "maxUses": max_uses.get(), "expiresHours": ttl.get(), "hint": issued.token.hint,
                   "allowedCidrs": issued.token.allowed_cidrs.to_strings()}),
        )
        .in_environment(fleet.environment_id);
    deps.store
        .create_enrollment_token(&issued.token, &issued.secret.digest(), &audit)
        .await?;
    Ok(issued)
}

/// Lists a fleet's enrollment tokens.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn list_enrollment_tokens(
    deps: &Deps,
    actor: &Actor,
    fleet: FleetId,
    page: PageRequest,
) -> ServiceResult<Page<EnrollmentToken>> {
    fleet_for(deps, actor, Action::Read, fleet).await?;
    Ok(deps
        .store
        .list_enrollment_tokens(actor.tenant_id, fleet, page)
        .await?)
}

/// Revokes an enrollment token.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn revoke_enrollment_token(
    deps: &Deps,
    actor: &Actor,
    fleet: FleetId,
    id: EnrollmentTokenId,
) -> ServiceResult<EnrollmentToken> {
    let environment = fleet_for(deps, actor, Action::Operate, fleet)
        .await?
        .environment_id;
    let audit = deps
        .audit_by(
            actor,
            actions::ENROLLMENT_TOKEN_REVOKED,
            id.as_uuid(),
            json!({"fleetId": fleet.to_string()}),
        )
        .in_environment(environment);
    Ok(deps
        .store
        .revoke_enrollment_token(actor.tenant_id, fleet, id, deps.now(), &audit)
        .await?)
}

/// Lists a fleet's agents.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn list_agents(
    deps: &Deps,
    actor: &Actor,
    fleet: FleetId,
    labels: Option<&LabelSelector>,
    page: PageRequest,
) -> ServiceResult<Page<Agent>> {
    fleet_for(deps, actor, Action::Read, fleet).await?;
    Ok(deps
        .store
        .list_agents(actor.tenant_id, fleet, labels, page)
        .await?)
}

/// Replaces an agent's labels (what scans with a label selector target from now on;
/// parts already made stay).
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn relabel_agent(
    deps: &Deps,
    actor: &Actor,
    id: AgentId,
    labels: Labels,
) -> ServiceResult<Agent> {
    let (_, environment) = agent_for(deps, actor, Action::Operate, id).await?;
    let audit = deps
        .audit_by(
            actor,
            actions::AGENT_UPDATED,
            id.as_uuid(),
            json!({"labels": labels}),
        )
        .in_environment(environment);
    Ok(deps
        .store
        .relabel_agent(actor.tenant_id, id, &labels, &audit)
        .await?)
}

/// Reads an agent and checks `action` on its fleet.
/// Reads an agent the caller may act on, with its fleet's environment.
pub(crate) async fn agent_for(
    deps: &Deps,
    actor: &Actor,
    action: Action,
    id: AgentId,
) -> ServiceResult<(Agent, EnvironmentId)> {
    require(actor, action, None)?;
    let agent = deps.store.get_agent(actor.tenant_id, id).await?;
    let fleet = fleet_for(deps, actor, action, agent.fleet_id).await?;
    Ok((agent, fleet.environment_id))
}

/// Reads an agent.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn get_agent(deps: &Deps, actor: &Actor, id: AgentId) -> ServiceResult<Agent> {
    Ok(agent_for(deps, actor, Action::Read, id).await?.0)
}

/// Revokes an agent: its secret stops working at once, its access tokens with it.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn revoke_agent(deps: &Deps, actor: &Actor, id: AgentId) -> ServiceResult<Agent> {
    let (agent, environment) = agent_for(deps, actor, Action::Operate, id).await?;
    let audit = deps
        .audit_by(
            actor,
            actions::AGENT_REVOKED,
            id.as_uuid(),
            json!({"hostname": agent.hostname.as_str()}),
        )
        .in_environment(environment);
    let revoked = deps
        .store
        .revoke_agent(actor.tenant_id, id, deps.now(), &audit)
        .await?;
    deps.wakeups.publish(
        revoked.fleet_id,
        Wakeup::AgentGone(revoked.id),
        std::time::Duration::ZERO,
    );
    Ok(revoked)
}

//! The [`FleetStore`](fleetpass_ports::store::FleetStore) part of the in-memory store:
//! fleets, their enrollment tokens and the agents enrolled with them.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::{
    Agent, AgentVersion, EnrollmentRefusal, EnrollmentToken, Fleet, FleetName,
};
use fleetpass_domain::ids::{AgentId, EnrollmentTokenId, EnvironmentId, FleetId, TenantId};
use fleetpass_domain::label::{LabelSelector, Labels};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::{PartFailure, PartStatus};
use fleetpass_domain::secret::SecretDigest;
use fleetpass_ports::store::{EnrollBuilder, FleetStore, RepoError};

use crate::{MemoryStore, duplicate, page_of};

#[async_trait]
impl FleetStore for MemoryStore {
    // ---- fleets ----

    async fn create_fleet(
        &self,
        fleet: &Fleet,
        token: &EnrollmentToken,
        digest: &SecretDigest,
        audit: &[AuditEvent],
    ) -> Result<(), RepoError> {
        self.with(|s| {
            // The foreign key a database would enforce: the environment is the tenant's.
            s.environment(fleet.tenant_id, fleet.environment_id)?;
            if s.fleets.contains_key(&fleet.id.as_uuid()) {
                return Err(duplicate("fleet"));
            }
            // The first token must belong to the new fleet, in the fleet's tenant.
            if token.tenant_id != fleet.tenant_id || token.fleet_id != fleet.id {
                return Err(RepoError::NotFound);
            }
            if s.enrollment_tokens.contains_key(&token.id.as_uuid()) {
                return Err(duplicate("enrollment token"));
            }
            if s.enrollment_secrets.contains_key(digest.as_bytes()) {
                return Err(duplicate("enrollment token secret digest"));
            }
            s.ensure_new_audit(audit)?;

            s.fleets.insert(fleet.id.as_uuid(), fleet.clone());
            s.insert_enrollment_token(token, digest);
            for event in audit {
                s.record(event);
            }
            Ok(())
        })
    }

    async fn get_fleet(&self, tenant: TenantId, id: FleetId) -> Result<Fleet, RepoError> {
        self.read(|s| s.fleet(tenant, id).cloned())
    }

    async fn list_fleets(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<Fleet>, RepoError> {
        // Filtering happens inside the page walk, so every page but the last is full.
        self.read(|s| {
            Ok(page_of(&s.fleets, page, |f| {
                f.tenant_id == tenant
                    && environments.is_none_or(|envs| envs.contains(&f.environment_id))
            }))
        })
    }

    async fn rename_fleet(
        &self,
        tenant: TenantId,
        id: FleetId,
        name: &FleetName,
        audit: &AuditEvent,
    ) -> Result<Fleet, RepoError> {
        self.with(|s| {
            s.fleet(tenant, id)?;
            s.ensure_new_audit([audit])?;

            let fleet = s.fleets.get_mut(&id.as_uuid()).ok_or(RepoError::NotFound)?;
            fleet.name = name.clone();
            let renamed = fleet.clone();
            s.record(audit);
            Ok(renamed)
        })
    }

    async fn delete_fleet(
        &self,
        tenant: TenantId,
        id: FleetId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.fleet(tenant, id)?;
            s.ensure_new_audit([audit])?;

            s.fleets.remove(&id.as_uuid());
            s.enrollment_tokens.retain(|_, t| t.fleet_id != id);
            let tokens = &s.enrollment_tokens;
            s.enrollment_secrets
                .retain(|_, token| tokens.contains_key(&token.as_uuid()));
            s.agents.retain(|_, a| a.fleet_id != id);
            let agents = &s.agents;
            s.agent_secrets
                .retain(|agent, _| agents.contains_key(agent));
            s.remove_scans_of(id);
            s.remove_schedules_of(id);
            s.record(audit);
            Ok(())
        })
    }

    // ---- enrollment tokens ----

    async fn create_enrollment_token(
        &self,
        token: &EnrollmentToken,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.ensure_new_enrollment_token(token, digest)?;
            s.ensure_new_audit([audit])?;

            s.insert_enrollment_token(token, digest);
            s.record(audit);
            Ok(())
        })
    }

    async fn list_enrollment_tokens(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        page: PageRequest,
    ) -> Result<Page<EnrollmentToken>, RepoError> {
        self.read(|s| {
            s.fleet(tenant, fleet)?;
            Ok(page_of(&s.enrollment_tokens, page, |t| {
                t.tenant_id == tenant && t.fleet_id == fleet
            }))
        })
    }

    async fn revoke_enrollment_token(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        id: EnrollmentTokenId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<EnrollmentToken, RepoError> {
        self.with(|s| {
            let stored = s.enrollment_token(tenant, fleet, id)?;
            if stored.revoked_at.is_some() {
                return Ok(stored.clone());
            }
            s.ensure_new_audit([audit])?;

            let stored = s
                .enrollment_tokens
                .get_mut(&id.as_uuid())
                .ok_or(RepoError::NotFound)?;
            stored.revoked_at = Some(at);
            let revoked = stored.clone();
            s.record(audit);
            Ok(revoked)
        })
    }

    async fn enroll(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
        agent_secret: &SecretDigest,
        build: EnrollBuilder<'_>,
    ) -> Result<Result<Agent, EnrollmentRefusal>, RepoError> {
        // The one mutex makes check, claim and insert a single step: concurrent calls
        // queue up, and each sees the uses the ones before it counted.
        self.with(|s| {
            let Some(token) = s
                .enrollment_secrets
                .get(digest.as_bytes())
                .and_then(|id| s.enrollment_tokens.get(&id.as_uuid()))
            else {
                return Ok(Err(EnrollmentRefusal::Unknown));
            };
            if let Err(refusal) = token.check_usable(now) {
                return Ok(Err(refusal));
            }
            let mut claimed = token.clone();
            claimed.uses += 1;
            let (agent, audit) = build(&claimed);
            // The foreign key a database would enforce: the agent's fleet is its tenant's.
            s.fleet(agent.tenant_id, agent.fleet_id).map_err(|_| {
                RepoError::Other("the built agent's fleet is not one of its tenant's".into())
            })?;
            if s.agents.contains_key(&agent.id.as_uuid()) {
                return Err(duplicate("agent"));
            }
            if s.agent_secrets.values().any(|d| d == agent_secret) {
                return Err(duplicate("agent secret digest"));
            }
            s.ensure_new_audit([&audit])?;

            s.enrollment_tokens.insert(claimed.id.as_uuid(), claimed);
            s.agents.insert(agent.id.as_uuid(), agent.clone());
            s.agent_secrets.insert(agent.id.as_uuid(), *agent_secret);
            s.record(&audit);
            Ok(Ok(agent))
        })
    }

    // ---- agents ----

    async fn get_agent(&self, tenant: TenantId, id: AgentId) -> Result<Agent, RepoError> {
        self.read(|s| s.agent(tenant, id).cloned())
    }

    async fn list_agents(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        labels: Option<&LabelSelector>,
        page: PageRequest,
    ) -> Result<Page<Agent>, RepoError> {
        self.read(|s| {
            s.fleet(tenant, fleet)?;
            Ok(page_of(&s.agents, page, |a| {
                a.tenant_id == tenant
                    && a.fleet_id == fleet
                    && labels.is_none_or(|l| a.labels.matches(l))
            }))
        })
    }

    async fn relabel_agent(
        &self,
        tenant: TenantId,
        id: AgentId,
        labels: &Labels,
        audit: &AuditEvent,
    ) -> Result<Agent, RepoError> {
        self.with(|s| {
            s.agent(tenant, id)?;
            s.ensure_new_audit([audit])?;

            let stored = s.agents.get_mut(&id.as_uuid()).ok_or(RepoError::NotFound)?;
            stored.labels = labels.clone();
            let relabelled = stored.clone();
            s.record(audit);
            Ok(relabelled)
        })
    }

    async fn revoke_agent(
        &self,
        tenant: TenantId,
        id: AgentId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Agent, RepoError> {
        self.with(|s| {
            let stored = s.agent(tenant, id)?;
            if stored.revoked_at.is_some() {
                return Ok(stored.clone());
            }
            s.ensure_new_audit([audit])?;

            let stored = s.agents.get_mut(&id.as_uuid()).ok_or(RepoError::NotFound)?;
            stored.revoked_at = Some(at);
            let revoked = stored.clone();
            s.end_open_parts(
                None,
                Some(id),
                PartStatus::Failed,
                Some(PartFailure::AgentRevoked),
                at,
            );
            s.record(audit);
            Ok(revoked)
        })
    }

    async fn find_agent_credentials(
        &self,
        id: AgentId,
    ) -> Result<Option<(Agent, SecretDigest)>, RepoError> {
        self.read(|s| {
            let Some(agent) = s.agents.get(&id.as_uuid()) else {
                return Ok(None);
            };
            let digest = s
                .agent_secrets
                .get(&id.as_uuid())
                .ok_or_else(|| RepoError::Other("an agent without a secret".into()))?;
            Ok(Some((agent.clone(), *digest)))
        })
    }

    async fn record_heartbeat(
        &self,
        id: AgentId,
        at: Timestamp,
        version: Option<&AgentVersion>,
    ) -> Result<Agent, RepoError> {
        self.with(|s| {
            let agent = s.agents.get_mut(&id.as_uuid()).ok_or(RepoError::NotFound)?;
            agent.last_seen_at = Some(at);
            if let Some(version) = version {
                agent.agent_version = Some(version.clone());
            }
            Ok(agent.clone())
        })
    }

    async fn mark_agent_seen(&self, id: AgentId, at: Timestamp) -> Result<(), RepoError> {
        // Memory is the store: written at once, so nothing is batched.
        self.with(|s| {
            if let Some(agent) = s.agents.get_mut(&id.as_uuid()) {
                agent.last_seen_at = agent.last_seen_at.max(Some(at));
            }
            Ok(())
        })
    }

    async fn find_enrollment_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<EnrollmentToken>, RepoError> {
        self.read(|s| {
            Ok(s.enrollment_secrets
                .get(digest.as_bytes())
                .and_then(|id| s.enrollment_tokens.get(&id.as_uuid()))
                .cloned())
        })
    }

    async fn find_agent_by_secret_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<Agent>, RepoError> {
        // Agent secrets are keyed by agent id: a scan, as the lookup is a rare one.
        self.read(|s| {
            Ok(s.agent_secrets
                .iter()
                .find(|(_, stored)| *stored == digest)
                .and_then(|(id, _)| s.agents.get(id))
                .cloned())
        })
    }
}

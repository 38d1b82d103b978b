//! The [`FleetStore`](fleetpass_ports::store::FleetStore) part of [`PgStore`]: fleets,
//! their enrollment tokens and the agents enrolled with them.

use async_trait::async_trait;
use diesel::{
    ExpressionMethods, OptionalExtension, PgJsonbExpressionMethods, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;
use diesel_async::scoped_futures::ScopedFutureExt;
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
use fleetpass_ports::RepoError;
use fleetpass_ports::store::{EnrollBuilder, FleetStore};
use uuid::Uuid;

use super::{
    PgStore, ensure_fleet, expect_one, insert_audit, load_agent, load_enrollment_token,
    lock_environment, lock_fleet, overfetch, wakeups,
};
use crate::cached::CachedExt as _;
use crate::error::{CorruptRow, InconsistentWrite};
use crate::rows::{
    AgentRow, EnrollmentTokenRow, FleetRow, NewAgentRow, NewEnrollmentTokenRow, convert_all,
    labels_column,
};
use crate::schema::{agents, enrollment_tokens, fleets};

#[async_trait]
impl FleetStore for PgStore {
    // ---- fleets ----

    async fn create_fleet(
        &self,
        fleet: &Fleet,
        token: &EnrollmentToken,
        digest: &SecretDigest,
        audit: &[AuditEvent],
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                // The foreign keys only tie the token to *a* fleet of its tenant; a first
                // token of another fleet is a bug in the caller, not a user error.
                if token.fleet_id != fleet.id || token.tenant_id != fleet.tenant_id {
                    return Err(InconsistentWrite::repo(
                        "enrollment_tokens",
                        token.id,
                        "the first token of a new fleet belongs to another fleet",
                    )
                    .into());
                }
                lock_environment(c, fleet.tenant_id, fleet.environment_id).await?;
                diesel::insert_into(fleets::table)
                    .values(FleetRow::from(fleet))
                    .execute(c)
                    .await?;
                diesel::insert_into(enrollment_tokens::table)
                    .values(NewEnrollmentTokenRow::new(token, digest))
                    .execute(c)
                    .await?;
                insert_audit(c, audit).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn get_fleet(&self, tenant: TenantId, id: FleetId) -> Result<Fleet, RepoError> {
        self.run(|c| {
            async move {
                let row = fleets::table
                    .filter(fleets::tenant_id.eq(tenant.as_uuid()))
                    .filter(fleets::id.eq(id.as_uuid()))
                    .select(FleetRow::as_select())
                    .first(c)
                    .await?;
                Ok(Fleet::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn list_fleets(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<Fleet>, RepoError> {
        let envs: Option<Vec<Uuid>> =
            environments.map(|ids| ids.iter().map(EnvironmentId::as_uuid).collect());
        self.run(|c| {
            async move {
                let mut query = fleets::table
                    .filter(fleets::tenant_id.eq(tenant.as_uuid()))
                    .select(FleetRow::as_select())
                    .order(fleets::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                // In SQL, not after the fact: filtering a fetched page would shrink it
                // and break the overfetch that tells whether another page exists.
                if let Some(envs) = envs {
                    query = query.filter(fleets::environment_id.eq_any(envs));
                }
                if let Some(cursor) = page.cursor {
                    query = query.filter(fleets::id.lt(cursor.last_id()));
                }
                let items: Vec<Fleet> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |f| f.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn rename_fleet(
        &self,
        tenant: TenantId,
        id: FleetId,
        name: &FleetName,
        audit: &AuditEvent,
    ) -> Result<Fleet, RepoError> {
        self.transaction(|c| {
            async move {
                let row = diesel::update(
                    fleets::table
                        .filter(fleets::tenant_id.eq(tenant.as_uuid()))
                        .filter(fleets::id.eq(id.as_uuid())),
                )
                .set(fleets::name.eq(name.as_str()))
                .returning(FleetRow::as_returning())
                .cached()
                .get_result(c)
                .await?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(Fleet::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn delete_fleet(
        &self,
        tenant: TenantId,
        id: FleetId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.auth_transaction(|c| {
            async move {
                // The foreign keys cascade to the fleet's enrollment tokens, agents and
                // scans, and from the scans to their artifacts and share links. The
                // delete waits for enrollments, scan requests and share-link creations
                // in flight (they key-share lock the fleet or scan), and later ones find
                // no parent: nothing outlives its fleet. Claims, completions, sweeps and
                // share-link opens lock no parent, only the scan or link rows they
                // change, so the cascade may wait for them but they never wait for it
                // (see `scans`).
                let deleted = diesel::delete(
                    fleets::table
                        .filter(fleets::tenant_id.eq(tenant.as_uuid()))
                        .filter(fleets::id.eq(id.as_uuid())),
                )
                .execute(c)
                .await?;
                expect_one(deleted)?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                // Its agents' held check-ins, on every replica, end when this commits.
                wakeups::announce(c, &wakeups::fleet_gone(id)).await
            }
            .scope_boxed()
        })
        .await
    }

    // ---- enrollment tokens ----

    async fn create_enrollment_token(
        &self,
        token: &EnrollmentToken,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                // Checks the fleet is the token's tenant's, and keeps a concurrent
                // `delete_fleet` from slipping in between (which would turn the insert
                // into a foreign key violation instead of NotFound).
                lock_fleet(c, token.tenant_id, token.fleet_id).await?;
                diesel::insert_into(enrollment_tokens::table)
                    .values(NewEnrollmentTokenRow::new(token, digest))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn list_enrollment_tokens(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        page: PageRequest,
    ) -> Result<Page<EnrollmentToken>, RepoError> {
        self.run(|c| {
            async move {
                ensure_fleet(c, tenant, fleet).await?;
                let mut query = enrollment_tokens::table
                    .filter(enrollment_tokens::tenant_id.eq(tenant.as_uuid()))
                    .filter(enrollment_tokens::fleet_id.eq(fleet.as_uuid()))
                    .select(EnrollmentTokenRow::as_select())
                    .order(enrollment_tokens::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(cursor) = page.cursor {
                    query = query.filter(enrollment_tokens::id.lt(cursor.last_id()));
                }
                let items: Vec<EnrollmentToken> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |t| t.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn revoke_enrollment_token(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        id: EnrollmentTokenId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<EnrollmentToken, RepoError> {
        self.transaction(|c| {
            async move {
                // As in `revoke_token`: only an unrevoked token changes, so a repeat
                // keeps the first `revoked_at` and writes no audit event.
                let revoked = diesel::update(
                    enrollment_tokens::table
                        .filter(enrollment_tokens::tenant_id.eq(tenant.as_uuid()))
                        .filter(enrollment_tokens::fleet_id.eq(fleet.as_uuid()))
                        .filter(enrollment_tokens::id.eq(id.as_uuid()))
                        .filter(enrollment_tokens::revoked_at.is_null()),
                )
                .set(enrollment_tokens::revoked_at.eq(at))
                .returning(EnrollmentTokenRow::as_returning())
                .cached()
                .get_result(c)
                .await
                .optional()?;
                match revoked {
                    Some(row) => {
                        insert_audit(c, std::slice::from_ref(audit)).await?;
                        Ok(EnrollmentToken::try_from(row)?)
                    }
                    None => load_enrollment_token(c, tenant, fleet, id).await,
                }
            }
            .scope_boxed()
        })
        .await
    }

    /// Race-free across processes: the token's row lock (`FOR UPDATE`) makes concurrent
    /// enrollments with one token take turns, each deciding on the `uses` the previous
    /// one committed. A refusal writes nothing (the transaction ends having only read).
    async fn enroll(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
        agent_secret: &SecretDigest,
        build: EnrollBuilder<'_>,
    ) -> Result<Result<Agent, EnrollmentRefusal>, RepoError> {
        let digest = digest.as_bytes().as_slice();
        self.transaction(|c| {
            async move {
                // The fleet is locked before the token (see `lock_fleet` for why), so
                // first learn which fleet that is, without a lock.
                let fleet = enrollment_tokens::table
                    .filter(enrollment_tokens::digest.eq(digest))
                    .select(enrollment_tokens::fleet_id)
                    .first::<Uuid>(c)
                    .await
                    .optional()?;
                let Some(fleet) = fleet else {
                    return Ok(Err(EnrollmentRefusal::Unknown));
                };
                // Gone since (deleted with its fleet): as unknown as never issued.
                let fleet_live = fleets::table
                    .find(fleet)
                    .select(fleets::id)
                    .for_key_share()
                    .first::<Uuid>(c)
                    .await
                    .optional()?;
                if fleet_live.is_none() {
                    return Ok(Err(EnrollmentRefusal::Unknown));
                }
                // Waits for any enrollment holding the token, then reads what it
                // committed (READ COMMITTED re-reads a locked row's newest version).
                let row = enrollment_tokens::table
                    .filter(enrollment_tokens::digest.eq(digest))
                    .select(EnrollmentTokenRow::as_select())
                    .for_update()
                    .first(c)
                    .await
                    .optional()?;
                let Some(row) = row else {
                    return Ok(Err(EnrollmentRefusal::Unknown));
                };
                let mut token = EnrollmentToken::try_from(row)?;
                if let Err(refusal) = token.check_usable(now) {
                    return Ok(Err(refusal));
                }
                diesel::update(enrollment_tokens::table.find(token.id.as_uuid()))
                    .set(enrollment_tokens::uses.eq(enrollment_tokens::uses + 1))
                    .cached()
                    .execute(c)
                    .await?;
                token.uses += 1;
                let (agent, audit) = build(&token);
                // The composite foreign key only ties the agent to *a* fleet of its
                // tenant; an agent built for another fleet than the token's is a bug.
                if agent.fleet_id != token.fleet_id || agent.tenant_id != token.tenant_id {
                    return Err(InconsistentWrite::repo(
                        "agents",
                        agent.id,
                        "built for another fleet than its enrollment token's",
                    )
                    .into());
                }
                diesel::insert_into(agents::table)
                    .values(NewAgentRow::new(&agent, agent_secret))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(&audit)).await?;
                Ok(Ok(agent))
            }
            .scope_boxed()
        })
        .await
    }

    // ---- agents ----

    async fn get_agent(&self, tenant: TenantId, id: AgentId) -> Result<Agent, RepoError> {
        self.run(|c| async move { load_agent(c, tenant, id).await }.scope_boxed())
            .await
            .map(|a| self.seen(a))
    }

    async fn list_agents(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        labels: Option<&LabelSelector>,
        page: PageRequest,
    ) -> Result<Page<Agent>, RepoError> {
        self.run(|c| {
            async move {
                ensure_fleet(c, tenant, fleet).await?;
                let mut query = agents::table
                    .filter(agents::tenant_id.eq(tenant.as_uuid()))
                    .filter(agents::fleet_id.eq(fleet.as_uuid()))
                    .select(AgentRow::as_select())
                    .order(agents::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(selector) = labels {
                    query = query.filter(agents::labels.contains(labels_column(selector.labels())));
                }
                if let Some(cursor) = page.cursor {
                    query = query.filter(agents::id.lt(cursor.last_id()));
                }
                let items: Vec<Agent> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |a| a.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
        .map(|mut page| {
            page.items = page.items.into_iter().map(|a| self.seen(a)).collect();
            page
        })
    }

    async fn relabel_agent(
        &self,
        tenant: TenantId,
        id: AgentId,
        labels: &Labels,
        audit: &AuditEvent,
    ) -> Result<Agent, RepoError> {
        // An auth transaction: replicas' cached agents (what a held check-in holds)
        // learn the new labels.
        self.auth_transaction(|c| {
            async move {
                let row = diesel::update(
                    agents::table
                        .filter(agents::tenant_id.eq(tenant.as_uuid()))
                        .filter(agents::id.eq(id.as_uuid())),
                )
                .set(agents::labels.eq(labels_column(labels)))
                .returning(AgentRow::as_returning())
                .get_result(c)
                .await?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(Agent::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
        .map(|a| self.seen(a))
    }

    async fn revoke_agent(
        &self,
        tenant: TenantId,
        id: AgentId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Agent, RepoError> {
        self.auth_transaction(|c| {
            async move {
                // Only an unrevoked agent changes; see `revoke_token`.
                let revoked = diesel::update(
                    agents::table
                        .filter(agents::tenant_id.eq(tenant.as_uuid()))
                        .filter(agents::id.eq(id.as_uuid()))
                        .filter(agents::revoked_at.is_null()),
                )
                .set(agents::revoked_at.eq(at))
                .returning(AgentRow::as_returning())
                .cached()
                .get_result(c)
                .await
                .optional()?;
                match revoked {
                    Some(row) => {
                        let agent = Agent::try_from(row)?;
                        // It never holds a fan-out scan open.
                        super::parts::end_open(
                            c,
                            None,
                            Some(id.as_uuid()),
                            PartStatus::Failed,
                            Some(PartFailure::AgentRevoked),
                            at,
                        )
                        .await?;
                        // After the parts' locks: the chain head is the last lock.
                        insert_audit(c, std::slice::from_ref(audit)).await?;
                        // Its held check-ins, on every replica, end when this commits.
                        wakeups::announce(c, &wakeups::agent_gone(&agent)).await?;
                        Ok(agent)
                    }
                    None => load_agent(c, tenant, id).await,
                }
            }
            .scope_boxed()
        })
        .await
        .map(|a| self.seen(a))
    }

    async fn find_agent_credentials(
        &self,
        id: AgentId,
    ) -> Result<Option<(Agent, SecretDigest)>, RepoError> {
        if let Some((agent, digest)) = self.auth.agent(id) {
            return Ok(Some((self.seen(agent), digest)));
        }
        let generation = self.auth.generation();
        let found = self
            .run(|c| {
                async move {
                    let found = agents::table
                        .find(id.as_uuid())
                        .select((AgentRow::as_select(), agents::secret_digest))
                        .first::<(AgentRow, Vec<u8>)>(c)
                        .await
                        .optional()?;
                    let Some((row, digest)) = found else {
                        return Ok(None);
                    };
                    let digest = SecretDigest::from_slice(&digest).ok_or_else(|| {
                        CorruptRow::repo("agents", row.id, "secret digest is not 32 bytes")
                    })?;
                    Ok(Some((Agent::try_from(row)?, digest)))
                }
                .scope_boxed()
            })
            .await?;
        if let Some(found) = &found {
            self.auth.keep_agent(id, generation, found.clone());
        }
        Ok(found.map(|(agent, digest)| (self.seen(agent), digest)))
    }

    async fn record_heartbeat(
        &self,
        id: AgentId,
        at: Timestamp,
        version: Option<&AgentVersion>,
    ) -> Result<Agent, RepoError> {
        // The sighting goes into the batch like every other (`batched.rs`), so
        // `last_seen_at` has one writer and never moves backwards; only a reported
        // version is written here. Without one the stored version stays: agents need
        // not report it on every beat.
        let agent = self
            .run(|c| {
                async move {
                    let agent = agents::table.find(id.as_uuid());
                    let row = match version {
                        Some(version) => {
                            diesel::update(agent)
                                .set(agents::agent_version.eq(version.as_str()))
                                .returning(AgentRow::as_returning())
                                .cached()
                                .get_result(c)
                                .await?
                        }
                        None => agent.select(AgentRow::as_select()).first(c).await?,
                    };
                    Ok(Agent::try_from(row)?)
                }
                .scope_boxed()
            })
            .await?;
        self.seen.note(id, at);
        Ok(self.seen(agent))
    }

    async fn mark_agent_seen(&self, id: AgentId, at: Timestamp) -> Result<(), RepoError> {
        // Noted, written in a batch (`batched.rs`): the request does not wait for it.
        self.seen.note(id, at);
        Ok(())
    }

    async fn find_enrollment_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<EnrollmentToken>, RepoError> {
        let digest = digest.as_bytes().as_slice();
        self.run(|c| {
            async move {
                let row = enrollment_tokens::table
                    .filter(enrollment_tokens::digest.eq(digest))
                    .select(EnrollmentTokenRow::as_select())
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(EnrollmentToken::try_from).transpose()?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn find_agent_by_secret_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<Agent>, RepoError> {
        let digest = digest.as_bytes().as_slice();
        self.run(|c| {
            async move {
                let row = agents::table
                    .filter(agents::secret_digest.eq(digest))
                    .select(AgentRow::as_select())
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(Agent::try_from).transpose()?)
            }
            .scope_boxed()
        })
        .await
        .map(|a| a.map(|a| self.seen(a)))
    }
}

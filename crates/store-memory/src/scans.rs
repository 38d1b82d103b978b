//! Scans and share links in memory: the [`ScanStore`] impl and its bodies, as steps on
//! the locked [`State`].
//!
//! Each step follows the rule of the crate: every check that can fail runs before the
//! first change, and the change is applied together with its audit event(s). The audit
//! events a store decides on (a claim, a sweep, an access) are built from the row as
//! changed, before anything is written, so a refused event id writes nothing either.

use std::collections::HashSet;

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::Agent;
use fleetpass_domain::ids::{AgentId, FleetId, ScanId, ShareLinkId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::{PartStatus, Progress, Scan, ScanPart, ScanStatus, ScanTarget};
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::{Artifact, ShareLink, ShareStatus};
use fleetpass_ports::store::{
    AuditFor, RepoError, ScanArtifacts, ScanFilter, ScanStore, ShareAccess, constraint,
};

use crate::{MemoryStore, State, duplicate, page_of};

/// Whether `scan` passes every field of `filter`.
fn passes(scan: &Scan, filter: &ScanFilter) -> bool {
    filter.fleet.is_none_or(|fleet| scan.fleet_id == fleet)
        && filter.status.is_none_or(|status| scan.status == status)
        && filter
            .scenario
            .is_none_or(|scenario| scan.scenario == scenario)
        && filter
            .environments
            .as_ref()
            .is_none_or(|envs| envs.contains(&scan.environment_id))
}

impl State {
    /// The scan `id` of `tenant`.
    pub(crate) fn scan(&self, tenant: TenantId, id: ScanId) -> Result<&Scan, RepoError> {
        self.scans
            .get(&id.as_uuid())
            .filter(|s| s.tenant_id == tenant)
            .ok_or(RepoError::NotFound)
    }

    /// The share link `id` of `tenant`.
    fn share_link(&self, tenant: TenantId, id: ShareLinkId) -> Result<&ShareLink, RepoError> {
        self.share_links
            .get(&id.as_uuid())
            .filter(|l| l.tenant_id == tenant)
            .ok_or(RepoError::NotFound)
    }

    /// Checks that `events`, all written by one step, have ids that are neither stored
    /// nor repeated among themselves.
    fn ensure_new_audit_batch(&self, events: &[AuditEvent]) -> Result<(), RepoError> {
        self.ensure_new_audit(events)?;
        let mut ids = HashSet::new();
        if events.iter().all(|e| ids.insert(e.id)) {
            Ok(())
        } else {
            Err(duplicate("audit event"))
        }
    }

    pub(crate) fn create_scan(
        &mut self,
        scan: &Scan,
        target: &ScanTarget,
        audit: &AuditEvent,
    ) -> Result<Vec<AgentId>, RepoError> {
        // The foreign key a database would enforce: the fleet is the scan's tenant's.
        self.fleet(scan.tenant_id, scan.fleet_id)?;
        if self.scans.contains_key(&scan.id.as_uuid()) {
            return Err(duplicate("scan"));
        }
        let agents = self.targeted_agents(scan, target)?;
        self.ensure_new_audit([audit])?;

        self.scans.insert(scan.id.as_uuid(), scan.clone());
        self.insert_parts(scan.id, &agents);
        self.record(audit);
        Ok(agents)
    }

    pub(crate) fn finish_fan_out(
        &mut self,
        tenant: TenantId,
        id: ScanId,
        at: Timestamp,
        artifacts: Option<&ScanArtifacts>,
        audit: &AuditEvent,
    ) -> Result<Option<Scan>, RepoError> {
        let scan = self.scan(tenant, id)?;
        if !scan.target.fans_out() || scan.status.is_final() || self.progress_of(id).open() > 0 {
            return Ok(None);
        }
        self.ensure_new_audit([audit])?;

        let status = if artifacts.is_some() {
            ScanStatus::Completed
        } else {
            ScanStatus::Failed
        };
        let scan = scan.clone();
        Ok(Some(self.end_scan(&scan, status, at, artifacts, audit)))
    }

    pub(crate) fn cancel_scan(
        &mut self,
        tenant: TenantId,
        id: ScanId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Scan, RepoError> {
        let scan = self.scan(tenant, id)?;
        if scan.status.is_final() {
            return Err(RepoError::Conflict {
                constraint: constraint::SCAN_FINISHED,
            });
        }
        self.ensure_new_audit([audit])?;

        let scan = scan.clone();
        Ok(self.end_scan(&scan, ScanStatus::Cancelled, at, None, audit))
    }

    pub(crate) fn get_scan(&self, tenant: TenantId, id: ScanId) -> Result<Scan, RepoError> {
        self.scan(tenant, id).cloned()
    }

    pub(crate) fn list_scans(
        &self,
        tenant: TenantId,
        filter: &ScanFilter,
        page: PageRequest,
    ) -> Page<Scan> {
        // Filtering happens inside the page walk, so every page but the last is full.
        page_of(&self.scans, page, |s| {
            s.tenant_id == tenant && passes(s, filter)
        })
    }

    pub(crate) fn claim_scan(
        &mut self,
        agent: &Agent,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<Option<Scan>, RepoError> {
        // Ids are UUID v7: ascending key order is oldest first.
        let any = self.scans.values().find(|s| {
            s.tenant_id == agent.tenant_id
                && s.fleet_id == agent.fleet_id
                && !s.target.fans_out()
                && s.claimable(now)
        });
        let part = self.claimable_part(agent, now);
        let queued = match (any, part) {
            (None, None) => return Ok(None),
            (Some(any), Some(part)) if part.id < any.id => {
                let part = part.clone();
                return Ok(Some(self.claim_part(agent, &part, now)));
            }
            (None, Some(part)) => {
                let part = part.clone();
                return Ok(Some(self.claim_part(agent, &part, now)));
            }
            (Some(any), _) => any,
        };
        let claimed = Scan {
            status: ScanStatus::Running,
            claimed_by: Some(agent.id),
            claimed_at: Some(now),
            ..queued.clone()
        };
        let event = audit(&claimed);
        self.ensure_new_audit([&event])?;

        self.scans.insert(claimed.id.as_uuid(), claimed.clone());
        self.record(&event);
        Ok(Some(claimed))
    }

    pub(crate) fn complete_scan(
        &mut self,
        agent: AgentId,
        id: ScanId,
        at: Timestamp,
        artifacts: &ScanArtifacts,
        audit: &AuditEvent,
    ) -> Result<Scan, RepoError> {
        let scan = self
            .scans
            .get(&id.as_uuid())
            .filter(|s| s.claimed_by == Some(agent))
            .ok_or(RepoError::NotFound)?;
        if scan.status != ScanStatus::Running {
            return Err(RepoError::Conflict {
                constraint: constraint::SCAN_NOT_RUNNING,
            });
        }
        self.ensure_new_audit([audit])?;

        let scan = scan.clone();
        Ok(self.end_scan(&scan, ScanStatus::Completed, at, Some(artifacts), audit))
    }

    /// Ends `scan` as `status` at `at`, with its artifacts if it has any, and records
    /// `audit`: the one write of every end (checked beforehand by the caller).
    fn end_scan(
        &mut self,
        scan: &Scan,
        status: ScanStatus,
        at: Timestamp,
        artifacts: Option<&ScanArtifacts>,
        audit: &AuditEvent,
    ) -> Scan {
        let ended = Scan {
            status,
            finished_at: Some(at),
            ..scan.clone()
        };
        self.scans.insert(scan.id.as_uuid(), ended.clone());
        if let Some(artifacts) = artifacts {
            self.scan_artifacts
                .insert(scan.id.as_uuid(), artifacts.clone());
        }
        if status == ScanStatus::Cancelled {
            self.end_open_parts(Some(scan.id), None, PartStatus::Cancelled, None, at);
        }
        self.record(audit);
        ended
    }

    pub(crate) fn get_scan_artifacts(
        &self,
        tenant: TenantId,
        id: ScanId,
    ) -> Result<Option<ScanArtifacts>, RepoError> {
        self.scan(tenant, id)?;
        Ok(self.scan_artifacts.get(&id.as_uuid()).cloned())
    }

    pub(crate) fn sweep_scans(
        &mut self,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<usize, RepoError> {
        let moved: Vec<Scan> = self
            .scans
            .values()
            .filter_map(|s| {
                s.overdue(now).map(|status| Scan {
                    status,
                    finished_at: Some(now),
                    ..s.clone()
                })
            })
            .collect();
        let events: Vec<AuditEvent> = moved.iter().map(audit).collect();
        self.ensure_new_audit_batch(&events)?;

        for scan in &moved {
            self.scans.insert(scan.id.as_uuid(), scan.clone());
        }
        for event in &events {
            self.record(event);
        }
        Ok(moved.len() + self.sweep_parts(now))
    }

    /// Removes the scans of `fleet` with their artifacts, their share links and those
    /// links' token digests: part of deleting the fleet.
    pub(crate) fn remove_scans_of(&mut self, fleet: FleetId) {
        let gone: HashSet<ScanId> = self
            .scans
            .values()
            .filter(|s| s.fleet_id == fleet)
            .map(|s| s.id)
            .collect();
        if gone.is_empty() {
            return;
        }
        self.scans.retain(|_, s| !gone.contains(&s.id));
        self.remove_parts_of(&gone);
        self.scan_artifacts
            .retain(|id, _| !gone.contains(&ScanId::from_uuid(*id)));
        self.share_links.retain(|_, l| !gone.contains(&l.scan_id));
        let links = &self.share_links;
        self.share_secrets
            .retain(|_, link| links.contains_key(&link.as_uuid()));
    }

    pub(crate) fn create_share_link(
        &mut self,
        link: &ShareLink,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        // The foreign key a database would enforce: the scan is the link's tenant's.
        self.scan(link.tenant_id, link.scan_id)?;
        if self.share_links.contains_key(&link.id.as_uuid()) {
            return Err(duplicate("share link"));
        }
        if self.share_secrets.contains_key(digest.as_bytes()) {
            return Err(duplicate("share link secret digest"));
        }
        self.ensure_new_audit([audit])?;

        self.share_links.insert(link.id.as_uuid(), link.clone());
        self.share_secrets.insert(*digest.as_bytes(), link.id);
        self.record(audit);
        Ok(())
    }

    pub(crate) fn get_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
    ) -> Result<ShareLink, RepoError> {
        self.share_link(tenant, id).cloned()
    }

    pub(crate) fn list_share_links(
        &self,
        tenant: TenantId,
        scan: ScanId,
        page: PageRequest,
    ) -> Result<Page<ShareLink>, RepoError> {
        self.scan(tenant, scan)?;
        Ok(page_of(&self.share_links, page, |l| {
            l.tenant_id == tenant && l.scan_id == scan
        }))
    }

    pub(crate) fn revoke_share_link(
        &mut self,
        tenant: TenantId,
        id: ShareLinkId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ShareLink, RepoError> {
        let stored = self.share_link(tenant, id)?;
        if stored.revoked_at.is_some() {
            return Ok(stored.clone());
        }
        self.ensure_new_audit([audit])?;

        let revoked = ShareLink {
            revoked_at: Some(at),
            ..stored.clone()
        };
        self.share_links.insert(id.as_uuid(), revoked.clone());
        self.record(audit);
        Ok(revoked)
    }

    pub(crate) fn access_share_link(
        &mut self,
        digest: &SecretDigest,
        now: Timestamp,
        artifact: Artifact,
        audit: AuditFor<'_, ShareLink>,
    ) -> Result<ShareAccess, RepoError> {
        let Some(link) = self
            .share_secrets
            .get(digest.as_bytes())
            .and_then(|id| self.share_links.get(&id.as_uuid()))
        else {
            return Ok(ShareAccess::Unavailable);
        };
        if link.status(now) != ShareStatus::Active {
            return Ok(ShareAccess::Unavailable);
        }
        if !link.grants(artifact) {
            // A refused request is no access: nothing is counted or written.
            return Ok(ShareAccess::OutOfScope(link.clone()));
        }
        let scan = self
            .scans
            .get(&link.scan_id.as_uuid())
            .ok_or_else(|| RepoError::Other("a share link without its scan".into()))?
            .clone();
        let opened = ShareLink {
            access_count: link.access_count.saturating_add(1),
            last_accessed_at: Some(now),
            ..link.clone()
        };
        let event = audit(&opened);
        self.ensure_new_audit([&event])?;

        self.share_links.insert(opened.id.as_uuid(), opened.clone());
        self.record(&event);
        Ok(ShareAccess::Opened(opened, scan))
    }
}

#[async_trait]
impl ScanStore for MemoryStore {
    // ---- scans ----

    async fn create_scan(
        &self,
        scan: &Scan,
        target: &ScanTarget,
        audit: &AuditEvent,
    ) -> Result<Vec<AgentId>, RepoError> {
        self.with(|s| s.create_scan(scan, target, audit))
    }

    async fn scan_progress(
        &self,
        tenant: TenantId,
        ids: &[ScanId],
    ) -> Result<Vec<(ScanId, Progress)>, RepoError> {
        self.read(|s| Ok(s.scan_progress(tenant, ids)))
    }

    async fn list_parts(
        &self,
        tenant: TenantId,
        scan: ScanId,
        status: Option<PartStatus>,
        page: PageRequest,
    ) -> Result<Page<ScanPart>, RepoError> {
        self.read(|s| s.list_parts(tenant, scan, status, page))
    }

    async fn claim_parts(
        &self,
        tenant: TenantId,
        id: ScanId,
        agents: &[AgentId],
        now: Timestamp,
    ) -> Result<Option<(Scan, Vec<AgentId>)>, RepoError> {
        self.with(|s| Ok(s.claim_parts(tenant, id, agents, now)))
    }

    async fn get_part(&self, agent: &Agent, id: ScanId) -> Result<Option<ScanPart>, RepoError> {
        self.read(|s| Ok(s.get_part(agent, id)))
    }

    async fn submit_part(
        &self,
        agent: AgentId,
        id: ScanId,
        at: Timestamp,
        results_json: &str,
    ) -> Result<bool, RepoError> {
        self.with(|s| {
            s.submit_part(agent, id, at, results_json)?;
            Ok(s.progress_of(id).open() > 0)
        })
    }

    async fn part_results(
        &self,
        tenant: TenantId,
        id: ScanId,
        after: Option<AgentId>,
        limit: u32,
    ) -> Result<Vec<(AgentId, String)>, RepoError> {
        self.read(|s| s.part_results(tenant, id, after, limit))
    }

    async fn finish_fan_out(
        &self,
        tenant: TenantId,
        id: ScanId,
        at: Timestamp,
        artifacts: Option<&ScanArtifacts>,
        audit: &AuditEvent,
    ) -> Result<Option<Scan>, RepoError> {
        self.with(|s| s.finish_fan_out(tenant, id, at, artifacts, audit))
    }

    async fn fan_outs_to_finish(&self, limit: u32) -> Result<Vec<Scan>, RepoError> {
        self.read(|s| Ok(s.fan_outs_to_finish(limit)))
    }

    async fn cancel_scan(
        &self,
        tenant: TenantId,
        id: ScanId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Scan, RepoError> {
        self.with(|s| s.cancel_scan(tenant, id, at, audit))
    }

    async fn get_scan(&self, tenant: TenantId, id: ScanId) -> Result<Scan, RepoError> {
        self.read(|s| s.get_scan(tenant, id))
    }

    async fn list_scans(
        &self,
        tenant: TenantId,
        filter: &ScanFilter,
        page: PageRequest,
    ) -> Result<Page<Scan>, RepoError> {
        self.read(|s| Ok(s.list_scans(tenant, filter, page)))
    }

    async fn claim_scan(
        &self,
        agent: &Agent,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<Option<Scan>, RepoError> {
        // The one mutex makes find, check and claim a single step: concurrent claims
        // queue up, and each sees the scans the ones before it took.
        self.with(|s| s.claim_scan(agent, now, audit))
    }

    async fn complete_scan(
        &self,
        agent: AgentId,
        id: ScanId,
        at: Timestamp,
        artifacts: &ScanArtifacts,
        audit: &AuditEvent,
    ) -> Result<Scan, RepoError> {
        self.with(|s| s.complete_scan(agent, id, at, artifacts, audit))
    }

    async fn get_scan_artifacts(
        &self,
        tenant: TenantId,
        id: ScanId,
    ) -> Result<Option<ScanArtifacts>, RepoError> {
        self.read(|s| s.get_scan_artifacts(tenant, id))
    }

    async fn sweep_scans(
        &self,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<usize, RepoError> {
        self.with(|s| s.sweep_scans(now, audit))
    }

    // ---- share links ----

    async fn create_share_link(
        &self,
        link: &ShareLink,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| s.create_share_link(link, digest, audit))
    }

    async fn get_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
    ) -> Result<ShareLink, RepoError> {
        self.read(|s| s.get_share_link(tenant, id))
    }

    async fn list_share_links(
        &self,
        tenant: TenantId,
        scan: ScanId,
        page: PageRequest,
    ) -> Result<Page<ShareLink>, RepoError> {
        self.read(|s| s.list_share_links(tenant, scan, page))
    }

    async fn revoke_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ShareLink, RepoError> {
        self.with(|s| s.revoke_share_link(tenant, id, at, audit))
    }

    async fn access_share_link(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
        artifact: Artifact,
        audit: AuditFor<'_, ShareLink>,
    ) -> Result<ShareAccess, RepoError> {
        // Under the one mutex, check and count are a single step: concurrent opens
        // queue up, and each sees the accesses the ones before it counted.
        self.with(|s| s.access_share_link(digest, now, artifact, audit))
    }

    async fn find_share_link_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<ShareLink>, RepoError> {
        self.read(|s| {
            Ok(s.share_secrets
                .get(digest.as_bytes())
                .and_then(|id| s.share_links.get(&id.as_uuid()))
                .cloned())
        })
    }
}

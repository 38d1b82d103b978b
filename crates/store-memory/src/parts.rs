//! The parts of fan-out scans in memory: one row per (scan, agent), with the results
//! its agent sent, as steps on the locked [`State`] that the [`ScanStore`] impl in
//! `scans.rs` and the agent revocation in `fleet_agents.rs` call.
//!
//! [`ScanStore`]: fleetpass_ports::store::ScanStore

use std::ops::Bound;

use fleetpass_domain::Timestamp;
use fleetpass_domain::fleet::Agent;
use fleetpass_domain::ids::{AgentId, ScanId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::{
    PartFailure, PartStatus, Progress, Scan, ScanPart, ScanStatus, ScanTarget,
};
use fleetpass_ports::store::{RepoError, constraint};
use uuid::Uuid;

use crate::State;

/// Whether `scan`'s queued parts can be claimed at `now` (its window is open).
fn parts_claimable(scan: &Scan, now: Timestamp) -> bool {
    (scan.status == ScanStatus::Queued || scan.status == ScanStatus::Running)
        && scan.constraints.not_before.is_none_or(|nb| nb <= now)
        && now < scan.claim_deadline()
}

/// A part and, once it completed, its agent's results (JSON).
#[derive(Debug, Clone)]
pub(crate) struct PartRow {
    pub(crate) part: ScanPart,
    pub(crate) results: Option<String>,
}

fn conflict(constraint: fleetpass_ports::Conflict) -> RepoError {
    RepoError::Conflict { constraint }
}

impl State {
    /// The agents a fan-out scan's target selects now: live agents of its fleet.
    pub(crate) fn targeted_agents(
        &self,
        scan: &Scan,
        target: &ScanTarget,
    ) -> Result<Vec<AgentId>, RepoError> {
        let live = |a: &&Agent| {
            a.tenant_id == scan.tenant_id && a.fleet_id == scan.fleet_id && a.revoked_at.is_none()
        };
        let agents: Vec<AgentId> = match target {
            ScanTarget::Any => return Ok(Vec::new()),
            ScanTarget::All => self.agents.values().filter(live).map(|a| a.id).collect(),
            ScanTarget::Labels(selector) => self
                .agents
                .values()
                .filter(live)
                .filter(|a| a.labels.matches(selector))
                .map(|a| a.id)
                .collect(),
            ScanTarget::Agents(ids) => {
                let found: Vec<AgentId> = ids
                    .iter()
                    .filter(|id| self.agents.get(&id.as_uuid()).as_ref().is_some_and(live))
                    .copied()
                    .collect();
                if found.len() != ids.len() {
                    return Err(conflict(constraint::TARGET_NOT_IN_FLEET));
                }
                found
            }
        };
        if agents.is_empty() {
            return Err(conflict(constraint::TARGET_EMPTY));
        }
        // Ids are UUID v7 in a BTreeMap: already sorted.
        Ok(agents)
    }

    /// Stores one queued part per agent of `scan`.
    pub(crate) fn insert_parts(&mut self, scan: ScanId, agents: &[AgentId]) {
        for agent in agents {
            self.parts.insert(
                (scan.as_uuid(), agent.as_uuid()),
                PartRow {
                    part: ScanPart {
                        agent_id: *agent,
                        status: PartStatus::Queued,
                        claimed_at: None,
                        finished_at: None,
                        failure: None,
                    },
                    results: None,
                },
            );
        }
    }

    /// The parts of `scan`.
    fn parts_of(&self, scan: ScanId) -> impl DoubleEndedIterator<Item = &PartRow> {
        let id = scan.as_uuid();
        self.parts
            .range((id, Uuid::nil())..=(id, Uuid::max()))
            .map(|(_, row)| row)
    }

    pub(crate) fn progress_of(&self, scan: ScanId) -> Progress {
        let mut progress = Progress::default();
        for row in self.parts_of(scan) {
            progress.count(row.part.status, 1);
        }
        progress
    }

    pub(crate) fn scan_progress(
        &self,
        tenant: TenantId,
        ids: &[ScanId],
    ) -> Vec<(ScanId, Progress)> {
        ids.iter()
            .filter(|id| {
                self.scans
                    .get(&id.as_uuid())
                    .is_some_and(|s| s.tenant_id == tenant && s.target.fans_out())
            })
            .map(|id| (*id, self.progress_of(*id)))
            .collect()
    }

    pub(crate) fn list_parts(
        &self,
        tenant: TenantId,
        scan: ScanId,
        status: Option<PartStatus>,
        page: PageRequest,
    ) -> Result<Page<ScanPart>, RepoError> {
        self.scan(tenant, scan)?;
        let id = scan.as_uuid();
        let upper = page.cursor.map_or(Bound::Included((id, Uuid::max())), |c| {
            Bound::Excluded((id, c.last_id()))
        });
        let rows: Vec<ScanPart> = self
            .parts
            .range((Bound::Included((id, Uuid::nil())), upper))
            .rev()
            .map(|(_, row)| &row.part)
            .filter(|p| status.is_none_or(|s| p.status == s))
            .take(page.limit.get() as usize + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(rows, page.limit, |p| {
            p.agent_id.as_uuid()
        }))
    }

    pub(crate) fn get_part(&self, agent: &Agent, id: ScanId) -> Option<ScanPart> {
        self.scans
            .get(&id.as_uuid())
            .filter(|s| s.tenant_id == agent.tenant_id)?;
        self.parts
            .get(&(id.as_uuid(), agent.id.as_uuid()))
            .map(|row| row.part.clone())
    }

    /// The oldest scan with a part of `agent` that is claimable at `now`.
    pub(crate) fn claimable_part(&self, agent: &Agent, now: Timestamp) -> Option<&Scan> {
        self.parts
            .iter()
            .filter(|((_, a), row)| {
                *a == agent.id.as_uuid() && row.part.status == PartStatus::Queued
            })
            .filter_map(|((scan, _), _)| self.scans.get(scan))
            .find(|scan| scan.tenant_id == agent.tenant_id && parts_claimable(scan, now))
    }

    pub(crate) fn claim_parts(
        &mut self,
        tenant: TenantId,
        id: ScanId,
        agents: &[AgentId],
        now: Timestamp,
    ) -> Option<(Scan, Vec<AgentId>)> {
        let scan = self
            .scans
            .get(&id.as_uuid())
            .filter(|s| s.tenant_id == tenant && parts_claimable(s, now))?
            .clone();
        let mut claimed = Vec::new();
        for agent in agents {
            if let Some(row) = self.parts.get_mut(&(id.as_uuid(), agent.as_uuid()))
                && row.part.status == PartStatus::Queued
            {
                row.part.status = PartStatus::Running;
                row.part.claimed_at = Some(now);
                claimed.push(*agent);
            }
        }
        if claimed.is_empty() {
            return None;
        }
        let running = if scan.status == ScanStatus::Queued {
            Scan {
                status: ScanStatus::Running,
                claimed_at: Some(now),
                ..scan
            }
        } else {
            scan
        };
        self.scans.insert(id.as_uuid(), running.clone());
        Some((running, claimed))
    }

    /// Claims `agent`'s part of `scan` at `now`; the scan runs from its first claim.
    pub(crate) fn claim_part(&mut self, agent: &Agent, scan: &Scan, now: Timestamp) -> Scan {
        if let Some(row) = self.parts.get_mut(&(scan.id.as_uuid(), agent.id.as_uuid())) {
            row.part.status = PartStatus::Running;
            row.part.claimed_at = Some(now);
        }
        let running = if scan.status == ScanStatus::Queued {
            Scan {
                status: ScanStatus::Running,
                claimed_at: Some(now),
                ..scan.clone()
            }
        } else {
            scan.clone()
        };
        self.scans.insert(running.id.as_uuid(), running.clone());
        running
    }

    pub(crate) fn submit_part(
        &mut self,
        agent: AgentId,
        id: ScanId,
        at: Timestamp,
        results_json: &str,
    ) -> Result<(), RepoError> {
        let row = self
            .parts
            .get_mut(&(id.as_uuid(), agent.as_uuid()))
            .ok_or(RepoError::NotFound)?;
        if row.part.status != PartStatus::Running {
            return Err(conflict(constraint::SCAN_NOT_RUNNING));
        }
        row.part.status = PartStatus::Completed;
        row.part.finished_at = Some(at);
        row.results = Some(results_json.to_owned());
        Ok(())
    }

    pub(crate) fn part_results(
        &self,
        tenant: TenantId,
        id: ScanId,
        after: Option<AgentId>,
        limit: u32,
    ) -> Result<Vec<(AgentId, String)>, RepoError> {
        self.scan(tenant, id)?;
        let scan = id.as_uuid();
        let lower = after.map_or(Bound::Included((scan, Uuid::nil())), |a| {
            Bound::Excluded((scan, a.as_uuid()))
        });
        Ok(self
            .parts
            .range((lower, Bound::Included((scan, Uuid::max()))))
            .filter_map(|(_, row)| row.results.as_ref().map(|r| (row.part.agent_id, r.clone())))
            .take(limit as usize)
            .collect())
    }

    /// Ends the open parts of `scan` (all, or only `agent`'s) as `status` at `at`.
    pub(crate) fn end_open_parts(
        &mut self,
        scan: Option<ScanId>,
        agent: Option<AgentId>,
        status: PartStatus,
        failure: Option<PartFailure>,
        at: Timestamp,
    ) -> usize {
        let mut ended = 0;
        for ((s, a), row) in &mut self.parts {
            if scan.is_some_and(|id| id.as_uuid() != *s)
                || agent.is_some_and(|id| id.as_uuid() != *a)
                || !row.part.status.is_open()
            {
                continue;
            }
            row.part.status = status;
            row.part.failure = failure;
            row.part.finished_at = Some(at);
            ended += 1;
        }
        ended
    }

    /// Fails every open part past its deadline; returns how many.
    pub(crate) fn sweep_parts(&mut self, now: Timestamp) -> usize {
        let overdue: Vec<((Uuid, Uuid), PartFailure)> = self
            .parts
            .iter()
            .filter_map(|(key, row)| {
                let scan = self.scans.get(&key.0)?;
                scan.part_overdue(&row.part, now).map(|why| (*key, why))
            })
            .collect();
        for (key, why) in &overdue {
            if let Some(row) = self.parts.get_mut(key) {
                row.part.status = PartStatus::Failed;
                row.part.failure = Some(*why);
                row.part.finished_at = Some(now);
            }
        }
        overdue.len()
    }

    /// Fan-out scans still queued or running whose parts have all ended.
    pub(crate) fn fan_outs_to_finish(&self, limit: u32) -> Vec<Scan> {
        self.scans
            .values()
            .filter(|s| s.target.fans_out() && !s.status.is_final())
            .filter(|s| self.progress_of(s.id).open() == 0)
            .take(limit as usize)
            .cloned()
            .collect()
    }

    /// Removes the parts of the scans in `gone`.
    pub(crate) fn remove_parts_of(&mut self, gone: &std::collections::HashSet<ScanId>) {
        self.parts
            .retain(|(scan, _), _| !gone.contains(&ScanId::from_uuid(*scan)));
    }
}

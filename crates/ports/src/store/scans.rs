//! The [`ScanStore`] part of the store port: scans (request, claim, complete, sweep) and
//! the share links to their artifacts.
//!
//! The obligations in the [`store`](super) module docs hold for every method here.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::Agent;
use fleetpass_domain::ids::{AgentId, ScanId, ShareLinkId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::{PartStatus, Progress, Scan, ScanPart, ScanTarget};
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::{Artifact, ShareLink};

use super::{AuditFor, RepoError, ScanArtifacts, ScanFilter, ShareAccess};

/// The part of [`Store`](super::Store) for scans.
#[async_trait]
pub trait ScanStore: Send + Sync + 'static {
    // ---- scans ----

    /// Stores a requested scan (status queued). A fan-out scan
    /// (`scan.target.fans_out()`) gets, in the same transaction, one queued part per
    /// live (unrevoked) agent of its fleet that `target` (whose kind is `scan.target`)
    /// selects at this moment; the agents are returned, sorted (none for `Any`).
    ///
    /// # Errors
    /// `NotFound` when its fleet is not one of its tenant's;
    /// `Conflict { constraint: TARGET_EMPTY }` when a fan-out target selects no agent;
    /// `Conflict { constraint: TARGET_NOT_IN_FLEET }` when a listed agent is not a live
    /// agent of the fleet. Nothing is written then.
    async fn create_scan(
        &self,
        scan: &Scan,
        target: &ScanTarget,
        audit: &AuditEvent,
    ) -> Result<Vec<AgentId>, RepoError>;

    /// The progress of the fan-out scans among `ids` of `tenant` (scans of target `Any`
    /// and unknown ids are left out).
    async fn scan_progress(
        &self,
        tenant: TenantId,
        ids: &[ScanId],
    ) -> Result<Vec<(ScanId, Progress)>, RepoError>;

    /// The parts of a fan-out scan, newest agent first, optionally only those in
    /// `status` (filtered before paginating). `NotFound` for an unknown scan.
    async fn list_parts(
        &self,
        tenant: TenantId,
        scan: ScanId,
        status: Option<PartStatus>,
        page: PageRequest,
    ) -> Result<Page<ScanPart>, RepoError>;

    /// Claims, at `now`, the queued parts of scan `id` of `tenant` that belong to
    /// `agents` (sorted) and are claimable (as in `claim_scan`), in one transaction:
    /// each becomes running, and the scan too the first time. Returns the scan and the
    /// agents whose parts were claimed (sorted), or `None` when none was. Parts another
    /// claim holds are skipped (`SKIP LOCKED`). No audit event, as for every part.
    async fn claim_parts(
        &self,
        tenant: TenantId,
        id: ScanId,
        agents: &[AgentId],
        now: Timestamp,
    ) -> Result<Option<(Scan, Vec<AgentId>)>, RepoError>;

    /// The part of scan `id` that `agent` runs, if it has one.
    async fn get_part(&self, agent: &Agent, id: ScanId) -> Result<Option<ScanPart>, RepoError>;

    /// Stores `agent`'s results (the JSON of validated `ScanResults`) for its running
    /// part of fan-out scan `id`: the part completes at `at`. Returns whether the scan
    /// still has an open part then (when not, it is ready to end), answered from an
    /// index, not by counting the parts: ten thousand results must not cost ten
    /// thousand counts of ten thousand parts.
    ///
    /// # Errors
    /// `NotFound` when the agent has no part in the scan; `Conflict { constraint:
    /// SCAN_NOT_RUNNING }` when its part is not running (failed by the sweeper,
    /// cancelled, completed already).
    async fn submit_part(
        &self,
        agent: AgentId,
        id: ScanId,
        at: Timestamp,
        results_json: &str,
    ) -> Result<bool, RepoError>;

    /// The stored results of the completed parts of scan `id`, by agent id ascending,
    /// at most `limit` after `after`: how a merge pages through them.
    async fn part_results(
        &self,
        tenant: TenantId,
        id: ScanId,
        after: Option<AgentId>,
        limit: u32,
    ) -> Result<Vec<(AgentId, String)>, RepoError>;

    /// Ends fan-out scan `id` at `at` if it is queued or running and none of its parts
    /// is open: completed with `artifacts`, or failed without (`None`), and `audit`
    /// records it. `Ok(None)` when it is not ready (or ended already): safe to race.
    async fn finish_fan_out(
        &self,
        tenant: TenantId,
        id: ScanId,
        at: Timestamp,
        artifacts: Option<&ScanArtifacts>,
        audit: &AuditEvent,
    ) -> Result<Option<Scan>, RepoError>;

    /// Fan-out scans of any tenant that are queued or running with no open part: what
    /// the sweeper finishes (at most `limit`).
    async fn fan_outs_to_finish(&self, limit: u32) -> Result<Vec<Scan>, RepoError>;

    /// Cancels a queued or running scan of `tenant` at `at` (its open parts with it) and
    /// returns it.
    ///
    /// # Errors
    /// `NotFound`; `Conflict { constraint: SCAN_FINISHED }` when it has ended.
    async fn cancel_scan(
        &self,
        tenant: TenantId,
        id: ScanId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Scan, RepoError>;

    /// Reads a scan of `tenant`.
    async fn get_scan(&self, tenant: TenantId, id: ScanId) -> Result<Scan, RepoError>;

    /// Lists the scans of `tenant` that pass `filter`, newest first (filter before
    /// paginating, so pages are full).
    async fn list_scans(
        &self,
        tenant: TenantId,
        filter: &ScanFilter,
        page: PageRequest,
    ) -> Result<Page<Scan>, RepoError>;

    /// Claims for `agent` the oldest scan of its fleet that is `claimable(now)`: it
    /// becomes running, claimed by the agent at `now`, and `audit` records it. Two
    /// concurrent claims never get the same scan (Postgres: `FOR UPDATE SKIP LOCKED`),
    /// across processes too. `Ok(None)` when there is nothing to claim.
    ///
    /// The agent's own queued parts of fan-out scans compete too (oldest scan first,
    /// whatever its target): a claimed part becomes running at `now`, and its scan
    /// too the first time (`claimed_at` then, `claimed_by` staying empty). A part is
    /// claimable while its scan is claimable and before its [`Scan::claim_deadline`].
    /// No audit event is written per part (the scan's request and end are).
    async fn claim_scan(
        &self,
        agent: &Agent,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<Option<Scan>, RepoError>;

    /// Completes a running scan claimed by `agent` at `at`, storing its artifacts;
    /// returns the completed scan.
    ///
    /// # Errors
    /// MUST return `NotFound` when the scan does not exist or was not claimed by this
    /// agent, and `Conflict { constraint: SCAN_NOT_RUNNING }` when it was, but is no
    /// longer running (completed already, or failed by the sweeper).
    async fn complete_scan(
        &self,
        agent: AgentId,
        id: ScanId,
        at: Timestamp,
        artifacts: &ScanArtifacts,
        audit: &AuditEvent,
    ) -> Result<Scan, RepoError>;

    /// The artifacts of a completed scan of `tenant`; `Ok(None)` when it has none yet
    /// (`NotFound` for an unknown scan).
    async fn get_scan_artifacts(
        &self,
        tenant: TenantId,
        id: ScanId,
    ) -> Result<Option<ScanArtifacts>, RepoError>;

    /// Moves every overdue scan (`Scan::overdue(now)`) to failed or expired, with
    /// `finished_at = now` and an audit event each, and fails every open part past its
    /// deadline (`Scan::part_overdue(now)`, no event); returns how many of either moved. Safe to run
    /// on several replicas at once: each scan moves once.
    async fn sweep_scans(
        &self,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<usize, RepoError>;

    // ---- share links ----

    /// Stores a share link and its token's digest.
    ///
    /// # Errors
    /// `NotFound` when its scan is not one of its tenant's.
    async fn create_share_link(
        &self,
        link: &ShareLink,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Reads a share link of `tenant`.
    async fn get_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
    ) -> Result<ShareLink, RepoError>;

    /// Lists a scan's share links, newest first. `NotFound` for an unknown scan.
    async fn list_share_links(
        &self,
        tenant: TenantId,
        scan: ScanId,
        page: PageRequest,
    ) -> Result<Page<ShareLink>, RepoError>;

    /// Revokes a share link and returns it; revoking a revoked one changes nothing and
    /// writes no audit event.
    async fn revoke_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ShareLink, RepoError>;

    /// Opens the share link whose token has `digest` for `artifact`, atomically: when
    /// its status at `now` is active and it grants `artifact`, its access count goes up
    /// by one, `last_accessed_at = now`, the `audit` event is written, and the link (as
    /// changed) and its scan are returned. An active link that does not grant the
    /// artifact is `OutOfScope` and nothing is written (a refused request is no
    /// access). An unknown, expired, revoked or used-up link is `Unavailable` —
    /// indistinguishably — and nothing is written. N concurrent opens of a link with m
    /// accesses left succeed exactly min(N, m) times.
    async fn access_share_link(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
        artifact: Artifact,
        audit: AuditFor<'_, ShareLink>,
    ) -> Result<ShareAccess, RepoError>;

    /// The share link whose token has `digest`, in any tenant (in any state); `Ok(None)`
    /// when there is none.
    async fn find_share_link_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<ShareLink>, RepoError>;
}

//! The [`ScheduleStore`] part of the store port: recurring scan schedules and their runs.
//!
//! The obligations in the [`store`](super) module docs hold for every method here.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::ids::{EnvironmentId, ScheduleId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::schedule::Schedule;

use super::{RepoError, ScheduleRun};

/// The part of [`Store`](super::Store) for recurring scan schedules and their runs.
#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    // ---- schedules ----

    /// Stores a schedule.
    ///
    /// # Errors
    /// `NotFound` when its fleet is not one of its tenant's.
    async fn create_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Reads a schedule of `tenant`.
    async fn get_schedule(&self, tenant: TenantId, id: ScheduleId) -> Result<Schedule, RepoError>;

    /// Lists the schedules of `tenant`, newest first; with `environments`, only those in
    /// them (filtered before paginating).
    async fn list_schedules(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<Schedule>, RepoError>;

    /// Writes a schedule's mutable fields (scenario, limits, interval, enabled) from
    /// `schedule`. MUST NOT write `next_run_at` or `last_run_at`: only the runner moves
    /// them, so an update racing a run cannot bring back a due time that already ran.
    /// `NotFound` when it is not one of its tenant's.
    async fn update_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Deletes a schedule (the scans it enqueued stay).
    async fn delete_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Enqueues one scan for every schedule that is `due(now)`: in one transaction per
    /// schedule, the scan `enqueue` builds from it (with its audit event) is stored and
    /// the schedule moves to `last_run_at = now`, `next_run_at = next_after(now)`.
    /// Returns how many scans were enqueued. Several replicas running this at once
    /// enqueue each due time once (Postgres: `FOR UPDATE SKIP LOCKED`).
    async fn run_due_schedules(
        &self,
        now: Timestamp,
        enqueue: ScheduleRun<'_>,
    ) -> Result<usize, RepoError>;
}

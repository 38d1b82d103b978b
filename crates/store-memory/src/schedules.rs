//! Schedules in memory: the [`ScheduleStore`] impl and its bodies, as steps on
//! the locked [`State`].
//!
//! Each step follows the rule of the crate: every check that can fail runs before the
//! first change, and the change is applied together with its audit event(s). Because
//! `run_due_schedules` holds the one lock for its whole body, concurrent runs queue up
//! and the later ones no longer find the schedules the first one moved on: each due
//! time enqueues exactly one scan.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::ids::{EnvironmentId, FleetId, ScheduleId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::schedule::Schedule;
use fleetpass_ports::store::{RepoError, ScheduleRun, ScheduleStore};

use crate::{MemoryStore, State, duplicate, page_of};

impl State {
    /// The schedule `id` of `tenant`.
    fn schedule(&self, tenant: TenantId, id: ScheduleId) -> Result<&Schedule, RepoError> {
        self.schedules
            .get(&id.as_uuid())
            .filter(|s| s.tenant_id == tenant)
            .ok_or(RepoError::NotFound)
    }

    pub(crate) fn create_schedule(
        &mut self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        // The foreign key a database would enforce: the fleet is the schedule's tenant's.
        self.fleet(schedule.tenant_id, schedule.fleet_id)?;
        if self.schedules.contains_key(&schedule.id.as_uuid()) {
            return Err(duplicate("schedule"));
        }
        self.ensure_new_audit([audit])?;

        self.schedules
            .insert(schedule.id.as_uuid(), schedule.clone());
        self.record(audit);
        Ok(())
    }

    pub(crate) fn get_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
    ) -> Result<Schedule, RepoError> {
        self.schedule(tenant, id).cloned()
    }

    pub(crate) fn list_schedules(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Page<Schedule> {
        // Filtering happens inside the page walk, so every page but the last is full.
        page_of(&self.schedules, page, |s| {
            s.tenant_id == tenant
                && environments.is_none_or(|envs| envs.contains(&s.environment_id))
        })
    }

    pub(crate) fn update_schedule(
        &mut self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let stored = self.schedule(schedule.tenant_id, schedule.id)?;
        self.ensure_new_audit([audit])?;

        // Only the mutable fields: tenant, fleet, environment, creation and both run
        // times stay as stored (the runner alone moves those, so an update racing a run
        // cannot bring back a due time that already ran).
        let updated = Schedule {
            scenario: schedule.scenario,
            max_duration_minutes: schedule.max_duration_minutes,
            max_assets: schedule.max_assets,
            interval: schedule.interval,
            enabled: schedule.enabled,
            ..stored.clone()
        };
        self.schedules.insert(updated.id.as_uuid(), updated);
        self.record(audit);
        Ok(())
    }

    pub(crate) fn delete_schedule(
        &mut self,
        tenant: TenantId,
        id: ScheduleId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.schedule(tenant, id)?;
        self.ensure_new_audit([audit])?;

        self.schedules.remove(&id.as_uuid());
        self.record(audit);
        Ok(())
    }

    pub(crate) fn run_due_schedules(
        &mut self,
        now: Timestamp,
        enqueue: ScheduleRun<'_>,
    ) -> Result<usize, RepoError> {
        // Ids are UUID v7: ascending key order is oldest first.
        let due: Vec<Schedule> = self
            .schedules
            .values()
            .filter(|s| s.due(now))
            .cloned()
            .collect();
        let mut enqueued = 0;
        // One step per schedule, like the one transaction per schedule of a database:
        // a failure leaves the schedules run before it run, and itself untouched.
        for schedule in due {
            let (scan, audit) = enqueue(&schedule);
            self.create_scan(&scan, &fleetpass_domain::scan::ScanTarget::Any, &audit)?;
            let ran = Schedule {
                last_run_at: Some(now),
                next_run_at: schedule.next_after(now),
                ..schedule
            };
            self.schedules.insert(ran.id.as_uuid(), ran);
            enqueued += 1;
        }
        Ok(enqueued)
    }

    /// Removes the schedules of `fleet`: part of deleting the fleet.
    pub(crate) fn remove_schedules_of(&mut self, fleet: FleetId) {
        self.schedules.retain(|_, s| s.fleet_id != fleet);
    }
}

#[async_trait]
impl ScheduleStore for MemoryStore {
    // ---- schedules ----

    async fn create_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| s.create_schedule(schedule, audit))
    }

    async fn get_schedule(&self, tenant: TenantId, id: ScheduleId) -> Result<Schedule, RepoError> {
        self.read(|s| s.get_schedule(tenant, id))
    }

    async fn list_schedules(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<Schedule>, RepoError> {
        self.read(|s| Ok(s.list_schedules(tenant, environments, page)))
    }

    async fn update_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| s.update_schedule(schedule, audit))
    }

    async fn delete_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| s.delete_schedule(tenant, id, audit))
    }

    async fn run_due_schedules(
        &self,
        now: Timestamp,
        enqueue: ScheduleRun<'_>,
    ) -> Result<usize, RepoError> {
        // Under the one mutex, finding the due schedules and moving them on are a single
        // step: a concurrent run queues up and finds them no longer due.
        self.with(|s| s.run_due_schedules(now, enqueue))
    }
}

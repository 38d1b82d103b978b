//! The builders of what a store decides on, made as the service would: the audit events of
//! claims, sweeps and share-link accesses, and the scans of due schedule runs; and the
//! `Setup` steps that use them.

use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};

use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::{AuditAction, AuditActor, AuditEvent, actions};
use fleetpass_domain::fleet::Agent;
use fleetpass_domain::ids::{ScanId, TenantId};
use fleetpass_domain::scan::{Scan, ScanStatus};
use fleetpass_domain::schedule::Schedule;
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::{Artifact, ShareLink};
use fleetpass_ports::Store;
use fleetpass_ports::store::{AuditFor, ScheduleRun, ShareAccess};
use uuid::Uuid;

use super::{Enqueued, Must, Setup};
use crate::fixtures::Fixtures;

/// What an audit event the store decides on says, read from the row as changed.
struct Decided {
    tenant: TenantId,
    actor: AuditActor,
    action: AuditAction,
    target: Uuid,
    at: Timestamp,
}

/// Builds the audit events of the changes a store decides on (a claim, a sweep, a
/// share-link access) as the service would: from the row as changed, which the store
/// passes in. Every build is remembered, and building again from an equal row gives the
/// same event (same id), so a store that builds, rolls back and retries writes the same
/// event whichever attempt commits. [`Auditor::event_for`] finds the event of a row.
pub(crate) struct Auditor<'a, T> {
    fx: &'a Fixtures,
    decide: fn(&T) -> Decided,
    built: Mutex<Vec<(T, AuditEvent)>>,
}

impl<'a, T: Clone + PartialEq + Debug> Auditor<'a, T> {
    fn new(fx: &'a Fixtures, decide: fn(&T) -> Decided) -> Self {
        Self {
            fx,
            decide,
            built: Mutex::new(Vec::new()),
        }
    }

    /// The event of the change that made `row`: the one built before for an equal row,
    /// or a fresh one.
    pub(crate) fn build(&self, row: &T) -> AuditEvent {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, event)) = built.iter().find(|(seen, _)| seen == row) {
            return event.clone();
        }
        let d = (self.decide)(row);
        let event = self
            .fx
            .audit_by(d.tenant, d.actor, d.action, Some(d.target), d.at);
        built.push((row.clone(), event.clone()));
        event
    }

    /// The event built for `row`, which a store call returned or now holds: the store
    /// must have passed exactly that row, as changed, to the builder.
    pub(crate) fn event_for(&self, row: &T) -> AuditEvent {
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        built
            .iter()
            .find(|(seen, _)| seen == row)
            .map(|(_, event)| event.clone())
            .unwrap_or_else(|| {
                let seen: Vec<&T> = built.iter().map(|(seen, _)| seen).collect();
                panic!(
                    "the store must build the audit event from the row as changed: no event \
                     was built for {row:#?}; rows passed to the builder: {seen:#?}"
                )
            })
    }
}

impl<'a> Auditor<'a, Scan> {
    /// The builder of claims: `scan.claimed`, by the claiming agent, at `claimed_at`.
    pub(crate) fn claims(fx: &'a Fixtures) -> Self {
        Self::new(fx, |scan| Decided {
            tenant: scan.tenant_id,
            actor: scan.claimed_by.map_or(AuditActor::System, |agent| {
                AuditActor::Agent(agent.as_uuid())
            }),
            action: actions::SCAN_CLAIMED,
            target: scan.id.as_uuid(),
            at: scan.claimed_at.unwrap_or(scan.requested_at),
        })
    }

    /// The builder of sweeps: `scan.failed` or `scan.expired`, by the system, at
    /// `finished_at`.
    pub(crate) fn sweeps(fx: &'a Fixtures) -> Self {
        Self::new(fx, |scan| Decided {
            tenant: scan.tenant_id,
            actor: AuditActor::System,
            action: match scan.status {
                ScanStatus::Failed => actions::SCAN_FAILED,
                ScanStatus::Expired => actions::SCAN_EXPIRED,
                // A store that sweeps a scan to anything else is wrong; the case's
                // checks of the row name that. (A stand-in no sweep records.)
                _ => actions::SCAN_REQUESTED,
            },
            target: scan.id.as_uuid(),
            at: scan.finished_at.unwrap_or(scan.requested_at),
        })
    }

    /// Calls `claim_scan` for `agent` at `now` with this builder; the call itself must
    /// not fail.
    pub(crate) async fn claim(
        &self,
        store: &dyn Store,
        agent: &Agent,
        now: Timestamp,
    ) -> Option<Scan> {
        let build: AuditFor<'_, Scan> = &|scan| self.build(scan);
        store.claim_scan(agent, now, build).await.must("claim_scan")
    }

    /// Calls `sweep_scans` at `now` with this builder; the call itself must not fail.
    pub(crate) async fn sweep(&self, store: &dyn Store, now: Timestamp) -> usize {
        let build: AuditFor<'_, Scan> = &|scan| self.build(scan);
        store.sweep_scans(now, build).await.must("sweep_scans")
    }
}

impl<'a> Auditor<'a, ShareLink> {
    /// The builder of accesses: `share_link.accessed`, by the public, at
    /// `last_accessed_at`.
    pub(crate) fn accesses(fx: &'a Fixtures) -> Self {
        Self::new(fx, |link| Decided {
            tenant: link.tenant_id,
            actor: AuditActor::Public,
            action: actions::SHARE_LINK_ACCESSED,
            target: link.id.as_uuid(),
            at: link.last_accessed_at.unwrap_or(link.created_at),
        })
    }

    /// Calls `access_share_link` with the token `digest` at `now` for `artifact` with
    /// this builder; the call itself must not fail.
    pub(crate) async fn access(
        &self,
        store: &dyn Store,
        digest: &SecretDigest,
        now: Timestamp,
        artifact: Artifact,
    ) -> ShareAccess {
        let build: AuditFor<'_, ShareLink> = &|link| self.build(link);
        store
            .access_share_link(digest, now, artifact, build)
            .await
            .must("access_share_link")
    }
}

/// Builds the scans that due schedules enqueue at one instant, as the service would: a
/// queued scan of the schedule's fleet, environment and tenant with its scenario and
/// constraints, requested at that instant, and its `scan.requested` event by the system.
/// Every build is remembered, and building again from an equal schedule gives the same
/// scan and event (same ids), so a store that builds, rolls back and retries stores the
/// same scan whichever attempt commits. [`Enqueuer::built_for`] finds what was built for
/// a schedule.
pub(crate) struct Enqueuer<'a> {
    fx: &'a Fixtures,
    /// When the runs happen: the `now` passed to `run_due_schedules`.
    pub(crate) at: Timestamp,
    built: Mutex<Vec<(Schedule, Enqueued)>>,
}

impl<'a> Enqueuer<'a> {
    /// A builder of the scans of runs at `at`.
    pub(crate) fn new(fx: &'a Fixtures, at: Timestamp) -> Self {
        Self {
            fx,
            at,
            built: Mutex::new(Vec::new()),
        }
    }

    /// The scan a run of `schedule` enqueues, and its event: the ones built before for
    /// an equal schedule, or fresh ones.
    pub(crate) fn build(&self, schedule: &Schedule) -> Enqueued {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, enqueued)) = built.iter().find(|(seen, _)| seen == schedule) {
            return enqueued.clone();
        }
        let scan = Scan {
            id: ScanId::from_uuid(self.fx.id()),
            tenant_id: schedule.tenant_id,
            fleet_id: schedule.fleet_id,
            environment_id: schedule.environment_id,
            scenario: schedule.scenario,
            constraints: schedule.constraints(),
            status: ScanStatus::Queued,
            requested_at: self.at,
            target: fleetpass_domain::scan::Target::Any,
            claimed_by: None,
            claimed_at: None,
            finished_at: None,
        };
        let audit = self.fx.audit_by(
            schedule.tenant_id,
            AuditActor::System,
            actions::SCAN_REQUESTED,
            Some(scan.id.as_uuid()),
            self.at,
        );
        built.push((schedule.clone(), (scan.clone(), audit.clone())));
        (scan, audit)
    }

    /// What was built for `schedule` as it was stored before the run: the store must
    /// have passed exactly that schedule to the builder.
    pub(crate) fn built_for(&self, schedule: &Schedule) -> Enqueued {
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        built
            .iter()
            .find(|(seen, _)| seen == schedule)
            .map(|(_, enqueued)| enqueued.clone())
            .unwrap_or_else(|| {
                let seen: Vec<&Schedule> = built.iter().map(|(seen, _)| seen).collect();
                panic!(
                    "run_due_schedules at {} must build a scan from the due schedule as \
                     stored: nothing was built for {schedule:#?}; schedules passed to the \
                     builder: {seen:#?}",
                    self.at
                )
            })
    }

    /// The schedules passed to the builder, each once, in the order first seen.
    pub(crate) fn seen(&self) -> Vec<Schedule> {
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        built.iter().map(|(seen, _)| seen.clone()).collect()
    }

    /// Calls `run_due_schedules` at [`Enqueuer::at`] with this builder; the call itself
    /// must not fail. Returns how many scans it says it enqueued.
    pub(crate) async fn run(&self, store: &dyn Store) -> usize {
        let build: ScheduleRun<'_> = &|schedule| self.build(schedule);
        store
            .run_due_schedules(self.at, build)
            .await
            .must("run_due_schedules")
    }
}

impl Setup<'_> {
    /// Stores `schedule`, which must succeed, and expects its `schedule.created` event.
    pub(crate) async fn add_schedule(&mut self, schedule: Schedule) -> Schedule {
        let audit = self.audit(actions::SCHEDULE_CREATED, schedule.id.as_uuid());
        self.store
            .create_schedule(&schedule, &audit)
            .await
            .must("create_schedule");
        self.logged(&audit);
        schedule
    }

    /// Expects the `scan.requested` event `enqueuer` built for a run of `schedule` (as
    /// stored before the run) in the log; returns the scan it built.
    pub(crate) fn enqueued(&mut self, enqueuer: &Enqueuer<'_>, schedule: &Schedule) -> Scan {
        let (scan, audit) = enqueuer.built_for(schedule);
        self.logged(&audit);
        scan
    }
}

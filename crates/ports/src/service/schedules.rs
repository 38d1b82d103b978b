//! Schedules: a scan request repeated every `intervalMinutes`. They need PostgreSQL
//! persistence: in memory mode every call is refused (503), because a schedule that
//! vanishes with the process would silently stop scanning.

use fleetpass_domain::access::{Action, Actor};
use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::ids::{FleetId, ScanId, ScheduleId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::{MaxAssets, MaxDurationMinutes, Scan, ScanStatus, Scenario, Target};
use fleetpass_domain::schedule::{IntervalMinutes, Schedule};
use serde_json::json;

use super::fleets::fleet_for;
use super::{Field, ServiceError, ServiceResult, require};
use crate::Deps;
use crate::store::Persistence;

/// Refuses every schedule call unless the store persists. Public so the HTTP layer can
/// answer 503 before it even parses an id.
///
/// # Errors
/// `NotConfigured` in memory mode.
pub fn require_persistence(deps: &Deps) -> ServiceResult<()> {
    match deps.store.persistence() {
        Persistence::Postgres => Ok(()),
        Persistence::Memory => Err(ServiceError::NotConfigured {
            message: "schedules are not available without persistence",
            hint: "schedules require Postgres persistence: set DATABASE_URL",
        }),
    }
}

/// What a schedule asks for: everything but its fleet can change later.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// What each scan looks for.
    pub scenario: Scenario,
    /// Run-time limit of each scan.
    pub max_duration_minutes: Option<MaxDurationMinutes>,
    /// Asset limit of each scan.
    pub max_assets: Option<MaxAssets>,
    /// How often.
    pub interval: IntervalMinutes,
    /// Whether it runs.
    pub enabled: bool,
}

fn check_feasible(spec: &ScheduleSpec) -> ServiceResult<()> {
    let min = spec.scenario.min_minutes();
    match spec.max_duration_minutes {
        Some(max) if max.get() < min => Err(ServiceError::invalid(
            Field::Constraint(fleetpass_domain::scan::Constraint::MaxDuration),
            format!(
                "is below the {} scenario's minimum duration of {min} minutes",
                spec.scenario.as_str()
            ),
            format!("Use at least {min} minutes."),
        )),
        _ => Ok(()),
    }
}

/// Creates a schedule; its first scan is enqueued at the next sweep (within seconds).
///
/// # Errors
/// `NotConfigured` in memory mode; `Denied`, `NotFound` (fleet), `Invalid`.
pub async fn create_schedule(
    deps: &Deps,
    actor: &Actor,
    fleet: FleetId,
    spec: ScheduleSpec,
) -> ServiceResult<Schedule> {
    require_persistence(deps)?;
    let fleet = fleet_for(deps, actor, Action::Operate, fleet).await?;
    check_feasible(&spec)?;
    let now = deps.now();
    let schedule = Schedule {
        id: ScheduleId::from_uuid(deps.ids.new_id()),
        tenant_id: actor.tenant_id,
        fleet_id: fleet.id,
        environment_id: fleet.environment_id,
        scenario: spec.scenario,
        max_duration_minutes: spec.max_duration_minutes,
        max_assets: spec.max_assets,
        interval: spec.interval,
        enabled: spec.enabled,
        next_run_at: now,
        last_run_at: None,
        created_at: now,
    };
    let audit = deps.audit_by(
        actor,
        actions::SCHEDULE_CREATED,
        schedule.id.as_uuid(),
        json!({"fleetId": fleet.id.to_string(), "scenario": spec.scenario.as_str(), "intervalMinutes": spec.interval.get()}),
    )
    .in_environment(schedule.environment_id);
    deps.store.create_schedule(&schedule, &audit).await?;
    Ok(schedule)
}

pub(crate) async fn schedule_for(
    deps: &Deps,
    actor: &Actor,
    action: Action,
    id: ScheduleId,
) -> ServiceResult<Schedule> {
    require_persistence(deps)?;
    require(actor, action, None)?;
    let schedule = deps.store.get_schedule(actor.tenant_id, id).await?;
    require(actor, action, Some(schedule.environment_id))?;
    Ok(schedule)
}

/// Reads a schedule.
///
/// # Errors
/// `NotConfigured`, `Denied`, `NotFound`.
pub async fn get_schedule(deps: &Deps, actor: &Actor, id: ScheduleId) -> ServiceResult<Schedule> {
    schedule_for(deps, actor, Action::Read, id).await
}

/// Lists the schedules in the caller's environments.
///
/// # Errors
/// `NotConfigured`, `Denied`.
pub async fn list_schedules(
    deps: &Deps,
    actor: &Actor,
    page: PageRequest,
) -> ServiceResult<Page<Schedule>> {
    require_persistence(deps)?;
    require(actor, Action::Read, None)?;
    let scope = (!actor.scope.is_all()).then(|| actor.scope.ids());
    Ok(deps
        .store
        .list_schedules(actor.tenant_id, scope.as_deref(), page)
        .await?)
}

/// A change to a schedule; `None` leaves a field alone (`Some(None)` clears a limit).
#[derive(Debug, Clone, Default)]
pub struct SchedulePatch {
    /// A new scenario.
    pub scenario: Option<Scenario>,
    /// A new run-time limit.
    pub max_duration_minutes: Option<Option<MaxDurationMinutes>>,
    /// A new asset limit.
    pub max_assets: Option<Option<MaxAssets>>,
    /// A new interval (the next run keeps its time).
    pub interval: Option<IntervalMinutes>,
    /// Pause or resume.
    pub enabled: Option<bool>,
}

/// Changes a schedule.
///
/// # Errors
/// `NotConfigured`, `Denied`, `NotFound`, `Invalid`.
pub async fn update_schedule(
    deps: &Deps,
    actor: &Actor,
    id: ScheduleId,
    patch: SchedulePatch,
) -> ServiceResult<Schedule> {
    let mut s = schedule_for(deps, actor, Action::Operate, id).await?;
    s.scenario = patch.scenario.unwrap_or(s.scenario);
    s.max_duration_minutes = patch.max_duration_minutes.unwrap_or(s.max_duration_minutes);
    s.max_assets = patch.max_assets.unwrap_or(s.max_assets);
    s.interval = patch.interval.unwrap_or(s.interval);
    s.enabled = patch.enabled.unwrap_or(s.enabled);
    check_feasible(&ScheduleSpec {
        scenario: s.scenario,
        max_duration_minutes: s.max_duration_minutes,
        max_assets: s.max_assets,
        interval: s.interval,
        enabled: s.enabled,
    })?;
    let audit = deps.audit_by(
        actor,
        actions::SCHEDULE_UPDATED,
        id.as_uuid(),
        json!({"scenario": s.scenario.as_str(), "intervalMinutes": s.interval.get(), "enabled": s.enabled}),
    )
    .in_environment(s.environment_id);
    deps.store.update_schedule(&s, &audit).await?;
    Ok(s)
}

/// Deletes a schedule; the scans it enqueued stay.
///
/// # Errors
/// `NotConfigured`, `Denied`, `NotFound`.
pub async fn delete_schedule(deps: &Deps, actor: &Actor, id: ScheduleId) -> ServiceResult<()> {
    let s = schedule_for(deps, actor, Action::Operate, id).await?;
    let audit = deps
        .audit_by(actor, actions::SCHEDULE_DELETED, id.as_uuid(), json!({}))
        .in_environment(s.environment_id);
    Ok(deps
        .store
        .delete_schedule(actor.tenant_id, id, &audit)
        .await?)
}

/// Enqueues the scans of every due schedule (each due time once, on any number of
/// replicas). A no-op without persistence. Returns how many were enqueued.
///
/// # Errors
/// Store errors.
pub async fn run_due(deps: &Deps) -> ServiceResult<usize> {
    if deps.store.persistence() == Persistence::Memory {
        return Ok(0);
    }
    let now = deps.now();
    let enqueue = |s: &Schedule| {
        let scan = Scan {
            id: ScanId::from_uuid(deps.ids.new_id()),
            tenant_id: s.tenant_id,
            fleet_id: s.fleet_id,
            environment_id: s.environment_id,
            scenario: s.scenario,
            constraints: s.constraints(),
            status: ScanStatus::Queued,
            requested_at: now,
            target: Target::Any,
            claimed_by: None,
            claimed_at: None,
            finished_at: None,
        };
        let audit = deps.audit(
            s.tenant_id,
            AuditActor::System,
            actions::SCAN_REQUESTED,
            Some(scan.id.as_uuid()),
            json!({"fleetId": s.fleet_id.to_string(), "scenario": s.scenario.as_str(), "scheduleId": s.id.to_string()}),
        )
        .in_environment(s.environment_id);
        (scan, audit)
    };
    Ok(deps.store.run_due_schedules(now, &enqueue).await?)
}

//! The schedule methods of [`PgStore`]: creating, reading, listing, updating and
//! deleting schedules, and the scheduler that enqueues the scans of due ones. The
//! `ScheduleStore` impl at the end of this file delegates to the functions here.
//!
//! Locks (in addition to the discipline described in `store.rs` and `scans`):
//! - `create` key-share locks the fleet, like every write of a row under a fleet, so a
//!   concurrent `delete_fleet` either commits first (and the schedule is refused with
//!   `NotFound`) or waits for it and deletes it too.
//! - The scheduler (`run_due`) locks one due schedule at a time `FOR UPDATE SKIP
//!   LOCKED`, enqueues its scan and moves its `next_run_at` past `now` in the same
//!   transaction. A second replica skips the locked row, and one that reaches it after
//!   the commit re-checks it against the prefilter, which it no longer passes: each
//!   due time enqueues one scan.
//! - The scan it enqueues key-share locks the schedule's fleet, but only after the
//!   schedule's row is locked, the reverse of `delete_fleet` (fleet first, then its
//!   schedules through the cascade). So the scheduler takes the fleet's lock `SKIP
//!   LOCKED` first: a fleet held by a deletion is skipped for the rest of the call (its
//!   schedules go with it, or the next call enqueues them) rather than waited for, and
//!   the scheduler never waits for anything `delete_fleet` holds.

use async_trait::async_trait;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::ids::{EnvironmentId, ScheduleId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::schedule::Schedule;
use fleetpass_ports::RepoError;
use fleetpass_ports::store::{ScheduleRun, ScheduleStore};
use uuid::Uuid;

use super::{PgStore, expect_one, insert_audit, overfetch, scans};
use crate::cached::CachedExt as _;
use crate::error::{DbError, InconsistentWrite};
use crate::rows::{ScheduleRow, convert_all};
use crate::schema::{fleets, schedules};

/// How many scans one `run_due_schedules` call enqueues at most (one transaction each).
/// Bounds a call's run time; what is left is due at the next call.
const RUN_LIMIT: usize = 1000;

/// `create_schedule`.
pub(super) async fn create(
    store: &PgStore,
    schedule: &Schedule,
    audit: &AuditEvent,
) -> Result<(), RepoError> {
    store
        .transaction(|c| {
            async move {
                let environment =
                    scans::lock_fleet_environment(c, schedule.tenant_id, schedule.fleet_id).await?;
                // As for scans: filed under another environment than its fleet's, the
                // schedule would leak into (or hide from) env-scoped listings, and so
                // would every scan it enqueues.
                if environment != schedule.environment_id.as_uuid() {
                    return Err(InconsistentWrite::repo(
                        "schedules",
                        schedule.id,
                        "its environment is not its fleet's",
                    )
                    .into());
                }
                diesel::insert_into(schedules::table)
                    .values(ScheduleRow::from(schedule))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
}

/// `get_schedule`.
pub(super) async fn get(
    store: &PgStore,
    tenant: TenantId,
    id: ScheduleId,
) -> Result<Schedule, RepoError> {
    store
        .run(|c| {
            async move {
                let row = schedules::table
                    .filter(schedules::tenant_id.eq(tenant.as_uuid()))
                    .filter(schedules::id.eq(id.as_uuid()))
                    .select(ScheduleRow::as_select())
                    .first(c)
                    .await?;
                Ok(Schedule::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
}

/// `list_schedules`.
pub(super) async fn list(
    store: &PgStore,
    tenant: TenantId,
    environments: Option<&[EnvironmentId]>,
    page: PageRequest,
) -> Result<Page<Schedule>, RepoError> {
    let envs: Option<Vec<Uuid>> =
        environments.map(|ids| ids.iter().map(EnvironmentId::as_uuid).collect());
    store
        .run(|c| {
            async move {
                let mut query = schedules::table
                    .filter(schedules::tenant_id.eq(tenant.as_uuid()))
                    .select(ScheduleRow::as_select())
                    .order(schedules::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                // In SQL, before the limit: filtering a fetched page would shrink it and
                // break the overfetch that tells whether more exist.
                if let Some(envs) = envs {
                    query = query.filter(schedules::environment_id.eq_any(envs));
                }
                if let Some(cursor) = page.cursor {
                    query = query.filter(schedules::id.lt(cursor.last_id()));
                }
                let items: Vec<Schedule> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |s| s.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
}

/// `update_schedule`: the mutable fields only; its tenant, fleet, environment, creation
/// and last run stay as stored.
pub(super) async fn update(
    store: &PgStore,
    schedule: &Schedule,
    audit: &AuditEvent,
) -> Result<(), RepoError> {
    let row = ScheduleRow::from(schedule);
    store
        .transaction(|c| {
            async move {
                let changed = diesel::update(
                    schedules::table
                        .filter(schedules::tenant_id.eq(row.tenant_id))
                        .filter(schedules::id.eq(row.id)),
                )
                .set((
                    schedules::scenario.eq(&row.scenario),
                    schedules::max_duration_minutes.eq(row.max_duration_minutes),
                    schedules::max_assets.eq(row.max_assets),
                    schedules::interval_minutes.eq(row.interval_minutes),
                    schedules::enabled.eq(row.enabled),
                    // Not next_run_at: only the runner moves it, so an update racing a
                    // run cannot bring back a due time that already ran.
                ))
                .cached()
                .execute(c)
                .await?;
                expect_one(changed)?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
}

/// `delete_schedule`. The scans it enqueued do not reference it and stay.
pub(super) async fn delete(
    store: &PgStore,
    tenant: TenantId,
    id: ScheduleId,
    audit: &AuditEvent,
) -> Result<(), RepoError> {
    store
        .transaction(|c| {
            async move {
                let deleted = diesel::delete(
                    schedules::table
                        .filter(schedules::tenant_id.eq(tenant.as_uuid()))
                        .filter(schedules::id.eq(id.as_uuid())),
                )
                .execute(c)
                .await?;
                expect_one(deleted)?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
}

/// What one scheduler transaction did.
enum Step {
    /// Nothing (left) is due.
    Idle,
    /// Enqueued the scan of a schedule.
    Enqueued,
    /// Left this schedule alone: its fleet is held by another transaction (a deletion),
    /// or it was not due after all.
    Skipped(Uuid),
}

/// `run_due_schedules`: one transaction per due schedule, until none is due (that this
/// call has not skipped) or [`RUN_LIMIT`] scans are enqueued.
///
/// Every call ends: each step either enqueues a scan (at most [`RUN_LIMIT`] of them),
/// or skips a schedule for the rest of the call (finitely many), or finds none due.
pub(super) async fn run_due(
    store: &PgStore,
    now: Timestamp,
    enqueue: ScheduleRun<'_>,
) -> Result<usize, RepoError> {
    let mut enqueued = 0;
    let mut skipped: Vec<Uuid> = Vec::new();
    while enqueued < RUN_LIMIT {
        let skip = skipped.clone();
        let step = store
            .transaction(|c| async move { run_one(c, now, enqueue, skip).await }.scope_boxed())
            .await?;
        match step {
            Step::Idle => break,
            Step::Enqueued => enqueued += 1,
            Step::Skipped(id) => skipped.push(id),
        }
    }
    Ok(enqueued)
}

/// Enqueues the scan of the first due schedule not in `skip`, if there is one.
async fn run_one(
    c: &mut AsyncPgConnection,
    now: Timestamp,
    enqueue: ScheduleRun<'_>,
    skip: Vec<Uuid>,
) -> Result<Step, DbError> {
    // Exactly `Schedule::due(now)`, in SQL, so the row it locks is one that runs; the
    // domain still decides below. `enabled` is the bare column (never a bound `= true`)
    // so that every plan can use the partial index `WHERE enabled`. Stored times have
    // microseconds and `now` is truncated to them when bound, which keeps the comparison
    // the domain's. (`<> ALL` of an empty array holds for every row.)
    let found = schedules::table
        .filter(schedules::enabled)
        .filter(schedules::next_run_at.le(now))
        .filter(schedules::id.ne_all(skip))
        .order((schedules::next_run_at.asc(), schedules::id.asc()))
        .limit(1)
        .select(ScheduleRow::as_select())
        .for_update()
        .skip_locked()
        .first(c)
        .await
        .optional()?;
    let Some(row) = found else {
        return Ok(Step::Idle);
    };
    let schedule = Schedule::try_from(row)?;
    if !schedule.due(now) {
        // Only possible if the prefilter and the domain drift apart.
        debug_assert!(false, "the scheduler query and Schedule::due disagree");
        return Ok(Step::Skipped(schedule.id.as_uuid()));
    }
    // The fleet before anything that would wait for it; see the module docs.
    let fleet = fleets::table
        .filter(fleets::tenant_id.eq(schedule.tenant_id.as_uuid()))
        .filter(fleets::id.eq(schedule.fleet_id.as_uuid()))
        .select(fleets::id)
        .for_key_share()
        .skip_locked()
        .first::<Uuid>(c)
        .await
        .optional()?;
    if fleet.is_none() {
        return Ok(Step::Skipped(schedule.id.as_uuid()));
    }
    let (scan, event) = enqueue(&schedule);
    if scan.tenant_id != schedule.tenant_id || scan.fleet_id != schedule.fleet_id {
        return Err(InconsistentWrite::repo(
            "scans",
            scan.id,
            "a scheduled scan belongs to another fleet than its schedule",
        )
        .into());
    }
    scans::insert(c, &scan, &fleetpass_domain::scan::ScanTarget::Any, &event).await?;
    diesel::update(schedules::table.find(schedule.id.as_uuid()))
        .set((
            schedules::last_run_at.eq(now),
            schedules::next_run_at.eq(schedule.next_after(now)),
        ))
        .cached()
        .execute(c)
        .await?;
    Ok(Step::Enqueued)
}

#[async_trait]
impl ScheduleStore for PgStore {
    // ---- schedules ----

    async fn create_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        create(self, schedule, audit).await
    }

    async fn get_schedule(&self, tenant: TenantId, id: ScheduleId) -> Result<Schedule, RepoError> {
        get(self, tenant, id).await
    }

    async fn list_schedules(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<Schedule>, RepoError> {
        list(self, tenant, environments, page).await
    }

    async fn update_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        update(self, schedule, audit).await
    }

    async fn delete_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        delete(self, tenant, id, audit).await
    }

    async fn run_due_schedules(
        &self,
        now: Timestamp,
        enqueue: ScheduleRun<'_>,
    ) -> Result<usize, RepoError> {
        run_due(self, now, enqueue).await
    }
}

//! The contract cases of the "schedules" part of the [`Store`] port.
//!
//! The cases that never run schedules only make schedules whose first run is a year
//! away, so a run of another case sharing the store never touches them. The cases that
//! call `run_due_schedules` (the `run_due_*` cases and
//! `fleet_delete_removes_its_schedules`) count what a run enqueues across the whole
//! store, so they need a store of their own, as the suite's macro gives every case.

use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::actions;
use fleetpass_domain::fleet::Fleet;
use fleetpass_domain::ids::{EnvironmentId, ScheduleId, TenantId};
use fleetpass_domain::scan::{MaxAssets, MaxDurationMinutes, Scan, ScanStatus, Scenario};
use fleetpass_domain::schedule::Schedule;
use fleetpass_ports::Store;
use fleetpass_ports::store::ScanFilter;
use futures_util::future::join_all;
use time::Duration;

use super::scans_of;
use crate::fixtures::Fixtures;
use crate::support::{Enqueuer, Must, Setup, all, expect_pages_of_five, pages};

/// How many due schedules the concurrency case makes.
const DUE_FOR_RUNS: usize = 5;
/// How many runs it starts at once.
const CONCURRENT_RUNS: usize = 10;

/// When the schedules of the cases that never run any first run: far beyond every
/// instant a running case runs at.
fn a_year_on(fx: &Fixtures) -> Timestamp {
    fx.now() + Duration::days(365)
}

/// Every schedule of `tenant` (only those in `environments`, when given), newest first.
async fn schedules_of(
    store: &dyn Store,
    tenant: TenantId,
    environments: Option<&[EnvironmentId]>,
) -> Vec<Schedule> {
    all(
        "list_schedules",
        |p| store.list_schedules(tenant, environments, p),
        |s| s.id.as_uuid(),
    )
    .await
}

/// `schedule` as a run at `now` leaves it: run then, next due at `next_after(now)`.
fn ran(schedule: &Schedule, now: Timestamp) -> Schedule {
    Schedule {
        last_run_at: Some(now),
        next_run_at: schedule.next_after(now),
        ..schedule.clone()
    }
}

/// A run-time limit.
fn duration(minutes: i64) -> Option<MaxDurationMinutes> {
    Some(MaxDurationMinutes::new(minutes).expect("fixture durations are in bounds"))
}

/// An asset limit.
fn assets(max: i64) -> Option<MaxAssets> {
    Some(MaxAssets::new(max).expect("fixture asset limits are in bounds"))
}

/// A schedule of `fleet` with every optional field set: compliance scans limited to 90
/// minutes and 500 assets, daily, disabled.
fn full_schedule(fx: &Fixtures, fleet: &Fleet, next_run_at: Timestamp) -> Schedule {
    Schedule {
        scenario: Scenario::Compliance,
        max_duration_minutes: duration(90),
        max_assets: assets(500),
        enabled: false,
        ..fx.schedule(fleet, 1440, next_run_at)
    }
}

/// Checks the stored schedule `id` of `tenant` is `want`.
async fn expect_schedule(store: &dyn Store, tenant: TenantId, want: &Schedule, what: &str) {
    assert_eq!(
        &store
            .get_schedule(tenant, want.id)
            .await
            .must("get_schedule"),
        want,
        "{what}"
    );
}

/// Checks the run of `enqueuer` stored the scan it built for `schedule` (as stored
/// before the run) exactly, queued, in the schedule's tenant, and that the schedule
/// moved on to `last_run_at = at`, `next_run_at = next`. Returns the scan.
async fn expect_ran(
    store: &dyn Store,
    enqueuer: &Enqueuer<'_>,
    schedule: &Schedule,
    next: Timestamp,
) -> Scan {
    let (scan, _) = enqueuer.built_for(schedule);
    let t = schedule.tenant_id;
    let stored = store
        .get_scan(t, scan.id)
        .await
        .must("get_scan of an enqueued scan");
    assert_eq!(stored, scan, "the enqueued scan is stored exactly as built");
    assert_eq!(
        stored.status,
        ScanStatus::Queued,
        "an enqueued scan is queued"
    );
    assert_eq!(
        (stored.fleet_id, stored.requested_at),
        (schedule.fleet_id, enqueuer.at),
        "the enqueued scan is the schedule fleet's, requested at the run"
    );
    let moved = store
        .get_schedule(t, schedule.id)
        .await
        .must("get_schedule");
    assert_eq!(
        moved,
        ran(schedule, enqueuer.at),
        "a run at {} moves the schedule to last_run_at = now, next_run_at = next_after(now)",
        enqueuer.at
    );
    assert_eq!(moved.next_run_at, next, "the next due time after the run");
    scan
}

/// Schedules read back exactly as written (every optional field kept, disabled ones
/// too), are listed newest first, and record one `schedule.created` event each; an
/// unknown schedule id is `NotFound` for get, update and delete, which write nothing.
pub async fn schedule_create_then_read(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, _, _) = setup.fleet().await;
    let full = setup
        .add_schedule(full_schedule(&fx, &fleet, a_year_on(&fx)))
        .await;
    let plain = setup
        .add_schedule(fx.schedule(&fleet, 15, a_year_on(&fx) + Duration::minutes(7)))
        .await;

    for schedule in [&full, &plain] {
        expect_schedule(store, t, schedule, "get_schedule reads it back as written").await;
    }
    assert_eq!(
        schedules_of(store, t, None).await,
        vec![plain.clone(), full],
        "list_schedules lists both, newest first"
    );

    let unknown = Schedule {
        id: ScheduleId::from_uuid(fx.id()),
        ..plain
    };
    store
        .get_schedule(t, unknown.id)
        .await
        .must_be_not_found("get_schedule of an unknown id");
    let audit = setup.audit(actions::SCHEDULE_UPDATED, unknown.id.as_uuid());
    store
        .update_schedule(&unknown, &audit)
        .await
        .must_be_not_found("update_schedule of an unknown id");
    let audit = setup.audit(actions::SCHEDULE_DELETED, unknown.id.as_uuid());
    store
        .delete_schedule(t, unknown.id, &audit)
        .await
        .must_be_not_found("delete_schedule of an unknown id");
    setup.check_log("after create_schedule").await;
}

/// `list_schedules` applies the environment filter before paginating: each listing,
/// fetched two at a time, has full pages and holds exactly the tenant's schedules in
/// those environments, newest first (no filter: all of them; an empty filter, or only
/// environments without schedules or of another tenant: none). Each tenant lists only
/// its own.
pub async fn schedule_list_filters_by_environment_before_paging(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let (x, y) = (a.environment().await.id, a.environment().await.id);
    let (fx_fleet, _, _) = a.fleet_in(x).await;
    let (fy_fleet, _, _) = a.fleet_in(y).await;
    // Interleaved, so a store that pages before filtering returns short pages: five in
    // y, eight in x.
    let mut rows = Vec::new();
    for i in 0..13 {
        let fleet = if i % 3 == 0 { &fy_fleet } else { &fx_fleet };
        rows.push(a.add_schedule(fx.schedule(fleet, 60, a_year_on(&fx))).await);
    }
    let (foreign, _, _) = b.fleet().await;
    let foreign_schedule = b
        .add_schedule(fx.schedule(&foreign, 60, a_year_on(&fx)))
        .await;

    let production = a.new.environment.id;
    let filters: Vec<Option<Vec<EnvironmentId>>> = vec![
        None,
        Some(vec![x]),
        Some(vec![y]),
        Some(vec![y, x]),
        Some(vec![]),
        Some(vec![production]),
        Some(vec![foreign.environment_id]),
    ];
    let schedule_id = |s: &Schedule| s.id.as_uuid();
    for filter in &filters {
        let what = format!("list_schedules(environments: {filter:?})");
        let envs = filter.as_deref();
        let got: Vec<Schedule> = pages(
            &what,
            2,
            |p| store.list_schedules(a.id(), envs, p),
            schedule_id,
        )
        .await
        .into_iter()
        .flatten()
        .collect();
        let mut want: Vec<Schedule> = rows
            .iter()
            .filter(|s| envs.is_none_or(|envs| envs.contains(&s.environment_id)))
            .cloned()
            .collect();
        want.reverse();
        assert_eq!(
            got, want,
            "{what}: exactly the tenant's schedules in those environments, newest first"
        );
    }
    let only_y = [y];
    let in_y = pages(
        "list_schedules in y",
        2,
        |p| store.list_schedules(a.id(), Some(&only_y), p),
        schedule_id,
    )
    .await;
    expect_pages_of_five(
        "list_schedules in y",
        &in_y,
        schedule_id,
        rows.iter()
            .filter(|s| s.environment_id == y)
            .map(schedule_id)
            .collect(),
    );
    assert_eq!(
        schedules_of(store, b.id(), None).await,
        vec![foreign_schedule],
        "each tenant lists only its own schedules"
    );
    a.check_log("of tenant A").await;
    b.check_log("of tenant B").await;
}

/// `update_schedule` writes exactly the mutable fields (scenario, both limits, interval,
/// enabled; never the run times), clearing limits set to none, and records its
/// `schedule.updated` event; the fleet, environment, creation time and last run stay as
/// stored whatever the value says.
pub async fn schedule_update_writes_fields(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, _, _) = setup.fleet().await;
    let other_env = setup.environment().await;
    let (other_fleet, _, _) = setup.fleet_in(other_env.id).await;
    let stored = setup
        .add_schedule(fx.schedule(&fleet, 60, a_year_on(&fx)))
        .await;
    let untouched = setup
        .add_schedule(fx.schedule(&fleet, 60, a_year_on(&fx)))
        .await;

    let value = Schedule {
        scenario: Scenario::Ports,
        max_duration_minutes: duration(30),
        max_assets: assets(100),
        interval: Fixtures::interval(10_080),
        enabled: false,
        // Not the mutable fields: none of these may be written (the runner alone moves
        // next_run_at, so an update racing a run cannot undo it).
        next_run_at: a_year_on(&fx) + Duration::days(3),
        fleet_id: other_fleet.id,
        environment_id: other_env.id,
        last_run_at: Some(fx.now() - Duration::hours(2)),
        created_at: fx.now() - Duration::days(1),
        ..stored.clone()
    };
    let audit = setup.audit(actions::SCHEDULE_UPDATED, stored.id.as_uuid());
    store
        .update_schedule(&value, &audit)
        .await
        .must("update_schedule");
    setup.logged(&audit);
    let updated = Schedule {
        scenario: value.scenario,
        max_duration_minutes: value.max_duration_minutes,
        max_assets: value.max_assets,
        interval: value.interval,
        enabled: value.enabled,
        ..stored.clone()
    };
    expect_schedule(
        store,
        t,
        &updated,
        "update_schedule writes the mutable fields and only them",
    )
    .await;

    let value = Schedule {
        max_duration_minutes: None,
        max_assets: None,
        enabled: true,
        ..updated.clone()
    };
    let audit = setup.audit(actions::SCHEDULE_UPDATED, stored.id.as_uuid());
    store
        .update_schedule(&value, &audit)
        .await
        .must("update_schedule clearing the limits");
    setup.logged(&audit);
    expect_schedule(
        store,
        t,
        &value,
        "update_schedule clears limits set to none",
    )
    .await;
    expect_schedule(store, t, &untouched, "another schedule is untouched").await;
    assert_eq!(
        schedules_of(store, t, Some(&[other_env.id])).await,
        vec![],
        "the schedule did not move to the other fleet's environment"
    );
    assert_eq!(
        schedules_of(store, t, None).await,
        vec![untouched, value],
        "list_schedules shows the update"
    );
    setup.check_log("after the updates").await;
}

/// `delete_schedule` removes the schedule and records its `schedule.deleted` event:
/// reads, updates and a second delete are `NotFound` and write nothing, listings skip
/// it, and another schedule stays.
pub async fn schedule_delete_removes_it(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, _, _) = setup.fleet().await;
    let doomed = setup
        .add_schedule(fx.schedule(&fleet, 60, a_year_on(&fx)))
        .await;
    let kept = setup
        .add_schedule(fx.schedule(&fleet, 60, a_year_on(&fx)))
        .await;

    let audit = setup.audit(actions::SCHEDULE_DELETED, doomed.id.as_uuid());
    store
        .delete_schedule(t, doomed.id, &audit)
        .await
        .must("delete_schedule");
    setup.logged(&audit);

    store
        .get_schedule(t, doomed.id)
        .await
        .must_be_not_found("get_schedule of a deleted schedule");
    let audit = setup.audit(actions::SCHEDULE_UPDATED, doomed.id.as_uuid());
    store
        .update_schedule(&doomed, &audit)
        .await
        .must_be_not_found("update_schedule of a deleted schedule");
    let audit = setup.audit(actions::SCHEDULE_DELETED, doomed.id.as_uuid());
    store
        .delete_schedule(t, doomed.id, &audit)
        .await
        .must_be_not_found("delete_schedule of a deleted schedule");
    expect_schedule(store, t, &kept, "the other schedule stays").await;
    assert_eq!(
        schedules_of(store, t, None).await,
        vec![kept],
        "list_schedules after delete"
    );
    setup.check_log("after delete_schedule").await;
}

/// Every schedule read and write through another tenant is `NotFound` and changes
/// nothing: `get_schedule`, `update_schedule` (the value claiming the other tenant),
/// `delete_schedule`; another tenant's listing never shows the schedule, whatever it
/// filters on. A schedule of another tenant's fleet, or of an unknown fleet, is
/// `NotFound` and nothing of it is stored.
pub async fn schedule_cross_tenant_is_not_found(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let (fleet, _, _) = a.fleet().await;
    let schedule = a
        .add_schedule(fx.schedule(&fleet, 60, a_year_on(&fx)))
        .await;
    let (foreign, _, _) = b.fleet().await;
    let other = b.id();

    store
        .get_schedule(other, schedule.id)
        .await
        .must_be_not_found("get_schedule via another tenant");
    let hijack = Schedule {
        tenant_id: other,
        enabled: false,
        scenario: Scenario::Software,
        ..schedule.clone()
    };
    let audit = b.audit(actions::SCHEDULE_UPDATED, schedule.id.as_uuid());
    store
        .update_schedule(&hijack, &audit)
        .await
        .must_be_not_found("update_schedule via another tenant");
    let audit = b.audit(actions::SCHEDULE_DELETED, schedule.id.as_uuid());
    store
        .delete_schedule(other, schedule.id, &audit)
        .await
        .must_be_not_found("delete_schedule via another tenant");
    for filter in [None, Some(vec![fleet.environment_id])] {
        assert_eq!(
            schedules_of(store, other, filter.as_deref()).await,
            vec![],
            "list_schedules(environments: {filter:?}) of another tenant"
        );
    }
    expect_schedule(store, a.id(), &schedule, "the schedule is untouched").await;

    for (what, fleet) in [
        (
            "another tenant's fleet",
            Fleet {
                tenant_id: a.id(),
                ..foreign.clone()
            },
        ),
        ("an unknown fleet", fx.fleet(a.id(), a.new.environment.id)),
    ] {
        let refused = fx.schedule(&fleet, 60, a_year_on(&fx));
        let audit = a.audit(actions::SCHEDULE_CREATED, refused.id.as_uuid());
        store
            .create_schedule(&refused, &audit)
            .await
            .must_be_not_found(&format!("create_schedule in {what}"));
        for tenant in [a.id(), b.id()] {
            store
                .get_schedule(tenant, refused.id)
                .await
                .must_be_not_found("the refused schedule");
        }
    }
    assert_eq!(
        schedules_of(store, a.id(), None).await,
        vec![schedule],
        "the tenant lists only its one schedule"
    );
    assert_eq!(
        schedules_of(store, other, None).await,
        vec![],
        "the other tenant lists no refused schedule"
    );
    a.check_log("of tenant A").await;
    b.check_log("of tenant B").await;
}

/// A schedule is not due one second before `next_run_at` and is at exactly it: the run
/// then enqueues one scan per due schedule, of every tenant, stored exactly as the
/// builder made it (queued, readable and listed in the schedule's tenant) with its
/// `scan.requested` event, and moves each schedule to `last_run_at = now`,
/// `next_run_at = now + interval`. A disabled schedule never runs, however overdue. A
/// second run at the same instant enqueues nothing, and a deleted schedule's scan stays.
pub async fn run_due_schedules_enqueues_at_next_run_at(store: &dyn Store) {
    let fx = Fixtures::new();
    let at = fx.now() + Duration::hours(1);
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let (fleet, _, _) = a.fleet().await;
    let (b_fleet, _, _) = b.fleet().await;
    let limited = a
        .add_schedule(Schedule {
            enabled: true,
            ..full_schedule(&fx, &fleet, at)
        })
        .await;
    let disabled = a
        .add_schedule(Schedule {
            enabled: false,
            ..fx.schedule(&fleet, 15, fx.now() - Duration::days(1))
        })
        .await;
    let b_due = b.add_schedule(fx.schedule(&b_fleet, 60, at)).await;

    let early = Enqueuer::new(&fx, at - Duration::seconds(1));
    assert_eq!(
        early.run(store).await,
        0,
        "nothing is due one second before next_run_at"
    );
    assert_eq!(early.seen(), vec![], "no scan is built before a due time");
    for (t, schedule) in [(a.id(), &limited), (a.id(), &disabled), (b.id(), &b_due)] {
        expect_schedule(store, t, schedule, "a run with nothing due changes nothing").await;
    }

    let run = Enqueuer::new(&fx, at);
    assert_eq!(
        run.run(store).await,
        2,
        "at exactly next_run_at both tenants' enabled schedules are due"
    );
    let scan = expect_ran(store, &run, &limited, at + Duration::days(1)).await;
    assert_eq!(
        scan.constraints,
        limited.constraints(),
        "the scan carries the schedule's limits"
    );
    a.enqueued(&run, &limited);
    let b_scan = expect_ran(store, &run, &b_due, at + Duration::hours(1)).await;
    b.enqueued(&run, &b_due);
    assert!(
        !run.seen().contains(&disabled),
        "a disabled schedule never runs"
    );
    expect_schedule(store, a.id(), &disabled, "a disabled schedule is untouched").await;
    assert_eq!(
        scans_of(store, a.id(), &ScanFilter::default()).await,
        vec![scan.clone()],
        "tenant A lists its one enqueued scan"
    );
    assert_eq!(
        scans_of(store, b.id(), &ScanFilter::default()).await,
        vec![b_scan],
        "tenant B lists its one enqueued scan"
    );

    let again = Enqueuer::new(&fx, at);
    assert_eq!(
        again.run(store).await,
        0,
        "a second run at the same instant enqueues nothing"
    );
    assert_eq!(again.seen(), vec![], "the second run builds no scan");

    let audit = a.audit(actions::SCHEDULE_DELETED, limited.id.as_uuid());
    store
        .delete_schedule(a.id(), limited.id, &audit)
        .await
        .must("delete_schedule after a run");
    a.logged(&audit);
    assert_eq!(
        store.get_scan(a.id(), scan.id).await.must("get_scan"),
        scan,
        "the scan a deleted schedule enqueued stays"
    );
    a.check_log("of tenant A").await;
    b.check_log("of tenant B").await;
}

/// A schedule overdue by five and a half intervals enqueues one scan, not a burst, and
/// moves to the next time in its phase (`next_after`), not to `now + interval`; it is
/// due again at exactly that time, not a second before.
pub async fn run_due_schedules_collapses_missed_runs(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, _, _) = setup.fleet().await;
    let schedule = setup.add_schedule(fx.schedule(&fleet, 60, t0)).await;

    let late = Enqueuer::new(&fx, t0 + Duration::minutes(330));
    assert_eq!(
        late.run(store).await,
        1,
        "an overdue schedule enqueues one scan however many runs it missed"
    );
    let first = expect_ran(store, &late, &schedule, t0 + Duration::hours(6)).await;
    setup.enqueued(&late, &schedule);
    let moved = ran(&schedule, late.at);

    let again = Enqueuer::new(&fx, late.at);
    assert_eq!(again.run(store).await, 0, "no burst of the missed runs");
    let early = Enqueuer::new(&fx, t0 + Duration::hours(6) - Duration::seconds(1));
    assert_eq!(
        early.run(store).await,
        0,
        "not due before the next phase-aligned time"
    );
    expect_schedule(store, t, &moved, "runs with nothing due change nothing").await;

    let next = Enqueuer::new(&fx, t0 + Duration::hours(6));
    assert_eq!(
        next.run(store).await,
        1,
        "due again at exactly the next phase-aligned time"
    );
    let second = expect_ran(store, &next, &moved, t0 + Duration::hours(7)).await;
    setup.enqueued(&next, &moved);
    assert_eq!(
        scans_of(store, t, &ScanFilter::default()).await,
        vec![second, first],
        "one scan per due time"
    );
    setup.check_log("after the runs").await;
}

/// Ten runs at once over five due schedules (beside one not yet due and one disabled)
/// enqueue each due time once: their counts add up to five, the tenant has exactly five
/// scans, one per schedule, each with its one event, and every due schedule moved on
/// once.
pub async fn run_due_schedules_concurrent_enqueues_each_once(store: &dyn Store) {
    let fx = Fixtures::new();
    let at = fx.now() + Duration::minutes(30);
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (f1, _, _) = setup.fleet().await;
    let (f2, _, _) = setup.fleet().await;
    let mut due = Vec::new();
    for i in 0..DUE_FOR_RUNS {
        let fleet = if i % 2 == 0 { &f1 } else { &f2 };
        let next_run_at = fx.now() + Duration::minutes(i64::try_from(i).unwrap_or(0) * 5);
        due.push(
            setup
                .add_schedule(fx.schedule(fleet, 60, next_run_at))
                .await,
        );
    }
    let not_yet = setup
        .add_schedule(fx.schedule(&f1, 60, at + Duration::seconds(1)))
        .await;
    let disabled = setup
        .add_schedule(Schedule {
            enabled: false,
            ..fx.schedule(&f2, 60, fx.now())
        })
        .await;

    let run = Enqueuer::new(&fx, at);
    let counts = join_all((0..CONCURRENT_RUNS).map(|_| run.run(store))).await;
    assert_eq!(
        counts.iter().sum::<usize>(),
        DUE_FOR_RUNS,
        "{CONCURRENT_RUNS} concurrent runs over {DUE_FOR_RUNS} due schedules enqueue each \
         once (counts: {counts:?})"
    );
    let mut scans = Vec::new();
    for schedule in &due {
        scans.push(expect_ran(store, &run, schedule, schedule.next_after(at)).await);
    }
    for schedule in [&not_yet, &disabled] {
        expect_schedule(
            store,
            t,
            schedule,
            "a schedule that is not due is untouched",
        )
        .await;
    }
    scans.sort_by_key(|s| std::cmp::Reverse(s.id));
    assert_eq!(
        scans_of(store, t, &ScanFilter::default()).await,
        scans,
        "exactly one scan per due schedule"
    );
    setup.logged_all(due.iter().map(|s| run.built_for(s).1));
    setup.check_log("after concurrent runs").await;
}

/// `delete_fleet` also removes the fleet's schedules: reads, updates and deletes of them
/// are `NotFound`, listings skip them and a run no longer enqueues their scans; another
/// fleet's schedule stays and runs.
pub async fn fleet_delete_removes_its_schedules(store: &dyn Store) {
    let fx = Fixtures::new();
    let at = fx.now() + Duration::hours(1);
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (doomed, _, _) = setup.fleet().await;
    let (kept_fleet, _, _) = setup.fleet().await;
    let gone = [
        setup.add_schedule(fx.schedule(&doomed, 60, at)).await,
        setup.add_schedule(fx.schedule(&doomed, 15, fx.now())).await,
    ];
    let kept = setup.add_schedule(fx.schedule(&kept_fleet, 60, at)).await;

    let audit = setup.audit(actions::FLEET_DELETED, doomed.id.as_uuid());
    store
        .delete_fleet(t, doomed.id, &audit)
        .await
        .must("delete_fleet");
    setup.logged(&audit);

    for schedule in &gone {
        store
            .get_schedule(t, schedule.id)
            .await
            .must_be_not_found("get_schedule of a deleted fleet's schedule");
        let audit = setup.audit(actions::SCHEDULE_UPDATED, schedule.id.as_uuid());
        store
            .update_schedule(schedule, &audit)
            .await
            .must_be_not_found("update_schedule of a deleted fleet's schedule");
        let audit = setup.audit(actions::SCHEDULE_DELETED, schedule.id.as_uuid());
        store
            .delete_schedule(t, schedule.id, &audit)
            .await
            .must_be_not_found("delete_schedule of a deleted fleet's schedule");
    }
    assert_eq!(
        schedules_of(store, t, None).await,
        vec![kept.clone()],
        "list_schedules after delete_fleet"
    );

    let run = Enqueuer::new(&fx, at);
    assert_eq!(
        run.run(store).await,
        1,
        "only the other fleet's schedule runs"
    );
    assert_eq!(
        run.seen(),
        vec![kept.clone()],
        "no scan is built for a deleted fleet's schedule"
    );
    let scan = expect_ran(store, &run, &kept, at + Duration::hours(1)).await;
    setup.enqueued(&run, &kept);
    assert_eq!(
        scans_of(store, t, &ScanFilter::default()).await,
        vec![scan],
        "list_scans after the run"
    );
    setup.check_log("after delete_fleet and a run").await;
}

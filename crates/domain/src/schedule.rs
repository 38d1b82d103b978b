//! Schedules: a scan request repeated every `intervalMinutes`. A due schedule enqueues
//! one scan per due time, however many replicas look at it.

use crate::Timestamp;
use crate::ids::{EnvironmentId, FleetId, ScheduleId, TenantId};
use crate::scan::{MaxAssets, MaxDurationMinutes, ScanConstraints, Scenario};
use crate::value::int_newtype;

int_newtype!(
    /// How often a schedule runs, 15-10080 minutes (a quarter hour to a week).
    IntervalMinutes, 15, 10_080
);

impl IntervalMinutes {
    /// As a duration.
    pub fn duration(self) -> time::Duration {
        time::Duration::minutes(i64::from(self.get()))
    }
}

/// A schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Its id.
    pub id: ScheduleId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The fleet whose scans it requests.
    pub fleet_id: FleetId,
    /// The fleet's environment, inherited.
    pub environment_id: EnvironmentId,
    /// What each scan looks for.
    pub scenario: Scenario,
    /// The run-time limit of each scan.
    pub max_duration_minutes: Option<MaxDurationMinutes>,
    /// The asset limit of each scan.
    pub max_assets: Option<MaxAssets>,
    /// How often it runs.
    pub interval: IntervalMinutes,
    /// Whether it runs at all.
    pub enabled: bool,
    /// When it next enqueues a scan.
    pub next_run_at: Timestamp,
    /// When it last enqueued one.
    pub last_run_at: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
}

impl Schedule {
    /// Whether a schedule created without saying runs: yes, since a schedule exists to
    /// run, and one can be created paused by asking.
    pub const ENABLED_BY_DEFAULT: bool = true;

    /// Whether it should enqueue a scan at `now`.
    pub fn due(&self, now: Timestamp) -> bool {
        self.enabled && self.next_run_at <= now
    }

    /// The next due time after a run at `now`: the first `next_run_at + k·interval`
    /// after `now`, so a service that was down for hours enqueues one scan, not a burst,
    /// and the cadence keeps its phase.
    pub fn next_after(&self, now: Timestamp) -> Timestamp {
        let step = self.interval.duration();
        if now < self.next_run_at {
            return self.next_run_at;
        }
        let missed = ((now - self.next_run_at).whole_seconds() / step.whole_seconds()) + 1;
        self.next_run_at + step * i32::try_from(missed).unwrap_or(i32::MAX)
    }

    /// The constraints of each scan it enqueues.
    pub fn constraints(&self) -> ScanConstraints {
        ScanConstraints {
            max_duration_minutes: self.max_duration_minutes,
            not_before: None,
            not_after: None,
            max_assets: self.max_assets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use uuid::Uuid;

    const NOW: Timestamp = datetime!(2026-11-22 10:00 UTC);

    fn schedule(enabled: bool) -> Schedule {
        Schedule {
            id: ScheduleId::from_uuid(Uuid::from_u128(1)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            fleet_id: FleetId::from_uuid(Uuid::from_u128(3)),
            environment_id: EnvironmentId::from_uuid(Uuid::from_u128(4)),
            scenario: Scenario::Inventory,
            max_duration_minutes: None,
            max_assets: None,
            interval: IntervalMinutes::new(60).unwrap(),
            enabled,
            next_run_at: NOW,
            last_run_at: None,
            created_at: NOW,
        }
    }

    #[test]
    fn due_from_its_time_when_enabled() {
        assert!(!schedule(true).due(NOW - time::Duration::seconds(1)));
        assert!(schedule(true).due(NOW));
        assert!(!schedule(false).due(NOW));
    }

    #[test]
    fn missed_runs_collapse_into_one_and_keep_the_phase() {
        let s = schedule(true);
        assert_eq!(s.next_after(NOW), NOW + time::Duration::hours(1));
        assert_eq!(
            s.next_after(NOW + time::Duration::minutes(59)),
            NOW + time::Duration::hours(1)
        );
        assert_eq!(
            s.next_after(NOW + time::Duration::minutes(330)),
            NOW + time::Duration::hours(6)
        );
        assert_eq!(s.next_after(NOW - time::Duration::minutes(5)), NOW);
    }

    #[test]
    fn interval_bounds() {
        assert!(IntervalMinutes::new(14).is_err() && IntervalMinutes::new(10_081).is_err());
        assert!(IntervalMinutes::new(15).is_ok() && IntervalMinutes::new(10_080).is_ok());
    }
}

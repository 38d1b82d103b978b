//! What a scan request may constrain (run time, claim window, asset count) and the rule
//! that a request's constraints leave its scenario enough time to run.

use super::Scenario;
use crate::Timestamp;
use crate::value::int_newtype;

int_newtype!(
    /// How long a claimed scan may run before it fails, 1-1440 minutes.
    MaxDurationMinutes, 1, 1440
);
int_newtype!(
    /// How many assets a scan may report, 1-100 000.
    MaxAssets, 1, 100_000
);

impl MaxDurationMinutes {
    /// The limit of a scan that sets none: an hour, above every scenario's minimum.
    pub const fn default_limit() -> Self {
        Self(60)
    }
}

/// The most assets any scan may report.
pub(crate) const MAX_ASSETS: usize = 100_000;

/// The constraints of a scan request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanConstraints {
    /// How long a claimed scan may run.
    pub max_duration_minutes: Option<MaxDurationMinutes>,
    /// Not to be claimed before this.
    pub not_before: Option<Timestamp>,
    /// Not to be claimed after this (a queued scan then expires).
    pub not_after: Option<Timestamp>,
    /// At most this many assets.
    pub max_assets: Option<MaxAssets>,
}

/// A constraint of a scan request, as the rules name it (adapters map it to their own
/// field names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    /// The run-time limit.
    MaxDuration,
    /// The earliest claim time.
    NotBefore,
    /// The latest claim time.
    NotAfter,
    /// The asset limit.
    MaxAssets,
}

/// One infeasible constraint and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Infeasible {
    /// The constraint.
    pub field: Constraint,
    /// Why, read after the field name.
    pub message: String,
}

impl ScanConstraints {
    /// The effective run-time limit.
    pub fn max_duration(&self) -> MaxDurationMinutes {
        self.max_duration_minutes
            .unwrap_or(MaxDurationMinutes::default_limit())
    }

    /// Checks that a `scenario` scan requested at `now` with these constraints can run.
    ///
    /// # Errors
    /// Every infeasible constraint, naming its field.
    ///
    /// # Examples
    /// ```
    /// use fleetpass_domain::scan::{Constraint, MaxDurationMinutes, ScanConstraints, Scenario};
    /// use time::macros::datetime;
    ///
    /// let now = datetime!(2026-11-22 10:00 UTC);
    /// let tight = ScanConstraints {
    ///     max_duration_minutes: Some(MaxDurationMinutes::new(20).unwrap()),
    ///     not_after: Some(now + time::Duration::minutes(10)),
    ///     ..ScanConstraints::default()
    /// };
    /// // Compliance needs 30 minutes: both constraints are named.
    /// let fields: Vec<_> = tight.check_feasible(Scenario::Compliance, now).unwrap_err()
    ///     .into_iter().map(|p| p.field).collect();
    /// assert_eq!(fields, [Constraint::MaxDuration, Constraint::NotAfter]);
    /// assert!(tight.check_feasible(Scenario::Inventory, now).is_ok());
    /// ```
    pub fn check_feasible(
        &self,
        scenario: Scenario,
        now: Timestamp,
    ) -> Result<(), Vec<Infeasible>> {
        let min = scenario.min_minutes();
        let name = scenario.as_str();
        let mut problems = Vec::new();
        if let Some(max) = self.max_duration_minutes
            && max.get() < min
        {
            problems.push(Infeasible {
                field: Constraint::MaxDuration,
                message: format!(
                    "is below the {name} scenario's minimum duration of {min} minutes"
                ),
            });
        }
        if let Some(not_after) = self.not_after {
            let start = self.not_before.map_or(now, |nb| nb.max(now));
            if self.not_before.is_some_and(|nb| not_after <= nb) {
                problems.push(Infeasible {
                    field: Constraint::NotAfter,
                    message: "must be after notBefore".to_owned(),
                });
            } else if not_after <= now {
                problems.push(Infeasible {
                    field: Constraint::NotAfter,
                    message: "is already past".to_owned(),
                });
            } else if not_after - start < time::Duration::minutes(i64::from(min)) {
                let window = (not_after - start).whole_minutes();
                problems.push(Infeasible {
                    field: Constraint::NotAfter,
                    message: format!(
                        "leaves a window of {window} minutes, shorter than the {name} scenario's minimum of {min} minutes"
                    ),
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

//! The row types of scans, their artifacts, share links and schedules.

use diesel::prelude::*;
use fleetpass_domain::Timestamp;
use fleetpass_domain::ids::{
    AgentId, EnvironmentId, FleetId, ScanId, ScheduleId, ShareLinkId, TenantId,
};
use fleetpass_domain::scan::{
    MaxAssets, MaxDurationMinutes, Scan, ScanConstraints, ScanStatus, Scenario,
};
use fleetpass_domain::schedule::{IntervalMinutes, Schedule};
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::{Artifact, MaxAccesses, ShareLabel, ShareLink};
use fleetpass_ports::RepoError;
use fleetpass_ports::store::ScanArtifacts;
use uuid::Uuid;

use super::count_column;
use crate::error::CorruptRow;
use crate::schema::{scan_artifacts, scans, schedules, share_links};

/// A `scans` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = scans, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ScanRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub fleet_id: Uuid,
    pub environment_id: Uuid,
    pub scenario: String,
    pub max_duration_minutes: Option<i32>,
    pub not_before: Option<Timestamp>,
    pub not_after: Option<Timestamp>,
    pub max_assets: Option<i32>,
    pub status: String,
    pub requested_at: Timestamp,
    pub claimed_by: Option<Uuid>,
    pub claimed_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

impl From<&Scan> for ScanRow {
    fn from(s: &Scan) -> Self {
        Self {
            id: s.id.as_uuid(),
            tenant_id: s.tenant_id.as_uuid(),
            fleet_id: s.fleet_id.as_uuid(),
            environment_id: s.environment_id.as_uuid(),
            scenario: s.scenario.as_str().to_owned(),
            max_duration_minutes: s
                .constraints
                .max_duration_minutes
                .map(|m| count_column(m.get())),
            not_before: s.constraints.not_before,
            not_after: s.constraints.not_after,
            max_assets: s.constraints.max_assets.map(|m| count_column(m.get())),
            status: s.status.as_str().to_owned(),
            requested_at: s.requested_at,
            claimed_by: s.claimed_by.map(|a| a.as_uuid()),
            claimed_at: s.claimed_at,
            finished_at: s.finished_at,
        }
    }
}

impl TryFrom<ScanRow> for Scan {
    type Error = RepoError;

    fn try_from(row: ScanRow) -> Result<Self, RepoError> {
        let corrupt = |reason: &dyn std::fmt::Display| CorruptRow::repo("scans", row.id, reason);
        Ok(Self {
            id: ScanId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            fleet_id: FleetId::from_uuid(row.fleet_id),
            environment_id: EnvironmentId::from_uuid(row.environment_id),
            scenario: Scenario::parse(&row.scenario).map_err(|e| corrupt(&e))?,
            constraints: ScanConstraints {
                max_duration_minutes: row
                    .max_duration_minutes
                    .map(|m| MaxDurationMinutes::new(i64::from(m)))
                    .transpose()
                    .map_err(|e| corrupt(&e))?,
                not_before: row.not_before,
                not_after: row.not_after,
                max_assets: row
                    .max_assets
                    .map(|m| MaxAssets::new(i64::from(m)))
                    .transpose()
                    .map_err(|e| corrupt(&e))?,
            },
            status: ScanStatus::parse(&row.status).map_err(|e| corrupt(&e))?,
            requested_at: row.requested_at,
            claimed_by: row.claimed_by.map(AgentId::from_uuid),
            claimed_at: row.claimed_at,
            finished_at: row.finished_at,
        })
    }
}

/// A `scan_artifacts` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = scan_artifacts, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ArtifactsRow {
    pub scan_id: Uuid,
    pub bundle_json: String,
    pub bundle_sha256: String,
    pub report: serde_json::Value,
    pub passport: String,
}

impl ArtifactsRow {
    /// The row of `scan`'s `artifacts`.
    pub(crate) fn new(scan: ScanId, artifacts: &ScanArtifacts) -> Self {
        Self {
            scan_id: scan.as_uuid(),
            bundle_json: artifacts.bundle_json.clone(),
            bundle_sha256: artifacts.bundle_sha256.clone(),
            report: artifacts.report.clone(),
            passport: artifacts.passport.clone(),
        }
    }
}

impl From<ArtifactsRow> for ScanArtifacts {
    fn from(row: ArtifactsRow) -> Self {
        // Nothing to validate: the bundle is opaque bytes here (the table's CHECK keeps
        // the digest's shape), and whoever serves it hashes it if they need to.
        Self {
            bundle_json: row.bundle_json,
            bundle_sha256: row.bundle_sha256,
            report: row.report,
            passport: row.passport,
        }
    }
}

/// A `share_links` row as read: everything but the digest, which only lookups use.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = share_links, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ShareLinkRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub scan_id: Uuid,
    pub scope: String,
    pub label: Option<String>,
    pub expires_at: Timestamp,
    pub max_accesses: Option<i32>,
    pub access_count: i32,
    pub last_accessed_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub hint: String,
}

/// A `share_links` row as inserted: the link and the digest of its token.
#[derive(Debug, Clone, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = share_links, check_for_backend(diesel::pg::Pg))]
pub(crate) struct NewShareLinkRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub scan_id: Uuid,
    pub digest: Vec<u8>,
    pub scope: String,
    pub label: Option<String>,
    pub expires_at: Timestamp,
    pub max_accesses: Option<i32>,
    pub access_count: i32,
    pub last_accessed_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub hint: String,
}

impl NewShareLinkRow {
    /// The row of `link` with the digest of its token.
    pub(crate) fn new(link: &ShareLink, digest: &SecretDigest) -> Self {
        Self {
            id: link.id.as_uuid(),
            tenant_id: link.tenant_id.as_uuid(),
            scan_id: link.scan_id.as_uuid(),
            digest: digest.as_bytes().to_vec(),
            scope: link.scope.as_str().to_owned(),
            label: link.label.as_ref().map(|l| l.as_str().to_owned()),
            expires_at: link.expires_at,
            max_accesses: link.max_accesses.map(|m| count_column(m.get())),
            access_count: count_column(link.access_count),
            last_accessed_at: link.last_accessed_at,
            revoked_at: link.revoked_at,
            created_at: link.created_at,
            hint: link.hint.clone(),
        }
    }
}

impl TryFrom<ShareLinkRow> for ShareLink {
    type Error = RepoError;

    fn try_from(row: ShareLinkRow) -> Result<Self, RepoError> {
        let corrupt =
            |reason: &dyn std::fmt::Display| CorruptRow::repo("share_links", row.id, reason);
        Ok(Self {
            id: ShareLinkId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            scan_id: ScanId::from_uuid(row.scan_id),
            scope: Artifact::parse(&row.scope).map_err(|e| corrupt(&e))?,
            label: row
                .label
                .as_deref()
                .map(ShareLabel::new)
                .transpose()
                .map_err(|e| corrupt(&e))?,
            expires_at: row.expires_at,
            max_accesses: row
                .max_accesses
                .map(|m| MaxAccesses::new(i64::from(m)))
                .transpose()
                .map_err(|e| corrupt(&e))?,
            access_count: u32::try_from(row.access_count).map_err(|e| corrupt(&e))?,
            last_accessed_at: row.last_accessed_at,
            revoked_at: row.revoked_at,
            created_at: row.created_at,
            hint: row.hint,
        })
    }
}

/// A `schedules` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = schedules, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ScheduleRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub fleet_id: Uuid,
    pub environment_id: Uuid,
    pub scenario: String,
    pub max_duration_minutes: Option<i32>,
    pub max_assets: Option<i32>,
    pub interval_minutes: i32,
    pub enabled: bool,
    pub next_run_at: Timestamp,
    pub last_run_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl From<&Schedule> for ScheduleRow {
    fn from(s: &Schedule) -> Self {
        Self {
            id: s.id.as_uuid(),
            tenant_id: s.tenant_id.as_uuid(),
            fleet_id: s.fleet_id.as_uuid(),
            environment_id: s.environment_id.as_uuid(),
            scenario: s.scenario.as_str().to_owned(),
            max_duration_minutes: s.max_duration_minutes.map(|m| count_column(m.get())),
            max_assets: s.max_assets.map(|m| count_column(m.get())),
            interval_minutes: count_column(s.interval.get()),
            enabled: s.enabled,
            next_run_at: s.next_run_at,
            last_run_at: s.last_run_at,
            created_at: s.created_at,
        }
    }
}

impl TryFrom<ScheduleRow> for Schedule {
    type Error = RepoError;

    fn try_from(row: ScheduleRow) -> Result<Self, RepoError> {
        let corrupt =
            |reason: &dyn std::fmt::Display| CorruptRow::repo("schedules", row.id, reason);
        Ok(Self {
            id: ScheduleId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            fleet_id: FleetId::from_uuid(row.fleet_id),
            environment_id: EnvironmentId::from_uuid(row.environment_id),
            scenario: Scenario::parse(&row.scenario).map_err(|e| corrupt(&e))?,
            max_duration_minutes: row
                .max_duration_minutes
                .map(|m| MaxDurationMinutes::new(i64::from(m)))
                .transpose()
                .map_err(|e| corrupt(&e))?,
            max_assets: row
                .max_assets
                .map(|m| MaxAssets::new(i64::from(m)))
                .transpose()
                .map_err(|e| corrupt(&e))?,
            interval: IntervalMinutes::new(i64::from(row.interval_minutes))
                .map_err(|e| corrupt(&e))?,
            enabled: row.enabled,
            next_run_at: row.next_run_at,
            last_run_at: row.last_run_at,
            created_at: row.created_at,
        })
    }
}

//! The rows of scans and their artifacts, and their conversions (split from `rows.rs`
//! to keep each file readable whole).

use diesel::prelude::*;
use fleetpass_domain::Timestamp;
use fleetpass_domain::ids::{AgentId, EnvironmentId, FleetId, ScanId, TenantId};
use fleetpass_domain::scan::{
    Jws, MaxAssets, MaxDurationMinutes, Scan, ScanConstraints, ScanStatus, Scenario, Sha256Hex,
    Target,
};
use fleetpass_ports::RepoError;
use fleetpass_ports::store::ScanArtifacts;
use uuid::Uuid;

use super::count_column;
use crate::error::CorruptRow;
use crate::schema::{scan_artifacts, scans};

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
    pub target: serde_json::Value,
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
            target: s.target.to_json(),
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
            target: Target::from_json(&row.target).map_err(|e| corrupt(&e))?,
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
    pub(crate) fn new(scan: ScanId, artifacts: &ScanArtifacts) -> Result<Self, RepoError> {
        Ok(Self {
            scan_id: scan.as_uuid(),
            bundle_json: artifacts.bundle_json.clone(),
            bundle_sha256: artifacts.bundle_sha256.as_str().to_owned(),
            report: serde_json::to_value(&artifacts.report)
                .map_err(|e| RepoError::Other(Box::new(e)))?,
            passport: artifacts.passport.as_str().to_owned(),
        })
    }
}

impl TryFrom<ArtifactsRow> for ScanArtifacts {
    type Error = RepoError;

    fn try_from(row: ArtifactsRow) -> Result<Self, RepoError> {
        // The bundle is opaque bytes here, and whoever serves it hashes it if they need
        // to; the digest, report and passport must still have their shapes.
        let corrupt = |reason: String| CorruptRow::repo("scan_artifacts", row.scan_id, reason);
        Ok(Self {
            bundle_sha256: Sha256Hex::parse(&row.bundle_sha256)
                .map_err(|e| corrupt(format!("bundle_sha256 {e}")))?,
            report: serde_json::from_value(row.report.clone())
                .map_err(|e| corrupt(format!("report: {e}")))?,
            passport: Jws::parse(&row.passport).map_err(|e| corrupt(format!("passport {e}")))?,
            bundle_json: row.bundle_json,
        })
    }
}

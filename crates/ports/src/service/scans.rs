//! Scans: operators request them, agents claim them and send results, the sweeper ends
//! the overdue ones, and completed ones yield a report, a bundle and a signed passport.

use fleetpass_domain::access::{Action, Actor};
use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::fleet::Agent;
use fleetpass_domain::ids::{FleetId, ScanId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::{
    Jws, PassportClaims, PassportNames, Scan, ScanConstraints, ScanResults, ScanStatus, Scenario,
};
use serde_json::json;

use super::fleets::fleet_for;
use super::{Field, ServiceError, ServiceResult, require};
use crate::keys::KeyRing;
use crate::store::{ScanArtifacts, ScanFilter};
use crate::{Conflict, Deps, RepoError};

/// Requests a scan of a fleet; it waits, queued, for one of the fleet's agents.
///
/// # Errors
/// `Denied`, `NotFound` (fleet); `Invalid` naming the first infeasible constraint.
pub async fn request_scan(
    deps: &Deps,
    actor: &Actor,
    fleet: FleetId,
    scenario: Scenario,
    constraints: ScanConstraints,
) -> ServiceResult<Scan> {
    let fleet = fleet_for(deps, actor, Action::Operate, fleet).await?;
    let now = deps.now();
    if let Err(problems) = constraints.check_feasible(scenario, now)
        && let Some(first) = problems.into_iter().next()
    {
        return Err(ServiceError::invalid(
            Field::Constraint(first.field),
            first.message,
            format!(
                "The {} scenario needs at least {} minutes.",
                scenario.as_str(),
                scenario.min_minutes()
            ),
        ));
    }
    let scan = Scan {
        id: ScanId::from_uuid(deps.ids.new_id()),
        tenant_id: actor.tenant_id,
        fleet_id: fleet.id,
        environment_id: fleet.environment_id,
        scenario,
        constraints,
        status: ScanStatus::Queued,
        requested_at: now,
        claimed_by: None,
        claimed_at: None,
        finished_at: None,
    };
    let audit = deps
        .audit_by(
            actor,
            actions::SCAN_REQUESTED,
            scan.id.as_uuid(),
            json!({"fleetId": fleet.id.to_string(), "scenario": scenario.as_str()}),
        )
        .in_environment(scan.environment_id);
    match deps.store.create_scan(&scan, &audit).await {
        // The fleet was deleted between the read and the write.
        Err(RepoError::NotFound) => Err(ServiceError::NotFound),
        other => other.map_err(ServiceError::from),
    }?;
    Ok(scan)
}

/// Reads a scan and checks `action` on it, scope included.
pub(crate) async fn scan_for(
    deps: &Deps,
    actor: &Actor,
    action: Action,
    id: ScanId,
) -> ServiceResult<Scan> {
    require(actor, action, None)?;
    let scan = deps.store.get_scan(actor.tenant_id, id).await?;
    require(actor, action, Some(scan.environment_id))?;
    Ok(scan)
}

/// Reads a scan.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn get_scan(deps: &Deps, actor: &Actor, id: ScanId) -> ServiceResult<Scan> {
    scan_for(deps, actor, Action::Read, id).await
}

/// Lists scans in the caller's environments, newest first.
///
/// # Errors
/// `Denied`, store errors.
pub async fn list_scans(
    deps: &Deps,
    actor: &Actor,
    mut filter: ScanFilter,
    page: PageRequest,
) -> ServiceResult<Page<Scan>> {
    require(actor, Action::Read, None)?;
    filter.environments = (!actor.scope.is_all()).then(|| actor.scope.ids());
    Ok(deps
        .store
        .list_scans(actor.tenant_id, &filter, page)
        .await?)
}

/// The artifacts of a completed scan the caller may read.
///
/// # Errors
/// `Denied`, `NotFound`; `Conflict(ScanNotCompleted)` before completion.
pub async fn get_artifacts(
    deps: &Deps,
    actor: &Actor,
    id: ScanId,
) -> ServiceResult<(Scan, ScanArtifacts)> {
    let scan = scan_for(deps, actor, Action::Read, id).await?;
    let artifacts = deps.store.get_scan_artifacts(actor.tenant_id, id).await?;
    artifacts.map(|a| (scan, a)).ok_or(ServiceError::Conflict {
        constraint: Conflict::ScanNotCompleted,
    })
}

/// Claims the oldest claimable scan of the agent's fleet, if any.
///
/// # Errors
/// Store errors.
pub async fn claim(deps: &Deps, agent: &Agent) -> ServiceResult<Option<Scan>> {
    let audit = |scan: &Scan| {
        deps.audit(
            scan.tenant_id,
            AuditActor::Agent(agent.id.as_uuid()),
            actions::SCAN_CLAIMED,
            Some(scan.id.as_uuid()),
            json!({"fleetId": scan.fleet_id.to_string(), "scenario": scan.scenario.as_str()}),
        )
        .in_environment(scan.environment_id)
    };
    Ok(deps.store.claim_scan(agent, deps.now(), &audit).await?)
}

/// Accepts an agent's results for a scan it claimed: validates them, makes the bundle,
/// the report and the signed passport, and completes the scan.
///
/// # Errors
/// `NotFound` for a scan the agent did not claim; `Conflict(ScanNotRunning)` when it
/// is no longer running; `Invalid` naming the first invalid part of the results.
pub async fn submit_results(
    deps: &Deps,
    keys: &KeyRing,
    agent: &Agent,
    id: ScanId,
    results: ScanResults,
) -> ServiceResult<Scan> {
    let scan = deps.store.get_scan(agent.tenant_id, id).await?;
    if scan.claimed_by != Some(agent.id) {
        return Err(ServiceError::NotFound);
    }
    if scan.status != ScanStatus::Running {
        return Err(ServiceError::Conflict {
            constraint: Conflict::ScanNotRunning,
        });
    }
    results
        .validate(scan.constraints.max_assets)
        .map_err(|e| ServiceError::Invalid {
            field: Field::Results,
            message: format!("{} {}", e.path, e.message),
            hint: None,
        })?;
    let at = deps.now();
    let internal =
        |e: Box<dyn std::error::Error + Send + Sync>| ServiceError::Internal(RepoError::Other(e));
    let (bundle_json, bundle_sha256) = results.bundle().map_err(|e| internal(Box::new(e)))?;
    let report = results.report();
    // Names for readers of the passport; a fleet deleted meanwhile is named by id only.
    let names = PassportNames {
        tenant: deps
            .store
            .get_tenant(scan.tenant_id)
            .await
            .ok()
            .map(|t| t.name.to_string()),
        fleet: deps
            .store
            .get_fleet(scan.tenant_id, scan.fleet_id)
            .await
            .ok()
            .map(|f| f.name.to_string()),
    };
    let claims =
        PassportClaims::new(&scan, &results, at, names).map_err(|e| internal(Box::new(e)))?;
    let signed = keys
        .sign(&claims)
        .await
        .map_err(|e| internal(Box::new(e)))?;
    let passport = Jws::parse(&signed).map_err(|e| internal(Box::new(e)))?;
    let counts = results.counts();
    let artifacts = ScanArtifacts {
        bundle_json,
        bundle_sha256,
        report,
        passport,
    };
    let audit = deps.audit(
        scan.tenant_id,
        AuditActor::Agent(agent.id.as_uuid()),
        actions::SCAN_COMPLETED,
        Some(id.as_uuid()),
        json!({"assets": counts.assets, "findings": counts.findings, "bundleSha256": artifacts.bundle_sha256}),
    )
    .in_environment(scan.environment_id);
    Ok(deps
        .store
        .complete_scan(agent.id, id, at, &artifacts, &audit)
        .await?)
}

/// Ends every overdue scan: claimed ones with no results in time fail, queued ones past
/// `notAfter` expire. Returns how many moved.
///
/// # Errors
/// Store errors.
pub async fn sweep(deps: &Deps) -> ServiceResult<usize> {
    let now = deps.now();
    let audit = |scan: &Scan| {
        let (action, why) = match scan.status {
            ScanStatus::Expired => (actions::SCAN_EXPIRED, "not claimed before notAfter"),
            _ => (actions::SCAN_FAILED, "no results within maxDurationMinutes"),
        };
        deps.audit(
            scan.tenant_id,
            AuditActor::System,
            action,
            Some(scan.id.as_uuid()),
            json!({"reason": why}),
        )
        .in_environment(scan.environment_id)
    };
    Ok(deps.store.sweep_scans(now, &audit).await?)
}

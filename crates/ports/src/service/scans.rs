//! Scans: operators request them, agents claim them and send results, the sweeper ends
//! the overdue ones, and completed ones yield a report, a bundle and a signed passport.

use fleetpass_domain::access::{Action, Actor};
use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::fleet::Agent;
use fleetpass_domain::ids::{FleetId, ScanId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::{
    Jws, Merge, Merged, PartStatus, PassportClaims, PassportNames, Progress, Scan, ScanConstraints,
    ScanPart, ScanResults, ScanStatus, ScanTarget, Scenario,
};
use serde_json::json;

use super::fleets::fleet_for;
use super::{Field, ServiceError, ServiceResult, require};
use crate::keys::KeyRing;
use crate::store::{ScanArtifacts, ScanFilter};
use crate::wakeups::Wakeup;
use crate::{Conflict, Deps, RepoError};

/// Requests a scan of a fleet; it waits, queued, for one of the fleet's agents
/// (`target` `Any`), or for each agent its target selects, one part each.
///
/// # Errors
/// `Denied`, `NotFound` (fleet); `Invalid` naming the first infeasible constraint, or
/// the target when it selects no live agent of the fleet or lists one that is not.
pub async fn request_scan(
    deps: &Deps,
    actor: &Actor,
    fleet: FleetId,
    scenario: Scenario,
    constraints: ScanConstraints,
    target: ScanTarget,
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
    let target_kind = match &target {
        ScanTarget::Any => json!("any"),
        ScanTarget::All => json!("all"),
        ScanTarget::Agents(ids) => json!({"agents": ids.len()}),
        ScanTarget::Labels(selector) => json!({"labels": selector.labels()}),
    };
    let scan = Scan {
        id: ScanId::from_uuid(deps.ids.new_id()),
        tenant_id: actor.tenant_id,
        fleet_id: fleet.id,
        environment_id: fleet.environment_id,
        scenario,
        constraints,
        target: target.kind(),
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
            json!({"fleetId": fleet.id.to_string(), "scenario": scenario.as_str(), "target": target_kind}),
        )
        .in_environment(scan.environment_id);
    let targeted = match deps.store.create_scan(&scan, &target, &audit).await {
        // The fleet was deleted between the read and the write.
        Err(RepoError::NotFound) => Err(ServiceError::NotFound),
        Err(RepoError::Conflict {
            constraint: Conflict::TargetEmpty,
        }) => Err(ServiceError::invalid(
            Field::Target,
            "selects no live agent of the fleet",
            "Enroll agents first, or target labels that the fleet's agents carry (the fleet's agent list filters by label).".to_owned(),
        )),
        Err(RepoError::Conflict {
            constraint: Conflict::TargetNotInFleet,
        }) => Err(ServiceError::invalid(
            Field::Target,
            "lists an agent that is not a live (unrevoked) agent of the fleet",
            "List only live agents of this fleet (the fleet's agent list names them).".to_owned(),
        )),
        other => other.map_err(ServiceError::from),
    }?;
    let delay = claimable_in(&scan, now);
    if scan.target.fans_out() {
        deps.wakeups.publish(
            scan.fleet_id,
            Wakeup::Parts(scan.id, targeted.into()),
            delay,
        );
    } else {
        deps.wakeups.publish(scan.fleet_id, Wakeup::Scan, delay);
    }
    Ok(scan)
}

/// The progress of the fan-out scans among `scans`, by id.
///
/// # Errors
/// Store errors.
pub async fn progress_of(
    deps: &Deps,
    actor: &Actor,
    scans: &[Scan],
) -> ServiceResult<std::collections::HashMap<ScanId, Progress>> {
    let ids: Vec<ScanId> = scans
        .iter()
        .filter(|s| s.target.fans_out())
        .map(|s| s.id)
        .collect();
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    Ok(deps
        .store
        .scan_progress(actor.tenant_id, &ids)
        .await?
        .into_iter()
        .collect())
}

/// Lists the parts of a fan-out scan, optionally only those in `status` (a completed
/// scan's failed parts: `status = failed`).
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn list_parts(
    deps: &Deps,
    actor: &Actor,
    id: ScanId,
    status: Option<PartStatus>,
    page: PageRequest,
) -> ServiceResult<Page<ScanPart>> {
    scan_for(deps, actor, Action::Read, id).await?;
    Ok(deps
        .store
        .list_parts(actor.tenant_id, id, status, page)
        .await?)
}

/// Cancels a queued or running scan: its open parts end with it, agents holding it
/// are refused their results (409) at their next exchange, and no artifacts are made.
///
/// # Errors
/// `Denied`, `NotFound`; `Conflict(ScanFinished)` when it has ended.
pub async fn cancel(deps: &Deps, actor: &Actor, id: ScanId) -> ServiceResult<Scan> {
    let scan = scan_for(deps, actor, Action::Operate, id).await?;
    let audit = deps
        .audit_by(
            actor,
            actions::SCAN_CANCELLED,
            id.as_uuid(),
            json!({"fleetId": scan.fleet_id.to_string(), "status": scan.status.as_str()}),
        )
        .in_environment(scan.environment_id);
    Ok(deps
        .store
        .cancel_scan(actor.tenant_id, id, deps.now(), &audit)
        .await?)
}

/// How long after `now` a queued scan becomes claimable: at once, or at its `notBefore`.
pub fn claimable_in(scan: &Scan, now: fleetpass_domain::Timestamp) -> std::time::Duration {
    scan.constraints
        .not_before
        .map_or(std::time::Duration::ZERO, |at| {
            std::time::Duration::try_from(at - now).unwrap_or_default()
        })
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

/// The scan `id` if `agent` claimed it and it is still running: what an agent may send
/// results for. The HTTP layer asks this before it reads a results body, so a body for
/// someone else's scan is refused without being read.
///
/// # Errors
/// `NotFound` for a scan of another agent (or none), `Conflict(ScanNotRunning)` for
/// one that is no longer running.
pub async fn running_scan_of(deps: &Deps, agent: &Agent, id: ScanId) -> ServiceResult<RunningScan> {
    let scan = deps.store.get_scan(agent.tenant_id, id).await?;
    let running = if scan.target.fans_out() {
        let part = deps
            .store
            .get_part(agent, id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        part.status == PartStatus::Running
    } else {
        if scan.claimed_by != Some(agent.id) {
            return Err(ServiceError::NotFound);
        }
        scan.status == ScanStatus::Running
    };
    if !running {
        return Err(ServiceError::Conflict {
            constraint: if scan.status == ScanStatus::Cancelled {
                Conflict::ScanCancelled
            } else {
                Conflict::ScanNotRunning
            },
        });
    }
    Ok(RunningScan(scan))
}

/// A scan [`running_scan_of`] found claimed by the agent and running: what
/// [`submit_results`] takes, so the check is made once, before the body is read. The
/// store completes it only if it is still running then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningScan(Scan);

impl RunningScan {
    /// The scan.
    pub fn scan(&self) -> &Scan {
        &self.0
    }
}

/// How often a held check-in marks its agent seen: the agent sends nothing while it
/// waits, and `lastSeenAt` must not go staler than this (plus one presence flush).
pub const PRESENCE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Claims the oldest claimable scan of the agent's fleet, waiting up to `wait` for one
/// to become claimable (a long-poll; `wait` zero is a plain claim). Waiting costs no
/// store work: the wait is woken through the wake-up port (a scan wakes one waiter of
/// its fleet per process), and each wake-up is one claim attempt; a waiter that loses
/// the race (to another replica's) waits on. While it waits the agent is
/// marked seen every [`PRESENCE_EVERY`]. `Ok(None)` when the wait ends with nothing
/// claimed (its time is up, or the server is stopping).
///
/// # Errors
/// `Busy` when this process holds its limit of waiting check-ins; `Unauthorized` when
/// the agent is revoked or its fleet deleted while it waits; store errors.
pub async fn check_in(
    deps: &Deps,
    agent: &Agent,
    wait: std::time::Duration,
) -> ServiceResult<Option<Scan>> {
    if wait.is_zero() {
        return claim(deps, agent).await;
    }
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before the first claim, so a scan queued between the claim and the
    // wait is not missed.
    let mut wakeups = deps
        .wakeups
        .subscribe(agent.fleet_id)
        .map_err(|_| ServiceError::Busy {
            retry_after_seconds: BUSY_RETRY_AFTER_SECONDS,
        })?;
    let mut presence =
        tokio::time::interval_at(tokio::time::Instant::now() + PRESENCE_EVERY, PRESENCE_EVERY);
    let mut woken_for_a_scan = false;
    loop {
        match claim(deps, agent).await {
            Ok(Some(scan)) => return Ok(Some(scan)),
            Ok(None) => {}
            Err(e) => {
                // The scan this waiter was woken for is still queued: another waiter
                // here tries it.
                if woken_for_a_scan {
                    wakeups.pass_on();
                }
                return Err(e);
            }
        }
        loop {
            tokio::select! {
                event = wakeups.next() => match event {
                    Wakeup::Scan => {
                        woken_for_a_scan = true;
                        break;
                    }
                    Wakeup::Missed => {
                        woken_for_a_scan = false;
                        break;
                    }
                    Wakeup::Parts(scan, agents) if agents.binary_search(&agent.id).is_ok() => {
                        // Claimed with the other agents woken here, in one store call.
                        if let Some(claimed) = deps.part_claims.claim(deps, agent, scan).await {
                            return Ok(Some(claimed));
                        }
                        // Not claimed in the batch (taken meanwhile, or the batch
                        // failed): one claim of its own decides.
                        woken_for_a_scan = false;
                        break;
                    }
                    Wakeup::Parts(..) => {}
                    Wakeup::AgentGone(id) if id == agent.id => {
                        return Err(ServiceError::Unauthorized {
                            message: "the agent was revoked".to_owned(),
                            hint: Some(super::Remedy::AgentRevoked),
                        });
                    }
                    Wakeup::AgentGone(_) => {}
                    Wakeup::FleetGone => {
                        return Err(ServiceError::Unauthorized {
                            message: "the agent no longer exists".to_owned(),
                            hint: Some(super::Remedy::AgentRevoked),
                        });
                    }
                    Wakeup::ShuttingDown => return Ok(None),
                },
                () = tokio::time::sleep_until(deadline) => return Ok(None),
                _ = presence.tick() => {
                    // Presence is best effort: a store hiccup must not end the wait.
                    if let Err(e) = deps.store.mark_agent_seen(agent.id, deps.now()).await {
                        tracing::debug!(error = %e, "could not mark a waiting agent seen");
                    }
                }
            }
        }
    }
}

/// The `Retry-After` of a refused check-in: long enough for held polls to end and free
/// room, short enough that an agent is not kept away long.
pub const BUSY_RETRY_AFTER_SECONDS: u64 = 30;

/// How long a check-in that asked for `requested` waits: at most `cap`, ending
/// `margin` before the agent's access token expires, and shortened by up to a tenth by
/// `random` (so that polls begun together do not all end together).
pub fn wait_for(
    requested: std::time::Duration,
    cap: std::time::Duration,
    token_left: std::time::Duration,
    random: u32,
) -> std::time::Duration {
    /// A poll ends this long before its token, so the agent can renew and check in anew.
    const MARGIN: std::time::Duration = std::time::Duration::from_secs(10);
    let wait = requested.min(cap).min(token_left.saturating_sub(MARGIN));
    if wait.is_zero() {
        return wait;
    }
    let tenth = wait / 10;
    let cut = tenth.mul_f64(f64::from(random) / f64::from(u32::MAX));
    wait - cut
}

/// Accepts an agent's results for a scan it claimed: validates them and, for a scan of
/// target `Any`, makes the bundle, the report and the signed passport and completes
/// the scan; for a fan-out scan, completes the agent's part and, when it was the last
/// open one, the scan (see [`finish_fan_out`]).
///
/// # Errors
/// `Conflict(ScanNotRunning)` when it stopped running since [`running_scan_of`];
/// `Invalid` naming the first invalid part of the results.
pub async fn submit_results(
    deps: &Deps,
    keys: &KeyRing,
    agent: &Agent,
    RunningScan(scan): RunningScan,
    results: ScanResults,
) -> ServiceResult<Scan> {
    let id = scan.id;
    results
        .validate(scan.constraints.max_assets)
        .map_err(|e| ServiceError::Invalid {
            field: Field::Results,
            message: format!("{} {}", e.path, e.message),
            hint: None,
        })?;
    let at = deps.now();
    if scan.target.fans_out() {
        let json = serde_json::to_string(&results).map_err(|e| internal(Box::new(e)))?;
        let open = deps.store.submit_part(agent.id, id, at, &json).await?;
        drop(results);
        if open {
            return Ok(scan);
        }
        return Ok(finish_fan_out(deps, keys, &scan).await?.unwrap_or(scan));
    }
    let mut merge = Merge::default();
    merge.add(agent.id, &results);
    drop(results);
    let artifacts = seal(deps, keys, &scan, merge.finish(), at).await?;
    let counts = &artifacts.report.counts;
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

fn internal(e: Box<dyn std::error::Error + Send + Sync>) -> ServiceError {
    ServiceError::Internal(RepoError::Other(e))
}

/// Signs the passport of `scan` over `merged`, completed at `at`: the artifacts.
async fn seal(
    deps: &Deps,
    keys: &KeyRing,
    scan: &Scan,
    merged: Merged,
    at: fleetpass_domain::Timestamp,
) -> ServiceResult<ScanArtifacts> {
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
    let claims = PassportClaims::of(
        scan,
        merged.report.counts.clone(),
        merged.bundle_sha256.clone(),
        at,
        names,
    )
    .map_err(|e| internal(Box::new(e)))?;
    let signed = keys
        .sign(&claims, fleetpass_domain::jose::TokenType::Passport)
        .await
        .map_err(|e| internal(Box::new(e)))?;
    let passport = Jws::parse(&signed).map_err(|e| internal(Box::new(e)))?;
    Ok(ScanArtifacts {
        bundle_json: merged.bundle_json,
        bundle_sha256: merged.bundle_sha256,
        report: merged.report,
        passport,
    })
}

/// How many parts' results a merge reads at a time: its memory is one page of parsed
/// results plus the bundle's bytes so far.
const MERGE_PAGE: u32 = 200;

/// Ends a fan-out scan whose parts have all ended: completed, with the merged bundle,
/// report and passport, when any part completed; failed when none did. `Ok(None)` when
/// parts are still open or the scan has ended (another replica, or the sweeper, got
/// there first: the store decides, so racing finishers are safe).
///
/// # Errors
/// Store and signing errors.
pub async fn finish_fan_out(
    deps: &Deps,
    keys: &KeyRing,
    scan: &Scan,
) -> ServiceResult<Option<Scan>> {
    let tenant = scan.tenant_id;
    let Some((_, progress)) = deps
        .store
        .scan_progress(tenant, &[scan.id])
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    if progress.open() > 0 {
        return Ok(None);
    }
    let at = deps.now();
    let parts = json!({"completed": progress.completed, "failed": progress.failed});
    let audit = |action, details| {
        deps.audit(
            tenant,
            AuditActor::System,
            action,
            Some(scan.id.as_uuid()),
            details,
        )
        .in_environment(scan.environment_id)
    };
    if Scan::ends_as(&progress) == ScanStatus::Failed {
        let event = audit(
            actions::SCAN_FAILED,
            json!({"reason": "no part completed", "parts": parts}),
        );
        return Ok(deps
            .store
            .finish_fan_out(tenant, scan.id, at, None, &event)
            .await?);
    }
    let started = std::time::Instant::now();
    let mut merge = Merge::default();
    let mut after = None;
    loop {
        let page = deps
            .store
            .part_results(tenant, scan.id, after, MERGE_PAGE)
            .await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        for (agent, json) in &page {
            let results: ScanResults =
                serde_json::from_str(json).map_err(|e| internal(Box::new(e)))?;
            merge.add(*agent, &results);
        }
        if page.len() < MERGE_PAGE as usize {
            break;
        }
    }
    let artifacts = seal(deps, keys, scan, merge.finish(), at).await?;
    tracing::info!(
        scan = %scan.id,
        parts = progress.completed,
        bundle_bytes = artifacts.bundle_json.len(),
        merge_ms = started.elapsed().as_millis() as u64,
        "merged a fan-out scan"
    );
    let counts = &artifacts.report.counts;
    let event = audit(
        actions::SCAN_COMPLETED,
        json!({"assets": counts.assets, "findings": counts.findings,
               "bundleSha256": artifacts.bundle_sha256, "parts": parts}),
    );
    Ok(deps
        .store
        .finish_fan_out(tenant, scan.id, at, Some(&artifacts), &event)
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
    let moved = deps.store.sweep_scans(now, &audit).await?;
    Ok(moved)
}

/// How many fan-out scans one sweep finishes at most.
const FINISH_PER_SWEEP: u32 = 50;

/// Ends the fan-out scans whose parts have all ended (the last part failed by the
/// sweeper, an agent revoked, or a finisher that lost a race): the part of the sweeper
/// that needs the signing keys. Returns how many ended.
///
/// # Errors
/// Store and signing errors.
pub async fn finish_ready(deps: &Deps, keys: &KeyRing) -> ServiceResult<usize> {
    let mut ended = 0;
    for scan in deps.store.fan_outs_to_finish(FINISH_PER_SWEEP).await? {
        if finish_fan_out(deps, keys, &scan).await?.is_some() {
            ended += 1;
        }
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::wait_for;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_wait_is_capped_ends_before_the_token_and_is_jittered_by_at_most_a_tenth() {
        let token = S(900);
        assert_eq!(wait_for(S(60), S(300), token, 0), S(60), "as asked");
        assert_eq!(
            wait_for(S(3600), S(300), token, 0),
            S(300),
            "the server's cap"
        );
        assert_eq!(
            wait_for(S(300), S(300), S(100), 0),
            S(90),
            "10 s before the token"
        );
        assert_eq!(
            wait_for(S(300), S(300), S(5), 0),
            S(0),
            "no time left: no wait"
        );
        assert_eq!(
            wait_for(S(300), S(300), token, u32::MAX),
            S(270),
            "at most a tenth off"
        );
        let half = wait_for(S(300), S(300), token, u32::MAX / 2);
        assert!(half > S(284) && half < S(286), "{half:?}");
    }
}

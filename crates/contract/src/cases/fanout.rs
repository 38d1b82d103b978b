//! Cases of scans that cover a fleet: agent labels, fan-out parts made from a target,
//! claimed only by their own agents, ended by results, revocation, the sweeper or a
//! cancellation, and the scan's end once no part is open.

use fleetpass_domain::audit::actions;
use fleetpass_domain::fleet::Agent;
use fleetpass_domain::label::{LabelSelector, Labels};
use fleetpass_domain::scan::{
    MaxDurationMinutes, PartFailure, PartStatus, Progress, Scan, ScanConstraints, ScanStatus,
    ScanTarget, Scenario, Target,
};
use fleetpass_ports::Store;
use fleetpass_ports::store::constraint;

use crate::fixtures::Fixtures;
use crate::support::{Auditor, Must, Setup};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::parse(pairs.iter().copied()).expect("valid fixture labels")
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector::new(labels(pairs)).expect("a selector")
}

/// Relabels `agent` through the store, which must succeed, expecting its event.
async fn relabel(store: &dyn Store, a: &mut Setup<'_>, agent: &Agent, to: &Labels) -> Agent {
    let audit = a.audit(actions::AGENT_UPDATED, agent.id.as_uuid());
    let relabelled = store
        .relabel_agent(a.id(), agent.id, to, &audit)
        .await
        .must("relabel_agent");
    a.logged(&audit);
    relabelled
}

/// Requests a fan-out `scan` with `target`, which must succeed; returns the parts' agents.
async fn fan_out(
    store: &dyn Store,
    a: &mut Setup<'_>,
    scan: &Scan,
    target: &ScanTarget,
) -> Vec<fleetpass_domain::ids::AgentId> {
    let audit = a.audit(actions::SCAN_REQUESTED, scan.id.as_uuid());
    let agents = store
        .create_scan(scan, target, &audit)
        .await
        .must("create_scan (fan-out)");
    a.logged(&audit);
    agents
}

fn fan_out_scan(
    fx: &Fixtures,
    fleet: &fleetpass_domain::fleet::Fleet,
    target: &ScanTarget,
) -> Scan {
    Scan {
        target: target.kind(),
        ..fx.plain_scan(fleet)
    }
}

async fn progress(store: &dyn Store, a: &Setup<'_>, scan: &Scan) -> Progress {
    let found = store
        .scan_progress(a.id(), &[scan.id])
        .await
        .must("scan_progress");
    assert_eq!(found.len(), 1, "a fan-out scan has progress");
    found[0].1
}

/// Labels are kept and replaced by `relabel_agent` and filter `list_agents` (every pair
/// must match); a fan-out scan gets one queued part per live agent its target selects
/// (`all`, a label selector, a list), sorted; a target that selects nobody, or lists an
/// agent that is not a live one of the fleet, is refused and stores nothing.
pub async fn fan_out_parts_follow_the_target(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let (fleet, _, _) = a.fleet().await;
    let (other_fleet, _, _) = a.fleet().await;
    let mut agents = Vec::new();
    for _ in 0..3 {
        agents.push(a.agent(&fleet).await);
    }
    let stranger = a.agent(&other_fleet).await;
    let db = labels(&[("role", "db"), ("site", "fra1")]);
    for agent in &mut agents[..2] {
        *agent = relabel(store, &mut a, agent, &db).await;
        assert_eq!(agent.labels, db, "relabel_agent returns the new labels");
    }
    assert_eq!(
        store
            .get_agent(a.id(), agents[0].id)
            .await
            .must("get_agent")
            .labels,
        db,
        "labels are kept"
    );
    let listed = store
        .list_agents(
            a.id(),
            fleet.id,
            Some(&selector(&[("role", "db")])),
            fx_page(),
        )
        .await
        .must("list_agents by label");
    let mut ids: Vec<_> = listed.items.iter().map(|g| g.id).collect();
    ids.sort();
    let mut want: Vec<_> = agents[..2].iter().map(|g| g.id).collect();
    want.sort();
    assert_eq!(
        ids, want,
        "list_agents keeps the agents that carry every pair"
    );
    let none = store
        .list_agents(
            a.id(),
            fleet.id,
            Some(&selector(&[("role", "db"), ("site", "ams1")])),
            fx_page(),
        )
        .await
        .must("list_agents by label");
    assert!(none.items.is_empty(), "every pair must match");

    let mut all_ids: Vec<_> = agents.iter().map(|g| g.id).collect();
    all_ids.sort();
    for (target, want) in [
        (ScanTarget::All, all_ids.clone()),
        (
            ScanTarget::Labels(selector(&[("role", "db")])),
            want.clone(),
        ),
        (ScanTarget::Agents(vec![agents[2].id]), vec![agents[2].id]),
    ] {
        let scan = fan_out_scan(&fx, &fleet, &target);
        let got = fan_out(store, &mut a, &scan, &target).await;
        assert_eq!(got, want, "the parts of {target:?}");
        assert_eq!(
            progress(store, &a, &scan).await,
            Progress {
                queued: u32::try_from(want.len()).unwrap_or(0),
                ..Progress::default()
            },
            "every part starts queued"
        );
        let stored = store.get_scan(a.id(), scan.id).await.must("get_scan");
        assert_eq!(
            stored.target,
            target.kind(),
            "the scan keeps its target's kind"
        );
    }
    for (target, refusal, what) in [
        (
            ScanTarget::Labels(selector(&[("role", "web")])),
            constraint::TARGET_EMPTY,
            "a selector nobody matches",
        ),
        (
            ScanTarget::Agents(vec![agents[0].id, stranger.id]),
            constraint::TARGET_NOT_IN_FLEET,
            "a list with another fleet's agent",
        ),
    ] {
        let scan = fan_out_scan(&fx, &fleet, &target);
        let audit = a.audit(actions::SCAN_REQUESTED, scan.id.as_uuid());
        store
            .create_scan(&scan, &target, &audit)
            .await
            .must_conflict(refusal, what);
        store
            .get_scan(a.id(), scan.id)
            .await
            .must_be_not_found(&format!("the scan refused for {what}"));
    }
    a.check_log("after fan-out requests").await;
}

fn fx_page() -> fleetpass_domain::page::PageRequest {
    crate::support::first_page(50)
}

/// Each part is claimed by its own agent only (oldest scan first, `Any` scans of the
/// fleet competing), with no audit event; the scan runs from its first claim. Results
/// complete a running part once; a revoked agent's open part fails; the scan is ready
/// to end only when no part is open, and ends once, completed with its artifacts.
pub async fn fan_out_parts_are_claimed_by_their_agents_and_the_scan_ends_with_them(
    store: &dyn Store,
) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let (fleet, _, _) = a.fleet().await;
    let (one, two) = (a.agent(&fleet).await, a.agent(&fleet).await);
    let claims = Auditor::claims(&fx);
    let older = a.scan(&fleet).await;
    let scan = fan_out_scan(&fx, &fleet, &ScanTarget::All);
    fan_out(store, &mut a, &scan, &ScanTarget::All).await;

    let now = fx.now();
    a.claim_exactly(&claims, &one, &older, now).await;
    let claimed = claims.claim(store, &one, now).await.expect("its part");
    assert_eq!(claimed.id, scan.id, "then its part of the fan-out scan");
    assert_eq!(
        (claimed.status, claimed.claimed_by, claimed.claimed_at),
        (ScanStatus::Running, None, Some(now)),
        "a fan-out scan runs from its first part's claim and names no claimer"
    );
    assert_eq!(
        claims.claim(store, &one, now).await,
        None,
        "one part per agent"
    );
    let later = now + time::Duration::seconds(5);
    let second = claims
        .claim(store, &two, later)
        .await
        .expect("its own part");
    assert_eq!(
        second.claimed_at,
        Some(now),
        "the scan keeps its first claim time"
    );
    let part = store
        .get_part(&two, scan.id)
        .await
        .must("get_part")
        .expect("a part");
    assert_eq!(
        (part.status, part.claimed_at),
        (PartStatus::Running, Some(later))
    );

    assert!(
        store
            .submit_part(one.id, scan.id, later, r#"{"assets":[],"findings":[]}"#)
            .await
            .must("submit_part"),
        "the other agent's part is still open"
    );
    store
        .submit_part(one.id, scan.id, later, "{}")
        .await
        .must_conflict(constraint::SCAN_NOT_RUNNING, "results twice");
    store
        .submit_part(one.id, older.id, later, "{}")
        .await
        .must_be_not_found("results for a scan the agent has no part of");
    let early = a.audit(actions::SCAN_COMPLETED, scan.id.as_uuid());
    assert_eq!(
        store
            .finish_fan_out(a.id(), scan.id, later, Some(&fx.artifacts()), &early)
            .await
            .must("finish_fan_out"),
        None,
        "not while a part is open"
    );
    assert!(
        !store
            .fan_outs_to_finish(100)
            .await
            .must("fan_outs_to_finish")
            .iter()
            .any(|s| s.id == scan.id),
        "not ready while a part is open"
    );

    let revoked = a.audit(actions::AGENT_REVOKED, two.id.as_uuid());
    store
        .revoke_agent(a.id(), two.id, later, &revoked)
        .await
        .must("revoke_agent");
    a.logged(&revoked);
    let failed = store
        .get_part(&two, scan.id)
        .await
        .must("get_part")
        .expect("a part");
    assert_eq!(
        (failed.status, failed.failure),
        (PartStatus::Failed, Some(PartFailure::AgentRevoked)),
        "a revoked agent's open part fails"
    );
    assert_eq!(
        progress(store, &a, &scan).await,
        Progress {
            completed: 1,
            failed: 1,
            ..Progress::default()
        }
    );
    assert!(
        store
            .fan_outs_to_finish(1000)
            .await
            .must("fan_outs_to_finish")
            .iter()
            .any(|s| s.id == scan.id),
        "ready once no part is open"
    );
    let results = store
        .part_results(a.id(), scan.id, None, 10)
        .await
        .must("part_results");
    assert_eq!(results.len(), 1, "the completed part's results");
    assert_eq!(results[0].0, one.id);
    let page = store
        .list_parts(a.id(), scan.id, Some(PartStatus::Failed), fx_page())
        .await
        .must("list_parts");
    assert_eq!(
        page.items.iter().map(|p| p.agent_id).collect::<Vec<_>>(),
        vec![two.id]
    );

    let ended = a.audit(actions::SCAN_COMPLETED, scan.id.as_uuid());
    let done = store
        .finish_fan_out(a.id(), scan.id, later, Some(&fx.artifacts()), &ended)
        .await
        .must("finish_fan_out")
        .expect("the scan ends");
    a.logged(&ended);
    assert_eq!(
        (done.status, done.finished_at),
        (ScanStatus::Completed, Some(later))
    );
    assert!(
        store
            .get_scan_artifacts(a.id(), scan.id)
            .await
            .must("artifacts")
            .is_some(),
        "its artifacts are kept"
    );
    let again = a.audit(actions::SCAN_COMPLETED, scan.id.as_uuid());
    assert_eq!(
        store
            .finish_fan_out(a.id(), scan.id, later, None, &again)
            .await
            .must("finish_fan_out again"),
        None,
        "a scan ends once"
    );
    a.check_log("after a fan-out scan").await;
}

/// `claim_parts` claims, in one call, the queued parts of the agents it is given and
/// no others: a part claimed already, an agent without a part, another tenant's call
/// claim nothing; the scan runs from the first claim.
pub async fn a_batch_claims_exactly_its_agents_queued_parts(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let (fleet, _, _) = a.fleet().await;
    let (other, _, _) = a.fleet().await;
    let agents = [
        a.agent(&fleet).await,
        a.agent(&fleet).await,
        a.agent(&fleet).await,
    ];
    let stranger = a.agent(&other).await;
    let claims = Auditor::claims(&fx);
    let scan = fan_out_scan(&fx, &fleet, &ScanTarget::All);
    fan_out(store, &mut a, &scan, &ScanTarget::All).await;
    let now = fx.now();
    claims
        .claim(store, &agents[0], now)
        .await
        .expect("its own part");
    let mut asked = vec![agents[0].id, agents[1].id, stranger.id];
    asked.sort();
    assert_eq!(
        store
            .claim_parts(b.id(), scan.id, &asked, now)
            .await
            .must("claim_parts"),
        None,
        "another tenant claims nothing"
    );
    let (running, claimed) = store
        .claim_parts(a.id(), scan.id, &asked, now)
        .await
        .must("claim_parts")
        .expect("a part is claimed");
    assert_eq!(
        claimed,
        vec![agents[1].id],
        "only the agent with a queued part"
    );
    assert_eq!((running.id, running.status), (scan.id, ScanStatus::Running));
    assert_eq!(
        store
            .claim_parts(a.id(), scan.id, &asked, now)
            .await
            .must("claim_parts"),
        None,
        "nothing twice"
    );
    assert_eq!(
        progress(store, &a, &scan).await,
        Progress {
            queued: 1,
            running: 2,
            ..Progress::default()
        }
    );
    a.check_log("after a batch claim").await;
    b.check_log("of the other tenant").await;
}

/// Cancelling ends a queued or running scan (a fan-out scan's open parts with it) and
/// writes its event; its agents can no longer claim or complete it; an ended scan is
/// refused with `SCAN_FINISHED`.
pub async fn cancel_ends_a_scan_and_its_open_parts(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let (fleet, _, _) = a.fleet().await;
    let agent = a.agent(&fleet).await;
    let claims = Auditor::claims(&fx);
    let now = fx.now();

    let running = a.scan(&fleet).await;
    let running = a.claim_exactly(&claims, &agent, &running, now).await;
    let scan = fan_out_scan(&fx, &fleet, &ScanTarget::All);
    fan_out(store, &mut a, &scan, &ScanTarget::All).await;

    for target in [&scan, &running] {
        let audit = a.audit(actions::SCAN_CANCELLED, target.id.as_uuid());
        let cancelled = store
            .cancel_scan(a.id(), target.id, now, &audit)
            .await
            .must("cancel_scan");
        a.logged(&audit);
        assert_eq!(
            (
                cancelled.status,
                cancelled.finished_at,
                cancelled.claimed_by
            ),
            (ScanStatus::Cancelled, Some(now), target.claimed_by),
            "cancelled now, keeping who claimed it"
        );
        let again = a.audit(actions::SCAN_CANCELLED, target.id.as_uuid());
        store
            .cancel_scan(a.id(), target.id, now, &again)
            .await
            .must_conflict(constraint::SCAN_FINISHED, "cancelling twice");
    }
    assert_eq!(
        progress(store, &a, &scan).await,
        Progress {
            cancelled: 1,
            ..Progress::default()
        },
        "the open part is cancelled with its scan"
    );
    assert_eq!(
        claims.claim(store, &agent, now).await,
        None,
        "nothing left to claim"
    );
    let done = a.audit(actions::SCAN_COMPLETED, running.id.as_uuid());
    store
        .complete_scan(agent.id, running.id, now, &fx.artifacts(), &done)
        .await
        .must_conflict(constraint::SCAN_NOT_RUNNING, "results for a cancelled scan");
    a.check_log("after cancellations").await;
}

/// The sweeper fails every open part past its deadline: a claimed one with no results
/// within `maxDurationMinutes` (`no_results`), an unclaimed one by `notAfter` or, without
/// it, `maxDurationMinutes` after the request (`not_claimed`); earlier, nothing moves.
/// No audit event is written per part.
pub async fn overdue_parts_fail(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let (fleet, _, _) = a.fleet().await;
    let (one, two) = (a.agent(&fleet).await, a.agent(&fleet).await);
    let claims = Auditor::claims(&fx);
    let sweeps = Auditor::sweeps(&fx);
    let constraints = ScanConstraints {
        max_duration_minutes: Some(MaxDurationMinutes::new(10).expect("a limit")),
        ..ScanConstraints::default()
    };
    let scan = Scan {
        target: Target::All,
        ..fx.scan(&fleet, Scenario::Inventory, constraints)
    };
    fan_out(store, &mut a, &scan, &ScanTarget::All).await;
    let start = fx.now();
    claims
        .claim(store, &one, start + time::Duration::minutes(2))
        .await
        .expect("a part");
    assert_eq!(
        sweeps
            .sweep(store, start + time::Duration::minutes(9))
            .await,
        0,
        "not yet"
    );
    assert_eq!(
        sweeps
            .sweep(store, start + time::Duration::minutes(10))
            .await,
        1,
        "the unclaimed part, at the request plus maxDurationMinutes"
    );
    assert_eq!(
        sweeps
            .sweep(store, start + time::Duration::minutes(12))
            .await,
        1,
        "the claimed part, at its claim plus maxDurationMinutes"
    );
    for (agent, why) in [
        (&one, PartFailure::NoResults),
        (&two, PartFailure::NotClaimed),
    ] {
        let part = store
            .get_part(agent, scan.id)
            .await
            .must("get_part")
            .expect("a part");
        assert_eq!((part.status, part.failure), (PartStatus::Failed, Some(why)));
    }
    a.check_log("after the sweeps").await;
}

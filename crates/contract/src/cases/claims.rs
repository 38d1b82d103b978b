//! The contract cases of claiming, completing and sweeping scans.

use std::collections::BTreeSet;

use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::ids::ScanId;
use fleetpass_domain::scan::{
    Asset, Finding, Scan, ScanConstraints, ScanResults, ScanStatus, Scenario, Severity, Software,
};
use fleetpass_domain::value::Text;
use fleetpass_ports::Store;
use fleetpass_ports::store::{ScanFilter, constraint};
use futures_util::future::join_all;
use time::Duration;

use super::{scans_of, swept};
use crate::fixtures::Fixtures;
use crate::support::{AgentMaker, Auditor, Must, Setup};

/// An agent claims the oldest claimable scan of its own fleet: not one of another fleet
/// or tenant (even an older one), not before `not_before` (claimable at exactly it), not
/// at or after `not_after` (claimable one second before it). The claimed scan is
/// running, claimed by the agent at `now`, reads back so, and its `scan.claimed` event
/// (built from the scan as changed) is recorded. With nothing to claim it is `None`,
/// and a claim changes no other scan.
pub async fn claim_takes_oldest_claimable_of_own_fleet(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let minutes = |m| t0 + Duration::minutes(m);
    let second = Duration::seconds(1);
    let mut b = Setup::tenant(store, &fx).await;
    let (b_fleet, _, _) = b.fleet().await;
    let b_scan = b.scan(&b_fleet).await;
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let (fleet, _, _) = setup.fleet().await;
    let agent = setup.agent(&fleet).await;
    let (other_fleet, _, _) = setup.fleet().await;
    let other_agent = setup.agent(&other_fleet).await;
    let (empty_fleet, _, _) = setup.fleet().await;
    let idle = setup.agent(&empty_fleet).await;

    let of_other_fleet = setup.scan(&other_fleet).await;
    let constrained = |not_before, not_after| ScanConstraints {
        not_before,
        not_after,
        ..ScanConstraints::default()
    };
    let late = setup
        .add_scan(fx.scan(
            &fleet,
            Scenario::Inventory,
            constrained(Some(minutes(10)), None),
        ))
        .await;
    let first = setup.scan(&fleet).await;
    let next = setup.scan(&fleet).await;
    let window = setup
        .add_scan(fx.scan(
            &fleet,
            Scenario::Ports,
            constrained(Some(minutes(20)), Some(minutes(30))),
        ))
        .await;
    let gone = setup
        .add_scan(fx.scan(&fleet, Scenario::Software, constrained(None, Some(t0))))
        .await;

    assert_eq!(
        setup.claim(&claims, &idle, t0).await,
        None,
        "a fleet without scans has nothing to claim"
    );
    setup.claim_exactly(&claims, &agent, &first, t0).await;
    setup.claim_exactly(&claims, &agent, &next, t0).await;
    assert_eq!(
        setup.claim(&claims, &agent, t0).await,
        None,
        "nothing claimable: one scan not before its not_before, one at its not_after"
    );
    assert_eq!(
        setup.claim(&claims, &agent, minutes(10) - second).await,
        None,
        "one second before not_before"
    );
    setup
        .claim_exactly(&claims, &agent, &late, minutes(10))
        .await;
    assert_eq!(
        setup.claim(&claims, &agent, minutes(30)).await,
        None,
        "at exactly not_after"
    );
    setup
        .claim_exactly(&claims, &agent, &window, minutes(30) - second)
        .await;
    assert_eq!(
        setup.claim(&claims, &agent, minutes(60 * 24)).await,
        None,
        "every claimable scan of the fleet is taken"
    );
    assert_eq!(
        store.get_scan(t, gone.id).await.must("get_scan"),
        gone,
        "a scan past its not_after stays queued: claiming expires nothing"
    );
    assert_eq!(
        store.get_scan(b.id(), b_scan.id).await.must("get_scan"),
        b_scan,
        "another tenant's older scan is untouched"
    );
    let running = setup
        .claim_exactly(&claims, &other_agent, &of_other_fleet, t0)
        .await;
    assert_eq!(
        store
            .get_scan(t, of_other_fleet.id)
            .await
            .must("get_scan of a claimed scan"),
        running,
        "a claimed scan reads back running, claimed by its agent"
    );
    let running = scans_of(
        store,
        t,
        &ScanFilter {
            status: Some(ScanStatus::Running),
            ..ScanFilter::default()
        },
    )
    .await;
    let mut want = vec![window.id, next.id, first.id, late.id, of_other_fleet.id];
    want.sort_by_key(|id| std::cmp::Reverse(*id));
    assert_eq!(
        running.iter().map(|s| s.id).collect::<Vec<_>>(),
        want,
        "exactly the claimed scans are running"
    );
    setup.check_log("after the claims").await;
    b.check_log("of the other tenant").await;
}

/// How many agents claim at once in the concurrency case, and how many scans they race
/// for.
const CONCURRENT_CLAIMS: usize = 20;
/// See [`CONCURRENT_CLAIMS`].
const QUEUED_FOR_CLAIMS: usize = 10;

/// Twenty agents of one fleet claim at once on ten queued scans: exactly ten claims get
/// a scan, each a different one, claimed by that agent; the other ten get `None`; every
/// scan is running once, with one `scan.claimed` event each.
pub async fn claim_concurrent_never_shares_a_scan(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, _, _) = setup.fleet().await;
    let (_, secret) = setup
        .add_enrollment_token(fx.enrollment_token_with(
            &fleet,
            CONCURRENT_CLAIMS as u32,
            t0 + Duration::days(1),
        ))
        .await;
    let maker = AgentMaker::new(&fx, t0);
    let mut agents = Vec::new();
    for _ in 0..CONCURRENT_CLAIMS {
        agents.push(setup.enroll(&maker, &secret.digest()).await.0);
    }
    let mut queued = Vec::new();
    for _ in 0..QUEUED_FOR_CLAIMS {
        queued.push(setup.scan(&fleet).await);
    }
    let claims = Auditor::claims(&fx);

    // All calls borrow one store and run at once: on a pooled backend each holds its
    // own connection, so the claims really race.
    let outcomes = join_all(agents.iter().map(|agent| claims.claim(store, agent, t0))).await;
    let mut claimed = Vec::new();
    for (agent, outcome) in agents.iter().zip(outcomes) {
        if let Some(scan) = outcome {
            let want = queued
                .iter()
                .find(|q| q.id == scan.id)
                .unwrap_or_else(|| panic!("claim_scan returned a scan never queued: {scan:?}"));
            assert_eq!(
                scan,
                Scan {
                    status: ScanStatus::Running,
                    claimed_by: Some(agent.id),
                    claimed_at: Some(t0),
                    ..want.clone()
                },
                "a concurrent claim returns its scan running, claimed by the calling agent"
            );
            claimed.push(scan);
        }
    }
    assert_eq!(
        claimed.len(),
        QUEUED_FOR_CLAIMS,
        "{CONCURRENT_CLAIMS} concurrent claims on {QUEUED_FOR_CLAIMS} scans: exactly \
         {QUEUED_FOR_CLAIMS} get one, the rest None"
    );
    let ids: BTreeSet<ScanId> = claimed.iter().map(|s| s.id).collect();
    assert_eq!(
        ids,
        queued.iter().map(|s| s.id).collect(),
        "each queued scan is claimed exactly once: no two claims share a scan"
    );
    for scan in &claimed {
        assert_eq!(
            &store.get_scan(t, scan.id).await.must("get_scan"),
            scan,
            "the stored scan is the claim that returned it"
        );
    }
    setup.logged_all(claimed.iter().map(|s| claims.event_for(s)));
    setup.check_log("after concurrent claims").await;
}

/// `complete_scan` by the claiming agent completes a running scan: it returns the scan
/// completed at `at` (claim kept), which reads back so, and its artifacts read back
/// exactly (the bundle byte for byte); one `scan.completed` event is recorded. A scan
/// that is queued or running has no artifacts (`None`).
pub async fn complete_scan_stores_artifacts_exactly(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let (fleet, _, _) = setup.fleet().await;
    let agent = setup.agent(&fleet).await;
    let scan = setup.scan(&fleet).await;
    let still_running = setup.scan(&fleet).await;
    let queued = setup.scan(&fleet).await;
    let running = setup.claim_exactly(&claims, &agent, &scan, t0).await;
    let still_running = setup
        .claim_exactly(&claims, &agent, &still_running, t0)
        .await;

    let at = t0 + Duration::minutes(7);
    let artifacts = fx.artifacts();
    let completed = setup.complete(&agent, &running, at, &artifacts).await;
    let want = Scan {
        status: ScanStatus::Completed,
        finished_at: Some(at),
        ..running
    };
    assert_eq!(completed, want, "complete_scan returns the completed scan");
    assert_eq!(
        store.get_scan(t, scan.id).await.must("get_scan"),
        want,
        "the completed scan reads back so"
    );
    let stored = store
        .get_scan_artifacts(t, scan.id)
        .await
        .must("get_scan_artifacts")
        .unwrap_or_else(|| panic!("a completed scan must have its artifacts"));
    assert_eq!(
        stored.bundle_json.as_bytes(),
        artifacts.bundle_json.as_bytes(),
        "the bundle reads back byte for byte as hashed"
    );
    assert_eq!(stored, artifacts, "every artifact reads back as stored");
    for (what, id) in [("running", still_running.id), ("queued", queued.id)] {
        assert_eq!(
            store
                .get_scan_artifacts(t, id)
                .await
                .must("get_scan_artifacts"),
            None,
            "a {what} scan has no artifacts"
        );
    }
    setup.check_log("after complete_scan").await;
}

/// Results keep every string the domain allows, on every store: each control
/// character but NUL, a NUL an agent turned into U+FFFD (`Text::from`), line and
/// paragraph separators, astral characters. PostgreSQL's `jsonb` refuses only U+0000,
/// which no `Text` holds, so a valid upload never becomes a store error (a 500 the
/// agent would retry for ever).
pub async fn complete_scan_keeps_any_text_the_domain_allows(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let (fleet, _, _) = setup.fleet().await;
    let agent = setup.agent(&fleet).await;
    let scan = setup.scan(&fleet).await;
    let running = setup.claim_exactly(&claims, &agent, &scan, t0).await;
    let controls: String = (1u8..0x20).map(char::from).chain(['\u{7f}']).collect();
    let results = ScanResults {
        assets: vec![Asset {
            hostname: Text::from("host\0name"),
            ip: "10.0.0.1".into(),
            os: Text::from(controls.as_str()),
            open_ports: vec![22],
            listeners: vec![],
            os_hostname: None,
            software: vec![Software {
                name: "\u{2028}\u{2029}\u{feff}".into(),
                version: "🦀".into(),
            }],
        }],
        findings: vec![Finding {
            severity: Severity::High,
            title: "banner \0 with a NUL".into(),
            asset_hostname: Some(Text::from("host\0name")),
            detail: Some(Text::from(format!("a\0b{controls}\\u0000").as_str())),
        }],
    };
    results.validate(None).expect("the results are valid");
    let artifacts = fx.artifacts_of(&results);
    setup
        .complete(&agent, &running, t0 + Duration::minutes(1), &artifacts)
        .await;
    let stored = store
        .get_scan_artifacts(t, scan.id)
        .await
        .must("get_scan_artifacts")
        .unwrap_or_else(|| panic!("a completed scan must have its artifacts"));
    assert_eq!(stored, artifacts, "every artifact reads back as stored");
    let reparsed: ScanResults =
        serde_json::from_str(&stored.bundle_json).expect("the bundle parses");
    assert_eq!(reparsed, results, "the bundle holds the text as sent");
    setup.check_log("after complete_scan").await;
}

/// Only the agent that claimed a scan completes it: another agent of the fleet, an
/// agent of another fleet, an unclaimed scan and an unknown scan are all `NotFound`, and
/// none of them changes the scan, stores artifacts or writes an event.
pub async fn complete_scan_only_by_its_agent(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let (fleet, _, _) = setup.fleet().await;
    let (other_fleet, _, _) = setup.fleet().await;
    let owner = setup.agent(&fleet).await;
    let peer = setup.agent(&fleet).await;
    let stranger = setup.agent(&other_fleet).await;
    let scan = setup.scan(&fleet).await;
    let running = setup.claim_exactly(&claims, &owner, &scan, t0).await;
    let unclaimed = setup.scan(&fleet).await;
    let unknown = ScanId::from_uuid(fx.id());

    for (what, agent, id) in [
        ("another agent of the fleet", &peer, scan.id),
        ("an agent of another fleet", &stranger, scan.id),
        ("its agent, on an unclaimed scan", &owner, unclaimed.id),
        ("its agent, on an unknown scan", &owner, unknown),
    ] {
        let audit = fx.audit_by(
            t,
            AuditActor::Agent(agent.id.as_uuid()),
            actions::SCAN_COMPLETED,
            Some(id.as_uuid()),
            t0,
        );
        store
            .complete_scan(agent.id, id, t0, &fx.artifacts(), &audit)
            .await
            .must_be_not_found(&format!("complete_scan by {what}"));
    }
    for (what, want) in [("claimed", &running), ("unclaimed", &unclaimed)] {
        assert_eq!(
            &store.get_scan(t, want.id).await.must("get_scan"),
            want,
            "a refused completion leaves the {what} scan unchanged"
        );
        assert_eq!(
            store
                .get_scan_artifacts(t, want.id)
                .await
                .must("get_scan_artifacts"),
            None,
            "a refused completion stores no artifacts"
        );
    }
    setup.check_log("after refused completions").await;
    setup
        .complete(&owner, &running, t0 + Duration::minutes(1), &fx.artifacts())
        .await;
    setup.check_log("after the claiming agent completed").await;
}

/// A scan claimed by the agent but no longer running is `Conflict(SCAN_NOT_RUNNING)`:
/// completing twice (the first artifacts and `finished_at` stay) and completing a scan
/// the sweeper failed (it stays failed, without artifacts). Refusals write no event.
pub async fn complete_scan_only_while_running(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let sweeps = Auditor::sweeps(&fx);
    let (fleet, _, _) = setup.fleet().await;
    let agent = setup.agent(&fleet).await;
    let done = setup.scan(&fleet).await;
    let late = setup
        .add_scan(fx.scan(&fleet, Scenario::Inventory, Fixtures::max_duration(30)))
        .await;
    let done = setup.claim_exactly(&claims, &agent, &done, t0).await;
    let late = setup.claim_exactly(&claims, &agent, &late, t0).await;

    let first = fx.artifacts();
    let completed = setup
        .complete(&agent, &done, t0 + Duration::minutes(5), &first)
        .await;
    let deadline = t0 + Duration::minutes(30);
    assert_eq!(
        sweeps.sweep(store, deadline).await,
        1,
        "the sweep fails the late scan"
    );
    let failed = swept(&late, ScanStatus::Failed, deadline);
    setup.logged(&sweeps.event_for(&failed));

    for (what, id) in [
        ("a completed scan (completing twice)", done.id),
        ("a scan the sweeper failed", late.id),
    ] {
        let audit = fx.audit_by(
            t,
            AuditActor::Agent(agent.id.as_uuid()),
            actions::SCAN_COMPLETED,
            Some(id.as_uuid()),
            deadline,
        );
        store
            .complete_scan(agent.id, id, deadline, &fx.artifacts(), &audit)
            .await
            .must_conflict(
                constraint::SCAN_NOT_RUNNING,
                &format!("complete_scan of {what}"),
            );
    }
    assert_eq!(
        store.get_scan(t, done.id).await.must("get_scan"),
        completed,
        "completing twice keeps the first completion"
    );
    assert_eq!(
        store
            .get_scan_artifacts(t, done.id)
            .await
            .must("get_scan_artifacts"),
        Some(first),
        "completing twice keeps the first artifacts"
    );
    assert_eq!(
        store.get_scan(t, late.id).await.must("get_scan"),
        failed,
        "a failed scan stays failed"
    );
    assert_eq!(
        store
            .get_scan_artifacts(t, late.id)
            .await
            .must("get_scan_artifacts"),
        None,
        "a failed scan has no artifacts"
    );
    setup.check_log("after refused completions").await;
}

/// The sweeper fails a running scan at exactly `claimed_at + max_duration` (the default
/// hour when none is set; not one second before) and expires a queued scan at exactly
/// `not_after` (not one second before), of any tenant, with `finished_at = now` and one
/// event each built from the scan as changed (`scan.failed` / `scan.expired`, by the
/// system); it returns how many moved. A second sweep at the same time moves nothing,
/// and completed scans or scans without a deadline are never moved.
pub async fn sweep_fails_and_expires_at_deadlines(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let minutes = |m| t0 + Duration::minutes(m);
    let second = Duration::seconds(1);
    let mut setup = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let sweeps = Auditor::sweeps(&fx);
    let (fleet, _, _) = setup.fleet().await;
    let agent = setup.agent(&fleet).await;
    let short = setup
        .add_scan(fx.scan(&fleet, Scenario::Inventory, Fixtures::max_duration(30)))
        .await;
    let default_limit = setup.scan(&fleet).await;
    let finished = setup.scan(&fleet).await;
    let short = setup.claim_exactly(&claims, &agent, &short, t0).await;
    let default_limit = setup
        .claim_exactly(&claims, &agent, &default_limit, t0)
        .await;
    let finished = setup.claim_exactly(&claims, &agent, &finished, t0).await;
    let finished = setup
        .complete(&agent, &finished, minutes(1), &fx.artifacts())
        .await;
    let until_45 = ScanConstraints {
        not_after: Some(minutes(45)),
        ..ScanConstraints::default()
    };
    let expiring = setup
        .add_scan(fx.scan(&fleet, Scenario::Ports, until_45.clone()))
        .await;
    let forever = setup.scan(&fleet).await;
    let (b_fleet, _, _) = b.fleet().await;
    let b_expiring = b
        .add_scan(fx.scan(&b_fleet, Scenario::Ports, until_45))
        .await;

    let sweep = async |now: Timestamp, moves: usize, what: &str| {
        assert_eq!(
            sweeps.sweep(store, now).await,
            moves,
            "sweep_scans at {now}: {what}"
        );
    };
    sweep(
        minutes(30) - second,
        0,
        "one second before the first deadline",
    )
    .await;
    sweep(
        minutes(30),
        1,
        "the 30-minute scan fails at exactly its deadline",
    )
    .await;
    let failed_short = swept(&short, ScanStatus::Failed, minutes(30));
    sweep(
        minutes(30),
        0,
        "a second sweep at the same time moves nothing",
    )
    .await;
    sweep(minutes(45) - second, 0, "one second before not_after").await;
    sweep(
        minutes(45),
        2,
        "both tenants' queued scans expire at exactly not_after",
    )
    .await;
    let expired = swept(&expiring, ScanStatus::Expired, minutes(45));
    let b_expired = swept(&b_expiring, ScanStatus::Expired, minutes(45));
    sweep(
        minutes(60) - second,
        0,
        "one second before the default hour",
    )
    .await;
    sweep(
        minutes(60),
        1,
        "a scan without a limit fails after the default hour",
    )
    .await;
    let failed_default = swept(&default_limit, ScanStatus::Failed, minutes(60));
    sweep(t0 + Duration::days(365), 0, "nothing else is ever overdue").await;

    for want in [
        &failed_short,
        &expired,
        &failed_default,
        &finished,
        &forever,
    ] {
        assert_eq!(
            &store.get_scan(t, want.id).await.must("get_scan"),
            want,
            "each scan after the sweeps"
        );
    }
    assert_eq!(
        store.get_scan(b.id(), b_expiring.id).await.must("get_scan"),
        b_expired,
        "the other tenant's scan expired too"
    );
    for want in [&failed_short, &expired, &failed_default] {
        setup.logged(&sweeps.event_for(want));
    }
    b.logged(&sweeps.event_for(&b_expired));
    setup.check_log("after the sweeps").await;
    b.check_log("of the other tenant").await;
}

/// How many sweeps run at once in the concurrency case, and how many overdue scans
/// they share.
const CONCURRENT_SWEEPS: usize = 5;
/// See [`CONCURRENT_SWEEPS`].
const OVERDUE_FOR_SWEEPS: usize = 10;

/// Five sweeps at once over ten overdue scans move each scan exactly once: their counts
/// add up to ten, and each scan has exactly one `scan.expired` event.
pub async fn sweep_concurrent_moves_each_scan_once(store: &dyn Store) {
    let fx = Fixtures::new();
    let deadline = fx.now() + Duration::hours(1);
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, _, _) = setup.fleet().await;
    let sweeps = Auditor::sweeps(&fx);
    let mut queued = Vec::new();
    for _ in 0..OVERDUE_FOR_SWEEPS {
        let constraints = ScanConstraints {
            not_after: Some(deadline),
            ..ScanConstraints::default()
        };
        queued.push(
            setup
                .add_scan(fx.scan(&fleet, Scenario::Inventory, constraints))
                .await,
        );
    }

    let counts = join_all((0..CONCURRENT_SWEEPS).map(|_| sweeps.sweep(store, deadline))).await;
    assert_eq!(
        counts.iter().sum::<usize>(),
        OVERDUE_FOR_SWEEPS,
        "{CONCURRENT_SWEEPS} concurrent sweeps over {OVERDUE_FOR_SWEEPS} overdue scans \
         move each once (counts: {counts:?})"
    );
    let expired: Vec<Scan> = queued
        .iter()
        .map(|s| swept(s, ScanStatus::Expired, deadline))
        .collect();
    for want in &expired {
        assert_eq!(
            &store.get_scan(t, want.id).await.must("get_scan"),
            want,
            "each overdue scan expired"
        );
    }
    setup.logged_all(expired.iter().map(|s| sweeps.event_for(s)));
    setup.check_log("after concurrent sweeps").await;
}

//! The contract cases of the service-wide counts `/metrics` shows.

use fleetpass_domain::audit::actions;
use fleetpass_domain::scan::{Scan, ScanConstraints, ScanStatus};
use fleetpass_ports::Store;
use fleetpass_ports::store::{LastSeen, ServiceStats};
use time::Duration;

use crate::fixtures::Fixtures;
use crate::support::{Auditor, Must, Setup};

fn scans(stats: &ServiceStats, status: ScanStatus) -> u64 {
    stats
        .scans
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("service_stats must list {status:?}"))
}

fn agents(stats: &ServiceStats, bucket: LastSeen) -> u64 {
    stats
        .agents
        .iter()
        .find(|(b, _)| *b == bucket)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("service_stats must list {bucket:?}"))
}

/// `service_stats` counts the rows of every tenant: scans by status (every status
/// listed, zeros too), the oldest scan an agent could claim now (not one whose
/// `notBefore` is still ahead, however old), and the agents that are not revoked by how
/// long ago they were last seen.
pub async fn service_stats_count_every_tenant(store: &dyn Store) {
    let fx = Fixtures::new();
    let now = fx.now();
    let empty = store.service_stats(now).await.must("service_stats");
    assert_eq!(
        empty.scans.len(),
        ScanStatus::ALL.len(),
        "every status listed"
    );
    assert_eq!(
        empty.agents.len(),
        LastSeen::ALL.len(),
        "every bucket listed"
    );
    assert!(
        empty.scans.iter().all(|(_, n)| *n == 0),
        "an empty store has no scans"
    );
    assert!(
        empty.agents.iter().all(|(_, n)| *n == 0),
        "an empty store has no agents"
    );
    assert_eq!(empty.oldest_claimable, None);

    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let (fleet_a, _, _) = a.fleet().await;
    let (fleet_b, _, _) = b.fleet().await;
    let claimable = a
        .add_scan(Scan {
            requested_at: now - Duration::minutes(10),
            ..fx.plain_scan(&fleet_a)
        })
        .await;
    a.add_scan(Scan {
        requested_at: now - Duration::minutes(20),
        constraints: ScanConstraints {
            not_before: Some(now + Duration::hours(1)),
            ..ScanConstraints::default()
        },
        ..fx.plain_scan(&fleet_a)
    })
    .await;
    let other_tenant = b
        .add_scan(Scan {
            requested_at: now - Duration::minutes(5),
            ..fx.plain_scan(&fleet_b)
        })
        .await;
    let seen_now = a.agent(&fleet_a).await;
    let seen_earlier = a.agent(&fleet_a).await;
    let revoked = a.agent(&fleet_a).await;
    b.agent(&fleet_b).await;
    let claims = Auditor::claims(&fx);
    a.claim_exactly(&claims, &seen_now, &claimable, now).await;
    for (agent, at) in [
        (&seen_now, now - Duration::seconds(30)),
        (&seen_earlier, now - Duration::minutes(10)),
        (&revoked, now),
    ] {
        store
            .record_heartbeat(agent.id, at, None)
            .await
            .must("record_heartbeat");
    }
    let audit = a.audit(actions::AGENT_REVOKED, revoked.id.as_uuid());
    store
        .revoke_agent(a.id(), revoked.id, now, &audit)
        .await
        .must("revoke_agent");

    let stats = store.service_stats(now).await.must("service_stats");
    assert_eq!(
        (
            scans(&stats, ScanStatus::Queued),
            scans(&stats, ScanStatus::Running),
            scans(&stats, ScanStatus::Completed),
        ),
        (2, 1, 0),
        "scans of both tenants by status"
    );
    assert_eq!(
        stats.oldest_claimable,
        Some(other_tenant.requested_at),
        "the oldest claimable scan (not the older one waiting for its notBefore)"
    );
    assert_eq!(
        LastSeen::ALL.map(|bucket| agents(&stats, bucket)),
        [1, 0, 1, 0, 1],
        "agents by last seen (the revoked one not counted)"
    );
}

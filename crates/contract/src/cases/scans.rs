//! The contract cases of requesting, reading and listing scans.

use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::fleet::Fleet;
use fleetpass_domain::ids::{EnvironmentId, FleetId, ScanId};
use fleetpass_domain::scan::{Scan, ScanConstraints, ScanStatus, Scenario};
use fleetpass_ports::Store;
use fleetpass_ports::store::ScanFilter;
use time::Duration;

use super::{filtered, scans_of, share_links_of};
use crate::fixtures::Fixtures;
use crate::support::{Auditor, Must, Setup, first_page, pages};

/// A requested scan reads back exactly as written (every constraint kept), is listed,
/// has neither artifacts nor share links yet, and records one `scan.requested` event;
/// an unknown scan id is `NotFound` for every scan read.
pub async fn scan_create_then_read(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, _, _) = setup.fleet().await;
    let constraints = Fixtures::constraints(
        90,
        fx.now() + Duration::minutes(5),
        fx.now() + Duration::hours(3),
    );
    let constrained = setup
        .add_scan(fx.scan(&fleet, Scenario::Compliance, constraints))
        .await;
    let plain = setup.scan(&fleet).await;

    for scan in [&constrained, &plain] {
        assert_eq!(
            store.get_scan(t, scan.id).await.must("get_scan"),
            *scan,
            "get_scan reads the scan back as written"
        );
        assert_eq!(
            store
                .get_scan_artifacts(t, scan.id)
                .await
                .must("get_scan_artifacts"),
            None,
            "a queued scan has no artifacts"
        );
        assert_eq!(
            share_links_of(store, t, scan.id).await,
            vec![],
            "a new scan has no share links"
        );
    }
    assert_eq!(
        scans_of(store, t, &ScanFilter::default()).await,
        vec![plain, constrained],
        "list_scans lists both, newest first"
    );

    let unknown = ScanId::from_uuid(fx.id());
    store
        .get_scan(t, unknown)
        .await
        .must_be_not_found("get_scan of an unknown id");
    store
        .get_scan_artifacts(t, unknown)
        .await
        .must_be_not_found("get_scan_artifacts of an unknown scan");
    store
        .list_share_links(t, unknown, first_page(10))
        .await
        .must_be_not_found("list_share_links of an unknown scan");
    setup.check_log("after create_scan").await;
}

/// A scan of another tenant's fleet, or of an unknown fleet, is `NotFound`, and nothing
/// of it is stored: it cannot be read, listed or claimed, and has no audit event.
pub async fn scan_create_refuses_foreign_fleet(store: &dyn Store) {
    let fx = Fixtures::new();
    let a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let (foreign, _, _) = b.fleet().await;
    let foreign_agent = b.agent(&foreign).await;
    let claims = Auditor::claims(&fx);

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
        let scan = fx.plain_scan(&fleet);
        let audit = a.audit(actions::SCAN_REQUESTED, scan.id.as_uuid());
        store
            .create_scan(&scan, &fleetpass_domain::scan::ScanTarget::Any, &audit)
            .await
            .must_be_not_found(&format!("create_scan in {what}"));
        for tenant in [a.id(), b.id()] {
            store
                .get_scan(tenant, scan.id)
                .await
                .must_be_not_found("the refused scan");
        }
    }
    assert_eq!(
        b.claim(&claims, &foreign_agent, fx.now()).await,
        None,
        "the fleet's own agent finds no refused scan to claim"
    );
    for tenant in [a.id(), b.id()] {
        assert_eq!(
            scans_of(store, tenant, &ScanFilter::default()).await,
            vec![],
            "no tenant lists a refused scan"
        );
    }
    a.check_log("of tenant A").await;
    b.check_log("of tenant B").await;
}

/// `list_scans` applies every filter field (fleet, status, scenario, environments), alone
/// and together, before paginating: each listing, fetched two at a time, has full pages
/// and holds exactly the tenant's matching scans, newest first. Another tenant's fleet
/// or environment matches none of the tenant's scans, and each tenant lists its own.
pub async fn scan_list_filters_before_paging(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let (x, y) = (a.environment().await.id, a.environment().await.id);
    let (f1, _, _) = a.fleet_in(x).await;
    let (f2, _, _) = a.fleet_in(y).await;
    let (agent1, agent2) = (a.agent(&f1).await, a.agent(&f2).await);
    let claims = Auditor::claims(&fx);
    let later = ScanConstraints {
        not_before: Some(fx.now() + Duration::hours(1)),
        ..ScanConstraints::default()
    };
    let scenarios = [Scenario::Inventory, Scenario::Ports, Scenario::Software];

    // Interleaved fleets, scenarios and (after the claims) statuses, so a store that
    // pages before filtering returns short pages.
    let mut rows = Vec::new();
    for i in 0..16 {
        let fleet = if i % 2 == 0 { &f1 } else { &f2 };
        let constraints = if i % 4 < 2 {
            ScanConstraints::default()
        } else {
            later.clone()
        };
        rows.push(
            a.add_scan(fx.scan(fleet, scenarios[i % 3], constraints))
                .await,
        );
    }
    let mut claimed = Vec::new();
    for agent in [&agent1, &agent2] {
        while let Some(scan) = a.claim(&claims, agent, fx.now()).await {
            claimed.push(scan);
        }
    }
    assert_eq!(claimed.len(), 8, "each fleet has four claimable scans");
    let to_complete: Vec<Scan> = claimed
        .iter()
        .filter(|s| s.fleet_id == f1.id)
        .take(2)
        .cloned()
        .collect();
    for scan in &to_complete {
        let done = a
            .complete(
                &agent1,
                scan,
                fx.now() + Duration::minutes(10),
                &fx.artifacts(),
            )
            .await;
        claimed.push(done);
    }
    // The rows as they now are: the last state of each scan wins.
    for scan in claimed {
        if let Some(row) = rows.iter_mut().find(|r| r.id == scan.id) {
            *row = scan;
        }
    }
    let (foreign, _, _) = b.fleet().await;
    let foreign_scan = b.scan(&foreign).await;

    let production = a.new.environment.id;
    let by = |fleet: Option<FleetId>,
              status: Option<ScanStatus>,
              scenario: Option<Scenario>,
              environments: Option<Vec<EnvironmentId>>| ScanFilter {
        fleet,
        status,
        scenario,
        environments,
    };
    let mut filters = vec![
        by(None, None, None, None),
        by(Some(f1.id), None, None, None),
        by(Some(f2.id), None, None, None),
        by(None, None, None, Some(vec![x])),
        by(None, None, None, Some(vec![y])),
        by(None, None, None, Some(vec![y, x])),
        by(None, None, None, Some(vec![])),
        by(None, None, None, Some(vec![production])),
        by(None, None, None, Some(vec![foreign.environment_id])),
        by(Some(foreign.id), None, None, None),
        by(Some(f1.id), Some(ScanStatus::Running), None, None),
        by(Some(f1.id), None, None, Some(vec![y])),
        by(
            None,
            Some(ScanStatus::Queued),
            Some(Scenario::Ports),
            Some(vec![x, y]),
        ),
        by(
            Some(f2.id),
            Some(ScanStatus::Running),
            Some(Scenario::Inventory),
            Some(vec![y]),
        ),
    ];
    for status in [
        ScanStatus::Queued,
        ScanStatus::Running,
        ScanStatus::Completed,
        ScanStatus::Failed,
        ScanStatus::Expired,
    ] {
        filters.push(by(None, Some(status), None, None));
    }
    for scenario in [
        Scenario::Inventory,
        Scenario::Ports,
        Scenario::Software,
        Scenario::Compliance,
    ] {
        filters.push(by(None, None, Some(scenario), None));
    }
    let scan_id = |s: &Scan| s.id.as_uuid();
    for filter in &filters {
        let what = format!("list_scans({filter:?})");
        let got: Vec<Scan> = pages(&what, 2, |p| store.list_scans(a.id(), filter, p), scan_id)
            .await
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(
            got,
            filtered(&rows, filter),
            "{what}: exactly the tenant's scans that pass every field, newest first"
        );
    }
    assert!(
        filters
            .iter()
            .any(|f| filtered(&rows, f).len() >= 5 && filtered(&rows, f).len() < rows.len()),
        "the data set must make some filtered listing span several pages"
    );
    assert_eq!(
        scans_of(store, b.id(), &ScanFilter::default()).await,
        vec![foreign_scan],
        "each tenant lists only its own scans"
    );
    a.check_log("of tenant A").await;
    b.check_log("of tenant B").await;
}

/// Every scan read and write through another tenant is `NotFound` and changes nothing:
/// `get_scan`, `get_scan_artifacts`, `list_share_links`, `complete_scan` by another
/// tenant's agent; another tenant's listing never shows the scan, whatever it filters
/// on, and its agents never claim it.
pub async fn scan_cross_tenant_is_not_found(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let claims = Auditor::claims(&fx);
    let (fleet, _, _) = a.fleet().await;
    let agent = a.agent(&fleet).await;
    let scan = a.scan(&fleet).await;
    let running = a.claim_exactly(&claims, &agent, &scan, fx.now()).await;
    let artifacts = fx.artifacts();
    let done = a
        .complete(
            &agent,
            &running,
            fx.now() + Duration::minutes(5),
            &artifacts,
        )
        .await;
    let queued = a.scan(&fleet).await;
    let (b_fleet, _, _) = b.fleet().await;
    let b_agent = b.agent(&b_fleet).await;
    let other = b.id();

    for id in [done.id, queued.id] {
        store
            .get_scan(other, id)
            .await
            .must_be_not_found("get_scan via another tenant");
        store
            .get_scan_artifacts(other, id)
            .await
            .must_be_not_found("get_scan_artifacts via another tenant");
        store
            .list_share_links(other, id, first_page(10))
            .await
            .must_be_not_found("list_share_links via another tenant");
    }
    let audit = fx.audit_by(
        other,
        AuditActor::Agent(b_agent.id.as_uuid()),
        actions::SCAN_COMPLETED,
        Some(queued.id.as_uuid()),
        fx.now(),
    );
    store
        .complete_scan(b_agent.id, queued.id, fx.now(), &fx.artifacts(), &audit)
        .await
        .must_be_not_found("complete_scan by another tenant's agent");
    assert_eq!(
        b.claim(&claims, &b_agent, fx.now()).await,
        None,
        "another tenant's agent never claims the tenant's scan"
    );
    for filter in [
        ScanFilter::default(),
        ScanFilter {
            fleet: Some(fleet.id),
            ..ScanFilter::default()
        },
        ScanFilter {
            environments: Some(vec![fleet.environment_id]),
            ..ScanFilter::default()
        },
    ] {
        assert_eq!(
            scans_of(store, other, &filter).await,
            vec![],
            "list_scans({filter:?}) of another tenant"
        );
    }

    assert_eq!(
        store.get_scan(a.id(), queued.id).await.must("get_scan"),
        queued,
        "the queued scan is untouched"
    );
    assert_eq!(
        store
            .get_scan_artifacts(a.id(), done.id)
            .await
            .must("get_scan_artifacts"),
        Some(artifacts),
        "the completed scan keeps its artifacts"
    );
    assert_eq!(
        scans_of(store, a.id(), &ScanFilter::default()).await,
        vec![queued, done],
        "the owning tenant lists both"
    );
    a.check_log("of the owning tenant").await;
    b.check_log("of the other tenant").await;
}

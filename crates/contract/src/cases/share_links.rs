//! The contract cases of share links.

use std::collections::BTreeSet;

use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::ids::{ScanId, ShareLinkId};
use fleetpass_domain::scan::{Scan, ScanConstraints, Scenario};
use fleetpass_domain::secret::SecretKind;
use fleetpass_domain::share::{Artifact, ShareLink};
use fleetpass_ports::Store;
use fleetpass_ports::store::{ScanFilter, ShareAccess};
use futures_util::future::join_all;
use time::Duration;

use super::{accessed, completed_scan, opened, scans_of, share_links_of};
use crate::fixtures::Fixtures;
use crate::support::{AgentMaker, Auditor, Must, Setup, expect_pages_of_five, first_page, pages};

/// Share links read back exactly as written (each with its own scope, label, expiry and
/// limit), list newest first per scan, two at a time with full pages, and record one
/// `share_link.created` event each; unknown ids are `NotFound`.
pub async fn share_link_create_then_read(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, scan) = completed_scan(&mut setup, &fx).await;
    let other = setup.scan(&fleet).await;

    let mut links = Vec::new();
    for (i, scope) in [
        Artifact::Report,
        Artifact::Bundle,
        Artifact::Passport,
        Artifact::Report,
        Artifact::Bundle,
    ]
    .into_iter()
    .enumerate()
    {
        let hours = i64::try_from(i + 1).unwrap_or(1);
        let max = if i % 2 == 0 { None } else { Some(3) };
        let (link, _) = setup
            .add_share_link(fx.share_link_scoped(&scan, scope, max, t0 + Duration::hours(hours)))
            .await;
        links.push(link);
    }
    let (on_other, _) = setup
        .add_share_link(fx.share_link(&other, Some(1), t0 + Duration::days(7)))
        .await;

    for link in links.iter().chain([&on_other]) {
        assert_eq!(
            &store
                .get_share_link(t, link.id)
                .await
                .must("get_share_link"),
            link,
            "get_share_link reads the link back as written"
        );
    }
    let link_id = |l: &ShareLink| l.id.as_uuid();
    let got = pages(
        "list_share_links",
        2,
        |p| store.list_share_links(t, scan.id, p),
        link_id,
    )
    .await;
    expect_pages_of_five(
        "list_share_links of one scan",
        &got,
        link_id,
        links.iter().map(link_id).collect(),
    );
    assert_eq!(
        share_links_of(store, t, other.id).await,
        vec![on_other],
        "each scan lists only its own links"
    );

    let unknown = ShareLinkId::from_uuid(fx.id());
    store
        .get_share_link(t, unknown)
        .await
        .must_be_not_found("get_share_link of an unknown id");
    let audit = setup.audit(actions::SHARE_LINK_REVOKED, unknown.as_uuid());
    store
        .revoke_share_link(t, unknown, t0, &audit)
        .await
        .must_be_not_found("revoke_share_link of an unknown id");
    setup.check_log("after create_share_link").await;
}

/// A share link for another tenant's scan, or for an unknown scan, is `NotFound`, and
/// nothing of it is stored: it cannot be read, listed or opened, and has no event.
pub async fn share_link_create_refuses_foreign_scan(store: &dyn Store) {
    let fx = Fixtures::new();
    let a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let accesses = Auditor::accesses(&fx);
    let (_, foreign) = completed_scan(&mut b, &fx).await;
    let expires = fx.now() + Duration::days(1);

    for (what, scan) in [
        (
            "another tenant's scan",
            Scan {
                tenant_id: a.id(),
                ..foreign.clone()
            },
        ),
        (
            "an unknown scan",
            Scan {
                id: ScanId::from_uuid(fx.id()),
                tenant_id: a.id(),
                ..foreign.clone()
            },
        ),
    ] {
        let (link, secret) = fx.share_link(&scan, None, expires);
        let audit = a.audit(actions::SHARE_LINK_CREATED, link.id.as_uuid());
        store
            .create_share_link(&link, &secret.digest(), &audit)
            .await
            .must_be_not_found(&format!("create_share_link for {what}"));
        for tenant in [a.id(), b.id()] {
            store
                .get_share_link(tenant, link.id)
                .await
                .must_be_not_found("the refused link");
        }
        assert_eq!(
            accesses
                .access(store, &secret.digest(), fx.now(), Artifact::Report)
                .await,
            ShareAccess::Unavailable,
            "the refused link's token must not be stored"
        );
    }
    assert_eq!(
        share_links_of(store, b.id(), foreign.id).await,
        vec![],
        "the foreign scan lists no refused link"
    );
    a.check_log("of tenant A").await;
    b.check_log("of tenant B").await;
}

/// Every share-link read and write through another tenant is `NotFound` and changes
/// nothing: `get_share_link`, `list_share_links`, `revoke_share_link`.
pub async fn share_link_cross_tenant_is_not_found(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let (_, scan) = completed_scan(&mut a, &fx).await;
    let (link, _) = a
        .add_share_link(fx.share_link(&scan, Some(2), fx.now() + Duration::days(1)))
        .await;
    let other = b.id();

    store
        .get_share_link(other, link.id)
        .await
        .must_be_not_found("get_share_link via another tenant");
    store
        .list_share_links(other, scan.id, first_page(10))
        .await
        .must_be_not_found("list_share_links via another tenant");
    let audit = b.audit(actions::SHARE_LINK_REVOKED, link.id.as_uuid());
    store
        .revoke_share_link(other, link.id, fx.now(), &audit)
        .await
        .must_be_not_found("revoke_share_link via another tenant");

    assert_eq!(
        store
            .get_share_link(a.id(), link.id)
            .await
            .must("get_share_link"),
        link,
        "the link is untouched (not revoked)"
    );
    assert_eq!(
        share_links_of(store, a.id(), scan.id).await,
        vec![link],
        "the owning tenant lists the link"
    );
    a.check_log("of the owning tenant").await;
    b.check_log("of the other tenant").await;
}

/// Each open of an active link counts one access at `now` and returns the link as
/// changed with its scan as stored; the link reads back so, and each access records one
/// `share_link.accessed` event (by the public) built from the link as changed. Another
/// link of the scan counts nothing.
pub async fn share_link_access_counts_and_returns_scan(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let accesses = Auditor::accesses(&fx);
    let (_, scan) = completed_scan(&mut setup, &fx).await;
    let (link, secret) = setup
        .add_share_link(fx.share_link(&scan, None, t0 + Duration::days(7)))
        .await;
    let (untouched, _) = setup
        .add_share_link(fx.share_link(&scan, Some(1), t0 + Duration::days(7)))
        .await;

    let mut current = link.clone();
    for (n, (artifact, at)) in [
        (Artifact::Passport, t0 + Duration::hours(1)),
        (Artifact::Report, t0 + Duration::hours(2)),
        (Artifact::Bundle, t0 + Duration::hours(2)),
    ]
    .into_iter()
    .enumerate()
    {
        let n = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let outcome = setup
            .access(&accesses, &secret.digest(), at, artifact)
            .await;
        current = accessed(&link, n, at);
        assert_eq!(
            outcome,
            ShareAccess::Opened(current.clone(), scan.clone()),
            "access {n} ({}) counts one and returns the link as changed with its scan",
            artifact.as_str()
        );
        assert_eq!(
            store
                .get_share_link(t, link.id)
                .await
                .must("get_share_link"),
            current,
            "the link reads back with access {n} counted"
        );
    }
    let mut want = vec![untouched, current];
    want.sort_by_key(|l| std::cmp::Reverse(l.id));
    assert_eq!(
        share_links_of(store, t, scan.id).await,
        want,
        "only the opened link counted accesses"
    );
    setup.check_log("after three accesses").await;
}

/// A link of `max_accesses` m opens exactly m times; every later open is `Unavailable`
/// and writes nothing: the count stays m, `last_accessed_at` stays the m-th access, no
/// event.
pub async fn share_link_access_stops_at_max_accesses(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let accesses = Auditor::accesses(&fx);
    let (_, scan) = completed_scan(&mut setup, &fx).await;
    let (link, secret) = setup
        .add_share_link(fx.share_link(&scan, Some(3), t0 + Duration::days(7)))
        .await;
    let digest = secret.digest();

    for n in 1..=3 {
        let at = t0 + Duration::minutes(i64::from(n));
        let (got, _) = opened(
            setup
                .access(&accesses, &digest, at, Artifact::Passport)
                .await,
            &format!("access {n} of 3"),
        );
        assert_eq!(got, accessed(&link, n, at), "access {n} of 3");
    }
    for (what, artifact) in [
        ("a fourth access", Artifact::Passport),
        ("a fifth access", Artifact::Report),
    ] {
        assert_eq!(
            setup
                .access(&accesses, &digest, t0 + Duration::hours(1), artifact)
                .await,
            ShareAccess::Unavailable,
            "{what} of a link of 3 accesses"
        );
    }
    assert_eq!(
        store
            .get_share_link(t, link.id)
            .await
            .must("get_share_link"),
        accessed(&link, 3, t0 + Duration::minutes(3)),
        "refused accesses count nothing"
    );
    setup.check_log("after accesses past the limit").await;
}

/// A link opens until one second before `expires_at` and is `Unavailable` from
/// `expires_at` on, writing nothing.
pub async fn share_link_access_refused_from_expires_at(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let accesses = Auditor::accesses(&fx);
    let (_, scan) = completed_scan(&mut setup, &fx).await;
    let expires = fx.now() + Duration::hours(1);
    let (link, secret) = setup
        .add_share_link(fx.share_link(&scan, Some(5), expires))
        .await;
    let digest = secret.digest();

    assert_eq!(
        setup
            .access(&accesses, &digest, expires, Artifact::Report)
            .await,
        ShareAccess::Unavailable,
        "access at exactly expires_at"
    );
    let just_before = expires - Duration::seconds(1);
    let (got, _) = opened(
        setup
            .access(&accesses, &digest, just_before, Artifact::Report)
            .await,
        "access one second before expires_at",
    );
    assert_eq!(got, accessed(&link, 1, just_before));
    for at in [expires, expires + Duration::days(1)] {
        assert_eq!(
            setup.access(&accesses, &digest, at, Artifact::Report).await,
            ShareAccess::Unavailable,
            "access at {at}, past expires_at"
        );
    }
    assert_eq!(
        store
            .get_share_link(t, link.id)
            .await
            .must("get_share_link"),
        accessed(&link, 1, just_before),
        "refused accesses count nothing"
    );
    setup.check_log("after expired accesses").await;
}

/// Revoking a link returns it revoked at `at` and records one event; revoking again
/// changes nothing (the first `revoked_at` stays) and records none. A revoked link is
/// `Unavailable` and writes nothing; another link of the scan still opens.
pub async fn share_link_revoke_is_idempotent(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let accesses = Auditor::accesses(&fx);
    let (_, scan) = completed_scan(&mut setup, &fx).await;
    let week = t0 + Duration::days(7);
    let (link, secret) = setup
        .add_share_link(fx.share_link(&scan, Some(5), week))
        .await;
    let (kept, kept_secret) = setup.add_share_link(fx.share_link(&scan, None, week)).await;
    let (_, _) = opened(
        setup
            .access(&accesses, &secret.digest(), t0, Artifact::Passport)
            .await,
        "access before revocation",
    );

    let at = t0 + Duration::minutes(5);
    let audit = setup.audit(actions::SHARE_LINK_REVOKED, link.id.as_uuid());
    let revoked = store
        .revoke_share_link(t, link.id, at, &audit)
        .await
        .must("revoke_share_link");
    setup.logged(&audit);
    let want = ShareLink {
        revoked_at: Some(at),
        ..accessed(&link, 1, t0)
    };
    assert_eq!(revoked, want, "revoke_share_link returns the revoked link");
    let audit = setup.audit(actions::SHARE_LINK_REVOKED, link.id.as_uuid());
    assert_eq!(
        store
            .revoke_share_link(t, link.id, at + Duration::minutes(5), &audit)
            .await
            .must("revoke_share_link twice"),
        want,
        "revoking twice keeps the first revoked_at"
    );
    assert_eq!(
        setup
            .access(&accesses, &secret.digest(), at, Artifact::Report)
            .await,
        ShareAccess::Unavailable,
        "a revoked link"
    );
    assert_eq!(
        store
            .get_share_link(t, link.id)
            .await
            .must("get_share_link"),
        want,
        "a refused access counts nothing"
    );
    let (got, _) = opened(
        setup
            .access(&accesses, &kept_secret.digest(), at, Artifact::Report)
            .await,
        "another link of the scan",
    );
    assert_eq!(got, accessed(&kept, 1, at));
    setup.check_log("after revocations").await;
}

/// A digest that is no share link's token is `Unavailable` for every artifact, even
/// when it is an API token's, an enrollment token's or an agent's secret; nothing is
/// written.
pub async fn share_link_access_unknown_digest_is_unavailable(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let accesses = Auditor::accesses(&fx);
    let (fleet, _, enrollment_secret) = setup.fleet().await;
    let scan = setup.scan(&fleet).await;
    let maker = AgentMaker::new(&fx, fx.now());
    let (_, _, agent_secret) = setup.enroll(&maker, &enrollment_secret.digest()).await;
    setup
        .add_share_link(fx.share_link(&scan, None, fx.now() + Duration::days(1)))
        .await;

    for (what, digest) in [
        (
            "a fresh share token",
            fx.secret_of(SecretKind::Share).digest(),
        ),
        ("an API token's secret", setup.new.digest),
        ("an enrollment token's secret", enrollment_secret.digest()),
        ("an agent's secret", agent_secret.digest()),
    ] {
        for artifact in Artifact::ALL {
            assert_eq!(
                accesses.access(store, &digest, fx.now(), artifact).await,
                ShareAccess::Unavailable,
                "access_share_link with {what} for the {}",
                artifact.as_str()
            );
        }
    }
    setup.check_log("after unknown accesses (no events)").await;
}

/// An active link asked for an artifact beyond its scope is `OutOfScope` with the link
/// as stored, and nothing is written (no access counted, no event); it still opens for
/// the artifacts it grants. An unavailable link is `Unavailable` whatever is asked.
pub async fn share_link_access_out_of_scope_writes_nothing(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let accesses = Auditor::accesses(&fx);
    let (_, scan) = completed_scan(&mut setup, &fx).await;
    let week = t0 + Duration::days(7);
    let (report, report_secret) = setup
        .add_share_link(fx.share_link_scoped(&scan, Artifact::Report, Some(2), week))
        .await;
    let (bundle, bundle_secret) = setup
        .add_share_link(fx.share_link_scoped(&scan, Artifact::Bundle, None, week))
        .await;
    let (digest, bundle_digest) = (report_secret.digest(), bundle_secret.digest());

    for artifact in [Artifact::Bundle, Artifact::Passport] {
        assert_eq!(
            setup.access(&accesses, &digest, t0, artifact).await,
            ShareAccess::OutOfScope(report.clone()),
            "a report link asked for the {}",
            artifact.as_str()
        );
    }
    let (got, _) = opened(
        setup.access(&accesses, &digest, t0, Artifact::Report).await,
        "a report link asked for the report",
    );
    assert_eq!(got, accessed(&report, 1, t0));
    let later = t0 + Duration::minutes(1);
    assert_eq!(
        setup
            .access(&accesses, &digest, later, Artifact::Bundle)
            .await,
        ShareAccess::OutOfScope(accessed(&report, 1, t0)),
        "OutOfScope returns the link as stored, its accesses counted so far"
    );
    opened(
        setup
            .access(&accesses, &digest, later, Artifact::Report)
            .await,
        "the second and last access",
    );
    for artifact in Artifact::ALL {
        assert_eq!(
            setup.access(&accesses, &digest, later, artifact).await,
            ShareAccess::Unavailable,
            "a used-up link asked for the {}",
            artifact.as_str()
        );
    }
    for artifact in [Artifact::Report, Artifact::Bundle] {
        opened(
            setup.access(&accesses, &bundle_digest, t0, artifact).await,
            "a bundle link grants the report and the bundle",
        );
    }
    assert_eq!(
        setup
            .access(&accesses, &bundle_digest, t0, Artifact::Passport)
            .await,
        ShareAccess::OutOfScope(accessed(&bundle, 2, t0)),
        "a bundle link asked for the passport"
    );
    assert_eq!(
        setup
            .access(&accesses, &bundle_digest, week, Artifact::Passport)
            .await,
        ShareAccess::Unavailable,
        "an expired link is Unavailable, whatever is asked"
    );
    let mut want = vec![accessed(&report, 2, later), accessed(&bundle, 2, t0)];
    want.sort_by_key(|l| std::cmp::Reverse(l.id));
    assert_eq!(
        share_links_of(store, t, scan.id).await,
        want,
        "only granted accesses were counted"
    );
    setup.check_log("after out-of-scope accesses").await;
}

/// How many opens of one link run at once in the concurrency case, and how many the
/// link allows.
const CONCURRENT_ACCESSES: usize = 20;
/// See [`CONCURRENT_ACCESSES`].
const MAX_FOR_ACCESSES: u32 = 5;

/// Twenty opens at once of a link of five accesses: exactly five open, each counting
/// its own access (1 to 5); the other fifteen are `Unavailable`; the link ends with five
/// accesses and five events.
pub async fn share_link_concurrent_accesses_respect_max(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let accesses = Auditor::accesses(&fx);
    let (_, scan) = completed_scan(&mut setup, &fx).await;
    let (link, secret) = setup
        .add_share_link(fx.share_link(&scan, Some(MAX_FOR_ACCESSES), t0 + Duration::days(1)))
        .await;
    let digest = secret.digest();

    let outcomes = join_all(
        (0..CONCURRENT_ACCESSES).map(|_| accesses.access(store, &digest, t0, Artifact::Bundle)),
    )
    .await;
    let mut links = Vec::new();
    let mut refused = 0;
    for outcome in outcomes {
        match outcome {
            ShareAccess::Opened(got, got_scan) => {
                assert_eq!(got_scan, scan, "an access returns the link's scan");
                links.push(got);
            }
            ShareAccess::Unavailable => refused += 1,
            other @ ShareAccess::OutOfScope(_) => {
                panic!("a passport link grants the bundle, got {other:?}")
            }
        }
    }
    assert_eq!(
        (links.len(), refused),
        (
            MAX_FOR_ACCESSES as usize,
            CONCURRENT_ACCESSES - MAX_FOR_ACCESSES as usize
        ),
        "{CONCURRENT_ACCESSES} concurrent accesses on a link of {MAX_FOR_ACCESSES}: exactly \
         {MAX_FOR_ACCESSES} open, the rest are Unavailable"
    );
    let counts: BTreeSet<u32> = links.iter().map(|l| l.access_count).collect();
    assert_eq!(
        counts,
        (1..=MAX_FOR_ACCESSES).collect(),
        "each access counted its own access"
    );
    for got in &links {
        assert_eq!(got, &accessed(&link, got.access_count, t0));
    }
    assert_eq!(
        store
            .get_share_link(t, link.id)
            .await
            .must("get_share_link"),
        accessed(&link, MAX_FOR_ACCESSES, t0),
        "the link counts exactly max_accesses accesses"
    );
    setup.logged_all(links.iter().map(|l| accesses.event_for(l)));
    setup.check_log("after concurrent accesses").await;
}

/// `delete_fleet` also removes the fleet's scans, their artifacts and their share links
/// (whose tokens stop working): every read and write of them is `NotFound` (or
/// `Unavailable` for an access), listings skip them, a sweep finds none of them
/// overdue; another fleet keeps its scans and links.
pub async fn fleet_delete_cascades_to_scans_and_share_links(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let sweeps = Auditor::sweeps(&fx);
    let accesses = Auditor::accesses(&fx);
    let week = t0 + Duration::days(7);
    let (doomed, _, _) = setup.fleet().await;
    let agent = setup.agent(&doomed).await;
    let done = setup.scan(&doomed).await;
    let running = setup.scan(&doomed).await;
    let done = setup.claim_exactly(&claims, &agent, &done, t0).await;
    let running = setup.claim_exactly(&claims, &agent, &running, t0).await;
    let done = setup
        .complete(&agent, &done, t0 + Duration::minutes(5), &fx.artifacts())
        .await;
    let expiring = ScanConstraints {
        not_after: Some(t0 + Duration::hours(1)),
        ..ScanConstraints::default()
    };
    let queued = setup
        .add_scan(fx.scan(&doomed, Scenario::Software, expiring))
        .await;
    let mut gone_links = Vec::new();
    for scan in [&done, &done, &queued] {
        gone_links.push(setup.add_share_link(fx.share_link(scan, None, week)).await);
    }
    let (_, kept) = completed_scan(&mut setup, &fx).await;
    let (kept_link, kept_secret) = setup.add_share_link(fx.share_link(&kept, None, week)).await;

    let audit = setup.audit(actions::FLEET_DELETED, doomed.id.as_uuid());
    store
        .delete_fleet(t, doomed.id, &audit)
        .await
        .must("delete_fleet");
    setup.logged(&audit);

    for scan in [&done, &running, &queued] {
        store
            .get_scan(t, scan.id)
            .await
            .must_be_not_found("get_scan of a deleted fleet's scan");
        store
            .get_scan_artifacts(t, scan.id)
            .await
            .must_be_not_found("get_scan_artifacts of a deleted fleet's scan");
        store
            .list_share_links(t, scan.id, first_page(10))
            .await
            .must_be_not_found("list_share_links of a deleted fleet's scan");
    }
    for (link, secret) in &gone_links {
        store
            .get_share_link(t, link.id)
            .await
            .must_be_not_found("get_share_link of a deleted fleet's link");
        let audit = setup.audit(actions::SHARE_LINK_REVOKED, link.id.as_uuid());
        store
            .revoke_share_link(t, link.id, t0, &audit)
            .await
            .must_be_not_found("revoke_share_link of a deleted fleet's link");
        assert_eq!(
            setup
                .access(&accesses, &secret.digest(), t0, Artifact::Report)
                .await,
            ShareAccess::Unavailable,
            "a deleted fleet's share link no longer opens"
        );
    }
    let audit = fx.audit_by(
        t,
        AuditActor::Agent(agent.id.as_uuid()),
        actions::SCAN_COMPLETED,
        Some(running.id.as_uuid()),
        t0,
    );
    store
        .complete_scan(agent.id, running.id, t0, &fx.artifacts(), &audit)
        .await
        .must_be_not_found("complete_scan of a deleted fleet's scan");
    assert_eq!(
        sweeps.sweep(store, t0 + Duration::days(1)).await,
        0,
        "a deleted fleet's running and expiring scans are gone, not overdue"
    );
    assert_eq!(
        scans_of(store, t, &ScanFilter::default()).await,
        vec![kept.clone()],
        "list_scans after delete"
    );
    assert_eq!(
        scans_of(
            store,
            t,
            &ScanFilter {
                fleet: Some(doomed.id),
                ..ScanFilter::default()
            }
        )
        .await,
        vec![],
        "list_scans of the deleted fleet"
    );
    assert!(
        store
            .get_scan_artifacts(t, kept.id)
            .await
            .must("get_scan_artifacts")
            .is_some(),
        "the other fleet's scan keeps its artifacts"
    );
    let (got, got_scan) = opened(
        setup
            .access(&accesses, &kept_secret.digest(), t0, Artifact::Passport)
            .await,
        "the other fleet's share link",
    );
    assert_eq!((got, got_scan), (accessed(&kept_link, 1, t0), kept));
    setup.check_log("after delete_fleet").await;
}

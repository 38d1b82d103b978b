//! Races the row locks are there to settle: scoping a token to an environment (or
//! creating a fleet in it) while the environment is deleted must never end with both
//! having succeeded; concurrent enrollments, from separate pools as separate processes
//! would make them, claim each use of a token exactly once; and deleting a fleet while
//! agents enroll into it neither deadlocks nor leaves an agent behind. Likewise for
//! scans: concurrent claims from two pools never share a scan, concurrent sweepers
//! move each overdue scan once, concurrent opens of a share link stop at its limit, and
//! deleting a fleet while its scans are claimed, completed and shared never deadlocks;
//! and schedulers on two pools enqueue each due schedule's scan once.

use std::collections::BTreeSet;
use std::sync::Arc;

use fleetpass_contract::fixtures::Fixtures;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::{AuditAction, AuditActor, AuditEvent, actions};
use fleetpass_domain::fleet::{Agent, EnrollmentRefusal, EnrollmentToken, Fleet};
use fleetpass_domain::ids::{ScanId, ScheduleId, TenantId};
use fleetpass_domain::page::{PageLimit, PageRequest};
use fleetpass_domain::scan::{MaxDurationMinutes, Scan, ScanConstraints, ScanStatus, Scenario};
use fleetpass_domain::schedule::{IntervalMinutes, Schedule};
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::{Artifact, ShareLink};
use fleetpass_ports::store::{AuditFilter, ScanFilter, ShareAccess, constraint};
use fleetpass_ports::{FleetStore, RepoError, Store, TenantStore, TokenStore};
use fleetpass_store_postgres::PgStore;
use fleetpass_store_postgres::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoping_a_token_and_deleting_its_environment_never_both_succeed() {
    let db = TestDatabase::fresh().await;
    let fx = Fixtures::new();
    let new = fx.new_tenant();
    db.create_tenant(&new).await.expect("create_tenant");
    let t = new.tenant.id;
    let (mut tokens_won, mut deletes_won) = (0, 0);
    for _ in 0..30 {
        let env = fx.environment(t);
        let created = fx.audit(t, actions::ENVIRONMENT_CREATED, Some(env.id.as_uuid()));
        db.create_environment(&env, &created)
            .await
            .expect("create_environment");
        let (token, secret) = fx.scoped_token(&new.admin, &[env.id]);
        let token_created = fx.audit(t, actions::TOKEN_CREATED, Some(token.id.as_uuid()));
        let env_deleted = fx.audit(t, actions::ENVIRONMENT_DELETED, Some(env.id.as_uuid()));
        let digest = secret.digest();
        let (scoped, deleted) = tokio::join!(
            db.create_token(&token, &digest, &token_created),
            db.delete_environment(t, env.id, &env_deleted),
        );
        match (scoped, deleted) {
            (Ok(()), Err(RepoError::Conflict { constraint })) => {
                assert_eq!(constraint, constraint::ENVIRONMENT_IN_USE);
                tokens_won += 1;
            }
            (Err(RepoError::NotFound), Ok(())) => deletes_won += 1,
            other => panic!("exactly one of the two must win, got {other:?}"),
        }
    }
    // Not asserted: which side wins depends on scheduling. Printed to show both happen.
    println!("token first: {tokens_won}, delete first: {deletes_won}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_fleet_and_deleting_its_environment_never_both_succeed() {
    let db = TestDatabase::fresh().await;
    let fx = Fixtures::new();
    let new = fx.new_tenant();
    db.create_tenant(&new).await.expect("create_tenant");
    let t = new.tenant.id;
    let (mut fleets_won, mut deletes_won) = (0, 0);
    for _ in 0..30 {
        let env = fx.environment(t);
        let created = fx.audit(t, actions::ENVIRONMENT_CREATED, Some(env.id.as_uuid()));
        db.create_environment(&env, &created)
            .await
            .expect("create_environment");
        let fleet = fx.fleet(t, env.id);
        let (token, secret) = fx.enrollment_token(&fleet);
        let fleet_created = [
            fx.audit(t, actions::FLEET_CREATED, Some(fleet.id.as_uuid())),
            fx.audit(
                t,
                actions::ENROLLMENT_TOKEN_ISSUED,
                Some(token.id.as_uuid()),
            ),
        ];
        let env_deleted = fx.audit(t, actions::ENVIRONMENT_DELETED, Some(env.id.as_uuid()));
        let digest = secret.digest();
        let (made, deleted) = tokio::join!(
            db.create_fleet(&fleet, &token, &digest, &fleet_created),
            db.delete_environment(t, env.id, &env_deleted),
        );
        match (made, deleted) {
            (Ok(()), Err(RepoError::Conflict { constraint })) => {
                assert_eq!(constraint, constraint::ENVIRONMENT_IN_USE);
                fleets_won += 1;
            }
            (Err(RepoError::NotFound), Ok(())) => deletes_won += 1,
            other => panic!("exactly one of the two must win, got {other:?}"),
        }
    }
    println!("fleet first: {fleets_won}, delete first: {deletes_won}");
}

/// A tenant with a fleet in its `production` environment, whose first token allows
/// `max_uses` enrollments.
struct Enrollable {
    fx: Arc<Fixtures>,
    token: EnrollmentToken,
    digest: SecretDigest,
}

async fn enrollable(store: &dyn Store, max_uses: u32) -> Enrollable {
    let fx = Arc::new(Fixtures::new());
    let new = fx.new_tenant();
    store.create_tenant(&new).await.expect("create_tenant");
    let t = new.tenant.id;
    let fleet = fx.fleet(t, new.environment.id);
    let expires_at = fx.now() + time::Duration::hours(1);
    let (token, secret) = fx.enrollment_token_with(&fleet, max_uses, expires_at);
    let audit = [
        fx.audit(t, actions::FLEET_CREATED, Some(fleet.id.as_uuid())),
        fx.audit(
            t,
            actions::ENROLLMENT_TOKEN_ISSUED,
            Some(token.id.as_uuid()),
        ),
    ];
    store
        .create_fleet(&fleet, &token, &secret.digest(), &audit)
        .await
        .expect("create_fleet");
    Enrollable {
        fx,
        token,
        digest: secret.digest(),
    }
}

/// Enrolls once with `digest`, building the agent (and its event, by the agent) from
/// the token the store hands over.
async fn enroll_once(
    store: &dyn Store,
    fx: &Fixtures,
    digest: &SecretDigest,
) -> Result<Result<Agent, EnrollmentRefusal>, RepoError> {
    let at = fx.now();
    let agent_secret = fx.agent_secret().digest();
    let build = |token: &EnrollmentToken| {
        let agent = fx.agent(token, at);
        let audit = fx.audit_by(
            token.tenant_id,
            AuditActor::Agent(agent.id.as_uuid()),
            actions::AGENT_ENROLLED,
            Some(agent.id.as_uuid()),
            at,
        );
        (agent, audit)
    };
    store.enroll(digest, at, &agent_secret, &build).await
}

/// Runs 50 enrollments at once with a token allowing `max_uses`, alternating between
/// two pools on one database, and checks exactly `max_uses` succeed, with as many
/// agents, events and claimed uses stored.
async fn enroll_50_at_once_from_two_pools(max_uses: u32) {
    const CALLERS: usize = 50;
    let db = TestDatabase::fresh().await;
    // A second process, as far as the database can tell: its own pool and sessions.
    let second: Arc<dyn Store> = Arc::new(PgStore::connect(db.url(), 4).expect("second pool"));
    let first: Arc<dyn Store> = db.store_arc();
    let e = enrollable(&*first, max_uses).await;
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..CALLERS)
        .map(|i| {
            let store = Arc::clone(if i % 2 == 0 { &first } else { &second });
            let fx = Arc::clone(&e.fx);
            let digest = e.digest;
            tokio::spawn(async move { enroll_once(&*store, &fx, &digest).await })
        })
        .collect();
    let mut enrolled = Vec::new();
    for call in calls {
        match call.await.expect("join") {
            Ok(Ok(agent)) => enrolled.push(agent),
            Ok(Err(refusal)) => assert_eq!(refusal, EnrollmentRefusal::UsedUp),
            // Among others: a pool wait timing out, a deadlock, a lock timeout.
            Err(e) => panic!("no enrollment may fail in the store, got {e}"),
        }
    }
    // Not asserted (a pool wait past 5 s already failed above); printed to show the
    // margin.
    println!("{CALLERS} enrollments took {:?}", started.elapsed());
    let expected = usize::try_from(max_uses).expect("small");
    assert_eq!(enrolled.len(), expected, "successful enrollments");

    let t = e.token.tenant_id;
    let agents = first
        .list_agents(t, e.token.fleet_id, None, Default::default())
        .await
        .expect("list_agents");
    assert_eq!(agents.items.len(), expected, "stored agents");
    for agent in &enrolled {
        assert!(
            agents.items.contains(agent),
            "{agent:?} was stored as returned"
        );
    }
    let tokens = first
        .list_enrollment_tokens(t, e.token.fleet_id, Default::default())
        .await
        .expect("list_enrollment_tokens");
    assert_eq!(tokens.items.len(), 1);
    assert_eq!(tokens.items[0].uses, max_uses, "every use claimed once");
    let filter = AuditFilter {
        action: Some(actions::AGENT_ENROLLED.into()),
        ..AuditFilter::default()
    };
    let events = first
        .list_audit_events(t, &filter, Default::default())
        .await
        .expect("list_audit_events");
    assert_eq!(events.items.len(), expected, "one event per enrollment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_token_enrolls_once_across_processes() {
    enroll_50_at_once_from_two_pools(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_use_token_enrolls_three_times_across_processes() {
    enroll_50_at_once_from_two_pools(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_fleet_while_agents_enroll_neither_deadlocks_nor_leaves_agents() {
    let db = TestDatabase::fresh().await;
    let store: Arc<dyn Store> = db.store_arc();
    for _ in 0..10 {
        let e = enrollable(&*store, 1000).await;
        let t = e.token.tenant_id;
        let fleet = e.token.fleet_id;
        let enrolls: Vec<_> = (0..8)
            .map(|_| {
                let (store, fx, digest) = (Arc::clone(&store), Arc::clone(&e.fx), e.digest);
                tokio::spawn(async move { enroll_once(&*store, &fx, &digest).await })
            })
            .collect();
        let audit = e.fx.audit(t, actions::FLEET_DELETED, Some(fleet.as_uuid()));
        store
            .delete_fleet(t, fleet, &audit)
            .await
            .expect("delete_fleet: no deadlock, no foreign key violation");
        for enroll in enrolls {
            match enroll.await.expect("join") {
                // Enrolled before the delete: deleted with the fleet.
                Ok(Ok(agent)) => {
                    let left = store
                        .find_agent_credentials(agent.id)
                        .await
                        .expect("find_agent_credentials");
                    assert!(left.is_none(), "{agent:?} outlived its fleet");
                }
                // After: the token went with the fleet.
                Ok(Err(refusal)) => assert_eq!(refusal, EnrollmentRefusal::Unknown),
                Err(e) => panic!("no enrollment may fail in the store, got {e}"),
            }
        }
        assert!(matches!(
            store.get_fleet(t, fleet).await,
            Err(RepoError::NotFound)
        ));
    }
}

// ---- scans ----

/// Two stores on one database, as two processes would have them: the test database's
/// own pool and a second one.
fn two_pools(db: &TestDatabase) -> [Arc<dyn Store>; 2] {
    let second: Arc<dyn Store> = Arc::new(PgStore::connect(db.url(), 4).expect("second pool"));
    [db.store_arc(), second]
}

/// A tenant with a fleet in its `production` environment and `agents` agents enrolled
/// into it.
struct ScanFleet {
    fx: Arc<Fixtures>,
    fleet: Fleet,
    agents: Vec<Agent>,
}

impl ScanFleet {
    async fn new(store: &dyn Store, agents: u32) -> Self {
        let fx = Arc::new(Fixtures::new());
        let new = fx.new_tenant();
        store.create_tenant(&new).await.expect("create_tenant");
        let t = new.tenant.id;
        let fleet = fx.fleet(t, new.environment.id);
        let expires_at = fx.now() + time::Duration::hours(1);
        let (token, secret) = fx.enrollment_token_with(&fleet, agents.max(1), expires_at);
        let audit = [
            fx.audit(t, actions::FLEET_CREATED, Some(fleet.id.as_uuid())),
            fx.audit(
                t,
                actions::ENROLLMENT_TOKEN_ISSUED,
                Some(token.id.as_uuid()),
            ),
        ];
        store
            .create_fleet(&fleet, &token, &secret.digest(), &audit)
            .await
            .expect("create_fleet");
        let mut enrolled = Vec::new();
        for _ in 0..agents {
            let agent = enroll_once(store, &fx, &secret.digest())
                .await
                .expect("enroll")
                .expect("the token has a use left");
            enrolled.push(agent);
        }
        Self {
            fx,
            fleet,
            agents: enrolled,
        }
    }

    fn tenant(&self) -> TenantId {
        self.fleet.tenant_id
    }

    /// Requests a scan of the fleet with `constraints`.
    async fn request(&self, store: &dyn Store, constraints: ScanConstraints) -> Scan {
        let scan = self.fx.scan(&self.fleet, Scenario::Inventory, constraints);
        let audit = self.fx.audit(
            self.tenant(),
            actions::SCAN_REQUESTED,
            Some(scan.id.as_uuid()),
        );
        store
            .create_scan(&scan, &fleetpass_domain::scan::ScanTarget::Any, &audit)
            .await
            .expect("create_scan");
        scan
    }
}

/// The event an agent's claim of a scan writes.
fn claimed_by(fx: &Fixtures, agent: &Agent, now: Timestamp) -> impl Fn(&Scan) -> AuditEvent {
    let agent = agent.id.as_uuid();
    move |scan: &Scan| {
        fx.audit_by(
            scan.tenant_id,
            AuditActor::Agent(agent),
            actions::SCAN_CLAIMED,
            Some(scan.id.as_uuid()),
            now,
        )
    }
}

/// The event the sweeper writes for a scan it moved.
fn swept_by_system(fx: &Fixtures, now: Timestamp) -> impl Fn(&Scan) -> AuditEvent {
    move |scan: &Scan| {
        let action = match scan.status {
            ScanStatus::Failed => actions::SCAN_FAILED,
            ScanStatus::Expired => actions::SCAN_EXPIRED,
            other => panic!("the sweeper moved a scan to {other:?}"),
        };
        fx.audit_by(
            scan.tenant_id,
            AuditActor::System,
            action,
            Some(scan.id.as_uuid()),
            now,
        )
    }
}

/// How many events with `action` the tenant's log holds, over every page.
async fn count_events(store: &dyn Store, tenant: TenantId, action: AuditAction) -> usize {
    let filter = AuditFilter {
        action: Some(action.into()),
        ..AuditFilter::default()
    };
    let mut page = PageRequest {
        limit: PageLimit::max(),
        cursor: None,
    };
    let mut n = 0;
    loop {
        let events = store
            .list_audit_events(tenant, &filter, page)
            .await
            .expect("list_audit_events");
        n += events.items.len();
        match events.next {
            Some(next) => page.cursor = Some(next),
            None => return n,
        }
    }
}

/// Every scan of the tenant that passes `filter`, over every page.
async fn all_scans(store: &dyn Store, tenant: TenantId, filter: &ScanFilter) -> Vec<Scan> {
    let mut page = PageRequest {
        limit: PageLimit::max(),
        cursor: None,
    };
    let mut scans = Vec::new();
    loop {
        let found = store
            .list_scans(tenant, filter, page)
            .await
            .expect("list_scans");
        scans.extend(found.items);
        match found.next {
            Some(next) => page.cursor = Some(next),
            None => return scans,
        }
    }
}

/// Scans in `status`.
fn in_status(status: ScanStatus) -> ScanFilter {
    ScanFilter {
        status: Some(status),
        ..ScanFilter::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_agents_on_two_pools_claim_ten_scans_once_each() {
    const AGENTS: usize = 20;
    const SCANS: usize = 10;
    let db = TestDatabase::fresh().await;
    let pools = two_pools(&db);
    let f = Arc::new(ScanFleet::new(&*pools[0], 20).await);
    let mut requested = BTreeSet::new();
    for _ in 0..SCANS {
        requested.insert(f.request(&*pools[0], ScanConstraints::default()).await.id);
    }
    let now = f.fx.now() + time::Duration::minutes(1);
    let claims: Vec<_> = (0..AGENTS)
        .map(|i| {
            let store = Arc::clone(&pools[i % 2]);
            let f = Arc::clone(&f);
            tokio::spawn(async move {
                let agent = &f.agents[i];
                let audit = claimed_by(&f.fx, agent, now);
                let claimed = store.claim_scan(agent, now, &audit).await;
                (agent.id, claimed)
            })
        })
        .collect();
    let mut claimed = Vec::new();
    let mut empty_handed = 0;
    for claim in claims {
        match claim.await.expect("join") {
            (agent, Ok(Some(scan))) => {
                assert_eq!(scan.claimed_by, Some(agent), "claimed by its claimer");
                assert_eq!(scan.status, ScanStatus::Running);
                assert_eq!(scan.claimed_at, Some(now));
                claimed.push(scan.id);
            }
            (_, Ok(None)) => empty_handed += 1,
            (_, Err(e)) => panic!("no claim may fail in the store, got {e}"),
        }
    }
    let distinct: BTreeSet<ScanId> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), SCANS, "one claim per scan");
    assert_eq!(distinct, requested, "every scan claimed, none twice");
    assert_eq!(empty_handed, AGENTS - SCANS, "the rest found nothing");

    let t = f.tenant();
    let running = all_scans(&*pools[1], t, &in_status(ScanStatus::Running)).await;
    assert_eq!(running.len(), SCANS, "stored as running");
    assert_eq!(
        count_events(&*pools[1], t, actions::SCAN_CLAIMED).await,
        SCANS,
        "one event per claim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweepers_on_two_pools_move_each_overdue_scan_once() {
    // More expiring scans than one sweeper transaction takes (500), so the sweepers
    // also race over their second batches.
    const EXPIRING: usize = 520;
    const FAILING: usize = 30;
    let db = TestDatabase::fresh().await;
    let pools = two_pools(&db);
    let f = Arc::new(ScanFleet::new(&*pools[0], 1).await);
    let start = f.fx.now();
    let t = f.tenant();

    // Running scans with the default limit, claimed at the start: overdue an hour later.
    for _ in 0..FAILING {
        f.request(&*pools[0], ScanConstraints::default()).await;
        let agent = &f.agents[0];
        let audit = claimed_by(&f.fx, agent, start);
        pools[0]
            .claim_scan(agent, start, &audit)
            .await
            .expect("claim_scan")
            .expect("a queued scan to claim");
    }
    // Not overdue at the sweep: a long limit (claimed before anything else is queued,
    // as claims take the oldest scan), and below, no window.
    let long = ScanConstraints {
        max_duration_minutes: Some(MaxDurationMinutes::max()),
        ..ScanConstraints::default()
    };
    f.request(&*pools[0], long).await;
    let agent = &f.agents[0];
    let audit = claimed_by(&f.fx, agent, start);
    let still_running = pools[0]
        .claim_scan(agent, start, &audit)
        .await
        .expect("claim_scan")
        .expect("the long scan to claim");
    assert_eq!(
        still_running.constraints.max_duration_minutes,
        Some(MaxDurationMinutes::max())
    );
    // Queued scans whose window closes before the sweep; requested concurrently, since
    // there are many.
    let expiring = ScanConstraints {
        not_after: Some(start + time::Duration::minutes(30)),
        ..ScanConstraints::default()
    };
    let requests: Vec<_> = (0..EXPIRING)
        .map(|i| {
            let (store, f, c) = (Arc::clone(&pools[i % 2]), Arc::clone(&f), expiring.clone());
            tokio::spawn(async move { f.request(&*store, c).await })
        })
        .collect();
    for request in requests {
        request.await.expect("join");
    }
    let still_queued = f.request(&*pools[0], ScanConstraints::default()).await;

    let at = start + time::Duration::minutes(61);
    let sweeps: Vec<_> = (0..6)
        .map(|i| {
            let (store, f) = (Arc::clone(&pools[i % 2]), Arc::clone(&f));
            tokio::spawn(async move {
                let audit = swept_by_system(&f.fx, at);
                store.sweep_scans(at, &audit).await
            })
        })
        .collect();
    let mut counts = Vec::new();
    for sweep in sweeps {
        counts.push(sweep.await.expect("join").expect("sweep_scans"));
    }
    assert_eq!(
        counts.iter().sum::<usize>(),
        EXPIRING + FAILING,
        "each overdue scan moved once (counts: {counts:?})"
    );

    let failed = all_scans(&*pools[1], t, &in_status(ScanStatus::Failed)).await;
    let expired = all_scans(&*pools[1], t, &in_status(ScanStatus::Expired)).await;
    assert_eq!((failed.len(), expired.len()), (FAILING, EXPIRING));
    for scan in failed.iter().chain(&expired) {
        assert_eq!(scan.finished_at, Some(at), "finished at the sweep");
    }
    for scan in &failed {
        assert_eq!(
            scan.claimed_by,
            Some(agent.id),
            "a failed scan keeps its claimer"
        );
    }
    assert_eq!(
        count_events(&*pools[1], t, actions::SCAN_FAILED).await,
        FAILING,
        "one event per failed scan"
    );
    assert_eq!(
        count_events(&*pools[1], t, actions::SCAN_EXPIRED).await,
        EXPIRING,
        "one event per expired scan"
    );
    let running = pools[1]
        .get_scan(t, still_running.id)
        .await
        .expect("get_scan");
    assert_eq!(running, still_running, "within its limit: untouched");
    let queued = pools[1]
        .get_scan(t, still_queued.id)
        .await
        .expect("get_scan");
    assert_eq!(queued, still_queued, "no window: untouched");

    let audit = swept_by_system(&f.fx, at);
    assert_eq!(
        pools[0].sweep_scans(at, &audit).await.expect("sweep_scans"),
        0,
        "nothing left to move"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_opens_on_two_pools_of_a_five_access_link_open_it_five_times() {
    const OPENS: usize = 20;
    const MAX: usize = 5;
    let db = TestDatabase::fresh().await;
    let pools = two_pools(&db);
    let f = ScanFleet::new(&*pools[0], 0).await;
    let t = f.tenant();
    let scan = f.request(&*pools[0], ScanConstraints::default()).await;
    let expires_at = f.fx.now() + time::Duration::hours(1);
    let (link, secret) = f.fx.share_link(&scan, Some(5), expires_at);
    let created =
        f.fx.audit(t, actions::SHARE_LINK_CREATED, Some(link.id.as_uuid()));
    pools[0]
        .create_share_link(&link, &secret.digest(), &created)
        .await
        .expect("create_share_link");

    let fx = Arc::clone(&f.fx);
    let now = fx.now() + time::Duration::minutes(1);
    let digest = secret.digest();
    let opens: Vec<_> = (0..OPENS)
        .map(|i| {
            let (store, fx) = (Arc::clone(&pools[i % 2]), Arc::clone(&fx));
            tokio::spawn(async move {
                let audit = |link: &ShareLink| {
                    fx.audit_by(
                        link.tenant_id,
                        AuditActor::Public,
                        actions::SHARE_LINK_ACCESSED,
                        Some(link.id.as_uuid()),
                        now,
                    )
                };
                store
                    .access_share_link(&digest, now, Artifact::Report, &audit)
                    .await
            })
        })
        .collect();
    let mut counts_seen = BTreeSet::new();
    let mut refused = 0;
    for open in opens {
        match open.await.expect("join") {
            Ok(ShareAccess::Opened(opened, shared)) => {
                assert_eq!(shared, scan, "the link's scan");
                counts_seen.insert(opened.access_count);
            }
            Ok(ShareAccess::Unavailable) => refused += 1,
            Ok(other) => panic!("a passport link grants the report, got {other:?}"),
            Err(e) => panic!("no open may fail in the store, got {e}"),
        }
    }
    assert_eq!(
        counts_seen,
        (1..=5).collect::<BTreeSet<u32>>(),
        "each open counted once, in turn"
    );
    assert_eq!(refused, OPENS - MAX, "the rest found it used up");
    let stored = pools[1]
        .get_share_link(t, link.id)
        .await
        .expect("get_share_link");
    assert_eq!(stored.access_count, 5);
    assert_eq!(
        count_events(&*pools[1], t, actions::SHARE_LINK_ACCESSED).await,
        MAX,
        "one event per counted open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_fleet_while_its_scans_are_claimed_completed_and_shared_never_deadlocks() {
    let db = TestDatabase::fresh().await;
    let pools = two_pools(&db);
    for round in 0..10 {
        let f = Arc::new(ScanFleet::new(&*pools[0], 4).await);
        let t = f.tenant();
        let now = f.fx.now();
        // Two agents each hold a running scan to complete, two more scans wait for the
        // other two agents, and one running scan has a share link to open.
        let mut running = Vec::new();
        for agent in &f.agents[..2] {
            f.request(&*pools[0], ScanConstraints::default()).await;
            let audit = claimed_by(&f.fx, agent, now);
            let scan = pools[0]
                .claim_scan(agent, now, &audit)
                .await
                .expect("claim_scan")
                .expect("a scan to claim");
            running.push((agent.id, scan));
        }
        for _ in 0..2 {
            f.request(&*pools[0], ScanConstraints::default()).await;
        }
        let (link, secret) =
            f.fx.share_link(&running[0].1, None, now + time::Duration::hours(1));
        let created =
            f.fx.audit(t, actions::SHARE_LINK_CREATED, Some(link.id.as_uuid()));
        pools[0]
            .create_share_link(&link, &secret.digest(), &created)
            .await
            .expect("create_share_link");

        let mut tasks = Vec::new();
        for (i, (agent, scan)) in running.iter().cloned().enumerate() {
            let (store, f) = (Arc::clone(&pools[i % 2]), Arc::clone(&f));
            tasks.push(tokio::spawn(async move {
                let audit =
                    f.fx.audit(t, actions::SCAN_COMPLETED, Some(scan.id.as_uuid()));
                let done = store
                    .complete_scan(agent, scan.id, now, &f.fx.artifacts(), &audit)
                    .await;
                match done {
                    Ok(_) | Err(RepoError::NotFound) => Ok(()),
                    Err(e) => Err(format!("complete_scan: {e}")),
                }
            }));
        }
        for i in 2..4 {
            let (store, f) = (Arc::clone(&pools[i % 2]), Arc::clone(&f));
            tasks.push(tokio::spawn(async move {
                let agent = &f.agents[i];
                let audit = claimed_by(&f.fx, agent, now);
                store
                    .claim_scan(agent, now, &audit)
                    .await
                    .map(drop)
                    .map_err(|e| format!("claim_scan: {e}"))
            }));
        }
        for i in 0..2 {
            let (store, fx, digest) = (
                Arc::clone(&pools[i % 2]),
                Arc::clone(&f.fx),
                secret.digest(),
            );
            tasks.push(tokio::spawn(async move {
                let audit = |link: &ShareLink| {
                    fx.audit_by(
                        link.tenant_id,
                        AuditActor::Public,
                        actions::SHARE_LINK_ACCESSED,
                        Some(link.id.as_uuid()),
                        now,
                    )
                };
                store
                    .access_share_link(&digest, now, Artifact::Passport, &audit)
                    .await
                    .map(drop)
                    .map_err(|e| format!("access_share_link: {e}"))
            }));
        }
        let deleted =
            f.fx.audit(t, actions::FLEET_DELETED, Some(f.fleet.id.as_uuid()));
        pools[round % 2]
            .delete_fleet(t, f.fleet.id, &deleted)
            .await
            .expect("delete_fleet: no deadlock, no foreign key violation");
        for task in tasks {
            if let Err(e) = task.await.expect("join") {
                panic!("no call may fail in the store while its fleet goes, got {e}");
            }
        }
        let left = all_scans(&*pools[1], t, &ScanFilter::default()).await;
        assert!(left.is_empty(), "scans outlived their fleet: {left:?}");
        let link_left = pools[1].get_share_link(t, link.id).await;
        assert!(
            matches!(link_left, Err(RepoError::NotFound)),
            "the share link went with its scan: {link_left:?}"
        );
        let artifacts_left = pools[1].get_scan_artifacts(t, running[0].1.id).await;
        assert!(
            matches!(artifacts_left, Err(RepoError::NotFound)),
            "artifacts went with their scan: {artifacts_left:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedulers_on_two_pools_enqueue_each_due_schedule_once() {
    const DUE: usize = 20;
    let db = TestDatabase::fresh().await;
    let pools = two_pools(&db);
    let f = Arc::new(ScanFleet::new(&*pools[0], 0).await);
    let t = f.tenant();
    let start = f.fx.now();
    let schedule = |enabled: bool, next_run_at: Timestamp| Schedule {
        id: ScheduleId::from_uuid(f.fx.id()),
        tenant_id: t,
        fleet_id: f.fleet.id,
        environment_id: f.fleet.environment_id,
        scenario: Scenario::Inventory,
        max_duration_minutes: None,
        max_assets: None,
        interval: IntervalMinutes::new(60).expect("interval"),
        enabled,
        next_run_at,
        last_run_at: None,
        created_at: start,
    };
    let at = start + time::Duration::minutes(90);
    let mut due = Vec::new();
    for i in 0..DUE {
        // Spread over the last hour and a half, so some missed a run and some did not.
        let minutes = i64::try_from(i).expect("small") * 4;
        due.push(schedule(true, start + time::Duration::minutes(minutes)));
    }
    let disabled = schedule(false, start);
    let later = schedule(true, at + time::Duration::seconds(1));
    for s in due.iter().chain([&disabled, &later]) {
        let audit =
            f.fx.audit(t, actions::SCHEDULE_CREATED, Some(s.id.as_uuid()));
        pools[0]
            .create_schedule(s, &audit)
            .await
            .expect("create_schedule");
    }

    let runs: Vec<_> = (0..6)
        .map(|i| {
            let (store, f) = (Arc::clone(&pools[i % 2]), Arc::clone(&f));
            tokio::spawn(async move {
                let enqueue = |s: &Schedule| {
                    let scan = f.fx.scan(&f.fleet, s.scenario, s.constraints());
                    let audit = f.fx.audit_by(
                        s.tenant_id,
                        AuditActor::System,
                        actions::SCAN_REQUESTED,
                        Some(scan.id.as_uuid()),
                        at,
                    );
                    (scan, audit)
                };
                store.run_due_schedules(at, &enqueue).await
            })
        })
        .collect();
    let mut counts = Vec::new();
    for run in runs {
        counts.push(run.await.expect("join").expect("run_due_schedules"));
    }
    assert_eq!(
        counts.iter().sum::<usize>(),
        DUE,
        "each due schedule enqueued once (counts: {counts:?})"
    );
    let scans = all_scans(&*pools[1], t, &ScanFilter::default()).await;
    assert_eq!(scans.len(), DUE, "one scan per due schedule");
    assert!(scans.iter().all(|s| s.status == ScanStatus::Queued));
    assert_eq!(
        count_events(&*pools[1], t, actions::SCAN_REQUESTED).await,
        DUE,
        "one event per enqueued scan"
    );
    for s in &due {
        let stored = pools[1].get_schedule(t, s.id).await.expect("get_schedule");
        assert_eq!(stored.last_run_at, Some(at), "ran at the run");
        assert_eq!(stored.next_run_at, s.next_after(at), "moved past the run");
        assert!(!stored.due(at));
    }
    for s in [&disabled, &later] {
        let stored = pools[1].get_schedule(t, s.id).await.expect("get_schedule");
        assert_eq!(&stored, s, "not due: untouched");
    }
    let none = |_: &Schedule| -> (Scan, AuditEvent) { panic!("nothing is due any more") };
    assert_eq!(
        pools[0]
            .run_due_schedules(at, &none)
            .await
            .expect("run_due_schedules"),
        0,
        "nothing left to enqueue"
    );
}

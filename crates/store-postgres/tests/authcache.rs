//! The authentication cache across pools, as separate replicas would have them: a
//! revocation on one pool is seen at once by that pool and, through `NOTIFY`, by a
//! watching pool long before the cache's own expiry; without the watcher the expiry
//! alone bounds it.

use std::time::{Duration, Instant};

use fleetpass_contract::fixtures::Fixtures;
use fleetpass_domain::audit::actions;
use fleetpass_domain::token::TokenStatus;
use fleetpass_ports::{TenantStore, TokenStore};
use fleetpass_store_postgres::PgStore;
use fleetpass_store_postgres::testing::TestDatabase;

/// How long until `replica` sees the token of `digest` revoked (polling every 5 ms).
async fn until_revoked(
    replica: &PgStore,
    digest: &fleetpass_domain::secret::SecretDigest,
    fx: &Fixtures,
) -> Duration {
    let started = Instant::now();
    loop {
        let lookup = replica
            .find_token_by_digest(digest)
            .await
            .expect("find_token_by_digest")
            .expect("the token");
        if lookup.token.status(fx.now()) == TokenStatus::Revoked {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not seen within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_a_watching_replica_by_notification() {
    let db = TestDatabase::fresh().await;
    let (a, b) = (
        PgStore::connect(db.url(), 2).expect("pool a"),
        PgStore::connect(db.url(), 2).expect("pool b"),
    );
    let watcher = b.clone();
    let url = db.url().to_owned();
    let watching = tokio::spawn(async move { watcher.watch_auth_changes(&url).await });
    let fx = Fixtures::new();
    let new = fx.new_tenant();
    a.create_tenant(&new).await.expect("create_tenant");
    let (t, token, digest) = (new.tenant.id, &new.token, &new.digest);
    // Both replicas cache the live token.
    for replica in [&a, &b] {
        let lookup = replica.find_token_by_digest(digest).await.expect("find");
        assert_eq!(
            lookup.expect("found").token.status(fx.now()),
            TokenStatus::Active
        );
    }
    // Let the listener subscribe before the change it must hear of.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let revoked = fx.audit(t, actions::TOKEN_REVOKED, Some(token.id.as_uuid()));
    a.revoke_token(t, token.id, fx.now(), &revoked)
        .await
        .expect("revoke_token");
    let here = a
        .find_token_by_digest(digest)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(
        here.token.status(fx.now()),
        TokenStatus::Revoked,
        "the replica that revoked sees it at once"
    );
    let seen = until_revoked(&b, digest, &fx).await;
    eprintln!("the watching replica saw the revocation after {seen:?}");
    assert!(
        seen < Duration::from_secs(1),
        "a notification, not the 2 s expiry, reached the other replica: {seen:?}"
    );
    watching.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_watcher_the_expiry_bounds_how_stale_a_replica_is() {
    let db = TestDatabase::fresh().await;
    let (a, b) = (
        PgStore::connect(db.url(), 2).expect("pool a"),
        PgStore::connect(db.url(), 2).expect("pool b"),
    );
    let fx = Fixtures::new();
    let new = fx.new_tenant();
    a.create_tenant(&new).await.expect("create_tenant");
    let (t, token, digest) = (new.tenant.id, &new.token, &new.digest);
    b.find_token_by_digest(digest).await.expect("find");
    let revoked = fx.audit(t, actions::TOKEN_REVOKED, Some(token.id.as_uuid()));
    a.revoke_token(t, token.id, fx.now(), &revoked)
        .await
        .expect("revoke_token");
    let seen = until_revoked(&b, digest, &fx).await;
    assert!(
        seen <= Duration::from_millis(2100),
        "within the 2 s expiry: {seen:?}"
    );
}

/// `lastUsedAt` is written in batches: a use noted on one pool reaches the database
/// (and so another replica) with the next batch, one statement for every token, and
/// never moves the column backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_uses_reach_other_replicas_with_the_next_batch() {
    let db = TestDatabase::fresh().await;
    let (a, b) = (
        PgStore::connect(db.url(), 2).expect("pool a"),
        PgStore::connect(db.url(), 2).expect("pool b"),
    );
    let fx = Fixtures::new();
    let (first, second) = (fx.new_tenant(), fx.new_tenant());
    for new in [&first, &second] {
        a.create_tenant(new).await.expect("create_tenant");
    }
    let used = fx.now() + time::Duration::minutes(3);
    for new in [&first, &second] {
        a.touch_token(new.token.id, used)
            .await
            .expect("touch_token");
    }
    let seen_by_b = |new: &fleetpass_ports::store::NewTenant| {
        let b = b.clone();
        let (t, id) = (new.tenant.id, new.token.id);
        async move { b.get_token(t, id).await.expect("get_token").last_used_at }
    };
    assert_eq!(
        seen_by_b(&first).await,
        None,
        "not written on the request path"
    );
    assert_eq!(
        a.write_token_uses().await.expect("write"),
        2,
        "one batch, both tokens"
    );
    assert_eq!(seen_by_b(&first).await, Some(used));
    assert_eq!(seen_by_b(&second).await, Some(used));
    assert_eq!(
        a.write_token_uses().await.expect("write"),
        0,
        "nothing left"
    );

    // Another replica's older use, written later, does not move it back.
    b.touch_token(first.token.id, fx.now() + time::Duration::minutes(1))
        .await
        .expect("touch_token");
    assert_eq!(b.write_token_uses().await.expect("write"), 1);
    assert_eq!(seen_by_b(&first).await, Some(used));
}

/// `lastSeenAt` is written in batches like `lastUsedAt` (the same mechanism): a
/// sighting noted on one pool shows at once on that pool, reaches the database (and so
/// another replica, or this one restarted) with the next batch — one statement for
/// every agent — and an older sighting written later never moves it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_sightings_reach_other_replicas_with_the_next_batch() {
    use fleetpass_ports::FleetStore;

    let db = TestDatabase::fresh().await;
    let (a, b) = (
        PgStore::connect(db.url(), 2).expect("pool a"),
        PgStore::connect(db.url(), 2).expect("pool b"),
    );
    let fx = Fixtures::new();
    let tenant = fx.new_tenant();
    a.create_tenant(&tenant).await.expect("create_tenant");
    let fleet = fx.fleet(tenant.tenant.id, tenant.environment.id);
    let (token, secret) = fx.enrollment_token_with(&fleet, 3, fx.now() + time::Duration::hours(1));
    let event = fx.audit(tenant.tenant.id, actions::FLEET_CREATED, None);
    a.create_fleet(&fleet, &token, &secret.digest(), &[event])
        .await
        .expect("create_fleet");
    let mut agents = Vec::new();
    for _ in 0..3 {
        let agent = fx.agent(&token, fx.now());
        let event = fx.audit(tenant.tenant.id, actions::AGENT_ENROLLED, None);
        let build = |_: &fleetpass_domain::fleet::EnrollmentToken| (agent.clone(), event.clone());
        a.enroll(
            &secret.digest(),
            fx.now(),
            &fx.agent_secret().digest(),
            &build,
        )
        .await
        .expect("enroll")
        .expect("enrolled");
        agents.push(agent);
    }
    let seen = fx.now() + time::Duration::minutes(3);
    for agent in &agents {
        a.mark_agent_seen(agent.id, seen).await.expect("mark");
    }
    let t = tenant.tenant.id;
    let on = |store: &PgStore, id| {
        let store = store.clone();
        async move {
            store
                .get_agent(t, id)
                .await
                .expect("get_agent")
                .last_seen_at
        }
    };
    assert_eq!(on(&a, agents[0].id).await, Some(seen), "shown at once here");
    assert_eq!(
        on(&b, agents[0].id).await,
        None,
        "not written on the request path"
    );
    assert_eq!(
        a.write_agents_seen().await.expect("write"),
        3,
        "one batch, every agent"
    );
    for agent in &agents {
        assert_eq!(on(&b, agent.id).await, Some(seen));
    }
    assert_eq!(
        a.write_agents_seen().await.expect("write"),
        0,
        "nothing left"
    );
    // A store that never saw them (a restarted replica) reads what the batch wrote.
    let restarted = PgStore::connect(db.url(), 1).expect("pool c");
    assert_eq!(on(&restarted, agents[1].id).await, Some(seen));

    b.mark_agent_seen(agents[0].id, fx.now() + time::Duration::minutes(1))
        .await
        .expect("mark");
    b.write_batches().await.expect("write");
    assert_eq!(on(&a, agents[0].id).await, Some(seen), "never backwards");
}

/// A scan queued with a `notBefore` ahead before a replica's listener started (a
/// replica restarted, or reconnected, between) still wakes that replica's waiters at its
/// time: the listener arms the timers of every such scan when it connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_starts_late_arms_the_timers_of_future_scans() {
    use fleetpass_ports::wakeups::{LocalWakeups, Wakeup, Wakeups as _};
    use fleetpass_ports::{Clock as _, FleetStore, ScanStore};

    let db = TestDatabase::fresh().await;
    let a = PgStore::connect(db.url(), 2).expect("pool a");
    let clock = fleetpass_ports::system::SystemClock;
    let fx = Fixtures::with(
        Box::new(fleetpass_ports::system::UuidV7),
        Box::new(fleetpass_ports::system::RingSecrets::default()),
        clock.now(),
    );
    let tenant = fx.new_tenant();
    a.create_tenant(&tenant).await.expect("create_tenant");
    let fleet = fx.fleet(tenant.tenant.id, tenant.environment.id);
    let (token, secret) = fx.enrollment_token(&fleet);
    let event = fx.audit(tenant.tenant.id, actions::FLEET_CREATED, None);
    a.create_fleet(&fleet, &token, &secret.digest(), &[event])
        .await
        .expect("create_fleet");
    let not_before = fx.now() + time::Duration::seconds(3);
    let constraints = Fixtures::constraints(5, not_before, fx.now() + time::Duration::hours(2));
    let scan = fx.scan(
        &fleet,
        fleetpass_domain::scan::Scenario::Inventory,
        constraints,
    );
    let event = fx.audit(tenant.tenant.id, actions::SCAN_REQUESTED, None);
    a.create_scan(&scan, &fleetpass_domain::scan::ScanTarget::Any, &event)
        .await
        .expect("create_scan");

    // Only now does replica b listen: it never heard the scan's notification.
    let b = PgStore::connect(db.url(), 1).expect("pool b");
    let wakeups = LocalWakeups::relayed(10);
    let mut waiter = wakeups.subscribe(fleet.id).expect("room");
    let relay = fleetpass_store_postgres::Relay {
        wakeups: wakeups.clone(),
        clock: std::sync::Arc::new(clock),
    };
    let url = db.url().to_owned();
    let listener = tokio::spawn(async move { b.watch_changes(&url, relay).await });
    let woken = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if waiter.next().await == Wakeup::Scan {
                return clock.now();
            }
        }
    })
    .await
    .expect("woken within 30 s");
    listener.abort();
    assert!(
        woken >= not_before,
        "not before its time: {woken} < {not_before}"
    );
}

/// How long until `replica` reads `wanted` as the token policy of `tenant` (polling
/// every 5 ms), failing past the spec's 5 s.
async fn until_policy(
    replica: &PgStore,
    tenant: fleetpass_domain::ids::TenantId,
    wanted: fleetpass_domain::policy::TokenPolicy,
) -> Duration {
    let started = Instant::now();
    loop {
        let policy = replica
            .get_token_policy(tenant)
            .await
            .expect("get_token_policy");
        if policy == wanted {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not seen within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn thirty_days() -> fleetpass_domain::policy::TokenPolicy {
    fleetpass_domain::policy::TokenPolicy {
        max_token_days: Some(fleetpass_domain::token::TokenTtlDays::new(30).expect("30 days")),
        max_enrollment_hours: None,
    }
}

/// A token policy set through one replica reaches a watching replica by notification,
/// though that replica serves the policy (what `/api/me` shows) from its cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_policy_change_reaches_a_watching_replica_by_notification() {
    use fleetpass_domain::policy::TokenPolicy;

    let db = TestDatabase::fresh().await;
    let (a, b) = (
        PgStore::connect(db.url(), 2).expect("pool a"),
        PgStore::connect(db.url(), 2).expect("pool b"),
    );
    let watcher = b.clone();
    let url = db.url().to_owned();
    let watching = tokio::spawn(async move { watcher.watch_auth_changes(&url).await });
    let fx = Fixtures::new();
    let new = fx.new_tenant();
    a.create_tenant(&new).await.expect("create_tenant");
    let t = new.tenant.id;
    for replica in [&a, &b] {
        assert_eq!(
            replica.get_token_policy(t).await.expect("get_token_policy"),
            TokenPolicy::NONE,
            "cached: no policy yet"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit = fx.audit(t, actions::TOKEN_POLICY_UPDATED, Some(t.as_uuid()));
    a.set_token_policy(t, &thirty_days(), &audit)
        .await
        .expect("set_token_policy");
    assert_eq!(
        a.get_token_policy(t).await.expect("get_token_policy"),
        thirty_days(),
        "the replica that set it sees it at once"
    );
    let seen = until_policy(&b, t, thirty_days()).await;
    assert!(
        seen < Duration::from_secs(1),
        "a notification, not the 2 s expiry, reached the other replica: {seen:?}"
    );
    watching.abort();
}

/// The policy is read from the cache, not per request: a change the cache was not told
/// of (written behind the store's back) is not seen at once, and the cache's expiry
/// still bounds how stale a replica is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_policy_reads_are_cached_and_expire_within_two_seconds() {
    use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
    use fleetpass_domain::policy::TokenPolicy;

    let db = TestDatabase::fresh().await;
    let fx = Fixtures::new();
    let new = fx.new_tenant();
    db.create_tenant(&new).await.expect("create_tenant");
    let t = new.tenant.id;
    assert_eq!(
        db.get_token_policy(t).await.expect("get_token_policy"),
        TokenPolicy::NONE
    );
    let mut conn = AsyncPgConnection::establish(db.url())
        .await
        .expect("connect");
    diesel::sql_query(format!(
        "UPDATE tenants SET max_token_days = 30 WHERE id = '{}'",
        t.as_uuid()
    ))
    .execute(&mut conn)
    .await
    .expect("an update the cache does not hear of");
    assert_eq!(
        db.get_token_policy(t).await.expect("get_token_policy"),
        TokenPolicy::NONE,
        "served from the cache: no query"
    );
    let seen = until_policy(&db, t, thirty_days()).await;
    assert!(
        seen <= Duration::from_millis(2100),
        "within the 2 s expiry: {seen:?}"
    );
}

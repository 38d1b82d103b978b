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

//! The authentication cache across pools, as separate replicas would have them: a
//! revocation on one pool is seen at once by that pool and, through `NOTIFY`, by a
//! watching pool long before the cache's own expiry; without the watcher the expiry
//! alone bounds it.

use std::time::{Duration, Instant};

use fleetpass_contract::fixtures::Fixtures;
use fleetpass_domain::audit::actions;
use fleetpass_domain::token::TokenStatus;
use fleetpass_ports::Store;
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

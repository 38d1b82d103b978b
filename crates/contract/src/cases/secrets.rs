//! The contract cases of the leaked-secret lookups, which search every tenant.

use fleetpass_domain::audit::actions;
use fleetpass_domain::fleet::{Agent, EnrollmentRefusal, EnrollmentToken};
use fleetpass_domain::secret::{SecretDigest, SecretKind};
use fleetpass_domain::share::{Artifact, ShareLink};
use fleetpass_ports::Store;
use fleetpass_ports::store::ShareAccess;
use time::Duration;

use super::{accessed, completed_scan, opened, used};
use crate::fixtures::Fixtures;
use crate::support::{AgentMaker, Auditor, Must, Setup};

/// `find_enrollment_token_by_digest` takes no tenant: it finds the token of each of two
/// tenants by its secret's digest, as stored, and still finds it once used up, expired
/// or revoked. A digest that is no enrollment token's secret (a fresh one, an API
/// token's, an agent's) finds nothing. Lookups write no event.
pub async fn find_enrollment_token_by_digest_any_tenant_and_state(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let (fleet, one_time, one_time_secret) = a.fleet().await;
    let (_, foreign, foreign_secret) = b.fleet().await;
    let expires = fx.now() + Duration::hours(1);
    let (expiring, expiring_secret) = a
        .add_enrollment_token(fx.enrollment_token_with(&fleet, 5, expires))
        .await;
    let (to_revoke, to_revoke_secret) = a
        .add_enrollment_token(fx.enrollment_token_with(&fleet, 5, fx.now() + Duration::days(1)))
        .await;
    let find = |digest: SecretDigest| async move {
        store
            .find_enrollment_token_by_digest(&digest)
            .await
            .must("find_enrollment_token_by_digest")
    };

    assert_eq!(
        find(one_time_secret.digest()).await,
        Some(one_time.clone()),
        "tenant A's token, as stored"
    );
    assert_eq!(
        find(foreign_secret.digest()).await,
        Some(foreign),
        "tenant B's token: the lookup is not scoped to any tenant"
    );

    let maker = AgentMaker::new(&fx, fx.now());
    let (_, _, agent_secret) = a.enroll(&maker, &one_time_secret.digest()).await;
    assert_eq!(
        maker.refused(store, &one_time_secret.digest()).await,
        EnrollmentRefusal::UsedUp,
        "the one-time token is used up"
    );
    assert_eq!(
        find(one_time_secret.digest()).await,
        Some(used(&one_time, 1)),
        "a used-up token is found, with its use counted"
    );

    assert_eq!(
        AgentMaker::new(&fx, expires)
            .refused(store, &expiring_secret.digest())
            .await,
        EnrollmentRefusal::Expired,
        "the token is expired at expires_at"
    );
    assert_eq!(
        find(expiring_secret.digest()).await,
        Some(expiring),
        "an expired token is found"
    );

    let at = fx.now() + Duration::minutes(5);
    let audit = a.audit(actions::ENROLLMENT_TOKEN_REVOKED, to_revoke.id.as_uuid());
    store
        .revoke_enrollment_token(a.id(), fleet.id, to_revoke.id, at, &audit)
        .await
        .must("revoke_enrollment_token");
    a.logged(&audit);
    assert_eq!(
        find(to_revoke_secret.digest()).await,
        Some(EnrollmentToken {
            revoked_at: Some(at),
            ..to_revoke
        }),
        "a revoked token is found, as revoked"
    );

    for (what, digest) in [
        (
            "a fresh enrollment secret",
            fx.secret_of(SecretKind::Enrollment).digest(),
        ),
        ("an API token's secret", a.new.digest),
        ("an agent's secret", agent_secret.digest()),
    ] {
        let got = find(digest).await;
        assert!(
            got.is_none(),
            "find_enrollment_token_by_digest with {what}: expected None, got {got:?}"
        );
    }
    a.check_log("of tenant A (lookups write nothing)").await;
    b.check_log("of tenant B (lookups write nothing)").await;
}

/// `find_share_link_by_digest` takes no tenant: it finds the link of each of two
/// tenants by its token's digest, as stored, and still finds it once its accesses are
/// used up, past its expiry or revoked. A digest that is no share link's token (a fresh
/// one, an API token's, an enrollment token's) finds nothing. Lookups write no event.
pub async fn find_share_link_by_digest_any_tenant_and_state(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let accesses = Auditor::accesses(&fx);
    let (_, scan) = completed_scan(&mut a, &fx).await;
    let (_, foreign_scan) = completed_scan(&mut b, &fx).await;
    let (_, _, enrollment_secret) = a.fleet().await;
    let week = t0 + Duration::days(7);
    let (open, open_secret) = a.add_share_link(fx.share_link(&scan, None, week)).await;
    let (foreign, foreign_secret) = b
        .add_share_link(fx.share_link(&foreign_scan, None, week))
        .await;
    let (once, once_secret) = a.add_share_link(fx.share_link(&scan, Some(1), week)).await;
    let expires = t0 + Duration::hours(1);
    let (expiring, expiring_secret) = a
        .add_share_link(fx.share_link(&scan, Some(5), expires))
        .await;
    let (to_revoke, to_revoke_secret) = a.add_share_link(fx.share_link(&scan, None, week)).await;
    let find = |digest: SecretDigest| async move {
        store
            .find_share_link_by_digest(&digest)
            .await
            .must("find_share_link_by_digest")
    };

    assert_eq!(
        find(open_secret.digest()).await,
        Some(open),
        "tenant A's link, as stored"
    );
    assert_eq!(
        find(foreign_secret.digest()).await,
        Some(foreign),
        "tenant B's link: the lookup is not scoped to any tenant"
    );

    opened(
        a.access(&accesses, &once_secret.digest(), t0, Artifact::Report)
            .await,
        "the one access of a link of 1",
    );
    assert_eq!(
        a.access(&accesses, &once_secret.digest(), t0, Artifact::Report)
            .await,
        ShareAccess::Unavailable,
        "a link of 1 access, opened once"
    );
    assert_eq!(
        find(once_secret.digest()).await,
        Some(accessed(&once, 1, t0)),
        "a used-up link is found, with its access counted"
    );

    assert_eq!(
        a.access(
            &accesses,
            &expiring_secret.digest(),
            expires,
            Artifact::Report
        )
        .await,
        ShareAccess::Unavailable,
        "the link is expired at expires_at"
    );
    assert_eq!(
        find(expiring_secret.digest()).await,
        Some(expiring),
        "an expired link is found"
    );

    let at = t0 + Duration::minutes(5);
    let audit = a.audit(actions::SHARE_LINK_REVOKED, to_revoke.id.as_uuid());
    store
        .revoke_share_link(a.id(), to_revoke.id, at, &audit)
        .await
        .must("revoke_share_link");
    a.logged(&audit);
    assert_eq!(
        find(to_revoke_secret.digest()).await,
        Some(ShareLink {
            revoked_at: Some(at),
            ..to_revoke
        }),
        "a revoked link is found, as revoked"
    );

    for (what, digest) in [
        (
            "a fresh share token",
            fx.secret_of(SecretKind::Share).digest(),
        ),
        ("an API token's secret", a.new.digest),
        ("an enrollment token's secret", enrollment_secret.digest()),
    ] {
        let got = find(digest).await;
        assert!(
            got.is_none(),
            "find_share_link_by_digest with {what}: expected None, got {got:?}"
        );
    }
    a.check_log("of tenant A (lookups write nothing)").await;
    b.check_log("of tenant B (lookups write nothing)").await;
}

/// `find_agent_by_secret_digest` takes no tenant: it finds the agent of each of two
/// tenants by its secret's digest, as stored, and still finds it once revoked. A digest
/// that is no agent's secret (a fresh one, an API token's, an enrollment token's) finds
/// nothing. Lookups write no event.
pub async fn find_agent_by_secret_digest_any_tenant_and_state(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let maker = AgentMaker::new(&fx, fx.now());
    let (_, _, a_enrollment) = a.fleet().await;
    let (_, _, b_enrollment) = b.fleet().await;
    let (agent, _, agent_secret) = a.enroll(&maker, &a_enrollment.digest()).await;
    let (foreign, _, foreign_secret) = b.enroll(&maker, &b_enrollment.digest()).await;
    let find = |digest: SecretDigest| async move {
        store
            .find_agent_by_secret_digest(&digest)
            .await
            .must("find_agent_by_secret_digest")
    };

    assert_eq!(
        find(agent_secret.digest()).await,
        Some(agent.clone()),
        "tenant A's agent, as stored"
    );
    assert_eq!(
        find(foreign_secret.digest()).await,
        Some(foreign),
        "tenant B's agent: the lookup is not scoped to any tenant"
    );

    let at = fx.now() + Duration::minutes(5);
    let audit = a.audit(actions::AGENT_REVOKED, agent.id.as_uuid());
    store
        .revoke_agent(a.id(), agent.id, at, &audit)
        .await
        .must("revoke_agent");
    a.logged(&audit);
    assert_eq!(
        find(agent_secret.digest()).await,
        Some(Agent {
            revoked_at: Some(at),
            ..agent
        }),
        "a revoked agent is found, as revoked"
    );

    for (what, digest) in [
        ("a fresh agent secret", fx.agent_secret().digest()),
        ("an API token's secret", a.new.digest),
        ("an enrollment token's secret", a_enrollment.digest()),
    ] {
        let got = find(digest).await;
        assert!(
            got.is_none(),
            "find_agent_by_secret_digest with {what}: expected None, got {got:?}"
        );
    }
    a.check_log("of tenant A (lookups write nothing)").await;
    b.check_log("of tenant B (lookups write nothing)").await;
}

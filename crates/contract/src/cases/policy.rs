//! The contract cases of a tenant's token policy, and of the expiry cap a rotation under
//! it passes to `rotate_token`.

use fleetpass_domain::audit::actions;
use fleetpass_domain::fleet::EnrollmentTtlHours;
use fleetpass_domain::ids::TenantId;
use fleetpass_domain::policy::TokenPolicy;
use fleetpass_domain::token::{ApiToken, TokenTtlDays};
use fleetpass_ports::Store;
use time::Duration;

use super::found;
use crate::fixtures::Fixtures;
use crate::support::{Must, Setup};

fn policy(days: Option<i64>, hours: Option<i64>) -> TokenPolicy {
    TokenPolicy {
        max_token_days: days.map(|d| TokenTtlDays::new(d).expect("fixture days are valid")),
        max_enrollment_hours: hours
            .map(|h| EnrollmentTtlHours::new(h).expect("fixture hours are valid")),
    }
}

/// A new tenant has no policy; a set policy reads back exactly, every combination of
/// maxima included, and clearing it gives the empty policy back. Each change writes its
/// audit event.
pub async fn token_policy_set_then_read(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    assert_eq!(
        store.get_token_policy(t).await.must("get_token_policy"),
        TokenPolicy::NONE,
        "a new tenant has no token policy"
    );
    for wanted in [
        policy(Some(30), Some(24)),
        policy(Some(365), None),
        policy(None, Some(1)),
        policy(Some(1), Some(720)),
        TokenPolicy::NONE,
    ] {
        let audit = setup.audit(actions::TOKEN_POLICY_UPDATED, t.as_uuid());
        store
            .set_token_policy(t, &wanted, &audit)
            .await
            .must("set_token_policy");
        setup.logged(&audit);
        assert_eq!(
            store.get_token_policy(t).await.must("get_token_policy"),
            wanted,
            "get_token_policy right after set_token_policy reads what was set"
        );
    }
    setup.check_log("after set_token_policy").await;
}

/// A tenant's policy is its own: another tenant's stays empty, and an unknown tenant is
/// `NotFound` on both calls, with nothing written.
pub async fn token_policy_is_tenant_isolated(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let strict = policy(Some(7), Some(2));
    let audit = a.audit(actions::TOKEN_POLICY_UPDATED, a.id().as_uuid());
    store
        .set_token_policy(a.id(), &strict, &audit)
        .await
        .must("set_token_policy");
    a.logged(&audit);
    assert_eq!(
        store
            .get_token_policy(b.id())
            .await
            .must("get_token_policy"),
        TokenPolicy::NONE,
        "another tenant's policy is untouched"
    );
    let unknown = TenantId::from_uuid(fx.id());
    store
        .get_token_policy(unknown)
        .await
        .must_be_not_found("get_token_policy of an unknown tenant");
    let stray = fx.audit(
        unknown,
        actions::TOKEN_POLICY_UPDATED,
        Some(unknown.as_uuid()),
    );
    store
        .set_token_policy(unknown, &strict, &stray)
        .await
        .must_be_not_found("set_token_policy of an unknown tenant");
    a.check_log("of the tenant with the policy").await;
    b.check_log("of the other tenant").await;
}

/// `rotate_token` with `expires_at_most` moves a later expiry down to it, and leaves an
/// earlier one alone: a rotation never extends a token. Reads and lookups show the
/// new expiry.
pub async fn rotate_token_caps_expiry_and_never_extends(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let (t, original) = (setup.id(), setup.new.token.clone());
    assert!(
        original.expires_at > fx.now() + Duration::days(30),
        "the fixture's admin token outlives the cap"
    );

    let cap = fx.now() + Duration::days(30);
    let second = fx.secret();
    let audit = setup.audit(actions::TOKEN_ROTATED, original.id.as_uuid());
    let rotated = store
        .rotate_token(
            t,
            original.id,
            &second.digest(),
            &second.hint(),
            fx.now() + Duration::hours(24),
            Some(cap),
            &audit,
        )
        .await
        .must("rotate_token with a cap");
    setup.logged(&audit);
    let capped = ApiToken {
        hint: second.hint(),
        expires_at: cap,
        ..original.clone()
    };
    assert_eq!(rotated, capped, "the expiry is capped");
    assert_eq!(
        store.get_token(t, original.id).await.must("get_token"),
        capped
    );
    assert_eq!(
        store
            .find_token_by_digest(&second.digest())
            .await
            .must("find_token_by_digest"),
        found(&capped, false),
        "a lookup of the new secret shows the capped expiry"
    );

    // A later cap does not move the expiry back out.
    let third = fx.secret();
    let audit = setup.audit(actions::TOKEN_ROTATED, original.id.as_uuid());
    let rotated = store
        .rotate_token(
            t,
            original.id,
            &third.digest(),
            &third.hint(),
            fx.now() + Duration::hours(24),
            Some(fx.now() + Duration::days(300)),
            &audit,
        )
        .await
        .must("rotate_token with a later cap");
    setup.logged(&audit);
    assert_eq!(
        rotated.expires_at, cap,
        "a cap later than the expiry changes nothing"
    );
    setup.check_log("after capped rotations").await;
}

//! The contract cases of API tokens.

use std::collections::BTreeSet;

use fleetpass_domain::audit::actions;
use fleetpass_domain::identity::{EnvScope, Role};
use fleetpass_domain::ids::TokenId;
use fleetpass_domain::network::AllowedCidrs;
use fleetpass_domain::token::{ApiToken, TokenName};
use fleetpass_ports::Store;
use time::Duration;

use super::found;
use crate::fixtures::Fixtures;
use crate::support::{Must, Setup, all};

/// A created token reads back as written, by id and by its secret's digest; an unknown
/// digest finds nothing.
pub async fn token_create_then_lookup(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let env = setup.environment().await;
    let (mut token, secret) =
        fx.scoped_token(&setup.new.admin, &[env.id, setup.new.environment.id]);
    token.rate_limit_per_minute = Some(Fixtures::rate_limit(1200));
    let (token, secret) = setup.add_token((token, secret)).await;

    assert_eq!(store.get_token(t, token.id).await.must("get_token"), token);
    let lookup = store
        .find_token_by_digest(&secret.digest())
        .await
        .must("find_token_by_digest");
    assert_eq!(lookup, found(&token, false), "find_token_by_digest");
    let unknown = store
        .find_token_by_digest(&fx.secret().digest())
        .await
        .must("find_token_by_digest");
    assert_eq!(unknown, None, "an unknown digest finds nothing");
    store
        .get_token(t, TokenId::from_uuid(fx.id()))
        .await
        .must_be_not_found("get_token of an unknown id");
    setup.check_log("after create_token").await;
}

/// `list_tokens` lists the tenant's tokens newest first, and only them.
pub async fn token_list_newest_first(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let admin = a.new.admin.clone();
    let mut expected = vec![a.new.token.clone()];
    for role in [Role::Viewer, Role::Operator, Role::Admin] {
        expected.push(a.token(&admin, role).await.0);
    }
    expected.reverse();
    let listed = all(
        "list_tokens",
        |p| store.list_tokens(a.id(), None, p),
        |t| t.id.as_uuid(),
    )
    .await;
    assert_eq!(listed, expected, "list_tokens, newest first");
    let listed = all(
        "list_tokens",
        |p| store.list_tokens(b.id(), None, p),
        |t| t.id.as_uuid(),
    )
    .await;
    assert_eq!(
        listed,
        vec![b.new.token.clone()],
        "list_tokens of another tenant"
    );
}

/// `update_token` writes the name and the rate limit and nothing else, even when the
/// token passed in differs in other fields.
pub async fn update_token_writes_only_name_and_rate_limit(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let (t, original) = (setup.id(), setup.new.token.clone());

    let sneaky = ApiToken {
        name: TokenName::new("renamed").unwrap_or_else(|e| panic!("{e}")),
        rate_limit_per_minute: Some(Fixtures::rate_limit(42)),
        role: Role::Viewer,
        scope: EnvScope::Only(BTreeSet::from([setup.new.environment.id])),
        expires_at: fx.now() + Duration::days(1000),
        revoked_at: Some(fx.now()),
        last_used_at: Some(fx.now()),
        hint: "fpk_…nope".to_owned(),
        ..original.clone()
    };
    let expected = ApiToken {
        name: sneaky.name.clone(),
        rate_limit_per_minute: sneaky.rate_limit_per_minute,
        ..original
    };
    let cleared = ApiToken {
        rate_limit_per_minute: None,
        ..expected.clone()
    };
    for (update, expected) in [(&sneaky, &expected), (&cleared, &cleared)] {
        let audit = setup.audit(actions::TOKEN_UPDATED, update.id.as_uuid());
        store
            .update_token(update, &audit)
            .await
            .must("update_token");
        setup.logged(&audit);
        let stored = store
            .get_token(t, update.id)
            .await
            .must("get_token after update_token");
        assert_eq!(
            stored, *expected,
            "update_token writes only the name and the rate limit"
        );
    }
    setup.check_log("after update_token").await;
}

/// Revoking sets `revoked_at` and records an event; revoking again returns the token
/// with its first `revoked_at` and records nothing.
pub async fn revoke_token_is_idempotent(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let (t, id) = (setup.id(), setup.new.token.id);

    let first_at = fx.now() + Duration::minutes(1);
    let audit = setup.audit(actions::TOKEN_REVOKED, id.as_uuid());
    let revoked = store
        .revoke_token(t, id, first_at, &audit)
        .await
        .must("revoke_token");
    setup.logged(&audit);
    let expected = ApiToken {
        revoked_at: Some(first_at),
        ..setup.new.token.clone()
    };
    assert_eq!(revoked, expected, "revoke_token returns the revoked token");
    assert_eq!(
        store
            .get_token(t, id)
            .await
            .must("get_token after revoke_token"),
        expected
    );

    let audit = setup.audit(actions::TOKEN_REVOKED, id.as_uuid());
    let again = store
        .revoke_token(t, id, fx.now() + Duration::hours(2), &audit)
        .await
        .must("revoke_token twice");
    assert_eq!(
        again, expected,
        "a second revoke keeps the first revoked_at"
    );
    let lookup = store
        .find_token_by_digest(&setup.new.digest)
        .await
        .must("find_token_by_digest");
    assert_eq!(
        lookup,
        found(&expected, false),
        "a revoked token's secret is still found, as revoked"
    );
    setup.check_log("after revoking twice (one event)").await;
}

/// Rotating stores the new secret with no end, caps every earlier secret at the
/// earliest end it was given, updates the hint and records an event.
pub async fn rotate_token_caps_old_secrets(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let (t, original) = (setup.id(), setup.new.token.clone());
    let valid_until = |digest| async move {
        match store
            .find_token_by_digest(&digest)
            .await
            .must("find_token_by_digest")
        {
            Some(lookup) if lookup.token.id == original.id => lookup.secret_valid_until,
            other => panic!("a rotated secret must still find its token, got {other:?}"),
        }
    };
    let hour = |h| fx.now() + Duration::hours(h);

    let second = fx.secret();
    let audit = setup.audit(actions::TOKEN_ROTATED, original.id.as_uuid());
    let rotated = store
        .rotate_token(
            t,
            original.id,
            &second.digest(),
            &second.hint(),
            hour(24),
            None,
            &audit,
        )
        .await;
    setup.logged(&audit);
    let expected = ApiToken {
        hint: second.hint(),
        ..original.clone()
    };
    assert_eq!(
        rotated.must("rotate_token"),
        expected,
        "rotate_token returns the token with the new hint"
    );
    assert_eq!(
        store
            .get_token(t, original.id)
            .await
            .must("get_token after rotate_token"),
        expected
    );
    assert_eq!(
        valid_until(setup.new.digest).await,
        Some(hour(24)),
        "the old secret ends at old_valid_until"
    );
    let lookup = store
        .find_token_by_digest(&second.digest())
        .await
        .must("find_token_by_digest");
    assert_eq!(
        lookup,
        found(&expected, false),
        "the new secret has no end of its own"
    );

    // A later end never extends a secret that already ends earlier.
    let third = fx.secret();
    let audit = setup.audit(actions::TOKEN_ROTATED, original.id.as_uuid());
    let rotated = store
        .rotate_token(
            t,
            original.id,
            &third.digest(),
            &third.hint(),
            hour(48),
            None,
            &audit,
        )
        .await;
    rotated.must("rotate_token again");
    setup.logged(&audit);
    assert_eq!(
        valid_until(setup.new.digest).await,
        Some(hour(24)),
        "the first secret keeps its earlier end"
    );
    assert_eq!(
        valid_until(second.digest()).await,
        Some(hour(48)),
        "the second secret ends at the new end"
    );
    assert_eq!(
        valid_until(third.digest()).await,
        None,
        "the third secret has no end"
    );

    // An earlier end shortens every secret that would outlive it.
    let fourth = fx.secret();
    let audit = setup.audit(actions::TOKEN_ROTATED, original.id.as_uuid());
    let rotated = store
        .rotate_token(
            t,
            original.id,
            &fourth.digest(),
            &fourth.hint(),
            hour(1),
            None,
            &audit,
        )
        .await;
    assert_eq!(
        rotated.must("rotate_token with a short grace").hint,
        fourth.hint(),
        "the newest secret's hint"
    );
    setup.logged(&audit);
    for digest in [setup.new.digest, second.digest(), third.digest()] {
        assert_eq!(
            valid_until(digest).await,
            Some(hour(1)),
            "every old secret is capped at the shorter end"
        );
    }
    assert_eq!(
        valid_until(fourth.digest()).await,
        None,
        "the newest secret has no end"
    );
    setup.check_log("after three rotations").await;
}

/// `touch_token` records the last use, and nothing else changes.
pub async fn touch_token_sets_last_used(store: &dyn Store) {
    let fx = Fixtures::new();
    let setup = Setup::tenant(store, &fx).await;
    let (t, token) = (setup.id(), &setup.new.token);

    let first = fx.now() + Duration::minutes(3);
    store.touch_token(token.id, first).await.must("touch_token");
    let expected = ApiToken {
        last_used_at: Some(first),
        ..token.clone()
    };
    assert_eq!(
        store
            .get_token(t, token.id)
            .await
            .must("get_token after touch_token"),
        expected
    );

    let later = fx.now() + Duration::minutes(10);
    store
        .touch_token(token.id, later)
        .await
        .must("touch_token again");
    let expected = ApiToken {
        last_used_at: Some(later),
        ..token.clone()
    };
    let lookup = store
        .find_token_by_digest(&setup.new.digest)
        .await
        .must("find_token_by_digest");
    assert_eq!(
        lookup,
        found(&expected, false),
        "a later use moves last_used_at"
    );

    // Uses may arrive out of order (several workers, batched writes): never backwards.
    store
        .touch_token(token.id, fx.now() + Duration::minutes(5))
        .await
        .must("touch_token with an earlier use");
    assert_eq!(
        store
            .get_token(t, token.id)
            .await
            .must("get_token")
            .last_used_at,
        Some(later),
        "an earlier use does not move last_used_at back"
    );
    setup.check_log("after touch_token (no events)").await;
}

/// Every token read and write through another tenant is `NotFound` and changes nothing:
/// the token stays live under its name and hint, and a refused rotation's secret is not
/// stored.
pub async fn token_cross_tenant_is_not_found(store: &dyn Store) {
    let fx = Fixtures::new();
    let a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let (token, other) = (&a.new.token, b.id());

    store
        .get_token(other, token.id)
        .await
        .must_be_not_found("get_token via another tenant");
    let name = TokenName::new("stolen").unwrap_or_else(|e| panic!("{e}"));
    let moved = ApiToken {
        tenant_id: other,
        name,
        ..token.clone()
    };
    let audit = b.audit(actions::TOKEN_UPDATED, token.id.as_uuid());
    store
        .update_token(&moved, &audit)
        .await
        .must_be_not_found("update_token via another tenant");
    let audit = b.audit(actions::TOKEN_REVOKED, token.id.as_uuid());
    let revoked = store.revoke_token(other, token.id, fx.now(), &audit).await;
    revoked.must_be_not_found("revoke_token via another tenant");
    let secret = fx.secret();
    let audit = b.audit(actions::TOKEN_ROTATED, token.id.as_uuid());
    let rotated = store
        .rotate_token(
            other,
            token.id,
            &secret.digest(),
            &secret.hint(),
            fx.now(),
            None,
            &audit,
        )
        .await;
    rotated.must_be_not_found("rotate_token via another tenant");

    assert_eq!(
        store
            .get_token(a.id(), token.id)
            .await
            .must("get_token in its own tenant"),
        *token
    );
    let lookup = store
        .find_token_by_digest(&a.new.digest)
        .await
        .must("find_token_by_digest");
    assert_eq!(
        lookup,
        found(token, false),
        "the secret still works, with no end"
    );
    let lookup = store
        .find_token_by_digest(&secret.digest())
        .await
        .must("find_token_by_digest");
    assert_eq!(lookup, None, "a refused rotation stores no secret");
    let listed = all(
        "list_tokens",
        |p| store.list_tokens(other, None, p),
        |t| t.id.as_uuid(),
    )
    .await;
    assert_eq!(
        listed,
        vec![b.new.token.clone()],
        "list_tokens shows only the tenant's own"
    );
    a.check_log("of the owning tenant").await;
    b.check_log("of the other tenant").await;
}

/// A token's and an enrollment token's `allowed_cidrs` are stored as written and read
/// back by every lookup (the authentication cache included); `update_token` writes a
/// new list; `record_audit` appends an event with no change beside it.
pub async fn allowed_cidrs_round_trip_and_refusals_are_recorded(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let office = AllowedCidrs::parse(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"])
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut token, secret) = fx.token(&setup.new.admin, Role::Viewer, EnvScope::All);
    token.allowed_cidrs = office.clone();
    let (token, secret) = setup.add_token((token, secret)).await;
    assert_eq!(store.get_token(t, token.id).await.must("get_token"), token);
    assert_eq!(
        store
            .find_token_by_digest(&secret.digest())
            .await
            .must("find_token_by_digest"),
        found(&token, false)
    );
    let moved = ApiToken {
        allowed_cidrs: AllowedCidrs::parse(["198.51.100.0/24"]).unwrap_or_else(|e| panic!("{e}")),
        ..token.clone()
    };
    let audit = setup.audit(actions::TOKEN_UPDATED, token.id.as_uuid());
    store
        .update_token(&moved, &audit)
        .await
        .must("update_token");
    setup.logged(&audit);
    assert_eq!(
        store
            .find_token_by_digest(&secret.digest())
            .await
            .must("find_token_by_digest after update_token"),
        found(&moved, false),
        "update_token writes allowed_cidrs, and lookups see it at once"
    );

    let (fleet, _, _) = setup.fleet().await;
    let (mut enrollment, enrollment_secret) = fx.enrollment_token(&fleet);
    enrollment.allowed_cidrs = office;
    let (enrollment, _) = setup
        .add_enrollment_token((enrollment, enrollment_secret.clone()))
        .await;
    assert_eq!(
        store
            .find_enrollment_token_by_digest(&enrollment_secret.digest())
            .await
            .must("find_enrollment_token_by_digest"),
        Some(enrollment.clone())
    );

    let refused = setup.audit(actions::TOKEN_NETWORK_REFUSED, token.id.as_uuid());
    store.record_audit(&refused).await.must("record_audit");
    setup.logged(&refused);
    setup.check_log("after record_audit").await;
}

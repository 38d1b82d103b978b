//! The contract cases of principals: users and service accounts.

use fleetpass_domain::audit::actions;
use fleetpass_domain::identity::{
    Email, PersonName, Principal, PrincipalKind, Role, ServiceAccountName,
};
use fleetpass_domain::ids::PrincipalId;
use fleetpass_domain::token::ApiToken;
use fleetpass_ports::Store;
use fleetpass_ports::store::{PrincipalFilter, constraint};
use time::Duration;

use super::found;
use crate::fixtures::Fixtures;
use crate::support::{Must, Setup, all};

/// Users and service accounts are listed apart, each newest first, and read back as
/// written.
pub async fn principals_listed_by_kind(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (u1, s1) = (setup.user().await, setup.service_account().await);
    let (u2, s2) = (setup.user().await, setup.service_account().await);
    for p in [&u1, &s1, &u2, &s2] {
        assert_eq!(store.get_principal(t, p.id).await.must("get_principal"), *p);
    }

    let users = all(
        "list_principals(Users)",
        |p| store.list_principals(t, PrincipalFilter::Users, p),
        |p| p.id.as_uuid(),
    )
    .await;
    assert_eq!(users, vec![u2, u1], "list_principals(Users)");
    let accounts = all(
        "list_principals(ServiceAccounts)",
        |p| store.list_principals(t, PrincipalFilter::ServiceAccounts, p),
        |p| p.id.as_uuid(),
    )
    .await;
    assert_eq!(
        accounts,
        vec![s2, s1, setup.new.admin.clone()],
        "list_principals(ServiceAccounts)"
    );
    setup.check_log("after creating principals").await;
}

/// A taken user email is `Conflict(USER_EMAIL)` and a taken service account name
/// `Conflict(SERVICE_ACCOUNT_NAME)` within a tenant; both are free in another tenant,
/// user display names are not unique, and the two kinds never clash with each other.
pub async fn principal_names_unique_per_tenant(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let user = a.user().await;
    let PrincipalKind::User {
        email,
        name: Some(display_name),
    } = &user.kind
    else {
        panic!(
            "fixture users have an email and a display name, got {:?}",
            user.kind
        )
    };

    // Emails are lowercased when made, so a differently cased address is the same one.
    let shouted = Email::new(&email.as_str().to_uppercase()).unwrap_or_else(|e| panic!("{e}"));
    let twin = fx.user_with_email(a.id(), &shouted);
    let audit = a.audit(actions::USER_CREATED, twin.id.as_uuid());
    store
        .create_principal(&twin, &audit)
        .await
        .must_conflict(constraint::USER_EMAIL, "a user with a taken email");
    store
        .get_principal(a.id(), twin.id)
        .await
        .must_be_not_found("the refused user");
    b.add_principal(fx.user_with_email(b.id(), email)).await;

    let namesake = a.user().await;
    assert!(
        matches!(&namesake.kind, PrincipalKind::User { name: Some(n), .. } if n == display_name),
        "fixture users share a display name, so two of them exist now"
    );

    let account = a.service_account().await;
    let PrincipalKind::ServiceAccount { name } = &account.kind else {
        panic!(
            "fixture service accounts are service accounts, got {:?}",
            account.kind
        )
    };
    let twin = fx.service_account_named(a.id(), name);
    let audit = a.audit(actions::SERVICE_ACCOUNT_CREATED, twin.id.as_uuid());
    let refused = store.create_principal(&twin, &audit).await;
    refused.must_conflict(
        constraint::SERVICE_ACCOUNT_NAME,
        "a service account with a taken name",
    );
    store
        .get_principal(a.id(), twin.id)
        .await
        .must_be_not_found("the refused service account");
    b.add_principal(fx.service_account_named(b.id(), name))
        .await;

    for text in [email.as_str(), display_name.as_str()] {
        let name = ServiceAccountName::new(text).unwrap_or_else(|e| panic!("{e}"));
        a.add_principal(fx.service_account_named(a.id(), &name))
            .await;
    }
    a.check_log("of tenant A").await;
    b.check_log("of tenant B").await;
}

/// `update_principal` replaces names, role and disabled, keeps id, tenant and creation
/// time, and leaves tokens alone without `revoke_tokens_at`.
pub async fn update_principal_writes_fields(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let user = setup.user().await;
    let (token, _) = setup.token(&user, Role::Viewer).await;

    let grace = PersonName::new("Grace Hopper").unwrap_or_else(|e| panic!("{e}"));
    let changes = [
        Principal {
            kind: PrincipalKind::User {
                email: fx.email(),
                name: Some(grace),
            },
            role: Role::Admin,
            disabled: true,
            ..user.clone()
        },
        Principal {
            kind: PrincipalKind::User {
                email: fx.email(),
                name: None,
            },
            disabled: false,
            ..user.clone()
        },
        Principal {
            kind: PrincipalKind::ServiceAccount {
                name: fx.service_account_name(),
            },
            role: Role::Viewer,
            ..setup.new.admin.clone()
        },
    ];
    for changed in changes {
        let action = if changed.is_user() {
            actions::USER_UPDATED
        } else {
            actions::SERVICE_ACCOUNT_UPDATED
        };
        let audit = setup.audit(action, changed.id.as_uuid());
        store
            .update_principal(&changed, None, &audit)
            .await
            .must("update_principal");
        setup.logged(&audit);
        assert_eq!(
            store
                .get_principal(t, changed.id)
                .await
                .must("get_principal after update"),
            changed
        );
    }

    assert_eq!(
        store.get_token(t, token.id).await.must("get_token"),
        token,
        "no revoke_tokens_at, no revocation"
    );
    let admin_token = store
        .get_token(t, setup.new.token.id)
        .await
        .must("get_token");
    assert_eq!(
        admin_token, setup.new.token,
        "no revoke_tokens_at, no revocation"
    );
    setup.check_log("after updates").await;
}

/// An update that clashes is `Conflict` and changes nothing: not the principal, not its
/// tokens even with `revoke_tokens_at`, not the audit log.
pub async fn update_principal_conflict_changes_nothing(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (first, second, account) = (
        setup.user().await,
        setup.user().await,
        setup.service_account().await,
    );
    let (token, _) = setup.token(&second, Role::Viewer).await;

    let clash = Principal {
        kind: first.kind.clone(),
        disabled: true,
        ..second.clone()
    };
    let audit = setup.audit(actions::USER_UPDATED, second.id.as_uuid());
    let refused = store.update_principal(&clash, Some(fx.now()), &audit).await;
    refused.must_conflict(
        constraint::USER_EMAIL,
        "update_principal onto a taken email",
    );
    assert_eq!(
        store
            .get_principal(t, second.id)
            .await
            .must("get_principal after a refused update"),
        second
    );
    let kept = store.get_token(t, token.id).await.must("get_token");
    assert_eq!(kept, token, "a refused update must not revoke tokens");

    let clash = Principal {
        kind: setup.new.admin.kind.clone(),
        ..account.clone()
    };
    let audit = setup.audit(actions::SERVICE_ACCOUNT_UPDATED, account.id.as_uuid());
    let refused = store.update_principal(&clash, None, &audit).await;
    refused.must_conflict(
        constraint::SERVICE_ACCOUNT_NAME,
        "update_principal onto a taken service account name",
    );
    assert_eq!(
        store
            .get_principal(t, account.id)
            .await
            .must("get_principal after a refused update"),
        account
    );
    setup.check_log("after refused updates").await;
}

/// With `revoke_tokens_at`, `update_principal` revokes exactly the principal's live
/// tokens at that time; a token revoked before keeps its time, others' tokens stay
/// live, and a lookup then reports the disabled owner.
pub async fn update_principal_revokes_tokens(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let user = setup.user().await;
    let (early, _) = setup.token(&user, Role::Operator).await;
    let (live, live_secret) = setup.token(&user, Role::Operator).await;
    let earlier = fx.now() + Duration::minutes(5);
    let audit = setup.audit(actions::TOKEN_REVOKED, early.id.as_uuid());
    store
        .revoke_token(t, early.id, earlier, &audit)
        .await
        .must("revoke_token");
    setup.logged(&audit);

    let at = fx.now() + Duration::hours(1);
    let disabled = Principal {
        disabled: true,
        ..user.clone()
    };
    let audit = setup.audit(actions::USER_UPDATED, user.id.as_uuid());
    store
        .update_principal(&disabled, Some(at), &audit)
        .await
        .must("update_principal with revoke_tokens_at");
    setup.logged(&audit);

    let early = store.get_token(t, early.id).await.must("get_token");
    assert_eq!(
        early.revoked_at,
        Some(earlier),
        "a token revoked before keeps its first revocation time"
    );
    let expected = ApiToken {
        revoked_at: Some(at),
        ..live
    };
    assert_eq!(
        store.get_token(t, expected.id).await.must("get_token"),
        expected,
        "revoked at revoke_tokens_at"
    );
    let lookup = store
        .find_token_by_digest(&live_secret.digest())
        .await
        .must("find_token_by_digest");
    assert_eq!(lookup, found(&expected, true), "a disabled owner's token");
    let admin_token = store
        .get_token(t, setup.new.token.id)
        .await
        .must("get_token");
    assert_eq!(
        admin_token, setup.new.token,
        "another principal's token stays live"
    );
    setup.check_log("after disabling with revocation").await;
}

/// `delete_principal` removes the principal, revokes its live tokens at `at`, keeps
/// earlier revocation times, clears the tokens' owner, and records one event.
pub async fn delete_principal_revokes_and_orphans_tokens(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let account = setup.service_account().await;
    let early = setup.token(&account, Role::Operator).await;
    let live = setup.token(&account, Role::Operator).await;
    let earlier = fx.now() + Duration::minutes(5);
    let audit = setup.audit(actions::TOKEN_REVOKED, early.0.id.as_uuid());
    store
        .revoke_token(t, early.0.id, earlier, &audit)
        .await
        .must("revoke_token");
    setup.logged(&audit);

    let at = fx.now() + Duration::hours(1);
    let audit = setup.audit(actions::SERVICE_ACCOUNT_DELETED, account.id.as_uuid());
    store
        .delete_principal(t, account.id, at, &audit)
        .await
        .must("delete_principal");
    setup.logged(&audit);
    store
        .get_principal(t, account.id)
        .await
        .must_be_not_found("get_principal after delete");

    for ((token, secret), revoked_at) in [(early, earlier), (live, at)] {
        let expected = ApiToken {
            owner_id: None,
            revoked_at: Some(revoked_at),
            ..token
        };
        assert_eq!(
            store.get_token(t, expected.id).await.must("get_token"),
            expected,
            "an orphaned token"
        );
        let lookup = store
            .find_token_by_digest(&secret.digest())
            .await
            .must("find_token_by_digest");
        assert_eq!(
            lookup,
            found(&expected, false),
            "an orphaned token's secret"
        );
    }
    let accounts = all(
        "list_principals(ServiceAccounts)",
        |p| store.list_principals(t, PrincipalFilter::ServiceAccounts, p),
        |p| p.id.as_uuid(),
    )
    .await;
    assert_eq!(
        accounts,
        vec![setup.new.admin.clone()],
        "a deleted principal is no longer listed"
    );
    let admin_token = store
        .get_token(t, setup.new.token.id)
        .await
        .must("get_token");
    assert_eq!(
        admin_token, setup.new.token,
        "another principal's token stays live"
    );

    let audit = setup.audit(actions::SERVICE_ACCOUNT_DELETED, account.id.as_uuid());
    store
        .delete_principal(t, account.id, at, &audit)
        .await
        .must_be_not_found("delete_principal twice");
    setup.check_log("after delete_principal").await;
}

/// Every principal read and write through another tenant is `NotFound` and changes
/// nothing.
pub async fn principal_cross_tenant_is_not_found(store: &dyn Store) {
    let fx = Fixtures::new();
    let a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let (admin, other) = (&a.new.admin, b.id());

    store
        .get_principal(other, admin.id)
        .await
        .must_be_not_found("get_principal via another tenant");
    let moved = Principal {
        tenant_id: other,
        disabled: true,
        ..admin.clone()
    };
    let audit = b.audit(actions::SERVICE_ACCOUNT_UPDATED, admin.id.as_uuid());
    let updated = store.update_principal(&moved, Some(fx.now()), &audit).await;
    updated.must_be_not_found("update_principal via another tenant");
    let audit = b.audit(actions::SERVICE_ACCOUNT_DELETED, admin.id.as_uuid());
    let deleted = store
        .delete_principal(other, admin.id, fx.now(), &audit)
        .await;
    deleted.must_be_not_found("delete_principal via another tenant");
    let unknown = PrincipalId::from_uuid(fx.id());
    store
        .get_principal(a.id(), unknown)
        .await
        .must_be_not_found("get_principal of an unknown id");

    assert_eq!(
        store
            .get_principal(a.id(), admin.id)
            .await
            .must("get_principal in its own tenant"),
        *admin
    );
    assert_eq!(
        store
            .get_token(a.id(), a.new.token.id)
            .await
            .must("get_token"),
        a.new.token,
        "its token untouched"
    );
    let listed = all(
        "list_principals(ServiceAccounts)",
        |p| store.list_principals(other, PrincipalFilter::ServiceAccounts, p),
        |p| p.id.as_uuid(),
    )
    .await;
    assert_eq!(
        listed,
        vec![b.new.admin.clone()],
        "list_principals shows only the tenant's own"
    );
    a.check_log("of the owning tenant").await;
    b.check_log("of the other tenant").await;
}

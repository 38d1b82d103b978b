//! The contract cases: one function per obligation of the [`Store`] port, each panicking
//! with a message naming the broken obligation.
//!
//! Every case makes its own tenants, so cases are independent even when they share one
//! store, and each case checks its tenants' whole audit log: a successful write must
//! have recorded exactly its event, a failed one nothing.

use std::collections::BTreeSet;

use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::{AuditActor, AuditEvent, actions};
use fleetpass_domain::fleet::{Agent, EnrollmentRefusal, EnrollmentToken, Fleet};
use fleetpass_domain::identity::{
    Email, EnvScope, Environment, EnvironmentName, PersonName, Principal, PrincipalKind, Role,
    ServiceAccountName,
};
use fleetpass_domain::ids::{
    AgentId, EnrollmentTokenId, EnvironmentId, FleetId, PrincipalId, ScanId, ShareLinkId, TenantId,
    TokenId,
};
use fleetpass_domain::scan::{Scan, ScanConstraints, ScanStatus, Scenario};
use fleetpass_domain::secret::{SecretDigest, SecretKind};
use fleetpass_domain::share::{Artifact, ShareLink};
use fleetpass_domain::token::{ApiToken, TokenLookup, TokenName};
use fleetpass_ports::Store;
use fleetpass_ports::store::{
    AuditFilter, PrincipalFilter, ScanFilter, ShareAccess, StoredSigningKey, constraint,
};
use futures_util::future::join_all;
use time::Duration;

use crate::fixtures::Fixtures;
use crate::support::{
    AgentMaker, Auditor, Must, Setup, all, audit_events, expect_pages_of_five, first_page, pages,
};

mod schedules;

pub use schedules::*;

/// The names of every case that [`contract_suite!`](crate::contract_suite) runs, read
/// from the same list the macro expands.
pub const ALL: &[&str] = crate::__contract_cases!(names);

/// What a lookup of a token's current, unrotated secret must return.
fn found(token: &ApiToken, owner_disabled: bool) -> Option<TokenLookup> {
    Some(TokenLookup {
        token: token.clone(),
        secret_valid_until: None,
        owner_disabled,
    })
}

/// `ping` answers on a reachable backend.
pub async fn ping_answers(store: &dyn Store) {
    store.ping().await.must("ping");
}

/// A new tenant's tenant, environment, admin, token, secret and audit events all read
/// back exactly as written.
pub async fn tenant_create_then_read(store: &dyn Store) {
    let fx = Fixtures::new();
    let setup = Setup::tenant(store, &fx).await;
    let (new, t) = (&setup.new, setup.id());

    assert_eq!(store.get_tenant(t).await.must("get_tenant"), new.tenant);
    assert_eq!(
        store
            .get_environment(t, new.environment.id)
            .await
            .must("get_environment"),
        new.environment
    );
    let production = store
        .find_environment_by_name(t, &EnvironmentName::production())
        .await;
    assert_eq!(
        production.must("find_environment_by_name(production)"),
        new.environment
    );
    assert_eq!(
        store
            .get_principal(t, new.admin.id)
            .await
            .must("get_principal"),
        new.admin
    );
    assert_eq!(
        store.get_token(t, new.token.id).await.must("get_token"),
        new.token
    );
    assert_eq!(
        store
            .find_token_by_digest(&new.digest)
            .await
            .must("find_token_by_digest"),
        found(&new.token, false),
        "the admin token's secret"
    );
    let tenants = all(
        "list_tenants",
        |p| store.list_tenants(p),
        |t| t.id.as_uuid(),
    )
    .await;
    assert!(
        tenants.contains(&new.tenant),
        "list_tenants must list the new tenant"
    );
    setup.check_log("after create_tenant").await;
}

/// A taken tenant name is `Conflict(TENANT_NAME)`, and nothing of the refused tenant is
/// stored: not its rows, not its secret, not its audit events.
pub async fn tenant_name_conflict_stores_nothing(store: &dyn Store) {
    let fx = Fixtures::new();
    let first = Setup::tenant(store, &fx).await;
    let second = fx.new_tenant_named(first.new.tenant.name.as_str());
    store
        .create_tenant(&second)
        .await
        .must_conflict(constraint::TENANT_NAME, "create_tenant with a taken name");

    let s = second.tenant.id;
    store
        .get_tenant(s)
        .await
        .must_be_not_found("the refused tenant");
    store
        .get_environment(s, second.environment.id)
        .await
        .must_be_not_found("the refused tenant's environment");
    store
        .get_principal(s, second.admin.id)
        .await
        .must_be_not_found("the refused tenant's admin");
    store
        .get_token(s, second.token.id)
        .await
        .must_be_not_found("the refused tenant's token");
    let lookup = store
        .find_token_by_digest(&second.digest)
        .await
        .must("find_token_by_digest");
    assert_eq!(
        lookup, None,
        "the refused tenant's secret must not be found"
    );
    let events = audit_events(store, s, &AuditFilter::default()).await;
    assert!(
        events.is_empty(),
        "the refused tenant must have no audit events, got {events:?}"
    );
    first.check_log("of the first tenant").await;
}

/// An unknown tenant id is `NotFound`.
pub async fn tenant_unknown_is_not_found(store: &dyn Store) {
    let fx = Fixtures::new();
    store
        .get_tenant(TenantId::from_uuid(fx.id()))
        .await
        .must_be_not_found("get_tenant of an unknown id");
}

/// `list_tenants` pages newest first and lists tenants in the order they were made.
pub async fn tenant_list_pages_newest_first(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(Setup::tenant(store, &fx).await.new.tenant);
    }
    let listed = pages(
        "list_tenants",
        2,
        |p| store.list_tenants(p),
        |t| t.id.as_uuid(),
    )
    .await;
    let ours: Vec<_> = listed
        .into_iter()
        .flatten()
        .filter(|t| made.contains(t))
        .collect();
    made.reverse();
    assert_eq!(
        ours, made,
        "list_tenants must list every new tenant, newest first"
    );
}

/// An environment can be created, read by id and by name, listed, renamed and deleted,
/// and each write records its audit event.
pub async fn environment_lifecycle(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let env = setup.environment().await;

    assert_eq!(
        store
            .get_environment(t, env.id)
            .await
            .must("get_environment"),
        env
    );
    assert_eq!(
        store
            .find_environment_by_name(t, &env.name)
            .await
            .must("find_environment_by_name"),
        env
    );
    let listed = all(
        "list_environments",
        |p| store.list_environments(t, p),
        |e| e.id.as_uuid(),
    )
    .await;
    assert_eq!(
        listed,
        vec![env.clone(), setup.new.environment.clone()],
        "list_environments, newest first"
    );

    let renamed = Environment {
        name: fx.environment_name(),
        ..env.clone()
    };
    let audit = setup.audit(actions::ENVIRONMENT_UPDATED, env.id.as_uuid());
    let got = store
        .rename_environment(t, env.id, &renamed.name, &audit)
        .await
        .must("rename_environment");
    setup.logged(&audit);
    assert_eq!(
        got, renamed,
        "rename_environment returns the renamed environment"
    );
    assert_eq!(
        store
            .get_environment(t, env.id)
            .await
            .must("get_environment after rename"),
        renamed
    );
    store
        .find_environment_by_name(t, &env.name)
        .await
        .must_be_not_found("find_environment_by_name(old name)");
    let by_name = store.find_environment_by_name(t, &renamed.name).await;
    assert_eq!(by_name.must("find_environment_by_name(new name)"), renamed);

    // An environment's own name is no clash with itself.
    let audit = setup.audit(actions::ENVIRONMENT_UPDATED, env.id.as_uuid());
    let got = store
        .rename_environment(t, env.id, &renamed.name, &audit)
        .await
        .must("rename to its own name");
    setup.logged(&audit);
    assert_eq!(got, renamed, "renaming to its own name changes nothing");

    let audit = setup.audit(actions::ENVIRONMENT_DELETED, env.id.as_uuid());
    store
        .delete_environment(t, env.id, &audit)
        .await
        .must("delete_environment");
    setup.logged(&audit);
    store
        .get_environment(t, env.id)
        .await
        .must_be_not_found("get_environment after delete");
    store
        .find_environment_by_name(t, &renamed.name)
        .await
        .must_be_not_found("find_environment_by_name after delete");
    let again = setup.audit(actions::ENVIRONMENT_DELETED, env.id.as_uuid());
    store
        .delete_environment(t, env.id, &again)
        .await
        .must_be_not_found("delete_environment twice");
    let listed = all(
        "list_environments",
        |p| store.list_environments(t, p),
        |e| e.id.as_uuid(),
    )
    .await;
    assert_eq!(
        listed,
        vec![setup.new.environment.clone()],
        "list_environments after delete"
    );
    setup.check_log("after the environment lifecycle").await;
}

/// A taken environment name is `Conflict(ENVIRONMENT_NAME)` in its tenant and fine in
/// another one.
pub async fn environment_name_unique_per_tenant(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let env = a.environment().await;

    for name in [&env.name, &EnvironmentName::production()] {
        let twin = fx.environment_named(a.id(), name);
        let audit = a.audit(actions::ENVIRONMENT_CREATED, twin.id.as_uuid());
        let refused = store.create_environment(&twin, &audit).await;
        refused.must_conflict(
            constraint::ENVIRONMENT_NAME,
            "create_environment with a name taken in the tenant",
        );
        store
            .get_environment(a.id(), twin.id)
            .await
            .must_be_not_found("the refused environment");
    }

    let elsewhere = b
        .add_environment(fx.environment_named(b.id(), &env.name))
        .await;
    let in_b = store.find_environment_by_name(b.id(), &env.name).await;
    assert_eq!(
        in_b.must("find_environment_by_name in tenant B"),
        elsewhere,
        "each tenant finds its own"
    );
    let in_a = store.find_environment_by_name(a.id(), &env.name).await;
    assert_eq!(
        in_a.must("find_environment_by_name in tenant A"),
        env,
        "each tenant finds its own"
    );
    a.check_log("of tenant A").await;
    b.check_log("of tenant B").await;
}

/// Renaming onto another environment's name is `Conflict(ENVIRONMENT_NAME)` and changes
/// nothing; a name used only in another tenant is free.
pub async fn environment_rename_conflict(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let env = a.environment().await;

    let audit = a.audit(actions::ENVIRONMENT_UPDATED, env.id.as_uuid());
    let refused = store
        .rename_environment(a.id(), env.id, &EnvironmentName::production(), &audit)
        .await;
    refused.must_conflict(
        constraint::ENVIRONMENT_NAME,
        "rename_environment onto a taken name",
    );
    assert_eq!(
        store
            .get_environment(a.id(), env.id)
            .await
            .must("get_environment after a refused rename"),
        env
    );

    let foreign = b.environment().await;
    let audit = a.audit(actions::ENVIRONMENT_UPDATED, env.id.as_uuid());
    let renamed = store
        .rename_environment(a.id(), env.id, &foreign.name, &audit)
        .await;
    assert_eq!(
        renamed
            .must("rename onto a name only another tenant uses")
            .name,
        foreign.name
    );
    a.logged(&audit);
    a.check_log("after a refused and an accepted rename").await;
    b.check_log("of the other tenant").await;
}

/// `missing_environments` returns exactly the ids that are not environments of the
/// tenant: another tenant's and unknown ones, never its own.
pub async fn missing_environments_reports_foreign_and_unknown(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let (own, production, foreign) = (
        a.environment().await.id,
        a.new.environment.id,
        b.new.environment.id,
    );
    let unknown = EnvironmentId::from_uuid(fx.id());

    let missing = store
        .missing_environments(a.id(), &[production, foreign, own, unknown])
        .await;
    let missing: BTreeSet<_> = missing.must("missing_environments").into_iter().collect();
    assert_eq!(
        missing,
        BTreeSet::from([foreign, unknown]),
        "missing_environments"
    );
    let none = store
        .missing_environments(a.id(), &[production, own])
        .await
        .must("missing_environments(own)");
    assert!(
        none.is_empty(),
        "a tenant's own environments are never missing, got {none:?}"
    );
    let none = store
        .missing_environments(a.id(), &[])
        .await
        .must("missing_environments(nothing)");
    assert!(
        none.is_empty(),
        "nothing asked, nothing missing, got {none:?}"
    );
}

/// An environment a live token is scoped to cannot be deleted
/// (`Conflict(ENVIRONMENT_IN_USE)`, nothing changes); once that token is revoked, it can.
/// All-environment tokens never block a delete.
pub async fn environment_delete_blocked_by_live_scoped_token(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (env, other) = (setup.environment().await, setup.environment().await);
    // Scoped to both, so the check must look inside a scope of several environments.
    let (token, _) = setup
        .add_token(fx.scoped_token(&setup.new.admin, &[env.id, other.id]))
        .await;

    let audit = setup.audit(actions::ENVIRONMENT_DELETED, env.id.as_uuid());
    let refused = store.delete_environment(t, env.id, &audit).await;
    refused.must_conflict(
        constraint::ENVIRONMENT_IN_USE,
        "delete_environment with a live token scoped to it",
    );
    assert_eq!(
        store
            .get_environment(t, env.id)
            .await
            .must("get_environment after a refused delete"),
        env
    );
    setup.check_log("after a refused delete").await;

    let audit = setup.audit(actions::TOKEN_REVOKED, token.id.as_uuid());
    store
        .revoke_token(t, token.id, fx.now(), &audit)
        .await
        .must("revoke_token");
    setup.logged(&audit);
    let audit = setup.audit(actions::ENVIRONMENT_DELETED, env.id.as_uuid());
    store
        .delete_environment(t, env.id, &audit)
        .await
        .must("delete_environment once the token is revoked");
    setup.logged(&audit);
    store
        .get_environment(t, env.id)
        .await
        .must_be_not_found("get_environment after delete");

    // The admin token reaches every environment but names none.
    let audit = setup.audit(actions::ENVIRONMENT_DELETED, other.id.as_uuid());
    store
        .delete_environment(t, other.id, &audit)
        .await
        .must("delete_environment with only all-environment tokens");
    setup.logged(&audit);
    setup.check_log("after both deletes").await;
}

/// Every environment read and write through another tenant is `NotFound` and changes
/// nothing.
pub async fn environment_cross_tenant_is_not_found(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let (env, other) = (a.environment().await, b.id());

    store
        .get_environment(other, env.id)
        .await
        .must_be_not_found("get_environment via another tenant");
    let by_name = store.find_environment_by_name(other, &env.name).await;
    by_name.must_be_not_found("find_environment_by_name via another tenant");
    let audit = b.audit(actions::ENVIRONMENT_UPDATED, env.id.as_uuid());
    let renamed = store
        .rename_environment(other, env.id, &fx.environment_name(), &audit)
        .await;
    renamed.must_be_not_found("rename_environment via another tenant");
    let audit = b.audit(actions::ENVIRONMENT_DELETED, env.id.as_uuid());
    store
        .delete_environment(other, env.id, &audit)
        .await
        .must_be_not_found("delete_environment via another tenant");
    let missing = store
        .missing_environments(other, &[env.id])
        .await
        .must("missing_environments");
    assert_eq!(
        missing,
        vec![env.id],
        "another tenant's environment is missing"
    );

    assert_eq!(
        store
            .get_environment(a.id(), env.id)
            .await
            .must("get_environment in its own tenant"),
        env
    );
    let listed = all(
        "list_environments",
        |p| store.list_environments(other, p),
        |e| e.id.as_uuid(),
    )
    .await;
    assert_eq!(
        listed,
        vec![b.new.environment.clone()],
        "list_environments shows only the tenant's own"
    );
    a.check_log("of the owning tenant").await;
    b.check_log("of the other tenant").await;
}

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

/// Five items of each listing come back two at a time as pages of 2, 2 and 1: newest
/// first, nothing repeated, nothing skipped, no cursor after the last page.
pub async fn lists_paginate_newest_first(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let admin = setup.new.admin.clone();
    // A new tenant already has one environment, service account and token, and no user.
    let mut envs = vec![setup.new.environment.id.as_uuid()];
    let mut accounts = vec![admin.id.as_uuid()];
    let mut tokens = vec![setup.new.token.id.as_uuid()];
    let mut users = Vec::new();
    for _ in 0..4 {
        envs.push(setup.environment().await.id.as_uuid());
        accounts.push(setup.service_account().await.id.as_uuid());
        tokens.push(setup.token(&admin, Role::Viewer).await.0.id.as_uuid());
    }
    // The tenant has no user yet: its five `user.created` events page under a filter.
    let mut events = Vec::new();
    for _ in 0..5 {
        let user = fx.user(t);
        let audit = setup.audit(actions::USER_CREATED, user.id.as_uuid());
        store
            .create_principal(&user, &audit)
            .await
            .must("create_principal");
        setup.logged(&audit);
        users.push(user.id.as_uuid());
        events.push(audit.id.as_uuid());
    }

    let env_id = |e: &Environment| e.id.as_uuid();
    let got = pages(
        "list_environments",
        2,
        |p| store.list_environments(t, p),
        env_id,
    )
    .await;
    expect_pages_of_five("list_environments", &got, env_id, envs);
    let principal_id = |p: &Principal| p.id.as_uuid();
    let got = pages(
        "list_principals(ServiceAccounts)",
        2,
        |p| store.list_principals(t, PrincipalFilter::ServiceAccounts, p),
        principal_id,
    )
    .await;
    expect_pages_of_five(
        "list_principals(ServiceAccounts)",
        &got,
        principal_id,
        accounts,
    );
    let token_id = |t: &ApiToken| t.id.as_uuid();
    let got = pages(
        "list_tokens",
        2,
        |p| store.list_tokens(t, None, p),
        token_id,
    )
    .await;
    expect_pages_of_five("list_tokens", &got, token_id, tokens);
    let filter = AuditFilter {
        action: Some(actions::USER_CREATED.into()),
        ..AuditFilter::default()
    };
    let event_id = |e: &AuditEvent| e.id.as_uuid();
    let got = pages(
        "list_audit_events",
        2,
        |p| store.list_audit_events(t, &filter, p),
        event_id,
    )
    .await;
    expect_pages_of_five("list_audit_events", &got, event_id, events);
    let got = pages(
        "list_principals(Users)",
        2,
        |p| store.list_principals(t, PrincipalFilter::Users, p),
        principal_id,
    )
    .await;
    expect_pages_of_five("list_principals(Users)", &got, principal_id, users);

    let one = store
        .list_tokens(t, None, first_page(200))
        .await
        .must("list_tokens");
    assert_eq!(
        (one.items.len(), one.next),
        (5, None),
        "a page that holds everything has no next cursor"
    );
    setup.check_log("after paging").await;
}

/// The audit filters each narrow the log as documented (exact action, acting token,
/// target, `since` inclusive) and combine with AND.
pub async fn audit_filters(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (token_a, token_b) = (fx.id(), fx.id());
    let (env_a, env_b) = (fx.environment(t), fx.environment(t));
    let hour = |h| fx.now() + Duration::hours(h);
    let event = |actor, action, target: &Environment, at| {
        fx.audit_by(t, actor, action, Some(target.id.as_uuid()), at)
    };

    let e1 = event(
        AuditActor::Token(token_a),
        actions::ENVIRONMENT_CREATED,
        &env_a,
        hour(1),
    );
    store
        .create_environment(&env_a, &e1)
        .await
        .must("create_environment");
    let e2 = event(
        AuditActor::Token(token_b),
        actions::ENVIRONMENT_CREATED,
        &env_b,
        hour(2),
    );
    store
        .create_environment(&env_b, &e2)
        .await
        .must("create_environment");
    let e3 = event(
        AuditActor::Token(token_a),
        actions::ENVIRONMENT_UPDATED,
        &env_a,
        hour(3),
    );
    store
        .rename_environment(t, env_a.id, &fx.environment_name(), &e3)
        .await
        .must("rename_environment");
    let e4 = event(
        AuditActor::Public,
        actions::ENVIRONMENT_DELETED,
        &env_b,
        hour(4),
    );
    store
        .delete_environment(t, env_b.id, &e4)
        .await
        .must("delete_environment");
    for e in [&e1, &e2, &e3, &e4] {
        setup.logged(e);
    }
    setup.check_log("before filtering").await;
    // Creating the tenant recorded its `production` environment too.
    let production = &setup.new.audit[1];
    assert_eq!(
        production.action,
        actions::ENVIRONMENT_CREATED,
        "fixture audit order"
    );

    let any = AuditFilter::default();
    let cases = [
        (
            "action",
            AuditFilter {
                action: Some(actions::ENVIRONMENT_CREATED.into()),
                ..any.clone()
            },
            vec![&e2, &e1, production],
        ),
        (
            "action is exact",
            AuditFilter {
                action: Some("environment".into()),
                ..any.clone()
            },
            vec![],
        ),
        (
            "actor",
            AuditFilter {
                actor_id: Some(token_a),
                ..any.clone()
            },
            vec![&e3, &e1],
        ),
        (
            "target",
            AuditFilter {
                target_id: Some(env_b.id.as_uuid()),
                ..any.clone()
            },
            vec![&e4, &e2],
        ),
        (
            "since is inclusive",
            AuditFilter {
                since: Some(hour(2)),
                ..any.clone()
            },
            vec![&e4, &e3, &e2],
        ),
        (
            "since after everything",
            AuditFilter {
                since: Some(hour(5)),
                ..any.clone()
            },
            vec![],
        ),
        (
            "all four",
            AuditFilter {
                action: Some(actions::ENVIRONMENT_UPDATED.into()),
                actor_id: Some(token_a),
                target_id: Some(env_a.id.as_uuid()),
                since: Some(hour(3)),
                environments: None,
            },
            vec![&e3],
        ),
        (
            "filters are ANDed",
            AuditFilter {
                actor_id: Some(token_b),
                target_id: Some(env_a.id.as_uuid()),
                ..any
            },
            vec![],
        ),
    ];
    for (what, filter, want) in cases {
        let want: Vec<AuditEvent> = want.into_iter().cloned().collect();
        assert_eq!(
            audit_events(store, t, &filter).await,
            want,
            "audit filter: {what}"
        );
    }
}

/// One tenant's audit events never show in another's log, whatever the filter.
pub async fn audit_is_tenant_isolated(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let env = a.environment().await;

    a.check_log("of tenant A").await;
    b.check_log("of tenant B").await;
    let any = AuditFilter::default();
    for filter in [
        AuditFilter {
            target_id: Some(env.id.as_uuid()),
            ..any.clone()
        },
        AuditFilter {
            target_id: Some(a.id().as_uuid()),
            ..any.clone()
        },
        AuditFilter {
            action: Some(actions::TENANT_CREATED.into()),
            ..any.clone()
        },
    ] {
        let events = audit_events(store, b.id(), &filter).await;
        let foreign: Vec<_> = events.iter().filter(|e| e.tenant_id != b.id()).collect();
        assert!(
            foreign.is_empty(),
            "tenant B's log with {filter:?} shows other tenants' events: {foreign:?}"
        );
    }
    let by_target = AuditFilter {
        target_id: Some(env.id.as_uuid()),
        ..any
    };
    let leaked = audit_events(store, b.id(), &by_target).await;
    assert!(
        leaked.is_empty(),
        "tenant B must not see tenant A's event, got {leaked:?}"
    );
}

/// Every fleet of `tenant` (in `environments`, when given), newest first.
async fn fleets_of(
    store: &dyn Store,
    tenant: TenantId,
    environments: Option<&[EnvironmentId]>,
) -> Vec<Fleet> {
    all(
        "list_fleets",
        |p| store.list_fleets(tenant, environments, p),
        |f| f.id.as_uuid(),
    )
    .await
}

/// Every enrollment token of `fleet`, newest first.
async fn enrollment_tokens_of(
    store: &dyn Store,
    tenant: TenantId,
    fleet: FleetId,
) -> Vec<EnrollmentToken> {
    all(
        "list_enrollment_tokens",
        |p| store.list_enrollment_tokens(tenant, fleet, p),
        |t| t.id.as_uuid(),
    )
    .await
}

/// Every agent of `fleet`, newest first.
async fn agents_of(store: &dyn Store, tenant: TenantId, fleet: FleetId) -> Vec<Agent> {
    all(
        "list_agents",
        |p| store.list_agents(tenant, fleet, p),
        |a| a.id.as_uuid(),
    )
    .await
}

/// `token` after `uses` enrollments.
fn used(token: &EnrollmentToken, uses: u32) -> EnrollmentToken {
    EnrollmentToken {
        uses,
        ..token.clone()
    }
}

/// A new fleet and its first token read back as written (the fleet by id and in the
/// listing, the token in the fleet's token listing, its secret enrolls), with one
/// `fleet.created` and one `enrollment_token.issued` event; unknown ids are `NotFound`.
pub async fn fleet_create_then_read(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, token, secret) = setup.fleet().await;

    assert_eq!(store.get_fleet(t, fleet.id).await.must("get_fleet"), fleet);
    assert_eq!(
        fleets_of(store, t, None).await,
        vec![fleet.clone()],
        "list_fleets"
    );
    assert_eq!(
        enrollment_tokens_of(store, t, fleet.id).await,
        vec![token.clone()],
        "the first token is listed as written"
    );
    assert_eq!(
        agents_of(store, t, fleet.id).await,
        vec![],
        "a new fleet has no agents"
    );
    let maker = AgentMaker::new(&fx, fx.now());
    let (agent, seen, _) = setup.enroll(&maker, &secret.digest()).await;
    assert_eq!(seen.id, token.id, "enroll builds from the first token");
    assert_eq!(agent.fleet_id, fleet.id, "the agent joins the fleet");

    let unknown = FleetId::from_uuid(fx.id());
    store
        .get_fleet(t, unknown)
        .await
        .must_be_not_found("get_fleet of an unknown id");
    store
        .list_enrollment_tokens(t, unknown, first_page(10))
        .await
        .must_be_not_found("list_enrollment_tokens of an unknown fleet");
    store
        .list_agents(t, unknown, first_page(10))
        .await
        .must_be_not_found("list_agents of an unknown fleet");
    let audit = setup.audit(actions::FLEET_UPDATED, unknown.as_uuid());
    store
        .rename_fleet(t, unknown, &fx.fleet_name(), &audit)
        .await
        .must_be_not_found("rename_fleet of an unknown id");
    let audit = setup.audit(actions::FLEET_DELETED, unknown.as_uuid());
    store
        .delete_fleet(t, unknown, &audit)
        .await
        .must_be_not_found("delete_fleet of an unknown id");
    setup
        .check_log("after create_fleet and one enrollment")
        .await;
}

/// A fleet in another tenant's environment, or in an unknown one, is `NotFound`, and
/// nothing of it is stored: not the fleet, not its first token (whose secret stays
/// unknown), not its audit events.
pub async fn fleet_create_refuses_foreign_environment(store: &dyn Store) {
    let fx = Fixtures::new();
    let a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let maker = AgentMaker::new(&fx, fx.now());

    for (what, env) in [
        ("another tenant's environment", b.new.environment.id),
        ("an unknown environment", EnvironmentId::from_uuid(fx.id())),
    ] {
        let fleet = fx.fleet(a.id(), env);
        let (token, secret) = fx.enrollment_token(&fleet);
        let audit = [
            a.audit(actions::FLEET_CREATED, fleet.id.as_uuid()),
            a.audit(actions::ENROLLMENT_TOKEN_ISSUED, token.id.as_uuid()),
        ];
        store
            .create_fleet(&fleet, &token, &secret.digest(), &audit)
            .await
            .must_be_not_found(&format!("create_fleet in {what}"));
        for tenant in [a.id(), b.id()] {
            store
                .get_fleet(tenant, fleet.id)
                .await
                .must_be_not_found("the refused fleet");
        }
        assert_eq!(
            maker.refused(store, &secret.digest()).await,
            EnrollmentRefusal::Unknown,
            "the refused fleet's token secret must not be stored"
        );
    }
    assert_eq!(
        fleets_of(store, a.id(), None).await,
        vec![],
        "tenant A's fleets"
    );
    assert_eq!(
        fleets_of(store, b.id(), None).await,
        vec![],
        "tenant B's fleets"
    );
    a.check_log("of tenant A").await;
    b.check_log("of tenant B").await;
}

/// `list_fleets` lists the tenant's fleets newest first; with environments, only the
/// fleets in them, filtered before paging so that every page but the last is full.
pub async fn fleet_list_filters_by_environment(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let (x, y) = (a.environment().await.id, a.environment().await.id);
    let mut in_x = Vec::new();
    let mut in_y = Vec::new();
    // Interleaved, so a store that pages before filtering returns short pages.
    for _ in 0..5 {
        in_x.push(a.fleet_in(x).await.0);
        in_y.push(a.fleet_in(y).await.0);
    }
    let foreign = b.fleet().await.0;

    let fleet_id = |f: &Fleet| f.id.as_uuid();
    let only_x = [x];
    let got = pages(
        "list_fleets([x])",
        2,
        |p| store.list_fleets(a.id(), Some(&only_x), p),
        fleet_id,
    )
    .await;
    let made = in_x.iter().map(fleet_id).collect();
    expect_pages_of_five(
        "list_fleets filtered to one environment",
        &got,
        fleet_id,
        made,
    );

    let newest_first = |fleets: &[&Vec<Fleet>]| {
        let mut all: Vec<Fleet> = fleets.iter().flat_map(|f| f.iter().cloned()).collect();
        all.sort_by_key(|f| std::cmp::Reverse(f.id));
        all
    };
    assert_eq!(
        fleets_of(store, a.id(), None).await,
        newest_first(&[&in_x, &in_y]),
        "list_fleets without a filter lists all of the tenant's fleets"
    );
    assert_eq!(
        fleets_of(store, a.id(), Some(&[y, x])).await,
        newest_first(&[&in_x, &in_y]),
        "list_fleets filtered to both environments"
    );
    let production = a.new.environment.id;
    assert_eq!(
        fleets_of(store, a.id(), Some(&[production])).await,
        vec![],
        "an environment without fleets"
    );
    assert_eq!(
        fleets_of(store, a.id(), Some(&[])).await,
        vec![],
        "no environments, no fleets"
    );
    assert_eq!(
        fleets_of(store, a.id(), Some(&[foreign.environment_id])).await,
        vec![],
        "another tenant's environment holds none of the tenant's fleets"
    );
    assert_eq!(
        fleets_of(store, b.id(), None).await,
        vec![foreign],
        "each tenant lists only its own fleets"
    );
    a.check_log("of tenant A").await;
    b.check_log("of tenant B").await;
}

/// `rename_fleet` changes the name only, returns the fleet, and records an event.
pub async fn fleet_rename(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, token, _) = setup.fleet().await;

    let renamed = Fleet {
        name: fx.fleet_name(),
        ..fleet.clone()
    };
    let audit = setup.audit(actions::FLEET_UPDATED, fleet.id.as_uuid());
    let got = store
        .rename_fleet(t, fleet.id, &renamed.name, &audit)
        .await
        .must("rename_fleet");
    setup.logged(&audit);
    assert_eq!(got, renamed, "rename_fleet returns the renamed fleet");
    assert_eq!(
        store
            .get_fleet(t, fleet.id)
            .await
            .must("get_fleet after rename"),
        renamed
    );
    assert_eq!(
        enrollment_tokens_of(store, t, fleet.id).await,
        vec![token],
        "renaming keeps the fleet's tokens"
    );
    setup.check_log("after rename_fleet").await;
}

/// `delete_fleet` removes the fleet with its enrollment tokens and agents: their secrets
/// stop working (an enrollment secret is unknown, an agent has no credentials), every
/// read and write of them is `NotFound`, another fleet keeps all of its own, and one
/// `fleet.deleted` event is recorded (earlier events stay).
pub async fn fleet_delete_cascades(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let maker = AgentMaker::new(&fx, fx.now());
    let day = fx.now() + Duration::days(1);
    let (doomed, first, first_secret) = setup.fleet().await;
    let (second, second_secret) = setup
        .add_enrollment_token(fx.enrollment_token_with(&doomed, 5, day))
        .await;
    let (gone_a, _, _) = setup.enroll(&maker, &second_secret.digest()).await;
    let (gone_b, _, _) = setup.enroll(&maker, &first_secret.digest()).await;
    let (kept, kept_first, kept_first_secret) = setup.fleet().await;
    let (kept_second, kept_second_secret) = setup
        .add_enrollment_token(fx.enrollment_token_with(&kept, 5, day))
        .await;
    let (kept_agent, _, kept_agent_secret) =
        setup.enroll(&maker, &kept_second_secret.digest()).await;

    let audit = setup.audit(actions::FLEET_DELETED, doomed.id.as_uuid());
    store
        .delete_fleet(t, doomed.id, &audit)
        .await
        .must("delete_fleet");
    setup.logged(&audit);

    store
        .get_fleet(t, doomed.id)
        .await
        .must_be_not_found("get_fleet after delete");
    store
        .list_enrollment_tokens(t, doomed.id, first_page(10))
        .await
        .must_be_not_found("list_enrollment_tokens of a deleted fleet");
    store
        .list_agents(t, doomed.id, first_page(10))
        .await
        .must_be_not_found("list_agents of a deleted fleet");
    for token in [&first, &second] {
        let audit = setup.audit(actions::ENROLLMENT_TOKEN_REVOKED, token.id.as_uuid());
        store
            .revoke_enrollment_token(t, doomed.id, token.id, fx.now(), &audit)
            .await
            .must_be_not_found("revoke_enrollment_token of a deleted fleet's token");
    }
    for secret in [&first_secret, &second_secret] {
        assert_eq!(
            maker.refused(store, &secret.digest()).await,
            EnrollmentRefusal::Unknown,
            "a deleted fleet's enrollment secret is unknown"
        );
    }
    for agent in [&gone_a, &gone_b] {
        store
            .get_agent(t, agent.id)
            .await
            .must_be_not_found("get_agent of a deleted fleet's agent");
        let creds = store
            .find_agent_credentials(agent.id)
            .await
            .must("find_agent_credentials");
        assert!(
            creds.is_none(),
            "a deleted fleet's agent has no credentials, got {creds:?}"
        );
        store
            .record_heartbeat(agent.id, fx.now(), None)
            .await
            .must_be_not_found("record_heartbeat of a deleted fleet's agent");
        let audit = setup.audit(actions::AGENT_REVOKED, agent.id.as_uuid());
        store
            .revoke_agent(t, agent.id, fx.now(), &audit)
            .await
            .must_be_not_found("revoke_agent of a deleted fleet's agent");
    }
    let audit = setup.audit(actions::FLEET_DELETED, doomed.id.as_uuid());
    store
        .delete_fleet(t, doomed.id, &audit)
        .await
        .must_be_not_found("delete_fleet twice");

    assert_eq!(
        fleets_of(store, t, None).await,
        vec![kept.clone()],
        "list_fleets after delete"
    );
    assert_eq!(
        agents_of(store, t, kept.id).await,
        vec![kept_agent.clone()],
        "the other fleet keeps its agents"
    );
    let creds = store
        .find_agent_credentials(kept_agent.id)
        .await
        .must("find_agent_credentials");
    assert_eq!(
        creds,
        Some((kept_agent, kept_agent_secret.digest())),
        "the other fleet's agent keeps its credentials"
    );
    let (_, seen, _) = setup.enroll(&maker, &kept_first_secret.digest()).await;
    assert_eq!(
        seen.id, kept_first.id,
        "the other fleet's enrollment secrets keep working"
    );
    assert_eq!(
        enrollment_tokens_of(store, t, kept.id).await,
        vec![used(&kept_second, 1), used(&kept_first, 1)],
        "the other fleet keeps its tokens"
    );
    setup.check_log("after delete_fleet").await;
}

/// Every fleet read and write through another tenant is `NotFound` and changes nothing;
/// another tenant's listing never shows the fleet, whatever environments it names.
pub async fn fleet_cross_tenant_is_not_found(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let (fleet, token, _) = a.fleet().await;
    let other = b.id();

    store
        .get_fleet(other, fleet.id)
        .await
        .must_be_not_found("get_fleet via another tenant");
    let audit = b.audit(actions::FLEET_UPDATED, fleet.id.as_uuid());
    store
        .rename_fleet(other, fleet.id, &fx.fleet_name(), &audit)
        .await
        .must_be_not_found("rename_fleet via another tenant");
    let audit = b.audit(actions::FLEET_DELETED, fleet.id.as_uuid());
    store
        .delete_fleet(other, fleet.id, &audit)
        .await
        .must_be_not_found("delete_fleet via another tenant");
    for envs in [None, Some(&[fleet.environment_id][..])] {
        assert_eq!(
            fleets_of(store, other, envs).await,
            vec![],
            "list_fleets({envs:?}) of another tenant"
        );
    }

    assert_eq!(
        store
            .get_fleet(a.id(), fleet.id)
            .await
            .must("get_fleet in its own tenant"),
        fleet
    );
    assert_eq!(
        enrollment_tokens_of(store, a.id(), fleet.id).await,
        vec![token],
        "the fleet keeps its token"
    );
    a.check_log("of the owning tenant").await;
    b.check_log("of the other tenant").await;
}

/// Enrollment tokens are issued only for a fleet of their own tenant (otherwise
/// `NotFound`, and neither the token nor its secret is stored), listed newest first per
/// fleet, and revoked only through their own fleet and tenant, idempotently: one
/// event, the first `revoked_at` kept, and the secret then refused as `Revoked`.
pub async fn enrollment_token_issue_list_revoke(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let maker = AgentMaker::new(&fx, fx.now());
    let (fleet, first, _) = setup.fleet().await;
    let (other, other_first, _) = setup.fleet().await;
    let (second, second_secret) = setup
        .add_enrollment_token(fx.enrollment_token_with(&fleet, 10, fx.now() + Duration::hours(2)))
        .await;
    let (third, _) = setup
        .add_enrollment_token(fx.enrollment_token_with(
            &fleet,
            1000,
            fx.now() + Duration::hours(720),
        ))
        .await;

    assert_eq!(
        enrollment_tokens_of(store, t, fleet.id).await,
        vec![third.clone(), second.clone(), first.clone()],
        "list_enrollment_tokens, newest first, as written"
    );
    assert_eq!(
        enrollment_tokens_of(store, t, other.id).await,
        vec![other_first],
        "each fleet lists only its own tokens"
    );

    let unmade = fx.fleet(t, setup.new.environment.id);
    let (orphan, orphan_secret) = fx.enrollment_token(&unmade);
    let audit = setup.audit(actions::ENROLLMENT_TOKEN_ISSUED, orphan.id.as_uuid());
    store
        .create_enrollment_token(&orphan, &orphan_secret.digest(), &audit)
        .await
        .must_be_not_found("create_enrollment_token for an unknown fleet");
    assert_eq!(
        maker.refused(store, &orphan_secret.digest()).await,
        EnrollmentRefusal::Unknown,
        "a refused token's secret must not be stored"
    );

    let audit = setup.audit(actions::ENROLLMENT_TOKEN_REVOKED, second.id.as_uuid());
    store
        .revoke_enrollment_token(t, other.id, second.id, fx.now(), &audit)
        .await
        .must_be_not_found("revoke_enrollment_token through another fleet");
    let unknown = EnrollmentTokenId::from_uuid(fx.id());
    store
        .revoke_enrollment_token(t, fleet.id, unknown, fx.now(), &audit)
        .await
        .must_be_not_found("revoke_enrollment_token of an unknown id");

    let first_at = fx.now() + Duration::minutes(1);
    let revoked = store
        .revoke_enrollment_token(t, fleet.id, second.id, first_at, &audit)
        .await
        .must("revoke_enrollment_token");
    setup.logged(&audit);
    let expected = EnrollmentToken {
        revoked_at: Some(first_at),
        ..second.clone()
    };
    assert_eq!(
        revoked, expected,
        "revoke_enrollment_token returns the revoked token"
    );
    let audit = setup.audit(actions::ENROLLMENT_TOKEN_REVOKED, second.id.as_uuid());
    let again = store
        .revoke_enrollment_token(
            t,
            fleet.id,
            second.id,
            fx.now() + Duration::hours(1),
            &audit,
        )
        .await
        .must("revoke_enrollment_token twice");
    assert_eq!(
        again, expected,
        "a second revoke keeps the first revoked_at"
    );
    assert_eq!(
        enrollment_tokens_of(store, t, fleet.id).await,
        vec![third, expected, first],
        "list_enrollment_tokens after revoking"
    );
    assert_eq!(
        maker.refused(store, &second_secret.digest()).await,
        EnrollmentRefusal::Revoked,
        "a revoked token's secret"
    );
    setup
        .check_log("after issuing and revoking (one revoke event)")
        .await;
}

/// Every enrollment-token read and write through another tenant is `NotFound` and
/// changes nothing: a token naming another tenant's fleet is not stored, and a foreign
/// revoke leaves the token usable.
pub async fn enrollment_token_cross_tenant_is_not_found(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let (fleet, token, secret) = a.fleet().await;
    let other = b.id();
    let maker = AgentMaker::new(&fx, fx.now());

    let (mut stolen, stolen_secret) = fx.enrollment_token(&fleet);
    stolen.tenant_id = other;
    let audit = b.audit(actions::ENROLLMENT_TOKEN_ISSUED, stolen.id.as_uuid());
    store
        .create_enrollment_token(&stolen, &stolen_secret.digest(), &audit)
        .await
        .must_be_not_found("create_enrollment_token for another tenant's fleet");
    assert_eq!(
        maker.refused(store, &stolen_secret.digest()).await,
        EnrollmentRefusal::Unknown,
        "a refused token's secret must not be stored"
    );
    store
        .list_enrollment_tokens(other, fleet.id, first_page(10))
        .await
        .must_be_not_found("list_enrollment_tokens via another tenant");
    let audit = b.audit(actions::ENROLLMENT_TOKEN_REVOKED, token.id.as_uuid());
    store
        .revoke_enrollment_token(other, fleet.id, token.id, fx.now(), &audit)
        .await
        .must_be_not_found("revoke_enrollment_token via another tenant");

    assert_eq!(
        enrollment_tokens_of(store, a.id(), fleet.id).await,
        vec![token.clone()],
        "the token is untouched and nothing was added"
    );
    let (_, seen, _) = a.enroll(&maker, &secret.digest()).await;
    assert_eq!(seen.id, token.id, "the token still enrolls");
    a.check_log("of the owning tenant").await;
    b.check_log("of the other tenant").await;
}

/// A digest that is no enrollment token's secret is refused as `Unknown`, even when it
/// is an API token's or an agent's, and nothing is stored or counted.
pub async fn enroll_unknown_secret_is_refused(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, token, secret) = setup.fleet().await;
    let maker = AgentMaker::new(&fx, fx.now());
    let (agent, _, agent_secret) = setup.enroll(&maker, &secret.digest()).await;

    for (what, digest) in [
        (
            "a fresh enrollment secret",
            fx.secret_of(SecretKind::Enrollment).digest(),
        ),
        ("an API token's secret", setup.new.digest),
        ("an agent's secret", agent_secret.digest()),
    ] {
        assert_eq!(
            maker.refused(store, &digest).await,
            EnrollmentRefusal::Unknown,
            "enroll with {what}"
        );
    }
    assert_eq!(
        agents_of(store, t, fleet.id).await,
        vec![agent],
        "refused enrollments store no agent"
    );
    assert_eq!(
        enrollment_tokens_of(store, t, fleet.id).await,
        vec![used(&token, 1)],
        "refused enrollments count no use"
    );
    setup
        .check_log("after refused enrollments (no events)")
        .await;
}

/// A token works until one second before `expires_at` and is refused as `Expired` from
/// `expires_at` on; a revoked token is refused as `Revoked`. The store applies
/// `check_usable`: revocation wins over exhaustion and expiry, exhaustion over expiry.
/// A refusal stores no agent, writes no event and counts no use.
pub async fn enroll_refuses_expired_and_revoked(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, one_time, one_time_secret) = setup.fleet().await;
    let expires = fx.now() + Duration::hours(1);
    let (token, secret) = setup
        .add_enrollment_token(fx.enrollment_token_with(&fleet, 2, expires))
        .await;
    let (digest, one_time_digest) = (secret.digest(), one_time_secret.digest());
    let at_expiry = AgentMaker::new(&fx, expires);
    let just_before = AgentMaker::new(&fx, expires - Duration::seconds(1));
    let token_state = |id| async move {
        enrollment_tokens_of(store, t, fleet.id)
            .await
            .into_iter()
            .find(|tok| tok.id == id)
            .unwrap_or_else(|| panic!("list_enrollment_tokens must list {id}"))
    };

    assert_eq!(
        at_expiry.refused(store, &digest).await,
        EnrollmentRefusal::Expired,
        "enroll at exactly expires_at"
    );
    assert_eq!(
        token_state(token.id).await,
        token,
        "an expired refusal counts no use"
    );
    assert_eq!(
        agents_of(store, t, fleet.id).await,
        vec![],
        "a refusal stores no agent"
    );
    setup.check_log("after an expired refusal").await;

    let (agent, seen, _) = setup.enroll(&just_before, &digest).await;
    assert_eq!(
        seen,
        used(&token, 1),
        "one second before expires_at works; the builder sees the use counted"
    );
    assert_eq!(
        at_expiry.refused(store, &digest).await,
        EnrollmentRefusal::Expired,
        "a token with a use left is still expired at expires_at"
    );

    let revoked_at = fx.now() + Duration::minutes(30);
    let audit = setup.audit(actions::ENROLLMENT_TOKEN_REVOKED, token.id.as_uuid());
    store
        .revoke_enrollment_token(t, fleet.id, token.id, revoked_at, &audit)
        .await
        .must("revoke_enrollment_token");
    setup.logged(&audit);
    for (what, maker) in [
        ("before expiry", &just_before),
        ("at expiry: revocation wins", &at_expiry),
    ] {
        assert_eq!(
            maker.refused(store, &digest).await,
            EnrollmentRefusal::Revoked,
            "a revoked token {what}"
        );
    }
    let revoked = EnrollmentToken {
        revoked_at: Some(revoked_at),
        ..used(&token, 1)
    };
    assert_eq!(
        token_state(token.id).await,
        revoked,
        "refusals count no use"
    );

    // The one-time first token: used up, then past expiry, then revoked.
    let now = AgentMaker::new(&fx, fx.now());
    let (first_agent, _, _) = setup.enroll(&now, &one_time_digest).await;
    let past_expiry = AgentMaker::new(&fx, one_time.expires_at);
    for (what, maker) in [
        ("before expiry", &now),
        ("at expiry: exhaustion wins", &past_expiry),
    ] {
        assert_eq!(
            maker.refused(store, &one_time_digest).await,
            EnrollmentRefusal::UsedUp,
            "a used-up token {what}"
        );
    }
    let audit = setup.audit(actions::ENROLLMENT_TOKEN_REVOKED, one_time.id.as_uuid());
    store
        .revoke_enrollment_token(t, fleet.id, one_time.id, fx.now(), &audit)
        .await
        .must("revoke_enrollment_token");
    setup.logged(&audit);
    assert_eq!(
        now.refused(store, &one_time_digest).await,
        EnrollmentRefusal::Revoked,
        "a used-up, revoked token: revocation wins"
    );
    assert_eq!(
        token_state(one_time.id).await.uses,
        1,
        "refusals count no use"
    );
    assert_eq!(
        agents_of(store, t, fleet.id).await,
        vec![first_agent, agent],
        "only the accepted enrollments stored agents"
    );
    setup
        .check_log("after refusals (no events of theirs)")
        .await;
}

/// A token of three uses enrolls exactly three agents, each built from the token with
/// its own use counted (1, 2, 3); after that every enrollment is `UsedUp` and counts
/// nothing.
pub async fn enroll_counts_uses_until_used_up(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, first, _) = setup.fleet().await;
    let (token, secret) = setup
        .add_enrollment_token(fx.enrollment_token_with(&fleet, 3, fx.now() + Duration::days(1)))
        .await;
    let maker = AgentMaker::new(&fx, fx.now());

    let mut agents = Vec::new();
    for n in 1..=3 {
        let (agent, seen, _) = setup.enroll(&maker, &secret.digest()).await;
        assert_eq!(
            seen,
            used(&token, n),
            "enrollment {n}: the builder sees the token with this use counted"
        );
        assert_eq!(
            (agent.tenant_id, agent.fleet_id),
            (t, fleet.id),
            "the agent joins the token's fleet"
        );
        assert_eq!(
            store.get_agent(t, agent.id).await.must("get_agent"),
            agent,
            "the agent reads back as enrolled"
        );
        agents.push(agent);
    }
    for _ in 0..2 {
        assert_eq!(
            maker.refused(store, &secret.digest()).await,
            EnrollmentRefusal::UsedUp,
            "enrollment past max_uses"
        );
    }
    agents.reverse();
    assert_eq!(
        agents_of(store, t, fleet.id).await,
        agents,
        "exactly max_uses agents, newest first"
    );
    assert_eq!(
        enrollment_tokens_of(store, t, fleet.id).await,
        vec![used(&token, 3), first],
        "uses stop at max_uses"
    );
    setup.check_log("after three enrollments").await;
}

/// How many enrollments the concurrency cases start at once.
const CONCURRENT_ENROLLMENTS: usize = 50;

/// Starts [`CONCURRENT_ENROLLMENTS`] enrollments at once on a fresh token of
/// `max_uses` uses and checks exactly `max_uses` succeed, each with its own use counted,
/// and every other one is `UsedUp` and leaves no trace.
async fn enroll_concurrently(store: &dyn Store, max_uses: u32) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, _, _) = setup.fleet().await;
    let (token, secret) = setup
        .add_enrollment_token(fx.enrollment_token_with(
            &fleet,
            max_uses,
            fx.now() + Duration::days(1),
        ))
        .await;
    let maker = AgentMaker::new(&fx, fx.now());
    let digest = secret.digest();

    // All calls borrow one store and run at once: on a pooled backend each holds its
    // own connection, so the claims really race.
    let outcomes =
        join_all((0..CONCURRENT_ENROLLMENTS).map(|_| maker.enroll(store, &digest))).await;
    let mut agents = Vec::new();
    let mut refusals = Vec::new();
    for (outcome, _) in outcomes {
        match outcome {
            Ok(agent) => agents.push(agent),
            Err(refusal) => refusals.push(refusal),
        }
    }
    assert_eq!(
        agents.len(),
        max_uses as usize,
        "{CONCURRENT_ENROLLMENTS} concurrent enrollments on a token of {max_uses} uses: \
         exactly {max_uses} must succeed (refusals: {refusals:?})"
    );
    assert!(
        refusals.iter().all(|r| *r == EnrollmentRefusal::UsedUp),
        "every other concurrent enrollment is UsedUp, got {refusals:?}"
    );

    let mut built: Vec<_> = agents.iter().map(|a| maker.built(a)).collect();
    let seen: BTreeSet<u32> = built.iter().map(|b| b.token.uses).collect();
    assert_eq!(
        seen,
        (1..=max_uses).collect(),
        "each successful enrollment was built from the token with its own use counted"
    );
    built.sort_by_key(|b| b.audit.id);
    for b in &built {
        setup.logged(&b.audit);
    }
    agents.sort_by_key(|a| std::cmp::Reverse(a.id));
    assert_eq!(
        agents_of(store, t, fleet.id).await,
        agents,
        "exactly the successful enrollments' agents are stored"
    );
    let stored = enrollment_tokens_of(store, t, fleet.id).await;
    assert_eq!(
        stored.iter().find(|tok| tok.id == token.id),
        Some(&used(&token, max_uses)),
        "the token counts exactly max_uses uses"
    );
    setup.check_log("after concurrent enrollments").await;
}

/// Fifty concurrent enrollments with a one-time token: exactly one succeeds, the other
/// 49 are `UsedUp`.
pub async fn enroll_concurrent_one_time_token(store: &dyn Store) {
    enroll_concurrently(store, 1).await;
}

/// Fifty concurrent enrollments with a token of three uses: exactly three succeed.
pub async fn enroll_concurrent_respects_max_uses(store: &dyn Store) {
    enroll_concurrently(store, 3).await;
}

/// Agents read back as enrolled and list newest first per fleet; revoking is
/// idempotent (one event, the first `revoked_at` kept); `find_agent_credentials` finds
/// any agent, revoked ones too, with its secret's digest; unknown ids are `NotFound`
/// (or `None` for credentials).
pub async fn agent_read_list_revoke(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let maker = AgentMaker::new(&fx, fx.now());
    let (fleet, _, _) = setup.fleet().await;
    let (_, secret) = setup
        .add_enrollment_token(fx.enrollment_token_with(&fleet, 3, fx.now() + Duration::days(1)))
        .await;
    let (other, _, other_secret) = setup.fleet().await;
    let mut enrolled = Vec::new();
    for _ in 0..3 {
        let (agent, _, agent_secret) = setup.enroll(&maker, &secret.digest()).await;
        enrolled.push((agent, agent_secret));
    }
    let (elsewhere, _, _) = setup.enroll(&maker, &other_secret.digest()).await;

    for (agent, agent_secret) in &enrolled {
        assert_eq!(store.get_agent(t, agent.id).await.must("get_agent"), *agent);
        let creds = store
            .find_agent_credentials(agent.id)
            .await
            .must("find_agent_credentials");
        assert_eq!(
            creds,
            Some((agent.clone(), agent_secret.digest())),
            "an agent's credentials"
        );
    }
    let [(a1, _), (a2, a2_secret), (a3, _)] = &enrolled[..] else {
        panic!("three agents were enrolled")
    };
    assert_eq!(
        agents_of(store, t, fleet.id).await,
        vec![a3.clone(), a2.clone(), a1.clone()],
        "list_agents, newest first"
    );
    assert_eq!(
        agents_of(store, t, other.id).await,
        vec![elsewhere],
        "each fleet lists only its own agents"
    );

    let first_at = fx.now() + Duration::minutes(5);
    let audit = setup.audit(actions::AGENT_REVOKED, a2.id.as_uuid());
    let revoked = store
        .revoke_agent(t, a2.id, first_at, &audit)
        .await
        .must("revoke_agent");
    setup.logged(&audit);
    let expected = Agent {
        revoked_at: Some(first_at),
        ..a2.clone()
    };
    assert_eq!(revoked, expected, "revoke_agent returns the revoked agent");
    let audit = setup.audit(actions::AGENT_REVOKED, a2.id.as_uuid());
    let again = store
        .revoke_agent(t, a2.id, fx.now() + Duration::hours(1), &audit)
        .await
        .must("revoke_agent twice");
    assert_eq!(
        again, expected,
        "a second revoke keeps the first revoked_at"
    );
    assert_eq!(
        store
            .get_agent(t, a2.id)
            .await
            .must("get_agent after revoke"),
        expected
    );
    let creds = store
        .find_agent_credentials(a2.id)
        .await
        .must("find_agent_credentials");
    assert_eq!(
        creds,
        Some((expected.clone(), a2_secret.digest())),
        "a revoked agent's credentials are still found, as revoked"
    );
    assert_eq!(
        agents_of(store, t, fleet.id).await,
        vec![a3.clone(), expected, a1.clone()],
        "list_agents after revoking one"
    );

    let unknown = AgentId::from_uuid(fx.id());
    store
        .get_agent(t, unknown)
        .await
        .must_be_not_found("get_agent of an unknown id");
    let audit = setup.audit(actions::AGENT_REVOKED, unknown.as_uuid());
    store
        .revoke_agent(t, unknown, fx.now(), &audit)
        .await
        .must_be_not_found("revoke_agent of an unknown id");
    let creds = store
        .find_agent_credentials(unknown)
        .await
        .must("find_agent_credentials of an unknown id");
    assert!(
        creds.is_none(),
        "an unknown agent has no credentials, got {creds:?}"
    );
    setup
        .check_log("after revoking an agent twice (one event)")
        .await;
}

/// Every agent read and write through another tenant is `NotFound` and changes nothing.
pub async fn agent_cross_tenant_is_not_found(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut a = Setup::tenant(store, &fx).await;
    let b = Setup::tenant(store, &fx).await;
    let (fleet, _, secret) = a.fleet().await;
    let maker = AgentMaker::new(&fx, fx.now());
    let (agent, _, _) = a.enroll(&maker, &secret.digest()).await;
    let other = b.id();

    store
        .get_agent(other, agent.id)
        .await
        .must_be_not_found("get_agent via another tenant");
    store
        .list_agents(other, fleet.id, first_page(10))
        .await
        .must_be_not_found("list_agents via another tenant");
    let audit = b.audit(actions::AGENT_REVOKED, agent.id.as_uuid());
    store
        .revoke_agent(other, agent.id, fx.now(), &audit)
        .await
        .must_be_not_found("revoke_agent via another tenant");

    assert_eq!(
        store
            .get_agent(a.id(), agent.id)
            .await
            .must("get_agent in its own tenant"),
        agent,
        "the agent is untouched"
    );
    a.check_log("of the owning tenant").await;
    b.check_log("of the other tenant").await;
}

/// `record_heartbeat` sets `last_seen_at` and, when given, the version (kept when not),
/// returns the agent, writes no event, and is `NotFound` for an unknown agent.
pub async fn record_heartbeat_sets_last_seen_and_version(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (_, _, secret) = setup.fleet().await;
    let maker = AgentMaker::new(&fx, fx.now());
    let (agent, _, agent_secret) = setup.enroll(&maker, &secret.digest()).await;

    let first = fx.now() + Duration::minutes(1);
    let upgraded = Fixtures::agent_version("1.1.0");
    let got = store
        .record_heartbeat(agent.id, first, Some(&upgraded))
        .await
        .must("record_heartbeat with a version");
    let expected = Agent {
        last_seen_at: Some(first),
        agent_version: Some(upgraded),
        ..agent.clone()
    };
    assert_eq!(got, expected, "record_heartbeat returns the updated agent");
    assert_eq!(
        store
            .get_agent(t, agent.id)
            .await
            .must("get_agent after a heartbeat"),
        expected
    );

    let later = fx.now() + Duration::minutes(2);
    let got = store
        .record_heartbeat(agent.id, later, None)
        .await
        .must("record_heartbeat without a version");
    let expected = Agent {
        last_seen_at: Some(later),
        ..expected
    };
    assert_eq!(got, expected, "no version reported, the last one is kept");
    let creds = store
        .find_agent_credentials(agent.id)
        .await
        .must("find_agent_credentials");
    assert_eq!(
        creds,
        Some((expected, agent_secret.digest())),
        "credentials show the heartbeat"
    );

    store
        .record_heartbeat(AgentId::from_uuid(fx.id()), later, None)
        .await
        .must_be_not_found("record_heartbeat of an unknown agent");
    setup.check_log("after heartbeats (no events)").await;
}

/// Fleets, a fleet's enrollment tokens and a fleet's agents each page newest first:
/// five of each, two at a time, come as pages of 2, 2 and 1.
pub async fn fleet_lists_paginate_newest_first(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let maker = AgentMaker::new(&fx, fx.now());
    let mut fleets = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..5 {
        let (fleet, token, _) = setup.fleet().await;
        fleets.push(fleet);
        tokens.push(token);
    }
    let fleet = fleets[0].clone();
    let mut tokens = vec![tokens[0].id.as_uuid()];
    let mut last_secret = None;
    for _ in 0..4 {
        let (token, secret) = setup
            .add_enrollment_token(fx.enrollment_token_with(&fleet, 5, fx.now() + Duration::days(1)))
            .await;
        tokens.push(token.id.as_uuid());
        last_secret = Some(secret);
    }
    let digest = last_secret
        .map(|s| s.digest())
        .unwrap_or_else(|| panic!("four tokens were issued"));
    let mut agents = Vec::new();
    for _ in 0..5 {
        agents.push(setup.enroll(&maker, &digest).await.0.id.as_uuid());
    }

    let fleet_id = |f: &Fleet| f.id.as_uuid();
    let got = pages(
        "list_fleets",
        2,
        |p| store.list_fleets(t, None, p),
        fleet_id,
    )
    .await;
    let made = fleets.iter().map(fleet_id).collect();
    expect_pages_of_five("list_fleets", &got, fleet_id, made);
    let token_id = |tok: &EnrollmentToken| tok.id.as_uuid();
    let got = pages(
        "list_enrollment_tokens",
        2,
        |p| store.list_enrollment_tokens(t, fleet.id, p),
        token_id,
    )
    .await;
    expect_pages_of_five("list_enrollment_tokens", &got, token_id, tokens);
    let agent_id = |a: &Agent| a.id.as_uuid();
    let got = pages(
        "list_agents",
        2,
        |p| store.list_agents(t, fleet.id, p),
        agent_id,
    )
    .await;
    expect_pages_of_five("list_agents", &got, agent_id, agents);
    setup.check_log("after paging").await;
}

/// Signing keys read back as added (every byte), listed oldest first whatever order
/// they were added in, retired ones included; a taken kid is
/// `Conflict(SIGNING_KEY_ID)` and changes nothing; retiring sets `retired_at` once (a
/// second retire keeps the first time) and an unknown kid is `NotFound`.
pub async fn signing_keys_add_list_retire(store: &dyn Store) {
    let fx = Fixtures::new();
    let hour = |h| fx.now() + Duration::hours(h);
    // Keys are not tenant-scoped: a shared store may hold other cases' keys, so only
    // this case's kids are looked at.
    let ours = |keys: Vec<StoredSigningKey>, kids: &[String]| -> Vec<StoredSigningKey> {
        keys.into_iter().filter(|k| kids.contains(&k.kid)).collect()
    };
    let (middle, oldest, newest) = (
        fx.signing_key(hour(2)),
        fx.signing_key(hour(1)),
        fx.signing_key(hour(3)),
    );
    let retired_before = StoredSigningKey {
        retired_at: Some(hour(5)),
        ..fx.signing_key(hour(4))
    };
    for key in [&middle, &oldest, &newest, &retired_before] {
        store.add_signing_key(key).await.must("add_signing_key");
    }
    let kids = [&oldest, &middle, &newest, &retired_before].map(|k| k.kid.clone());
    let listed = ours(
        store.list_signing_keys().await.must("list_signing_keys"),
        &kids,
    );
    assert_eq!(
        listed,
        vec![
            oldest.clone(),
            middle.clone(),
            newest.clone(),
            retired_before.clone()
        ],
        "list_signing_keys, oldest first, as added"
    );

    let twin = StoredSigningKey {
        kid: middle.kid.clone(),
        ..fx.signing_key(hour(6))
    };
    store.add_signing_key(&twin).await.must_conflict(
        constraint::SIGNING_KEY_ID,
        "add_signing_key with a taken kid",
    );

    store
        .retire_signing_key(&middle.kid, hour(7))
        .await
        .must("retire_signing_key");
    store
        .retire_signing_key(&middle.kid, hour(8))
        .await
        .must("retire_signing_key twice");
    store
        .retire_signing_key(&retired_before.kid, hour(9))
        .await
        .must("retire_signing_key of a retired key");
    let unknown = format!("kid-{}", fx.id().simple());
    store
        .retire_signing_key(&unknown, hour(7))
        .await
        .must_be_not_found("retire_signing_key of an unknown kid");

    let retired = StoredSigningKey {
        retired_at: Some(hour(7)),
        ..middle
    };
    let listed = ours(
        store.list_signing_keys().await.must("list_signing_keys"),
        &kids,
    );
    assert_eq!(
        listed,
        vec![oldest, retired, newest, retired_before],
        "after a refused duplicate and retirements: the first retired_at stays, \
         retired keys are still listed"
    );
}

/// An environment a fleet lives in cannot be deleted (`Conflict(ENVIRONMENT_IN_USE)`,
/// nothing changes); once its fleets are deleted it can, unless a live token is scoped
/// to it: both rules hold together. A fleet in another environment blocks nothing.
pub async fn environment_delete_blocked_by_fleet(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (env, other) = (setup.environment().await, setup.environment().await);
    let (fleet, _, _) = setup.fleet_in(env.id).await;
    let (fleet_elsewhere, _, _) = setup.fleet_in(other.id).await;
    let (token, _) = setup
        .add_token(fx.scoped_token(&setup.new.admin, &[other.id]))
        .await;

    for e in [&env, &other] {
        let audit = setup.audit(actions::ENVIRONMENT_DELETED, e.id.as_uuid());
        store
            .delete_environment(t, e.id, &audit)
            .await
            .must_conflict(
                constraint::ENVIRONMENT_IN_USE,
                "delete_environment with a fleet in it",
            );
        assert_eq!(
            store
                .get_environment(t, e.id)
                .await
                .must("get_environment after a refused delete"),
            *e
        );
    }
    assert_eq!(
        store.get_fleet(t, fleet.id).await.must("get_fleet"),
        fleet,
        "a refused delete keeps the fleet"
    );
    setup.check_log("after refused deletes").await;

    let audit = setup.audit(actions::FLEET_DELETED, fleet.id.as_uuid());
    store
        .delete_fleet(t, fleet.id, &audit)
        .await
        .must("delete_fleet");
    setup.logged(&audit);
    let audit = setup.audit(actions::ENVIRONMENT_DELETED, env.id.as_uuid());
    store
        .delete_environment(t, env.id, &audit)
        .await
        .must("delete_environment once its fleet is gone");
    setup.logged(&audit);
    store
        .get_environment(t, env.id)
        .await
        .must_be_not_found("get_environment after delete");

    let audit = setup.audit(actions::FLEET_DELETED, fleet_elsewhere.id.as_uuid());
    store
        .delete_fleet(t, fleet_elsewhere.id, &audit)
        .await
        .must("delete_fleet");
    setup.logged(&audit);
    let audit = setup.audit(actions::ENVIRONMENT_DELETED, other.id.as_uuid());
    store
        .delete_environment(t, other.id, &audit)
        .await
        .must_conflict(
            constraint::ENVIRONMENT_IN_USE,
            "delete_environment without fleets but with a live scoped token",
        );
    let audit = setup.audit(actions::TOKEN_REVOKED, token.id.as_uuid());
    store
        .revoke_token(t, token.id, fx.now(), &audit)
        .await
        .must("revoke_token");
    setup.logged(&audit);
    let audit = setup.audit(actions::ENVIRONMENT_DELETED, other.id.as_uuid());
    store
        .delete_environment(t, other.id, &audit)
        .await
        .must("delete_environment with neither fleets nor live tokens");
    setup.logged(&audit);
    setup.check_log("after the deletes").await;
}

// ---- scans ----

/// Every scan of `tenant` that passes `filter`, newest first.
async fn scans_of(store: &dyn Store, tenant: TenantId, filter: &ScanFilter) -> Vec<Scan> {
    all(
        "list_scans",
        |p| store.list_scans(tenant, filter, p),
        |s| s.id.as_uuid(),
    )
    .await
}

/// Every share link of `scan`, newest first.
async fn share_links_of(store: &dyn Store, tenant: TenantId, scan: ScanId) -> Vec<ShareLink> {
    all(
        "list_share_links",
        |p| store.list_share_links(tenant, scan, p),
        |l| l.id.as_uuid(),
    )
    .await
}

/// What `list_scans` must list of `rows` (one tenant's scans as they now are) for
/// `filter`: the rows that pass every field of it, newest first.
fn filtered(rows: &[Scan], filter: &ScanFilter) -> Vec<Scan> {
    let mut want: Vec<Scan> = rows
        .iter()
        .filter(|s| {
            filter.fleet.is_none_or(|f| s.fleet_id == f)
                && filter.status.is_none_or(|st| s.status == st)
                && filter.scenario.is_none_or(|sc| s.scenario == sc)
                && filter
                    .environments
                    .as_ref()
                    .is_none_or(|envs| envs.contains(&s.environment_id))
        })
        .cloned()
        .collect();
    want.sort_by_key(|s| std::cmp::Reverse(s.id));
    want
}

/// `scan` as the sweeper leaves it at `now`: moved to `status`, finished then.
fn swept(scan: &Scan, status: ScanStatus, now: Timestamp) -> Scan {
    Scan {
        status,
        finished_at: Some(now),
        ..scan.clone()
    }
}

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
            .create_scan(&scan, &audit)
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

/// An agent claims the oldest claimable scan of its own fleet: not one of another fleet
/// or tenant (even an older one), not before `not_before` (claimable at exactly it), not
/// at or after `not_after` (claimable one second before it). The claimed scan is
/// running, claimed by the agent at `now`, reads back so, and its `scan.claimed` event
/// (built from the scan as changed) is recorded. With nothing to claim it is `None`,
/// and a claim changes no other scan.
pub async fn claim_takes_oldest_claimable_of_own_fleet(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let minutes = |m| t0 + Duration::minutes(m);
    let second = Duration::seconds(1);
    let mut b = Setup::tenant(store, &fx).await;
    let (b_fleet, _, _) = b.fleet().await;
    let b_scan = b.scan(&b_fleet).await;
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let (fleet, _, _) = setup.fleet().await;
    let agent = setup.agent(&fleet).await;
    let (other_fleet, _, _) = setup.fleet().await;
    let other_agent = setup.agent(&other_fleet).await;
    let (empty_fleet, _, _) = setup.fleet().await;
    let idle = setup.agent(&empty_fleet).await;

    let of_other_fleet = setup.scan(&other_fleet).await;
    let constrained = |not_before, not_after| ScanConstraints {
        not_before,
        not_after,
        ..ScanConstraints::default()
    };
    let late = setup
        .add_scan(fx.scan(
            &fleet,
            Scenario::Inventory,
            constrained(Some(minutes(10)), None),
        ))
        .await;
    let first = setup.scan(&fleet).await;
    let next = setup.scan(&fleet).await;
    let window = setup
        .add_scan(fx.scan(
            &fleet,
            Scenario::Ports,
            constrained(Some(minutes(20)), Some(minutes(30))),
        ))
        .await;
    let gone = setup
        .add_scan(fx.scan(&fleet, Scenario::Software, constrained(None, Some(t0))))
        .await;

    assert_eq!(
        setup.claim(&claims, &idle, t0).await,
        None,
        "a fleet without scans has nothing to claim"
    );
    setup.claim_exactly(&claims, &agent, &first, t0).await;
    setup.claim_exactly(&claims, &agent, &next, t0).await;
    assert_eq!(
        setup.claim(&claims, &agent, t0).await,
        None,
        "nothing claimable: one scan not before its not_before, one at its not_after"
    );
    assert_eq!(
        setup.claim(&claims, &agent, minutes(10) - second).await,
        None,
        "one second before not_before"
    );
    setup
        .claim_exactly(&claims, &agent, &late, minutes(10))
        .await;
    assert_eq!(
        setup.claim(&claims, &agent, minutes(30)).await,
        None,
        "at exactly not_after"
    );
    setup
        .claim_exactly(&claims, &agent, &window, minutes(30) - second)
        .await;
    assert_eq!(
        setup.claim(&claims, &agent, minutes(60 * 24)).await,
        None,
        "every claimable scan of the fleet is taken"
    );
    assert_eq!(
        store.get_scan(t, gone.id).await.must("get_scan"),
        gone,
        "a scan past its not_after stays queued: claiming expires nothing"
    );
    assert_eq!(
        store.get_scan(b.id(), b_scan.id).await.must("get_scan"),
        b_scan,
        "another tenant's older scan is untouched"
    );
    let running = setup
        .claim_exactly(&claims, &other_agent, &of_other_fleet, t0)
        .await;
    assert_eq!(
        store
            .get_scan(t, of_other_fleet.id)
            .await
            .must("get_scan of a claimed scan"),
        running,
        "a claimed scan reads back running, claimed by its agent"
    );
    let running = scans_of(
        store,
        t,
        &ScanFilter {
            status: Some(ScanStatus::Running),
            ..ScanFilter::default()
        },
    )
    .await;
    let mut want = vec![window.id, next.id, first.id, late.id, of_other_fleet.id];
    want.sort_by_key(|id| std::cmp::Reverse(*id));
    assert_eq!(
        running.iter().map(|s| s.id).collect::<Vec<_>>(),
        want,
        "exactly the claimed scans are running"
    );
    setup.check_log("after the claims").await;
    b.check_log("of the other tenant").await;
}

/// How many agents claim at once in the concurrency case, and how many scans they race
/// for.
const CONCURRENT_CLAIMS: usize = 20;
/// See [`CONCURRENT_CLAIMS`].
const QUEUED_FOR_CLAIMS: usize = 10;

/// Twenty agents of one fleet claim at once on ten queued scans: exactly ten claims get
/// a scan, each a different one, claimed by that agent; the other ten get `None`; every
/// scan is running once, with one `scan.claimed` event each.
pub async fn claim_concurrent_never_shares_a_scan(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, _, _) = setup.fleet().await;
    let (_, secret) = setup
        .add_enrollment_token(fx.enrollment_token_with(
            &fleet,
            CONCURRENT_CLAIMS as u32,
            t0 + Duration::days(1),
        ))
        .await;
    let maker = AgentMaker::new(&fx, t0);
    let mut agents = Vec::new();
    for _ in 0..CONCURRENT_CLAIMS {
        agents.push(setup.enroll(&maker, &secret.digest()).await.0);
    }
    let mut queued = Vec::new();
    for _ in 0..QUEUED_FOR_CLAIMS {
        queued.push(setup.scan(&fleet).await);
    }
    let claims = Auditor::claims(&fx);

    // All calls borrow one store and run at once: on a pooled backend each holds its
    // own connection, so the claims really race.
    let outcomes = join_all(agents.iter().map(|agent| claims.claim(store, agent, t0))).await;
    let mut claimed = Vec::new();
    for (agent, outcome) in agents.iter().zip(outcomes) {
        if let Some(scan) = outcome {
            let want = queued
                .iter()
                .find(|q| q.id == scan.id)
                .unwrap_or_else(|| panic!("claim_scan returned a scan never queued: {scan:?}"));
            assert_eq!(
                scan,
                Scan {
                    status: ScanStatus::Running,
                    claimed_by: Some(agent.id),
                    claimed_at: Some(t0),
                    ..want.clone()
                },
                "a concurrent claim returns its scan running, claimed by the calling agent"
            );
            claimed.push(scan);
        }
    }
    assert_eq!(
        claimed.len(),
        QUEUED_FOR_CLAIMS,
        "{CONCURRENT_CLAIMS} concurrent claims on {QUEUED_FOR_CLAIMS} scans: exactly \
         {QUEUED_FOR_CLAIMS} get one, the rest None"
    );
    let ids: BTreeSet<ScanId> = claimed.iter().map(|s| s.id).collect();
    assert_eq!(
        ids,
        queued.iter().map(|s| s.id).collect(),
        "each queued scan is claimed exactly once: no two claims share a scan"
    );
    for scan in &claimed {
        assert_eq!(
            &store.get_scan(t, scan.id).await.must("get_scan"),
            scan,
            "the stored scan is the claim that returned it"
        );
    }
    setup.logged_all(claimed.iter().map(|s| claims.event_for(s)));
    setup.check_log("after concurrent claims").await;
}

/// `complete_scan` by the claiming agent completes a running scan: it returns the scan
/// completed at `at` (claim kept), which reads back so, and its artifacts read back
/// exactly (the bundle byte for byte); one `scan.completed` event is recorded. A scan
/// that is queued or running has no artifacts (`None`).
pub async fn complete_scan_stores_artifacts_exactly(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let (fleet, _, _) = setup.fleet().await;
    let agent = setup.agent(&fleet).await;
    let scan = setup.scan(&fleet).await;
    let still_running = setup.scan(&fleet).await;
    let queued = setup.scan(&fleet).await;
    let running = setup.claim_exactly(&claims, &agent, &scan, t0).await;
    let still_running = setup
        .claim_exactly(&claims, &agent, &still_running, t0)
        .await;

    let at = t0 + Duration::minutes(7);
    let artifacts = fx.artifacts();
    let completed = setup.complete(&agent, &running, at, &artifacts).await;
    let want = Scan {
        status: ScanStatus::Completed,
        finished_at: Some(at),
        ..running
    };
    assert_eq!(completed, want, "complete_scan returns the completed scan");
    assert_eq!(
        store.get_scan(t, scan.id).await.must("get_scan"),
        want,
        "the completed scan reads back so"
    );
    let stored = store
        .get_scan_artifacts(t, scan.id)
        .await
        .must("get_scan_artifacts")
        .unwrap_or_else(|| panic!("a completed scan must have its artifacts"));
    assert_eq!(
        stored.bundle_json.as_bytes(),
        artifacts.bundle_json.as_bytes(),
        "the bundle reads back byte for byte as hashed"
    );
    assert_eq!(stored, artifacts, "every artifact reads back as stored");
    for (what, id) in [("running", still_running.id), ("queued", queued.id)] {
        assert_eq!(
            store
                .get_scan_artifacts(t, id)
                .await
                .must("get_scan_artifacts"),
            None,
            "a {what} scan has no artifacts"
        );
    }
    setup.check_log("after complete_scan").await;
}

/// Only the agent that claimed a scan completes it: another agent of the fleet, an
/// agent of another fleet, an unclaimed scan and an unknown scan are all `NotFound`, and
/// none of them changes the scan, stores artifacts or writes an event.
pub async fn complete_scan_only_by_its_agent(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let (fleet, _, _) = setup.fleet().await;
    let (other_fleet, _, _) = setup.fleet().await;
    let owner = setup.agent(&fleet).await;
    let peer = setup.agent(&fleet).await;
    let stranger = setup.agent(&other_fleet).await;
    let scan = setup.scan(&fleet).await;
    let running = setup.claim_exactly(&claims, &owner, &scan, t0).await;
    let unclaimed = setup.scan(&fleet).await;
    let unknown = ScanId::from_uuid(fx.id());

    for (what, agent, id) in [
        ("another agent of the fleet", &peer, scan.id),
        ("an agent of another fleet", &stranger, scan.id),
        ("its agent, on an unclaimed scan", &owner, unclaimed.id),
        ("its agent, on an unknown scan", &owner, unknown),
    ] {
        let audit = fx.audit_by(
            t,
            AuditActor::Agent(agent.id.as_uuid()),
            actions::SCAN_COMPLETED,
            Some(id.as_uuid()),
            t0,
        );
        store
            .complete_scan(agent.id, id, t0, &fx.artifacts(), &audit)
            .await
            .must_be_not_found(&format!("complete_scan by {what}"));
    }
    for (what, want) in [("claimed", &running), ("unclaimed", &unclaimed)] {
        assert_eq!(
            &store.get_scan(t, want.id).await.must("get_scan"),
            want,
            "a refused completion leaves the {what} scan unchanged"
        );
        assert_eq!(
            store
                .get_scan_artifacts(t, want.id)
                .await
                .must("get_scan_artifacts"),
            None,
            "a refused completion stores no artifacts"
        );
    }
    setup.check_log("after refused completions").await;
    setup
        .complete(&owner, &running, t0 + Duration::minutes(1), &fx.artifacts())
        .await;
    setup.check_log("after the claiming agent completed").await;
}

/// A scan claimed by the agent but no longer running is `Conflict(SCAN_NOT_RUNNING)`:
/// completing twice (the first artifacts and `finished_at` stay) and completing a scan
/// the sweeper failed (it stays failed, without artifacts). Refusals write no event.
pub async fn complete_scan_only_while_running(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let sweeps = Auditor::sweeps(&fx);
    let (fleet, _, _) = setup.fleet().await;
    let agent = setup.agent(&fleet).await;
    let done = setup.scan(&fleet).await;
    let late = setup
        .add_scan(fx.scan(&fleet, Scenario::Inventory, Fixtures::max_duration(30)))
        .await;
    let done = setup.claim_exactly(&claims, &agent, &done, t0).await;
    let late = setup.claim_exactly(&claims, &agent, &late, t0).await;

    let first = fx.artifacts();
    let completed = setup
        .complete(&agent, &done, t0 + Duration::minutes(5), &first)
        .await;
    let deadline = t0 + Duration::minutes(30);
    assert_eq!(
        sweeps.sweep(store, deadline).await,
        1,
        "the sweep fails the late scan"
    );
    let failed = swept(&late, ScanStatus::Failed, deadline);
    setup.logged(&sweeps.event_for(&failed));

    for (what, id) in [
        ("a completed scan (completing twice)", done.id),
        ("a scan the sweeper failed", late.id),
    ] {
        let audit = fx.audit_by(
            t,
            AuditActor::Agent(agent.id.as_uuid()),
            actions::SCAN_COMPLETED,
            Some(id.as_uuid()),
            deadline,
        );
        store
            .complete_scan(agent.id, id, deadline, &fx.artifacts(), &audit)
            .await
            .must_conflict(
                constraint::SCAN_NOT_RUNNING,
                &format!("complete_scan of {what}"),
            );
    }
    assert_eq!(
        store.get_scan(t, done.id).await.must("get_scan"),
        completed,
        "completing twice keeps the first completion"
    );
    assert_eq!(
        store
            .get_scan_artifacts(t, done.id)
            .await
            .must("get_scan_artifacts"),
        Some(first),
        "completing twice keeps the first artifacts"
    );
    assert_eq!(
        store.get_scan(t, late.id).await.must("get_scan"),
        failed,
        "a failed scan stays failed"
    );
    assert_eq!(
        store
            .get_scan_artifacts(t, late.id)
            .await
            .must("get_scan_artifacts"),
        None,
        "a failed scan has no artifacts"
    );
    setup.check_log("after refused completions").await;
}

/// The sweeper fails a running scan at exactly `claimed_at + max_duration` (the default
/// hour when none is set; not one second before) and expires a queued scan at exactly
/// `not_after` (not one second before), of any tenant, with `finished_at = now` and one
/// event each built from the scan as changed (`scan.failed` / `scan.expired`, by the
/// system); it returns how many moved. A second sweep at the same time moves nothing,
/// and completed scans or scans without a deadline are never moved.
pub async fn sweep_fails_and_expires_at_deadlines(store: &dyn Store) {
    let fx = Fixtures::new();
    let t0 = fx.now();
    let minutes = |m| t0 + Duration::minutes(m);
    let second = Duration::seconds(1);
    let mut setup = Setup::tenant(store, &fx).await;
    let mut b = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let claims = Auditor::claims(&fx);
    let sweeps = Auditor::sweeps(&fx);
    let (fleet, _, _) = setup.fleet().await;
    let agent = setup.agent(&fleet).await;
    let short = setup
        .add_scan(fx.scan(&fleet, Scenario::Inventory, Fixtures::max_duration(30)))
        .await;
    let default_limit = setup.scan(&fleet).await;
    let finished = setup.scan(&fleet).await;
    let short = setup.claim_exactly(&claims, &agent, &short, t0).await;
    let default_limit = setup
        .claim_exactly(&claims, &agent, &default_limit, t0)
        .await;
    let finished = setup.claim_exactly(&claims, &agent, &finished, t0).await;
    let finished = setup
        .complete(&agent, &finished, minutes(1), &fx.artifacts())
        .await;
    let until_45 = ScanConstraints {
        not_after: Some(minutes(45)),
        ..ScanConstraints::default()
    };
    let expiring = setup
        .add_scan(fx.scan(&fleet, Scenario::Ports, until_45.clone()))
        .await;
    let forever = setup.scan(&fleet).await;
    let (b_fleet, _, _) = b.fleet().await;
    let b_expiring = b
        .add_scan(fx.scan(&b_fleet, Scenario::Ports, until_45))
        .await;

    let sweep = async |now: Timestamp, moves: usize, what: &str| {
        assert_eq!(
            sweeps.sweep(store, now).await,
            moves,
            "sweep_scans at {now}: {what}"
        );
    };
    sweep(
        minutes(30) - second,
        0,
        "one second before the first deadline",
    )
    .await;
    sweep(
        minutes(30),
        1,
        "the 30-minute scan fails at exactly its deadline",
    )
    .await;
    let failed_short = swept(&short, ScanStatus::Failed, minutes(30));
    sweep(
        minutes(30),
        0,
        "a second sweep at the same time moves nothing",
    )
    .await;
    sweep(minutes(45) - second, 0, "one second before not_after").await;
    sweep(
        minutes(45),
        2,
        "both tenants' queued scans expire at exactly not_after",
    )
    .await;
    let expired = swept(&expiring, ScanStatus::Expired, minutes(45));
    let b_expired = swept(&b_expiring, ScanStatus::Expired, minutes(45));
    sweep(
        minutes(60) - second,
        0,
        "one second before the default hour",
    )
    .await;
    sweep(
        minutes(60),
        1,
        "a scan without a limit fails after the default hour",
    )
    .await;
    let failed_default = swept(&default_limit, ScanStatus::Failed, minutes(60));
    sweep(t0 + Duration::days(365), 0, "nothing else is ever overdue").await;

    for want in [
        &failed_short,
        &expired,
        &failed_default,
        &finished,
        &forever,
    ] {
        assert_eq!(
            &store.get_scan(t, want.id).await.must("get_scan"),
            want,
            "each scan after the sweeps"
        );
    }
    assert_eq!(
        store.get_scan(b.id(), b_expiring.id).await.must("get_scan"),
        b_expired,
        "the other tenant's scan expired too"
    );
    for want in [&failed_short, &expired, &failed_default] {
        setup.logged(&sweeps.event_for(want));
    }
    b.logged(&sweeps.event_for(&b_expired));
    setup.check_log("after the sweeps").await;
    b.check_log("of the other tenant").await;
}

/// How many sweeps run at once in the concurrency case, and how many overdue scans
/// they share.
const CONCURRENT_SWEEPS: usize = 5;
/// See [`CONCURRENT_SWEEPS`].
const OVERDUE_FOR_SWEEPS: usize = 10;

/// Five sweeps at once over ten overdue scans move each scan exactly once: their counts
/// add up to ten, and each scan has exactly one `scan.expired` event.
pub async fn sweep_concurrent_moves_each_scan_once(store: &dyn Store) {
    let fx = Fixtures::new();
    let deadline = fx.now() + Duration::hours(1);
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, _, _) = setup.fleet().await;
    let sweeps = Auditor::sweeps(&fx);
    let mut queued = Vec::new();
    for _ in 0..OVERDUE_FOR_SWEEPS {
        let constraints = ScanConstraints {
            not_after: Some(deadline),
            ..ScanConstraints::default()
        };
        queued.push(
            setup
                .add_scan(fx.scan(&fleet, Scenario::Inventory, constraints))
                .await,
        );
    }

    let counts = join_all((0..CONCURRENT_SWEEPS).map(|_| sweeps.sweep(store, deadline))).await;
    assert_eq!(
        counts.iter().sum::<usize>(),
        OVERDUE_FOR_SWEEPS,
        "{CONCURRENT_SWEEPS} concurrent sweeps over {OVERDUE_FOR_SWEEPS} overdue scans \
         move each once (counts: {counts:?})"
    );
    let expired: Vec<Scan> = queued
        .iter()
        .map(|s| swept(s, ScanStatus::Expired, deadline))
        .collect();
    for want in &expired {
        assert_eq!(
            &store.get_scan(t, want.id).await.must("get_scan"),
            want,
            "each overdue scan expired"
        );
    }
    setup.logged_all(expired.iter().map(|s| sweeps.event_for(s)));
    setup.check_log("after concurrent sweeps").await;
}

// ---- share links ----

/// The link and scan of an opened share link; panics naming `what` otherwise.
fn opened(outcome: ShareAccess, what: &str) -> (ShareLink, Scan) {
    match outcome {
        ShareAccess::Opened(link, scan) => (link, scan),
        other => panic!("{what}: expected Opened, got {other:?}"),
    }
}

/// `link` after its `n`th access, at `at`.
fn accessed(link: &ShareLink, n: u32, at: Timestamp) -> ShareLink {
    ShareLink {
        access_count: n,
        last_accessed_at: Some(at),
        ..link.clone()
    }
}

/// A fleet of the tenant with an agent and a scan the agent claimed and completed:
/// what a share link shares. Returns the fleet and the completed scan.
async fn completed_scan(setup: &mut Setup<'_>, fx: &Fixtures) -> (Fleet, Scan) {
    let claims = Auditor::claims(fx);
    let (fleet, _, _) = setup.fleet().await;
    let agent = setup.agent(&fleet).await;
    let scan = setup.scan(&fleet).await;
    let running = setup.claim_exactly(&claims, &agent, &scan, fx.now()).await;
    let done = setup
        .complete(
            &agent,
            &running,
            fx.now() + Duration::minutes(5),
            &fx.artifacts(),
        )
        .await;
    (fleet, done)
}

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

// ---- leaked secrets ----

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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every case in this file and its submodules runs in the suite: a case missing from
    /// the macro's list would silently never run against any adapter.
    #[test]
    fn the_suite_runs_every_case() {
        let defined: BTreeSet<&str> =
            [include_str!("cases.rs"), include_str!("cases/schedules.rs")]
                .into_iter()
                .flat_map(str::lines)
                .filter_map(|line| line.strip_prefix("pub async fn "))
                .filter_map(|rest| rest.split('(').next())
                .collect();
        let listed: BTreeSet<&str> = super::ALL.iter().copied().collect();
        assert_eq!(listed.len(), super::ALL.len(), "a case is listed twice");
        assert_eq!(defined, listed, "cases defined vs cases the suite runs");
    }
}

//! The contract cases of tenants and environments, and of `ping`.

use std::collections::BTreeSet;

use fleetpass_domain::audit::actions;
use fleetpass_domain::identity::{Environment, EnvironmentName};
use fleetpass_domain::ids::{EnvironmentId, TenantId};
use fleetpass_ports::Store;
use fleetpass_ports::store::{AuditFilter, constraint};

use super::found;
use crate::fixtures::Fixtures;
use crate::support::{Must, Setup, all, audit_events, pages};

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

//! The contract cases of the audit log, and of paging through the directory lists.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fleetpass_domain::audit::chain::{CheckpointClaims, ExportLine, verify_chain};
use fleetpass_domain::audit::{AuditActor, AuditEvent, actions};
use fleetpass_domain::identity::{Environment, Principal, Role};
use fleetpass_domain::token::ApiToken;
use fleetpass_ports::Store;
use fleetpass_ports::store::{AuditFilter, PrincipalFilter};
use futures_util::future::join_all;
use time::Duration;

use crate::fixtures::Fixtures;
use crate::support::{
    Must, Setup, audit_chain, audit_events, expect_pages_of_five, first_page, pages,
};

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

/// How many audited writes [`audit_chain_is_one_order_under_concurrent_writers`] races.
const CONCURRENT_AUDITED_WRITES: usize = 50;

/// Audited writes that all run at once still chain as one order: seqs 1..=N with no
/// gap and no fork, each `prev` the digest before it, and an export built from the
/// chain verifies offline.
pub async fn audit_chain_is_one_order_under_concurrent_writers(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let writes: Vec<(Environment, AuditEvent)> = (0..CONCURRENT_AUDITED_WRITES)
        .map(|_| {
            let env = fx.environment(t);
            let audit = setup.audit(actions::ENVIRONMENT_CREATED, env.id.as_uuid());
            (env, audit)
        })
        .collect();
    // All calls borrow one store and run at once: on a pooled backend each holds its
    // own connection, so they race for the tenant's chain head.
    let outcomes = join_all(
        writes
            .iter()
            .map(|(env, audit)| store.create_environment(env, audit)),
    )
    .await;
    for ((_, audit), outcome) in writes.iter().zip(outcomes) {
        outcome.must("create_environment");
        setup.logged(audit);
    }
    setup.check_log("after concurrent writes").await;

    let chain = audit_chain(store, t).await;
    let head = store.audit_head(t).await.must("audit_head");
    assert_eq!(
        (chain.len(), head.seq),
        (setup.logged_count(), setup.logged_count() as u64),
        "every audited write has its own seq"
    );
    let mut export: Vec<String> = chain
        .iter()
        .map(|c| {
            let line = ExportLine::of(c.link, &c.event, c.link.seq % 2 == 0);
            serde_json::to_string(&line).unwrap_or_else(|e| panic!("an export line: {e}"))
        })
        .collect();
    let claims = CheckpointClaims::new(t, &head, fx.now());
    let payload = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).unwrap_or_else(|e| panic!("claims: {e}")));
    export.push(
        serde_json::to_string(&ExportLine::Checkpoint {
            jws: format!("e30.{payload}.c2ln"),
        })
        .unwrap_or_else(|e| panic!("the checkpoint line: {e}")),
    );
    let verified = verify_chain(&export.join("\n"), None)
        .unwrap_or_else(|e| panic!("the store's chain does not verify: {e}"));
    assert_eq!(verified.checkpoint.seq, head.seq);
    assert_eq!(verified.first_seq, Some(1));
}

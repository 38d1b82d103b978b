//! The contract cases of fleets.

use fleetpass_domain::audit::actions;
use fleetpass_domain::fleet::{Agent, EnrollmentRefusal, EnrollmentToken, Fleet};
use fleetpass_domain::ids::{EnvironmentId, FleetId};
use fleetpass_ports::Store;
use fleetpass_ports::store::constraint;
use time::Duration;

use super::{agents_of, enrollment_tokens_of, fleets_of, used};
use crate::fixtures::Fixtures;
use crate::support::{AgentMaker, Must, Setup, expect_pages_of_five, first_page, pages};

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
        .list_agents(t, unknown, None, first_page(10))
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
        .list_agents(t, doomed.id, None, first_page(10))
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
        |p| store.list_agents(t, fleet.id, None, p),
        agent_id,
    )
    .await;
    expect_pages_of_five("list_agents", &got, agent_id, agents);
    setup.check_log("after paging").await;
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

//! The contract cases of enrollment tokens, enrolling and agents.

use std::collections::BTreeSet;

use fleetpass_domain::audit::actions;
use fleetpass_domain::fleet::{Agent, EnrollmentRefusal, EnrollmentToken};
use fleetpass_domain::ids::{AgentId, EnrollmentTokenId};
use fleetpass_domain::secret::SecretKind;
use fleetpass_ports::Store;
use futures_util::future::join_all;
use time::Duration;

use super::{agents_of, enrollment_tokens_of, used};
use crate::fixtures::Fixtures;
use crate::support::{AgentMaker, Must, Setup, first_page};

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
        .list_agents(other, fleet.id, None, first_page(10))
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

/// `mark_agent_seen` (presence, which a store may write later in a batch) shows at once
/// in every read of the agent — by id, in its fleet's list, with its credentials — never
/// moves `last_seen_at` backwards, ignores an unknown agent, and writes no event.
pub async fn mark_agent_seen_shows_in_reads_and_never_moves_back(store: &dyn Store) {
    let fx = Fixtures::new();
    let mut setup = Setup::tenant(store, &fx).await;
    let t = setup.id();
    let (fleet, _, secret) = setup.fleet().await;
    let maker = AgentMaker::new(&fx, fx.now());
    let (agent, _, agent_secret) = setup.enroll(&maker, &secret.digest()).await;

    let seen = fx.now() + Duration::minutes(3);
    store
        .mark_agent_seen(agent.id, seen)
        .await
        .must("mark_agent_seen");
    store
        .mark_agent_seen(agent.id, seen - Duration::minutes(1))
        .await
        .must("mark_agent_seen, an older sighting");
    let expected = Agent {
        last_seen_at: Some(seen),
        ..agent.clone()
    };
    assert_eq!(
        store.get_agent(t, agent.id).await.must("get_agent"),
        expected,
        "get_agent shows the newest sighting"
    );
    assert_eq!(
        agents_of(store, t, fleet.id).await,
        vec![expected.clone()],
        "list_agents shows it"
    );
    assert_eq!(
        store
            .find_agent_credentials(agent.id)
            .await
            .must("find_agent_credentials"),
        Some((expected.clone(), agent_secret.digest())),
        "credentials show it"
    );
    // A heartbeat older than the sighting does not hide it from a later sighting.
    let later = seen + Duration::minutes(1);
    store
        .mark_agent_seen(agent.id, later)
        .await
        .must("mark_agent_seen, later");
    assert_eq!(
        store
            .get_agent(t, agent.id)
            .await
            .must("get_agent")
            .last_seen_at,
        Some(later)
    );
    store
        .mark_agent_seen(AgentId::from_uuid(fx.id()), later)
        .await
        .must("mark_agent_seen of an unknown agent is ignored");
    setup.check_log("after sightings (no events)").await;
}

//! Unique violations become the port's `Conflict`s through the adapter's one map of index
//! names, and only those: the schema's unique indexes are exactly that map's, except a few listed
//! below that no user action can violate, and a clash on any of those is `Other`. The
//! CHECKs mirror the domain, and writes whose parts contradict each other are refused
//! whole.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use fleetpass_contract::fixtures::Fixtures;
use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::fleet::EnrollmentToken;
use fleetpass_domain::identity::{EnvScope, Role};
use fleetpass_domain::ids::AgentId;
use fleetpass_domain::scan::{Scan, ScanStatus};
use fleetpass_ports::store::constraint;
use fleetpass_ports::{Conflict, FleetStore, RepoError, ScanStore, Store, TenantStore, TokenStore};
use fleetpass_store_postgres::UNIQUE_INDEXES;
use fleetpass_store_postgres::testing::TestDatabase;

#[derive(QueryableByName)]
struct Index {
    #[diesel(sql_type = Text)]
    tablename: String,
    #[diesel(sql_type = Text)]
    indexname: String,
}

/// The index the adapter maps to `conflict`.
fn index_of(conflict: Conflict) -> String {
    let (index, _) = UNIQUE_INDEXES
        .into_iter()
        .find(|(_, c)| *c == conflict)
        .unwrap_or_else(|| panic!("no index stands for {conflict}"));
    index.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_indexes_are_the_adapters_map() {
    let db = TestDatabase::fresh().await;
    let mut conn = AsyncPgConnection::establish(db.url())
        .await
        .expect("connect");
    let mut found: Vec<(String, String)> = diesel::sql_query(
        "SELECT tablename::text AS tablename, indexname::text AS indexname FROM pg_indexes \
         WHERE schemaname = 'public' AND indexdef LIKE 'CREATE UNIQUE INDEX%' \
         AND indexname NOT LIKE '%\\_pkey' AND tablename <> $1",
    )
    .bind::<Text, _>("__diesel_schema_migrations")
    .load::<Index>(&mut conn)
    .await
    .expect("read the catalog")
    .into_iter()
    .map(|i| (i.tablename, i.indexname))
    .collect();
    found.sort();
    let mut expected = vec![
        (
            "environments".to_owned(),
            index_of(Conflict::EnvironmentName),
        ),
        (
            "principals".to_owned(),
            index_of(Conflict::ServiceAccountName),
        ),
        ("principals".to_owned(), index_of(Conflict::UserEmail)),
        ("tenants".to_owned(), index_of(Conflict::TenantName)),
        // Not the port's: secret digests (a clash means a 256-bit collision, a bug or
        // an attack) and (tenant_id, id) pairs that tenant-consistent foreign keys
        // point at (implied by the primary keys, so they cannot clash at all).
        ("agents".to_owned(), "agents_secret_digest_key".to_owned()),
        // The audit chain's seq per tenant: only a bug (a writer that skipped the head
        // row's lock) can clash with it.
        (
            "audit_events".to_owned(),
            "audit_events_tenant_seq_key".to_owned(),
        ),
        (
            "enrollment_tokens".to_owned(),
            "enrollment_tokens_digest_key".to_owned(),
        ),
        (
            "environments".to_owned(),
            "environments_tenant_id_key".to_owned(),
        ),
        ("fleets".to_owned(), "fleets_tenant_id_idx".to_owned()),
        ("scans".to_owned(), "scans_tenant_id_idx".to_owned()),
        (
            "share_links".to_owned(),
            "share_links_digest_key".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(
        found, expected,
        "every unique index the adapter maps to a conflict exists, and no other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_violation_is_a_conflict_on_its_constraint() {
    let db = TestDatabase::fresh().await;
    let fx = Fixtures::new();
    let first = fx.new_tenant();
    db.create_tenant(&first).await.expect("create_tenant");
    let twin = fx.new_tenant_named(first.tenant.name.as_str());
    match db.create_tenant(&twin).await {
        Err(RepoError::Conflict { constraint }) => assert_eq!(constraint, constraint::TENANT_NAME),
        other => panic!(
            "expected a conflict on {}, got {other:?}",
            constraint::TENANT_NAME
        ),
    }

    let t = first.tenant.id;
    let env = fx.environment_named(t, &first.environment.name);
    let audit = fx.audit(t, actions::ENVIRONMENT_CREATED, Some(env.id.as_uuid()));
    match db.create_environment(&env, &audit).await {
        Err(RepoError::Conflict { constraint }) => {
            assert_eq!(constraint, constraint::ENVIRONMENT_NAME)
        }
        other => panic!(
            "expected a conflict on {}, got {other:?}",
            constraint::ENVIRONMENT_NAME
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clash_the_port_has_no_name_for_is_other() {
    let db = TestDatabase::fresh().await;
    let fx = Fixtures::new();
    let new = fx.new_tenant();
    db.create_tenant(&new).await.expect("create_tenant");
    // A second token with the first one's secret digest: impossible with 256-bit
    // secrets, so not a rule the port names.
    let (token, _) = fx.token(&new.admin, Role::Viewer, EnvScope::All);
    let audit = fx.audit(
        new.tenant.id,
        actions::TOKEN_CREATED,
        Some(token.id.as_uuid()),
    );
    let clash = db.create_token(&token, &new.digest, &audit).await;
    assert!(matches!(clash, Err(RepoError::Other(_))), "{clash:?}");
    let stored = db.get_token(new.tenant.id, token.id).await;
    assert!(
        matches!(stored, Err(RepoError::NotFound)),
        "the failed write left nothing: {stored:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_actor_checks_mirror_audit_actor() {
    let db = TestDatabase::fresh().await;
    let fx = Fixtures::new();
    let new = fx.new_tenant();
    db.create_tenant(&new).await.expect("create_tenant");
    let mut conn = AsyncPgConnection::establish(db.url())
        .await
        .expect("connect");
    let tenant = new.tenant.id.as_uuid().to_string();
    // (kind, has an id, allowed): exactly the shapes `AuditActor::from_parts` accepts.
    let shapes = [
        ("token", true, true),
        ("agent", true, true),
        ("platform", false, true),
        ("public", false, true),
        ("system", false, true),
        ("token", false, false),
        ("agent", false, false),
        ("platform", true, false),
        ("system", true, false),
        ("robot", true, false),
    ];
    for (kind, has_id, allowed) in shapes {
        let actor_id = if has_id {
            format!("'{}'", fx.id())
        } else {
            "NULL".to_owned()
        };
        let inserted = diesel::sql_query(format!(
            "INSERT INTO audit_events (id, tenant_id, actor_kind, actor_id, action, at) \
             VALUES ('{}', '{tenant}', '{kind}', {actor_id}, 'test.checked', now())",
            fx.id()
        ))
        .execute(&mut conn)
        .await;
        assert_eq!(
            inserted.is_ok(),
            allowed,
            "actor kind {kind} with an id: {has_id}: {inserted:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_whose_parts_disagree_are_refused_whole() {
    let db = TestDatabase::fresh().await;
    let fx = Fixtures::new();
    let new = fx.new_tenant();
    db.create_tenant(&new).await.expect("create_tenant");
    let t = new.tenant.id;

    // A new fleet whose first token belongs to another (existing) fleet of the tenant:
    // the composite foreign key alone would let it through.
    let fleet = fx.fleet(t, new.environment.id);
    let (token, secret) = fx.enrollment_token(&fleet);
    let audit = [
        fx.audit(t, actions::FLEET_CREATED, Some(fleet.id.as_uuid())),
        fx.audit(
            t,
            actions::ENROLLMENT_TOKEN_ISSUED,
            Some(token.id.as_uuid()),
        ),
    ];
    db.create_fleet(&fleet, &token, &secret.digest(), &audit)
        .await
        .expect("create_fleet");
    let stray = fx.fleet(t, new.environment.id);
    let (misfiled, misfiled_secret) = fx.enrollment_token(&fleet);
    let refused = db
        .create_fleet(&stray, &misfiled, &misfiled_secret.digest(), &audit)
        .await;
    assert!(matches!(refused, Err(RepoError::Other(_))), "{refused:?}");
    assert!(matches!(
        db.get_fleet(t, stray.id).await,
        Err(RepoError::NotFound)
    ));

    // An agent built for another fleet than its token's: the claimed use rolls back.
    let build = |token: &EnrollmentToken| {
        let mut agent = fx.agent(token, fx.now());
        agent.fleet_id = stray.id;
        let actor = AuditActor::Agent(agent.id.as_uuid());
        let event = fx.audit_by(t, actor, actions::AGENT_ENROLLED, None, fx.now());
        (agent, event)
    };
    let enrolled = db
        .enroll(
            &secret.digest(),
            fx.now(),
            &fx.agent_secret().digest(),
            &build,
        )
        .await;
    assert!(matches!(enrolled, Err(RepoError::Other(_))), "{enrolled:?}");
    let tokens = db
        .list_enrollment_tokens(t, fleet.id, Default::default())
        .await
        .expect("list_enrollment_tokens");
    assert_eq!(tokens.items, vec![token], "the use was not claimed");
}

/// Checks a scan write failed as `Other` and stored nothing.
async fn refused_whole(store: &dyn Store, outcome: Result<(), RepoError>, scan: &Scan, what: &str) {
    assert!(
        matches!(outcome, Err(RepoError::Other(_))),
        "{what}: {outcome:?}"
    );
    let stored = store.get_scan(scan.tenant_id, scan.id).await;
    assert!(
        matches!(stored, Err(RepoError::NotFound)),
        "{what} left nothing: {stored:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_and_share_links_are_held_to_the_domain() {
    let db = TestDatabase::fresh().await;
    let fx = Fixtures::new();
    let new = fx.new_tenant();
    db.create_tenant(&new).await.expect("create_tenant");
    let t = new.tenant.id;
    let fleet = fx.fleet(t, new.environment.id);
    let (token, secret) = fx.enrollment_token(&fleet);
    let audit = [
        fx.audit(t, actions::FLEET_CREATED, Some(fleet.id.as_uuid())),
        fx.audit(
            t,
            actions::ENROLLMENT_TOKEN_ISSUED,
            Some(token.id.as_uuid()),
        ),
    ];
    db.create_fleet(&fleet, &token, &secret.digest(), &audit)
        .await
        .expect("create_fleet");
    // Filed under another environment of the tenant than its fleet's: env-scoped
    // listings would show it to the wrong callers.
    let other_env = fx.environment(t);
    let env_created = fx.audit(
        t,
        actions::ENVIRONMENT_CREATED,
        Some(other_env.id.as_uuid()),
    );
    db.create_environment(&other_env, &env_created)
        .await
        .expect("create_environment");
    let misfiled = Scan {
        environment_id: other_env.id,
        ..fx.plain_scan(&fleet)
    };
    let requested = fx.audit(t, actions::SCAN_REQUESTED, Some(misfiled.id.as_uuid()));
    let outcome = db
        .create_scan(
            &misfiled,
            &fleetpass_domain::scan::ScanTarget::Any,
            &requested,
        )
        .await
        .map(drop);
    refused_whole(
        &*db,
        outcome,
        &misfiled,
        "a scan outside its fleet's environment",
    )
    .await;

    // Running without a claimer: a shape no lifecycle step makes.
    let unclaimed = Scan {
        status: ScanStatus::Running,
        claimed_at: Some(fx.now()),
        ..fx.plain_scan(&fleet)
    };
    let requested = fx.audit(t, actions::SCAN_REQUESTED, Some(unclaimed.id.as_uuid()));
    let outcome = db
        .create_scan(
            &unclaimed,
            &fleetpass_domain::scan::ScanTarget::Any,
            &requested,
        )
        .await
        .map(drop);
    refused_whole(&*db, outcome, &unclaimed, "a running scan nobody claimed").await;

    // A digest that is not lowercase hex: `Sha256Hex` cannot hold one, so no completion
    // can carry it; the table's CHECK still refuses one written by any other means.
    let agent_id = AgentId::from_uuid(fx.id());
    let running = Scan {
        status: ScanStatus::Running,
        claimed_by: Some(agent_id),
        claimed_at: Some(fx.now()),
        ..fx.plain_scan(&fleet)
    };
    let requested = fx.audit(t, actions::SCAN_REQUESTED, Some(running.id.as_uuid()));
    db.create_scan(
        &running,
        &fleetpass_domain::scan::ScanTarget::Any,
        &requested,
    )
    .await
    .expect("a claimed scan has a valid shape");
    let completed = fx.audit(t, actions::SCAN_COMPLETED, Some(running.id.as_uuid()));
    db.complete_scan(agent_id, running.id, fx.now(), &fx.artifacts(), &completed)
        .await
        .expect("complete_scan");
    let mut conn = AsyncPgConnection::establish(db.url())
        .await
        .expect("connect");
    let uppercase = diesel::sql_query(format!(
        "UPDATE scan_artifacts SET bundle_sha256 = upper(bundle_sha256) WHERE scan_id = '{}'",
        running.id
    ))
    .execute(&mut conn)
    .await;
    assert!(uppercase.is_err(), "{uppercase:?}");

    // A link's count never passes its limit, whatever writes it.
    let (link, link_secret) = fx.share_link(&running, Some(5), fx.now());
    let created = fx.audit(t, actions::SHARE_LINK_CREATED, Some(link.id.as_uuid()));
    db.create_share_link(&link, &link_secret.digest(), &created)
        .await
        .expect("create_share_link");
    let past_limit = diesel::sql_query(format!(
        "UPDATE share_links SET access_count = 6 WHERE id = '{}'",
        link.id
    ))
    .execute(&mut conn)
    .await;
    assert!(past_limit.is_err(), "{past_limit:?}");
}

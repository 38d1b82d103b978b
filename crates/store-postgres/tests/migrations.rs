//! Migrations and availability: concurrent migration runs apply the schema once, the
//! down migrations undo it (keeping the audit history they can keep), an unreachable
//! database is `Unavailable` quickly, and the pool survives its connections being
//! killed; a fresh test database, a copy of the migrated template, has every migration
//! applied and is a database of its own.

use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Text};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::MigrationHarness;
use fleetpass_contract::fixtures::Fixtures;
use fleetpass_domain::audit::{AuditActor, AuditEvent, actions};
use fleetpass_domain::fleet::EnrollmentToken;
use fleetpass_domain::identity::EnvScope;
use fleetpass_domain::ids::TenantId;
use fleetpass_domain::scan::{Scan, ScanConstraints, Scenario};
use fleetpass_ports::store::AuditFilter;
use fleetpass_ports::{AuditStore, FleetStore, RepoError, ScanStore, TenantStore};
use fleetpass_store_postgres::testing::{TestDatabase, server_url};
use fleetpass_store_postgres::{MIGRATIONS, PgStore, run_migrations};

/// A URL where nothing listens.
const DEAD_URL: &str = "postgres://postgres@127.0.0.1:1/postgres";

/// The version of the migration that made agents audit actors.
const FLEETS_VERSION: &str = "20261122010000";

/// The version of the migration that made the system an audit actor.
const SCANS_VERSION: &str = "20261122030000";

/// How fast "quickly" is: well under the pool's 5 s timeouts plus slack for a loaded
/// machine, and far from a hang.
const QUICKLY: Duration = Duration::from_secs(8);

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Runs `sql`, a `SELECT count(*) AS n …` with one text parameter, on `url`.
async fn count(url: &str, sql: &str, param: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
    diesel::sql_query(sql)
        .bind::<Text, _>(param)
        .get_result::<Count>(&mut conn)
        .await
        .expect(sql)
        .n
}

fn migration_count() -> usize {
    MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .expect("embedded migrations")
        .len()
}

/// A fresh database is cloned from the template (which a test cannot tell apart from
/// migrating it, but for this): every migration is already applied, so running them
/// applies none; it is an ordinary database, not itself a template; and two fresh
/// databases are two databases, so a write to one is not in the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_databases_are_migrated_copies_of_the_template() {
    let (a, b) = (TestDatabase::fresh().await, TestDatabase::fresh().await);
    assert_ne!(a.name(), b.name());
    let recorded = count(
        a.url(),
        "SELECT count(*) AS n FROM __diesel_schema_migrations WHERE version <> $1",
        "",
    )
    .await;
    assert_eq!(
        recorded,
        i64::try_from(migration_count()).expect("a few migrations")
    );
    assert_eq!(run_migrations(a.url()).await.expect("migrations run"), 0);
    let templates = count(
        &server_url(),
        "SELECT count(*) AS n FROM pg_database WHERE datname = $1 AND datistemplate",
        a.name(),
    )
    .await;
    assert_eq!(templates, 0, "a test database must not be a template");
    let fx = Fixtures::new();
    let tenant = fx.new_tenant();
    a.create_tenant(&tenant).await.expect("a tenant is created");
    assert!(
        matches!(
            b.get_tenant(tenant.tenant.id).await,
            Err(RepoError::NotFound)
        ),
        "a tenant made in one fresh database shows up in another"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_apply_the_schema_once() {
    let db = TestDatabase::unmigrated().await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url().to_owned();
            tokio::spawn(async move { run_migrations(&url).await })
        })
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        applied.push(
            run.await
                .expect("join")
                .expect("every concurrent run succeeds"),
        );
    }
    applied.sort_unstable();
    // Whichever run got the lock first applied everything; the rest found nothing to do.
    assert_eq!(
        applied,
        vec![0, 0, 0, migration_count()],
        "applied counts of the four runs"
    );
    let recorded = count(
        db.url(),
        "SELECT count(*) AS n FROM __diesel_schema_migrations WHERE version >= $1",
        "",
    )
    .await;
    assert_eq!(
        recorded,
        i64::try_from(migration_count()).unwrap(),
        "each migration recorded once"
    );
    assert_eq!(
        run_migrations(db.url()).await.expect("a later run"),
        0,
        "nothing left to apply"
    );
    // The schema is there and usable.
    db.list_tenants(Default::default())
        .await
        .expect("list_tenants on the migrated schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_migrations_undo_the_schema() {
    let db = TestDatabase::fresh().await;
    let url = db.url().to_owned();
    let tables = "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' \
                  AND table_name <> $1";
    let migrated = count(&url, tables, "__diesel_schema_migrations").await;
    assert!(migrated >= 6, "the schema has its tables, found {migrated}");

    let conn = AsyncPgConnection::establish(&url).await.expect("connect");
    let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
    tokio::task::spawn_blocking(move || wrapper.revert_all_migrations(MIGRATIONS).map(|v| v.len()))
        .await
        .expect("join")
        .expect("every down migration runs");
    assert_eq!(
        count(&url, tables, "__diesel_schema_migrations").await,
        0,
        "down migrations drop every table"
    );
    assert_eq!(
        run_migrations(&url).await.expect("migrate again"),
        migration_count(),
        "and up again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverting_the_fleets_migration_keeps_events_by_agents() {
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
    let build = |token: &EnrollmentToken| {
        let agent = fx.agent(token, fx.now());
        let actor = AuditActor::Agent(agent.id.as_uuid());
        let event = fx.audit_by(t, actor, actions::AGENT_ENROLLED, None, fx.now());
        (agent, event)
    };
    db.enroll(
        &secret.digest(),
        fx.now(),
        &fx.agent_secret().digest(),
        &build,
    )
    .await
    .expect("enroll")
    .expect("a fresh token enrolls");
    let by_agents = AuditFilter {
        action: Some(actions::AGENT_ENROLLED.into()),
        ..AuditFilter::default()
    };
    let before = db
        .list_audit_events(t, &by_agents, Default::default())
        .await
        .expect("list_audit_events")
        .items;
    assert_eq!(before.len(), 1, "the enrollment's event");

    let conn = AsyncPgConnection::establish(db.url())
        .await
        .expect("connect");
    let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
    // Back to before the fleets migration, through any that came after it.
    let reverted = tokio::task::spawn_blocking(move || {
        let mut reverted = 0;
        loop {
            let version = wrapper.revert_last_migration(MIGRATIONS)?;
            reverted += 1;
            if version.to_string().starts_with(FLEETS_VERSION) {
                return diesel::migration::Result::Ok(reverted);
            }
        }
    })
    .await
    .expect("join");
    let reverted = match reverted {
        Ok(n) => n,
        Err(e) => panic!("the fleets migration reverts with an agent's event in the log: {e}"),
    };
    assert_eq!(
        run_migrations(db.url()).await.expect("migrate again"),
        reverted,
        "and the fleets migration applies again over it"
    );
    let after = db
        .list_audit_events(t, &by_agents, Default::default())
        .await
        .expect("list_audit_events")
        .items;
    // The environments an event concerns came with a later migration: reverting that
    // one forgets them (the events become tenant-wide), and nothing else.
    assert_eq!(tenant_wide(after), tenant_wide(before), "history stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverting_the_scans_migration_keeps_events_by_the_system() {
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
    // A scan whose window closes, expired by the sweeper: an event by the system.
    let window = ScanConstraints {
        not_after: Some(fx.now() + time::Duration::minutes(30)),
        ..ScanConstraints::default()
    };
    let scan = fx.scan(&fleet, Scenario::Inventory, window);
    let requested = fx.audit(t, actions::SCAN_REQUESTED, Some(scan.id.as_uuid()));
    db.create_scan(&scan, &fleetpass_domain::scan::ScanTarget::Any, &requested)
        .await
        .expect("create_scan");
    let at = fx.now() + time::Duration::hours(1);
    let expired = |scan: &Scan| {
        fx.audit_by(
            t,
            AuditActor::System,
            actions::SCAN_EXPIRED,
            Some(scan.id.as_uuid()),
            at,
        )
    };
    assert_eq!(db.sweep_scans(at, &expired).await.expect("sweep_scans"), 1);
    let by_system = AuditFilter {
        action: Some(actions::SCAN_EXPIRED.into()),
        ..AuditFilter::default()
    };
    let before = db
        .list_audit_events(t, &by_system, Default::default())
        .await
        .expect("list_audit_events")
        .items;
    assert_eq!(before.len(), 1, "the sweep's event");

    let conn = AsyncPgConnection::establish(db.url())
        .await
        .expect("connect");
    let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
    let reverted = tokio::task::spawn_blocking(move || {
        let mut reverted = 0;
        loop {
            let version = wrapper.revert_last_migration(MIGRATIONS)?;
            reverted += 1;
            if version.to_string().starts_with(SCANS_VERSION) {
                return diesel::migration::Result::Ok(reverted);
            }
        }
    })
    .await
    .expect("join");
    let reverted = match reverted {
        Ok(n) => n,
        Err(e) => panic!("the scans migration reverts with a system event in the log: {e}"),
    };
    assert_eq!(
        run_migrations(db.url()).await.expect("migrate again"),
        reverted,
        "and the scans migration applies again over it"
    );
    let after = db
        .list_audit_events(t, &by_system, Default::default())
        .await
        .expect("list_audit_events")
        .items;
    // The environments an event concerns came with a later migration: reverting that
    // one forgets them (the events become tenant-wide), and nothing else.
    assert_eq!(tenant_wide(after), tenant_wide(before), "history stays");
}

/// `events` as tenant-wide events.
fn tenant_wide(events: Vec<AuditEvent>) -> Vec<AuditEvent> {
    events
        .into_iter()
        .map(|e| e.within(EnvScope::All))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_unavailable_quickly() {
    let store = PgStore::connect(DEAD_URL, 2).expect("connecting is lazy");
    let started = Instant::now();
    let ping = store.ping().await;
    assert!(
        matches!(ping, Err(RepoError::Unavailable(_))),
        "ping: {ping:?}"
    );
    let read = store
        .get_tenant(TenantId::from_uuid(Fixtures::new().id()))
        .await;
    assert!(
        matches!(read, Err(RepoError::Unavailable(_))),
        "get_tenant: {read:?}"
    );
    let new = Fixtures::new().new_tenant();
    let write = store.create_tenant(&new).await;
    assert!(
        matches!(write, Err(RepoError::Unavailable(_))),
        "create_tenant: {write:?}"
    );
    let migrate = run_migrations(DEAD_URL).await;
    assert!(
        matches!(migrate, Err(RepoError::Unavailable(_))),
        "run_migrations: {migrate:?}"
    );
    assert!(started.elapsed() < QUICKLY, "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresponsive_database_is_unavailable_within_the_timeouts() {
    // Accepts connections and never answers: a hung server or a black-holed network.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "postgres://postgres@{}/postgres",
        silent.local_addr().expect("addr")
    );
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });
    let store = PgStore::connect(&url, 2).expect("connecting is lazy");
    let started = Instant::now();
    let ping = store.ping().await;
    assert!(
        matches!(ping, Err(RepoError::Unavailable(_))),
        "ping: {ping:?}"
    );
    let read = store
        .get_tenant(TenantId::from_uuid(Fixtures::new().id()))
        .await;
    assert!(
        matches!(read, Err(RepoError::Unavailable(_))),
        "get_tenant: {read:?}"
    );
    assert!(
        started.elapsed() < 2 * QUICKLY,
        "took {:?}",
        started.elapsed()
    );
    held.abort();
}

#[test]
fn a_malformed_url_is_refused_up_front() {
    let refused = PgStore::connect("postgres://host:notaport/db", 2);
    assert!(matches!(refused, Err(RepoError::Other(_))), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_set_up_and_the_pool_survives_killed_connections() {
    let db = TestDatabase::fresh().await;
    db.ping().await.expect("ping");
    let admin = server_url();
    let ours = "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'fleetpass'";
    assert!(
        count(&admin, ours, db.name()).await >= 1,
        "pooled sessions are named 'fleetpass'"
    );

    // What a database restart or failover does to the pool's connections.
    let mut conn = AsyncPgConnection::establish(&admin).await.expect("connect");
    diesel::sql_query(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = $1",
    )
    .bind::<Text, _>(db.name())
    .get_result::<Count>(&mut conn)
    .await
    .expect("terminate the pool's connections");
    db.ping()
        .await
        .expect("the pool replaces dead connections without a restart");
    db.list_tenants(Default::default())
        .await
        .expect("and serves queries again");
}

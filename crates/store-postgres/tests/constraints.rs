//! Unique violations become `Conflict` named by the port's constraint names, and only
//! those: the schema's unique indexes carry exactly those names, and a clash on any other
//! unique key is `Other`.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use fleetpass_contract::fixtures::Fixtures;
use fleetpass_domain::audit::actions;
use fleetpass_domain::identity::{EnvScope, Role};
use fleetpass_ports::store::constraint;
use fleetpass_ports::{RepoError, Store};
use fleetpass_store_postgres::testing::TestDatabase;

#[derive(QueryableByName)]
struct Index {
    #[diesel(sql_type = Text)]
    tablename: String,
    #[diesel(sql_type = Text)]
    indexname: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_indexes_are_named_after_the_port() {
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
            constraint::ENVIRONMENT_NAME.to_owned(),
        ),
        (
            "principals".to_owned(),
            constraint::SERVICE_ACCOUNT_NAME.to_owned(),
        ),
        ("principals".to_owned(), constraint::USER_EMAIL.to_owned()),
        ("tenants".to_owned(), constraint::TENANT_NAME.to_owned()),
    ];
    expected.sort();
    assert_eq!(
        found, expected,
        "every unique rule carries its port name, and no other exists"
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

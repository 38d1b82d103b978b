//! Throwaway PostgreSQL databases for tests (feature `testing`): every
//! [`TestDatabase::fresh`] creates its own migrated database, and dropping the guard
//! drops the database, so tests run in parallel without sharing state and leave nothing
//! behind.
//!
//! A fresh database is a copy of a migrated template (`CREATE DATABASE … TEMPLATE …`, as
//! crates.io's test-db crate does) rather than a run of every migration: copying is one
//! statement, migrating a dozen round trips and hundreds of DDL statements per test. The
//! template is named after a digest of the migrations (`fleetpass_template_<digest>`, see
//! `build.rs`), so a changed migration makes a new template instead of cloning a stale
//! one, and it is built under an advisory lock, so test binaries running at once build
//! it once between them. Each process checks for it once. Templates are not swept: they
//! are small, and another checkout sharing the server may be cloning its own.
//!
//! The server comes from `TEST_DATABASE_URL`, else `DATABASE_URL`, else
//! [`DEFAULT_SERVER_URL`]; whatever database that URL names is ignored, the harness
//! works in the server's `postgres` database and in the ones it creates.
//!
//! ```no_run
//! # async fn demo() {
//! use fleetpass_ports::TenantStore;
//! use fleetpass_store_postgres::testing::TestDatabase;
//!
//! let db = TestDatabase::fresh().await;
//! db.ping().await.unwrap(); // Deref to PgStore
//! let url = db.url().to_owned(); // e.g. for a server process under test
//! let store = db.store_arc(); // Arc<PgStore>, e.g. for `Deps::system`
//! # drop((url, store));
//! # }
//! ```

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::OnceCell;

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use uuid::Uuid;

use crate::{PgStore, run_migrations};

/// The server tests use when neither `TEST_DATABASE_URL` nor `DATABASE_URL` is set.
pub const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The prefix of every database this harness creates.
pub const DATABASE_PREFIX: &str = "fleetpass_test_";

/// How to get a server when there is none.
const START_HINT: &str = "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
     or point TEST_DATABASE_URL at a server where this user may create databases";

/// Test databases older than this are left over from killed test runs and are dropped
/// by the next run (their names carry their creation time, as a UUID v7).
const STALE_AFTER: Duration = Duration::from_secs(6 * 60 * 60);

/// How long the harness waits for the server before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Pool size of each test store: enough for concurrent calls within one test, small
/// enough that many tests in parallel stay far below the server's connection limit.
const TEST_POOL_SIZE: usize = 4;

/// Whether this process has swept stale test databases yet.
static SWEPT: AtomicBool = AtomicBool::new(false);

/// The migrated template of this build's migrations, once this process has made sure it
/// exists.
static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// The advisory lock (taken in the server's `postgres` database) under which a template
/// is checked and built, so concurrent test processes never build one twice or clone a
/// half-built one. Distinct from the migration lock, which lives in the migrated database.
const TEMPLATE_LOCK_KEY: i64 = 0x666c_6565_7474_6d70;

/// How often a clone is retried while the template still counts a session: the builder's
/// connection may take a moment to end after it closed it.
const CLONE_ATTEMPTS: u32 = 50;

/// The URL of the test server, from the environment.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| DEFAULT_SERVER_URL.to_owned())
}

/// A fresh database with a connected [`PgStore`]; dropping it drops the database.
///
/// Derefs to the store, so `&*db` is a `&PgStore` (and a `&dyn Store`).
pub struct TestDatabase {
    name: String,
    admin_url: String,
    url: String,
    store: Arc<PgStore>,
}

/// The name the contract suite is written against: `TestStore::fresh()`.
pub type TestStore = TestDatabase;

impl TestDatabase {
    /// A new database with every migration applied and a store connected to it.
    ///
    /// # Panics
    /// When the server cannot be reached (the message says how to start one) or the
    /// database cannot be created or migrated.
    pub async fn fresh() -> Self {
        let (server, mut admin) = admin_connection().await;
        let template = TEMPLATE
            .get_or_init(|| ensure_template(&server, &mut admin))
            .await
            .clone();
        Self::create(server, admin, Some(&template)).await
    }

    /// A new, empty database (no migrations run) with a store connected to it: for
    /// tests of the migrations themselves.
    ///
    /// # Panics
    /// As [`TestDatabase::fresh`].
    pub async fn unmigrated() -> Self {
        let (server, admin) = admin_connection().await;
        Self::create(server, admin, None).await
    }

    /// Creates the database, a copy of `template` or empty, and connects a store to it.
    async fn create(server: String, mut admin: AsyncPgConnection, template: Option<&str>) -> Self {
        let admin_url = with_database(&server, "postgres");
        // UUID v7: unique, and it records when the database was made (see `sweep_stale`).
        let name = format!("{DATABASE_PREFIX}{}", Uuid::now_v7().simple());
        let created = match template {
            Some(template) => clone_database(&mut admin, template, &name).await,
            None => admin
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = created {
            panic!("creating test database {name} failed: {e}");
        }
        drop(admin);
        let url = with_database(&server, &name);
        let store = match PgStore::connect(&url, TEST_POOL_SIZE) {
            Ok(store) => Arc::new(store),
            Err(e) => panic!("connecting to test database {name} failed: {e}"),
        };
        Self {
            name,
            admin_url,
            url,
            store,
        }
    }

    /// The database's URL, for anything that connects on its own (a server process,
    /// a second store, `run_migrations`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// The store, shared: for wiring that wants an `Arc` (such as `Deps::system`).
    /// The store stops working when this guard drops, even if the `Arc` lives on.
    pub fn store_arc(&self) -> Arc<PgStore> {
        Arc::clone(&self.store)
    }
}

impl Deref for TestDatabase {
    type Target = PgStore;

    fn deref(&self) -> &PgStore {
        &self.store
    }
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        self.store.close();
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop cannot await, and blocking inside the test's runtime is not allowed: run
        // the DROP on a thread of its own with its own small runtime and wait for it.
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(drop_database(&admin_url, &name))
        })
        .join()
        .unwrap_or_else(|_| Err("the thread dropping it panicked".to_owned()));
        if let Err(e) = outcome {
            let message = format!("dropping test database {} failed: {e}", self.name);
            // A second panic while unwinding would abort and hide the first failure.
            if std::thread::panicking() {
                eprintln!("{message}");
            } else {
                panic!("{message}");
            }
        }
    }
}

/// The test server's URL and a connection to its `postgres` database, having swept
/// stale test databases if this process has not yet.
///
/// # Panics
/// When the server cannot be reached (the message says how to start one).
async fn admin_connection() -> (String, AsyncPgConnection) {
    let server = server_url();
    let admin_url = with_database(&server, "postgres");
    let mut admin =
        match tokio::time::timeout(CONNECT_TIMEOUT, AsyncPgConnection::establish(&admin_url)).await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => panic!(
                "cannot reach PostgreSQL at {}: {e}; {START_HINT}",
                redact(&admin_url)
            ),
            Err(_) => panic!(
                "PostgreSQL at {} did not answer in time; {START_HINT}",
                redact(&admin_url)
            ),
        };
    if !SWEPT.swap(true, Ordering::SeqCst) {
        sweep_stale(&mut admin).await;
    }
    (server, admin)
}

/// The name of the template database of this build's migrations.
fn template_name() -> String {
    format!("fleetpass_template_{}", env!("FLEETPASS_MIGRATIONS_DIGEST"))
}

/// Whether a template database was completely built: it is marked a template only
/// after its migrations ran, so a builder that died half-way leaves one that is not.
#[derive(QueryableByName)]
struct TemplateState {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    datistemplate: bool,
}

/// Makes sure the migrated template of this build's migrations exists, building it if
/// it does not, and returns its name. Holds [`TEMPLATE_LOCK_KEY`] throughout, so a
/// concurrent process waits and then finds it built.
///
/// # Panics
/// When the template cannot be built (the migrations fail).
async fn ensure_template(server: &str, admin: &mut AsyncPgConnection) -> String {
    let name = template_name();
    let lock = |sql: &'static str| {
        diesel::sql_query(sql).bind::<diesel::sql_types::BigInt, _>(TEMPLATE_LOCK_KEY)
    };
    if let Err(e) = lock("SELECT pg_advisory_lock($1)").execute(admin).await {
        panic!("locking the template database {name} failed: {e}");
    }
    let built = build_template(server, admin, &name).await;
    // The session's end would release the lock too, but the connection lives on.
    let _ = lock("SELECT pg_advisory_unlock($1)").execute(admin).await;
    if let Err(e) = built {
        panic!("building the template database {name} failed: {e}");
    }
    name
}

/// Builds template `name` unless a complete one exists; the caller holds the lock.
async fn build_template(
    server: &str,
    admin: &mut AsyncPgConnection,
    name: &str,
) -> Result<(), String> {
    let state = diesel::sql_query("SELECT datistemplate FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .load::<TemplateState>(admin)
        .await
        .map_err(|e| e.to_string())?;
    match state.into_iter().next().map(|row| row.datistemplate) {
        Some(true) => return Ok(()),
        // Left by a builder that died before finishing: ours to replace.
        Some(false) => drop_database_on(admin, name).await?,
        None => {}
    }
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(|e| e.to_string())?;
    run_migrations(&with_database(server, name))
        .await
        .map_err(|e| e.to_string())?;
    admin
        .batch_execute(&format!("ALTER DATABASE \"{name}\" IS_TEMPLATE true"))
        .await
        .map_err(|e| e.to_string())
}

/// Creates database `name` as a copy of `template`. PostgreSQL refuses to copy a
/// database someone is connected to; the only one who ever was is the template's
/// builder, whose closed session may not have ended yet, so that refusal is retried.
async fn clone_database(
    admin: &mut AsyncPgConnection,
    template: &str,
    name: &str,
) -> Result<(), String> {
    let sql = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"");
    let mut attempt = 1;
    loop {
        match admin.batch_execute(&sql).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < CLONE_ATTEMPTS && e.to_string().contains("other users") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Drops database `name` over `admin`, disconnecting whoever is still connected to it.
async fn drop_database_on(admin: &mut AsyncPgConnection, name: &str) -> Result<(), String> {
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .map_err(|e| e.to_string())
}

/// Drops database `name`, disconnecting whoever is still connected to it.
async fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    let mut admin = tokio::time::timeout(CONNECT_TIMEOUT, AsyncPgConnection::establish(admin_url))
        .await
        .map_err(|_| "timed out connecting".to_owned())?
        .map_err(|e| e.to_string())?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .map_err(|e| e.to_string())
}

/// A database name read from `pg_database`.
#[derive(QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

/// Drops test databases that killed test runs left behind. Only names with a UUID v7
/// older than [`STALE_AFTER`] qualify, so a parallel run's databases are never touched.
async fn sweep_stale(admin: &mut AsyncPgConnection) {
    let names = diesel::sql_query(
        "SELECT datname::text AS datname FROM pg_database WHERE starts_with(datname, $1)",
    )
    .bind::<diesel::sql_types::Text, _>(DATABASE_PREFIX)
    .load::<DatabaseName>(admin)
    .await
    .unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    for DatabaseName { datname } in names {
        let created = datname
            .strip_prefix(DATABASE_PREFIX)
            .and_then(|id| Uuid::parse_str(id).ok())
            .and_then(|id| id.get_timestamp())
            .map(|ts| Duration::from_secs(ts.to_unix().0));
        if created.is_some_and(|created| now.saturating_sub(created) > STALE_AFTER) {
            // Best effort: a failure here must not fail the test that happened to sweep.
            let _ = admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{datname}\" WITH (FORCE)"
                ))
                .await;
        }
    }
}

/// `url` with its database replaced by `database`. Handles both URL
/// (`postgres://…/db?…`) and `key=value` connection strings.
fn with_database(url: &str, database: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        // In key=value form the last setting of a key wins.
        return format!("{url} dbname={database}");
    };
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return "the configured server".to_owned();
    };
    let authority = &url[scheme_end..];
    let authority = authority.find('/').map_or(authority, |i| &authority[..i]);
    match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _password)) => {
                url.replacen(authority, &format!("{user}:***{}", &authority[at..]), 1)
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_any_connection_string() {
        assert_eq!(
            with_database("postgres://u@h:5432/app", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/app?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgresql://h", "x"), "postgresql://h/x");
        assert_eq!(
            with_database("postgres://h?connect_timeout=2", "x"),
            "postgres://h/x?connect_timeout=2"
        );
        assert_eq!(
            with_database("host=h user=u dbname=app", "x"),
            "host=h user=u dbname=app dbname=x"
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("host=h password=secret"), "the configured server");
    }
}

//! The embedded migrations and [`run_migrations`], which applies them safely when several
//! replicas start at once.

use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use fleetpass_ports::RepoError;

use crate::error::{DbError, connection_error, migration_error, server_of, unreachable_at};

/// Every migration in the workspace's `migrations/` directory, compiled into the binary
/// (`build.rs` makes cargo re-embed them when one changes).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The session advisory lock that serialises migration runs across processes. Any fixed
/// number works as long as nothing else uses it; this one spells "fleetpas" in ASCII.
pub const MIGRATION_LOCK_KEY: i64 = 0x666c_6565_7470_6173;

/// How long opening the migration connection may take before the database counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies the pending migrations to the database at `url` and returns how many it
/// applied (0 when the schema is current).
///
/// Safe to call from several processes at once: each takes the session advisory lock
/// [`MIGRATION_LOCK_KEY`] on its own connection and runs the migrations on that same
/// connection, so one applies them and the others, once they get the lock, find
/// nothing pending. Each migration runs in its own transaction.
///
/// # Errors
/// `Unavailable` when the database cannot be reached; `Other` when a migration fails.
pub async fn run_migrations(url: &str) -> Result<usize, RepoError> {
    let server = server_of(url);
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, AsyncPgConnection::establish(url))
        .await
        .map_err(|_| {
            let timeout = RepoError::Unavailable(format!("timed out after {CONNECT_TIMEOUT:?}"));
            unreachable_at(timeout, &server)
        })?
        .map_err(|e| unreachable_at(connection_error(e), &server))?;
    // The harness creates its bookkeeping table with `CREATE TABLE IF NOT EXISTS`, which
    // the server answers with a NOTICE on every run after the first; the driver would log
    // it on every command.
    diesel::sql_query("SET client_min_messages TO warning")
        .execute(&mut conn)
        .await
        .map_err(DbError::from)?;
    // Blocks (without a timeout) while another process migrates: it will finish, and
    // starting on a half-migrated schema would be worse than waiting.
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .await
        .map_err(DbError::from)?;

    // The migration harness is synchronous; the wrapper drives the async connection from
    // a blocking thread, keeping the one session (and so the lock) throughout.
    let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
    let (mut wrapper, applied) = tokio::task::spawn_blocking(move || {
        let applied = wrapper
            .run_pending_migrations(MIGRATIONS)
            .map(|done| done.len());
        (wrapper, applied)
    })
    .await
    .map_err(|e| RepoError::Other(Box::new(e)))?;

    // Closing the session would release the lock too; unlocking explicitly just hands
    // it over sooner. A failed unlock only matters if the migrations succeeded.
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut *wrapper)
        .await;
    let applied = applied.map_err(migration_error)?;
    unlocked.map_err(DbError::from)?;
    if applied > 0 {
        tracing::info!(applied, "applied database migrations");
    }
    Ok(applied)
}

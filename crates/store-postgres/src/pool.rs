//! The connection pool: deadpool over diesel-async connections, with a recycle check
//! that costs no round trip for a connection in steady use.
//!
//! diesel-async's own recycling either trusts every idle connection (`Fast`) or runs a
//! `SELECT 1` before every checkout (`Verified`, which doubled the round trips of a
//! one-query request). [`Manager`] does what each is right for: a connection checked out
//! within the last [`PROVEN_FOR`] was working then and goes out again unverified; one
//! that sat idle longer, when the database may have restarted under it, is verified
//! first. A connection that dies in between fails the one query that meets it; `run`
//! and `transaction` then drop it from the pool ([`is_lost`]) instead of handing it out
//! again, so after a database restart each pooled connection costs at most one 503.
//!
//! Prepared statements are cached per connection by diesel-async (every query here is
//! safe to cache: no `IN` lists of varying length), so a hot query is parsed once per
//! connection, not once per request.

use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleResult};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, PoolError};

use crate::error::{DbError, is_session_ended};

/// How recently a connection must have been checked out to go out again unverified.
pub(crate) const PROVEN_FOR: Duration = Duration::from_secs(1);

/// The pool of the store.
pub(crate) type Pool = managed::Pool<Manager>;

/// diesel-async's manager (set to `Verified`), skipping the verification for connections
/// in steady use.
pub(crate) struct Manager(pub(crate) AsyncDieselConnectionManager<AsyncPgConnection>);

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Manager")
    }
}

impl managed::Manager for Manager {
    type Type = AsyncPgConnection;
    type Error = PoolError;

    async fn create(&self) -> Result<AsyncPgConnection, PoolError> {
        self.0.create().await
    }

    async fn recycle(
        &self,
        conn: &mut AsyncPgConnection,
        metrics: &Metrics,
    ) -> RecycleResult<PoolError> {
        use diesel_async::pooled_connection::PoolableConnection as _;
        if metrics.last_used() < PROVEN_FOR && !conn.is_broken() {
            return Ok(());
        }
        self.0.recycle(conn, metrics).await
    }
}

/// Whether `e` says the connection itself is gone (closed by the server, ended by it,
/// or its background task stopped), so it must not go back to the pool.
pub(crate) fn is_lost(e: &DbError) -> bool {
    match e {
        DbError::Diesel(DieselError::DatabaseError(kind, info)) => match kind {
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => true,
            DatabaseErrorKind::Unknown => is_session_ended(info.message()),
            _ => false,
        },
        DbError::Diesel(DieselError::BrokenTransactionManager) => true,
        _ => false,
    }
}

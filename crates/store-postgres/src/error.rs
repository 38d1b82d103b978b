//! The one place where diesel, pool and connection errors become [`RepoError`]s.
//!
//! Everything in this crate that talks to the database returns [`DbError`] internally
//! and converts once, at the port boundary, through `From<DbError> for RepoError`.

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError as ManagerError;
use diesel_async::pooled_connection::deadpool::PoolError;
use fleetpass_ports::Conflict;
use fleetpass_ports::RepoError;

/// The one map from the schema's unique indexes (and the one primary key a caller can
/// clash with) to the port's [`Conflict`]s; every other unique violation is `Other`.
/// The migrations test checks the schema has exactly these, besides the ones no user
/// action can violate.
pub const UNIQUE_INDEXES: [(&str, Conflict); 5] = [
    ("tenants_name_key", Conflict::TenantName),
    ("environments_tenant_name_key", Conflict::EnvironmentName),
    ("principals_tenant_email_key", Conflict::UserEmail),
    (
        "principals_tenant_sa_name_key",
        Conflict::ServiceAccountName,
    ),
    ("signing_keys_pkey", Conflict::SigningKeyId),
];

/// An error inside the adapter, before it crosses the port.
///
/// Transactions need an error type that diesel errors convert into (so `?` works on
/// queries) and that can also carry a decided outcome such as `Conflict`; `RepoError`
/// cannot be given a `From<diesel::result::Error>` here (both are foreign types).
#[derive(Debug)]
pub(crate) enum DbError {
    /// A query failed.
    Diesel(DieselError),
    /// The adapter decided the outcome itself.
    Repo(RepoError),
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        Self::Diesel(e)
    }
}

impl From<RepoError> for DbError {
    fn from(e: RepoError) -> Self {
        Self::Repo(e)
    }
}

impl From<PoolError> for DbError {
    fn from(e: PoolError) -> Self {
        Self::Repo(pool_error(e))
    }
}

impl From<DbError> for RepoError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Repo(e) => e,
            DbError::Diesel(e) => diesel_error(e),
        }
    }
}

/// Maps a query error.
fn diesel_error(e: DieselError) -> RepoError {
    match e {
        DieselError::NotFound => RepoError::NotFound,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info) => {
            match info.constraint_name().and_then(known_constraint) {
                Some(constraint) => RepoError::Conflict { constraint },
                // A clash the port has no name for (say, a digest collision) is a bug
                // or an attack, not a user error: keep the whole error for the log.
                None => RepoError::Other(Box::new(e)),
            }
        }
        // The connection died under the query, or the server is a read-only standby
        // mid-failover: both go away by retrying later.
        DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::ReadOnlyTransaction,
            ref info,
        ) => RepoError::Unavailable(info.message().to_owned()),
        // The server ended the session (a restart, a failover, an administrator): what
        // `SELECT 1` on checkout used to catch. Recognised by the server's FATAL message,
        // since diesel keeps no SQLSTATE for errors it has no kind for.
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, ref info)
            if is_session_ended(info.message()) =>
        {
            RepoError::Unavailable(info.message().to_owned())
        }
        // Left behind when a connection broke inside a transaction.
        DieselError::BrokenTransactionManager => RepoError::Unavailable(e.to_string()),
        other => RepoError::Other(Box::new(other)),
    }
}

/// Whether a server message says the session is over or the server is not serving
/// (SQLSTATE classes 57P and 08 as PostgreSQL words them).
pub(crate) fn is_session_ended(message: &str) -> bool {
    [
        "terminating connection",
        "the database system is",
        "server closed the connection",
    ]
    .iter()
    .any(|start| message.starts_with(start))
}

/// Maps a failure to get a connection from the pool. Every way that can fail means the
/// database cannot be reached (or not quickly enough), except a misconfigured pool.
pub(crate) fn pool_error(e: PoolError) -> RepoError {
    match e {
        PoolError::NoRuntimeSpecified => RepoError::Other(Box::new(e)),
        PoolError::Backend(ManagerError::ConnectionError(e)) => connection_error(e),
        other => RepoError::Unavailable(other.to_string()),
    }
}

/// Where `url` points, as `host:port` (each host of a multi-host URL), for messages
/// about a server that cannot be reached; never the user or password.
pub(crate) fn server_of(url: &str) -> String {
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        return "the server DATABASE_URL names".to_owned();
    };
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                tokio_postgres::config::Host::Tcp(name) if name.contains(':') => {
                    format!("[{name}]:{port}")
                }
                tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                tokio_postgres::config::Host::Unix(dir) => {
                    format!("{}/.s.PGSQL.{port}", dir.display())
                }
            }
        })
        .collect();
    if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(", ")
    }
}

/// `Unavailable` saying which server could not be reached (a driver's own message, such
/// as "error connecting to server", names none).
pub(crate) fn unreachable_at(e: RepoError, server: &str) -> RepoError {
    match e {
        RepoError::Unavailable(message) => RepoError::Unavailable(format!(
            "cannot connect to PostgreSQL at {server} (DATABASE_URL): {message}"
        )),
        other => other,
    }
}

/// [`pool_error`], naming the server when the pool could not open a connection to it.
pub(crate) fn pool_error_at(e: PoolError, server: &str) -> RepoError {
    let connecting = matches!(
        e,
        PoolError::Backend(ManagerError::ConnectionError(_))
            | PoolError::Timeout(deadpool::managed::TimeoutType::Create)
    );
    let mapped = pool_error(e);
    if connecting {
        unreachable_at(mapped, server)
    } else {
        mapped
    }
}

/// Maps a failure to open a connection outside the pool (migrations, the test harness).
pub(crate) fn connection_error(e: ConnectionError) -> RepoError {
    match e {
        // A URL that does not parse will not start working on a retry.
        ConnectionError::InvalidConnectionUrl(_) => RepoError::Other(Box::new(e)),
        other => RepoError::Unavailable(other.to_string()),
    }
}

/// Maps a failure of the migration harness. Its own bookkeeping queries fail with plain
/// diesel errors (a dropped connection among them); a failing migration's SQL comes
/// wrapped with the migration's name and is always `Other`.
pub(crate) fn migration_error(e: Box<dyn std::error::Error + Send + Sync>) -> RepoError {
    match e.downcast::<DieselError>() {
        Ok(e) => diesel_error(*e),
        Err(e) => RepoError::Other(e),
    }
}

/// The port's conflict for a database constraint name, if it has one.
fn known_constraint(name: &str) -> Option<Conflict> {
    UNIQUE_INDEXES
        .into_iter()
        .find_map(|(index, conflict)| (index == name).then_some(conflict))
}

/// A row that does not make a valid domain value: the database holds something the
/// domain would never have written.
#[derive(Debug, thiserror::Error)]
#[error("invalid {table} row {id}: {reason}")]
pub(crate) struct CorruptRow {
    /// The table it came from.
    pub table: &'static str,
    /// Its primary key, for finding it.
    pub id: String,
    /// What is wrong with it.
    pub reason: String,
}

impl CorruptRow {
    /// A corrupt-row error as the port reports it.
    pub(crate) fn repo(table: &'static str, id: impl ToString, reason: impl ToString) -> RepoError {
        RepoError::Other(Box::new(Self {
            table,
            id: id.to_string(),
            reason: reason.to_string(),
        }))
    }
}

/// A write whose parts contradict each other (say, an agent built for another fleet than
/// the token it enrolls with): a bug in the caller, refused before it reaches the
/// database.
#[derive(Debug, thiserror::Error)]
#[error("refusing to write {table} row {id}: {reason}")]
pub(crate) struct InconsistentWrite {
    /// The table it was meant for.
    pub table: &'static str,
    /// Its primary key.
    pub id: String,
    /// What contradicts what.
    pub reason: &'static str,
}

impl InconsistentWrite {
    /// An inconsistent-write error as the port reports it.
    pub(crate) fn repo(table: &'static str, id: impl ToString, reason: &'static str) -> RepoError {
        RepoError::Other(Box::new(Self {
            table,
            id: id.to_string(),
            reason,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unique_constraint_of_the_port_is_known() {
        assert_eq!(
            known_constraint("tenants_name_key"),
            Some(Conflict::TenantName)
        );
        assert_eq!(
            known_constraint("principals_tenant_sa_name_key"),
            Some(Conflict::ServiceAccountName)
        );
        assert_eq!(
            known_constraint("signing_keys_pkey"),
            Some(Conflict::SigningKeyId)
        );
        assert_eq!(known_constraint("api_token_secrets_pkey"), None);
        assert_eq!(known_constraint("enrollment_tokens_digest_key"), None);
    }

    #[test]
    fn not_found_and_broken_connections_map_to_their_variants() {
        assert!(matches!(
            RepoError::from(DbError::from(DieselError::NotFound)),
            RepoError::NotFound
        ));
        let closed = DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("gone".to_owned()),
        );
        assert!(matches!(
            RepoError::from(DbError::from(closed)),
            RepoError::Unavailable(_)
        ));
        assert_eq!(
            server_of("postgres://u:secret@db.example:6543/x"),
            "db.example:6543"
        );
        assert_eq!(server_of("postgres://u@127.0.0.1/x"), "127.0.0.1:5432");
        let bad_url = ConnectionError::InvalidConnectionUrl("nope".into());
        assert!(matches!(connection_error(bad_url), RepoError::Other(_)));
    }
}

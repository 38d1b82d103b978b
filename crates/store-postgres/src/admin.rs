//! Server-level chores outside any one database: creating the database a deployment
//! (or `cargo xtask dev`) runs on.

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use fleetpass_ports::RepoError;

/// Whether a database exists.
#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

/// Creates database `name` on the server `admin_url` connects to, unless it exists.
/// Returns whether it was created.
///
/// # Errors
/// `Unavailable` when the server cannot be reached; `Other` for a name that is not a
/// plain identifier or a refusal by the server.
pub async fn ensure_database(admin_url: &str, name: &str) -> Result<bool, RepoError> {
    // The name is spliced into DDL (which takes no bind parameters), so allow only the
    // characters of a plain identifier.
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(RepoError::Other(
            format!("{name:?} is not a plain database name").into(),
        ));
    }
    let mut conn = AsyncPgConnection::establish(admin_url)
        .await
        .map_err(|e| RepoError::Unavailable(e.to_string()))?;
    let found =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result::<Exists>(&mut conn)
            .await
            .map_err(|e| RepoError::Other(Box::new(e)))?;
    if found.exists {
        return Ok(false);
    }
    conn.batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(|e| RepoError::Other(Box::new(e)))?;
    Ok(true)
}

//! The PostgreSQL Fleetpass store: [`PgStore`] implements the `Store` port with diesel
//! and diesel-async over a deadpool pool, on the pure-Rust `tokio-postgres` driver (no
//! libpq).
//!
//! - **Schema**: the SQL migrations in the workspace's `migrations/` directory, embedded
//!   as [`MIGRATIONS`] and applied by [`run_migrations`], which takes a PostgreSQL
//!   advisory lock so that replicas starting together apply them once. `schema.rs` is
//!   the hand-written diesel view of the same tables.
//! - **Pool**: [`PgStore::connect`] opens connections lazily; each new one sets
//!   `statement_timeout = '10s'` and `application_name = 'fleetpass'`. Waiting for or
//!   opening a connection gives up after 5 s, so a database that is down answers
//!   `RepoError::Unavailable` quickly, and the pool recovers by itself when it is back.
//! - **Errors**: `error.rs` is the one place that maps diesel, pool and connection errors
//!   to `RepoError`: no row is `NotFound`; a unique violation is `Conflict` with the
//!   port's `Conflict` its index stands for ([`UNIQUE_INDEXES`], the one such map);
//!   a connection that cannot be had or was lost is `Unavailable`; the rest is `Other`.
//! - **Rows**: the adapter owns its row types (`TenantRow`, `TokenRow`, …) and converts
//!   them with `TryFrom<Row> for Domain`, so diesel types never cross the port and a row
//!   the domain would refuse is reported rather than served.
//! - **Transactions**: every write runs in one transaction with its audit events.
//! - **Locks**: a write that depends on a parent row (a token scoped to environments, a
//!   fleet in an environment, an enrollment token or agent in a fleet) key-share locks
//!   the parent first, and the parent's deletion locks it `FOR UPDATE` before checking
//!   for children, so either side sees the other's outcome. Parents are always locked
//!   before their children (`enroll` locks the fleet, then the token), which keeps
//!   cascading deletes free of deadlocks. `enroll` claims a use under the token's row
//!   lock, so concurrent enrollments, from any number of processes, take turns.
//! - **Tests**: the [`testing`] module (feature `testing`) gives each test its own
//!   migrated database and drops it afterwards.
//!
//! Architecture invariant: nothing here reads the clock or makes ids; every timestamp and
//! id is handed in through the port.

pub mod admin;
mod authcache;
mod cached;
mod error;
mod idempotency;
mod migrate;
mod pool;
mod ratelimit;
mod rows;
mod schema;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::UNIQUE_INDEXES;
pub use migrate::{MIGRATION_LOCK_KEY, MIGRATIONS, run_migrations};
pub use store::{PgStore, Relay};

//! [`PgStore`]: the `Store` port over a deadpool pool of diesel-async connections.
//!
//! Every method borrows a pooled connection, runs its queries as diesel DSL (no SQL
//! strings except `SELECT 1` and the session settings), and converts rows to domain
//! values through the row types in `rows`. Writes run in one transaction together with
//! their audit events.
//!
//! This module holds the pool, the transaction helpers and the lock helpers every area
//! shares; each per-area trait of the port is implemented in its own submodule:
//! `directory` (tenants, environments, principals, health), `tokens`, `fleet_agents`
//! (fleets, enrollment tokens, agents), `keys`, `scans` (with `share_links`),
//! `schedules` and `audit`. Scans, share links and schedules document their lock order
//! there. The sweeper's deadline arithmetic uses two SQL functions declared with `define_sql_function!`
//! (`make_interval`, `coalesce`), and `scans::status_is` is the one other SQL string:
//! it writes a fixed status into the claim and sweeper queries as a literal, so that
//! their partial indexes serve every plan (see there).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use diesel::dsl::exists;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::scoped_futures::{ScopedBoxFuture, ScopedFutureExt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::audit::chain::{ChainDigest, ChainHead, ChainLink};
use fleetpass_domain::fleet::{Agent, EnrollmentToken};
use fleetpass_domain::identity::{EnvScope, Role};
use fleetpass_domain::ids::{
    AgentId, EnrollmentTokenId, EnvironmentId, FleetId, PrincipalId, TenantId, TokenId,
};
use fleetpass_domain::page::PageRequest;
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::token::ApiToken;
use fleetpass_ports::RepoError;
use fleetpass_ports::store::constraint;
use uuid::Uuid;

use crate::authcache::{self, AuthCache};
use crate::cached::CachedExt as _;
use crate::error::{DbError, pool_error_at, server_of};
use crate::pool::{Manager, Pool, is_lost};
use crate::rows::{AgentRow, AuditRow, EnrollmentTokenRow, SecretRow, TokenRow};
use crate::schema::{
    agents, api_token_secrets, api_tokens, audit_events, audit_heads, enrollment_tokens,
    environments, fleets, principals,
};

mod audit;
mod batched;
mod directory;
mod fleet_agents;
mod keys;
mod parts;
mod scans;
mod schedules;
mod share_links;
mod stats;
mod tokens;
pub(crate) mod wakeups;

pub use wakeups::Relay;

/// How long a request waits for a pooled connection, and how long opening a new one
/// may take. Short, so that a database that is down turns into a quick 503 instead of
/// requests piling up.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `ping` may take in all. A pooled connection whose peer vanished without a
/// reset would otherwise wait for TCP to give up, and readiness probes must not hang.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Session settings of every pooled connection. The statement timeout bounds what one
/// runaway query can hold; the application name makes our sessions findable in
/// `pg_stat_activity`. Generic plans: every statement is prepared once per connection
/// (`cached.rs`) and is an index lookup or a keyset page whose best plan does not
/// depend on its parameters, yet on a large table PostgreSQL's plan cache kept
/// re-planning each execution (a custom plan every time: 0.05-0.08 ms of planning
/// for a 0.03 ms page read at 1 M rows, measured with `EXPLAIN ANALYZE`; at 1 k rows
/// it settles on the generic plan), which made a deep page cost 1.3x (docs/PERFORMANCE.md).
const SESSION_SETUP: &str = "SET statement_timeout = '10s'; SET application_name = 'fleetpass'; \
     SET plan_cache_mode = force_generic_plan";

/// The PostgreSQL store.
///
/// Cheap to clone: clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// `host:port` of the server, for messages when it cannot be reached.
    server: Arc<str>,
    auth: Arc<AuthCache>,
    uses: Arc<batched::Marks<TokenId>>,
    seen: Arc<batched::Marks<AgentId>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may carry a password.
        let status = self.pool.status();
        f.debug_struct("PgStore")
            .field("max_size", &status.max_size)
            .field("size", &status.size)
            .finish()
    }
}

/// The setup hook of every new pooled connection: connect, then apply
/// [`SESSION_SETUP`].
fn establish(
    url: &str,
) -> Pin<Box<dyn Future<Output = diesel::ConnectionResult<AsyncPgConnection>> + Send + '_>> {
    Box::pin(async move {
        let mut conn = AsyncPgConnection::establish(url).await?;
        conn.batch_execute(SESSION_SETUP)
            .await
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
        Ok(conn)
    })
}

/// The row limit that fetches one row beyond a page, to learn whether more exist.
fn overfetch(page: PageRequest) -> i64 {
    i64::from(page.limit.get()) + 1
}

impl PgStore {
    /// A store over a pool of at most `max_connections` connections to `url`.
    ///
    /// Connections are opened lazily, so this succeeds while the database is down; the
    /// first operation then fails with `Unavailable` within a few seconds, and the
    /// store recovers by itself once the database is back.
    ///
    /// # Errors
    /// `Other` when `url` is not a PostgreSQL connection string.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, RepoError> {
        // AsyncPgConnection reports an unparseable URL as a connection failure, which we
        // would call `Unavailable` and retry forever; catch it up front instead. The
        // parser's message names the bad option, never the URL (which may hold a
        // password).
        url.parse::<tokio_postgres::Config>()
            .map_err(|e| RepoError::Other(Box::new(e)))?;
        let mut config = ManagerConfig::default();
        config.custom_setup = Box::new(establish);
        config.recycling_method = RecyclingMethod::Verified;
        let manager = Manager(
            AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config),
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| RepoError::Other(Box::new(e)))?;
        Ok(Self {
            pool,
            server: server_of(url).into(),
            auth: Arc::new(AuthCache::new()),
            uses: Arc::default(),
            seen: Arc::default(),
        })
    }

    /// Listens for other replicas' changes to tokens, owners and agents and keeps this
    /// store's authentication cache in step (see `authcache.rs`); runs until dropped.
    /// Without it, another replica's revocation reaches this one within 2 s (the
    /// cache's expiry); with it, within a notification's delivery.
    pub async fn watch_auth_changes(&self, url: &str) {
        authcache::listen(url, &self.auth, None).await;
    }

    /// [`watch_auth_changes`](Self::watch_auth_changes), and on the same connection the
    /// wake-ups of held check-ins, handed to `relay` (see `store/wakeups.rs`): a scan
    /// queued, an agent revoked or a fleet deleted through any replica reaches this
    /// one's waiters as it commits. Runs until dropped.
    pub async fn watch_changes(&self, url: &str, relay: Relay) {
        authcache::listen(url, &self.auth, Some(&relay)).await;
    }

    /// `agent` with the newest sighting this process noted and has not written yet
    /// (`batched.rs`).
    fn seen(&self, mut agent: Agent) -> Agent {
        agent.last_seen_at = agent.last_seen_at.max(self.seen.latest(agent.id));
        agent
    }

    /// Closes the pool: idle connections are dropped and every later call fails with
    /// `Unavailable`.
    pub fn close(&self) {
        self.pool.close();
    }

    /// Runs `f` on a pooled connection, outside any explicit transaction (each
    /// statement is its own).
    pub(crate) async fn run<'a, R, F>(&self, f: F) -> Result<R, RepoError>
    where
        F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> ScopedBoxFuture<'a, 'r, Result<R, DbError>>
            + Send
            + 'a,
        R: Send + 'a,
    {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| pool_error_at(e, &self.server))?;
        let outcome = f(&mut conn).await;
        Ok(keep_unless_lost(conn, outcome)?)
    }

    /// Runs `f` in one transaction on a pooled connection: committed when it returns
    /// `Ok`, rolled back otherwise.
    async fn transaction<'a, R, F>(&self, f: F) -> Result<R, RepoError>
    where
        F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> ScopedBoxFuture<'a, 'r, Result<R, DbError>>
            + Send
            + 'a,
        R: Send + 'a,
    {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| pool_error_at(e, &self.server))?;
        let outcome = AsyncConnection::transaction(&mut *conn, f).await;
        Ok(keep_unless_lost(conn, outcome)?)
    }
}

impl PgStore {
    /// [`PgStore::transaction`] for a change that can alter what authentication reads:
    /// it also notifies every replica's cache (`NOTIFY`, delivered on commit) and
    /// forgets this one's once committed, so the next request here sees the change.
    async fn auth_transaction<'a, R, F>(&self, f: F) -> Result<R, RepoError>
    where
        F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> ScopedBoxFuture<'a, 'r, Result<R, DbError>>
            + Send
            + 'a,
        R: Send + 'a,
    {
        let outcome = self
            .transaction(|c| {
                async move {
                    let changed = f(c).await?;
                    diesel::sql_query(authcache::NOTIFY).execute(c).await?;
                    Ok(changed)
                }
                .scope_boxed()
            })
            .await;
        if outcome.is_ok() {
            self.auth.forget();
        }
        outcome
    }
}

/// Hands `outcome` on; a connection that turned out to be gone leaves the pool.
fn keep_unless_lost<R>(
    conn: deadpool::managed::Object<Manager>,
    outcome: Result<R, DbError>,
) -> Result<R, DbError> {
    if let Err(e) = &outcome
        && is_lost(e)
    {
        drop(deadpool::managed::Object::take(conn));
    }
    outcome
}

/// Appends audit events (inside the caller's transaction), chained to their tenants'
/// heads.
///
/// Lock order: every caller does this after its other writes, so the head row is the
/// last lock of its transaction, held only until the commit that follows, and no cycle
/// can form with the rows the caller locked before. A batch of several tenants (the
/// sweeper) takes their heads in tenant-id order, so two batches cannot deadlock either.
async fn insert_audit(conn: &mut AsyncPgConnection, events: &[AuditEvent]) -> Result<(), DbError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut tenants: Vec<TenantId> = events.iter().map(|e| e.tenant_id).collect();
    tenants.sort_by_key(|t| t.as_uuid());
    tenants.dedup();
    let mut rows = Vec::with_capacity(events.len());
    for tenant in tenants {
        let mut head = lock_audit_head(conn, tenant).await?;
        for event in events.iter().filter(|e| e.tenant_id == tenant) {
            let link = ChainLink::after(&head, event);
            rows.push(AuditRow::chained(event, &link).map_err(DbError::Repo)?);
            head = link.head();
        }
        let seq = i64::try_from(head.seq)
            .map_err(|_| DbError::Repo(RepoError::Other("audit chain seq beyond i64".into())))?;
        diesel::update(audit_heads::table.find(tenant.as_uuid()))
            .set((
                audit_heads::seq.eq(seq),
                audit_heads::digest.eq(head.digest.as_bytes().to_vec()),
            ))
            .execute(conn)
            .await?;
    }
    // One event (the usual case) as a single-row insert: its SQL is the same every
    // time, so it is prepared once per connection; a batch's SQL depends on its length.
    if let [row] = &rows[..] {
        diesel::insert_into(audit_events::table)
            .values(row.clone())
            .execute(conn)
            .await?;
        return Ok(());
    }
    diesel::insert_into(audit_events::table)
        .values(rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks `tenant`'s chain head (`FOR UPDATE`, until the caller's transaction ends) and
/// reads it, making the row at the tenant's first chained event.
async fn lock_audit_head(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
) -> Result<ChainHead, DbError> {
    let locked = || {
        audit_heads::table
            .find(tenant.as_uuid())
            .select((audit_heads::seq, audit_heads::digest))
            .for_update()
    };
    let mut row: Option<(i64, Vec<u8>)> = locked().first(conn).await.optional()?;
    if row.is_none() {
        // Two first writers both insert; the second waits for the first to commit,
        // does nothing, and then locks the committed row like any later writer.
        diesel::insert_into(audit_heads::table)
            .values((
                audit_heads::tenant_id.eq(tenant.as_uuid()),
                audit_heads::seq.eq(0_i64),
                audit_heads::digest.eq(ChainDigest::GENESIS.as_bytes().to_vec()),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        row = Some(locked().first(conn).await?);
    }
    head_of(row)
}

/// A head row as the domain's [`ChainHead`].
fn head_of(row: Option<(i64, Vec<u8>)>) -> Result<ChainHead, DbError> {
    let Some((seq, digest)) = row else {
        return Ok(ChainHead::EMPTY);
    };
    let corrupt = || {
        DbError::Repo(crate::error::CorruptRow::repo(
            "audit_heads",
            seq,
            "seq or digest out of range",
        ))
    };
    Ok(ChainHead {
        seq: u64::try_from(seq).map_err(|_| corrupt())?,
        digest: ChainDigest::from_slice(&digest).ok_or_else(corrupt)?,
    })
}

/// Stores a token and its current secret (inside the caller's transaction).
async fn insert_token(
    conn: &mut AsyncPgConnection,
    token: &ApiToken,
    digest: &SecretDigest,
) -> Result<(), DbError> {
    diesel::insert_into(api_tokens::table)
        .values(TokenRow::from(token))
        .execute(conn)
        .await?;
    diesel::insert_into(api_token_secrets::table)
        .values(SecretRow::current(token.id, digest))
        .execute(conn)
        .await?;
    Ok(())
}

/// Key-share locks the environments a new token is scoped to and checks they are all
/// environments of `tenant`.
///
/// Together with the `FOR UPDATE` in `delete_environment` (which conflicts with this
/// lock) this closes the race between scoping a token and deleting its environment in
/// both orders: a delete that locked first commits before our lock is granted, so the
/// environment is gone and the token is refused with `NotFound`; a token that locked
/// first commits before the delete's lock is granted, and the delete then sees it and
/// refuses. `KEY SHARE` keeps renames (which do not touch the key) unblocked.
/// Checks, under a share lock on the owner's row, that the owner of `token` is enabled
/// and holds at least its role. A concurrent demotion, disabling or deletion updates
/// that row, so it waits for this transaction and then revokes the token with the
/// others; or it went first, and this check sees it.
async fn lock_owner_at_least(
    conn: &mut AsyncPgConnection,
    token: &ApiToken,
) -> Result<(), DbError> {
    let Some(owner) = token.owner_id else {
        return Ok(());
    };
    let found: Option<(String, bool)> = principals::table
        .filter(principals::tenant_id.eq(token.tenant_id.as_uuid()))
        .filter(principals::id.eq(owner.as_uuid()))
        .select((principals::role, principals::disabled))
        .for_share()
        .first(conn)
        .await
        .optional()?;
    let fits = found.is_some_and(|(role, disabled)| {
        !disabled && Role::parse(&role).is_ok_and(|role| role >= token.role)
    });
    if fits {
        Ok(())
    } else {
        Err(DbError::Repo(RepoError::Conflict {
            constraint: constraint::TOKEN_OWNER_CHANGED,
        }))
    }
}

async fn lock_scope(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    scope: &EnvScope,
) -> Result<(), DbError> {
    let ids: Vec<Uuid> = scope.ids().iter().map(EnvironmentId::as_uuid).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let locked = environments::table
        .filter(environments::tenant_id.eq(tenant.as_uuid()))
        .filter(environments::id.eq_any(&ids))
        .select(environments::id)
        // One lock order for every writer.
        .order(environments::id)
        .for_key_share()
        .load::<Uuid>(conn)
        .await?;
    // `EnvScope::Only` holds a set, so the ids are distinct.
    if locked.len() == ids.len() {
        Ok(())
    } else {
        Err(RepoError::NotFound.into())
    }
}

/// Reads a token of `tenant`.
async fn load_token(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: TokenId,
) -> Result<ApiToken, DbError> {
    let row = api_tokens::table
        .filter(api_tokens::tenant_id.eq(tenant.as_uuid()))
        .filter(api_tokens::id.eq(id.as_uuid()))
        .select(TokenRow::as_select())
        .first(conn)
        .await?;
    Ok(ApiToken::try_from(row)?)
}

/// Revokes, at `at`, every unrevoked token of `tenant` that `owner` owns.
async fn revoke_owned_tokens(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    owner: PrincipalId,
    at: Timestamp,
) -> Result<(), DbError> {
    diesel::update(
        api_tokens::table
            .filter(api_tokens::tenant_id.eq(tenant.as_uuid()))
            .filter(api_tokens::owner_id.eq(owner.as_uuid()))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(at))
    .cached()
    .execute(conn)
    .await?;
    Ok(())
}

/// Key-share locks the environment a new fleet lives in and checks it is one of
/// `tenant`'s; the same discipline as [`lock_scope`], against the same `FOR UPDATE` in
/// `delete_environment`: whichever locks first wins, and the other sees its outcome.
async fn lock_environment(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: EnvironmentId,
) -> Result<(), DbError> {
    environments::table
        .filter(environments::tenant_id.eq(tenant.as_uuid()))
        .filter(environments::id.eq(id.as_uuid()))
        .select(environments::id)
        .for_key_share()
        .first::<Uuid>(conn)
        .await?;
    Ok(())
}

/// Key-share locks a fleet of `tenant` (`NotFound` when there is none), so that it
/// cannot be deleted until the caller's transaction ends.
///
/// Lock order: every transaction that locks a fleet and rows under it (its enrollment
/// tokens) locks the fleet first. `delete_fleet` takes the fleet's row lock and then,
/// through the cascade, its tokens'; `enroll` holding a token's lock while waiting for
/// the fleet (the agent's foreign key check key-share locks it) would deadlock with it.
async fn lock_fleet(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: FleetId,
) -> Result<(), DbError> {
    fleets::table
        .filter(fleets::tenant_id.eq(tenant.as_uuid()))
        .filter(fleets::id.eq(id.as_uuid()))
        .select(fleets::id)
        .for_key_share()
        .first::<Uuid>(conn)
        .await?;
    Ok(())
}

/// `NotFound` unless `id` is a fleet of `tenant`: for listings under a fleet, where an
/// empty page must not hide that the fleet does not exist.
async fn ensure_fleet(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: FleetId,
) -> Result<(), DbError> {
    let found: bool = diesel::select(exists(
        fleets::table
            .filter(fleets::tenant_id.eq(tenant.as_uuid()))
            .filter(fleets::id.eq(id.as_uuid())),
    ))
    .get_result(conn)
    .await?;
    if found {
        Ok(())
    } else {
        Err(RepoError::NotFound.into())
    }
}

/// Reads an enrollment token of `fleet` of `tenant`.
async fn load_enrollment_token(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    fleet: FleetId,
    id: EnrollmentTokenId,
) -> Result<EnrollmentToken, DbError> {
    let row = enrollment_tokens::table
        .filter(enrollment_tokens::tenant_id.eq(tenant.as_uuid()))
        .filter(enrollment_tokens::fleet_id.eq(fleet.as_uuid()))
        .filter(enrollment_tokens::id.eq(id.as_uuid()))
        .select(EnrollmentTokenRow::as_select())
        .first(conn)
        .await?;
    Ok(EnrollmentToken::try_from(row)?)
}

/// Reads an agent of `tenant`.
async fn load_agent(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: AgentId,
) -> Result<Agent, DbError> {
    let row = agents::table
        .filter(agents::tenant_id.eq(tenant.as_uuid()))
        .filter(agents::id.eq(id.as_uuid()))
        .select(AgentRow::as_select())
        .first(conn)
        .await?;
    Ok(Agent::try_from(row)?)
}

/// `NotFound` unless exactly a row changed: tenant-scoped updates and deletes match no
/// row for another tenant's id, which must look like a missing one.
fn expect_one(changed: usize) -> Result<(), DbError> {
    if changed == 0 {
        Err(RepoError::NotFound.into())
    } else {
        Ok(())
    }
}

//! [`PgStore`]: the `Store` port over a deadpool pool of diesel-async connections.
//!
//! Every method borrows a pooled connection, runs its queries as diesel DSL (no SQL
//! strings except `SELECT 1` and the session settings), and converts rows to domain
//! values through the row types in `rows`. Writes run in one transaction together with
//! their audit events.
//!
//! Scans, share links and schedules live in the submodules `scans`, `share_links` and
//! `schedules` (with their lock order); the `Store` impl here delegates to them. The sweeper's deadline
//! arithmetic uses two SQL functions declared with `define_sql_function!`
//! (`make_interval`, `coalesce`), and `scans::status_is` is the one other SQL string:
//! it writes a fixed status into the claim and sweeper queries as a literal, so that
//! their partial indexes serve every plan (see there).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use diesel::dsl::exists;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, JoinOnDsl, NullableExpressionMethods,
    OptionalExtension, PgArrayExpressionMethods, QueryDsl, SelectableHelper,
};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::scoped_futures::{ScopedBoxFuture, ScopedFutureExt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::{
    Agent, AgentVersion, EnrollmentRefusal, EnrollmentToken, Fleet, FleetName,
};
use fleetpass_domain::identity::{EnvScope, Environment, EnvironmentName, Principal, Role, Tenant};
use fleetpass_domain::ids::{
    AgentId, EnrollmentTokenId, EnvironmentId, FleetId, PrincipalId, ScanId, ScheduleId,
    ShareLinkId, TenantId, TokenId,
};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::Scan;
use fleetpass_domain::schedule::Schedule;
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::{Artifact, ShareLink};
use fleetpass_domain::token::{ApiToken, TokenLookup};
use fleetpass_ports::store::{
    AuditFilter, AuditFor, EnrollBuilder, NewTenant, Persistence, PrincipalFilter, ScanArtifacts,
    ScanFilter, ScheduleRun, ShareAccess, StoredSigningKey, constraint,
};
use fleetpass_ports::{RepoError, Store};
use uuid::Uuid;

use crate::authcache::{self, AuthCache};
use crate::cached::CachedExt as _;
use crate::error::{CorruptRow, DbError, InconsistentWrite, pool_error};
use crate::pool::{Manager, Pool, is_lost};
use crate::rows::{
    AgentRow, AuditRow, EnrollmentTokenRow, EnvironmentRow, FleetRow, KIND_SERVICE_ACCOUNT,
    KIND_USER, NewAgentRow, NewEnrollmentTokenRow, PrincipalRow, SecretRow, SigningKeyRow,
    TenantRow, TokenRow, convert_all, rate_limit_column,
};
use crate::schema::{
    agents, api_token_secrets, api_tokens, audit_events, enrollment_tokens, environments, fleets,
    principals, signing_keys, tenants,
};

mod scans;
mod schedules;
mod share_links;
mod token_uses;

/// How long a request waits for a pooled connection, and how long opening a new one
/// may take. Short, so that a database that is down turns into a quick 503 instead of
/// requests piling up.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `ping` may take in all. A pooled connection whose peer vanished without a
/// reset would otherwise wait for TCP to give up, and readiness probes must not hang.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Session settings of every pooled connection. The statement timeout bounds what one
/// runaway query can hold; the application name makes our sessions findable in
/// `pg_stat_activity`.
const SESSION_SETUP: &str = "SET statement_timeout = '10s'; SET application_name = 'fleetpass'";

/// The PostgreSQL store.
///
/// Cheap to clone: clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    auth: Arc<AuthCache>,
    uses: Arc<token_uses::PendingUses>,
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
            auth: Arc::new(AuthCache::new()),
            uses: Arc::default(),
        })
    }

    /// Listens for other replicas' changes to tokens, owners and agents and keeps this
    /// store's authentication cache in step (see `authcache.rs`); runs until dropped.
    /// Without it, another replica's revocation reaches this one within 2 s (the
    /// cache's expiry); with it, within a notification's delivery.
    pub async fn watch_auth_changes(&self, url: &str) {
        authcache::listen(url, &self.auth).await;
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
        let mut conn = self.pool.get().await.map_err(pool_error)?;
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
        let mut conn = self.pool.get().await.map_err(pool_error)?;
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

/// Appends audit events (inside the caller's transaction).
async fn insert_audit(conn: &mut AsyncPgConnection, events: &[AuditEvent]) -> Result<(), DbError> {
    if events.is_empty() {
        return Ok(());
    }
    // One event (the usual case) as a single-row insert: its SQL is the same every
    // time, so it is prepared once per connection; a batch's SQL depends on its length.
    if let [event] = events {
        diesel::insert_into(audit_events::table)
            .values(AuditRow::from(event))
            .execute(conn)
            .await?;
        return Ok(());
    }
    let rows: Vec<AuditRow> = events.iter().map(AuditRow::from).collect();
    diesel::insert_into(audit_events::table)
        .values(rows)
        .execute(conn)
        .await?;
    Ok(())
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

#[async_trait]
impl Store for PgStore {
    fn persistence(&self) -> Persistence {
        Persistence::Postgres
    }

    async fn ping(&self) -> Result<(), RepoError> {
        let attempt = || {
            self.run(|c| {
                async move {
                    diesel::sql_query("SELECT 1").execute(c).await?;
                    Ok(())
                }
                .scope_boxed()
            })
        };
        let ping = async {
            // Connections that died in the pool (a database restart) each fail once and
            // leave it; readiness asks again rather than report them as an outage.
            let pooled = self.pool.status().size;
            let mut outcome = attempt().await;
            for _ in 0..pooled {
                if !matches!(outcome, Err(RepoError::Unavailable(_))) {
                    break;
                }
                outcome = attempt().await;
            }
            outcome
        };
        tokio::time::timeout(PING_TIMEOUT, ping)
            .await
            .map_err(|_| RepoError::Unavailable("the database did not answer in time".to_owned()))?
    }

    // ---- tenants ----

    async fn create_tenant(&self, new: &NewTenant) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                diesel::insert_into(tenants::table)
                    .values(TenantRow::from(&new.tenant))
                    .execute(c)
                    .await?;
                diesel::insert_into(environments::table)
                    .values(EnvironmentRow::from(&new.environment))
                    .execute(c)
                    .await?;
                diesel::insert_into(principals::table)
                    .values(PrincipalRow::from(&new.admin))
                    .execute(c)
                    .await?;
                insert_token(c, &new.token, &new.digest).await?;
                insert_audit(c, &new.audit).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Tenant, RepoError> {
        if let Some(cached) = self.auth.tenant(id) {
            return Ok(cached);
        }
        let generation = self.auth.generation();
        let tenant = self
            .run(|c| {
                async move {
                    let row = tenants::table
                        .find(id.as_uuid())
                        .select(TenantRow::as_select())
                        .first(c)
                        .await?;
                    Ok(Tenant::try_from(row)?)
                }
                .scope_boxed()
            })
            .await?;
        self.auth.keep_tenant(generation, tenant.clone());
        Ok(tenant)
    }

    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>, RepoError> {
        self.run(|c| {
            async move {
                let mut query = tenants::table
                    .select(TenantRow::as_select())
                    .order(tenants::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(cursor) = page.cursor {
                    query = query.filter(tenants::id.lt(cursor.last_id()));
                }
                let items: Vec<Tenant> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |t| t.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    // ---- environments ----

    async fn create_environment(
        &self,
        env: &Environment,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                diesel::insert_into(environments::table)
                    .values(EnvironmentRow::from(env))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn get_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
    ) -> Result<Environment, RepoError> {
        self.run(|c| {
            async move {
                let row = environments::table
                    .filter(environments::tenant_id.eq(tenant.as_uuid()))
                    .filter(environments::id.eq(id.as_uuid()))
                    .select(EnvironmentRow::as_select())
                    .first(c)
                    .await?;
                Ok(Environment::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn find_environment_by_name(
        &self,
        tenant: TenantId,
        name: &EnvironmentName,
    ) -> Result<Environment, RepoError> {
        self.run(|c| {
            async move {
                let row = environments::table
                    .filter(environments::tenant_id.eq(tenant.as_uuid()))
                    .filter(environments::name.eq(name.as_str()))
                    .select(EnvironmentRow::as_select())
                    .first(c)
                    .await?;
                Ok(Environment::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn list_environments(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<Environment>, RepoError> {
        self.run(|c| {
            async move {
                let mut query = environments::table
                    .filter(environments::tenant_id.eq(tenant.as_uuid()))
                    .select(EnvironmentRow::as_select())
                    .order(environments::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(cursor) = page.cursor {
                    query = query.filter(environments::id.lt(cursor.last_id()));
                }
                let items: Vec<Environment> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |e| e.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn missing_environments(
        &self,
        tenant: TenantId,
        ids: &[EnvironmentId],
    ) -> Result<Vec<EnvironmentId>, RepoError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Uuid> = ids.iter().map(EnvironmentId::as_uuid).collect();
        let found = self
            .run(|c| {
                async move {
                    let found = environments::table
                        .filter(environments::tenant_id.eq(tenant.as_uuid()))
                        .filter(environments::id.eq_any(wanted))
                        .select(environments::id)
                        .load::<Uuid>(c)
                        .await?;
                    Ok(found)
                }
                .scope_boxed()
            })
            .await?;
        Ok(ids
            .iter()
            .copied()
            .filter(|id| !found.contains(&id.as_uuid()))
            .collect())
    }

    async fn rename_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
        name: &EnvironmentName,
        audit: &AuditEvent,
    ) -> Result<Environment, RepoError> {
        self.transaction(|c| {
            async move {
                let row = diesel::update(
                    environments::table
                        .filter(environments::tenant_id.eq(tenant.as_uuid()))
                        .filter(environments::id.eq(id.as_uuid())),
                )
                .set(environments::name.eq(name.as_str()))
                .returning(EnvironmentRow::as_returning())
                .cached()
                .get_result(c)
                .await?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(Environment::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn delete_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                // The row lock makes a concurrent `create_token` scoped to this
                // environment (which key-share locks it, see `lock_scope`) either finish
                // first, so the check below sees its token, or wait until we are done.
                environments::table
                    .filter(environments::tenant_id.eq(tenant.as_uuid()))
                    .filter(environments::id.eq(id.as_uuid()))
                    .select(environments::id)
                    .for_update()
                    .first::<Uuid>(c)
                    .await?;
                // Likewise for a concurrent `create_fleet` (see `lock_environment`).
                let in_use: bool = diesel::select(
                    exists(
                        api_tokens::table
                            .filter(api_tokens::tenant_id.eq(tenant.as_uuid()))
                            .filter(api_tokens::revoked_at.is_null())
                            .filter(api_tokens::environment_ids.contains(vec![id.as_uuid()])),
                    )
                    .or(exists(
                        fleets::table
                            .filter(fleets::tenant_id.eq(tenant.as_uuid()))
                            .filter(fleets::environment_id.eq(id.as_uuid())),
                    )),
                )
                .get_result(c)
                .await?;
                let conflict = || RepoError::Conflict {
                    constraint: constraint::ENVIRONMENT_IN_USE,
                };
                if in_use {
                    return Err(conflict().into());
                }
                // The fleets' foreign key is the backstop should a fleet slip past the
                // check above: the caller must still hear "in use", never a 500.
                let deleted =
                    diesel::delete(environments::table.filter(environments::id.eq(id.as_uuid())))
                        .execute(c)
                        .await;
                match deleted {
                    Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
                        return Err(conflict().into());
                    }
                    other => other?,
                };
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    // ---- principals ----

    async fn create_principal(
        &self,
        principal: &Principal,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                diesel::insert_into(principals::table)
                    .values(PrincipalRow::from(principal))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn get_principal(
        &self,
        tenant: TenantId,
        id: PrincipalId,
    ) -> Result<Principal, RepoError> {
        self.run(|c| {
            async move {
                let row = principals::table
                    .filter(principals::tenant_id.eq(tenant.as_uuid()))
                    .filter(principals::id.eq(id.as_uuid()))
                    .select(PrincipalRow::as_select())
                    .first(c)
                    .await?;
                Ok(Principal::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn list_principals(
        &self,
        tenant: TenantId,
        filter: PrincipalFilter,
        page: PageRequest,
    ) -> Result<Page<Principal>, RepoError> {
        let kind = match filter {
            PrincipalFilter::Users => KIND_USER,
            PrincipalFilter::ServiceAccounts => KIND_SERVICE_ACCOUNT,
        };
        self.run(|c| {
            async move {
                let mut query = principals::table
                    .filter(principals::tenant_id.eq(tenant.as_uuid()))
                    .filter(principals::kind.eq(kind))
                    .select(PrincipalRow::as_select())
                    .order(principals::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(cursor) = page.cursor {
                    query = query.filter(principals::id.lt(cursor.last_id()));
                }
                let items: Vec<Principal> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |p| p.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn update_principal(
        &self,
        principal: &Principal,
        revoke_tokens_at: Option<Timestamp>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let row = PrincipalRow::from(principal);
        self.auth_transaction(|c| {
            async move {
                // The kind is part of the match: a user cannot be "updated" into a
                // service account, and the id of one is not found as the other.
                let changed = diesel::update(
                    principals::table
                        .filter(principals::tenant_id.eq(row.tenant_id))
                        .filter(principals::id.eq(row.id))
                        .filter(principals::kind.eq(&row.kind)),
                )
                .set((
                    principals::email.eq(&row.email),
                    principals::name.eq(&row.name),
                    principals::role.eq(&row.role),
                    principals::disabled.eq(row.disabled),
                ))
                .cached()
                .execute(c)
                .await?;
                expect_one(changed)?;
                if let Some(at) = revoke_tokens_at {
                    revoke_owned_tokens(c, principal.tenant_id, principal.id, at).await?;
                }
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn delete_principal(
        &self,
        tenant: TenantId,
        id: PrincipalId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.auth_transaction(|c| {
            async move {
                // Revoke first: the delete's ON DELETE SET NULL then clears the owner of
                // every token it owned, revoked just now or earlier. A principal of
                // another tenant matches nothing in either statement, and the NotFound
                // below rolls the (empty) revocation back anyway.
                revoke_owned_tokens(c, tenant, id, at).await?;
                let deleted = diesel::delete(
                    principals::table
                        .filter(principals::tenant_id.eq(tenant.as_uuid()))
                        .filter(principals::id.eq(id.as_uuid())),
                )
                .execute(c)
                .await?;
                expect_one(deleted)?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    // ---- API tokens ----

    /// Also `NotFound` when the token is scoped to an id that is not (or, after a
    /// concurrent delete, no longer) an environment of its tenant; see `lock_scope`.
    async fn create_token(
        &self,
        token: &ApiToken,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                lock_scope(c, token.tenant_id, &token.scope).await?;
                lock_owner_at_least(c, token).await?;
                insert_token(c, token, digest).await?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn find_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<TokenLookup>, RepoError> {
        if let Some(cached) = self.auth.token(digest) {
            return Ok(cached);
        }
        self.write_token_uses().await?;
        let generation = self.auth.generation();
        let found = self
            .run(|c| {
                async move {
                    let found = api_token_secrets::table
                        .inner_join(api_tokens::table)
                        .left_join(
                            principals::table
                                .on(principals::id.nullable().eq(api_tokens::owner_id)),
                        )
                        .filter(api_token_secrets::digest.eq(digest.as_bytes().as_slice()))
                        .select((
                            TokenRow::as_select(),
                            api_token_secrets::valid_until,
                            principals::disabled.nullable(),
                        ))
                        .first::<(TokenRow, Option<Timestamp>, Option<bool>)>(c)
                        .await
                        .optional()?;
                    let Some((row, secret_valid_until, owner_disabled)) = found else {
                        return Ok(None);
                    };
                    Ok(Some(TokenLookup {
                        token: ApiToken::try_from(row)?,
                        secret_valid_until,
                        // No owner row: the owner was deleted, which `authenticate` already
                        // refuses through `owner_id: None`.
                        owner_disabled: owner_disabled.unwrap_or(false),
                    }))
                }
                .scope_boxed()
            })
            .await?;
        self.auth.keep_token(digest, generation, found.clone());
        Ok(found)
    }

    async fn get_token(&self, tenant: TenantId, id: TokenId) -> Result<ApiToken, RepoError> {
        self.write_token_uses().await?;
        self.run(|c| async move { load_token(c, tenant, id).await }.scope_boxed())
            .await
    }

    async fn list_tokens(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<ApiToken>, RepoError> {
        self.write_token_uses().await?;
        let envs: Option<Vec<Uuid>> =
            environments.map(|ids| ids.iter().map(EnvironmentId::as_uuid).collect());
        self.run(|c| {
            async move {
                let mut query = api_tokens::table
                    .filter(api_tokens::tenant_id.eq(tenant.as_uuid()))
                    .select(TokenRow::as_select())
                    .order(api_tokens::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                // In SQL, so that pages stay full and cursors right.
                if let Some(envs) = &envs {
                    query = query
                        .filter(api_tokens::all_environments.eq(false))
                        .filter(api_tokens::environment_ids.is_contained_by(envs));
                }
                if let Some(cursor) = page.cursor {
                    query = query.filter(api_tokens::id.lt(cursor.last_id()));
                }
                let items: Vec<ApiToken> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |t| t.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn update_token(&self, token: &ApiToken, audit: &AuditEvent) -> Result<(), RepoError> {
        self.auth_transaction(|c| {
            async move {
                let changed = diesel::update(
                    api_tokens::table
                        .filter(api_tokens::tenant_id.eq(token.tenant_id.as_uuid()))
                        .filter(api_tokens::id.eq(token.id.as_uuid())),
                )
                .set((
                    api_tokens::name.eq(token.name.as_str()),
                    api_tokens::rate_limit_per_minute
                        .eq(token.rate_limit_per_minute.map(rate_limit_column)),
                ))
                .cached()
                .execute(c)
                .await?;
                expect_one(changed)?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn revoke_token(
        &self,
        tenant: TenantId,
        id: TokenId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ApiToken, RepoError> {
        self.auth_transaction(|c| {
            async move {
                // Only an unrevoked token changes, so the first `revoked_at` stays and a
                // repeat (or a concurrent second revocation) writes no audit event.
                let revoked = diesel::update(
                    api_tokens::table
                        .filter(api_tokens::tenant_id.eq(tenant.as_uuid()))
                        .filter(api_tokens::id.eq(id.as_uuid()))
                        .filter(api_tokens::revoked_at.is_null()),
                )
                .set(api_tokens::revoked_at.eq(at))
                .returning(TokenRow::as_returning())
                .cached()
                .get_result(c)
                .await
                .optional()?;
                match revoked {
                    Some(row) => {
                        insert_audit(c, std::slice::from_ref(audit)).await?;
                        Ok(ApiToken::try_from(row)?)
                    }
                    None => load_token(c, tenant, id).await,
                }
            }
            .scope_boxed()
        })
        .await
    }

    async fn rotate_token(
        &self,
        tenant: TenantId,
        id: TokenId,
        new_digest: &SecretDigest,
        new_hint: &str,
        old_valid_until: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ApiToken, RepoError> {
        self.auth_transaction(|c| {
            async move {
                // The tenant-scoped update both checks the token is this tenant's and
                // locks its row, so two rotations of one token run one after the other.
                let row = diesel::update(
                    api_tokens::table
                        .filter(api_tokens::tenant_id.eq(tenant.as_uuid()))
                        .filter(api_tokens::id.eq(id.as_uuid())),
                )
                .set(api_tokens::hint.eq(new_hint))
                .returning(TokenRow::as_returning())
                .cached()
                .get_result(c)
                .await?;
                // valid_until = LEAST(COALESCE(valid_until, t), t): secrets without an
                // end, or ending later, end at t; ones ending sooner keep their end.
                diesel::update(
                    api_token_secrets::table
                        .filter(api_token_secrets::token_id.eq(id.as_uuid()))
                        .filter(
                            api_token_secrets::valid_until
                                .is_null()
                                .or(api_token_secrets::valid_until.gt(old_valid_until)),
                        ),
                )
                .set(api_token_secrets::valid_until.eq(old_valid_until))
                .cached()
                .execute(c)
                .await?;
                // After the update above, so the new secret keeps no end.
                diesel::insert_into(api_token_secrets::table)
                    .values(SecretRow::current(id, new_digest))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(ApiToken::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn retire_token_secret(
        &self,
        digest: &SecretDigest,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.auth_transaction(|c| {
            async move {
                // Only a secret with an end (rotated out), and only to end it sooner:
                // the current secret, whose `valid_until` is NULL, is never matched.
                diesel::update(
                    api_token_secrets::table
                        .filter(api_token_secrets::digest.eq(digest.as_bytes().as_slice()))
                        .filter(api_token_secrets::valid_until.gt(at)),
                )
                .set(api_token_secrets::valid_until.eq(at))
                .cached()
                .execute(c)
                .await?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(())
            }
            .scope_boxed()
        })
        .await
    }

    async fn touch_token(&self, id: TokenId, at: Timestamp) -> Result<(), RepoError> {
        // Noted, written in a batch (`token_uses.rs`): the request does not wait for it.
        if self.auth.use_is_news(id, at) {
            self.uses.note(id, at);
        }
        Ok(())
    }

    // ---- fleets ----

    async fn create_fleet(
        &self,
        fleet: &Fleet,
        token: &EnrollmentToken,
        digest: &SecretDigest,
        audit: &[AuditEvent],
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                // The foreign keys only tie the token to *a* fleet of its tenant; a first
                // token of another fleet is a bug in the caller, not a user error.
                if token.fleet_id != fleet.id || token.tenant_id != fleet.tenant_id {
                    return Err(InconsistentWrite::repo(
                        "enrollment_tokens",
                        token.id,
                        "the first token of a new fleet belongs to another fleet",
                    )
                    .into());
                }
                lock_environment(c, fleet.tenant_id, fleet.environment_id).await?;
                diesel::insert_into(fleets::table)
                    .values(FleetRow::from(fleet))
                    .execute(c)
                    .await?;
                diesel::insert_into(enrollment_tokens::table)
                    .values(NewEnrollmentTokenRow::new(token, digest))
                    .execute(c)
                    .await?;
                insert_audit(c, audit).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn get_fleet(&self, tenant: TenantId, id: FleetId) -> Result<Fleet, RepoError> {
        self.run(|c| {
            async move {
                let row = fleets::table
                    .filter(fleets::tenant_id.eq(tenant.as_uuid()))
                    .filter(fleets::id.eq(id.as_uuid()))
                    .select(FleetRow::as_select())
                    .first(c)
                    .await?;
                Ok(Fleet::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn list_fleets(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<Fleet>, RepoError> {
        let envs: Option<Vec<Uuid>> =
            environments.map(|ids| ids.iter().map(EnvironmentId::as_uuid).collect());
        self.run(|c| {
            async move {
                let mut query = fleets::table
                    .filter(fleets::tenant_id.eq(tenant.as_uuid()))
                    .select(FleetRow::as_select())
                    .order(fleets::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                // In SQL, not after the fact: filtering a fetched page would shrink it
                // and break the overfetch that tells whether another page exists.
                if let Some(envs) = envs {
                    query = query.filter(fleets::environment_id.eq_any(envs));
                }
                if let Some(cursor) = page.cursor {
                    query = query.filter(fleets::id.lt(cursor.last_id()));
                }
                let items: Vec<Fleet> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |f| f.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn rename_fleet(
        &self,
        tenant: TenantId,
        id: FleetId,
        name: &FleetName,
        audit: &AuditEvent,
    ) -> Result<Fleet, RepoError> {
        self.transaction(|c| {
            async move {
                let row = diesel::update(
                    fleets::table
                        .filter(fleets::tenant_id.eq(tenant.as_uuid()))
                        .filter(fleets::id.eq(id.as_uuid())),
                )
                .set(fleets::name.eq(name.as_str()))
                .returning(FleetRow::as_returning())
                .cached()
                .get_result(c)
                .await?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(Fleet::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn delete_fleet(
        &self,
        tenant: TenantId,
        id: FleetId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.auth_transaction(|c| {
            async move {
                // The foreign keys cascade to the fleet's enrollment tokens, agents and
                // scans, and from the scans to their artifacts and share links. The
                // delete waits for enrollments, scan requests and share-link creations
                // in flight (they key-share lock the fleet or scan), and later ones find
                // no parent: nothing outlives its fleet. Claims, completions, sweeps and
                // share-link opens lock no parent, only the scan or link rows they
                // change, so the cascade may wait for them but they never wait for it
                // (see `scans`).
                let deleted = diesel::delete(
                    fleets::table
                        .filter(fleets::tenant_id.eq(tenant.as_uuid()))
                        .filter(fleets::id.eq(id.as_uuid())),
                )
                .execute(c)
                .await?;
                expect_one(deleted)?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    // ---- enrollment tokens ----

    async fn create_enrollment_token(
        &self,
        token: &EnrollmentToken,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                // Checks the fleet is the token's tenant's, and keeps a concurrent
                // `delete_fleet` from slipping in between (which would turn the insert
                // into a foreign key violation instead of NotFound).
                lock_fleet(c, token.tenant_id, token.fleet_id).await?;
                diesel::insert_into(enrollment_tokens::table)
                    .values(NewEnrollmentTokenRow::new(token, digest))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn list_enrollment_tokens(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        page: PageRequest,
    ) -> Result<Page<EnrollmentToken>, RepoError> {
        self.run(|c| {
            async move {
                ensure_fleet(c, tenant, fleet).await?;
                let mut query = enrollment_tokens::table
                    .filter(enrollment_tokens::tenant_id.eq(tenant.as_uuid()))
                    .filter(enrollment_tokens::fleet_id.eq(fleet.as_uuid()))
                    .select(EnrollmentTokenRow::as_select())
                    .order(enrollment_tokens::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(cursor) = page.cursor {
                    query = query.filter(enrollment_tokens::id.lt(cursor.last_id()));
                }
                let items: Vec<EnrollmentToken> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |t| t.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn revoke_enrollment_token(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        id: EnrollmentTokenId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<EnrollmentToken, RepoError> {
        self.transaction(|c| {
            async move {
                // As in `revoke_token`: only an unrevoked token changes, so a repeat
                // keeps the first `revoked_at` and writes no audit event.
                let revoked = diesel::update(
                    enrollment_tokens::table
                        .filter(enrollment_tokens::tenant_id.eq(tenant.as_uuid()))
                        .filter(enrollment_tokens::fleet_id.eq(fleet.as_uuid()))
                        .filter(enrollment_tokens::id.eq(id.as_uuid()))
                        .filter(enrollment_tokens::revoked_at.is_null()),
                )
                .set(enrollment_tokens::revoked_at.eq(at))
                .returning(EnrollmentTokenRow::as_returning())
                .cached()
                .get_result(c)
                .await
                .optional()?;
                match revoked {
                    Some(row) => {
                        insert_audit(c, std::slice::from_ref(audit)).await?;
                        Ok(EnrollmentToken::try_from(row)?)
                    }
                    None => load_enrollment_token(c, tenant, fleet, id).await,
                }
            }
            .scope_boxed()
        })
        .await
    }

    /// Race-free across processes: the token's row lock (`FOR UPDATE`) makes concurrent
    /// enrollments with one token take turns, each deciding on the `uses` the previous
    /// one committed. A refusal writes nothing (the transaction ends having only read).
    async fn enroll(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
        agent_secret: &SecretDigest,
        build: EnrollBuilder<'_>,
    ) -> Result<Result<Agent, EnrollmentRefusal>, RepoError> {
        let digest = digest.as_bytes().as_slice();
        self.transaction(|c| {
            async move {
                // The fleet is locked before the token (see `lock_fleet` for why), so
                // first learn which fleet that is, without a lock.
                let fleet = enrollment_tokens::table
                    .filter(enrollment_tokens::digest.eq(digest))
                    .select(enrollment_tokens::fleet_id)
                    .first::<Uuid>(c)
                    .await
                    .optional()?;
                let Some(fleet) = fleet else {
                    return Ok(Err(EnrollmentRefusal::Unknown));
                };
                // Gone since (deleted with its fleet): as unknown as never issued.
                let fleet_live = fleets::table
                    .find(fleet)
                    .select(fleets::id)
                    .for_key_share()
                    .first::<Uuid>(c)
                    .await
                    .optional()?;
                if fleet_live.is_none() {
                    return Ok(Err(EnrollmentRefusal::Unknown));
                }
                // Waits for any enrollment holding the token, then reads what it
                // committed (READ COMMITTED re-reads a locked row's newest version).
                let row = enrollment_tokens::table
                    .filter(enrollment_tokens::digest.eq(digest))
                    .select(EnrollmentTokenRow::as_select())
                    .for_update()
                    .first(c)
                    .await
                    .optional()?;
                let Some(row) = row else {
                    return Ok(Err(EnrollmentRefusal::Unknown));
                };
                let mut token = EnrollmentToken::try_from(row)?;
                if let Err(refusal) = token.check_usable(now) {
                    return Ok(Err(refusal));
                }
                diesel::update(enrollment_tokens::table.find(token.id.as_uuid()))
                    .set(enrollment_tokens::uses.eq(enrollment_tokens::uses + 1))
                    .cached()
                    .execute(c)
                    .await?;
                token.uses += 1;
                let (agent, audit) = build(&token);
                // The composite foreign key only ties the agent to *a* fleet of its
                // tenant; an agent built for another fleet than the token's is a bug.
                if agent.fleet_id != token.fleet_id || agent.tenant_id != token.tenant_id {
                    return Err(InconsistentWrite::repo(
                        "agents",
                        agent.id,
                        "built for another fleet than its enrollment token's",
                    )
                    .into());
                }
                diesel::insert_into(agents::table)
                    .values(NewAgentRow::new(&agent, agent_secret))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(&audit)).await?;
                Ok(Ok(agent))
            }
            .scope_boxed()
        })
        .await
    }

    // ---- agents ----

    async fn get_agent(&self, tenant: TenantId, id: AgentId) -> Result<Agent, RepoError> {
        self.run(|c| async move { load_agent(c, tenant, id).await }.scope_boxed())
            .await
    }

    async fn list_agents(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        page: PageRequest,
    ) -> Result<Page<Agent>, RepoError> {
        self.run(|c| {
            async move {
                ensure_fleet(c, tenant, fleet).await?;
                let mut query = agents::table
                    .filter(agents::tenant_id.eq(tenant.as_uuid()))
                    .filter(agents::fleet_id.eq(fleet.as_uuid()))
                    .select(AgentRow::as_select())
                    .order(agents::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(cursor) = page.cursor {
                    query = query.filter(agents::id.lt(cursor.last_id()));
                }
                let items: Vec<Agent> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |a| a.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn revoke_agent(
        &self,
        tenant: TenantId,
        id: AgentId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Agent, RepoError> {
        self.auth_transaction(|c| {
            async move {
                // Only an unrevoked agent changes; see `revoke_token`.
                let revoked = diesel::update(
                    agents::table
                        .filter(agents::tenant_id.eq(tenant.as_uuid()))
                        .filter(agents::id.eq(id.as_uuid()))
                        .filter(agents::revoked_at.is_null()),
                )
                .set(agents::revoked_at.eq(at))
                .returning(AgentRow::as_returning())
                .cached()
                .get_result(c)
                .await
                .optional()?;
                match revoked {
                    Some(row) => {
                        insert_audit(c, std::slice::from_ref(audit)).await?;
                        Ok(Agent::try_from(row)?)
                    }
                    None => load_agent(c, tenant, id).await,
                }
            }
            .scope_boxed()
        })
        .await
    }

    async fn find_agent_credentials(
        &self,
        id: AgentId,
    ) -> Result<Option<(Agent, SecretDigest)>, RepoError> {
        if let Some(cached) = self.auth.agent(id) {
            return Ok(Some(cached));
        }
        let generation = self.auth.generation();
        let found = self
            .run(|c| {
                async move {
                    let found = agents::table
                        .find(id.as_uuid())
                        .select((AgentRow::as_select(), agents::secret_digest))
                        .first::<(AgentRow, Vec<u8>)>(c)
                        .await
                        .optional()?;
                    let Some((row, digest)) = found else {
                        return Ok(None);
                    };
                    let digest = SecretDigest::from_slice(&digest).ok_or_else(|| {
                        CorruptRow::repo("agents", row.id, "secret digest is not 32 bytes")
                    })?;
                    Ok(Some((Agent::try_from(row)?, digest)))
                }
                .scope_boxed()
            })
            .await?;
        if let Some(found) = &found {
            self.auth.keep_agent(id, generation, found.clone());
        }
        Ok(found)
    }

    async fn record_heartbeat(
        &self,
        id: AgentId,
        at: Timestamp,
        version: Option<&AgentVersion>,
    ) -> Result<Agent, RepoError> {
        self.run(|c| {
            async move {
                let agent = agents::table.find(id.as_uuid());
                // Without a version the stored one stays: agents need not report it on
                // every beat.
                let row = match version {
                    Some(version) => {
                        diesel::update(agent)
                            .set((
                                agents::last_seen_at.eq(at),
                                agents::agent_version.eq(version.as_str()),
                            ))
                            .returning(AgentRow::as_returning())
                            .cached()
                            .get_result(c)
                            .await?
                    }
                    None => {
                        diesel::update(agent)
                            .set(agents::last_seen_at.eq(at))
                            .returning(AgentRow::as_returning())
                            .cached()
                            .get_result(c)
                            .await?
                    }
                };
                Ok(Agent::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    // ---- signing keys ----

    async fn list_signing_keys(&self) -> Result<Vec<StoredSigningKey>, RepoError> {
        self.run(|c| {
            async move {
                let rows = signing_keys::table
                    .select(SigningKeyRow::as_select())
                    // The kid breaks ties so the order is total.
                    .order((signing_keys::created_at.asc(), signing_keys::kid.asc()))
                    .load::<SigningKeyRow>(c)
                    .await?;
                Ok(rows.into_iter().map(StoredSigningKey::from).collect())
            }
            .scope_boxed()
        })
        .await
    }

    async fn add_signing_key(&self, key: &StoredSigningKey) -> Result<(), RepoError> {
        self.run(|c| {
            async move {
                // A taken kid violates `signing_keys_pkey`, which error.rs reports as
                // `Conflict { constraint: SIGNING_KEY_ID }`.
                diesel::insert_into(signing_keys::table)
                    .values(SigningKeyRow::from(key))
                    .execute(c)
                    .await?;
                Ok(())
            }
            .scope_boxed()
        })
        .await
    }

    async fn retire_signing_key(&self, kid: &str, at: Timestamp) -> Result<(), RepoError> {
        self.run(|c| {
            async move {
                // Only an unretired key changes, so the first `retired_at` stays.
                let retired = diesel::update(
                    signing_keys::table
                        .filter(signing_keys::kid.eq(kid))
                        .filter(signing_keys::retired_at.is_null()),
                )
                .set(signing_keys::retired_at.eq(at))
                .cached()
                .execute(c)
                .await?;
                if retired > 0 {
                    return Ok(());
                }
                let known: bool = diesel::select(exists(
                    signing_keys::table.filter(signing_keys::kid.eq(kid)),
                ))
                .get_result(c)
                .await?;
                if known {
                    Ok(())
                } else {
                    Err(RepoError::NotFound.into())
                }
            }
            .scope_boxed()
        })
        .await
    }

    // ---- scans ----

    async fn create_scan(&self, scan: &Scan, audit: &AuditEvent) -> Result<(), RepoError> {
        scans::create(self, scan, audit).await
    }

    async fn get_scan(&self, tenant: TenantId, id: ScanId) -> Result<Scan, RepoError> {
        scans::get(self, tenant, id).await
    }

    async fn list_scans(
        &self,
        tenant: TenantId,
        filter: &ScanFilter,
        page: PageRequest,
    ) -> Result<Page<Scan>, RepoError> {
        scans::list(self, tenant, filter, page).await
    }

    async fn claim_scan(
        &self,
        agent: &Agent,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<Option<Scan>, RepoError> {
        scans::claim(self, agent, now, audit).await
    }

    async fn complete_scan(
        &self,
        agent: AgentId,
        id: ScanId,
        at: Timestamp,
        artifacts: &ScanArtifacts,
        audit: &AuditEvent,
    ) -> Result<Scan, RepoError> {
        scans::complete(self, agent, id, at, artifacts, audit).await
    }

    async fn get_scan_artifacts(
        &self,
        tenant: TenantId,
        id: ScanId,
    ) -> Result<Option<ScanArtifacts>, RepoError> {
        scans::artifacts(self, tenant, id).await
    }

    async fn sweep_scans(
        &self,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<usize, RepoError> {
        scans::sweep(self, now, audit).await
    }

    // ---- share links ----

    async fn create_share_link(
        &self,
        link: &ShareLink,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        share_links::create(self, link, digest, audit).await
    }

    async fn get_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
    ) -> Result<ShareLink, RepoError> {
        share_links::get(self, tenant, id).await
    }

    async fn list_share_links(
        &self,
        tenant: TenantId,
        scan: ScanId,
        page: PageRequest,
    ) -> Result<Page<ShareLink>, RepoError> {
        share_links::list(self, tenant, scan, page).await
    }

    async fn revoke_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ShareLink, RepoError> {
        share_links::revoke(self, tenant, id, at, audit).await
    }

    async fn access_share_link(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
        artifact: Artifact,
        audit: AuditFor<'_, ShareLink>,
    ) -> Result<ShareAccess, RepoError> {
        share_links::access(self, digest, now, artifact, audit).await
    }

    // ---- schedules ----

    async fn create_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        schedules::create(self, schedule, audit).await
    }

    async fn get_schedule(&self, tenant: TenantId, id: ScheduleId) -> Result<Schedule, RepoError> {
        schedules::get(self, tenant, id).await
    }

    async fn list_schedules(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<Schedule>, RepoError> {
        schedules::list(self, tenant, environments, page).await
    }

    async fn update_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        schedules::update(self, schedule, audit).await
    }

    async fn delete_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        schedules::delete(self, tenant, id, audit).await
    }

    async fn run_due_schedules(
        &self,
        now: Timestamp,
        enqueue: ScheduleRun<'_>,
    ) -> Result<usize, RepoError> {
        schedules::run_due(self, now, enqueue).await
    }

    // ---- leaked secrets ----

    async fn find_enrollment_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<EnrollmentToken>, RepoError> {
        let digest = digest.as_bytes().as_slice();
        self.run(|c| {
            async move {
                let row = enrollment_tokens::table
                    .filter(enrollment_tokens::digest.eq(digest))
                    .select(EnrollmentTokenRow::as_select())
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(EnrollmentToken::try_from).transpose()?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn find_share_link_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<ShareLink>, RepoError> {
        share_links::find_by_digest(self, digest).await
    }

    async fn find_agent_by_secret_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<Agent>, RepoError> {
        let digest = digest.as_bytes().as_slice();
        self.run(|c| {
            async move {
                let row = agents::table
                    .filter(agents::secret_digest.eq(digest))
                    .select(AgentRow::as_select())
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(Agent::try_from).transpose()?)
            }
            .scope_boxed()
        })
        .await
    }

    // ---- audit log ----

    async fn list_audit_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, RepoError> {
        self.run(|c| {
            async move {
                let mut query = audit_events::table
                    .filter(audit_events::tenant_id.eq(tenant.as_uuid()))
                    .select(AuditRow::as_select())
                    .order(audit_events::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(action) = &filter.action {
                    query = query.filter(audit_events::action.eq(action));
                }
                if let Some(actor) = filter.actor_id {
                    query = query.filter(audit_events::actor_id.eq(actor));
                }
                if let Some(target) = filter.target_id {
                    query = query.filter(audit_events::target_id.eq(target));
                }
                if let Some(since) = filter.since {
                    query = query.filter(audit_events::at.ge(since));
                }
                if let Some(envs) = &filter.environments {
                    // A NULL (tenant-wide) scope is contained by nothing.
                    let envs: Vec<Uuid> = envs.iter().map(|id| id.as_uuid()).collect();
                    query = query.filter(audit_events::environment_ids.is_contained_by(envs));
                }
                if let Some(cursor) = page.cursor {
                    query = query.filter(audit_events::id.lt(cursor.last_id()));
                }
                let items: Vec<AuditEvent> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |e| e.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }
}

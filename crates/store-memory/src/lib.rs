//! In-memory Fleetpass store: the embedded default adapter of the [`Store`] port.
//!
//! All state sits behind one [`RwLock`] that every method takes for its whole, purely
//! synchronous body (writes exclusively; the reads of every request — authentication,
//! single reads — shared, so request threads do not queue behind each other). A method
//! therefore behaves like one database transaction: it sees a
//! consistent state, checks everything that could make it fail *before* it changes
//! anything, and then applies the change together with its audit event. Nothing of a
//! failed write (not even its audit event) is ever visible. `enroll` claims a token's
//! use, builds the agent and stores it under that one lock too, so concurrent
//! enrollments queue up and a token never enrolls more agents than it has uses. Claims
//! of scans, sweeps and share-link accesses (in `scans.rs`) work the same way: two
//! claims never get one scan, and a link never opens more often than it allows. So do
//! runs of due schedules (in `schedules.rs`): each due time enqueues one scan, however
//! many runs look at it at once.
//!
//! Data lives only as long as the process; `persistence()` says so (`/readyz` reports
//! `memory`).

mod idempotency;
mod ratelimit;
mod scans;
mod schedules;

pub use idempotency::MemoryIdempotency;
pub use ratelimit::MemoryRateLimiter;

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockWriteGuard};

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::{
    Agent, AgentVersion, EnrollmentRefusal, EnrollmentToken, Fleet, FleetName,
};
use fleetpass_domain::identity::{
    EnvScope, Environment, EnvironmentName, Principal, PrincipalKind, Tenant,
};
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
    AuditFilter, AuditFor, EnrollBuilder, NewTenant, Persistence, PrincipalFilter, RepoError,
    ScanArtifacts, ScanFilter, ScheduleRun, ShareAccess, Store, StoredSigningKey, constraint,
};
use uuid::Uuid;

/// The in-memory store. Cheap to create; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the state as one atomic step.
    fn with<R>(&self, f: impl FnOnce(&mut State) -> Result<R, RepoError>) -> Result<R, RepoError> {
        f(&mut self.lock())
    }

    /// Runs a read-only `f` on the state, beside other reads.
    fn read<R>(&self, f: impl FnOnce(&State) -> Result<R, RepoError>) -> Result<R, RepoError> {
        f(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn lock(&self) -> RwLockWriteGuard<'_, State> {
        // A poisoned lock means a panic inside a method body. Every method checks all of
        // its failure conditions before its first change, and the changes themselves are
        // plain map updates, so the state left behind is still consistent: recovering
        // keeps the service up instead of failing every later request.
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One stored secret digest of a token.
#[derive(Debug, Clone, Copy)]
struct SecretRow {
    token_id: TokenId,
    /// Set once the secret was rotated out: it works until then.
    valid_until: Option<Timestamp>,
}

/// Everything the store holds. Rows are keyed by their UUID v7 so that a `BTreeMap`
/// range read backwards is a newest-first keyset page.
#[derive(Debug, Default)]
struct State {
    tenants: BTreeMap<Uuid, Tenant>,
    environments: BTreeMap<Uuid, Environment>,
    principals: BTreeMap<Uuid, Principal>,
    tokens: BTreeMap<Uuid, ApiToken>,
    secrets: HashMap<[u8; 32], SecretRow>,
    fleets: BTreeMap<Uuid, Fleet>,
    enrollment_tokens: BTreeMap<Uuid, EnrollmentToken>,
    /// The digest of each enrollment token's secret, to the token.
    enrollment_secrets: HashMap<[u8; 32], EnrollmentTokenId>,
    agents: BTreeMap<Uuid, Agent>,
    /// Each agent's secret digest, by agent id.
    agent_secrets: HashMap<Uuid, SecretDigest>,
    /// Keyed by kid; not tenant-scoped.
    signing_keys: BTreeMap<String, StoredSigningKey>,
    scans: BTreeMap<Uuid, Scan>,
    /// The artifacts of each completed scan, by scan id.
    scan_artifacts: HashMap<Uuid, ScanArtifacts>,
    share_links: BTreeMap<Uuid, ShareLink>,
    /// The digest of each share link's token, to the link.
    share_secrets: HashMap<[u8; 32], ShareLinkId>,
    schedules: BTreeMap<Uuid, Schedule>,
    audit: BTreeMap<Uuid, AuditEvent>,
}

/// What a database would report as a primary-key violation: the caller reused an id,
/// which only a bug can do, so it is not a `Conflict` a client could resolve.
fn duplicate(what: &str) -> RepoError {
    RepoError::Other(format!("duplicate {what} id").into())
}

/// One newest-first page of the rows of `map` that pass `keep`.
/// Whether `scope` reaches only environments among `envs` (never for `All`): what an
/// env-scoped caller may see of tokens and audit events.
fn within(scope: &EnvScope, envs: &[EnvironmentId]) -> bool {
    match scope {
        EnvScope::All => false,
        EnvScope::Only(ids) => ids.iter().all(|id| envs.contains(id)),
    }
}

fn page_of<T: Clone>(
    map: &BTreeMap<Uuid, T>,
    page: PageRequest,
    keep: impl Fn(&T) -> bool,
) -> Page<T> {
    let upper = page
        .cursor
        .map_or(Bound::Unbounded, |c| Bound::Excluded(c.last_id()));
    let overfetch = page.limit.get() as usize + 1;
    let rows: Vec<(Uuid, T)> = map
        .range((Bound::Unbounded, upper))
        .rev()
        .filter(|(_, row)| keep(row))
        .take(overfetch)
        .map(|(id, row)| (*id, row.clone()))
        .collect();
    Page::from_overfetch(rows, page.limit, |(id, _)| *id).map(|(_, row)| row)
}

/// Whether two principals of one tenant would share a unique name, and under which rule.
fn clash(a: &Principal, b: &Principal) -> Option<fleetpass_ports::Conflict> {
    if a.tenant_id != b.tenant_id {
        return None;
    }
    match (&a.kind, &b.kind) {
        (PrincipalKind::User { email: x, .. }, PrincipalKind::User { email: y, .. }) if x == y => {
            Some(constraint::USER_EMAIL)
        }
        (PrincipalKind::ServiceAccount { name: x }, PrincipalKind::ServiceAccount { name: y })
            if x == y =>
        {
            Some(constraint::SERVICE_ACCOUNT_NAME)
        }
        _ => None,
    }
}

impl State {
    fn ensure_tenant(&self, id: TenantId) -> Result<(), RepoError> {
        if self.tenants.contains_key(&id.as_uuid()) {
            Ok(())
        } else {
            Err(RepoError::NotFound)
        }
    }

    fn environment(&self, tenant: TenantId, id: EnvironmentId) -> Result<&Environment, RepoError> {
        self.environments
            .get(&id.as_uuid())
            .filter(|e| e.tenant_id == tenant)
            .ok_or(RepoError::NotFound)
    }

    fn principal(&self, tenant: TenantId, id: PrincipalId) -> Result<&Principal, RepoError> {
        self.principals
            .get(&id.as_uuid())
            .filter(|p| p.tenant_id == tenant)
            .ok_or(RepoError::NotFound)
    }

    fn token(&self, tenant: TenantId, id: TokenId) -> Result<&ApiToken, RepoError> {
        self.tokens
            .get(&id.as_uuid())
            .filter(|t| t.tenant_id == tenant)
            .ok_or(RepoError::NotFound)
    }

    /// The token `id` of `tenant`, for a write whose checks have all passed.
    fn token_mut(&mut self, tenant: TenantId, id: TokenId) -> Result<&mut ApiToken, RepoError> {
        self.tokens
            .get_mut(&id.as_uuid())
            .filter(|t| t.tenant_id == tenant)
            .ok_or(RepoError::NotFound)
    }

    fn fleet(&self, tenant: TenantId, id: FleetId) -> Result<&Fleet, RepoError> {
        self.fleets
            .get(&id.as_uuid())
            .filter(|f| f.tenant_id == tenant)
            .ok_or(RepoError::NotFound)
    }

    /// The enrollment token `id` of `fleet` in `tenant`.
    fn enrollment_token(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        id: EnrollmentTokenId,
    ) -> Result<&EnrollmentToken, RepoError> {
        self.enrollment_tokens
            .get(&id.as_uuid())
            .filter(|t| t.tenant_id == tenant && t.fleet_id == fleet)
            .ok_or(RepoError::NotFound)
    }

    fn agent(&self, tenant: TenantId, id: AgentId) -> Result<&Agent, RepoError> {
        self.agents
            .get(&id.as_uuid())
            .filter(|a| a.tenant_id == tenant)
            .ok_or(RepoError::NotFound)
    }

    /// The checks a database's keys would make before storing `token` with `digest`:
    /// its fleet is one of its tenant's, and neither its id nor its digest is taken.
    fn ensure_new_enrollment_token(
        &self,
        token: &EnrollmentToken,
        digest: &SecretDigest,
    ) -> Result<(), RepoError> {
        self.fleet(token.tenant_id, token.fleet_id)?;
        if self.enrollment_tokens.contains_key(&token.id.as_uuid()) {
            return Err(duplicate("enrollment token"));
        }
        if self.enrollment_secrets.contains_key(digest.as_bytes()) {
            return Err(duplicate("enrollment token secret digest"));
        }
        Ok(())
    }

    fn insert_enrollment_token(&mut self, token: &EnrollmentToken, digest: &SecretDigest) {
        self.enrollment_tokens
            .insert(token.id.as_uuid(), token.clone());
        self.enrollment_secrets.insert(*digest.as_bytes(), token.id);
    }

    fn environment_name_taken(
        &self,
        tenant: TenantId,
        name: &EnvironmentName,
        except: EnvironmentId,
    ) -> bool {
        self.environments
            .values()
            .any(|e| e.tenant_id == tenant && e.id != except && &e.name == name)
    }

    fn principal_clash(&self, principal: &Principal) -> Result<(), RepoError> {
        match self
            .principals
            .values()
            .filter(|other| other.id != principal.id)
            .find_map(|other| clash(principal, other))
        {
            Some(constraint) => Err(RepoError::Conflict { constraint }),
            None => Ok(()),
        }
    }

    fn ensure_new_audit<'a>(
        &self,
        events: impl IntoIterator<Item = &'a AuditEvent>,
    ) -> Result<(), RepoError> {
        if events
            .into_iter()
            .any(|e| self.audit.contains_key(&e.id.as_uuid()))
        {
            Err(duplicate("audit event"))
        } else {
            Ok(())
        }
    }

    fn ensure_new_token(&self, token: &ApiToken, digest: &SecretDigest) -> Result<(), RepoError> {
        if self.tokens.contains_key(&token.id.as_uuid()) {
            return Err(duplicate("token"));
        }
        self.ensure_new_digest(digest)
    }

    fn ensure_new_digest(&self, digest: &SecretDigest) -> Result<(), RepoError> {
        if self.secrets.contains_key(digest.as_bytes()) {
            Err(duplicate("secret digest"))
        } else {
            Ok(())
        }
    }

    fn record(&mut self, event: &AuditEvent) {
        self.audit.insert(event.id.as_uuid(), event.clone());
    }

    fn insert_token(&mut self, token: &ApiToken, digest: &SecretDigest) {
        self.tokens.insert(token.id.as_uuid(), token.clone());
        self.secrets.insert(
            *digest.as_bytes(),
            SecretRow {
                token_id: token.id,
                valid_until: None,
            },
        );
    }

    /// Revokes, at `at`, every token of `owner` that is not revoked yet; a token revoked
    /// earlier keeps its first revocation time.
    fn revoke_tokens_of(&mut self, owner: PrincipalId, at: Timestamp) {
        for token in self
            .tokens
            .values_mut()
            .filter(|t| t.owner_id == Some(owner))
        {
            token.revoked_at.get_or_insert(at);
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn persistence(&self) -> Persistence {
        Persistence::Memory
    }

    async fn ping(&self) -> Result<(), RepoError> {
        Ok(())
    }

    // ---- tenants ----

    async fn create_tenant(&self, new: &NewTenant) -> Result<(), RepoError> {
        self.with(|s| {
            if s.tenants.values().any(|t| t.name == new.tenant.name) {
                return Err(RepoError::Conflict {
                    constraint: constraint::TENANT_NAME,
                });
            }
            if s.tenants.contains_key(&new.tenant.id.as_uuid()) {
                return Err(duplicate("tenant"));
            }
            if s.environments.contains_key(&new.environment.id.as_uuid()) {
                return Err(duplicate("environment"));
            }
            if s.principals.contains_key(&new.admin.id.as_uuid()) {
                return Err(duplicate("principal"));
            }
            s.ensure_new_token(&new.token, &new.digest)?;
            s.ensure_new_audit(&new.audit)?;

            s.tenants
                .insert(new.tenant.id.as_uuid(), new.tenant.clone());
            s.environments
                .insert(new.environment.id.as_uuid(), new.environment.clone());
            s.principals
                .insert(new.admin.id.as_uuid(), new.admin.clone());
            s.insert_token(&new.token, &new.digest);
            for event in &new.audit {
                s.record(event);
            }
            Ok(())
        })
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Tenant, RepoError> {
        self.read(|s| {
            s.tenants
                .get(&id.as_uuid())
                .cloned()
                .ok_or(RepoError::NotFound)
        })
    }

    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>, RepoError> {
        self.read(|s| Ok(page_of(&s.tenants, page, |_| true)))
    }

    // ---- environments ----

    async fn create_environment(
        &self,
        env: &Environment,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.ensure_tenant(env.tenant_id)?;
            if s.environment_name_taken(env.tenant_id, &env.name, env.id) {
                return Err(RepoError::Conflict {
                    constraint: constraint::ENVIRONMENT_NAME,
                });
            }
            if s.environments.contains_key(&env.id.as_uuid()) {
                return Err(duplicate("environment"));
            }
            s.ensure_new_audit([audit])?;

            s.environments.insert(env.id.as_uuid(), env.clone());
            s.record(audit);
            Ok(())
        })
    }

    async fn get_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
    ) -> Result<Environment, RepoError> {
        self.read(|s| s.environment(tenant, id).cloned())
    }

    async fn find_environment_by_name(
        &self,
        tenant: TenantId,
        name: &EnvironmentName,
    ) -> Result<Environment, RepoError> {
        self.read(|s| {
            s.environments
                .values()
                .find(|e| e.tenant_id == tenant && &e.name == name)
                .cloned()
                .ok_or(RepoError::NotFound)
        })
    }

    async fn list_environments(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<Environment>, RepoError> {
        self.read(|s| Ok(page_of(&s.environments, page, |e| e.tenant_id == tenant)))
    }

    async fn missing_environments(
        &self,
        tenant: TenantId,
        ids: &[EnvironmentId],
    ) -> Result<Vec<EnvironmentId>, RepoError> {
        self.read(|s| {
            Ok(ids
                .iter()
                .copied()
                .filter(|id| s.environment(tenant, *id).is_err())
                .collect())
        })
    }

    async fn rename_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
        name: &EnvironmentName,
        audit: &AuditEvent,
    ) -> Result<Environment, RepoError> {
        self.with(|s| {
            s.environment(tenant, id)?;
            if s.environment_name_taken(tenant, name, id) {
                return Err(RepoError::Conflict {
                    constraint: constraint::ENVIRONMENT_NAME,
                });
            }
            s.ensure_new_audit([audit])?;

            let env = s
                .environments
                .get_mut(&id.as_uuid())
                .ok_or(RepoError::NotFound)?;
            env.name = name.clone();
            let renamed = env.clone();
            s.record(audit);
            Ok(renamed)
        })
    }

    async fn delete_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.environment(tenant, id)?;
            let in_use = s.tokens.values().any(|t| {
                t.revoked_at.is_none()
                    && matches!(&t.scope, EnvScope::Only(ids) if ids.contains(&id))
            }) || s.fleets.values().any(|f| f.environment_id == id);
            if in_use {
                return Err(RepoError::Conflict {
                    constraint: constraint::ENVIRONMENT_IN_USE,
                });
            }
            s.ensure_new_audit([audit])?;

            s.environments.remove(&id.as_uuid());
            s.record(audit);
            Ok(())
        })
    }

    // ---- principals ----

    async fn create_principal(
        &self,
        principal: &Principal,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.ensure_tenant(principal.tenant_id)?;
            s.principal_clash(principal)?;
            if s.principals.contains_key(&principal.id.as_uuid()) {
                return Err(duplicate("principal"));
            }
            s.ensure_new_audit([audit])?;

            s.principals
                .insert(principal.id.as_uuid(), principal.clone());
            s.record(audit);
            Ok(())
        })
    }

    async fn get_principal(
        &self,
        tenant: TenantId,
        id: PrincipalId,
    ) -> Result<Principal, RepoError> {
        self.read(|s| s.principal(tenant, id).cloned())
    }

    async fn list_principals(
        &self,
        tenant: TenantId,
        filter: PrincipalFilter,
        page: PageRequest,
    ) -> Result<Page<Principal>, RepoError> {
        let want_users = filter == PrincipalFilter::Users;
        self.read(|s| {
            Ok(page_of(&s.principals, page, |p| {
                p.tenant_id == tenant && p.is_user() == want_users
            }))
        })
    }

    async fn update_principal(
        &self,
        principal: &Principal,
        revoke_tokens_at: Option<Timestamp>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            let stored = s.principal(principal.tenant_id, principal.id)?;
            // A user cannot become a service account or back: they are listed, named and
            // addressed differently, so an id of the other kind is simply not found.
            if stored.is_user() != principal.is_user() {
                return Err(RepoError::NotFound);
            }
            s.principal_clash(principal)?;
            s.ensure_new_audit([audit])?;

            let stored = s
                .principals
                .get_mut(&principal.id.as_uuid())
                .ok_or(RepoError::NotFound)?;
            stored.kind = principal.kind.clone();
            stored.role = principal.role;
            stored.disabled = principal.disabled;
            if let Some(at) = revoke_tokens_at {
                s.revoke_tokens_of(principal.id, at);
            }
            s.record(audit);
            Ok(())
        })
    }

    async fn delete_principal(
        &self,
        tenant: TenantId,
        id: PrincipalId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.principal(tenant, id)?;
            s.ensure_new_audit([audit])?;

            s.revoke_tokens_of(id, at);
            for token in s.tokens.values_mut().filter(|t| t.owner_id == Some(id)) {
                token.owner_id = None;
            }
            s.principals.remove(&id.as_uuid());
            s.record(audit);
            Ok(())
        })
    }

    // ---- API tokens ----

    async fn create_token(
        &self,
        token: &ApiToken,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.ensure_tenant(token.tenant_id)?;
            // The foreign keys a database would enforce: the owner and every scoped
            // environment must be of the token's own tenant.
            if let Some(owner) = token.owner_id {
                let owner = s.principal(token.tenant_id, owner)?;
                if owner.disabled || owner.role < token.role {
                    return Err(RepoError::Conflict {
                        constraint: constraint::TOKEN_OWNER_CHANGED,
                    });
                }
            }
            for env in token.scope.ids() {
                s.environment(token.tenant_id, env)?;
            }
            s.ensure_new_token(token, digest)?;
            s.ensure_new_audit([audit])?;

            s.insert_token(token, digest);
            s.record(audit);
            Ok(())
        })
    }

    async fn find_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<TokenLookup>, RepoError> {
        self.read(|s| {
            let lookup = s.secrets.get(digest.as_bytes()).and_then(|secret| {
                let token = s.tokens.get(&secret.token_id.as_uuid())?;
                let owner_disabled = token
                    .owner_id
                    .and_then(|owner| s.principals.get(&owner.as_uuid()))
                    .is_some_and(|owner| owner.disabled);
                Some(TokenLookup {
                    token: token.clone(),
                    secret_valid_until: secret.valid_until,
                    owner_disabled,
                })
            });
            Ok(lookup)
        })
    }

    async fn get_token(&self, tenant: TenantId, id: TokenId) -> Result<ApiToken, RepoError> {
        self.read(|s| s.token(tenant, id).cloned())
    }

    async fn list_tokens(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<ApiToken>, RepoError> {
        self.read(|s| {
            Ok(page_of(&s.tokens, page, |t| {
                t.tenant_id == tenant && environments.is_none_or(|envs| within(&t.scope, envs))
            }))
        })
    }

    async fn update_token(&self, token: &ApiToken, audit: &AuditEvent) -> Result<(), RepoError> {
        self.with(|s| {
            s.token(token.tenant_id, token.id)?;
            s.ensure_new_audit([audit])?;

            let stored = s.token_mut(token.tenant_id, token.id)?;
            stored.name = token.name.clone();
            stored.rate_limit_per_minute = token.rate_limit_per_minute;
            s.record(audit);
            Ok(())
        })
    }

    async fn revoke_token(
        &self,
        tenant: TenantId,
        id: TokenId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ApiToken, RepoError> {
        self.with(|s| {
            let stored = s.token(tenant, id)?;
            if stored.revoked_at.is_some() {
                return Ok(stored.clone());
            }
            s.ensure_new_audit([audit])?;

            let stored = s.token_mut(tenant, id)?;
            stored.revoked_at = Some(at);
            let revoked = stored.clone();
            s.record(audit);
            Ok(revoked)
        })
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
        self.with(|s| {
            s.token(tenant, id)?;
            s.ensure_new_digest(new_digest)?;
            s.ensure_new_audit([audit])?;

            for secret in s
                .secrets
                .values_mut()
                .filter(|secret| secret.token_id == id)
            {
                let until = secret
                    .valid_until
                    .map_or(old_valid_until, |until| until.min(old_valid_until));
                secret.valid_until = Some(until);
            }
            s.secrets.insert(
                *new_digest.as_bytes(),
                SecretRow {
                    token_id: id,
                    valid_until: None,
                },
            );
            let stored = s.token_mut(tenant, id)?;
            new_hint.clone_into(&mut stored.hint);
            let rotated = stored.clone();
            s.record(audit);
            Ok(rotated)
        })
    }

    async fn retire_token_secret(
        &self,
        digest: &SecretDigest,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.ensure_new_audit([audit])?;
            if let Some(secret) = s.secrets.get_mut(digest.as_bytes()) {
                secret.valid_until = secret.valid_until.map(|until| until.min(at));
            }
            s.record(audit);
            Ok(())
        })
    }

    async fn touch_token(&self, id: TokenId, at: Timestamp) -> Result<(), RepoError> {
        self.with(|s| {
            let token = s.tokens.get_mut(&id.as_uuid()).ok_or(RepoError::NotFound)?;
            // Never backwards: uses may be recorded out of order.
            token.last_used_at = token.last_used_at.max(Some(at));
            Ok(())
        })
    }

    // ---- fleets ----

    async fn create_fleet(
        &self,
        fleet: &Fleet,
        token: &EnrollmentToken,
        digest: &SecretDigest,
        audit: &[AuditEvent],
    ) -> Result<(), RepoError> {
        self.with(|s| {
            // The foreign key a database would enforce: the environment is the tenant's.
            s.environment(fleet.tenant_id, fleet.environment_id)?;
            if s.fleets.contains_key(&fleet.id.as_uuid()) {
                return Err(duplicate("fleet"));
            }
            // The first token must belong to the new fleet, in the fleet's tenant.
            if token.tenant_id != fleet.tenant_id || token.fleet_id != fleet.id {
                return Err(RepoError::NotFound);
            }
            if s.enrollment_tokens.contains_key(&token.id.as_uuid()) {
                return Err(duplicate("enrollment token"));
            }
            if s.enrollment_secrets.contains_key(digest.as_bytes()) {
                return Err(duplicate("enrollment token secret digest"));
            }
            s.ensure_new_audit(audit)?;

            s.fleets.insert(fleet.id.as_uuid(), fleet.clone());
            s.insert_enrollment_token(token, digest);
            for event in audit {
                s.record(event);
            }
            Ok(())
        })
    }

    async fn get_fleet(&self, tenant: TenantId, id: FleetId) -> Result<Fleet, RepoError> {
        self.read(|s| s.fleet(tenant, id).cloned())
    }

    async fn list_fleets(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<Fleet>, RepoError> {
        // Filtering happens inside the page walk, so every page but the last is full.
        self.read(|s| {
            Ok(page_of(&s.fleets, page, |f| {
                f.tenant_id == tenant
                    && environments.is_none_or(|envs| envs.contains(&f.environment_id))
            }))
        })
    }

    async fn rename_fleet(
        &self,
        tenant: TenantId,
        id: FleetId,
        name: &FleetName,
        audit: &AuditEvent,
    ) -> Result<Fleet, RepoError> {
        self.with(|s| {
            s.fleet(tenant, id)?;
            s.ensure_new_audit([audit])?;

            let fleet = s.fleets.get_mut(&id.as_uuid()).ok_or(RepoError::NotFound)?;
            fleet.name = name.clone();
            let renamed = fleet.clone();
            s.record(audit);
            Ok(renamed)
        })
    }

    async fn delete_fleet(
        &self,
        tenant: TenantId,
        id: FleetId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.fleet(tenant, id)?;
            s.ensure_new_audit([audit])?;

            s.fleets.remove(&id.as_uuid());
            s.enrollment_tokens.retain(|_, t| t.fleet_id != id);
            let tokens = &s.enrollment_tokens;
            s.enrollment_secrets
                .retain(|_, token| tokens.contains_key(&token.as_uuid()));
            s.agents.retain(|_, a| a.fleet_id != id);
            let agents = &s.agents;
            s.agent_secrets
                .retain(|agent, _| agents.contains_key(agent));
            s.remove_scans_of(id);
            s.remove_schedules_of(id);
            s.record(audit);
            Ok(())
        })
    }

    // ---- enrollment tokens ----

    async fn create_enrollment_token(
        &self,
        token: &EnrollmentToken,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.ensure_new_enrollment_token(token, digest)?;
            s.ensure_new_audit([audit])?;

            s.insert_enrollment_token(token, digest);
            s.record(audit);
            Ok(())
        })
    }

    async fn list_enrollment_tokens(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        page: PageRequest,
    ) -> Result<Page<EnrollmentToken>, RepoError> {
        self.read(|s| {
            s.fleet(tenant, fleet)?;
            Ok(page_of(&s.enrollment_tokens, page, |t| {
                t.tenant_id == tenant && t.fleet_id == fleet
            }))
        })
    }

    async fn revoke_enrollment_token(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        id: EnrollmentTokenId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<EnrollmentToken, RepoError> {
        self.with(|s| {
            let stored = s.enrollment_token(tenant, fleet, id)?;
            if stored.revoked_at.is_some() {
                return Ok(stored.clone());
            }
            s.ensure_new_audit([audit])?;

            let stored = s
                .enrollment_tokens
                .get_mut(&id.as_uuid())
                .ok_or(RepoError::NotFound)?;
            stored.revoked_at = Some(at);
            let revoked = stored.clone();
            s.record(audit);
            Ok(revoked)
        })
    }

    async fn enroll(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
        agent_secret: &SecretDigest,
        build: EnrollBuilder<'_>,
    ) -> Result<Result<Agent, EnrollmentRefusal>, RepoError> {
        // The one mutex makes check, claim and insert a single step: concurrent calls
        // queue up, and each sees the uses the ones before it counted.
        self.with(|s| {
            let Some(token) = s
                .enrollment_secrets
                .get(digest.as_bytes())
                .and_then(|id| s.enrollment_tokens.get(&id.as_uuid()))
            else {
                return Ok(Err(EnrollmentRefusal::Unknown));
            };
            if let Err(refusal) = token.check_usable(now) {
                return Ok(Err(refusal));
            }
            let mut claimed = token.clone();
            claimed.uses += 1;
            let (agent, audit) = build(&claimed);
            // The foreign key a database would enforce: the agent's fleet is its tenant's.
            s.fleet(agent.tenant_id, agent.fleet_id).map_err(|_| {
                RepoError::Other("the built agent's fleet is not one of its tenant's".into())
            })?;
            if s.agents.contains_key(&agent.id.as_uuid()) {
                return Err(duplicate("agent"));
            }
            if s.agent_secrets.values().any(|d| d == agent_secret) {
                return Err(duplicate("agent secret digest"));
            }
            s.ensure_new_audit([&audit])?;

            s.enrollment_tokens.insert(claimed.id.as_uuid(), claimed);
            s.agents.insert(agent.id.as_uuid(), agent.clone());
            s.agent_secrets.insert(agent.id.as_uuid(), *agent_secret);
            s.record(&audit);
            Ok(Ok(agent))
        })
    }

    // ---- agents ----

    async fn get_agent(&self, tenant: TenantId, id: AgentId) -> Result<Agent, RepoError> {
        self.read(|s| s.agent(tenant, id).cloned())
    }

    async fn list_agents(
        &self,
        tenant: TenantId,
        fleet: FleetId,
        page: PageRequest,
    ) -> Result<Page<Agent>, RepoError> {
        self.read(|s| {
            s.fleet(tenant, fleet)?;
            Ok(page_of(&s.agents, page, |a| {
                a.tenant_id == tenant && a.fleet_id == fleet
            }))
        })
    }

    async fn revoke_agent(
        &self,
        tenant: TenantId,
        id: AgentId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Agent, RepoError> {
        self.with(|s| {
            let stored = s.agent(tenant, id)?;
            if stored.revoked_at.is_some() {
                return Ok(stored.clone());
            }
            s.ensure_new_audit([audit])?;

            let stored = s.agents.get_mut(&id.as_uuid()).ok_or(RepoError::NotFound)?;
            stored.revoked_at = Some(at);
            let revoked = stored.clone();
            s.record(audit);
            Ok(revoked)
        })
    }

    async fn find_agent_credentials(
        &self,
        id: AgentId,
    ) -> Result<Option<(Agent, SecretDigest)>, RepoError> {
        self.read(|s| {
            let Some(agent) = s.agents.get(&id.as_uuid()) else {
                return Ok(None);
            };
            let digest = s
                .agent_secrets
                .get(&id.as_uuid())
                .ok_or_else(|| RepoError::Other("an agent without a secret".into()))?;
            Ok(Some((agent.clone(), *digest)))
        })
    }

    async fn record_heartbeat(
        &self,
        id: AgentId,
        at: Timestamp,
        version: Option<&AgentVersion>,
    ) -> Result<Agent, RepoError> {
        self.with(|s| {
            let agent = s.agents.get_mut(&id.as_uuid()).ok_or(RepoError::NotFound)?;
            agent.last_seen_at = Some(at);
            if let Some(version) = version {
                agent.agent_version = Some(version.clone());
            }
            Ok(agent.clone())
        })
    }

    // ---- signing keys ----

    async fn list_signing_keys(&self) -> Result<Vec<StoredSigningKey>, RepoError> {
        self.read(|s| {
            let mut keys: Vec<StoredSigningKey> = s.signing_keys.values().cloned().collect();
            keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
            Ok(keys)
        })
    }

    async fn add_signing_key(&self, key: &StoredSigningKey) -> Result<(), RepoError> {
        self.with(|s| {
            if s.signing_keys.contains_key(&key.kid) {
                return Err(RepoError::Conflict {
                    constraint: constraint::SIGNING_KEY_ID,
                });
            }
            s.signing_keys.insert(key.kid.clone(), key.clone());
            Ok(())
        })
    }

    async fn retire_signing_key(&self, kid: &str, at: Timestamp) -> Result<(), RepoError> {
        self.with(|s| {
            let key = s.signing_keys.get_mut(kid).ok_or(RepoError::NotFound)?;
            key.retired_at.get_or_insert(at);
            Ok(())
        })
    }

    // ---- scans ----

    async fn create_scan(&self, scan: &Scan, audit: &AuditEvent) -> Result<(), RepoError> {
        self.with(|s| s.create_scan(scan, audit))
    }

    async fn get_scan(&self, tenant: TenantId, id: ScanId) -> Result<Scan, RepoError> {
        self.read(|s| s.get_scan(tenant, id))
    }

    async fn list_scans(
        &self,
        tenant: TenantId,
        filter: &ScanFilter,
        page: PageRequest,
    ) -> Result<Page<Scan>, RepoError> {
        self.read(|s| Ok(s.list_scans(tenant, filter, page)))
    }

    async fn claim_scan(
        &self,
        agent: &Agent,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<Option<Scan>, RepoError> {
        // The one mutex makes find, check and claim a single step: concurrent claims
        // queue up, and each sees the scans the ones before it took.
        self.with(|s| s.claim_scan(agent, now, audit))
    }

    async fn complete_scan(
        &self,
        agent: AgentId,
        id: ScanId,
        at: Timestamp,
        artifacts: &ScanArtifacts,
        audit: &AuditEvent,
    ) -> Result<Scan, RepoError> {
        self.with(|s| s.complete_scan(agent, id, at, artifacts, audit))
    }

    async fn get_scan_artifacts(
        &self,
        tenant: TenantId,
        id: ScanId,
    ) -> Result<Option<ScanArtifacts>, RepoError> {
        self.read(|s| s.get_scan_artifacts(tenant, id))
    }

    async fn sweep_scans(
        &self,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<usize, RepoError> {
        self.with(|s| s.sweep_scans(now, audit))
    }

    // ---- share links ----

    async fn create_share_link(
        &self,
        link: &ShareLink,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| s.create_share_link(link, digest, audit))
    }

    async fn get_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
    ) -> Result<ShareLink, RepoError> {
        self.read(|s| s.get_share_link(tenant, id))
    }

    async fn list_share_links(
        &self,
        tenant: TenantId,
        scan: ScanId,
        page: PageRequest,
    ) -> Result<Page<ShareLink>, RepoError> {
        self.read(|s| s.list_share_links(tenant, scan, page))
    }

    async fn revoke_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ShareLink, RepoError> {
        self.with(|s| s.revoke_share_link(tenant, id, at, audit))
    }

    async fn access_share_link(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
        artifact: Artifact,
        audit: AuditFor<'_, ShareLink>,
    ) -> Result<ShareAccess, RepoError> {
        // Under the one mutex, check and count are a single step: concurrent opens
        // queue up, and each sees the accesses the ones before it counted.
        self.with(|s| s.access_share_link(digest, now, artifact, audit))
    }

    // ---- schedules ----

    async fn create_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| s.create_schedule(schedule, audit))
    }

    async fn get_schedule(&self, tenant: TenantId, id: ScheduleId) -> Result<Schedule, RepoError> {
        self.read(|s| s.get_schedule(tenant, id))
    }

    async fn list_schedules(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<Schedule>, RepoError> {
        self.read(|s| Ok(s.list_schedules(tenant, environments, page)))
    }

    async fn update_schedule(
        &self,
        schedule: &Schedule,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| s.update_schedule(schedule, audit))
    }

    async fn delete_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| s.delete_schedule(tenant, id, audit))
    }

    async fn run_due_schedules(
        &self,
        now: Timestamp,
        enqueue: ScheduleRun<'_>,
    ) -> Result<usize, RepoError> {
        // Under the one mutex, finding the due schedules and moving them on are a single
        // step: a concurrent run queues up and finds them no longer due.
        self.with(|s| s.run_due_schedules(now, enqueue))
    }

    // ---- leaked secrets ----

    async fn find_enrollment_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<EnrollmentToken>, RepoError> {
        self.read(|s| {
            Ok(s.enrollment_secrets
                .get(digest.as_bytes())
                .and_then(|id| s.enrollment_tokens.get(&id.as_uuid()))
                .cloned())
        })
    }

    async fn find_share_link_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<ShareLink>, RepoError> {
        self.read(|s| {
            Ok(s.share_secrets
                .get(digest.as_bytes())
                .and_then(|id| s.share_links.get(&id.as_uuid()))
                .cloned())
        })
    }

    async fn find_agent_by_secret_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<Agent>, RepoError> {
        // Agent secrets are keyed by agent id: a scan, as the lookup is a rare one.
        self.read(|s| {
            Ok(s.agent_secrets
                .iter()
                .find(|(_, stored)| *stored == digest)
                .and_then(|(id, _)| s.agents.get(id))
                .cloned())
        })
    }

    // ---- audit log ----

    async fn list_audit_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, RepoError> {
        let passes = |e: &AuditEvent| {
            e.tenant_id == tenant
                && filter
                    .action
                    .as_ref()
                    .is_none_or(|action| e.action.as_str() == action)
                && filter
                    .actor_id
                    .is_none_or(|actor| e.actor.id() == Some(actor))
                && filter
                    .target_id
                    .is_none_or(|target| e.target_id == Some(target))
                && filter.since.is_none_or(|since| e.at >= since)
                && filter
                    .environments
                    .as_deref()
                    .is_none_or(|envs| within(&e.scope, envs))
        };
        self.read(|s| Ok(page_of(&s.audit, page, passes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_memory_persistence() {
        assert_eq!(MemoryStore::new().persistence(), Persistence::Memory);
    }
}

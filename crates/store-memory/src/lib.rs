//! In-memory Fleetpass store: the embedded default adapter of the [`Store`](fleetpass_ports::Store) port.
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
//! This file holds the `State` and its shared checks; each per-area trait of the port
//! is implemented in its own module (`directory`, `tokens`, `fleet_agents`, `keys`,
//! `scans`, `schedules`, `audit`).
//!
//! Data lives only as long as the process; `persistence()` says so (`/readyz` reports
//! `memory`).

mod audit;
mod directory;
mod fleet_agents;
mod idempotency;
mod keys;
mod parts;
mod ratelimit;
mod scans;
mod schedules;
mod stats;
mod tokens;

pub use idempotency::MemoryIdempotency;
pub use ratelimit::MemoryRateLimiter;

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockWriteGuard};

use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::{Agent, EnrollmentToken, Fleet};
use fleetpass_domain::identity::{
    EnvScope, Environment, EnvironmentName, Principal, PrincipalKind, Tenant,
};
use fleetpass_domain::ids::{
    AgentId, EnrollmentTokenId, EnvironmentId, FleetId, PrincipalId, ShareLinkId, TenantId, TokenId,
};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::policy::TokenPolicy;
use fleetpass_domain::scan::Scan;
use fleetpass_domain::schedule::Schedule;
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::ShareLink;
use fleetpass_domain::token::ApiToken;
use fleetpass_ports::store::{RepoError, ScanArtifacts, StoredSigningKey, constraint};
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
    /// Each tenant's token policy, once one was set (absent: none).
    token_policies: HashMap<Uuid, TokenPolicy>,
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
    /// The parts of fan-out scans, by (scan, agent).
    parts: BTreeMap<(Uuid, Uuid), parts::PartRow>,
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

//! What the contract cases share: result checks whose panic names the broken obligation,
//! a walk over every page of a listing that checks the paging rules on the way, a
//! per-tenant [`Setup`] that makes rows through the store and tracks the audit log the
//! tenant must end up with, an [`AgentMaker`] that builds the agents of enrollments, and
//! an [`Auditor`] that builds the audit events of the changes a store decides on (claims,
//! sweeps, share-link accesses), and an [`Enqueuer`] that builds the scans due schedules
//! enqueue.

use std::fmt::Debug;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::chain::{ChainHead, ChainLink};
use fleetpass_domain::audit::{AuditAction, AuditActor, AuditEvent, actions};
use fleetpass_domain::fleet::{Agent, EnrollmentRefusal, EnrollmentToken, Fleet};
use fleetpass_domain::identity::{EnvScope, Environment, Principal, Role};
use fleetpass_domain::ids::{EnvironmentId, TenantId};
use fleetpass_domain::page::{Page, PageLimit, PageRequest};
use fleetpass_domain::scan::{Scan, ScanStatus};
use fleetpass_domain::secret::{PlainSecret, SecretDigest};
use fleetpass_domain::share::{Artifact, ShareLink};
use fleetpass_domain::token::ApiToken;
use fleetpass_ports::store::{
    AuditFilter, ChainRange, ChainedEvent, EnrollBuilder, NewTenant, RepoError, ScanArtifacts,
    ShareAccess,
};
use fleetpass_ports::{Conflict, Store};
use uuid::Uuid;

use crate::fixtures::Fixtures;

mod decided;

pub(crate) use decided::{Auditor, Enqueuer};

/// Checks on the result of a store call; each panics with `what` and the actual result.
pub(crate) trait Must<T> {
    /// The value of a call that must succeed.
    fn must(self, what: &str) -> T;
    /// Checks that the call failed with `NotFound`.
    fn must_be_not_found(self, what: &str);
    /// Checks that the call failed with `Conflict` on `constraint`.
    fn must_conflict(self, constraint: Conflict, what: &str);
}

impl<T: Debug> Must<T> for Result<T, RepoError> {
    fn must(self, what: &str) -> T {
        self.unwrap_or_else(|e| panic!("{what}: expected success, got {e:?}"))
    }

    fn must_be_not_found(self, what: &str) {
        match self {
            Err(RepoError::NotFound) => {}
            other => panic!("{what}: expected Err(NotFound), got {other:?}"),
        }
    }

    fn must_conflict(self, constraint: Conflict, what: &str) {
        match self {
            Err(RepoError::Conflict { constraint: got }) if got == constraint => {}
            other => panic!(
                "{what}: expected Err(Conflict {{ constraint: {constraint:?} }}), got {other:?}"
            ),
        }
    }
}

/// A page request of `limit` items, from the newest.
pub(crate) fn first_page(limit: u32) -> PageRequest {
    let limit =
        PageLimit::new(i64::from(limit)).unwrap_or_else(|e| panic!("page limit {limit}: {e}"));
    PageRequest {
        limit,
        cursor: None,
    }
}

/// Every page of a listing, fetched `limit` at a time, checking the paging obligations
/// on the way: no page is larger than `limit`, only the last page has no `next`, every
/// page that has one is full and continues after its last id, and ids fall strictly
/// across all pages (newest first, nothing repeated).
pub(crate) async fn pages<T, F, Fut>(
    what: &str,
    limit: u32,
    mut fetch: F,
    id_of: impl Fn(&T) -> Uuid,
) -> Vec<Vec<T>>
where
    T: Debug,
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, RepoError>>,
{
    // A store whose cursor never advances would otherwise loop forever.
    const MAX_PAGES: usize = 100_000;
    let mut request = first_page(limit);
    let mut out = Vec::new();
    let mut previous: Option<Uuid> = None;
    loop {
        let page = fetch(request).await.must(what);
        let number = out.len() + 1;
        assert!(
            page.items.len() <= limit as usize,
            "{what}: page {number} has {} items, limit {limit}",
            page.items.len()
        );
        for item in &page.items {
            let id = id_of(item);
            if let Some(prev) = previous {
                assert!(
                    id < prev,
                    "{what}: not strictly newest first: {id} comes after {prev}"
                );
            }
            previous = Some(id);
        }
        let full = page.items.len() == limit as usize;
        out.push(page.items);
        let Some(next) = page.next else { break };
        assert!(
            full,
            "{what}: page {number} has a next cursor but is not full"
        );
        assert_eq!(
            Some(next.last_id()),
            previous,
            "{what}: the next cursor must continue after the last item shown"
        );
        assert!(out.len() < MAX_PAGES, "{what}: the listing never ends");
        request.cursor = Some(next);
    }
    out
}

/// Every item of a listing, newest first, checked as [`pages`] does.
pub(crate) async fn all<T, F, Fut>(what: &str, fetch: F, id_of: impl Fn(&T) -> Uuid) -> Vec<T>
where
    T: Debug,
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, RepoError>>,
{
    pages(what, 200, fetch, id_of)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Checks a listing fetched two at a time (by [`pages`]) came as pages of 2, 2 and 1
/// holding exactly `made` (given oldest first), newest first.
pub(crate) fn expect_pages_of_five<T>(
    what: &str,
    got: &[Vec<T>],
    id_of: impl Fn(&T) -> Uuid,
    mut made: Vec<Uuid>,
) {
    let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![2, 2, 1], "{what}: page sizes");
    made.reverse();
    let ids: Vec<Uuid> = got.iter().flatten().map(id_of).collect();
    assert_eq!(ids, made, "{what}: every item once, newest first");
}

/// The audit events of `tenant` that pass `filter`, newest first.
pub(crate) async fn audit_events(
    store: &dyn Store,
    tenant: TenantId,
    filter: &AuditFilter,
) -> Vec<AuditEvent> {
    all(
        "list_audit_events",
        |p| store.list_audit_events(tenant, filter, p),
        |e| e.id.as_uuid(),
    )
    .await
}

/// One tenant of a case: made through the store, with the audit log it must have (the
/// events of its successful writes, oldest first).
pub(crate) struct Setup<'a> {
    store: &'a dyn Store,
    fx: &'a Fixtures,
    /// Everything the tenant was created with.
    pub(crate) new: NewTenant,
    expected_log: Vec<AuditEvent>,
}

impl<'a> Setup<'a> {
    /// Creates a fresh tenant, which must succeed.
    pub(crate) async fn tenant(store: &'a dyn Store, fx: &'a Fixtures) -> Self {
        let new = fx.new_tenant();
        store.create_tenant(&new).await.must("create_tenant");
        let expected_log = new.audit.clone();
        Self {
            store,
            fx,
            new,
            expected_log,
        }
    }

    /// The tenant's id.
    pub(crate) fn id(&self) -> TenantId {
        self.new.tenant.id
    }

    /// An audit event of this tenant about `target`.
    pub(crate) fn audit(&self, action: AuditAction, target: Uuid) -> AuditEvent {
        self.fx.audit(self.id(), action, Some(target))
    }

    /// How many events the log is expected to hold.
    pub(crate) fn logged_count(&self) -> usize {
        self.expected_log.len()
    }

    /// Expects `event` in the log: the write that carried it succeeded.
    pub(crate) fn logged(&mut self, event: &AuditEvent) {
        self.expected_log.push(event.clone());
    }

    /// Creates `env`, which must succeed.
    pub(crate) async fn add_environment(&mut self, env: Environment) -> Environment {
        let audit = self.audit(actions::ENVIRONMENT_CREATED, env.id.as_uuid());
        self.store
            .create_environment(&env, &audit)
            .await
            .must("create_environment");
        self.logged(&audit);
        env
    }

    /// Creates a fresh environment, which must succeed.
    pub(crate) async fn environment(&mut self) -> Environment {
        self.add_environment(self.fx.environment(self.id())).await
    }

    /// Creates `principal`, which must succeed.
    pub(crate) async fn add_principal(&mut self, principal: Principal) -> Principal {
        let action = if principal.is_user() {
            actions::USER_CREATED
        } else {
            actions::SERVICE_ACCOUNT_CREATED
        };
        let audit = self.audit(action, principal.id.as_uuid());
        self.store
            .create_principal(&principal, &audit)
            .await
            .must("create_principal");
        self.logged(&audit);
        principal
    }

    /// Creates a fresh user, which must succeed.
    pub(crate) async fn user(&mut self) -> Principal {
        self.add_principal(self.fx.user(self.id())).await
    }

    /// Creates a fresh service account, which must succeed.
    pub(crate) async fn service_account(&mut self) -> Principal {
        self.add_principal(self.fx.service_account(self.id())).await
    }

    /// Creates `token` with its secret, which must succeed.
    pub(crate) async fn add_token(
        &mut self,
        (token, secret): (ApiToken, PlainSecret),
    ) -> (ApiToken, PlainSecret) {
        let audit = self.audit(actions::TOKEN_CREATED, token.id.as_uuid());
        self.store
            .create_token(&token, &secret.digest(), &audit)
            .await
            .must("create_token");
        self.logged(&audit);
        (token, secret)
    }

    /// Creates a fresh all-environment token of `owner`, which must succeed.
    pub(crate) async fn token(&mut self, owner: &Principal, role: Role) -> (ApiToken, PlainSecret) {
        self.add_token(self.fx.token(owner, role, EnvScope::All))
            .await
    }

    /// Checks the tenant's whole audit log is exactly the expected events, newest
    /// first: each successful write recorded its event once and nothing else did.
    pub(crate) async fn check_log(&self, when: &str) {
        let got = audit_events(self.store, self.id(), &AuditFilter::default()).await;
        let want: Vec<AuditEvent> = self.expected_log.iter().rev().cloned().collect();
        if got != want {
            let actions =
                |events: &[AuditEvent]| events.iter().map(|e| e.action).collect::<Vec<_>>();
            panic!(
                "audit log {when}: expected {:?}, got {:?}\nexpected in full: {want:#?}\ngot in full: {got:#?}",
                actions(&want),
                actions(&got)
            );
        }
        let chain = audit_chain(self.store, self.id()).await;
        let mut chained: Vec<Uuid> = chain.iter().map(|c| c.event.id.as_uuid()).collect();
        let mut listed: Vec<Uuid> = got.iter().map(|e| e.id.as_uuid()).collect();
        chained.sort();
        listed.sort();
        assert_eq!(
            chained, listed,
            "audit chain {when}: every event of the log is chained, once"
        );
    }
}

/// The whole audit chain of `tenant`, checked link by link: seqs 1..=N with no gap,
/// each `prev` the digest before it, each digest that of its event, the last one the
/// head's.
pub(crate) async fn audit_chain(store: &dyn Store, tenant: TenantId) -> Vec<ChainedEvent> {
    let head = store.audit_head(tenant).await.must("audit_head");
    let mut chain = Vec::new();
    loop {
        let page = store
            .list_audit_chain(
                tenant,
                ChainRange {
                    after_seq: chain.last().map_or(0, |c: &ChainedEvent| c.link.seq),
                    upto_seq: head.seq,
                    since: None,
                    limit: 7,
                },
            )
            .await
            .must("list_audit_chain");
        if page.is_empty() {
            break;
        }
        chain.extend(page);
    }
    let mut before = ChainHead::EMPTY;
    for c in &chain {
        assert_eq!(
            c.link,
            ChainLink::after(&before, &c.event),
            "the chain's links follow one another from the genesis (seq {})",
            before.seq + 1
        );
        before = c.link.head();
    }
    assert_eq!(before, head, "the chain ends at the tenant's head");
    chain
}

/// What one call of [`AgentMaker::build`] made.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// The token the store passed in.
    pub(crate) token: EnrollmentToken,
    /// The agent built from it.
    pub(crate) agent: Agent,
    /// The agent's `agent.enrolled` event.
    pub(crate) audit: AuditEvent,
}

/// Builds the agents of enrollments at one instant, as the service would, and remembers
/// every build. A store may build and then roll back (a retried transaction, say), so a
/// build is not an enrollment: only the agent `enroll` returns is one, and
/// [`AgentMaker::built`] finds what was built for it.
pub(crate) struct AgentMaker<'a> {
    fx: &'a Fixtures,
    /// When the enrollments happen: the `now` passed to `enroll`.
    pub(crate) at: Timestamp,
    built: Mutex<Vec<Built>>,
}

impl<'a> AgentMaker<'a> {
    /// A maker of enrollments at `at`.
    pub(crate) fn new(fx: &'a Fixtures, at: Timestamp) -> Self {
        Self {
            fx,
            at,
            built: Mutex::new(Vec::new()),
        }
    }

    /// The agent an enrollment with `token` makes, and its audit event by that agent.
    pub(crate) fn build(&self, token: &EnrollmentToken) -> (Agent, AuditEvent) {
        let agent = self.fx.agent(token, self.at);
        let audit = self.fx.audit_by(
            token.tenant_id,
            AuditActor::Agent(agent.id.as_uuid()),
            actions::AGENT_ENROLLED,
            Some(agent.id.as_uuid()),
            self.at,
        );
        self.built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Built {
                token: token.clone(),
                agent: agent.clone(),
                audit: audit.clone(),
            });
        (agent, audit)
    }

    /// What was built for `agent`, which an `enroll` returned: it must be exactly the
    /// agent that was built.
    pub(crate) fn built(&self, agent: &Agent) -> Built {
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let found = built
            .iter()
            .find(|b| b.agent.id == agent.id)
            .unwrap_or_else(|| {
                panic!("enroll returned an agent its builder never built: {agent:?}")
            })
            .clone();
        assert_eq!(
            *agent, found.agent,
            "enroll must return the agent the builder built, as built"
        );
        found
    }

    /// Calls `enroll` with the enrollment secret `digest`, a fresh agent secret, at
    /// [`AgentMaker::at`]; the store call itself must not fail. Returns the outcome and
    /// the agent secret.
    pub(crate) async fn enroll(
        &self,
        store: &dyn Store,
        digest: &SecretDigest,
    ) -> (Result<Agent, EnrollmentRefusal>, PlainSecret) {
        let secret = self.fx.agent_secret();
        let build: EnrollBuilder<'_> = &|token| self.build(token);
        let outcome = store
            .enroll(digest, self.at, &secret.digest(), build)
            .await
            .must("enroll");
        (outcome, secret)
    }

    /// Calls `enroll`, which must refuse, and returns why.
    pub(crate) async fn refused(
        &self,
        store: &dyn Store,
        digest: &SecretDigest,
    ) -> EnrollmentRefusal {
        match self.enroll(store, digest).await.0 {
            Err(refusal) => refusal,
            Ok(agent) => panic!("enroll: expected a refusal, got the agent {agent:?}"),
        }
    }
}

impl Setup<'_> {
    /// Creates a fleet in `environment` with a fresh one-time first token, which must
    /// succeed. Returns the fleet, that token and its secret.
    pub(crate) async fn fleet_in(
        &mut self,
        environment: EnvironmentId,
    ) -> (Fleet, EnrollmentToken, PlainSecret) {
        let fleet = self.fx.fleet(self.id(), environment);
        let (token, secret) = self.fx.enrollment_token(&fleet);
        let audit = [
            self.audit(actions::FLEET_CREATED, fleet.id.as_uuid()),
            self.audit(actions::ENROLLMENT_TOKEN_ISSUED, token.id.as_uuid()),
        ];
        self.store
            .create_fleet(&fleet, &token, &secret.digest(), &audit)
            .await
            .must("create_fleet");
        for event in &audit {
            self.logged(event);
        }
        (fleet, token, secret)
    }

    /// Creates a fleet in the tenant's `production` environment, as [`Setup::fleet_in`].
    pub(crate) async fn fleet(&mut self) -> (Fleet, EnrollmentToken, PlainSecret) {
        self.fleet_in(self.new.environment.id).await
    }

    /// Issues `token` with its secret, which must succeed.
    pub(crate) async fn add_enrollment_token(
        &mut self,
        (token, secret): (EnrollmentToken, PlainSecret),
    ) -> (EnrollmentToken, PlainSecret) {
        let audit = self.audit(actions::ENROLLMENT_TOKEN_ISSUED, token.id.as_uuid());
        self.store
            .create_enrollment_token(&token, &secret.digest(), &audit)
            .await
            .must("create_enrollment_token");
        self.logged(&audit);
        (token, secret)
    }

    /// Enrolls with the enrollment secret `digest` through `maker`, which must succeed,
    /// and expects the agent's event in the log. Returns the agent, the token as the
    /// builder saw it, and the agent's secret.
    pub(crate) async fn enroll(
        &mut self,
        maker: &AgentMaker<'_>,
        digest: &SecretDigest,
    ) -> (Agent, EnrollmentToken, PlainSecret) {
        let (outcome, secret) = maker.enroll(self.store, digest).await;
        let agent = outcome.unwrap_or_else(|refusal| {
            panic!("enroll: expected an agent, got the refusal {refusal:?}")
        });
        let built = maker.built(&agent);
        self.logged(&built.audit);
        (agent, built.token, secret)
    }
}

impl Setup<'_> {
    /// Expects `events`, written together or concurrently, in the log: they are
    /// recorded in id order, as the log lists them.
    pub(crate) fn logged_all(&mut self, events: impl IntoIterator<Item = AuditEvent>) {
        let mut events: Vec<AuditEvent> = events.into_iter().collect();
        events.sort_by_key(|e| e.id);
        for event in &events {
            self.logged(event);
        }
    }

    /// Enrolls a fresh agent into `fleet` with a new one-time enrollment token, which
    /// must succeed.
    pub(crate) async fn agent(&mut self, fleet: &Fleet) -> Agent {
        let fx = self.fx;
        let (_, secret) = self.add_enrollment_token(fx.enrollment_token(fleet)).await;
        let maker = AgentMaker::new(fx, fx.now());
        self.enroll(&maker, &secret.digest()).await.0
    }

    /// Stores `scan`, which must succeed, and expects its `scan.requested` event.
    pub(crate) async fn add_scan(&mut self, scan: Scan) -> Scan {
        let audit = self.audit(actions::SCAN_REQUESTED, scan.id.as_uuid());
        self.store
            .create_scan(&scan, &fleetpass_domain::scan::ScanTarget::Any, &audit)
            .await
            .must("create_scan");
        self.logged(&audit);
        scan
    }

    /// Stores a fresh scan of `fleet` without constraints, as [`Setup::add_scan`].
    pub(crate) async fn scan(&mut self, fleet: &Fleet) -> Scan {
        self.add_scan(self.fx.plain_scan(fleet)).await
    }

    /// Claims through `claims` for `agent` at `now`, expecting the claim's event when
    /// there is one. Returns what `claim_scan` did.
    pub(crate) async fn claim(
        &mut self,
        claims: &Auditor<'_, Scan>,
        agent: &Agent,
        now: Timestamp,
    ) -> Option<Scan> {
        let claimed = claims.claim(self.store, agent, now).await;
        if let Some(scan) = &claimed {
            self.logged(&claims.event_for(scan));
        }
        claimed
    }

    /// Claims through `claims` for `agent` at `now`, which must claim `scan` and return
    /// it running, claimed by the agent at `now`; returns that.
    pub(crate) async fn claim_exactly(
        &mut self,
        claims: &Auditor<'_, Scan>,
        agent: &Agent,
        scan: &Scan,
        now: Timestamp,
    ) -> Scan {
        let want = Scan {
            status: ScanStatus::Running,
            claimed_by: Some(agent.id),
            claimed_at: Some(now),
            ..scan.clone()
        };
        let got = self.claim(claims, agent, now).await;
        assert_eq!(
            got.as_ref(),
            Some(&want),
            "claim_scan at {now} must claim {} and return it running, claimed by the agent then",
            scan.id
        );
        want
    }

    /// Completes `scan` (claimed by `agent`) at `at` with `artifacts`, which must
    /// succeed, and expects its `scan.completed` event by the agent. Returns the scan.
    pub(crate) async fn complete(
        &mut self,
        agent: &Agent,
        scan: &Scan,
        at: Timestamp,
        artifacts: &ScanArtifacts,
    ) -> Scan {
        let audit = self.fx.audit_by(
            self.id(),
            AuditActor::Agent(agent.id.as_uuid()),
            actions::SCAN_COMPLETED,
            Some(scan.id.as_uuid()),
            at,
        );
        let completed = self
            .store
            .complete_scan(agent.id, scan.id, at, artifacts, &audit)
            .await
            .must("complete_scan");
        self.logged(&audit);
        completed
    }

    /// Stores `link` with its token's digest, which must succeed, and expects its
    /// `share_link.created` event.
    pub(crate) async fn add_share_link(
        &mut self,
        (link, secret): (ShareLink, PlainSecret),
    ) -> (ShareLink, PlainSecret) {
        let audit = self.audit(actions::SHARE_LINK_CREATED, link.id.as_uuid());
        self.store
            .create_share_link(&link, &secret.digest(), &audit)
            .await
            .must("create_share_link");
        self.logged(&audit);
        (link, secret)
    }

    /// Opens the link with the token `digest` through `accesses` at `now` for
    /// `artifact`, expecting the access's event when it opens. Returns what
    /// `access_share_link` did.
    pub(crate) async fn access(
        &mut self,
        accesses: &Auditor<'_, ShareLink>,
        digest: &SecretDigest,
        now: Timestamp,
        artifact: Artifact,
    ) -> ShareAccess {
        let outcome = accesses.access(self.store, digest, now, artifact).await;
        if let ShareAccess::Opened(link, _) = &outcome {
            self.logged(&accesses.event_for(link));
        }
        outcome
    }
}

/// What one schedule run enqueued: the scan built from the schedule and its
/// `scan.requested` event.
type Enqueued = (Scan, AuditEvent);

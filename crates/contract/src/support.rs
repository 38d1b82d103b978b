//! What the contract cases share: result checks whose panic names the broken obligation,
//! a walk over every page of a listing that checks the paging rules on the way, and a
//! per-tenant [`Setup`] that makes rows through the store and tracks the audit log the
//! tenant must end up with.

use std::fmt::Debug;
use std::future::Future;

use fleetpass_domain::audit::{AuditEvent, actions};
use fleetpass_domain::identity::{EnvScope, Environment, Principal, Role};
use fleetpass_domain::ids::TenantId;
use fleetpass_domain::page::{Page, PageLimit, PageRequest};
use fleetpass_domain::secret::PlainSecret;
use fleetpass_domain::token::ApiToken;
use fleetpass_ports::Store;
use fleetpass_ports::store::{AuditFilter, NewTenant, RepoError};
use uuid::Uuid;

use crate::fixtures::Fixtures;

/// Checks on the result of a store call; each panics with `what` and the actual result.
pub(crate) trait Must<T> {
    /// The value of a call that must succeed.
    fn must(self, what: &str) -> T;
    /// Checks that the call failed with `NotFound`.
    fn must_be_not_found(self, what: &str);
    /// Checks that the call failed with `Conflict` on `constraint`.
    fn must_conflict(self, constraint: &str, what: &str);
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

    fn must_conflict(self, constraint: &str, what: &str) {
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
    pub(crate) fn audit(&self, action: &str, target: Uuid) -> AuditEvent {
        self.fx.audit(self.id(), action, Some(target))
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
                |events: &[AuditEvent]| events.iter().map(|e| e.action.clone()).collect::<Vec<_>>();
            panic!(
                "audit log {when}: expected {:?}, got {:?}\nexpected in full: {want:#?}\ngot in full: {got:#?}",
                actions(&want),
                actions(&got)
            );
        }
    }
}

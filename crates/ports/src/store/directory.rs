//! The [`TenantStore`] part of the store port: tenants and their directory: environments,
//! users and service accounts; and the backend's health.
//!
//! The obligations in the [`store`](super) module docs hold for every method here.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::identity::{Environment, EnvironmentName, Principal, Tenant};
use fleetpass_domain::ids::{EnvironmentId, PrincipalId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::policy::TokenPolicy;

use super::{NewTenant, Persistence, PrincipalFilter, RepoError};

/// The part of [`Store`](super::Store) for tenants and their directory.
#[async_trait]
pub trait TenantStore: Send + Sync + 'static {
    /// How this store persists data.
    fn persistence(&self) -> Persistence;

    /// Checks the backend answers.
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), RepoError>;

    // ---- tenants ----

    /// Creates a tenant with its first environment, admin principal and admin token.
    ///
    /// # Errors
    /// MUST return `Conflict { constraint: TENANT_NAME }` when the name is taken.
    async fn create_tenant(&self, new: &NewTenant) -> Result<(), RepoError>;

    /// Reads a tenant. `NotFound` when there is none.
    async fn get_tenant(&self, id: TenantId) -> Result<Tenant, RepoError>;

    /// Lists tenants, newest first.
    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>, RepoError>;

    /// Reads a tenant's token policy: [`TokenPolicy::NONE`] until one is set.
    /// `NotFound` when there is no such tenant.
    ///
    /// `GET /api/me` reads it on every request, so a store MAY answer from a cache; a
    /// change through [`set_token_policy`](Self::set_token_policy) MUST show in this
    /// store's next read, and in every other replica's within 5 s.
    async fn get_token_policy(&self, tenant: TenantId) -> Result<TokenPolicy, RepoError>;

    /// Replaces a tenant's token policy with `policy` and writes `audit`, both or
    /// neither. `NotFound` (and nothing written) when there is no such tenant.
    async fn set_token_policy(
        &self,
        tenant: TenantId,
        policy: &TokenPolicy,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    // ---- environments ----

    /// Creates an environment.
    ///
    /// # Errors
    /// MUST return `Conflict { constraint: ENVIRONMENT_NAME }` when the tenant already
    /// has one of that name.
    async fn create_environment(
        &self,
        env: &Environment,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Reads an environment of `tenant`.
    async fn get_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
    ) -> Result<Environment, RepoError>;

    /// Reads an environment of `tenant` by name.
    async fn find_environment_by_name(
        &self,
        tenant: TenantId,
        name: &EnvironmentName,
    ) -> Result<Environment, RepoError>;

    /// Lists the environments of `tenant`, newest first.
    async fn list_environments(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<Environment>, RepoError>;

    /// Of `ids`, the ones that are not environments of `tenant`.
    async fn missing_environments(
        &self,
        tenant: TenantId,
        ids: &[EnvironmentId],
    ) -> Result<Vec<EnvironmentId>, RepoError>;

    /// Renames an environment and returns it.
    ///
    /// # Errors
    /// `NotFound`; MUST return `Conflict { constraint: ENVIRONMENT_NAME }` on a clash.
    async fn rename_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
        name: &EnvironmentName,
        audit: &AuditEvent,
    ) -> Result<Environment, RepoError>;

    /// Deletes an environment.
    ///
    /// # Errors
    /// `NotFound`; MUST return `Conflict { constraint: ENVIRONMENT_IN_USE }` when a token
    /// that is not revoked is scoped to it, or when a fleet lives in it.
    async fn delete_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    // ---- principals (users and service accounts) ----

    /// Creates a user or service account.
    ///
    /// # Errors
    /// MUST return `Conflict` with `USER_EMAIL` / `SERVICE_ACCOUNT_NAME` on a clash.
    async fn create_principal(
        &self,
        principal: &Principal,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Reads a principal of `tenant`.
    async fn get_principal(
        &self,
        tenant: TenantId,
        id: PrincipalId,
    ) -> Result<Principal, RepoError>;

    /// Lists the users or the service accounts of `tenant`, newest first.
    async fn list_principals(
        &self,
        tenant: TenantId,
        filter: PrincipalFilter,
        page: PageRequest,
    ) -> Result<Page<Principal>, RepoError>;

    /// Replaces a principal's mutable fields (names, role, disabled) with `principal`'s.
    /// When `revoke_tokens_at` is set, every unrevoked token it owns is revoked then, in
    /// the same transaction.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` as for `create_principal`.
    async fn update_principal(
        &self,
        principal: &Principal,
        revoke_tokens_at: Option<Timestamp>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Deletes a principal, revoking its tokens at `at` and clearing their owner.
    async fn delete_principal(
        &self,
        tenant: TenantId,
        id: PrincipalId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;
}

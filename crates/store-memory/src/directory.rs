//! The [`TenantStore`](fleetpass_ports::store::TenantStore) part of the in-memory store:
//! tenants and their directory: environments, users and service accounts; and the backend's
//! health.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::identity::{EnvScope, Environment, EnvironmentName, Principal, Tenant};
use fleetpass_domain::ids::{EnvironmentId, PrincipalId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::policy::TokenPolicy;
use fleetpass_ports::store::{
    NewTenant, Persistence, PrincipalFilter, RepoError, TenantStore, constraint,
};

use crate::{MemoryStore, duplicate, page_of};

#[async_trait]
impl TenantStore for MemoryStore {
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

    async fn get_token_policy(&self, tenant: TenantId) -> Result<TokenPolicy, RepoError> {
        self.read(|s| {
            s.ensure_tenant(tenant)?;
            Ok(s.token_policies
                .get(&tenant.as_uuid())
                .copied()
                .unwrap_or_default())
        })
    }

    async fn set_token_policy(
        &self,
        tenant: TenantId,
        policy: &TokenPolicy,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.ensure_tenant(tenant)?;
            s.ensure_new_audit([audit])?;

            s.token_policies.insert(tenant.as_uuid(), *policy);
            s.record(audit);
            Ok(())
        })
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_memory_persistence() {
        assert_eq!(MemoryStore::new().persistence(), Persistence::Memory);
    }
}

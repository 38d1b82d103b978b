//! Platform use cases: creating and reading tenants.

use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::identity::{
    EnvScope, Environment, EnvironmentName, Principal, PrincipalKind, Role, ServiceAccountName,
    Tenant, TenantName,
};
use fleetpass_domain::ids::{EnvironmentId, PrincipalId, TenantId, TokenId};
use fleetpass_domain::network::AllowedCidrs;
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::secret::{PlainSecret, SecretKind};
use fleetpass_domain::token::{ApiToken, TokenName, TokenTtlDays};
use serde_json::json;

use super::ServiceResult;
use crate::Deps;
use crate::store::NewTenant;

/// A new tenant and the secret of its first admin token, shown once.
#[derive(Debug)]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: Tenant,
    /// Its first admin token's secret.
    pub admin_token: PlainSecret,
}

/// Creates a tenant with its `production` environment, a `tenant-admin` service account
/// and an all-environments admin token owned by it, valid for the longest allowed TTL.
///
/// # Errors
/// `Conflict` when the name is taken; store errors.
pub async fn create_tenant(
    deps: &Deps,
    name: TenantName,
    by: AuditActor,
) -> ServiceResult<CreatedTenant> {
    let now = deps.now();
    let tenant = Tenant {
        id: TenantId::from_uuid(deps.ids.new_id()),
        name,
        created_at: now,
    };
    let environment = Environment {
        id: EnvironmentId::from_uuid(deps.ids.new_id()),
        tenant_id: tenant.id,
        name: EnvironmentName::production(),
        created_at: now,
    };
    let admin = Principal {
        id: PrincipalId::from_uuid(deps.ids.new_id()),
        tenant_id: tenant.id,
        kind: PrincipalKind::ServiceAccount {
            name: ServiceAccountName::tenant_admin(),
        },
        role: Role::Admin,
        disabled: false,
        created_at: now,
    };
    let secret = PlainSecret::from_random(SecretKind::ApiToken, deps.secrets.random_32());
    let token = ApiToken {
        id: TokenId::from_uuid(deps.ids.new_id()),
        tenant_id: tenant.id,
        owner_id: Some(admin.id),
        name: TokenName::initial_admin(),
        role: Role::Admin,
        scope: EnvScope::All,
        rate_limit_per_minute: None,
        expires_at: TokenTtlDays::max().expiry_from(now),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
        hint: secret.hint(),
        allowed_cidrs: AllowedCidrs::anywhere(),
    };
    let event = |action, target: uuid::Uuid, details| {
        deps.audit(tenant.id, by, action, Some(target), details)
    };
    let audit = vec![
        event(
            actions::TENANT_CREATED,
            tenant.id.as_uuid(),
            json!({"name": tenant.name.as_str()}),
        ),
        event(
            actions::ENVIRONMENT_CREATED,
            environment.id.as_uuid(),
            json!({"name": environment.name.as_str()}),
        ),
        event(
            actions::SERVICE_ACCOUNT_CREATED,
            admin.id.as_uuid(),
            json!({"name": "tenant-admin", "role": "admin"}),
        ),
        event(
            actions::TOKEN_CREATED,
            token.id.as_uuid(),
            json!({"name": token.name.as_str(), "role": "admin", "hint": token.hint}),
        ),
    ];
    let digest = secret.digest();
    deps.store
        .create_tenant(&NewTenant {
            tenant: tenant.clone(),
            environment,
            admin,
            token,
            digest,
            audit,
        })
        .await?;
    Ok(CreatedTenant {
        tenant,
        admin_token: secret,
    })
}

/// Reads a tenant.
///
/// # Errors
/// `NotFound`; store errors.
pub async fn get_tenant(deps: &Deps, id: TenantId) -> ServiceResult<Tenant> {
    Ok(deps.store.get_tenant(id).await?)
}

/// Lists tenants, newest first.
///
/// # Errors
/// Store errors.
pub async fn list_tenants(deps: &Deps, page: PageRequest) -> ServiceResult<Page<Tenant>> {
    Ok(deps.store.list_tenants(page).await?)
}

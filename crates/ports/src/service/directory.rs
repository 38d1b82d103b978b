//! The tenant directory: environments, users and service accounts, and the audit log.

use fleetpass_domain::access::{Action, Actor, Denied};
use fleetpass_domain::audit::{AuditAction, AuditEvent, actions};
use fleetpass_domain::identity::{
    Email, Environment, EnvironmentName, PersonName, Principal, PrincipalKind, Role,
    ServiceAccountName,
};
use fleetpass_domain::ids::{EnvironmentId, PrincipalId};
use fleetpass_domain::page::{Page, PageRequest};
use serde_json::json;

use super::{ServiceError, ServiceResult, require};
use crate::store::{AuditFilter, PrincipalFilter};
use crate::{Conflict, Deps};

// ---- environments ----

/// Creates an environment. Needs an all-environments admin.
///
/// # Errors
/// `Denied`; `Conflict` on a taken name; store errors.
pub async fn create_environment(
    deps: &Deps,
    actor: &Actor,
    name: EnvironmentName,
) -> ServiceResult<Environment> {
    require(actor, Action::ManageEnvironments, None)?;
    let env = Environment {
        id: EnvironmentId::from_uuid(deps.ids.new_id()),
        tenant_id: actor.tenant_id,
        name,
        created_at: deps.now(),
    };
    let audit = deps.audit_by(
        actor,
        actions::ENVIRONMENT_CREATED,
        env.id.as_uuid(),
        json!({"name": env.name.as_str()}),
    );
    deps.store.create_environment(&env, &audit).await?;
    Ok(env)
}

/// Lists the environments the caller's scope reaches, newest first. A scoped caller may
/// get short pages; the cursor still continues correctly.
///
/// # Errors
/// `Denied`; store errors.
pub async fn list_environments(
    deps: &Deps,
    actor: &Actor,
    page: PageRequest,
) -> ServiceResult<Page<Environment>> {
    require(actor, Action::Administer, None)?;
    let mut page = deps.store.list_environments(actor.tenant_id, page).await?;
    page.items.retain(|env| actor.scope.contains(env.id));
    Ok(page)
}

/// Reads an environment in the caller's scope.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn get_environment(
    deps: &Deps,
    actor: &Actor,
    id: EnvironmentId,
) -> ServiceResult<Environment> {
    require(actor, Action::Administer, None)?;
    let env = deps.store.get_environment(actor.tenant_id, id).await?;
    require(actor, Action::Administer, Some(env.id))?;
    Ok(env)
}

/// Renames an environment.
///
/// # Errors
/// `Denied`, `NotFound`, `Conflict`, store errors.
pub async fn rename_environment(
    deps: &Deps,
    actor: &Actor,
    id: EnvironmentId,
    name: EnvironmentName,
) -> ServiceResult<Environment> {
    require(actor, Action::ManageEnvironments, None)?;
    let audit = deps.audit_by(
        actor,
        actions::ENVIRONMENT_UPDATED,
        id.as_uuid(),
        json!({"name": name.as_str()}),
    );
    Ok(deps
        .store
        .rename_environment(actor.tenant_id, id, &name, &audit)
        .await?)
}

/// Deletes an environment that no live token is scoped to.
///
/// # Errors
/// `Denied`, `NotFound`, `Conflict`, store errors.
pub async fn delete_environment(
    deps: &Deps,
    actor: &Actor,
    id: EnvironmentId,
) -> ServiceResult<()> {
    require(actor, Action::ManageEnvironments, None)?;
    let audit = deps.audit_by(actor, actions::ENVIRONMENT_DELETED, id.as_uuid(), json!({}));
    Ok(deps
        .store
        .delete_environment(actor.tenant_id, id, &audit)
        .await?)
}

// ---- users and service accounts ----

/// The created/updated/deleted audit actions of a principal's kind.
fn principal_actions(kind: PrincipalFilter) -> [AuditAction; 3] {
    match kind {
        PrincipalFilter::Users => [
            actions::USER_CREATED,
            actions::USER_UPDATED,
            actions::USER_DELETED,
        ],
        PrincipalFilter::ServiceAccounts => [
            actions::SERVICE_ACCOUNT_CREATED,
            actions::SERVICE_ACCOUNT_UPDATED,
            actions::SERVICE_ACCOUNT_DELETED,
        ],
    }
}

fn filter_of(kind: &PrincipalKind) -> PrincipalFilter {
    match kind {
        PrincipalKind::User { .. } => PrincipalFilter::Users,
        PrincipalKind::ServiceAccount { .. } => PrincipalFilter::ServiceAccounts,
    }
}

fn principal_details(p: &Principal) -> serde_json::Value {
    match &p.kind {
        PrincipalKind::User { email, name } => json!({
            "email": email.as_str(), "name": name.as_ref().map(PersonName::as_str),
            "role": p.role.as_str(), "disabled": p.disabled,
        }),
        PrincipalKind::ServiceAccount { name } => json!({
            "name": name.as_str(), "role": p.role.as_str(), "disabled": p.disabled,
        }),
    }
}

/// Creates a user or a service account (by `kind`).
///
/// # Errors
/// `Denied`; `Conflict` on a taken email or name; store errors.
pub async fn create_principal(
    deps: &Deps,
    actor: &Actor,
    kind: PrincipalKind,
    role: Role,
) -> ServiceResult<Principal> {
    require(actor, Action::Administer, None)?;
    let principal = Principal {
        id: PrincipalId::from_uuid(deps.ids.new_id()),
        tenant_id: actor.tenant_id,
        kind,
        role,
        disabled: false,
        created_at: deps.now(),
    };
    let [created, _, _] = principal_actions(filter_of(&principal.kind));
    let audit = deps.audit_by(
        actor,
        created,
        principal.id.as_uuid(),
        principal_details(&principal),
    );
    deps.store.create_principal(&principal, &audit).await?;
    Ok(principal)
}

/// Reads a principal of the wanted kind; one of the other kind is `NotFound`.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn get_principal(
    deps: &Deps,
    actor: &Actor,
    want: PrincipalFilter,
    id: PrincipalId,
) -> ServiceResult<Principal> {
    require(actor, Action::Administer, None)?;
    let p = deps.store.get_principal(actor.tenant_id, id).await?;
    if filter_of(&p.kind) == want {
        Ok(p)
    } else {
        Err(ServiceError::NotFound)
    }
}

/// Lists users or service accounts, newest first.
///
/// # Errors
/// `Denied`, store errors.
pub async fn list_principals(
    deps: &Deps,
    actor: &Actor,
    want: PrincipalFilter,
    page: PageRequest,
) -> ServiceResult<Page<Principal>> {
    require(actor, Action::Administer, None)?;
    Ok(deps
        .store
        .list_principals(actor.tenant_id, want, page)
        .await?)
}

/// A validated change to a principal. Name fields that do not fit its kind are refused
/// at the edge.
#[derive(Debug, Clone, Default)]
pub struct PrincipalPatch {
    /// A user's new email.
    pub email: Option<Email>,
    /// A user's new display name (`Some(None)` clears it).
    pub person_name: Option<Option<PersonName>>,
    /// A service account's new name.
    pub account_name: Option<ServiceAccountName>,
    /// A new role. Lowering it revokes the principal's tokens, since no token may be
    /// more powerful than its owner.
    pub role: Option<Role>,
    /// Disable (revoking every token) or re-enable.
    pub disabled: Option<bool>,
}

/// Changes a principal.
///
/// # Errors
/// `Denied`, `NotFound`, `Conflict`, store errors.
pub async fn update_principal(
    deps: &Deps,
    actor: &Actor,
    want: PrincipalFilter,
    id: PrincipalId,
    patch: PrincipalPatch,
) -> ServiceResult<Principal> {
    let mut p = get_principal(deps, actor, want, id).await?;
    let was = (p.role, p.disabled);
    match &mut p.kind {
        PrincipalKind::User { email, name } => {
            if let Some(new) = patch.email {
                *email = new;
            }
            if let Some(new) = patch.person_name {
                *name = new;
            }
        }
        PrincipalKind::ServiceAccount { name } => {
            if let Some(new) = patch.account_name {
                *name = new;
            }
        }
    }
    p.role = patch.role.unwrap_or(p.role);
    p.disabled = patch.disabled.unwrap_or(p.disabled);
    let loses_power = p.role < was.0 || (p.disabled && !was.1);
    if loses_power {
        require_every_environment(actor)?;
    }
    if loses_power && actor.owner_id == Some(p.id) {
        return Err(ServiceError::Conflict {
            constraint: Conflict::PrincipalIsCaller,
        });
    }
    let [_, updated, _] = principal_actions(want);
    let audit = deps.audit_by(actor, updated, p.id.as_uuid(), principal_details(&p));
    let revoke_at = loses_power.then(|| deps.now());
    deps.store.update_principal(&p, revoke_at, &audit).await?;
    Ok(p)
}

/// Refuses an environment-scoped caller a change that revokes a principal's tokens
/// (lowering its role, disabling or deleting it): those tokens may reach environments
/// beyond the caller's, and revoking them is as much power over them as revoking them
/// one by one, which the caller's scope does not grant. Like managing environments,
/// it takes an all-environments admin.
fn require_every_environment(actor: &Actor) -> ServiceResult<()> {
    if actor.scope.is_all() {
        Ok(())
    } else {
        Err(Denied::Scope.into())
    }
}

/// Deletes a principal and revokes its tokens.
///
/// # Errors
/// `Denied`, `NotFound`, `Conflict(PrincipalIsCaller)`, store errors.
pub async fn delete_principal(
    deps: &Deps,
    actor: &Actor,
    want: PrincipalFilter,
    id: PrincipalId,
) -> ServiceResult<()> {
    let p = get_principal(deps, actor, want, id).await?;
    require_every_environment(actor)?;
    if actor.owner_id == Some(p.id) {
        return Err(ServiceError::Conflict {
            constraint: Conflict::PrincipalIsCaller,
        });
    }
    let [_, _, deleted] = principal_actions(want);
    let audit = deps.audit_by(actor, deleted, p.id.as_uuid(), principal_details(&p));
    Ok(deps
        .store
        .delete_principal(actor.tenant_id, id, deps.now(), &audit)
        .await?)
}

// ---- audit log ----

/// Lists the tenant's audit events, newest first.
///
/// # Errors
/// `Denied`, store errors.
pub async fn list_audit_events(
    deps: &Deps,
    actor: &Actor,
    filter: &AuditFilter,
    page: PageRequest,
) -> ServiceResult<Page<AuditEvent>> {
    require(actor, Action::Administer, None)?;
    // The stores apply `AuditEvent::visible_to` in their queries: an env-scoped
    // reader sees only events within its environments (the export redacts the rest).
    let filter = AuditFilter {
        environments: (!actor.scope.is_all()).then(|| actor.scope.ids()),
        ..filter.clone()
    };
    Ok(deps
        .store
        .list_audit_events(actor.tenant_id, &filter, page)
        .await?)
}

//! `/api/admin/environments`, `/api/admin/users`, `/api/admin/service-accounts` and
//! `/api/admin/audit-events`.

use actix_web::{HttpResponse, web};
use fleetpass_domain::identity::{
    Email, EnvironmentName, PersonName, PrincipalKind, Role, ServiceAccountName,
};
use fleetpass_domain::ids::{EnvironmentId, PrincipalId};
use fleetpass_domain::value::parse_timestamp;
use fleetpass_ports::service::directory::{self as svc, PrincipalPatch};
use fleetpass_ports::store::{AuditFilter, PrincipalFilter};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{Checks, SERVER_FIELDS, body_id, present, refuse_other_fields, route};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Administer, Body, Caller, ListParams, ManageEnvironments, Needs, path_id};
use crate::guard::Class;
use crate::views::{
    AuditEventView, EnvironmentView, List, PrincipalView, ServiceAccountView, UserView,
};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        route("/api/admin/environments", Class::Tenant)
            .get(list_environments)
            .post(create_environment),
    )
    .service(
        route("/api/admin/environments/{id}", Class::Tenant)
            .get(get_environment)
            .patch(update_environment)
            .delete(delete_environment),
    )
    .service(
        route("/api/admin/users", Class::Tenant)
            .get(list_users)
            .post(create_user),
    )
    .service(
        route("/api/admin/users/{id}", Class::Tenant)
            .get(get_user)
            .patch(update_user)
            .delete(delete_user),
    )
    .service(
        route("/api/admin/service-accounts", Class::Tenant)
            .get(list_service_accounts)
            .post(create_service_account),
    )
    .service(
        route("/api/admin/service-accounts/{id}", Class::Tenant)
            .get(get_service_account)
            .patch(update_service_account)
            .delete(delete_service_account),
    )
    .service(route("/api/admin/audit-events", Class::Tenant).get(list_audit_events));
}

// ---- environments ----

/// Body of `POST /api/admin/environments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironmentBody {
    /// 1-63 characters of a-z, 0-9 and '-', starting with a letter; unique per tenant.
    #[schema(example = "staging")]
    pub name: String,
}

/// Create an environment (needs an all-environments admin).
#[utoipa::path(post, path = "/api/admin/environments", tag = "environments", request_body = CreateEnvironmentBody,
    security(("bearer" = [])),
    responses((status = 201, body = EnvironmentView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_environment(
    state: web::Data<AppState>,
    caller: Caller<ManageEnvironments>,
    Body(body): Body<CreateEnvironmentBody>,
) -> Result<HttpResponse, ApiError> {
    let name = EnvironmentName::new(&body.name).map_err(|e| ApiError::invalid("name", &e))?;
    let env = svc::create_environment(&state.deps, &caller.actor, name).await?;
    let location = format!("/api/admin/environments/{}", env.id);
    Ok(super::created(location).json(EnvironmentView::from(env)))
}

/// List the environments in the caller's scope.
#[utoipa::path(get, path = "/api/admin/environments", tag = "environments", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = List<EnvironmentView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_environments(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = svc::list_environments(&state.deps, &caller.actor, params.page()?).await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, EnvironmentView::from)))
}

/// Read an environment.
#[utoipa::path(get, path = "/api/admin/environments/{id}", tag = "environments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Environment id")),
    responses((status = 200, body = EnvironmentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_environment(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, EnvironmentId::parse)?;
    Ok(HttpResponse::Ok().json(EnvironmentView::from(
        svc::get_environment(&state.deps, &caller.actor, id).await?,
    )))
}

/// Body of `PATCH /api/admin/environments/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PatchEnvironmentBody {
    /// A new name.
    pub name: Option<String>,
    /// Any other field is refused.
    #[serde(flatten)]
    #[schema(ignore)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// Rename an environment (needs an all-environments admin).
#[utoipa::path(patch, path = "/api/admin/environments/{id}", tag = "environments", request_body = PatchEnvironmentBody,
    security(("bearer" = [])), params(("id" = String, Path, description = "Environment id")),
    responses((status = 200, body = EnvironmentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_environment(
    state: web::Data<AppState>,
    caller: Caller<ManageEnvironments>,
    id: web::Path<String>,
    Body(body): Body<PatchEnvironmentBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, EnvironmentId::parse)?;
    refuse_other_fields(&body.rest, &SERVER_FIELDS)?;
    let env = match body.name {
        Some(raw) => {
            let name = EnvironmentName::new(&raw).map_err(|e| ApiError::invalid("name", &e))?;
            svc::rename_environment(&state.deps, &caller.actor, id, name).await?
        }
        None => svc::get_environment(&state.deps, &caller.actor, id).await?,
    };
    Ok(HttpResponse::Ok().json(EnvironmentView::from(env)))
}

/// Delete an environment no live token is scoped to (needs an all-environments admin).
#[utoipa::path(delete, path = "/api/admin/environments/{id}", tag = "environments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Environment id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_environment(
    state: web::Data<AppState>,
    caller: Caller<ManageEnvironments>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, EnvironmentId::parse)?;
    svc::delete_environment(&state.deps, &caller.actor, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- users and service accounts ----

/// Body of `POST /api/admin/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    /// Email, unique per tenant.
    pub email: String,
    /// Display name, 1-100 characters.
    pub name: Option<String>,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
}

/// Body of `POST /api/admin/service-accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceAccountBody {
    /// Name, 1-100 characters, unique per tenant.
    pub name: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
}

/// Body of a PATCH of a user or service account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PatchPrincipalBody {
    /// A user's new email, or a service account's new name is `name`.
    pub email: Option<String>,
    /// New name (a user's display name: `null` clears it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// A new role; lowering it revokes the principal's tokens.
    pub role: Option<String>,
    /// `true` disables it and revokes its tokens.
    pub disabled: Option<bool>,
    /// Any other field is refused.
    #[serde(flatten)]
    #[schema(ignore)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl PatchPrincipalBody {
    fn into_domain(self, kind: PrincipalFilter) -> Result<PrincipalPatch, ApiError> {
        refuse_other_fields(&self.rest, &SERVER_FIELDS)?;
        let mut checks = Checks::default();
        let mut patch = PrincipalPatch {
            role: self
                .role
                .and_then(|r| checks.check("role", Role::parse(&r))),
            disabled: self.disabled,
            ..PrincipalPatch::default()
        };
        match kind {
            PrincipalFilter::Users => {
                patch.email = self
                    .email
                    .and_then(|e| checks.check("email", Email::new(&e)));
                patch.person_name = self
                    .name
                    .map(|n| n.and_then(|n| checks.check("name", PersonName::new(&n))));
            }
            PrincipalFilter::ServiceAccounts => {
                if self.email.is_some() {
                    checks.push(ApiError::invalid_message(
                        "email",
                        "is not a field of a service account",
                    ));
                }
                patch.account_name = match self.name {
                    Some(Some(n)) => checks.check("name", ServiceAccountName::new(&n)),
                    Some(None) => checks.check("name", ServiceAccountName::new("")),
                    None => None,
                };
            }
        }
        checks.finish()?;
        Ok(patch)
    }
}

/// Create a user.
#[utoipa::path(post, path = "/api/admin/users", tag = "users", request_body = CreateUserBody, security(("bearer" = [])),
    responses((status = 201, body = UserView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    Body(body): Body<CreateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let mut checks = Checks::default();
    let email = checks.require("email", Email::new(&body.email));
    let name = body
        .name
        .and_then(|n| checks.check("name", PersonName::new(&n)));
    let role = checks.require("role", Role::parse(&body.role));
    let (email, role) = checks.finish_with((email, role))?;
    let kind = PrincipalKind::User { email, name };
    let p = svc::create_principal(&state.deps, &caller.actor, kind, role).await?;
    let location = format!("/api/admin/users/{}", p.id);
    Ok(super::created(location).json(PrincipalView::from(p)))
}

/// Create a service account.
#[utoipa::path(post, path = "/api/admin/service-accounts", tag = "service-accounts", request_body = CreateServiceAccountBody,
    security(("bearer" = [])),
    responses((status = 201, body = ServiceAccountView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_service_account(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    Body(body): Body<CreateServiceAccountBody>,
) -> Result<HttpResponse, ApiError> {
    let mut checks = Checks::default();
    let name = checks.require("name", ServiceAccountName::new(&body.name));
    let role = checks.require("role", Role::parse(&body.role));
    let (name, role) = checks.finish_with((name, role))?;
    let p = svc::create_principal(
        &state.deps,
        &caller.actor,
        PrincipalKind::ServiceAccount { name },
        role,
    )
    .await?;
    let location = format!("/api/admin/service-accounts/{}", p.id);
    Ok(super::created(location).json(PrincipalView::from(p)))
}

async fn list_principals(
    state: &AppState,
    caller: &Caller<impl Needs>,
    kind: PrincipalFilter,
    params: &ListParams,
) -> Result<HttpResponse, ApiError> {
    let page = svc::list_principals(&state.deps, &caller.actor, kind, params.page()?).await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, PrincipalView::from)))
}

async fn get_principal(
    state: &AppState,
    caller: &Caller<impl Needs>,
    kind: PrincipalFilter,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(id, PrincipalId::parse)?;
    Ok(HttpResponse::Ok().json(PrincipalView::from(
        svc::get_principal(&state.deps, &caller.actor, kind, id).await?,
    )))
}

async fn update_principal(
    state: &AppState,
    caller: &Caller<impl Needs>,
    kind: PrincipalFilter,
    id: &str,
    body: PatchPrincipalBody,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(id, PrincipalId::parse)?;
    let patch = body.into_domain(kind)?;
    let p = svc::update_principal(&state.deps, &caller.actor, kind, id, patch).await?;
    Ok(HttpResponse::Ok().json(PrincipalView::from(p)))
}

async fn delete_principal(
    state: &AppState,
    caller: &Caller<impl Needs>,
    kind: PrincipalFilter,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(id, PrincipalId::parse)?;
    svc::delete_principal(&state.deps, &caller.actor, kind, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List users.
#[utoipa::path(get, path = "/api/admin/users", tag = "users", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = List<UserView>), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_principals(&state, &caller, PrincipalFilter::Users, &params).await
}

/// Read a user.
#[utoipa::path(get, path = "/api/admin/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    get_principal(&state, &caller, PrincipalFilter::Users, &id).await
}

/// Change a user's email, name, role or disabled flag.
#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "users", request_body = PatchPrincipalBody, security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_user(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    id: web::Path<String>,
    Body(body): Body<PatchPrincipalBody>,
) -> Result<HttpResponse, ApiError> {
    update_principal(&state, &caller, PrincipalFilter::Users, &id, body).await
}

/// Delete a user and revoke their tokens.
#[utoipa::path(delete, path = "/api/admin/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    delete_principal(&state, &caller, PrincipalFilter::Users, &id).await
}

/// List service accounts.
#[utoipa::path(get, path = "/api/admin/service-accounts", tag = "service-accounts", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = List<ServiceAccountView>), (status = 403, body = ErrorBody)))]
pub async fn list_service_accounts(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_principals(&state, &caller, PrincipalFilter::ServiceAccounts, &params).await
}

/// Read a service account.
#[utoipa::path(get, path = "/api/admin/service-accounts/{id}", tag = "service-accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Service account id")),
    responses((status = 200, body = ServiceAccountView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_service_account(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    get_principal(&state, &caller, PrincipalFilter::ServiceAccounts, &id).await
}

/// Change a service account's name, role or disabled flag.
#[utoipa::path(patch, path = "/api/admin/service-accounts/{id}", tag = "service-accounts", request_body = PatchPrincipalBody,
    security(("bearer" = [])), params(("id" = String, Path, description = "Service account id")),
    responses((status = 200, body = ServiceAccountView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_service_account(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    id: web::Path<String>,
    Body(body): Body<PatchPrincipalBody>,
) -> Result<HttpResponse, ApiError> {
    update_principal(&state, &caller, PrincipalFilter::ServiceAccounts, &id, body).await
}

/// Delete a service account and revoke its tokens.
#[utoipa::path(delete, path = "/api/admin/service-accounts/{id}", tag = "service-accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Service account id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_service_account(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    delete_principal(&state, &caller, PrincipalFilter::ServiceAccounts, &id).await
}

// ---- audit log ----

/// Filters of `GET /api/admin/audit-events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Exact action, e.g. `token.created`.
    pub action: Option<String>,
    /// The acting token's id.
    pub actor_id: Option<String>,
    /// The target's id.
    pub target_id: Option<String>,
    /// RFC 3339 instant; events at or after it.
    pub since: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// List the audit log, newest first.
#[utoipa::path(get, path = "/api/admin/audit-events", tag = "audit", params(AuditParams), security(("bearer" = [])),
    responses((status = 200, body = List<AuditEventView>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_audit_events(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let page = ListParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .page()?;
    let uuid = |field: &str, raw: Option<String>| {
        raw.map(|r| body_id(field, &r, |s| Uuid::parse_str(s).ok()))
            .transpose()
    };
    let since = params
        .since
        .map(|s| parse_timestamp(&s))
        .transpose()
        .map_err(|e| ApiError::invalid("since", &e))?;
    let filter = AuditFilter {
        action: params.action,
        actor_id: uuid("actorId", params.actor_id)?,
        target_id: uuid("targetId", params.target_id)?,
        since,
        // The service narrows it to the caller's scope.
        environments: None,
    };
    let page = svc::list_audit_events(&state.deps, &caller.actor, &filter, page).await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, AuditEventView::from)))
}

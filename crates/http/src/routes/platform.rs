//! `/platform/*`: the platform operator's tenant API, behind `FLEETPASS_ADMIN_KEY`.

use actix_web::{HttpResponse, web};
use fleetpass_domain::audit::AuditActor;
use fleetpass_domain::identity::TenantName;
use fleetpass_domain::ids::TenantId;
use fleetpass_ports::service::tenants as svc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::route;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, ListParams, PlatformAdmin, path_id};
use crate::guard::Class;
use crate::views::{CreatedTenantView, List, TenantView, ts};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        route("/platform/tenants", Class::Platform)
            .get(list_tenants)
            .post(create_tenant),
    )
    .service(route("/platform/tenants/{id}", Class::Platform).get(get_tenant));
}

/// Body of `POST /platform/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    /// 1-100 characters, unique.
    pub name: String,
}

/// Create a tenant with its `production` environment and first admin token.
#[utoipa::path(post, path = "/platform/tenants", tag = "platform", request_body = CreateTenantBody,
    security(("platform_admin_key" = [])),
    responses((status = 201, body = CreatedTenantView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, description = "Admin API not configured", body = ErrorBody)))]
pub async fn create_tenant(
    state: web::Data<AppState>,
    _: PlatformAdmin,
    Body(body): Body<CreateTenantBody>,
) -> Result<HttpResponse, ApiError> {
    let name = TenantName::new(&body.name).map_err(|e| ApiError::invalid("name", &e))?;
    let created = svc::create_tenant(&state.deps, name, AuditActor::Platform).await?;
    let location = format!("/platform/tenants/{}", created.tenant.id);
    Ok(super::created(location).json(CreatedTenantView {
        tenant_id: created.tenant.id.to_string(),
        name: created.tenant.name.to_string(),
        admin_token: created.admin_token.expose().to_owned(),
        created_at: ts(created.tenant.created_at),
    }))
}

/// List tenants.
#[utoipa::path(get, path = "/platform/tenants", tag = "platform", params(ListParams), security(("platform_admin_key" = [])),
    responses((status = 200, body = List<TenantView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_tenants(
    state: web::Data<AppState>,
    _: PlatformAdmin,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = svc::list_tenants(&state.deps, params.page()?).await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, TenantView::from)))
}

/// Read a tenant.
#[utoipa::path(get, path = "/platform/tenants/{id}", tag = "platform", security(("platform_admin_key" = [])),
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, body = TenantView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_tenant(
    state: web::Data<AppState>,
    _: PlatformAdmin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, TenantId::parse)?;
    Ok(HttpResponse::Ok().json(TenantView::from(svc::get_tenant(&state.deps, id).await?)))
}

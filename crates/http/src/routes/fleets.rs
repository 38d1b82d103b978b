//! `/tenant/discovery/*`: fleets (seed `000`), their enrollment tokens and agents, as
//! operators manage them.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use fleetpass_domain::fleet::{EnrollmentTtlHours, FleetName, MaxUses};
use fleetpass_domain::ids::{AgentId, EnrollmentTokenId, EnvironmentId, FleetId};
use fleetpass_domain::label::Labels;
use fleetpass_ports::service::PathTarget;
use fleetpass_ports::service::fleets as svc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Checks, SERVER_FIELDS, body_in_scope, refuse_other_fields, route};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, Caller, ListParams, Operate, path_id};
use crate::guard::Class;
use crate::views::{
    AgentView, CreatedFleetView, EnrollmentTokenView, FleetView, IssuedEnrollmentView, List,
};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        route("/tenant/discovery/fleets", Class::Tenant)
            .get(list_fleets)
            .post(create_fleet),
    )
    .service(
        route("/tenant/discovery/fleets/{fleet_id}", Class::Tenant)
            .get(get_fleet)
            .patch(update_fleet)
            .delete(delete_fleet),
    )
    .service(
        route(
            "/tenant/discovery/fleets/{fleet_id}/enrollment-tokens",
            Class::Tenant,
        )
        .get(list_enrollment_tokens)
        .post(issue_enrollment_token),
    )
    .service(
        route(
            "/tenant/discovery/fleets/{fleet_id}/enrollment-tokens/{token_id}",
            Class::Tenant,
        )
        .delete(revoke_enrollment_token),
    )
    .service(route("/tenant/discovery/fleets/{fleet_id}/agents", Class::Tenant).get(list_agents))
    .service(
        route("/tenant/discovery/agents/{agent_id}", Class::Tenant)
            .get(get_agent)
            .patch(patch_agent)
            .delete(revoke_agent),
    );
}

/// Body of `POST /tenant/discovery/fleets` (seed 000).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateFleetBody {
    /// Fleet display name, 1-100 characters (default "Untitled fleet").
    #[schema(example = "Production", min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// The environment the fleet lives in (default: the tenant's `production`).
    pub environment_id: Option<String>,
}

/// Create a fleet and return a one-time enrollment token (72 h).
#[utoipa::path(post, path = "/tenant/discovery/fleets", tag = "fleets", request_body = CreateFleetBody,
    security(("bearer" = [])),
    responses((status = 201, body = CreatedFleetView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 500, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_fleet(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    Body(body): Body<CreateFleetBody>,
) -> Result<HttpResponse, ApiError> {
    let mut checks = Checks::default();
    let name = body
        .name
        .and_then(|n| checks.check("name", FleetName::new(&n)));
    let environment = body
        .environment_id
        .map(|raw| checks.id("environmentId", &raw, EnvironmentId::parse));
    let environment = checks.finish_with(environment)?;
    let created = svc::create_fleet(&state.deps, &caller.actor, name, environment).await?;
    let location = format!("/tenant/discovery/fleets/{}", created.fleet.id);
    Ok(super::created(location).json(CreatedFleetView::new(created)))
}

/// List fleets in the caller's environments, newest first.
#[utoipa::path(get, path = "/tenant/discovery/fleets", tag = "fleets", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = List<FleetView>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_fleets(
    state: web::Data<AppState>,
    caller: Caller,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = svc::list_fleets(&state.deps, &caller.actor, params.page()?).await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, FleetView::from)))
}

/// Read a fleet.
#[utoipa::path(get, path = "/tenant/discovery/fleets/{fleet_id}", tag = "fleets", security(("bearer" = [])),
    params(("fleet_id" = String, Path, description = "Fleet id")),
    responses((status = 200, body = FleetView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_fleet(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, FleetId::parse)?;
    Ok(HttpResponse::Ok().json(FleetView::from(
        svc::get_fleet(&state.deps, &caller.actor, id).await?,
    )))
}

/// Body of `PATCH /tenant/discovery/fleets/{fleet_id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PatchFleetBody {
    /// A new name, 1-100 characters.
    pub name: Option<String>,
    /// Any other field is refused (`environmentId` as READONLY_FIELD).
    #[serde(flatten)]
    #[schema(ignore)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

const FLEET_READONLY: [(&str, &str); 4] = [
    SERVER_FIELDS[0],
    SERVER_FIELDS[1],
    (
        "environmentId",
        "A fleet stays in its environment: create a fleet in the other environment and enroll its agents there.",
    ),
    (
        "fleetId",
        "The id is assigned by the server and never changes.",
    ),
];

/// Rename a fleet.
#[utoipa::path(patch, path = "/tenant/discovery/fleets/{fleet_id}", tag = "fleets", request_body = PatchFleetBody,
    security(("bearer" = [])), params(("fleet_id" = String, Path, description = "Fleet id")),
    responses((status = 200, body = FleetView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "VALIDATION_ERROR or READONLY_FIELD", body = ErrorBody)))]
pub async fn update_fleet(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    id: web::Path<String>,
    body: Result<Body<PatchFleetBody>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, FleetId::parse)?;
    let body = body_in_scope(&state, &caller, PathTarget::Fleet(id), body).await?;
    refuse_other_fields(&body.rest, &FLEET_READONLY)?;
    let fleet = match body.name {
        Some(raw) => {
            let name = FleetName::new(&raw).map_err(|e| ApiError::invalid("name", &e))?;
            svc::rename_fleet(&state.deps, &caller.actor, id, name).await?
        }
        None => svc::get_fleet(&state.deps, &caller.actor, id).await?,
    };
    Ok(HttpResponse::Ok().json(FleetView::from(fleet)))
}

/// Delete a fleet with its enrollment tokens and agents.
#[utoipa::path(delete, path = "/tenant/discovery/fleets/{fleet_id}", tag = "fleets", security(("bearer" = [])),
    params(("fleet_id" = String, Path, description = "Fleet id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_fleet(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, FleetId::parse)?;
    svc::delete_fleet(&state.deps, &caller.actor, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `POST …/enrollment-tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueEnrollmentBody {
    /// Lifetime, 1-720 hours (default 72).
    #[schema(minimum = 1, maximum = 720)]
    pub expires_hours: Option<i64>,
    /// Enrollments allowed, 1-1000 (default 1).
    #[schema(minimum = 1, maximum = 1000)]
    pub max_uses: Option<i64>,
    /// Labels every agent it enrolls carries (at most 32; they win over the agent's own
    /// on the same key).
    #[schema(example = json!({"role": "db"}))]
    pub labels: Option<BTreeMap<String, String>>,
    /// The networks agents may enroll from with it: at most 32 IPv4 or IPv6 addresses
    /// or CIDR networks; absent or empty: anywhere. An enrollment from elsewhere is 403
    /// `FORBIDDEN_SCOPE` and uses nothing up.
    #[schema(example = json!(["10.20.0.0/16"]))]
    pub allowed_cidrs: Option<Vec<String>>,
}

/// Issue an enrollment token for a fleet (the secret is returned once).
#[utoipa::path(post, path = "/tenant/discovery/fleets/{fleet_id}/enrollment-tokens", tag = "fleets",
    request_body = IssueEnrollmentBody, security(("bearer" = [])), params(("fleet_id" = String, Path, description = "Fleet id")),
    responses((status = 201, body = IssuedEnrollmentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn issue_enrollment_token(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    fleet: web::Path<String>,
    body: Result<Body<IssueEnrollmentBody>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let fleet = path_id(&fleet, FleetId::parse)?;
    let body = body_in_scope(&state, &caller, PathTarget::Fleet(fleet), body).await?;
    let mut checks = Checks::default();
    // No lifetime asked for: the service picks the default (capped by the tenant's
    // token policy).
    let ttl = body.expires_hours.map(EnrollmentTtlHours::new).transpose();
    let ttl = checks.require("expiresHours", ttl);
    let max_uses = checks.require(
        "maxUses",
        body.max_uses.map_or(Ok(MaxUses::default()), MaxUses::new),
    );
    let labels = checks.require_with(
        body.labels
            .as_ref()
            .map_or(Ok(Labels::none()), |l| super::labels("labels", l)),
    );
    let cidrs = checks.require_with(super::allowed_cidrs(body.allowed_cidrs.as_deref()));
    let (ttl, max_uses, labels, cidrs) = checks.finish_with((ttl, max_uses, labels, cidrs))?;
    let issued = svc::issue_enrollment_token(
        &state.deps,
        &caller.actor,
        fleet,
        ttl,
        max_uses,
        labels,
        cidrs,
    )
    .await?;
    let location = format!(
        "/tenant/discovery/fleets/{}/enrollment-tokens/{}",
        issued.token.fleet_id, issued.token.id
    );
    Ok(super::created(location).json(IssuedEnrollmentView::new(issued, state.deps.now())))
}

/// List a fleet's enrollment tokens (no secrets).
#[utoipa::path(get, path = "/tenant/discovery/fleets/{fleet_id}/enrollment-tokens", tag = "fleets", params(ListParams,
    ("fleet_id" = String, Path, description = "Fleet id")), security(("bearer" = [])),
    responses((status = 200, body = List<EnrollmentTokenView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_enrollment_tokens(
    state: web::Data<AppState>,
    caller: Caller,
    fleet: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let fleet = path_id(&fleet, FleetId::parse)?;
    let page =
        svc::list_enrollment_tokens(&state.deps, &caller.actor, fleet, params.page()?).await?;
    let now = state.deps.now();
    Ok(HttpResponse::Ok().json(List::from_page(page, |t| EnrollmentTokenView::new(t, now))))
}

/// Revoke an enrollment token.
#[utoipa::path(delete, path = "/tenant/discovery/fleets/{fleet_id}/enrollment-tokens/{token_id}", tag = "fleets",
    security(("bearer" = [])),
    params(("fleet_id" = String, Path, description = "Fleet id"), ("token_id" = String, Path, description = "Enrollment token id")),
    responses((status = 204, description = "Revoked"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_enrollment_token(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let fleet = path_id(&path.0, FleetId::parse)?;
    let token = path_id(&path.1, EnrollmentTokenId::parse)?;
    svc::revoke_enrollment_token(&state.deps, &caller.actor, fleet, token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Filters of `GET /tenant/discovery/fleets/{fleet_id}/agents`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AgentParams {
    /// Only agents that carry every one of these labels: `key:value` pairs separated by
    /// commas (`role:db,site:fra1`).
    pub labels: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// List a fleet's agents, optionally only those with given labels.
#[utoipa::path(get, path = "/tenant/discovery/fleets/{fleet_id}/agents", tag = "agents", params(AgentParams,
    ("fleet_id" = String, Path, description = "Fleet id")), security(("bearer" = [])),
    responses((status = 200, body = List<AgentView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_agents(
    state: web::Data<AppState>,
    caller: Caller,
    fleet: web::Path<String>,
    params: web::Query<AgentParams>,
) -> Result<HttpResponse, ApiError> {
    let fleet = path_id(&fleet, FleetId::parse)?;
    let p = params.into_inner();
    let page = ListParams {
        limit: p.limit,
        cursor: p.cursor,
    }
    .page()?;
    let selector = p
        .labels
        .as_deref()
        .map(|raw| super::label_selector("labels", raw))
        .transpose()?;
    let page = svc::list_agents(&state.deps, &caller.actor, fleet, selector.as_ref(), page).await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, AgentView::from)))
}

/// Body of `PATCH /tenant/discovery/agents/{agent_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"labels": {"role": "db", "site": "fra1"}}))]
pub struct PatchAgentBody {
    /// The agent's labels, replacing the ones it has (at most 32; `{}` clears them).
    #[schema(example = json!({"role": "db", "site": "fra1"}))]
    pub labels: BTreeMap<String, String>,
}

/// Change an agent's labels.
#[utoipa::path(patch, path = "/tenant/discovery/agents/{agent_id}", tag = "agents", request_body = PatchAgentBody,
    security(("bearer" = [])), params(("agent_id" = String, Path, description = "Agent id")),
    responses((status = 200, body = AgentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn patch_agent(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    id: web::Path<String>,
    body: Result<Body<PatchAgentBody>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, AgentId::parse)?;
    let body = body_in_scope(&state, &caller, PathTarget::Agent(id), body).await?;
    let labels = super::labels("labels", &body.labels)?;
    Ok(HttpResponse::Ok().json(AgentView::from(
        svc::relabel_agent(&state.deps, &caller.actor, id, labels).await?,
    )))
}

/// Read an agent.
#[utoipa::path(get, path = "/tenant/discovery/agents/{agent_id}", tag = "agents", security(("bearer" = [])),
    params(("agent_id" = String, Path, description = "Agent id")),
    responses((status = 200, body = AgentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_agent(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, AgentId::parse)?;
    Ok(HttpResponse::Ok().json(AgentView::from(
        svc::get_agent(&state.deps, &caller.actor, id).await?,
    )))
}

/// Revoke an agent: its secret stops working at once, and so do its access tokens.
#[utoipa::path(delete, path = "/tenant/discovery/agents/{agent_id}", tag = "agents", security(("bearer" = [])),
    params(("agent_id" = String, Path, description = "Agent id")),
    responses((status = 204, description = "Revoked"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_agent(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, AgentId::parse)?;
    svc::revoke_agent(&state.deps, &caller.actor, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

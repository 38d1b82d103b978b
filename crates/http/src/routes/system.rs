//! Liveness, readiness, the OpenAPI document and `/api/me`.

use actix_web::{HttpRequest, HttpResponse, web};
use fleetpass_domain::access::Action;
use fleetpass_ports::service::{policy, require, tenants};
use serde::Serialize;
use utoipa::ToSchema;

use super::route;
use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{Caller, bearer_token};
use crate::guard::Class;
use crate::views::{MeView, TokenView};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(route("/healthz", Class::Open).get(healthz))
        .service(route("/readyz", Class::Open).get(readyz))
        .service(route("/openapi.json", Class::Open).get(openapi))
        .service(route("/docs", Class::Open).get(docs))
        .service(route("/metrics", Class::Open).get(metrics))
        .service(route("/api/me", Class::Tenant).get(me));
}

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
    /// `memory` or `postgres` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence: Option<&'static str>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        persistence: None,
    })
}

/// Readiness: the store answers. Reports the persistence mode.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, body = Health), (status = 503, description = "Store unreachable", body = ErrorBody)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let persistence = state.deps.store.persistence().as_str();
    state.deps.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            format!("the {persistence} store is unreachable"),
        )
        .hint("Retry shortly; check the database.")
        .retry_after(5)
    })?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ready",
        persistence: Some(persistence),
    }))
}

/// The OpenAPI 3.1 document, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::document())
}

/// Who am I: tenant, role, scope, expiry and limits of the token in use, and the
/// tenant's token policy (the longest lifetimes of new tokens).
#[utoipa::path(get, path = "/api/me", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)))]
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    require(&caller.actor, Action::Read, None)?;
    // Both reads are served from the store's cache on PostgreSQL (`authcache.rs`), which
    // a policy change clears on every replica: no query per request.
    let tenant = tenants::get_tenant(&state.deps, caller.actor.tenant_id).await?;
    let policy = policy::own_token_policy(&state.deps, &caller.actor).await?;
    Ok(HttpResponse::Ok().json(MeView {
        tenant_id: tenant.id.to_string(),
        tenant_name: tenant.name.to_string(),
        token: TokenView::new(caller.token, state.deps.now()),
        token_policy: policy.into(),
    }))
}

/// Prometheus metrics (text exposition format): requests, authentication failures and
/// 429s by kind, scans by status and queue age, agents by last seen, the database pool,
/// the build and the process. With `FLEETPASS_METRICS_TOKEN` set, only a request
/// bearing that token is answered.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format"),
    (status = 401, description = "`FLEETPASS_METRICS_TOKEN` is set and the request does not bear it", body = ErrorBody)))]
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if let Some(token) = &state.config.metrics_token
        && !bearer_token(&req).is_some_and(|presented| token.matches(&presented))
    {
        return Err(ApiError::unauthorized("the metrics token is required")
            .hint("Send `Authorization: Bearer <the server's FLEETPASS_METRICS_TOKEN>`."));
    }
    let Some(metrics) = crate::metrics::Metrics::global() else {
        return Ok(HttpResponse::Ok().finish());
    };
    let now = state.deps.now();
    match state.deps.store.service_stats(now).await {
        Ok(stats) => metrics.observe(&stats, now),
        // The request counters are still worth a scrape; the store gauges keep their
        // last values.
        Err(e) => tracing::warn!(error = %e, "metrics: the store's counts could not be read"),
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render()))
}

/// A readable API reference, rendered from the OpenAPI document (`crate::docs`).
#[utoipa::path(get, path = "/docs", tag = "system", responses((status = 200, description = "HTML page", content_type = "text/html")))]
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", crate::docs::csp()))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(crate::docs::page())
}

//! `/tenant/scans/*`: scan requests, their artifacts, and the share links that hand
//! them to outsiders (seed `001`).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use fleetpass_domain::Timestamp;
use fleetpass_domain::ids::{FleetId, ScanId, ShareLinkId};
use fleetpass_domain::scan::{
    MaxAssets, MaxDurationMinutes, PartStatus, ScanConstraints, ScanStatus,
};
use fleetpass_domain::share::{Artifact, MaxAccesses, ShareLabel, ShareTtlHours};
use fleetpass_domain::value::parse_timestamp;
use fleetpass_ports::service::PathTarget;
use fleetpass_ports::service::scans as svc;
use fleetpass_ports::service::shares::{self, NewShare};
use fleetpass_ports::store::{ScanArtifacts, ScanFilter};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Checks, body_in_scope, route, scenario};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, Caller, ListParams, Needs, Operate, path_id};
use crate::guard::Class;
use crate::views::{CreatedShareView, List, ScanPartView, ScanView, ShareLinkView, ts};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        route("/tenant/scans", Class::Tenant)
            .get(list_scans)
            .post(request_scan),
    )
    .service(route("/tenant/scans/{scan_id}", Class::Tenant).get(get_scan))
    .service(route("/tenant/scans/{scan_id}/parts", Class::Tenant).get(list_parts))
    .service(route("/tenant/scans/{scan_id}/cancel", Class::Tenant).post(cancel_scan))
    .service(route("/tenant/scans/{scan_id}/report", Class::Tenant).get(report))
    .service(route("/tenant/scans/{scan_id}/bundle", Class::Tenant).get(bundle))
    .service(route("/tenant/scans/{scan_id}/passport", Class::Tenant).get(passport))
    .service(
        route("/tenant/scans/{scan_id}/share-links", Class::Tenant)
            .get(list_share_links)
            .post(create_share_link),
    )
    .service(route("/tenant/scans/{scan_id}/share", Class::Tenant).post(create_share_alias))
    .service(route("/tenant/share-links/{link_id}", Class::Tenant).delete(revoke_share_link));
}

/// Constraints of a scan request.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConstraintsBody {
    /// 1-1440 minutes; at least the scenario's minimum (inventory 5, software 10, ports
    /// 15, compliance 30).
    pub max_duration_minutes: Option<i64>,
    /// RFC 3339; not claimed before.
    pub not_before: Option<String>,
    /// RFC 3339; must be after `notBefore` and in the future, leaving at least the
    /// scenario's minimum duration.
    pub not_after: Option<String>,
    /// 1-100000.
    pub max_assets: Option<i64>,
}

/// Body of `POST /tenant/scans`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestScanBody {
    /// The fleet that runs it.
    pub fleet_id: String,
    /// `inventory`, `ports`, `software` or `compliance`.
    #[schema(example = "inventory")]
    pub scenario: String,
    /// Optional constraints.
    pub constraints: Option<ConstraintsBody>,
    /// Which agents run it: `"any"` (default: the first of the fleet's agents to claim
    /// it), `"all"` (every live agent of the fleet now), `{"agents": [ids]}` (1-10 000
    /// of the fleet's live agents) or `{"labels": {"role": "db"}}` (the live agents that
    /// carry every label). Every target but `any` fans out: one part per agent, merged
    /// into one report, bundle and passport.
    #[schema(value_type = Object, example = "all")]
    pub target: Option<serde_json::Value>,
}

fn timestamp(checks: &mut Checks, field: &str, raw: Option<String>) -> Option<Timestamp> {
    raw.and_then(|r| checks.check(field, parse_timestamp(&r)))
}

impl ConstraintsBody {
    fn into_domain(self, checks: &mut Checks) -> ScanConstraints {
        let max_duration_minutes = self
            .max_duration_minutes
            .and_then(|m| checks.check("maxDurationMinutes", MaxDurationMinutes::new(m)));
        let max_assets = self
            .max_assets
            .and_then(|m| checks.check("maxAssets", MaxAssets::new(m)));
        ScanConstraints {
            max_duration_minutes,
            not_before: timestamp(checks, "notBefore", self.not_before),
            not_after: timestamp(checks, "notAfter", self.not_after),
            max_assets,
        }
    }
}

/// Request a scan; it is queued until an agent of the fleet claims it.
#[utoipa::path(post, path = "/tenant/scans", tag = "scans", request_body = RequestScanBody, security(("bearer" = [])),
    responses((status = 202, description = "Queued", body = ScanView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "Unsupported scenario or infeasible constraints (the field is named)", body = ErrorBody)))]
pub async fn request_scan(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    Body(body): Body<RequestScanBody>,
) -> Result<HttpResponse, ApiError> {
    let mut checks = Checks::default();
    let fleet = checks.id("fleetId", &body.fleet_id, FleetId::parse);
    let scenario = checks.require_with(scenario(&body.scenario));
    let target = checks.require_with(super::target(body.target.as_ref()));
    let constraints = body
        .constraints
        .unwrap_or_default()
        .into_domain(&mut checks);
    let (fleet, scenario, target) = checks.finish_with((fleet, scenario, target))?;
    let scan = svc::request_scan(
        &state.deps,
        &caller.actor,
        fleet,
        scenario,
        constraints,
        target,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(scan_view(&state, &caller, scan).await?))
}

/// Filters of `GET /tenant/scans`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ScanParams {
    /// Only this fleet's scans.
    pub fleet_id: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only this scenario.
    pub scenario: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// List scans in the caller's environments, newest first.
#[utoipa::path(get, path = "/tenant/scans", tag = "scans", params(ScanParams), security(("bearer" = [])),
    responses((status = 200, body = List<ScanView>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_scans(
    state: web::Data<AppState>,
    caller: Caller,
    params: web::Query<ScanParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let page = ListParams {
        limit: p.limit,
        cursor: p.cursor,
    }
    .page()?;
    let mut checks = Checks::default();
    let fleet = p
        .fleet_id
        .map(|raw| checks.id("fleetId", &raw, FleetId::parse));
    let status = p
        .status
        .and_then(|s| checks.check("status", ScanStatus::parse(&s)));
    let scenario = p.scenario.map(|s| checks.require_with(scenario(&s)));
    let (fleet, scenario) = checks.finish_with((fleet, scenario))?;
    let filter = ScanFilter {
        fleet,
        status,
        scenario,
        environments: None,
    };
    let page = svc::list_scans(&state.deps, &caller.actor, filter, page).await?;
    let progress = svc::progress_of(&state.deps, &caller.actor, &page.items).await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, |scan| {
        let p = progress.get(&scan.id);
        ScanView::from(scan).with_progress(p)
    })))
}

/// Read a scan.
#[utoipa::path(get, path = "/tenant/scans/{scan_id}", tag = "scans", security(("bearer" = [])),
    params(("scan_id" = String, Path, description = "Scan id")),
    responses((status = 200, body = ScanView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_scan(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, ScanId::parse)?;
    let scan = svc::get_scan(&state.deps, &caller.actor, id).await?;
    Ok(HttpResponse::Ok().json(scan_view(&state, &caller, scan).await?))
}

/// The view of `scan` with its progress.
async fn scan_view(
    state: &AppState,
    caller: &Caller<impl Needs>,
    scan: fleetpass_domain::scan::Scan,
) -> Result<ScanView, ApiError> {
    let progress =
        svc::progress_of(&state.deps, &caller.actor, std::slice::from_ref(&scan)).await?;
    let p = progress.get(&scan.id);
    Ok(ScanView::from(scan).with_progress(p))
}

/// Filters of `GET /tenant/scans/{scan_id}/parts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PartParams {
    /// Only parts in this status (`queued`, `running`, `completed`, `failed`,
    /// `cancelled`): a completed scan's failed parts are `status=failed`.
    pub status: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// List the parts of a fan-out scan (one per targeted agent), newest agent first.
#[utoipa::path(get, path = "/tenant/scans/{scan_id}/parts", tag = "scans", security(("bearer" = [])),
    params(("scan_id" = String, Path, description = "Scan id"), PartParams),
    responses((status = 200, body = List<ScanPartView>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_parts(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    params: web::Query<PartParams>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, ScanId::parse)?;
    let p = params.into_inner();
    let page = ListParams {
        limit: p.limit,
        cursor: p.cursor,
    }
    .page()?;
    let mut checks = Checks::default();
    let status = p
        .status
        .and_then(|s| checks.check("status", PartStatus::parse(&s)));
    checks.finish()?;
    let page = svc::list_parts(&state.deps, &caller.actor, id, status, page).await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, ScanPartView::from)))
}

/// Cancel a queued or running scan: it becomes `cancelled`, its open parts with it, its
/// agents' results are refused (409) and no artifacts are made.
#[utoipa::path(post, path = "/tenant/scans/{scan_id}/cancel", tag = "scans", security(("bearer" = [])),
    params(("scan_id" = String, Path, description = "Scan id")),
    responses((status = 200, description = "Cancelled", body = ScanView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The scan has ended", body = ErrorBody)))]
pub async fn cancel_scan(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, ScanId::parse)?;
    let scan = svc::cancel(&state.deps, &caller.actor, id).await?;
    Ok(HttpResponse::Ok().json(scan_view(&state, &caller, scan).await?))
}

async fn artifacts(
    state: &AppState,
    caller: &Caller<impl Needs>,
    id: &str,
) -> Result<ScanArtifacts, ApiError> {
    let id = path_id(id, ScanId::parse)?;
    Ok(svc::get_artifacts(&state.deps, &caller.actor, id).await?.1)
}

/// Renders one artifact of a completed scan, the same way for tenants and share links.
pub fn artifact_response(artifact: Artifact, scan: ScanId, a: &ScanArtifacts) -> HttpResponse {
    match artifact {
        Artifact::Report => HttpResponse::Ok()
            .json(serde_json::json!({"scanId": scan.to_string(), "report": a.report})),
        // The bundle's bytes go out exactly as hashed, embedded verbatim, so the
        // `bundle` member re-serialized compactly hashes to `bundleSha256`.
        Artifact::Bundle => HttpResponse::Ok()
            .content_type("application/json")
            .insert_header(("X-Bundle-Sha256", a.bundle_sha256.as_str()))
            .body(format!(
                "{{\"scanId\":\"{scan}\",\"bundleSha256\":\"{}\",\"bundle\":{}}}",
                a.bundle_sha256, a.bundle_json
            )),
        Artifact::Passport => HttpResponse::Ok().json(serde_json::json!({
            "scanId": scan.to_string(),
            "passport": a.passport,
            "format": "JWS compact serialization (EdDSA / Ed25519)",
            "verifyWith": "/.well-known/jwks.json",
        })),
    }
}

/// The report of a completed scan: counts and top findings.
#[utoipa::path(get, path = "/tenant/scans/{scan_id}/report", tag = "scans", security(("bearer" = [])),
    params(("scan_id" = String, Path, description = "Scan id")),
    responses((status = 200, description = "`{scanId, report: {counts, topFindings}}`"), (status = 404, body = ErrorBody),
        (status = 409, description = "Not completed", body = ErrorBody)))]
pub async fn report(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let a = artifacts(&state, &caller, &id).await?;
    Ok(artifact_response(
        Artifact::Report,
        path_id(&id, ScanId::parse)?,
        &a,
    ))
}

/// The bundle of a completed scan: every asset and finding, with its SHA-256.
#[utoipa::path(get, path = "/tenant/scans/{scan_id}/bundle", tag = "scans", security(("bearer" = [])),
    params(("scan_id" = String, Path, description = "Scan id")),
    responses((status = 200, description = "`{scanId, bundleSha256, bundle: {assets, findings}}`; `bundle` is byte for byte what was hashed"),
        (status = 404, body = ErrorBody), (status = 409, description = "Not completed", body = ErrorBody)))]
pub async fn bundle(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let a = artifacts(&state, &caller, &id).await?;
    Ok(artifact_response(
        Artifact::Bundle,
        path_id(&id, ScanId::parse)?,
        &a,
    ))
}

/// The passport of a completed scan: a JWS signed by the keys at `/.well-known/jwks.json`.
#[utoipa::path(get, path = "/tenant/scans/{scan_id}/passport", tag = "scans", security(("bearer" = [])),
    params(("scan_id" = String, Path, description = "Scan id")),
    responses((status = 200, description = "`{scanId, passport}`"), (status = 404, body = ErrorBody),
        (status = 409, description = "Not completed", body = ErrorBody)))]
pub async fn passport(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let a = artifacts(&state, &caller, &id).await?;
    Ok(artifact_response(
        Artifact::Passport,
        path_id(&id, ScanId::parse)?,
        &a,
    ))
}

/// Body of a share-link creation (seed 001).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateShareBody {
    /// Link TTL in hours (1-720, default 168).
    #[schema(minimum = 1, maximum = 720)]
    pub expires_hours: Option<i64>,
    /// Human-readable link label (at most 200 characters).
    #[schema(example = "Auditor handoff")]
    pub label: Option<String>,
    /// `report`, `bundle` or `passport` (default; the full hand-off).
    #[schema(example = "passport")]
    pub scope: Option<String>,
    /// 1-10000 accesses; unlimited when absent.
    pub max_accesses: Option<i64>,
}

async fn create_share(
    state: &AppState,
    caller: &Caller<impl Needs>,
    scan: &str,
    body: Result<Body<CreateShareBody>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let scan = path_id(scan, ScanId::parse)?;
    let body = body_in_scope(state, caller, PathTarget::Scan(scan), body).await?;
    let mut checks = Checks::default();
    let ttl = checks.require(
        "expiresHours",
        body.expires_hours
            .map_or(Ok(ShareTtlHours::default_ttl()), ShareTtlHours::new),
    );
    let label = body
        .label
        .and_then(|l| checks.check("label", ShareLabel::new(&l)));
    let scope = checks.require(
        "scope",
        body.scope
            .map_or(Ok(Artifact::DEFAULT_SHARE_SCOPE), |s| Artifact::parse(&s)),
    );
    let max_accesses = body
        .max_accesses
        .and_then(|m| checks.check("maxAccesses", MaxAccesses::new(m)));
    let (ttl, scope) = checks.finish_with((ttl, scope))?;
    let issued = shares::create_share_link(
        &state.deps,
        &caller.actor,
        scan,
        NewShare {
            ttl,
            label,
            scope,
            max_accesses,
        },
    )
    .await?;
    let token = issued.secret.expose().to_owned();
    let l = issued.link;
    Ok(
        super::created(format!("/tenant/share-links/{}", l.id)).json(CreatedShareView {
            url: format!("{}/share/{token}", state.config.public_url),
            token,
            id: l.id.to_string(),
            scope: l.scope.as_str().to_owned(),
            label: l.label.map(|x| x.to_string()),
            max_accesses: l.max_accesses.map(|m| m.get()),
            expires_at: ts(l.expires_at),
            created_at: ts(l.created_at),
        }),
    )
}

/// Create a share link for a completed scan (canonical route).
#[utoipa::path(post, path = "/tenant/scans/{scan_id}/share-links", tag = "share links", request_body = CreateShareBody,
    security(("bearer" = [])), params(("scan_id" = String, Path, description = "Scan id")),
    responses((status = 201, body = CreatedShareView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Scan not completed", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_share_link(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    scan: web::Path<String>,
    body: Result<Body<CreateShareBody>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    create_share(&state, &caller, &scan, body).await
}

/// Backward-compatible alias for creating passport share links (deprecated; use
/// `/share-links`).
#[utoipa::path(post, path = "/tenant/scans/{scan_id}/share", tag = "share links", request_body = CreateShareBody,
    security(("bearer" = [])), params(("scan_id" = String, Path, description = "Scan id")),
    responses((status = 201, description = "Created; `Deprecation` and `Link: rel=\"successor-version\"` headers", body = CreatedShareView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_share_alias(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    scan: web::Path<String>,
    body: Result<Body<CreateShareBody>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let mut res = create_share(&state, &caller, &scan, body).await?;
    let successor = format!(
        "</tenant/scans/{}/share-links>; rel=\"successor-version\"",
        scan.as_str()
    );
    let headers = res.headers_mut();
    headers.insert(
        header::HeaderName::from_static("deprecation"),
        header::HeaderValue::from_static("true"),
    );
    if let Ok(link) = header::HeaderValue::from_str(&successor) {
        headers.insert(header::LINK, link);
    }
    Ok(res)
}

/// List a scan's share links (no tokens), with access counts.
#[utoipa::path(get, path = "/tenant/scans/{scan_id}/share-links", tag = "share links", security(("bearer" = [])),
    params(ListParams, ("scan_id" = String, Path, description = "Scan id")),
    responses((status = 200, body = List<ShareLinkView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_share_links(
    state: web::Data<AppState>,
    caller: Caller,
    scan: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let scan = path_id(&scan, ScanId::parse)?;
    let page = shares::list_share_links(&state.deps, &caller.actor, scan, params.page()?).await?;
    let now = state.deps.now();
    Ok(HttpResponse::Ok().json(List::from_page(page, |l| ShareLinkView::new(l, now))))
}

/// Revoke a share link, effective at once.
#[utoipa::path(delete, path = "/tenant/share-links/{link_id}", tag = "share links", security(("bearer" = [])),
    params(("link_id" = String, Path, description = "Share link id")),
    responses((status = 204, description = "Revoked"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_share_link(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, ShareLinkId::parse)?;
    shares::revoke_share_link(&state.deps, &caller.actor, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

//! `/agent/*` and the JWKS: what agents call. Enrollment and token exchange are public
//! (the enrollment token or the agent secret is the credential); the rest takes the
//! agent's access token.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use fleetpass_domain::fleet::{AgentVersion, Hostname, Platform};
use fleetpass_domain::ids::{AgentId, ScanId};
use fleetpass_domain::label::Labels;
use fleetpass_domain::scan::ScanResults;
use fleetpass_ports::service::agents::{self as svc, Enrollment};
use fleetpass_ports::service::scans;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Checks, route};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AgentCaller, Body, BodyLimit, ClientAddr, bearer_token, path_id, read_json};
use crate::guard::Class;
use crate::views::{AgentView, ScanView, ts};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(route("/agent/enroll", Class::Public).post(enroll))
        .service(route("/agent/token", Class::Public).post(token))
        .service(route("/agent/heartbeat", Class::Agent).post(heartbeat))
        .service(route("/agent/jobs/claim", Class::Agent).post(claim))
        .service(
            route("/agent/scans/{scan_id}/results", Class::Agent)
                .app_data(BodyLimit(RESULTS_LIMIT))
                .app_data(web::PayloadConfig::new(RESULTS_LIMIT))
                .post(submit_results),
        )
        .service(route("/.well-known/jwks.json", Class::Open).get(jwks));
}

/// Body of `POST /agent/enroll`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollBody {
    /// The enrollment token (`fpe_…`).
    pub enrollment_token: String,
    /// The agent's host name, 1-253 characters.
    pub hostname: String,
    /// The agent's platform, 1-64 characters.
    pub platform: String,
    /// The agent's version, 1-64 characters.
    pub agent_version: Option<String>,
    /// Labels the agent gives itself (at most 32; keys `a-z0-9._-/`, values
    /// `A-Za-z0-9._-`, 1-63 characters each); the enrollment token's labels win on the
    /// same key.
    #[schema(example = json!({"role": "db"}))]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A new agent's credentials, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrolledView {
    /// The agent's id.
    pub agent_id: String,
    /// Its fleet.
    pub fleet_id: String,
    /// Its long-lived secret (`fpa_…`): store it; it is never shown again.
    pub agent_secret: String,
    /// A first access token (a JWT, 15 minutes).
    pub access_token: String,
    /// When the access token expires.
    #[schema(format = DateTime)]
    pub access_token_expires_at: String,
}

/// Enroll an agent with an enrollment token.
#[utoipa::path(post, path = "/agent/enroll", tag = "agent", request_body = EnrollBody,
    responses((status = 201, body = EnrolledView),
        (status = 401, description = "Unknown, expired, revoked or used-up enrollment token (the message says which)", body = ErrorBody),
        (status = 403, description = "FORBIDDEN_SCOPE: the enrollment token's allowedCidrs do not include this address (nothing is used up)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn enroll(
    state: web::Data<AppState>,
    client: ClientAddr,
    Body(body): Body<EnrollBody>,
) -> Result<HttpResponse, ApiError> {
    let mut checks = Checks::default();
    let hostname = checks.require("hostname", Hostname::new(&body.hostname));
    let platform = checks.require("platform", Platform::new(&body.platform));
    let version = body
        .agent_version
        .and_then(|v| checks.check("agentVersion", AgentVersion::new(&v)));
    let labels = checks.require_with(
        body.labels
            .as_ref()
            .map_or(Ok(Labels::none()), |l| super::labels("labels", l)),
    );
    let (hostname, platform, labels) = checks.finish_with((hostname, platform, labels))?;
    let report = Enrollment {
        hostname,
        platform,
        agent_version: version,
        labels,
    };
    let enrolled = svc::enroll(
        &state.deps,
        &state.keys,
        &body.enrollment_token,
        report,
        client.0,
    )
    .await?;
    let location = format!("/tenant/discovery/agents/{}", enrolled.agent.id);
    Ok(super::created(location).json(EnrolledView {
        agent_id: enrolled.agent.id.to_string(),
        fleet_id: enrolled.agent.fleet_id.to_string(),
        agent_secret: enrolled.secret.expose().to_owned(),
        access_token: enrolled.access.token,
        access_token_expires_at: ts(enrolled.access.expires_at),
    }))
}

/// Body of `POST /agent/token`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenBody {
    /// The agent's id.
    pub agent_id: String,
    /// The agent's secret (`fpa_…`).
    pub agent_secret: String,
}

/// A fresh access token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessTokenView {
    /// The JWT (EdDSA, `kid` in the header; verify with `/.well-known/jwks.json`).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// When it expires (15 minutes from now).
    #[schema(format = DateTime)]
    pub access_token_expires_at: String,
}

/// Exchange an agent's id and secret for a 15-minute access token.
#[utoipa::path(post, path = "/agent/token", tag = "agent", request_body = TokenBody,
    responses((status = 200, body = AccessTokenView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn token(
    state: web::Data<AppState>,
    Body(body): Body<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    // An unknown id is an authentication failure like a wrong secret: no hint either way.
    let agent = AgentId::parse(&body.agent_id)
        .ok_or_else(|| ApiError::unauthorized("invalid agent credentials"))?;
    let access = svc::exchange(&state.deps, &state.keys, agent, &body.agent_secret).await?;
    Ok(HttpResponse::Ok().json(AccessTokenView {
        access_token: access.token,
        token_type: "Bearer",
        access_token_expires_at: ts(access.expires_at),
    }))
}

/// Body of `POST /agent/heartbeat`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatBody {
    /// The agent's current version, 1-64 characters.
    pub agent_version: Option<String>,
}

/// Report that the agent is alive (and its version).
#[utoipa::path(post, path = "/agent/heartbeat", tag = "agent", request_body = HeartbeatBody, security(("agent" = [])),
    responses((status = 200, body = AgentView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn heartbeat(
    state: web::Data<AppState>,
    AgentCaller(agent): AgentCaller,
    Body(body): Body<HeartbeatBody>,
) -> Result<HttpResponse, ApiError> {
    let version = body
        .agent_version
        .map(|v| AgentVersion::new(&v))
        .transpose()
        .map_err(|e| ApiError::invalid("agentVersion", &e))?;
    let agent = svc::heartbeat(&state.deps, &agent, version).await?;
    Ok(HttpResponse::Ok().json(AgentView::from(agent)))
}

/// The largest `wait` a check-in may ask for, in seconds.
pub const MAX_WAIT_PARAM: u32 = 3600;

/// Parameters of `POST /agent/jobs/claim`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClaimParams {
    /// Seconds to wait for a scan when none is claimable now (a long-poll), 0-3600;
    /// default 0 (answer at once). The server holds a check-in at most its own cap
    /// (`FLEETPASS_MAX_POLL_WAIT`, 300 s by default), ends it 10 s before the access
    /// token expires, and shortens each wait by up to a tenth at random.
    #[param(value_type = Option<u32>)]
    pub wait: Option<String>,
}

/// Claim the oldest claimable scan of the agent's fleet: 200 with the scan, or 204 when
/// there is none. Two agents never claim the same scan. With `?wait=SECONDS` the
/// check-in is a long-poll: it answers 200 as soon as a scan of the fleet becomes
/// claimable, 204 when the wait ends (or the server is stopping), 401 when the agent is
/// revoked meanwhile, and 503 with `Retry-After` when this server holds its limit of
/// waiting check-ins. Held check-ins mark the agent seen, so an agent that keeps one
/// open needs no heartbeat to stay present.
#[utoipa::path(post, path = "/agent/jobs/claim", tag = "agent", security(("agent" = [])),
    params(ClaimParams),
    responses((status = 200, description = "The claimed scan, now running", body = ScanView),
        (status = 204, description = "No claimable scan (within the wait)"), (status = 401, body = ErrorBody),
        (status = 422, description = "`wait` is not a number of seconds from 0 to 3600", body = ErrorBody),
        (status = 503, description = "This server holds its limit of waiting check-ins, or the database is unreachable: retry after `Retry-After`", body = ErrorBody)))]
pub async fn claim(
    state: web::Data<AppState>,
    req: HttpRequest,
    AgentCaller(agent): AgentCaller,
    params: web::Query<ClaimParams>,
) -> Result<HttpResponse, ApiError> {
    let requested = match params.into_inner().wait {
        None => 0,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|w| *w <= MAX_WAIT_PARAM)
            .ok_or_else(|| {
                ApiError::new(
                    crate::error::ErrorCode::ValidationError,
                    "wait must be a whole number of seconds from 0 to 3600",
                )
                .field("wait")
                .hint("Ask for at most 3600 seconds; the server may hold the check-in for less.")
            })?,
    };
    let wait = if requested == 0 {
        std::time::Duration::ZERO
    } else {
        // The guard verified this token; its expiry bounds the wait.
        let expires_at = match bearer_token(&req) {
            Some(token) => state.keys.agent_token_expires_at(&token).await.ok(),
            None => None,
        };
        let now = state.deps.now();
        let token_left = expires_at
            .and_then(|at| std::time::Duration::try_from(at - now).ok())
            .unwrap_or_default();
        let random = state.deps.secrets.random_32();
        scans::wait_for(
            std::time::Duration::from_secs(requested.into()),
            state.config.max_poll_wait,
            token_left,
            u32::from_be_bytes([random[0], random[1], random[2], random[3]]),
        )
    };
    Ok(match scans::check_in(&state.deps, &agent, wait).await? {
        Some(scan) => HttpResponse::Ok().json(ScanView::from(scan)),
        None => HttpResponse::NoContent().finish(),
    })
}

/// The largest result set an agent may send (16 MiB).
pub const RESULTS_LIMIT: usize = 16 * 1024 * 1024;

/// A completed scan, as its agent sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletedView {
    /// The scan.
    pub scan_id: String,
    /// Always `completed`.
    pub status: String,
    /// When it completed.
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

/// Send the results of a claimed scan: `{assets: [...], findings: [...]}`, at most
/// 100 000 assets and 16 MiB.
#[utoipa::path(post, path = "/agent/scans/{scan_id}/results", tag = "agent", security(("agent" = [])),
    request_body(content = Object, description = "`{assets: [{hostname, ip, os, openPorts, software: [{name, version}]}], findings: [{severity, title, assetHostname?, detail?}]}`"),
    params(("scan_id" = String, Path, description = "Scan id")),
    responses((status = 200, body = CompletedView), (status = 401, body = ErrorBody),
        (status = 404, description = "Not a scan this agent claimed", body = ErrorBody),
        (status = 409, description = "The scan is no longer running", body = ErrorBody),
        (status = 413, description = "Over 16 MiB", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn submit_results(
    state: web::Data<AppState>,
    AgentCaller(agent): AgentCaller,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, ScanId::parse)?;
    // Up to 16 MiB for a scan of someone else's is refused before a byte of it is read.
    let running = scans::running_scan_of(&state.deps, &agent, id).await?;
    let results: ScanResults = read_json(&req, payload.into_inner()).await?;
    let scan = scans::submit_results(&state.deps, &state.keys, &agent, running, results).await?;
    Ok(HttpResponse::Ok().json(CompletedView {
        scan_id: scan.id.to_string(),
        status: scan.status.as_str().to_owned(),
        completed_at: scan.finished_at.map(ts),
    }))
}

/// The public keys that verify access tokens (and passports), as a JWKS.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "agent",
    responses((status = 200, description = "JSON Web Key Set (Ed25519 keys, `kid` per key)")))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.keys.jwks())
}

//! `/tenant/schedules`: repeated scan requests (PostgreSQL persistence only; every call
//! is 503 in memory mode).

use actix_web::{HttpResponse, web};
use fleetpass_domain::ids::{FleetId, ScheduleId};
use fleetpass_domain::scan::{MaxAssets, MaxDurationMinutes};
use fleetpass_domain::schedule::{IntervalMinutes, Schedule};
use fleetpass_ports::service::PathTarget;
use fleetpass_ports::service::schedules::{self as svc, SchedulePatch, ScheduleSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Checks, SERVER_FIELDS, body_in_scope, present, refuse_other_fields, route, scenario};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, Caller, ListParams, Operate, path_id};
use crate::guard::Class;
use crate::views::{List, ts};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        route("/tenant/schedules", Class::Tenant)
            .get(list_schedules)
            .post(create_schedule),
    )
    .service(
        route("/tenant/schedules/{schedule_id}", Class::Tenant)
            .get(get_schedule)
            .patch(update_schedule)
            .delete(delete_schedule),
    );
}

/// The per-scan limits of a schedule. `notBefore`/`notAfter` are refused: fixed
/// instants make no sense for a repeated scan.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleConstraints {
    /// 1-1440, at least the scenario's minimum.
    pub max_duration_minutes: Option<i64>,
    /// 1-100000.
    pub max_assets: Option<i64>,
}

/// Body of `POST /tenant/schedules`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateScheduleBody {
    /// The fleet whose scans it requests.
    pub fleet_id: String,
    /// `inventory`, `ports`, `software` or `compliance`.
    #[schema(example = "inventory")]
    pub scenario: String,
    /// Per-scan limits (`notBefore`/`notAfter` make no sense for a repeated scan).
    pub constraints: Option<ScheduleConstraints>,
    /// 15-10080 minutes.
    #[schema(minimum = 15, maximum = 10080)]
    pub interval_minutes: i64,
    /// Whether it runs (default true).
    pub enabled: Option<bool>,
}

/// A schedule.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    /// Its id.
    pub schedule_id: String,
    /// The fleet.
    pub fleet_id: String,
    /// The fleet's environment.
    pub environment_id: String,
    /// What each scan looks for.
    pub scenario: String,
    /// Per-scan limits.
    pub constraints: ScheduleConstraints,
    /// How often.
    pub interval_minutes: u32,
    /// Whether it runs.
    pub enabled: bool,
    /// When it next enqueues a scan.
    #[schema(format = DateTime)]
    pub next_run_at: String,
    /// When it last did.
    #[schema(format = DateTime)]
    pub last_run_at: Option<String>,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<Schedule> for ScheduleView {
    fn from(s: Schedule) -> Self {
        Self {
            schedule_id: s.id.to_string(),
            fleet_id: s.fleet_id.to_string(),
            environment_id: s.environment_id.to_string(),
            scenario: s.scenario.as_str().to_owned(),
            constraints: ScheduleConstraints {
                max_duration_minutes: s.max_duration_minutes.map(|m| i64::from(m.get())),
                max_assets: s.max_assets.map(|m| i64::from(m.get())),
            },
            interval_minutes: s.interval.get(),
            enabled: s.enabled,
            next_run_at: ts(s.next_run_at),
            last_run_at: s.last_run_at.map(ts),
            created_at: ts(s.created_at),
        }
    }
}

/// Create a schedule; its first scan is enqueued within seconds.
#[utoipa::path(post, path = "/tenant/schedules", tag = "schedules", request_body = CreateScheduleBody,
    security(("bearer" = [])),
    responses((status = 201, body = ScheduleView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "Schedules require Postgres persistence", body = ErrorBody)))]
pub async fn create_schedule(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    Body(body): Body<CreateScheduleBody>,
) -> Result<HttpResponse, ApiError> {
    svc::require_persistence(&state.deps)?;
    let mut checks = Checks::default();
    let fleet = checks.id("fleetId", &body.fleet_id, FleetId::parse);
    let scenario = checks.require_with(scenario(&body.scenario));
    let limits = body.constraints.unwrap_or_default();
    let max_duration_minutes = limits
        .max_duration_minutes
        .and_then(|m| checks.check("maxDurationMinutes", MaxDurationMinutes::new(m)));
    let max_assets = limits
        .max_assets
        .and_then(|m| checks.check("maxAssets", MaxAssets::new(m)));
    let interval = checks.require(
        "intervalMinutes",
        IntervalMinutes::new(body.interval_minutes),
    );
    let (fleet, scenario, interval) = checks.finish_with((fleet, scenario, interval))?;
    let spec = ScheduleSpec {
        scenario,
        max_duration_minutes,
        max_assets,
        interval,
        enabled: body.enabled.unwrap_or(Schedule::ENABLED_BY_DEFAULT),
    };
    let schedule = svc::create_schedule(&state.deps, &caller.actor, fleet, spec).await?;
    let location = format!("/tenant/schedules/{}", schedule.id);
    Ok(super::created(location).json(ScheduleView::from(schedule)))
}

/// List schedules in the caller's environments.
#[utoipa::path(get, path = "/tenant/schedules", tag = "schedules", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = List<ScheduleView>), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_schedules(
    state: web::Data<AppState>,
    caller: Caller,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = svc::list_schedules(&state.deps, &caller.actor, params.page()?).await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, ScheduleView::from)))
}

/// Read a schedule.
#[utoipa::path(get, path = "/tenant/schedules/{schedule_id}", tag = "schedules", security(("bearer" = [])),
    params(("schedule_id" = String, Path, description = "Schedule id")),
    responses((status = 200, body = ScheduleView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_schedule(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Persistence first, so memory mode is 503 for every call, even a malformed id.
    svc::require_persistence(&state.deps)?;
    let id = path_id(&id, ScheduleId::parse)?;
    Ok(HttpResponse::Ok().json(ScheduleView::from(
        svc::get_schedule(&state.deps, &caller.actor, id).await?,
    )))
}

/// Body of `PATCH /tenant/schedules/{schedule_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchScheduleBody {
    /// A new scenario.
    pub scenario: Option<String>,
    /// New per-scan limits (each `null` clears it).
    pub constraints: Option<PatchConstraints>,
    /// A new interval, 15-10080 minutes.
    pub interval_minutes: Option<i64>,
    /// Pause (`false`) or resume (`true`).
    pub enabled: Option<bool>,
    /// Any other field is refused (`fleetId` as READONLY_FIELD).
    #[serde(flatten)]
    #[schema(ignore)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// Per-scan limits in a PATCH: absent leaves alone, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchConstraints {
    /// 1-1440.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub max_duration_minutes: Option<Option<i64>>,
    /// 1-100000.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub max_assets: Option<Option<i64>>,
}

const SCHEDULE_READONLY: [(&str, &str); 4] = [
    SERVER_FIELDS[0],
    SERVER_FIELDS[1],
    (
        "fleetId",
        "A schedule stays with its fleet: create a schedule for the other fleet and delete this one.",
    ),
    ("environmentId", "A schedule's environment is its fleet's."),
];

/// Change a schedule's scenario, limits, interval, or pause/resume it.
#[utoipa::path(patch, path = "/tenant/schedules/{schedule_id}", tag = "schedules", request_body = PatchScheduleBody,
    security(("bearer" = [])), params(("schedule_id" = String, Path, description = "Schedule id")),
    responses((status = 200, body = ScheduleView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn update_schedule(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    id: web::Path<String>,
    body: Result<Body<PatchScheduleBody>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    svc::require_persistence(&state.deps)?;
    let id = path_id(&id, ScheduleId::parse)?;
    let body = body_in_scope(&state, &caller, PathTarget::Schedule(id), body).await?;
    refuse_other_fields(&body.rest, &SCHEDULE_READONLY)?;
    let mut checks = Checks::default();
    let limits = body.constraints.unwrap_or_default();
    let patch = SchedulePatch {
        scenario: body.scenario.and_then(|s| checks.check_with(scenario(&s))),
        max_duration_minutes: limits.max_duration_minutes.map(|m| {
            m.and_then(|m| checks.check("maxDurationMinutes", MaxDurationMinutes::new(m)))
        }),
        max_assets: limits
            .max_assets
            .map(|m| m.and_then(|m| checks.check("maxAssets", MaxAssets::new(m)))),
        interval: body
            .interval_minutes
            .and_then(|i| checks.check("intervalMinutes", IntervalMinutes::new(i))),
        enabled: body.enabled,
    };
    checks.finish()?;
    let schedule = svc::update_schedule(&state.deps, &caller.actor, id, patch).await?;
    Ok(HttpResponse::Ok().json(ScheduleView::from(schedule)))
}

/// Delete a schedule (the scans it enqueued stay).
#[utoipa::path(delete, path = "/tenant/schedules/{schedule_id}", tag = "schedules", security(("bearer" = [])),
    params(("schedule_id" = String, Path, description = "Schedule id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_schedule(
    state: web::Data<AppState>,
    caller: Caller<Operate>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    svc::require_persistence(&state.deps)?;
    let id = path_id(&id, ScheduleId::parse)?;
    svc::delete_schedule(&state.deps, &caller.actor, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

//! `/api/admin/token-policy`: the tenant's token policy, the longest lifetimes of new
//! API tokens and enrollment tokens (issue 21). Any admin reads it; setting it needs an
//! admin whose token covers all environments.

use actix_web::{HttpResponse, web};
use fleetpass_domain::fleet::EnrollmentTtlHours;
use fleetpass_domain::policy::TokenPolicy;
use fleetpass_domain::token::TokenTtlDays;
use fleetpass_domain::value::ValueError;
use fleetpass_ports::service::policy as svc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Checks, present, route};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Administer, Body, Caller, ManageEnvironments};
use crate::guard::Class;
use crate::views::TokenPolicyView;

/// The path of the policy.
pub const PATH: &str = "/api/admin/token-policy";

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        route(PATH, Class::Tenant)
            .get(get_token_policy)
            .put(set_token_policy),
    );
}

/// Body of `PUT /api/admin/token-policy`: the whole policy. Both fields are required, so
/// that setting one maximum never lifts the other by leaving it out; `null` is no
/// maximum.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenPolicyBody {
    /// The longest `expiresInDays` of a new API token, 1-365, or `null` for none. Token
    /// creation above it is 422; a rotation caps the token's expiry to now plus this.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, required = true, minimum = 1, maximum = 365)]
    pub max_expires_in_days: Option<Option<i64>>,
    /// The longest `expiresHours` of a new enrollment token, 1-720, or `null` for none.
    /// Issuing above it is 422; a token issued without `expiresHours` (a new fleet's
    /// first, say) gets 72 hours or this, if shorter.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, required = true, minimum = 1, maximum = 720)]
    pub max_enrollment_expires_hours: Option<Option<i64>>,
}

/// One maximum of the body: present (a number in bounds, or `null`).
fn maximum<T>(
    field: &str,
    raw: Option<Option<i64>>,
    parse: fn(i64) -> Result<T, ValueError>,
) -> Result<Option<T>, ApiError> {
    match raw {
        None => Err(ApiError::invalid_message(field, "is required")
            .hint(format!("Send {field}: null for no maximum."))),
        Some(None) => Ok(None),
        Some(Some(n)) => parse(n).map(Some).map_err(|e| ApiError::invalid(field, &e)),
    }
}

impl TokenPolicyBody {
    fn into_domain(self) -> Result<TokenPolicy, ApiError> {
        let mut checks = Checks::default();
        let days = checks.require_with(maximum(
            "maxExpiresInDays",
            self.max_expires_in_days,
            TokenTtlDays::new,
        ));
        let hours = checks.require_with(maximum(
            "maxEnrollmentExpiresHours",
            self.max_enrollment_expires_hours,
            EnrollmentTtlHours::new,
        ));
        let (max_token_days, max_enrollment_hours) = checks.finish_with((days, hours))?;
        Ok(TokenPolicy {
            max_token_days,
            max_enrollment_hours,
        })
    }
}

/// Read the tenant's token policy (any admin).
#[utoipa::path(get, path = "/api/admin/token-policy", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = TokenPolicyView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_token_policy(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
) -> Result<HttpResponse, ApiError> {
    let policy = svc::get_token_policy(&state.deps, &caller.actor).await?;
    Ok(HttpResponse::Ok().json(TokenPolicyView::from(policy)))
}

/// Set the tenant's token policy (needs an all-environments admin). It applies to
/// tokens created, rotated or issued from now on; existing tokens keep their expiry.
#[utoipa::path(put, path = "/api/admin/token-policy", tag = "tokens", request_body = TokenPolicyBody,
    security(("bearer" = [])),
    responses((status = 200, body = TokenPolicyView), (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN_ROLE below admin; FORBIDDEN_SCOPE for an admin scoped to some environments", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn set_token_policy(
    state: web::Data<AppState>,
    caller: Caller<ManageEnvironments>,
    Body(body): Body<TokenPolicyBody>,
) -> Result<HttpResponse, ApiError> {
    let policy = svc::set_token_policy(&state.deps, &caller.actor, body.into_domain()?).await?;
    Ok(HttpResponse::Ok().json(TokenPolicyView::from(policy)))
}

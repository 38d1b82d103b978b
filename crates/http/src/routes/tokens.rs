//! `/api/admin/tokens`: API token administration (seed `002`), and the public
//! leaked-secret revocation endpoint.

use actix_web::{HttpResponse, web};
use fleetpass_domain::identity::{EnvScope, Role, ScopeError};
use fleetpass_domain::ids::{EnvironmentId, PrincipalId, TokenId};
use fleetpass_domain::token::{GraceHours, RateLimitPerMinute, TokenName, TokenTtlDays};
use fleetpass_ports::service::auth;
use fleetpass_ports::service::tokens::{self as svc, NewToken, OwnerRef, TokenPatch};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Checks, SERVER_FIELDS, body_id, present, refuse_other_fields, route};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Administer, Body, Caller, ListParams, path_id};
use crate::guard::Class;
use crate::views::{CreatedTokenView, List, TokenView};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        route("/api/admin/tokens", Class::Tenant)
            .get(list_tokens)
            .post(create_token),
    )
    .service(
        route("/api/admin/tokens/{id}", Class::Tenant)
            .get(get_token)
            .patch(update_token)
            .delete(revoke_token),
    )
    .service(route("/api/admin/tokens/{id}/rotate", Class::Tenant).post(rotate_token))
    .service(route("/api/public/revocations", Class::Public).post(revoke_leaked));
}

/// Body of `POST /api/admin/tokens`, exactly as the API reference (seed 002).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTokenBody {
    /// 1-100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// The user who will own the token (at most one owner field; neither → the calling
    /// token's owner).
    pub owner_user_id: Option<String>,
    /// The service account that will own the token.
    pub owner_service_account_id: Option<String>,
    /// `admin`, `operator` or `viewer`; never above the caller's or the owner's role.
    #[schema(example = "operator")]
    pub role: String,
    /// `true`: every environment; `false`: only `environmentIds`.
    pub all_environments: bool,
    /// Required and non-empty when `allEnvironments` is false; absent or empty otherwise.
    pub environment_ids: Option<Vec<String>>,
    /// Lifetime, 1-365 days.
    #[schema(minimum = 1, maximum = 365)]
    pub expires_in_days: i64,
    /// Requests a minute, 1-100000 (default 300).
    #[schema(minimum = 1, maximum = 100000)]
    pub rate_limit_per_minute: Option<i64>,
    /// The networks the token may be used from: at most 32 IPv4 or IPv6 addresses or
    /// CIDR networks (`10.0.0.0/8`); absent or empty: anywhere. A request from
    /// elsewhere is 403 `FORBIDDEN_SCOPE`.
    #[schema(example = json!(["10.0.0.0/8", "2001:db8::/32"]))]
    pub allowed_cidrs: Option<Vec<String>>,
}

impl CreateTokenBody {
    fn into_domain(self) -> Result<NewToken, ApiError> {
        let mut checks = Checks::default();
        let name = checks.require("name", TokenName::new(&self.name));
        let role = checks.require("role", Role::parse(&self.role));
        let ttl = checks.require("expiresInDays", TokenTtlDays::new(self.expires_in_days));
        let rate_limit = self
            .rate_limit_per_minute
            .map(RateLimitPerMinute::new)
            .transpose();
        let rate_limit = checks.require("rateLimitPerMinute", rate_limit);
        let owner = checks.require_with(
            match (&self.owner_user_id, &self.owner_service_account_id) {
                (Some(_), Some(_)) => Err(ApiError::invalid_message(
                    "ownerServiceAccountId",
                    "cannot be given together with ownerUserId",
                )
                .hint("Name at most one owner.")),
                (Some(raw), None) => {
                    body_id("ownerUserId", raw, PrincipalId::parse).map(OwnerRef::User)
                }
                (None, Some(raw)) => body_id("ownerServiceAccountId", raw, PrincipalId::parse)
                    .map(OwnerRef::ServiceAccount),
                (None, None) => Ok(OwnerRef::Caller),
            },
        );
        let mut ids = Vec::new();
        for raw in self.environment_ids.unwrap_or_default() {
            match EnvironmentId::parse(&raw) {
                Some(id) => ids.push(id),
                None => {
                    checks.push(ApiError::invalid_message(
                        "environmentIds",
                        format!("contains {raw:?}, which is not an environment id"),
                    ));
                    break;
                }
            }
        }
        let scope = checks.require_with(EnvScope::from_wire(self.all_environments, ids).map_err(
            |e| {
                let hint = match e {
                    ScopeError::EmptyList => {
                        "List the environment ids, or set allEnvironments to true."
                    }
                    ScopeError::ListWithAll => {
                        "Leave environmentIds out when allEnvironments is true."
                    }
                };
                ApiError::invalid_message("environmentIds", e.to_string()).hint(hint)
            },
        ));
        let cidrs = checks.require_with(super::allowed_cidrs(self.allowed_cidrs.as_deref()));
        let (name, role, ttl, rate_limit, owner, (scope, allowed_cidrs)) =
            checks.finish_with((name, role, ttl, rate_limit, owner, (scope, cidrs)))?;
        Ok(NewToken {
            name,
            owner,
            role,
            scope,
            ttl,
            rate_limit,
            allowed_cidrs,
        })
    }
}

/// Create an API token (the full token is returned once).
#[utoipa::path(post, path = "/api/admin/tokens", tag = "tokens", request_body = CreateTokenBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; `token` is shown only now", body = CreatedTokenView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The owner was disabled or given a lower role while the token was being created", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_token(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    Body(body): Body<CreateTokenBody>,
) -> Result<HttpResponse, ApiError> {
    let issued = svc::create_token(&state.deps, &caller.actor, body.into_domain()?).await?;
    let location = format!("/api/admin/tokens/{}", issued.token.id);
    let meta = TokenView::new(issued.token, state.deps.now());
    Ok(super::created(location).json(CreatedTokenView {
        meta,
        token: issued.secret.expose().to_owned(),
    }))
}

/// List the tenant's API tokens (no secrets).
#[utoipa::path(get, path = "/api/admin/tokens", tag = "tokens", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = List<TokenView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_tokens(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = svc::list_tokens(&state.deps, &caller.actor, params.page()?).await?;
    let now = state.deps.now();
    Ok(HttpResponse::Ok().json(List::from_page(page, |t| TokenView::new(t, now))))
}

/// Read one API token (no secret).
#[utoipa::path(get, path = "/api/admin/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = TokenView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_token(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, TokenId::parse)?;
    let token = svc::get_token(&state.deps, &caller.actor, id).await?;
    Ok(HttpResponse::Ok().json(TokenView::new(token, state.deps.now())))
}

/// Body of `PATCH /api/admin/tokens/{id}`: only `name`, `rateLimitPerMinute` and
/// `allowedCidrs` change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchTokenBody {
    /// A new name, 1-100 characters.
    pub name: Option<String>,
    /// A new limit, 1-100000; `null` goes back to the default (300).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub rate_limit_per_minute: Option<Option<i64>>,
    /// New networks the token may be used from (replacing the old list); `[]` or
    /// `null` lifts the restriction.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_cidrs: Option<Option<Vec<String>>>,
    /// Any other field is refused (read-only ones as READONLY_FIELD).
    #[serde(flatten)]
    #[schema(ignore)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// How each fixed property of a token *can* change.
const TOKEN_READONLY: [(&str, &str); 12] = [
    SERVER_FIELDS[0],
    SERVER_FIELDS[1],
    (
        "role",
        "role is fixed at creation: create a new token and revoke this one.",
    ),
    (
        "allEnvironments",
        "scope is fixed at creation: create a new token with the scope you need and revoke this one.",
    ),
    (
        "environmentIds",
        "scope is fixed at creation: create a new token with the scope you need and revoke this one.",
    ),
    (
        "expiresInDays",
        "expiry is fixed at creation: create a new token and revoke this one.",
    ),
    (
        "expiresAt",
        "expiry is fixed at creation: create a new token and revoke this one.",
    ),
    (
        "ownerUserId",
        "ownership is fixed at creation: create a new token for the new owner.",
    ),
    (
        "ownerServiceAccountId",
        "ownership is fixed at creation: create a new token for the new owner.",
    ),
    (
        "token",
        "the secret never changes in place: rotate it with POST /api/admin/tokens/{id}/rotate.",
    ),
    (
        "revokedAt",
        "revoke a token with DELETE /api/admin/tokens/{id}.",
    ),
    (
        "status",
        "revoke a token with DELETE /api/admin/tokens/{id}; expiry is fixed at creation.",
    ),
];

/// Rename a token or change its rate limit or networks.
#[utoipa::path(patch, path = "/api/admin/tokens/{id}", tag = "tokens", request_body = PatchTokenBody,
    security(("bearer" = [])), params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = TokenView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, description = "VALIDATION_ERROR or READONLY_FIELD", body = ErrorBody)))]
pub async fn update_token(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    id: web::Path<String>,
    Body(body): Body<PatchTokenBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, TokenId::parse)?;
    refuse_other_fields(&body.rest, &TOKEN_READONLY)?;
    let mut checks = Checks::default();
    let name = body.name.map(|n| checks.check("name", TokenName::new(&n)));
    let limit = body.rate_limit_per_minute.map(|l| {
        checks.check(
            "rateLimitPerMinute",
            l.map(RateLimitPerMinute::new).transpose(),
        )
    });
    let cidrs = body.allowed_cidrs.map(|list| {
        super::allowed_cidrs(list.as_deref())
            .map_err(|e| checks.push(e))
            .ok()
    });
    checks.finish()?;
    let patch = TokenPatch {
        name: name.flatten(),
        rate_limit: limit.flatten(),
        allowed_cidrs: cidrs.flatten(),
    };
    let token = svc::update_token(&state.deps, &caller.actor, id, patch).await?;
    Ok(HttpResponse::Ok().json(TokenView::new(token, state.deps.now())))
}

/// Revoke a token, effective at once. Revoking a revoked token is a no-op.
#[utoipa::path(delete, path = "/api/admin/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, TokenId::parse)?;
    svc::revoke_token(&state.deps, &caller.actor, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `POST /api/admin/tokens/{id}/rotate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateTokenBody {
    /// How long the old secret keeps working, 0-168 hours (default 24).
    #[schema(minimum = 0, maximum = 168)]
    pub grace_hours: Option<i64>,
}

/// Rotate a token: a new secret with the same settings; the old one works until the
/// grace period ends.
#[utoipa::path(post, path = "/api/admin/tokens/{id}/rotate", tag = "tokens", request_body = RotateTokenBody,
    security(("bearer" = [])), params(("id" = String, Path, description = "Token id")),
    responses((status = 201, body = CreatedTokenView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rotate_token(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    id: web::Path<String>,
    Body(body): Body<RotateTokenBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, TokenId::parse)?;
    let grace = body
        .grace_hours
        .map_or(Ok(GraceHours::default()), GraceHours::new)
        .map_err(|e| ApiError::invalid("graceHours", &e))?;
    let issued = svc::rotate_token(&state.deps, &caller.actor, id, grace).await?;
    let location = format!("/api/admin/tokens/{}", issued.token.id);
    let meta = TokenView::new(issued.token, state.deps.now());
    Ok(super::created(location).json(CreatedTokenView {
        meta,
        token: issued.secret.expose().to_owned(),
    }))
}

/// Body of `POST /api/public/revocations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationBody {
    /// A Fleetpass secret of any kind (`fpk_`, `fpe_`, `fps_`, `fpa_`).
    pub token: String,
}

/// Revoke a leaked secret, no credentials needed. The answer is the same whether or not
/// the secret existed.
#[utoipa::path(post, path = "/api/public/revocations", tag = "tokens", request_body = RevocationBody,
    responses((status = 202, description = "Accepted: if the secret existed, it is revoked now"),
        (status = 400, body = ErrorBody), (status = 422, description = "Not a Fleetpass secret", body = ErrorBody)))]
pub async fn revoke_leaked(
    state: web::Data<AppState>,
    Body(body): Body<RevocationBody>,
) -> Result<HttpResponse, ApiError> {
    // The answer is the same whatever was found, so it tells the caller nothing; only a
    // signature-verified partner hears the outcome (`routes::secret_scanning`).
    let _outcome = auth::revoke_leaked(&state.deps, &body.token).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"status": "accepted"})))
}

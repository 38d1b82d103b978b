//! The error contract: one [`ErrorCode`] → status table and the one [`ApiError`] every
//! failure becomes, rendered as the spec's JSON body.
//!
//! Handlers and extractors return `ApiError`; the request-id middleware renders every
//! error response (including actix's own, such as 404 or 413) through
//! [`ApiError::into_response`], so no body leaves without `code`, `message` and
//! `requestId`, and no internal cause ever reaches a client.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use fleetpass_domain::access::Denied;
use fleetpass_domain::fleet::EnrollmentRefusal;
use fleetpass_domain::scan::Constraint;
use fleetpass_domain::value::ValueError;
use fleetpass_ports::Conflict;
use fleetpass_ports::service::{Field, Remedy, ServiceError};
use serde::Serialize;
use utoipa::ToSchema;

/// The stable, machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Bad input: 400 (unparseable), 413 (too large) or 422 (breaks a rule).
    ValidationError,
    /// A PATCH set a field that cannot change.
    ReadonlyField,
    /// No or bad credentials.
    Unauthorized,
    /// Role too low, or wrong platform admin key.
    ForbiddenRole,
    /// Resource or requested scope outside the token's environments.
    ForbiddenScope,
    /// No such resource (or another tenant's).
    NotFound,
    /// Uniqueness or state clash, or an idempotency key in flight.
    Conflict,
    /// An idempotency key reused with a different request.
    IdempotencyKeyReused,
    /// Over a rate limit.
    RateLimited,
    /// Store unreachable or feature not configured.
    ServiceUnavailable,
    /// Anything unexpected.
    Internal,
}

impl ErrorCode {
    /// The status each code answers with. `ValidationError` is 422 unless the error says
    /// otherwise (400 for unparseable bodies, 413 for oversized ones): this is the one
    /// table of the spec.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::ValidationError | Self::ReadonlyField | Self::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::ForbiddenRole | Self::ForbiddenScope => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// One field's problem, for `details` when several fields are wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The error body of every non-2xx response.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Stable, machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// The input field the error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The request id; quote it when reporting a problem.
    pub request_id: String,
    /// Every field problem, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldProblem>,
    /// Seconds to wait before retrying (429, 503).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// The problem type (RFC 9457), where a standard defines one: a 429 from a rate
    /// limit carries [`ProblemType::QuotaExceeded`] as an extension member beside `code`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[schema(example = "https://iana.org/assignments/http-problem-types#quota-exceeded")]
    pub problem_type: Option<&'static str>,
}

/// A problem type (RFC 9457) that a standard defines, sent as `type` beside `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// draft-ietf-httpapi-ratelimit-headers-11: the request went beyond a quota policy.
    QuotaExceeded,
}

impl ProblemType {
    /// The type's URI.
    pub const fn uri(self) -> &'static str {
        match self {
            Self::QuotaExceeded => "https://iana.org/assignments/http-problem-types#quota-exceeded",
        }
    }
}

/// Marks a response that refused a credential; the guard counts it against the
/// address's failed-authentication budget.
#[derive(Debug, Clone, Copy)]
pub struct FailedAuthentication;

/// A failure on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: ErrorCode,
    status: StatusCode,
    message: String,
    field: Option<String>,
    hint: Option<String>,
    details: Vec<FieldProblem>,
    retry_after: Option<u64>,
    // An enum, not the URI: `ApiError` travels in every `Result` and stays small.
    problem_type: Option<ProblemType>,
    failed_authentication: bool,
}

impl ApiError {
    /// An error with the code's own status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status: code.status(),
            message: message.into(),
            field: None,
            hint: None,
            details: Vec::new(),
            retry_after: None,
            problem_type: None,
            failed_authentication: code == ErrorCode::Unauthorized,
        }
    }

    /// Names the field the error is about.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds per-field details.
    pub fn details(mut self, details: Vec<FieldProblem>) -> Self {
        self.details = details;
        self
    }

    /// Sets `Retry-After`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Names the standard problem type of this error (see [`ErrorBody::problem_type`]).
    pub fn problem_type(mut self, problem: ProblemType) -> Self {
        self.problem_type = Some(problem);
        self
    }

    /// Whether the guard counts this refusal as a failed authentication.
    pub fn is_failed_authentication(&self) -> bool {
        self.failed_authentication
    }

    /// Counts this refusal as a failed authentication (the guard throttles those per
    /// address), as every 401 is.
    pub fn counts_as_failed_authentication(mut self) -> Self {
        self.failed_authentication = true;
        self
    }

    /// A 400: the body is not JSON, not an object, or not sent as JSON.
    pub fn bad_request(message: impl Into<String>, hint: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::ValidationError, message).hint(hint);
        e.status = StatusCode::BAD_REQUEST;
        e
    }

    /// A 413: the body is larger than `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        let mut e = Self::new(
            ErrorCode::ValidationError,
            format!("request body is larger than {limit} bytes"),
        )
        .hint("Send a smaller body.");
        e.status = StatusCode::PAYLOAD_TOO_LARGE;
        e
    }

    /// A 422 for one field, from a domain value error.
    pub fn invalid(field: &str, error: &ValueError) -> Self {
        Self::new(ErrorCode::ValidationError, format!("{field} {error}"))
            .field(field)
            .hint(error.hint())
    }

    /// A 422 for one field, with a message read after the field name.
    pub fn invalid_message(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::ValidationError, format!("{field} {message}")).field(field)
    }

    /// A 422 `READONLY_FIELD`.
    pub fn readonly(field: &str, hint: &str) -> Self {
        Self::new(
            ErrorCode::ReadonlyField,
            format!("{field} is read-only and cannot be changed with PATCH"),
        )
        .field(field)
        .hint(hint)
    }

    /// A 404 in the spec's words.
    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such resource")
            .hint("Check the id; resources of other tenants are never visible.")
    }

    /// A 401, with the reason.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message).hint(
            "Send `Authorization: Bearer <token>` or `x-api-key: <token>` with a valid API token.",
        )
    }

    /// A 500 with nothing of the cause: the cause is logged by the caller.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error")
            .hint("Retry with exponential backoff; quote the requestId if it persists.")
    }

    /// The field the error names, if any.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The per-field problems, when there are several.
    pub fn problems(&self) -> &[FieldProblem] {
        &self.details
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Renders the error for the request `request_id`.
    pub fn into_response(self, request_id: &str) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if self.failed_authentication {
            res.extensions_mut().insert(FailedAuthentication);
        }
        if self.code == ErrorCode::Unauthorized {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        res.json(ErrorBody {
            code: self.code,
            message: self.message,
            field: self.field,
            hint: self.hint,
            request_id: request_id.to_owned(),
            details: self.details,
            retry_after_seconds: self.retry_after,
            problem_type: self.problem_type.map(ProblemType::uri),
        })
    }

    /// Maps a response of actix's own making (no `ApiError` inside) to the contract, by
    /// its status: unknown routes, wrong methods, oversized or unreadable bodies.
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::new(ErrorCode::NotFound, "no such route")
                .hint("See /openapi.json for the routes this server offers."),
            StatusCode::METHOD_NOT_ALLOWED => {
                let mut e = Self::new(
                    ErrorCode::ValidationError,
                    "method not allowed on this route",
                )
                .hint("See /openapi.json for the methods this route accepts.");
                e.status = status;
                e
            }
            StatusCode::PAYLOAD_TOO_LARGE => Self::too_large(crate::extract::BODY_LIMIT),
            s if s.is_client_error() => Self::bad_request(
                "the request could not be read",
                "Check the request's syntax.",
            ),
            _ => Self::internal(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

/// Renders without a request id; the request-id middleware re-renders every error with
/// the real one, so this body is only a fallback.
impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.clone().into_response("unknown")
    }
}

/// The wire name of each input a service can find wrong.
pub(crate) const fn wire_field(field: Field) -> &'static str {
    match field {
        Field::Secret => "token",
        Field::Role => "role",
        Field::Environment => "environmentId",
        Field::Environments => "environmentIds",
        Field::OwnerUser => "ownerUserId",
        Field::OwnerServiceAccount => "ownerServiceAccountId",
        Field::Results => "results",
        Field::Target => "target",
        Field::TokenTtl => "expiresInDays",
        Field::EnrollmentTtl => "expiresHours",
        Field::Constraint(Constraint::MaxDuration) => "maxDurationMinutes",
        Field::Constraint(Constraint::NotBefore) => "notBefore",
        Field::Constraint(Constraint::NotAfter) => "notAfter",
        Field::Constraint(Constraint::MaxAssets) => "maxAssets",
    }
}

/// The words of each remedy for refused credentials, with the route that gets new ones.
const fn remedy(remedy: Remedy) -> &'static str {
    match remedy {
        Remedy::EnrollmentTokenAsIssued => {
            "Send the enrollment token exactly as issued (it starts with fpe_)."
        }
        Remedy::Enrollment(EnrollmentRefusal::Unknown) => {
            "Check the token was copied whole; issue a new one with POST /tenant/discovery/fleets/{fleet_id}/enrollment-tokens."
        }
        Remedy::Enrollment(
            EnrollmentRefusal::Expired | EnrollmentRefusal::Revoked | EnrollmentRefusal::UsedUp,
        ) => {
            "Issue a new enrollment token with POST /tenant/discovery/fleets/{fleet_id}/enrollment-tokens."
        }
        Remedy::FreshAccessToken => "Get a fresh access token from POST /agent/token.",
        Remedy::AgentCredentials => {
            "Send the agentId and agentSecret (fpa_…) POST /agent/enroll returned; an agent that lost them must enroll again."
        }
        Remedy::AgentRevoked => {
            "This agent was revoked: its secret and access tokens stopped working at once. To bring the host back, enroll it again with a new enrollment token (fleetpass-agent enroll --force)."
        }
    }
}

/// Where to look, for a field whose rule says no more: the routes that list the values
/// it takes.
const fn field_hint(field: Field) -> Option<&'static str> {
    match field {
        Field::Environment | Field::Environments => {
            Some("List environments with GET /api/admin/environments.")
        }
        _ => None,
    }
}

/// Message and hint of each conflict rule: an exhaustive `match`, so a new rule cannot
/// reach a client without its own words.
pub(crate) fn conflict_words(conflict: Conflict) -> (&'static str, &'static str) {
    match conflict {
        Conflict::TenantName => (
            "a tenant with this name already exists",
            "Pick another name.",
        ),
        Conflict::EnvironmentName => (
            "an environment with this name already exists in this tenant",
            "Pick another name.",
        ),
        // Both block a deletion in either store; the store does not say which one did.
        Conflict::EnvironmentInUse => (
            "the environment still has fleets, or API tokens that are not revoked are scoped to it",
            "Delete its fleets and revoke the tokens scoped to it first.",
        ),
        Conflict::UserEmail => (
            "a user with this email already exists in this tenant",
            "Use another email.",
        ),
        Conflict::TokenOwnerChanged => (
            "the owner was disabled or given a lower role while the token was being created",
            "Read the owner again; create the token with a role the owner holds.",
        ),
        Conflict::ServiceAccountName => (
            "a service account with this name already exists in this tenant",
            "Pick another name.",
        ),
        Conflict::SigningKeyId => (
            "a signing key with this key id already exists",
            "Generate a new key; key ids are never reused.",
        ),
        Conflict::ScanNotRunning => (
            "the scan is not running, so it cannot take results",
            "Claim a new job; this scan was completed, failed or expired.",
        ),
        Conflict::TargetEmpty | Conflict::TargetNotInFleet => (
            "the scan's target does not select agents of the fleet",
            "List the fleet's agents with GET /tenant/discovery/fleets/{fleet_id}/agents.",
        ),
        Conflict::ScanFinished => (
            "the scan has ended (completed, failed, expired or cancelled), so it cannot be cancelled",
            "Nothing to do: an ended scan runs no more.",
        ),
        Conflict::ScanCancelled => (
            "the scan was cancelled, so its results are no longer wanted",
            "Drop this scan's work and claim the next job.",
        ),
        Conflict::ScanNotCompleted => (
            "the scan has not completed, so it has no report",
            "Wait until the scan's status is completed, then retry.",
        ),
        Conflict::TokenNotActive => (
            "the token is revoked or expired",
            "Create a new token instead.",
        ),
        Conflict::PrincipalIsCaller => (
            "this would revoke the token making the request",
            "Use a token owned by another principal.",
        ),
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid {
                field,
                message,
                hint,
            } => {
                let name = wire_field(field);
                let err =
                    Self::new(ErrorCode::ValidationError, format!("{name} {message}")).field(name);
                match hint.or_else(|| field_hint(field).map(str::to_owned)) {
                    Some(h) => err.hint(h),
                    None => err,
                }
            }
            ServiceError::Unauthorized { message, hint } => {
                let e = Self::unauthorized(message);
                match hint {
                    Some(h) => e.hint(remedy(h)),
                    None => e,
                }
            }
            ServiceError::Denied(Denied::Role { needed, has }) => Self::new(
                ErrorCode::ForbiddenRole,
                format!("this action needs the {needed} role; the token has {has}"),
            )
            .hint("Use a token with a higher role; see the RBAC matrix."),
            ServiceError::Denied(Denied::Scope) => Self::new(
                ErrorCode::ForbiddenScope,
                "the resource or requested scope is outside the token's environments",
            )
            .hint("Use a token whose environments include it."),
            ServiceError::OutsideNetwork { credential, client } => {
                let from =
                    client.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
                Self::new(
                    ErrorCode::ForbiddenScope,
                    format!("this {} may not be used from this address", credential.name()),
                )
                .hint(format!(
                    "Its allowedCidrs do not include {from}. Call from one of its networks, or have an admin change the token's allowedCidrs."
                ))
                .counts_as_failed_authentication()
            }
            ServiceError::NotFound => Self::not_found(),
            ServiceError::Conflict { constraint } => {
                let (message, hint) = conflict_words(constraint);
                Self::new(ErrorCode::Conflict, message).hint(hint)
            }
            ServiceError::NotConfigured { message, hint } => {
                Self::new(ErrorCode::ServiceUnavailable, message).hint(hint)
            }
            ServiceError::Busy {
                retry_after_seconds,
            } => Self::new(
                ErrorCode::ServiceUnavailable,
                "this server holds as many waiting check-ins as it is configured for",
            )
            .hint("Retry after the time in Retry-After; another replica may have room sooner.")
            .retry_after(retry_after_seconds),
            ServiceError::Unavailable(why) => {
                tracing::warn!(error = %why, "store unavailable");
                Self::new(
                    ErrorCode::ServiceUnavailable,
                    "the service is temporarily unavailable",
                )
                .hint("Retry shortly.")
                .retry_after(5)
            }
            ServiceError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                Self::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_status() {
        use ErrorCode::*;
        let table = [
            (ValidationError, 422),
            (ReadonlyField, 422),
            (Unauthorized, 401),
            (ForbiddenRole, 403),
            (ForbiddenScope, 403),
            (NotFound, 404),
            (Conflict, 409),
            (IdempotencyKeyReused, 422),
            (RateLimited, 429),
            (ServiceUnavailable, 503),
            (Internal, 500),
        ];
        for (code, status) in table {
            assert_eq!(code.status().as_u16(), status, "{code:?}");
        }
        assert_eq!(ApiError::bad_request("x", "y").status().as_u16(), 400);
        assert_eq!(ApiError::too_large(1).status().as_u16(), 413);
    }

    /// Every conflict answers 409 `CONFLICT` with its own message and hint. The table is
    /// checked against `Conflict::ALL`, so a new variant fails here until it is listed.
    #[test]
    fn every_conflict_has_its_own_words() {
        use Conflict::*;
        let table = [
            (
                TenantName,
                "a tenant with this name already exists",
                "Pick another name.",
            ),
            (
                EnvironmentName,
                "an environment with this name already exists in this tenant",
                "Pick another name.",
            ),
            (
                EnvironmentInUse,
                "the environment still has fleets, or API tokens that are not revoked are scoped to it",
                "Delete its fleets and revoke the tokens scoped to it first.",
            ),
            (
                UserEmail,
                "a user with this email already exists in this tenant",
                "Use another email.",
            ),
            (
                ServiceAccountName,
                "a service account with this name already exists in this tenant",
                "Pick another name.",
            ),
            (
                SigningKeyId,
                "a signing key with this key id already exists",
                "Generate a new key; key ids are never reused.",
            ),
            (
                TokenOwnerChanged,
                "the owner was disabled or given a lower role while the token was being created",
                "Read the owner again; create the token with a role the owner holds.",
            ),
            (
                ScanNotRunning,
                "the scan is not running, so it cannot take results",
                "Claim a new job; this scan was completed, failed or expired.",
            ),
            (
                TargetEmpty,
                "the scan's target does not select agents of the fleet",
                "List the fleet's agents with GET /tenant/discovery/fleets/{fleet_id}/agents.",
            ),
            (
                TargetNotInFleet,
                "the scan's target does not select agents of the fleet",
                "List the fleet's agents with GET /tenant/discovery/fleets/{fleet_id}/agents.",
            ),
            (
                ScanFinished,
                "the scan has ended (completed, failed, expired or cancelled), so it cannot be cancelled",
                "Nothing to do: an ended scan runs no more.",
            ),
            (
                ScanCancelled,
                "the scan was cancelled, so its results are no longer wanted",
                "Drop this scan's work and claim the next job.",
            ),
            (
                ScanNotCompleted,
                "the scan has not completed, so it has no report",
                "Wait until the scan's status is completed, then retry.",
            ),
            (
                TokenNotActive,
                "the token is revoked or expired",
                "Create a new token instead.",
            ),
            (
                PrincipalIsCaller,
                "this would revoke the token making the request",
                "Use a token owned by another principal.",
            ),
        ];
        let listed: Vec<Conflict> = table.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(
            listed,
            Conflict::ALL,
            "one row per variant, in declaration order"
        );
        for (conflict, message, hint) in table {
            let e = ApiError::from(ServiceError::Conflict {
                constraint: conflict,
            });
            assert_eq!(e.status().as_u16(), 409, "{conflict}");
            assert_eq!(e.code(), ErrorCode::Conflict, "{conflict}");
            assert_eq!(e.message(), message, "{conflict}");
            assert_eq!(e.hint.as_deref(), Some(hint), "{conflict}");
        }
    }

    #[test]
    fn codes_serialize_as_the_spec_spells_them() {
        let s = serde_json::to_string(&ErrorCode::IdempotencyKeyReused).unwrap();
        assert_eq!(s, "\"IDEMPOTENCY_KEY_REUSED\"");
    }
}

//! The routes, one module per area, and the helpers their handlers share.
//!
//! Every path is a resource made by [`route`], with its guard class beside it and its
//! methods as routes, so a known path with an unknown method is a 405 and an unknown
//! path a 404 (both rendered as the error contract by the middleware).

pub mod agent;
pub mod directory;
pub mod fleets;
pub mod platform;
pub mod scans;
pub mod schedules;
pub mod share;
pub mod system;
pub mod tokens;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{Resource, web};
use fleetpass_domain::value::ValueError;
use serde::{Deserialize, Deserializer};

use crate::error::{ApiError, FieldProblem};
use crate::guard::{self, Class};

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    system::configure(cfg);
    platform::configure(cfg);
    tokens::configure(cfg);
    directory::configure(cfg);
    fleets::configure(cfg);
    agent::configure(cfg);
    scans::configure(cfg);
    schedules::configure(cfg);
    share::configure(cfg);
}

/// The resource at `path`, under the guard of `class`: the one way routes are made (a
/// tidy test holds the crate to it), so no route goes without its authentication,
/// limits and idempotency, and the guard judges the very route that serves a request,
/// however its raw path was spelled.
pub fn route(
    path: &str,
    class: Class,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource(path).wrap(guard::layer(class))
}

/// Collects field errors so that a request with several wrong fields hears of all of
/// them at once (`details`), the first one leading.
#[derive(Debug, Default)]
pub struct Checks(Vec<ApiError>);

impl Checks {
    /// Keeps the value or records why `field` is wrong.
    pub fn check<T>(&mut self, field: &str, result: Result<T, ValueError>) -> Option<T> {
        result
            .map_err(|e| self.0.push(ApiError::invalid(field, &e)))
            .ok()
    }

    /// Records an error found otherwise.
    pub fn push(&mut self, error: ApiError) {
        self.0.push(error);
    }

    /// `Ok` when nothing was wrong; otherwise the first error, with every problem listed
    /// in `details` when there are several.
    pub fn finish(self) -> Result<(), ApiError> {
        let mut errors = self.0.into_iter();
        let Some(first) = errors.next() else {
            return Ok(());
        };
        let rest: Vec<ApiError> = errors.collect();
        if rest.is_empty() {
            return Err(first);
        }
        let details = std::iter::once(&first)
            .chain(&rest)
            .map(|e| FieldProblem {
                field: e.field_name().unwrap_or_default().to_owned(),
                message: e.message().to_owned(),
            })
            .collect();
        Err(first.details(details))
    }
}

/// For `Option<Option<T>>` fields: absent → `None`, `null` → `Some(None)`, a value →
/// `Some(Some(v))`, so a PATCH can tell "leave alone" from "clear".
pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Refuses fields a PATCH does not take: read-only ones (with how they *can* change)
/// as `READONLY_FIELD`, anything else as an unknown field.
pub fn refuse_other_fields(
    rest: &serde_json::Map<String, serde_json::Value>,
    readonly: &[(&str, &str)],
) -> Result<(), ApiError> {
    let Some(key) = rest.keys().next() else {
        return Ok(());
    };
    match readonly.iter().find(|(field, _)| field == key) {
        Some((field, hint)) => Err(ApiError::readonly(field, hint)),
        None => Err(ApiError::new(
            crate::error::ErrorCode::ValidationError,
            format!("{key} is not a field of this request"),
        )
        .field(key.clone())
        .hint("Check the field against the API reference at /openapi.json.")),
    }
}

/// Fields no PATCH can set: the server assigns them.
pub const SERVER_FIELDS: [(&str, &str); 2] = [
    ("id", "The id is assigned by the server and never changes."),
    (
        "createdAt",
        "The creation time is set by the server and never changes.",
    ),
];

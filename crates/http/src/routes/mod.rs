//! The routes, one module per area, and the helpers their handlers share.
//!
//! Every path is a resource made by [`route`], with its guard class beside it and its
//! methods as routes, so a known path with an unknown method is a 405 and an unknown
//! path a 404 (both rendered as the error contract by the middleware).

pub mod agent;
pub mod directory;
pub mod fleets;
pub mod platform;
pub mod policy;
pub mod scans;
pub mod schedules;
pub mod secret_scanning;
pub mod share;
pub mod system;
pub mod tokens;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{HttpMessage as _, Resource, web};
use std::collections::BTreeMap;

use fleetpass_domain::label::{LabelSelector, Labels, MAX_LABELS};
use fleetpass_domain::network::{AllowedCidrs, MAX_ALLOWED_CIDRS};
use fleetpass_domain::scan::{ScanTarget, Scenario};
use fleetpass_domain::value::ValueError;
use serde::{Deserialize, Deserializer};

use fleetpass_ports::service::{PathTarget, authorize_target};

use crate::AppState;
use crate::error::{ApiError, FieldProblem};
use crate::extract::{Body, Caller, Needs};
use crate::guard::{self, Class};

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    system::configure(cfg);
    platform::configure(cfg);
    tokens::configure(cfg);
    policy::configure(cfg);
    secret_scanning::configure(cfg);
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
/// however its raw path was spelled. Every route also refuses query parameters its
/// operation does not declare in the OpenAPI document (400 naming them).
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
    // The guard is the outer layer: a request is authenticated and limited before its
    // query parameters are judged.
    web::resource(path)
        .wrap(actix_web::middleware::from_fn(refuse_unknown_query))
        .wrap(guard::layer(class))
}

/// [`crate::extract::check_query_names`] for the route that serves the request.
async fn refuse_unknown_query(
    req: ServiceRequest,
    next: actix_web::middleware::Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Most requests carry no query: they cost no pattern lookup and no allocation here.
    if req.query_string().is_empty() {
        return next.call(req).await;
    }
    let checked = req.match_pattern().map(|pattern| {
        crate::extract::check_query_names(&pattern, req.method().as_str(), req.query_string())
    });
    if let Some(Err(e)) = checked {
        // Answered here, as the guard answers its refusals: in the error contract,
        // under the request's id.
        let request_id = req
            .extensions()
            .get::<crate::extract::RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        let mut res = e.into_response(&request_id);
        res.extensions_mut().insert(crate::middleware::Rendered);
        return Ok(ServiceResponse::new(req.into_parts().0, res));
    }
    next.call(req).await
}

/// A 201 whose `Location` names the created resource (a path on this server, as
/// `openapi::location_of` documents it for each operation).
pub(crate) fn created(location: String) -> actix_web::HttpResponseBuilder {
    let mut builder = actix_web::HttpResponse::Created();
    builder.insert_header((actix_web::http::header::LOCATION, location));
    builder
}

/// The body of an operation whose path names `target`, once access to `target` is
/// decided: a caller outside its environment (or of another tenant) hears 403
/// `FORBIDDEN_SCOPE` (or 404) whatever the body says, as the role is decided before it
/// by [`Caller`]. Handlers take their body as `Result<Body<T>, ApiError>` for this.
pub(crate) async fn body_in_scope<T, N: Needs>(
    state: &AppState,
    caller: &Caller<N>,
    target: PathTarget,
    body: Result<Body<T>, ApiError>,
) -> Result<T, ApiError> {
    authorize_target(&state.deps, &caller.actor, N::ACTION, target).await?;
    body.map(|Body(body)| body)
}

/// Collects field errors so that a request with several wrong fields hears of all of
/// them at once (`details`), the first one leading.
///
/// Optional fields go through [`Checks::check`] (absent and wrong both read `None`, and
/// a wrong one has recorded its error); required ones through [`Checks::require`] and
/// friends, whose [`Checked`] values only [`Checks::finish_with`] opens, so a handler
/// gets its parsed values or the error and has no "cannot happen" branch of its own.
#[derive(Debug, Default)]
pub struct Checks(Vec<ApiError>);

/// A required value that passed or failed its check; opened by [`Checks::finish_with`].
#[must_use = "open it with Checks::finish_with"]
#[derive(Debug)]
pub struct Checked<T>(Result<T, ApiError>);

/// What [`Checks::finish_with`] can open: a [`Checked`], an optional one, or a tuple of
/// them.
pub trait Resolve {
    /// The parsed values.
    type Output;
    /// The values, or the first one's error.
    fn resolve(self) -> Result<Self::Output, ApiError>;
}

impl<T> Resolve for Checked<T> {
    type Output = T;
    fn resolve(self) -> Result<T, ApiError> {
        self.0
    }
}

/// An optional field: absent stays `None`.
impl<R: Resolve> Resolve for Option<R> {
    type Output = Option<R::Output>;
    fn resolve(self) -> Result<Self::Output, ApiError> {
        self.map(R::resolve).transpose()
    }
}

macro_rules! resolve_tuple {
    ($($name:ident),+) => {
        impl<$($name: Resolve),+> Resolve for ($($name,)+) {
            type Output = ($($name::Output,)+);
            #[allow(non_snake_case)]
            fn resolve(self) -> Result<Self::Output, ApiError> {
                let ($($name,)+) = self;
                Ok(($($name.resolve()?,)+))
            }
        }
    };
}
resolve_tuple!(A);
resolve_tuple!(A, B);
resolve_tuple!(A, B, C);
resolve_tuple!(A, B, C, D);
resolve_tuple!(A, B, C, D, E);
resolve_tuple!(A, B, C, D, E, F);

impl Checks {
    /// Keeps the value or records why `field` is wrong; for optional fields.
    pub fn check<T>(&mut self, field: &str, result: Result<T, ValueError>) -> Option<T> {
        result
            .map_err(|e| self.0.push(ApiError::invalid(field, &e)))
            .ok()
    }

    /// Like [`Checks::check`], for an error the caller worded.
    pub fn check_with<T>(&mut self, result: Result<T, ApiError>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }

    /// A required field's value, or why `field` is wrong.
    pub fn require<T>(&mut self, field: &str, result: Result<T, ValueError>) -> Checked<T> {
        self.require_with(result.map_err(|e| ApiError::invalid(field, &e)))
    }

    /// A required value whose error the caller worded.
    pub fn require_with<T>(&mut self, result: Result<T, ApiError>) -> Checked<T> {
        if let Err(e) = &result {
            self.0.push(e.clone());
        }
        Checked(result)
    }

    /// A required id in a body or query field (see [`body_id`]).
    pub fn id<T>(
        &mut self,
        field: &str,
        raw: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Checked<T> {
        self.require_with(body_id(field, raw, parse))
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

    /// Like [`Checks::finish`], then opens `values`: the parsed values when nothing was
    /// wrong. (A failed `Checked` recorded its error here, so `finish` has already
    /// answered for it; its own error is only what `resolve` hands back.)
    pub fn finish_with<V: Resolve>(self, values: V) -> Result<V::Output, ApiError> {
        self.finish()?;
        values.resolve()
    }
}

/// Parses an id sent in a body or query field: one wording for every such field. (A
/// path id that does not parse names nothing, so it is a 404: see `extract::path_id`.)
pub fn body_id<T>(
    field: &str,
    raw: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, ApiError> {
    parse(raw).ok_or_else(|| {
        ApiError::invalid_message(field, "is not a valid id")
            .hint("Send the id as returned by the API.")
    })
}

/// Parses a scan's target (`any` when absent): one wording wherever a target is sent.
pub fn target(raw: Option<&serde_json::Value>) -> Result<ScanTarget, ApiError> {
    let Some(raw) = raw else {
        return Ok(ScanTarget::Any);
    };
    ScanTarget::parse(raw).map_err(|e| {
        ApiError::invalid_message(&e.path, &e.message).hint(
            "Send \"any\", \"all\", {\"agents\": [agent ids]} or {\"labels\": {\"key\": \"value\"}}.",
        )
    })
}

/// Parses labels sent as a JSON object of strings, in `field`.
pub fn labels(field: &str, raw: &BTreeMap<String, String>) -> Result<Labels, ApiError> {
    Labels::parse(raw).map_err(|e| match e.key {
        Some(key) => ApiError::invalid(&format!("{field}.{key}"), &e.error),
        None => ApiError::invalid_message(field, format!("may have at most {MAX_LABELS} labels"))
            .hint("Send at most 32 labels."),
    })
}

/// Parses the `allowedCidrs` of a token body; absent: anywhere.
pub fn allowed_cidrs(raw: Option<&[String]>) -> Result<AllowedCidrs, ApiError> {
    AllowedCidrs::parse(raw.unwrap_or_default()).map_err(|e| {
        ApiError::invalid_message("allowedCidrs", e.to_string()).hint(format!(
            "Give at most {MAX_ALLOWED_CIDRS} IPv4 or IPv6 networks such as 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32; an empty list allows every address."
        ))
    })
}

/// Parses a label selector from a query value `key:value,key:value`.
pub fn label_selector(field: &str, raw: &str) -> Result<LabelSelector, ApiError> {
    let refused = || {
        ApiError::invalid_message(field, "must be key:value pairs separated by commas")
            .hint("Send e.g. labels=role:db,site:fra1.")
    };
    let mut pairs = BTreeMap::new();
    for pair in raw.split(',') {
        let (k, v) = pair.split_once(':').ok_or_else(refused)?;
        pairs.insert(k.to_owned(), v.to_owned());
    }
    LabelSelector::new(labels(field, &pairs)?).map_err(|_| refused())
}

/// Parses a scenario: one wording for the rule wherever a scenario is sent.
pub fn scenario(raw: &str) -> Result<Scenario, ApiError> {
    Scenario::parse(raw).map_err(|e| {
        ApiError::invalid_message("scenario", format!("{raw:?} is an unsupported scenario"))
            .hint(e.hint())
    })
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

#[cfg(test)]
mod tests {
    use fleetpass_domain::ids::FleetId;
    use fleetpass_domain::token::TokenTtlDays;

    use super::*;

    #[test]
    fn finish_with_yields_the_parsed_values_when_all_pass() {
        let mut checks = Checks::default();
        let ttl = checks.require("expiresInDays", TokenTtlDays::new(30));
        let absent = None::<Checked<FleetId>>;
        let scenario = checks.require_with(scenario("ports"));
        let (ttl, absent, scenario) = checks.finish_with((ttl, absent, scenario)).unwrap();
        assert_eq!(ttl, TokenTtlDays::new(30).unwrap());
        assert!(absent.is_none());
        assert_eq!(scenario, Scenario::Ports);
    }

    #[test]
    fn finish_with_reports_every_failure_in_order() {
        let mut checks = Checks::default();
        let fleet = checks.id("fleetId", "nope", FleetId::parse);
        let _ = checks.check("label", Err::<(), _>(ValueError::Range { min: 1, max: 2 }));
        let scenario = checks.require_with(scenario("vulnerabilities"));
        let e = checks.finish_with((fleet, scenario)).unwrap_err();
        assert_eq!(e.field_name(), Some("fleetId"));
        assert_eq!(e.message(), "fleetId is not a valid id");
        let fields: Vec<_> = e.problems().iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["fleetId", "label", "scenario"]);
        assert_eq!(
            e.problems()[2].message,
            "scenario \"vulnerabilities\" is an unsupported scenario"
        );
    }
}

//! Extractors: the JSON body contract, the caller's credentials, the platform admin key
//! and list parameters. Each turns a request into domain values or an [`ApiError`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use fleetpass_domain::access::{Action, Actor, authorize};
use fleetpass_domain::page::{Cursor, PageLimit, PageRequest};
use fleetpass_domain::token::ApiToken;
use fleetpass_ports::service::ServiceError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq as _;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// The largest body an ordinary endpoint accepts (1 MiB).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A route's own body limit, when it is not [`BODY_LIMIT`]; set it as route app data
/// together with an `actix_web::web::PayloadConfig` of the same size.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

type LocalFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

fn state(req: &HttpRequest) -> Result<&AppState, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .map(|d| d.get_ref())
        .ok_or_else(|| {
            tracing::error!("AppState missing from app data");
            ApiError::internal()
        })
}

/// The request id the middleware assigned, for handlers that need it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The client's address as the guard judged it (the socket peer, or what trusted
/// proxies say). `None` when it is unknown; a route the guard does not run on has none,
/// and a network-restricted credential is then refused rather than let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl FromRequest for ClientAddr {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(req
            .extensions()
            .get::<Self>()
            .copied()
            .unwrap_or(Self(None))))
    }
}

/// A JSON body decoded into `T`, under the spec's rules: wrong content type, unparseable
/// JSON or a non-object → 400; a body of the right shape with a missing, unknown or
/// mistyped field → 422 naming the field; too large → 413. An empty body reads as `{}`
/// so endpoints whose fields are all optional work without one.
///
/// On a tenant route it reads nothing until a [`Caller`] extractor before it in the
/// handler's signature has decided the role (see [`Needs`]), so a caller whose role is
/// too low hears 403 whatever the body says.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let tenant_route = req.extensions().get::<ResolvedCaller>().is_some();
        match req.extensions().get::<RoleDecided>().copied() {
            _ if !tenant_route => {}
            Some(RoleDecided(true)) => {}
            // The `Caller` before this refused; its error is the answer (actix polls
            // the handler's extractors in order and stops at the first error), so this
            // future is never polled.
            Some(RoleDecided(false)) => {
                return Box::pin(std::future::ready(Err(ApiError::internal())));
            }
            None => {
                tracing::error!(
                    route = req.match_pattern().as_deref().unwrap_or("unmatched"),
                    "a tenant handler takes its Body before its Caller"
                );
                return Box::pin(std::future::ready(Err(ApiError::internal())));
            }
        }
        let (req, payload) = (req.clone(), payload.take());
        Box::pin(async move { read_json::<T>(&req, payload).await.map(Body) })
    }
}

/// Reads and decodes a JSON body by [`Body`]'s rules, for a handler that must decide
/// something before the body is read (an agent's results go to a scan it claimed).
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: Payload,
) -> Result<T, ApiError> {
    let bytes = read_bytes(req, payload).await?;
    if bytes.is_empty() {
        return decode(serde_json::Value::Object(serde_json::Map::new()));
    }
    require_json(req)?;
    decode_bytes(&bytes)
}

/// Reads the raw body, up to the route's [`BodyLimit`] (413 past it), for a handler
/// that must see the bytes as sent (a signature over them) before decoding them.
pub async fn read_bytes(req: &HttpRequest, mut payload: Payload) -> Result<web::Bytes, ApiError> {
    let limit = req.app_data::<BodyLimit>().map_or(BODY_LIMIT, |l| l.0);
    let unreadable =
        || ApiError::bad_request("the request body could not be read", "Send the body again.");
    let declared = declared_length(req.headers());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let mut bytes = web::BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = futures_util::StreamExt::next(&mut payload).await {
        let chunk = chunk.map_err(|_| unreadable())?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.freeze())
}

/// 400 unless the request says its body is JSON.
fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let is_json = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "the request body must be JSON",
            "Send `Content-Type: application/json`.",
        ))
    }
}

/// Decodes a body that is a JSON array (a partner's batch) by [`Body`]'s rules: not
/// JSON, or not an array → 400; an item of the wrong shape → 422 naming it (`[3].token`).
///
/// # Errors
/// The 400 or 422.
pub fn decode_array<T: DeserializeOwned>(
    req: &HttpRequest,
    bytes: &[u8],
) -> Result<Vec<T>, ApiError> {
    require_json(req)?;
    let not_json = |e: &serde_json::Error| {
        ApiError::bad_request(
            format!("the request body is not valid JSON: {e}"),
            "Send a JSON array.",
        )
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(not_json(&e));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        return Err(ApiError::bad_request(
            "the request body must be a JSON array",
            "Send a JSON array.",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize::<_, Vec<T>>(&mut de).map_err(field_error)
}

/// The body length a request declares (`Content-Length`), if it declares one.
pub(crate) fn declared_length(headers: &header::HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Decodes JSON text straight into `T`, so memory follows what `T` keeps rather than a
/// generic tree of the whole body (an 18× amplifier on a 16 MiB upload of `[0,0,…]`),
/// and unknown fields are refused as they stream past.
fn decode_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let not_json = |e: &serde_json::Error| {
        ApiError::bad_request(
            format!("the request body is not valid JSON: {e}"),
            "Send a JSON object.",
        )
    };
    // Is it JSON at all? Asked only when the typed decode fails, and answered without
    // building anything: a body that is not JSON is a 400 even where a field before
    // the broken part would have been refused.
    let syntax = || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).err();
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match syntax() {
            Some(e) => not_json(&e),
            None => ApiError::bad_request(
                "the request body must be a JSON object",
                "Send a JSON object.",
            ),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        // Anything after the object is not JSON.
        Ok(value) => de.end().map(|()| value).map_err(|e| not_json(&e)),
        Err(e) if e.inner().classify() != serde_json::error::Category::Data => {
            Err(not_json(e.inner()))
        }
        Err(e) => match syntax() {
            Some(broken) => Err(not_json(&broken)),
            // `5.0` for an integer field: JSON Schema's `integer` takes it, serde does
            // not. Only then is the tree built, and only for bodies of the ordinary size.
            None if e
                .inner()
                .to_string()
                .starts_with("invalid type: floating point")
                && bytes.len() <= BODY_LIMIT =>
            {
                let value: serde_json::Value =
                    serde_json::from_slice(bytes).map_err(|e| not_json(&e))?;
                decode(value)
            }
            None => Err(field_error(e)),
        },
    }
}

/// Rewrites every number with no fractional part (`5.0`) as an integer, so integer
/// fields take it: JSON Schema's `integer` (and so the OpenAPI document) counts `5.0`
/// as one, and JSON itself does not tell the two apart.
fn integral_floats(value: &mut serde_json::Value) {
    // 2^53: beyond it a float no longer holds every integer exactly.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() <= EXACT
            {
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *value = serde_json::Value::from(i);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats),
        _ => {}
    }
}

/// Decodes a JSON object into `T`, naming the offending field on failure.
fn decode<T: DeserializeOwned>(mut value: serde_json::Value) -> Result<T, ApiError> {
    integral_floats(&mut value);
    serde_path_to_error::deserialize(value).map_err(field_error)
}

/// The 422 for a body of the right shape whose field `e` names is missing, unknown,
/// mistyped or refused by its type's own rule.
fn field_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner().to_string();
    let inner = inner.split(" at line").next().unwrap_or(&inner);
    // A missing field is named only in the message, and the path ends at the object
    // that lacks it (`.` at the top); an unknown field's path already names it.
    let missing = inner.starts_with("missing field");
    let named = inner.split('`').nth(1).map(str::to_owned);
    let field = match (path.as_str(), named) {
        (".", Some(name)) if missing || inner.starts_with("unknown field") => name,
        (_, Some(name)) if missing => format!("{path}.{name}"),
        _ => path,
    };
    let message = if missing {
        format!("{field} is required")
    } else if inner.starts_with("unknown field") {
        format!("{field} is not a field of this request")
    } else if inner.starts_with("duplicate field") {
        format!("{field} is given twice")
    } else if inner.starts_with("invalid") {
        format!("{field} has the wrong type: {inner}")
    } else {
        // A domain type's own rule (`Text` refusing a NUL): its message reads as the
        // tail of a sentence whose subject is the field.
        format!("{field} {inner}")
    };
    ApiError::new(ErrorCode::ValidationError, message)
        .field(field)
        .hint("Check the field against the API reference at /openapi.json.")
}

/// An authenticated tenant caller whose role reaches `N`'s action: a live API token.
///
/// The role is decided here, from the operation alone, before any [`Body`] is read or
/// validated (a [`Body`] on a tenant route refuses to run unless a `Caller` before it
/// decided), so an operator sending `{"role":"admin"}` to an admin route hears 403
/// `FORBIDDEN_ROLE`, not 422. The service checks the same [`Action`] again, with the
/// resource's environment, as the one authority; this is the early answer.
#[derive(Debug, Clone)]
pub struct Caller<N: Needs = Read> {
    /// Who is asking and what they may do.
    pub actor: Actor,
    /// The token presented.
    pub token: ApiToken,
    needs: std::marker::PhantomData<N>,
}

/// What an operation needs of its caller, as a type: `Caller<Operate>` in a handler's
/// signature. One marker per [`Action`].
pub trait Needs: 'static {
    /// The action the operation takes.
    const ACTION: Action;
}

macro_rules! needs {
    ($($(#[$meta:meta])* $name:ident => $action:expr;)+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Needs for $name {
            const ACTION: Action = $action;
        }
    )+};
}

needs! {
    /// Reads (`Action::Read`): every role.
    Read => Action::Read;
    /// Changes fleets, scans, share links, schedules (`Action::Operate`).
    Operate => Action::Operate;
    /// Tenant administration (`Action::Administer`).
    Administer => Action::Administer;
    /// Environments (`Action::ManageEnvironments`): an all-environments admin.
    ManageEnvironments => Action::ManageEnvironments;
}

/// Set by [`Caller`] once the role is decided (`true`: the caller may go on); [`Body`]
/// reads nothing without it.
#[derive(Debug, Clone, Copy)]
struct RoleDecided(bool);

/// The guard's authentication of a tenant route's request; the [`Caller`] extractor
/// answers with it.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedCaller(pub(crate) Result<Authenticated, ApiError>);

/// A tenant caller as the guard authenticated it, before any role is decided.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated {
    pub(crate) actor: Actor,
    pub(crate) token: ApiToken,
}

/// The guard's authentication of an agent route's request; the [`AgentCaller`]
/// extractor answers with it.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedAgent(pub(crate) Result<fleetpass_domain::fleet::Agent, ApiError>);

/// Where the token was found, in the spec's order of precedence.
pub(crate) fn presented_token(req: &HttpRequest, query_tokens: bool) -> Result<String, ApiError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default();
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(ApiError::unauthorized(
                "the Authorization header must read `Bearer <token>`",
            ));
        }
        return Ok(token.trim().to_owned());
    }
    if let Some(value) = req.headers().get("x-api-key") {
        return Ok(value.to_str().unwrap_or_default().trim().to_owned());
    }
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string()).ok();
    if let Some(token) = query.as_ref().and_then(|q| q.get("api_key")) {
        if !query_tokens {
            return Err(ApiError::unauthorized(
                "tokens in the query string are disabled on this server",
            ));
        }
        return Ok(token.clone());
    }
    Err(ApiError::unauthorized("an API token is required"))
}

/// The token of `Authorization: Bearer <token>`, the only way agent tokens travel.
pub(crate) fn bearer_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
}

/// What the guard put into the request's extensions for this extractor, or a 500 when
/// it put nothing: the route was registered under a class that does not authenticate
/// this kind of caller, a programming error every test of the route shows at once.
fn resolved<T: Clone + 'static>(req: &HttpRequest, what: &str) -> Result<T, ApiError> {
    req.extensions().get::<T>().cloned().ok_or_else(|| {
        tracing::error!(
            route = req.match_pattern().as_deref().unwrap_or("unmatched"),
            "a route asks for {what} but its guard class does not authenticate one"
        );
        ApiError::internal()
    })
}

impl<N: Needs> FromRequest for Caller<N> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = resolved::<ResolvedCaller>(req, "an API token")
            .and_then(|ResolvedCaller(r)| r)
            .and_then(|c| {
                authorize(&c.actor, N::ACTION, None)
                    .map_err(|d| ApiError::from(ServiceError::from(d)))?;
                Ok(Caller {
                    actor: c.actor,
                    token: c.token,
                    needs: std::marker::PhantomData,
                })
            });
        req.extensions_mut().insert(RoleDecided(caller.is_ok()));
        std::future::ready(caller)
    }
}

/// An authenticated agent: a valid, unexpired access token of an agent that is not
/// revoked. Only `Authorization: Bearer` carries agent tokens.
#[derive(Debug, Clone)]
pub struct AgentCaller(pub fleetpass_domain::fleet::Agent);

impl AgentCaller {
    /// The answer to an agent route called without a bearer token.
    pub(crate) fn missing() -> ApiError {
        ApiError::unauthorized("an agent access token is required")
            .hint("Send `Authorization: Bearer <access token>` from POST /agent/token.")
    }
}

impl FromRequest for AgentCaller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            resolved::<ResolvedAgent>(req, "an agent")
                .and_then(|ResolvedAgent(r)| r)
                .map(AgentCaller),
        )
    }
}

/// The platform operator, proven by `FLEETPASS_ADMIN_KEY`.
#[derive(Debug, Clone, Copy)]
pub struct PlatformAdmin;

impl FromRequest for PlatformAdmin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(check_admin(req))
    }
}

pub(crate) fn check_admin(req: &HttpRequest) -> Result<PlatformAdmin, ApiError> {
    let state = state(req)?;
    let Some(key) = &state.config.admin_key else {
        return Err(
            ApiError::new(ErrorCode::ServiceUnavailable, "admin API not configured")
                .hint("Set FLEETPASS_ADMIN_KEY on the server to enable /platform/*."),
        );
    };
    let presented = presented_token(req, state.config.query_tokens)
        .map_err(|_| ApiError::unauthorized("the platform admin key is required"))?;
    if key.matches(&presented) {
        Ok(PlatformAdmin)
    } else {
        Err(
            ApiError::new(ErrorCode::ForbiddenRole, "wrong platform admin key")
                .hint("Check FLEETPASS_ADMIN_KEY."),
        )
    }
}

/// The platform admin key (and the metrics token). Compared through SHA-256 digests in constant time, so
/// neither its content nor its length leaks through timing; `Debug` redacts it.
#[derive(Clone)]
pub struct AdminKey([u8; 32]);

impl AdminKey {
    /// Wraps the configured key.
    pub fn new(key: &str) -> Self {
        Self(sha256(key))
    }

    pub(crate) fn matches(&self, presented: &str) -> bool {
        self.0.ct_eq(&sha256(presented)).into()
    }
}

fn sha256(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref());
    out
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminKey(redacted)")
    }
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1-200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    /// Validates into a page request.
    ///
    /// # Errors
    /// 422 naming `limit` or `cursor`.
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = match &self.limit {
            None => PageLimit::default(),
            Some(raw) => raw
                .parse::<i64>()
                .map_err(|_| fleetpass_domain::value::ValueError::Range { min: 1, max: 200 })
                .and_then(PageLimit::new)
                .map_err(|e| ApiError::invalid("limit", &e))?,
        };
        let cursor = self
            .cursor
            .as_deref()
            .map(Cursor::decode)
            .transpose()
            .map_err(|e| ApiError::invalid("cursor", &e))?;
        Ok(PageRequest { limit, cursor })
    }
}

/// Parses a path id; anything that is not a UUID names nothing, so it is a 404.
pub fn path_id<T>(raw: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, ApiError> {
    parse(raw).ok_or_else(ApiError::not_found)
}

/// The query parameter every API route accepts besides its own: an API token
/// (`?api_key=`, unless turned off; `presented_token` decides).
const TOKEN_PARAMETER: &str = "api_key";

/// The query parameters of each operation, by route pattern and method, as the OpenAPI
/// document declares them (from the routes' `IntoParams` types), so the one list a
/// client reads is the one the server holds it to.
fn declared_query_parameters() -> &'static HashMap<(String, String), Vec<String>> {
    static DECLARED: std::sync::OnceLock<HashMap<(String, String), Vec<String>>> =
        std::sync::OnceLock::new();
    DECLARED.get_or_init(|| {
        let mut declared = HashMap::new();
        let doc = crate::openapi::document();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let names = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect();
                declared.insert((path.clone(), method.clone()), names);
            }
        }
        declared
    })
}

/// Refuses a query parameter the operation does not declare: 400 naming each one and
/// the ones it takes, as unknown body fields are refused (a misspelt filter must not
/// silently return everything). The same for every route: [`crate::routes::route`]
/// puts it on each, inside the guard.
///
/// # Errors
/// 400 `VALIDATION_ERROR`, `field` the first unknown parameter, `details` each.
pub(crate) fn check_query_names(pattern: &str, method: &str, query: &str) -> Result<(), ApiError> {
    let Some(declared) =
        declared_query_parameters().get(&(pattern.to_owned(), method.to_ascii_lowercase()))
    else {
        return Ok(());
    };
    // Unreadable query strings are the extractors' to refuse (400 with their reason).
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let mut unknown: Vec<String> = Vec::new();
    for (name, _) in pairs {
        if name != TOKEN_PARAMETER && !declared.contains(&name) && !unknown.contains(&name) {
            unknown.push(name);
        }
    }
    let Some(first) = unknown.first() else {
        return Ok(());
    };
    let takes = if declared.is_empty() {
        "this endpoint takes no query parameters".to_owned()
    } else {
        format!("this endpoint takes {}", declared.join(", "))
    };
    let listed = unknown
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let plural = if unknown.len() == 1 { "" } else { "s" };
    Err(ApiError::bad_request(
        format!("unknown query parameter{plural} {listed}: {takes}"),
        "Remove the parameter or correct its spelling (names are camelCase, as in the API reference).",
    )
    .field(first.clone())
    .details(
        unknown
            .iter()
            .map(|n| crate::error::FieldProblem {
                field: n.clone(),
                message: "unknown query parameter".to_owned(),
            })
            .collect(),
    ))
}

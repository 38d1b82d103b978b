//! The guard: spec §1's cross-cutting guarantees (authentication, rate limits,
//! failed-authentication throttling, idempotency keys) as a middleware on every route.
//!
//! Every route is registered with its [`Class`] (`crate::routes::route`), and the guard
//! wraps that route itself, so it runs *after* routing: it judges exactly the route that
//! will serve the request (whatever percent-encoding the raw path used), and reads the
//! route's own body limit. Per class:
//!
//! 1. **Who.** Tenant routes authenticate the presented API token here, agent routes
//!    the agent's access token, platform routes the platform admin key; the outcome goes
//!    into the request's extensions, where the [`Caller`] and [`AgentCaller`] extractors
//!    pick it up (they refuse to work on a route the guard did not authenticate, so a
//!    route registered under the wrong class fails loudly in every test).
//! 2. **Limits.** An authenticated token is limited by its `rateLimitPerMinute`
//!    (default 300), public routes by client address ([`GuardConfig::public_per_minute`]).
//!    Failed authentications are counted per address
//!    ([`GuardConfig::auth_failures_per_minute`]); once an address used them up, its
//!    *failing* attempts are answered 429 instead of 401 until the window ends, while
//!    valid credentials from the same address (an operator behind the NAT of a fleet
//!    retrying a used-up enrollment token) still pass. The platform API is the
//!    exception: its key is chosen by an operator and may be guessable, so a blocked
//!    address gets no answer that could tell a right guess from a wrong one.
//! 3. **Idempotency.** A POST with an `Idempotency-Key` from an authenticated caller is
//!    scoped to that caller's credential (the API token, the agent, the platform key;
//!    the client address on public routes, whose credential is in the body the
//!    fingerprint covers). It claims the key atomically in the [`IdempotencyStore`],
//!    runs, and stores a 2xx response sealed under the master key; the same request
//!    again replays it byte for byte with `Idempotent-Replayed: true`. Nothing else is
//!    stored: a 4xx changes nothing (a change and its audit event commit together or
//!    not at all), so running it again is safe, and a refusal is never replayed to the
//!    caller who later has the right to succeed.
//!
//! The guard also names the route on the request's log span: logs carry route patterns
//! (`/share/{token}`), never raw paths, which can hold secrets.

mod ip;
mod stored;
mod uploads;

pub use uploads::LARGE_UPLOADS;

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpMessage, HttpResponse};
use fleetpass_domain::Timestamp;
use fleetpass_ports::RepoError;
use fleetpass_ports::idempotency::{Begin, Claim, IdempotencyStore};
use fleetpass_ports::keys::MasterKey;
use fleetpass_ports::ratelimit::{Decision, Limit, RateLimiter};
use fleetpass_ports::service::{ServiceError, agents, auth};
use futures_util::StreamExt as _;
use sfv::{BareItem, Item, Parser, StringRef};

pub use ip::{TrustedProxies, client_ip, limit_key};

use crate::AppState;
use crate::error::{ApiError, ErrorCode, FailedAuthentication, ProblemType};
use crate::extract::{
    AgentCaller, Authenticated, BODY_LIMIT, BodyLimit, ClientAddr, RequestId, ResolvedAgent,
    ResolvedCaller, bearer_token, check_admin, presented_token,
};
use crate::metrics::{LimitKind, Metrics};
use crate::middleware::{Rendered, render_errors};
use stored::StoredResponse;

/// The request header that carries an idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response header that marks a replay.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The limits and trust settings of the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// Requests a minute per client address on public endpoints
    /// (`FLEETPASS_PUBLIC_RATE_LIMIT`, default 60).
    pub public_per_minute: u32,
    /// Failed authentications a minute per client address before further failing
    /// attempts are answered 429 (`FLEETPASS_AUTH_FAILURE_LIMIT`, default 20).
    pub auth_failures_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` is believed (`FLEETPASS_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Which rate-limit fields responses carry (`FLEETPASS_RATE_LIMIT_HEADERS`).
    pub rate_limit_fields: RateLimitFields,
}

/// Which generation of rate-limit fields responses carry.
///
/// draft-ietf-httpapi-ratelimit-headers-11 replaced the `RateLimit-Limit`,
/// `-Remaining` and `-Reset` trio of its drafts up to -06 with two list fields,
/// `RateLimit-Policy` and `RateLimit`. Clients written against the old drafts read the
/// trio, so for one release both are sent; `current` drops the trio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitFields {
    /// The draft -11 fields and the old trio (the default for this release).
    #[default]
    Both,
    /// Only the draft -11 fields.
    Current,
}

impl RateLimitFields {
    /// Parses a `FLEETPASS_RATE_LIMIT_HEADERS` value: `both` or `current`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "both" => Some(Self::Both),
            "current" => Some(Self::Current),
            _ => None,
        }
    }
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            public_per_minute: 60,
            auth_failures_per_minute: 20,
            trusted_proxies: TrustedProxies::default(),
            rate_limit_fields: RateLimitFields::default(),
        }
    }
}

/// What the guard needs: where idempotency records and rate-limit counts live, the key
/// that seals stored responses, and the limits.
#[derive(Clone)]
pub struct Guards {
    /// Idempotency records (Postgres when several replicas share a database).
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Rate-limit counters (shared when several replicas serve one service).
    pub limiter: Arc<dyn RateLimiter>,
    /// Seals stored responses (they may carry secrets) before they reach the store.
    pub master: MasterKey,
    /// Limits and trusted proxies.
    pub config: GuardConfig,
}

impl std::fmt::Debug for Guards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guards")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Guards {
    /// Deletes idempotency records whose window closed and rate-limit windows that
    /// ended; returns how many of each went. Safe on several replicas at once.
    ///
    /// # Errors
    /// The first store error.
    pub async fn purge(&self, now: Timestamp) -> Result<(u64, u64), RepoError> {
        let records = self.idempotency.purge(now).await?;
        let windows = self.limiter.purge(now).await?;
        Ok((records, windows))
    }
}

/// How a route is guarded; every route is registered with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Tenant and admin APIs: an API token.
    Tenant,
    /// Public endpoints (enrollment, token exchange, share links, leaked-secret
    /// revocation): the credential, if any, is in the body or path; limited and
    /// scoped by client address.
    Public,
    /// What agents call with their access token (heartbeat, claims, results): scoped by
    /// the agent, not limited by address — a site's agents often share one address,
    /// and the per-address budget is sized for people, not fleets.
    Agent,
    /// The platform API: the platform admin key.
    Platform,
    /// Health, documents, keys: not guarded.
    Open,
}

/// The guard of `class`, as a middleware for the route it wraps.
pub fn layer<S>(
    class: Class,
) -> impl Transform<
    S,
    ServiceRequest,
    Response = ServiceResponse<BoxBody>,
    Error = actix_web::Error,
    InitError = (),
> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>
        + 'static,
{
    actix_web::middleware::from_fn(move |req, next: Next<BoxBody>| guard(class, req, next))
}

/// The key an `Idempotency-Key` value names: 1-255 printable ASCII characters, sent
/// either as a Structured Fields string (`"8e03978e-…"`, the form of
/// draft-ietf-httpapi-idempotency-key-header) or bare (`8e03978e-…`, the form clients
/// sent before it). Both spellings are one key, so a client that starts quoting keeps
/// its retries safe across the change. Every problem is a 400 naming the header.
fn check_key(raw: &HeaderValue) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let refuse = |problem: &str| {
        ApiError::bad_request(
            format!("Idempotency-Key {problem}"),
            "Send 1-255 printable ASCII characters, such as a UUID, one per operation, \
             bare or as a Structured Fields string (in double quotes).",
        )
        .field("Idempotency-Key")
    };
    let key = if bytes.first() == Some(&b'"') {
        // No parameters: the draft defines none, and refusing them keeps the accepted
        // values exactly the ones the OpenAPI pattern describes.
        match Parser::new(bytes).parse_item::<Item>() {
            Ok(Item {
                bare_item: BareItem::String(text),
                params,
            }) if params.is_empty() => text.into(),
            _ => {
                return Err(refuse(
                    "is not a Structured Fields string (a quoted key without parameters)",
                ));
            }
        }
    } else if bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        return Err(refuse("must consist of printable ASCII characters"));
    };
    if key.is_empty() {
        Err(refuse("must not be empty"))
    } else if key.len() > 255 {
        Err(refuse("must be at most 255 characters long"))
    } else {
        Ok(key)
    }
}

/// SHA-256 over what makes two requests the same request. `path` is the path the
/// router matched (percent-decoded), so two spellings of one route are one request.
fn fingerprint(method: &Method, path: &str, query: &str, body: &[u8]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        method.as_str().as_bytes(),
        path.as_bytes(),
        query.as_bytes(),
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.update(body);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The AEAD purpose of a stored response: binds it to its scope and key, so a record
/// moved to another row does not open.
fn purpose(scope: &str, key: &str) -> String {
    format!("fleetpass/idempotency/{}/{scope}/{key}", scope.len())
}

/// A quota policy, named in the `RateLimit-Policy` and `RateLimit` fields. The names
/// say which budget applied and nothing more (no token id, no address): the draft
/// warns that a policy name or partition key must not leak anything sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// The API token's `rateLimitPerMinute`.
    Token,
    /// The per-address budget of public routes.
    Address,
}

impl Policy {
    /// The name, a Structured Fields String (checked when compiled, below).
    const fn text(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Address => "address",
        }
    }
}

/// A limit that applied to a request, and its outcome.
#[derive(Debug, Clone, Copy)]
struct Limited {
    policy: Policy,
    limit: Limit,
    decision: Decision,
}

/// Sets the rate-limit fields of `limited`: draft -11's
/// `RateLimit-Policy: "token";q=300;w=60` and `RateLimit: "token";r=299;t=21`, and the
/// old trio unless `fields` says otherwise.
fn rate_limit_headers(headers: &mut HeaderMap, fields: RateLimitFields, limited: &Limited) {
    let Limited {
        policy,
        limit,
        decision,
    } = *limited;
    // The draft's integers are seconds and counts well inside Structured Fields' range.
    let reset = u32::try_from(decision.reset_after_secs).unwrap_or(u32::MAX);
    let name = policy.text();
    for (header, value) in [
        (
            RATELIMIT_POLICY,
            sf_member(
                name,
                (b'q', decision.limit),
                (b'w', limit.window_secs.get()),
            ),
        ),
        (
            RATELIMIT,
            sf_member(name, (b'r', decision.remaining), (b't', reset)),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_bytes(value.bytes()) {
            headers.insert(header, value);
        }
    }
    if fields == RateLimitFields::Both {
        // Digits straight into header values: no `String` per header (and fewer
        // instructions than `HeaderValue::from(u64)`, which grows a `BytesMut`).
        let mut digits = itoa::Buffer::new();
        for (header, value) in [
            (RATELIMIT_LIMIT, u64::from(decision.limit)),
            (RATELIMIT_REMAINING, u64::from(decision.remaining)),
            (RATELIMIT_RESET, decision.reset_after_secs),
        ] {
            if let Ok(value) = HeaderValue::from_bytes(digits.format(value).as_bytes()) {
                headers.insert(header, value);
            }
        }
    }
}

// The field names, made when compiled: `HeaderName::from_static` at run time checks
// its argument against the standard names on every call.
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// One member of a draft rate-limit field, `"token";q=300;w=60`: a String with two
/// integer parameters, written into a stack buffer. Every response of a limited route
/// carries two of these, and sfv's `ListSerializer` builds each in a `String` it grows
/// piece by piece (7 700 instructions a request under callgrind, a tenth of
/// `GET /api/me`); here the name is a policy's fixed lowercase word (nothing to
/// escape) and the values `u32`s, far inside Structured Fields' integer range, so
/// writing the bytes directly is exact. A test holds it to sfv's serialisation.
fn sf_member(name: &str, first: (u8, u32), second: (u8, u32)) -> SfMember {
    let mut out = SfMember {
        buf: [0; SfMember::CAPACITY],
        len: 0,
    };
    out.push(b"\"");
    out.push(name.as_bytes());
    out.push(b"\"");
    for (key, value) in [first, second] {
        out.push(&[b';', key, b'=']);
        out.push(itoa::Buffer::new().format(value).as_bytes());
    }
    out
}

/// The bytes [`sf_member`] wrote.
struct SfMember {
    buf: [u8; Self::CAPACITY],
    len: usize,
}

impl SfMember {
    /// The longest policy name in quotes and two parameters of ten digits each
    /// (`;q=` and up to `u32::MAX`): 2 + 7 + 2 × 13 = 35 bytes for `address`.
    const CAPACITY: usize = 48;

    fn push(&mut self, bytes: &[u8]) {
        // In bounds by construction: the assertion below checks every policy name.
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

// Every policy's name is a valid Structured Fields String (`constant` fails the build
// otherwise) and its member fits the buffer, whatever its integers.
const _: () = {
    let _ = StringRef::constant(Policy::Token.text());
    let _ = StringRef::constant(Policy::Address.text());
    let longest = Policy::Address.text().len();
    assert!(Policy::Token.text().len() <= longest);
    assert!(2 + longest + 2 * 13 <= SfMember::CAPACITY);
};

/// A finished response the request-context middleware passes on as it is.
fn finished(mut res: HttpResponse) -> HttpResponse {
    res.extensions_mut().insert(Rendered);
    res
}

/// What the guard decided about a request before it runs.
struct Verdict {
    /// The limit the request counted against, and the outcome.
    limited: Option<Limited>,
    /// The idempotency scope: the authenticated credential (or the client address on
    /// public routes). `None` when nobody was authenticated: no key is honoured then.
    scope: Option<String>,
}

/// The guard's own refusal, rendered at once.
struct Refusal {
    error: ApiError,
    limited: Option<Limited>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            limited: None,
        }
    }
}

/// Logs a limiter failure and lets the request through: see `docs/OPERATIONS.md`.
fn fail_open(result: Result<Decision, RepoError>) -> Option<Decision> {
    result
        .map_err(|e| tracing::warn!(error = %e, "rate limiter failed; not limiting"))
        .ok()
}

fn too_many(kind: LimitKind, message: &str, decision: Decision) -> ApiError {
    if let Some(metrics) = Metrics::global() {
        metrics.rate_limited(kind);
    }
    ApiError::new(ErrorCode::RateLimited, message)
        .hint("Wait Retry-After seconds before retrying.")
        .retry_after(decision.reset_after_secs)
        .problem_type(ProblemType::QuotaExceeded)
}

/// The answer to a failing authentication from an address that used up its failures.
fn too_many_failures(decision: Decision) -> ApiError {
    too_many(
        LimitKind::AuthFailures,
        "too many failed authentication attempts from this address",
        decision,
    )
}

/// Counts a failed authentication from `client`; the decision that blocks it when
/// the address has now used up its budget.
async fn count_failure(
    state: &AppState,
    class: Class,
    client: Option<IpAddr>,
    now: Timestamp,
) -> Option<Decision> {
    if let Some(metrics) = Metrics::global() {
        metrics.auth_failed(class);
    }
    let (fail_key, fail_limit) = failures(state, client);
    fail_open(state.guards.limiter.hit(&fail_key, fail_limit, now).await).filter(|d| !d.allowed)
}

/// The failed-authentication budget of an address.
fn failures(state: &AppState, client: Option<IpAddr>) -> (String, Limit) {
    (
        format!("authfail:{}", limit_key(client)),
        Limit::per_minute(state.guards.config.auth_failures_per_minute),
    )
}

/// Decides who is calling and whether they are within their limits.
async fn admit(
    req: &ServiceRequest,
    state: &AppState,
    class: Class,
    client: Option<IpAddr>,
    now: Timestamp,
) -> Result<Verdict, Refusal> {
    let limiter = state.guards.limiter.as_ref();
    let nobody = Verdict {
        limited: None,
        scope: None,
    };
    match class {
        Class::Open => Ok(nobody),
        Class::Public => {
            let limit = Limit::per_minute(state.guards.config.public_per_minute);
            let key = format!("ip:{}", limit_key(client));
            let decision = fail_open(limiter.hit(&key, limit, now).await);
            if let Some(d) = decision.filter(|d| !d.allowed) {
                return Err(Refusal {
                    error: too_many(
                        LimitKind::Address,
                        "rate limit for this address exceeded",
                        d,
                    ),
                    limited: Some(Limited {
                        policy: Policy::Address,
                        limit,
                        decision: d,
                    }),
                });
            }
            Ok(Verdict {
                limited: decision.map(|decision| Limited {
                    policy: Policy::Address,
                    limit,
                    decision,
                }),
                scope: Some(format!(
                    "ip:{}",
                    client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
                )),
            })
        }
        Class::Platform => Ok(Verdict {
            limited: None,
            scope: check_admin(req.request())
                .ok()
                .map(|_| "platform".to_owned()),
        }),
        Class::Agent => {
            let resolved = match bearer_token(req.request()) {
                Some(token) => agents::authenticate(&state.deps, &state.keys, &token)
                    .await
                    .map_err(ApiError::from),
                None => Err(AgentCaller::missing()),
            };
            if let Ok(agent) = &resolved {
                let span = tracing::Span::current();
                span.record("tenant", tracing::field::display(agent.tenant_id));
                span.record(
                    "actor",
                    tracing::field::display(format_args!("agent:{}", agent.id)),
                );
            }
            let scope = resolved.as_ref().ok().map(|a| format!("agent:{}", a.id));
            req.extensions_mut().insert(ResolvedAgent(resolved));
            Ok(Verdict {
                limited: None,
                scope,
            })
        }
        Class::Tenant => {
            let resolved = match presented_token(req.request(), state.config.query_tokens) {
                Ok(presented) => auth::authenticate(&state.deps, &presented)
                    .await
                    .map_err(ApiError::from),
                Err(e) => Err(e),
            };
            let (actor, token) = match resolved {
                Ok(found) => found,
                Err(e) => {
                    // The extractor hands the handler this very error: a 401 (counted
                    // as a failure afterwards) or a store outage's 503 (not counted).
                    req.extensions_mut().insert(ResolvedCaller(Err(e)));
                    return Ok(nobody);
                }
            };
            let span = tracing::Span::current();
            span.record("tenant", tracing::field::display(actor.tenant_id));
            span.record(
                "actor",
                tracing::field::display(format_args!("token:{}", token.id)),
            );
            let limit = Limit::per_minute(token.effective_rate_limit());
            // One string for both: the token's limit key is its idempotency scope.
            let scope = format!("token:{}", token.id);
            let decision = fail_open(limiter.hit(&scope, limit, now).await);
            let limited = decision.map(|decision| Limited {
                policy: Policy::Token,
                limit,
                decision,
            });
            if let Some(d) = decision.filter(|d| !d.allowed) {
                return Err(Refusal {
                    error: too_many(LimitKind::Token, "rate limit of this API token exceeded", d),
                    limited,
                });
            }
            // After the token's own limit counted the request: a refusal writes an
            // audit event, and the limit bounds how many a minute.
            if let Err(e) = auth::check_network(&state.deps, &token, client).await {
                return Err(Refusal {
                    error: e.into(),
                    limited,
                });
            }
            req.extensions_mut()
                .insert(ResolvedCaller(Ok(Authenticated { actor, token })));
            Ok(Verdict {
                limited,
                scope: Some(scope),
            })
        }
    }
}

/// The guard of one route.
async fn guard(
    class: Class,
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(pattern) = req.match_pattern() {
        tracing::Span::current().record("route", pattern.as_str());
    }
    let state = match req.app_data::<web::Data<AppState>>() {
        Some(state) if class != Class::Open => state.clone(),
        _ => return next.call(req).await,
    };
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let client = client_ip(
        req.peer_addr().map(|a| a.ip()),
        req.headers()
            .get_all(HeaderName::from_static("x-forwarded-for")),
        &state.guards.config.trusted_proxies,
    );
    if let Some(ip) = client {
        tracing::Span::current().record("client", tracing::field::display(ip));
    }
    let now = state.deps.now();
    let fields = state.guards.config.rate_limit_fields;
    let refuse = |req: ServiceRequest, refusal: Refusal| {
        let mut res = finished(refusal.error.into_response(&request_id));
        if let Some(limited) = &refusal.limited {
            rate_limit_headers(res.headers_mut(), fields, limited);
        }
        Ok(respond(req, res))
    };
    if class == Class::Platform {
        let (fail_key, fail_limit) = failures(&state, client);
        // Before the key is even compared, so a blocked address learns nothing of it.
        let peeked = state.guards.limiter.peek(&fail_key, fail_limit, now).await;
        if let Some(d) = fail_open(peeked).filter(|d| !d.allowed) {
            return refuse(req, too_many_failures(d).into());
        }
    }
    req.extensions_mut().insert(ClientAddr(client));
    let verdict = match admit(&req, &state, class, client, now).await {
        Ok(verdict) => verdict,
        Err(refusal) if refusal.error.is_failed_authentication() => {
            let blocked = count_failure(&state, class, client, now).await;
            // A failing attempt from a blocked address learns nothing but the block.
            return refuse(
                req,
                blocked.map_or(refusal, |d| too_many_failures(d).into()),
            );
        }
        Err(refusal) => return refuse(req, refusal),
    };
    // Before anything reads the body: the idempotency claim below reads it whole.
    if let Err(error) = uploads::take_turn(&req).await {
        return refuse(
            req,
            Refusal {
                error,
                limited: verdict.limited,
            },
        );
    }
    let key = match req.headers().get(IDEMPOTENCY_KEY) {
        Some(raw) if req.method() == Method::POST => Some(check_key(raw)),
        _ => None,
    };
    let key = match key.transpose() {
        Ok(key) => key,
        Err(error) => {
            return refuse(
                req,
                Refusal {
                    error,
                    limited: verdict.limited,
                },
            );
        }
    };
    let mut res = match (key, verdict.scope) {
        (Some(key), Some(scope)) => {
            match idempotent(&mut req, &state, scope, key, now, &request_id).await {
                Ok(Run::Replayed(res)) => respond(req, res),
                Ok(Run::Claimed(claim)) => match next.call(req).await {
                    Ok(res) => settle(&state, claim, res, &request_id).await,
                    Err(e) => {
                        release(state.guards.idempotency.as_ref(), &claim).await;
                        return Err(e);
                    }
                },
                Err(error) => {
                    return refuse(
                        req,
                        Refusal {
                            error,
                            limited: verdict.limited,
                        },
                    );
                }
            }
        }
        // Rendered here rather than by the request context, so the limit headers set
        // below survive on error responses too.
        _ => {
            let mut res = render_errors(next.call(req).await?, &request_id);
            res.response_mut().extensions_mut().insert(Rendered);
            res
        }
    };
    let failed = res.status() == StatusCode::UNAUTHORIZED
        || res
            .response()
            .extensions()
            .contains::<FailedAuthentication>()
        || (class == Class::Platform && res.status() == StatusCode::FORBIDDEN);
    // Counted only when it failed, so valid credentials cost no look at the count.
    if failed && let Some(d) = count_failure(&state, class, client, now).await {
        // A failing attempt from a blocked address learns nothing but the block.
        let blocked_res = finished(too_many_failures(d).into_response(&request_id));
        res = ServiceResponse::new(res.into_parts().0, blocked_res);
    }
    if let Some(limited) = &verdict.limited {
        rate_limit_headers(res.headers_mut(), fields, limited);
    }
    Ok(res)
}

/// A response to `req`.
fn respond(req: ServiceRequest, res: HttpResponse) -> ServiceResponse<BoxBody> {
    ServiceResponse::new(req.into_parts().0, res)
}

/// Releases a claim whose outcome must not be stored. A failure only delays the next
/// attempt until the claim's lease ends.
async fn release(idempotency: &dyn IdempotencyStore, claim: &Claim) {
    if let Err(e) = idempotency
        .abandon(&claim.scope, &claim.key, claim.claim_id)
        .await
    {
        tracing::warn!(error = %e, "could not release an idempotency key; it frees itself when its lease ends");
    }
}

/// How an idempotent request goes on.
enum Run {
    /// The stored response, to send as it is.
    Replayed(HttpResponse),
    /// The key is ours: run the request, then settle the claim.
    Claimed(Claim),
}

/// Reads the body (up to the route's cap), puts it back for the handler, and claims
/// the key for this request.
async fn idempotent(
    req: &mut ServiceRequest,
    state: &AppState,
    scope: String,
    key: String,
    now: Timestamp,
    request_id: &str,
) -> Result<Run, ApiError> {
    let cap = req.app_data::<BodyLimit>().map_or(BODY_LIMIT, |l| l.0);
    let mut payload = req.parts_mut().1.take();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::bad_request("the request body could not be read", "Send the body again.")
        })?;
        if body.len() + chunk.len() > cap {
            return Err(ApiError::too_large(cap));
        }
        body.extend_from_slice(&chunk);
    }
    let body: Bytes = body.freeze();
    let fingerprint = fingerprint(
        req.method(),
        req.match_info().as_str(),
        req.query_string(),
        &body,
    );
    req.set_payload(Payload::from(body));
    let claim = Claim::new(scope, key, fingerprint, state.deps.ids.new_id(), now);
    let outcome = state
        .guards
        .idempotency
        .begin(&claim)
        .await
        .map_err(|e| ApiError::from(ServiceError::from(e)))?;
    match outcome {
        Begin::Fresh => Ok(Run::Claimed(claim)),
        Begin::Replay(sealed) => {
            let stored = state
                .guards
                .master
                .open(&purpose(&claim.scope, &claim.key), &sealed)
                .ok()
                .and_then(|plain| StoredResponse::decode(&plain));
            let Some(stored) = stored else {
                // A record sealed under another master key, or damaged: it cannot be
                // replayed, and running the request again could do it twice.
                tracing::error!(%request_id, "a stored idempotent response cannot be opened");
                return Err(ApiError::internal());
            };
            let mut res = finished(stored.to_response());
            res.headers_mut().insert(
                HeaderName::from_static(IDEMPOTENT_REPLAYED),
                HeaderValue::from_static("true"),
            );
            Ok(Run::Replayed(res))
        }
        Begin::InFlight => Err(ApiError::new(
            ErrorCode::Conflict,
            "a request with this Idempotency-Key is still in progress",
        )
        .field("Idempotency-Key")
        .hint("Retry once it has finished; the retry then gets its response.")
        .retry_after(1)),
        Begin::Mismatch => Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was already used for a different request",
        )
        .field("Idempotency-Key")
        .hint("Use a new key for every new request; reuse a key only to retry the same request.")),
    }
}

/// Renders the response of a claimed request, stores it (sealed) when it succeeded —
/// anything else releases the key, so a retry runs again — and hands it on.
async fn settle(
    state: &AppState,
    claim: Claim,
    res: ServiceResponse<BoxBody>,
    request_id: &str,
) -> ServiceResponse<BoxBody> {
    let idempotency = state.guards.idempotency.as_ref();
    // Render now, as the request-context middleware would, so the stored bytes are the
    // bytes the client gets.
    let res = render_errors(res, request_id);
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let body = match actix_web::body::to_bytes(body).await {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "could not read a response to store it");
            release(idempotency, &claim).await;
            let res = finished(ApiError::internal().into_response(request_id));
            return ServiceResponse::new(req, res);
        }
    };
    let status = head.status();
    if !status.is_success() {
        // Not stored: a refusal or a failure changed nothing, and a retry runs again.
        release(idempotency, &claim).await;
    } else {
        let plain = StoredResponse::capture(status, head.headers(), body.clone()).encode();
        let sealed = state.guards.master.seal(
            state.deps.secrets.as_ref(),
            &purpose(&claim.scope, &claim.key),
            &plain,
        );
        match idempotency
            .complete(&claim.scope, &claim.key, claim.claim_id, &sealed)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "an idempotency claim lapsed before its request finished; its response was not stored"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not store an idempotent response; a retry after the lease runs again")
            }
        }
    }
    ServiceResponse::new(req, finished(head.set_body(BoxBody::new(body))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &[u8]) -> Result<String, ApiError> {
        check_key(&HeaderValue::from_bytes(raw).unwrap())
    }

    #[test]
    fn keys_are_one_to_255_printable_ascii() {
        assert!(key(b"a").is_ok());
        assert!(key("k".repeat(255).as_bytes()).is_ok());
        assert!(key(b"550e8400-e29b-41d4-a716-446655440000 with spaces").is_ok());
        assert!(key(b"").is_err());
        assert!(key("k".repeat(256).as_bytes()).is_err());
        assert!(key(b"tab\there").is_err());
        let e = key(b"caf\xe9").unwrap_err();
        assert_eq!(e.field_name(), Some("Idempotency-Key"));
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_structured_fields_string_is_the_same_key_as_the_bare_form() {
        let bare = "8e03978e-40d5-43e8-bc93-6894a57f9324";
        assert_eq!(key(bare.as_bytes()).unwrap(), bare);
        assert_eq!(key(format!("\"{bare}\"").as_bytes()).unwrap(), bare);
        // Escapes are undone; parameters are refused.
        assert_eq!(key(br#""a\"b""#).unwrap(), "a\"b");
        assert!(key(br#""k";v=1"#).is_err());
        // The length bound is on the key, not on its quoted spelling.
        assert!(key(format!("\"{}\"", "k".repeat(255)).as_bytes()).is_ok());
        for malformed in [
            &b"\"unterminated"[..],
            b"\"\"",
            b"\"a\" trailing",
            b"\"bad\\q\"",
        ] {
            let e = key(malformed).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{malformed:?}");
            assert_eq!(e.field_name(), Some("Idempotency-Key"));
        }
    }

    #[test]
    fn the_openapi_pattern_accepts_exactly_the_keys_the_guard_accepts() {
        let pattern = regex::Regex::new(crate::openapi::IDEMPOTENCY_KEY_PATTERN).unwrap();
        let long = "k".repeat(255);
        let samples = [
            "a".to_owned(),
            long.clone(),
            format!("{long}k"),
            format!("\"{long}\""),
            format!("\"{long}k\""),
            "\"\"".to_owned(),
            "\"".to_owned(),
            "\"a".to_owned(),
            "\"a\"b".to_owned(),
            "a\"b".to_owned(),
            r#""a\"b""#.to_owned(),
            r#""a\\b""#.to_owned(),
            r#""a\qb""#.to_owned(),
            r#""k";v=1"#.to_owned(),
            "with spaces".to_owned(),
            "~!@#$%^&*()".to_owned(),
        ];
        for sample in samples {
            assert_eq!(
                key(sample.as_bytes()).is_ok(),
                pattern.is_match(&sample),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn rate_limit_fields_follow_draft_11_and_keep_the_trio_on_request() {
        let limited = Limited {
            policy: Policy::Token,
            limit: Limit::per_minute(300),
            decision: Decision {
                allowed: true,
                limit: 300,
                remaining: 299,
                reset_after_secs: 21,
            },
        };
        let header =
            |h: &HeaderMap, name: &str| h.get(name).map(|v| v.to_str().unwrap().to_owned());
        let mut both = HeaderMap::new();
        rate_limit_headers(&mut both, RateLimitFields::Both, &limited);
        assert_eq!(
            header(&both, "ratelimit-policy").unwrap(),
            r#""token";q=300;w=60"#
        );
        assert_eq!(header(&both, "ratelimit").unwrap(), r#""token";r=299;t=21"#);
        assert_eq!(header(&both, "ratelimit-limit").unwrap(), "300");
        assert_eq!(header(&both, "ratelimit-remaining").unwrap(), "299");
        assert_eq!(header(&both, "ratelimit-reset").unwrap(), "21");
        let mut current = HeaderMap::new();
        rate_limit_headers(&mut current, RateLimitFields::Current, &limited);
        assert_eq!(
            header(&current, "ratelimit").unwrap(),
            r#""token";r=299;t=21"#
        );
        assert_eq!(header(&current, "ratelimit-limit"), None);
        assert_eq!(
            RateLimitFields::parse("current"),
            Some(RateLimitFields::Current)
        );
        assert_eq!(RateLimitFields::parse("trio"), None);
    }

    #[test]
    fn rate_limit_members_are_what_sfv_serialises() {
        use sfv::{ListSerializer, key_ref};
        for policy in [Policy::Token, Policy::Address] {
            for (a, b) in [
                (0, 0),
                (1, 60),
                (299, 21),
                (100_000, 59),
                (u32::MAX, u32::MAX),
            ] {
                let mut list = ListSerializer::new();
                list.bare_item(StringRef::constant(policy.text()))
                    .parameter(key_ref("q"), a)
                    .parameter(key_ref("w"), b);
                let expected = list.finish().unwrap();
                let ours = sf_member(policy.text(), (b'q', a), (b'w', b));
                assert_eq!(std::str::from_utf8(ours.bytes()).unwrap(), expected);
            }
        }
    }

    #[test]
    fn fingerprints_separate_method_path_and_body() {
        let a = fingerprint(&Method::POST, "/x", "", b"{}");
        assert_eq!(a, fingerprint(&Method::POST, "/x", "", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/x", "y=1", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/x", "", b"{ }"));
        assert_ne!(a, fingerprint(&Method::PUT, "/x", "", b"{}"));
        // Lengths are framed: moving bytes between parts changes the digest.
        assert_ne!(
            fingerprint(&Method::POST, "/ab", "", b"c"),
            fingerprint(&Method::POST, "/a", "", b"bc")
        );
        assert_ne!(
            fingerprint(&Method::POST, "/a", "b", b""),
            fingerprint(&Method::POST, "/ab", "", b"")
        );
    }
}

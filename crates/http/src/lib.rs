//! The actix-web HTTP adapter of Fleetpass: routes, extractors, the error contract, the
//! request-context middleware, the guard middleware (idempotency keys and rate limits)
//! and the OpenAPI document.
//!
//! Handlers parse requests into domain values, call one use case from
//! `fleetpass_ports::service` and render the result; they hold no business rules.

pub mod docs;
pub mod error;
pub mod extract;
pub mod guard;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod secret_scanning;
pub mod views;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, web};
use std::sync::Arc;

use fleetpass_ports::Deps;
use fleetpass_ports::keys::KeyRing;

pub use extract::AdminKey;
pub use guard::{Class, GuardConfig, Guards, RateLimitFields, TrustedProxies};

/// How long a check-in is held at most unless configured otherwise: Elastic Fleet's
/// default, long enough that a held poll costs a fleet little, short enough that
/// proxies and load balancers between agent and server keep it open.
pub const DEFAULT_MAX_POLL_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Whether `?api_key=` is accepted (`FLEETPASS_QUERY_TOKENS`).
    pub query_tokens: bool,
    /// The platform admin key; `None` turns `/platform/*` off (503).
    pub admin_key: Option<AdminKey>,
    /// The public base URL, for links handed to outsiders.
    pub public_url: String,
    /// The bearer token `/metrics` asks for (`FLEETPASS_METRICS_TOKEN`); `None`: open.
    pub metrics_token: Option<AdminKey>,
    /// The longest a check-in (`POST /agent/jobs/claim?wait=…`) is held
    /// (`FLEETPASS_MAX_POLL_WAIT`); a longer `wait` is shortened to it.
    pub max_poll_wait: std::time::Duration,
    /// The keys secret-scanning partner reports are signed with
    /// (`FLEETPASS_SECRET_SCANNING_KEYS_FILE` or `FLEETPASS_SECRET_SCANNING_KEYS`);
    /// `None` turns `POST /api/public/secret-scanning/github` off (404).
    pub secret_scanning: Option<secret_scanning::PartnerKeys>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            query_tokens: true,
            admin_key: None,
            public_url: "http://127.0.0.1:8080".to_owned(),
            metrics_token: None,
            max_poll_wait: DEFAULT_MAX_POLL_WAIT,
            secret_scanning: None,
        }
    }
}

/// What every handler can reach.
pub struct AppState {
    /// The ports.
    pub deps: Deps,
    /// The signing keys (agent access tokens, JWKS).
    pub keys: Arc<KeyRing>,
    /// HTTP settings.
    pub config: HttpConfig,
    /// Idempotency records, rate limits and their settings.
    pub guards: Guards,
}

/// The whole application: state, body limits, middleware and routes. The server and
/// the in-process tests build the same thing.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(web::PayloadConfig::new(extract::BODY_LIMIT))
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            error::ApiError::bad_request(
                format!("the query string could not be read: {e}"),
                "Check the query parameters.",
            )
            .into()
        }))
        // Every route carries its own guard (`routes::route`), inside the request
        // context, so the guard's answers carry request ids and the error contract.
        .configure(routes::configure)
        .wrap(actix_web::middleware::from_fn(middleware::request_context))
}

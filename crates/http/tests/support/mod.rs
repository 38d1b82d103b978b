//! Shared fixtures of the in-process HTTP tests: an app over the in-memory store with a
//! pinned clock, and helpers that send a request and decode the answer.

#![allow(dead_code)]

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::test::{self, TestRequest};
use actix_web::web;
use fleetpass_domain::audit::AuditActor;
use fleetpass_domain::identity::TenantName;
use fleetpass_http::{AdminKey, AppState, HttpConfig};
use fleetpass_http::{GuardConfig, Guards};
use fleetpass_ports::keys::{KeyRing, MasterKey};
use fleetpass_ports::service::tenants;
use fleetpass_ports::system::{FixedClock, RingSecrets, UuidV7};
use fleetpass_ports::{Clock, Deps};
use fleetpass_store_memory::{MemoryIdempotency, MemoryRateLimiter, MemoryStore};
use serde_json::Value;
use time::macros::datetime;

/// The platform admin key of test apps.
pub const ADMIN_KEY: &str = "test-platform-admin-key";

/// A test app's moving parts.
pub struct Fixture {
    /// Shared state (also given to the app).
    pub state: web::Data<AppState>,
    /// The pinned clock.
    pub clock: Arc<FixedClock>,
    /// The master key sealing the signing keys.
    pub master: MasterKey,
    /// The idempotency records (to look at what is stored).
    pub idempotency: Arc<MemoryIdempotency>,
}

/// A fresh in-memory app state with a pinned clock and its own signing key. Its public
/// and failed-authentication limits are far above what any test sends, so tests of
/// other things never meet them; [`fixture_with`] sets them.
pub async fn fixture(config: HttpConfig) -> Fixture {
    let roomy = GuardConfig {
        public_per_minute: 100_000,
        auth_failures_per_minute: 100_000,
        ..GuardConfig::default()
    };
    fixture_with(config, roomy).await
}

/// As [`fixture`], with the guard's limits and trusted proxies of `guard`.
pub async fn fixture_with(config: HttpConfig, guard: GuardConfig) -> Fixture {
    fixture_on(config, guard, Arc::new(MemoryStore::new())).await
}

/// As [`fixture_with`], over `store` (a PostgreSQL test database, say).
pub async fn fixture_on(
    config: HttpConfig,
    guard: GuardConfig,
    store: Arc<dyn fleetpass_ports::Store>,
) -> Fixture {
    let clock = Arc::new(FixedClock::new(datetime!(2026-11-22 10:00 UTC)));
    let deps = Deps {
        store,
        clock: clock.clone(),
        ids: Arc::new(UuidV7),
        secrets: Arc::new(RingSecrets::default()),
        wakeups: Arc::new(fleetpass_ports::wakeups::LocalWakeups::new(1_000)),
        part_claims: Arc::default(),
    };
    let master = MasterKey::from_bytes(deps.secrets.random_32());
    let keys = KeyRing::load(
        deps.store.clone(),
        deps.secrets.as_ref(),
        master.clone(),
        &config.public_url,
        clock.now(),
    )
    .await
    .unwrap();
    let idempotency = Arc::new(MemoryIdempotency::new());
    let state = web::Data::new(AppState {
        deps,
        keys: Arc::new(keys),
        config,
        guards: Guards {
            idempotency: idempotency.clone(),
            limiter: Arc::new(MemoryRateLimiter::new()),
            master: master.clone(),
            config: guard,
        },
    });
    Fixture {
        state,
        clock,
        master,
        idempotency,
    }
}

/// The default test configuration: query tokens on, admin key set.
pub fn config() -> HttpConfig {
    HttpConfig {
        admin_key: Some(AdminKey::new(ADMIN_KEY)),
        ..HttpConfig::default()
    }
}

/// Creates a tenant straight through the service and returns (tenant id, admin token).
pub async fn tenant(f: &Fixture, name: &str) -> (String, String) {
    let created = tenants::create_tenant(
        &f.state.deps,
        TenantName::new(name).unwrap(),
        AuditActor::Platform,
    )
    .await
    .unwrap();
    (
        created.tenant.id.to_string(),
        created.admin_token.expose().to_owned(),
    )
}

/// A decoded response.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

impl Answer {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the spec's error shape and code, returning the body.
    pub fn error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
        let rid = self.body["requestId"].as_str().unwrap_or_default();
        assert!(
            !rid.is_empty() && Some(rid) == self.header("x-request-id"),
            "{}",
            self.body
        );
        &self.body
    }
}

/// Sends `req` to `app`.
pub async fn send<S, B>(app: &S, req: TestRequest) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = test::read_body(res).await;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

/// A request with a bearer token.
pub fn authed(req: TestRequest, token: &str) -> TestRequest {
    req.insert_header(("Authorization", format!("Bearer {token}")))
}

/// A JSON POST with a bearer token.
pub fn post(path: &str, token: &str, body: Value) -> TestRequest {
    authed(TestRequest::post().uri(path), token).set_json(body)
}

/// The seed 002 body with overrides.
pub fn token_body(overrides: Value) -> Value {
    let mut body = serde_json::json!({
        "name": "ci", "role": "viewer", "allEnvironments": true, "expiresInDays": 30
    });
    if let (Some(b), Some(o)) = (body.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    body
}

//! In-process tests of spec §1's guarantees over the in-memory adapters with a pinned
//! clock: idempotency keys (replay, reuse, bad keys, the 24 h window, 5xx not stored,
//! in-flight conflicts, nothing in plain text at rest) and rate limits (per token, per
//! client address on public endpoints, failed authentication), to the second.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::test::{self, TestRequest};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse};
use fleetpass_http::error::{ApiError, ErrorCode};
use fleetpass_http::{Class, GuardConfig};
use serde_json::{Value, json};
use support::*;
use time::macros::datetime;

macro_rules! app {
    ($f:expr) => {
        test::init_service(fleetpass_http::app($f.state.clone())).await
    };
}

/// A response as raw bytes, to compare replays byte for byte.
struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn send_raw<S, B>(app: &S, req: TestRequest) -> Raw
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let body = test::read_body(res).await;
    Raw {
        status,
        headers,
        body,
    }
}

fn with_key(req: TestRequest, key: &str) -> TestRequest {
    req.insert_header(("Idempotency-Key", key.to_owned()))
}

fn from(req: TestRequest, addr: &str) -> TestRequest {
    req.peer_addr(addr.parse::<SocketAddr>().unwrap())
}

async fn token_names<S, B>(app: &S, admin: &str) -> Vec<String>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let list = send(
        app,
        authed(TestRequest::get().uri("/api/admin/tokens?limit=200"), admin),
    )
    .await;
    list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

// ---------- idempotency ----------

#[actix_web::test]
async fn a_retry_replays_the_first_response_byte_for_byte_and_creates_nothing_twice() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let create = || {
        with_key(
            post(
                "/api/admin/tokens",
                &admin,
                token_body(json!({"name": "deploy"})),
            ),
            "op-1",
        )
    };
    let first = send_raw(&app, create()).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    for _ in 0..2 {
        let again = send_raw(&app, create()).await;
        assert_eq!(again.status, first.status);
        assert_eq!(again.body, first.body, "the replay is the same bytes");
        assert_eq!(again.header("content-type"), first.header("content-type"));
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_ne!(
            again.header("x-request-id"),
            first.header("x-request-id"),
            "the replay is its own request"
        );
    }
    let names = token_names(&app, &admin).await;
    assert_eq!(
        names.iter().filter(|n| *n == "deploy").count(),
        1,
        "one token, however often the request came: {names:?}"
    );
    // Without a key the same request runs again: idempotency is opt-in.
    let plain = send(
        &app,
        post(
            "/api/admin/tokens",
            &admin,
            token_body(json!({"name": "deploy"})),
        ),
    )
    .await;
    assert_eq!(plain.status, 201);
    assert_eq!(plain.header("idempotent-replayed"), None);
}

#[actix_web::test]
async fn refusals_are_not_stored_so_a_corrected_retry_under_the_key_runs() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let call = |body: Value| with_key(post("/api/admin/tokens", &admin, body), "fix-1");
    let first = send_raw(&app, call(token_body(json!({"expiresInDays": 999})))).await;
    assert_eq!(first.status, 422);
    assert_eq!(
        first.json()["requestId"].as_str(),
        first.header("x-request-id")
    );
    assert!(f.idempotency.is_empty(), "a refusal leaves no record");
    let again = send_raw(&app, call(token_body(json!({"expiresInDays": 999})))).await;
    assert_eq!(again.status, 422);
    assert_eq!(again.header("idempotent-replayed"), None, "ran again");
    let fixed = send_raw(&app, call(token_body(json!({})))).await;
    assert_eq!(fixed.status, 201, "{:?}", fixed.body);
    assert_eq!(fixed.header("idempotent-replayed"), None);
    let replayed = send_raw(&app, call(token_body(json!({})))).await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(replayed.body, fixed.body);
}

#[actix_web::test]
async fn a_key_reused_for_another_request_is_422_and_runs_nothing() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let first = send(
        &app,
        with_key(
            post(
                "/api/admin/tokens",
                &admin,
                token_body(json!({"name": "one"})),
            ),
            "k",
        ),
    )
    .await;
    assert_eq!(first.status, 201);
    let other_body = send(
        &app,
        with_key(
            post(
                "/api/admin/tokens",
                &admin,
                token_body(json!({"name": "two"})),
            ),
            "k",
        ),
    )
    .await;
    let body = other_body.error(422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(body["field"], "Idempotency-Key");
    let other_path = send(
        &app,
        with_key(
            post(
                "/api/admin/environments",
                &admin,
                json!({"name": "staging"}),
            ),
            "k",
        ),
    )
    .await;
    other_path.error(422, "IDEMPOTENCY_KEY_REUSED");
    assert!(!token_names(&app, &admin).await.contains(&"two".to_owned()));
}

#[actix_web::test]
async fn keys_belong_to_their_tenant() {
    let f = fixture(config()).await;
    let (_, acme) = tenant(&f, "acme").await;
    let (_, globex) = tenant(&f, "globex").await;
    let app = app!(f);
    let body = || token_body(json!({"name": "shared"}));
    let a = send_raw(
        &app,
        with_key(post("/api/admin/tokens", &acme, body()), "k"),
    )
    .await;
    let b = send_raw(
        &app,
        with_key(post("/api/admin/tokens", &globex, body()), "k"),
    )
    .await;
    assert_eq!(
        (a.status, b.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(
        b.header("idempotent-replayed"),
        None,
        "another tenant's key is not seen"
    );
    assert_ne!(a.json()["token"], b.json()["token"]);
}

#[actix_web::test]
async fn a_quoted_key_is_the_same_key_as_the_bare_one() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let create = |key: &str| {
        with_key(
            post(
                "/api/admin/tokens",
                &admin,
                token_body(json!({"name": "quoted"})),
            ),
            key,
        )
    };
    let key = "8e03978e-40d5-43e8-bc93-6894a57f9324";
    let bare = send_raw(&app, create(key)).await;
    assert_eq!(bare.status, 201);
    // The draft's Structured Fields form of the same key replays the first response.
    let quoted = send_raw(&app, create(&format!("\"{key}\""))).await;
    assert_eq!(quoted.header("idempotent-replayed"), Some("true"));
    assert_eq!(quoted.body, bare.body);
    let names = token_names(&app, &admin).await;
    assert_eq!(names.iter().filter(|n| *n == "quoted").count(), 1);
    // A value that opens a string and never closes it is malformed, not a new key.
    let broken = send(&app, create("\"8e03978e")).await;
    let body = broken.error(400, "VALIDATION_ERROR");
    assert_eq!(body["field"], "Idempotency-Key");
}

#[actix_web::test]
async fn bad_keys_are_refused_naming_the_header() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let long = "k".repeat(256);
    for key in [
        actix_web::http::header::HeaderValue::from_static(""),
        actix_web::http::header::HeaderValue::from_str(&long).unwrap(),
        actix_web::http::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        actix_web::http::header::HeaderValue::from_static("tab\there"),
    ] {
        let req = post(
            "/api/admin/tokens",
            &admin,
            token_body(json!({"name": "bad-key"})),
        )
        .insert_header(("Idempotency-Key", key));
        let res = send(&app, req).await;
        let body = res.error(400, "VALIDATION_ERROR");
        assert_eq!(body["field"], "Idempotency-Key", "{body}");
    }
    assert!(
        !token_names(&app, &admin)
            .await
            .contains(&"bad-key".to_owned())
    );
    let longest = send(
        &app,
        with_key(
            post(
                "/api/admin/tokens",
                &admin,
                token_body(json!({"name": "ok"})),
            ),
            &"k".repeat(255),
        ),
    )
    .await;
    assert_eq!(longest.status, 201, "255 printable characters are a key");
}

#[actix_web::test]
async fn the_window_closes_after_24_hours() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let create = || {
        with_key(
            post(
                "/api/admin/tokens",
                &admin,
                token_body(json!({"name": "daily"})),
            ),
            "daily-1",
        )
    };
    let first = send_raw(&app, create()).await;
    assert_eq!(first.status, 201);
    f.clock.set(datetime!(2026-11-23 09:59:59 UTC));
    let inside = send_raw(&app, create()).await;
    assert_eq!(inside.header("idempotent-replayed"), Some("true"));
    assert_eq!(inside.body, first.body);
    f.clock.set(datetime!(2026-11-23 10:00 UTC));
    let after = send_raw(&app, create()).await;
    assert_eq!(after.status, 201);
    assert_eq!(
        after.header("idempotent-replayed"),
        None,
        "a new window runs again"
    );
    assert_ne!(after.json()["token"], first.json()["token"]);
    assert_eq!(
        token_names(&app, &admin)
            .await
            .iter()
            .filter(|n| *n == "daily")
            .count(),
        2
    );
    // The purge drops the closed window's record and keeps the open one.
    let before = f.idempotency.len();
    let (purged, _) = f.state.guards.purge(f.state.deps.now()).await.unwrap();
    assert_eq!(purged, 0, "the record was taken over by the new window");
    assert_eq!(f.idempotency.len(), before);
    let (purged, _) = f
        .state
        .guards
        .purge(datetime!(2026-11-24 10:00 UTC))
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(f.idempotency.is_empty());
}

/// A handler that fails with a 503 the first time and succeeds afterwards, counting
/// its runs.
async fn flaky(runs: web::Data<AtomicUsize>) -> Result<HttpResponse, ApiError> {
    let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
    if n == 1 {
        return Err(
            ApiError::new(ErrorCode::ServiceUnavailable, "down for a moment").retry_after(1),
        );
    }
    Ok(HttpResponse::Created().json(json!({"run": n})))
}

/// A handler that waits until told to finish.
async fn slow(gate: web::Data<Gate>) -> HttpResponse {
    gate.entered.notify_one();
    gate.release.notified().await;
    HttpResponse::Created().json(json!({"done": true}))
}

struct Gate {
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

/// The real middleware stack around test routes.
macro_rules! test_app {
    ($f:expr, $runs:expr, $gate:expr) => {
        test::init_service(
            App::new()
                .app_data($f.state.clone())
                .app_data($runs.clone())
                .app_data($gate.clone())
                .service(
                    web::resource("/api/flaky")
                        .wrap(fleetpass_http::guard::layer(Class::Tenant))
                        .post(flaky),
                )
                .service(
                    web::resource("/api/slow")
                        .wrap(fleetpass_http::guard::layer(Class::Tenant))
                        .post(slow),
                )
                .wrap(actix_web::middleware::from_fn(
                    fleetpass_http::middleware::request_context,
                )),
        )
        .await
    };
}

#[actix_web::test]
async fn server_errors_are_not_stored_so_a_retry_runs_again() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let runs = web::Data::new(AtomicUsize::new(0));
    let gate = web::Data::new(Gate {
        entered: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    });
    let app = test_app!(f, runs, gate);
    let call = || with_key(post("/api/flaky", &admin, json!({})), "retry-me");
    let failed = send(&app, call()).await;
    failed.error(503, "SERVICE_UNAVAILABLE");
    assert!(f.idempotency.is_empty(), "a 5xx leaves no record");
    let retried = send_raw(&app, call()).await;
    assert_eq!(retried.status, 201);
    assert_eq!(retried.json()["run"], 2);
    assert_eq!(retried.header("idempotent-replayed"), None);
    let replayed = send_raw(&app, call()).await;
    assert_eq!(replayed.body, retried.body);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the replay ran nothing");
}

#[actix_web::test]
async fn the_same_key_while_the_first_request_runs_is_409() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let runs = web::Data::new(AtomicUsize::new(0));
    let gate = web::Data::new(Gate {
        entered: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    });
    let app = test_app!(f, runs, gate);
    let call = || with_key(post("/api/slow", &admin, json!({})), "slow-1");
    let first = send_raw(&app, call());
    let second = async {
        gate.entered.notified().await;
        let second = send(&app, call()).await;
        gate.release.notify_one();
        second
    };
    let (first, second) = futures_util::future::join(first, second).await;
    let body = second.error(409, "CONFLICT");
    assert_eq!(body["field"], "Idempotency-Key");
    assert_eq!(second.header("retry-after"), Some("1"));
    assert_eq!(first.status, 201);
    let third = send_raw(&app, call()).await;
    assert_eq!(third.body, first.body);
    assert_eq!(third.header("idempotent-replayed"), Some("true"));
}

#[actix_web::test]
async fn a_replayed_secret_is_never_stored_in_plain_text() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let create = || {
        with_key(
            post(
                "/api/admin/tokens",
                &admin,
                token_body(json!({"name": "secretive"})),
            ),
            "secret-1",
        )
    };
    let first = send_raw(&app, create()).await;
    let secret = first.json()["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("fpk_"));
    let fleet = send_raw(
        &app,
        with_key(
            post("/tenant/discovery/fleets", &admin, json!({})),
            "fleet-1",
        ),
    )
    .await;
    let enrollment = fleet.json()["enrollmentToken"].as_str().unwrap().to_owned();
    let stored = f.idempotency.stored_responses();
    assert_eq!(stored.len(), 2, "both responses are stored");
    for record in &stored {
        for plain in [
            &secret[4..],
            &enrollment[4..],
            "fpk_",
            "fpe_",
            "secretive",
            "\"token\"",
        ] {
            assert!(
                !record.windows(plain.len()).any(|w| w == plain.as_bytes()),
                "a stored record holds {plain:?} in plain text"
            );
        }
    }
    let again = send_raw(&app, create()).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["token"].as_str(), Some(secret.as_str()));
}

#[actix_web::test]
async fn public_keys_are_scoped_by_client_address() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let token = fleet.body["enrollmentToken"].as_str().unwrap().to_owned();
    let enroll = |addr: &str| {
        with_key(
            from(
                TestRequest::post().uri("/agent/enroll").set_json(json!({
                    "enrollmentToken": token, "hostname": "h1", "platform": "linux"
                })),
                addr,
            ),
            "enroll-1",
        )
    };
    let first = send_raw(&app, enroll("198.51.100.7:5000")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let again = send_raw(&app, enroll("198.51.100.7:6000")).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        again.json()["agentSecret"],
        first.json()["agentSecret"],
        "the retry gets the agent's credentials, not a refusal of the used token"
    );
    let elsewhere = send(&app, enroll("203.0.113.9:5000")).await;
    elsewhere.error(401, "UNAUTHORIZED");
}

#[actix_web::test]
async fn an_oversized_body_with_a_key_is_413() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024));
    let req = with_key(
        authed(TestRequest::post().uri("/api/admin/tokens"), &admin)
            .insert_header(("Content-Type", "application/json"))
            .set_payload(big),
        "big-1",
    );
    send(&app, req).await.error(413, "VALIDATION_ERROR");
    assert!(f.idempotency.is_empty());
}

// ---------- rate limits ----------

#[actix_web::test]
async fn a_token_limited_to_5_a_minute_gets_exactly_5_and_a_retry_after_to_the_second() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let created = send(
        &app,
        post(
            "/api/admin/tokens",
            &admin,
            token_body(json!({"name": "slow", "rateLimitPerMinute": 5})),
        ),
    )
    .await;
    let limited = created.body["token"].as_str().unwrap().to_owned();
    f.clock.set(datetime!(2026-11-22 10:05:20 UTC));
    let me = || authed(TestRequest::get().uri("/api/me"), &limited);
    for n in 1..=5 {
        let ok = send(&app, me()).await;
        assert_eq!(ok.status, 200, "request {n}");
        assert_eq!(ok.header("ratelimit-policy"), Some(r#""token";q=5;w=60"#));
        assert_eq!(
            ok.header("ratelimit"),
            Some(format!(r#""token";r={};t=40"#, 5 - n).as_str())
        );
        assert_eq!(ok.header("ratelimit-limit"), Some("5"));
        assert_eq!(
            ok.header("ratelimit-remaining"),
            Some((5 - n).to_string().as_str())
        );
        assert_eq!(ok.header("ratelimit-reset"), Some("40"));
    }
    let refused = send(&app, me()).await;
    let body = refused.error(429, "RATE_LIMITED");
    assert_eq!(body["retryAfterSeconds"], 40);
    assert_eq!(refused.header("retry-after"), Some("40"));
    assert_eq!(refused.header("ratelimit"), Some(r#""token";r=0;t=40"#));
    assert_eq!(
        body["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(refused.header("ratelimit-remaining"), Some("0"));
    f.clock.set(datetime!(2026-11-22 10:05:45 UTC));
    let still = send(&app, me()).await;
    still.error(429, "RATE_LIMITED");
    assert_eq!(still.header("retry-after"), Some("15"));
    // Other tokens have their own budget (the default 300).
    let other = send(&app, authed(TestRequest::get().uri("/api/me"), &admin)).await;
    assert_eq!(other.status, 200);
    assert_eq!(
        other.header("ratelimit-policy"),
        Some(r#""token";q=300;w=60"#)
    );
    // The window recovers at the minute.
    f.clock.set(datetime!(2026-11-22 10:06 UTC));
    let recovered = send(&app, me()).await;
    assert_eq!(recovered.status, 200);
    assert_eq!(recovered.header("ratelimit-remaining"), Some("4"));
    assert_eq!(recovered.header("ratelimit-reset"), Some("60"));
    // Open routes are not limited and carry no limit headers.
    let health = send(&app, TestRequest::get().uri("/healthz")).await;
    assert_eq!(health.header("ratelimit-limit"), None);
    assert_eq!(health.header("ratelimit"), None);
}

fn revoke(addr: &str) -> TestRequest {
    from(
        TestRequest::post()
            .uri("/api/public/revocations")
            .set_json(json!({"token": "not a secret"})),
        addr,
    )
}

#[actix_web::test]
async fn public_endpoints_are_limited_per_client_address() {
    let guard = GuardConfig {
        public_per_minute: 3,
        ..GuardConfig::default()
    };
    let f = fixture_with(config(), guard).await;
    let app = app!(f);
    for _ in 0..3 {
        let res = send(&app, revoke("198.51.100.7:1000")).await;
        assert_eq!(res.status, 422, "{}", res.body);
        assert_eq!(
            res.header("ratelimit-policy"),
            Some(r#""address";q=3;w=60"#)
        );
    }
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let forged = revoke("198.51.100.7:1001").insert_header(("X-Forwarded-For", "192.0.2.1"));
    let refused = send(&app, forged).await;
    refused.error(429, "RATE_LIMITED");
    assert_eq!(refused.header("retry-after"), Some("60"));
    let other = send(&app, revoke("203.0.113.9:1000")).await;
    assert_eq!(other.status, 422, "another address has its own budget");
}

#[actix_web::test]
async fn agents_sharing_an_address_are_not_limited_by_it() {
    let guard = GuardConfig {
        public_per_minute: 2,
        ..GuardConfig::default()
    };
    let f = fixture_with(config(), guard).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let from = |req: TestRequest| req.peer_addr("198.51.100.7:1000".parse().unwrap());
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let enroll = json!({"enrollmentToken": fleet.body["enrollmentToken"], "hostname": "h", "platform": "linux"});
    let enrolled = send(
        &app,
        from(TestRequest::post().uri("/agent/enroll").set_json(enroll)),
    )
    .await;
    assert_eq!(enrolled.status, 201, "{}", enrolled.body);
    let access = enrolled.body["accessToken"].as_str().unwrap().to_owned();
    // Far more heartbeats from that one address than the per-address budget of 2.
    for _ in 0..10 {
        let beat =
            from(authed(TestRequest::post().uri("/agent/heartbeat"), &access).set_json(json!({})));
        assert_eq!(send(&app, beat).await.status, 200);
    }
    // The per-address budget still guards enrollment.
    let again = json!({"enrollmentToken": "fpe_x", "hostname": "h", "platform": "linux"});
    assert_eq!(
        send(
            &app,
            from(
                TestRequest::post()
                    .uri("/agent/enroll")
                    .set_json(again.clone())
            )
        )
        .await
        .status,
        401
    );
    send(
        &app,
        from(TestRequest::post().uri("/agent/enroll").set_json(again)),
    )
    .await
    .error(429, "RATE_LIMITED");
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_limited() {
    let guard = GuardConfig {
        public_per_minute: 1,
        trusted_proxies: fleetpass_http::TrustedProxies::parse("10.0.0.0/8").unwrap(),
        ..GuardConfig::default()
    };
    let f = fixture_with(config(), guard).await;
    let app = app!(f);
    let via_proxy = |client: &str| {
        revoke("10.1.2.3:443").insert_header(("X-Forwarded-For", format!("6.6.6.6, {client}")))
    };
    assert_eq!(send(&app, via_proxy("192.0.2.1")).await.status, 422);
    assert_eq!(
        send(&app, via_proxy("192.0.2.2")).await.status,
        422,
        "each client behind the proxy has its own budget"
    );
    send(&app, via_proxy("192.0.2.1"))
        .await
        .error(429, "RATE_LIMITED");
}

#[actix_web::test]
async fn repeated_failed_authentication_is_throttled_per_address() {
    let guard = GuardConfig {
        auth_failures_per_minute: 3,
        ..GuardConfig::default()
    };
    let f = fixture_with(config(), guard).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let me = |token: &str, addr: &str| from(authed(TestRequest::get().uri("/api/me"), token), addr);
    let wrong = "fpk_wrong";
    for _ in 0..3 {
        send(&app, me(wrong, "198.51.100.7:1"))
            .await
            .error(401, "UNAUTHORIZED");
    }
    let refused = send(&app, me(wrong, "198.51.100.7:1")).await;
    refused.error(429, "RATE_LIMITED");
    assert_eq!(refused.header("retry-after"), Some("60"));
    let good = send(&app, me(&admin, "198.51.100.7:2")).await;
    assert_eq!(
        good.status, 200,
        "a valid credential from a blocked address still works"
    );
    let elsewhere = send(&app, me(wrong, "203.0.113.9:1")).await;
    elsewhere.error(401, "UNAUTHORIZED");
    f.clock.set(datetime!(2026-11-22 10:01 UTC));
    let next_window = send(&app, me(wrong, "198.51.100.7:3")).await;
    next_window.error(401, "UNAUTHORIZED");
}

#[test]
fn the_defaults_are_the_specs() {
    let c = GuardConfig::default();
    assert_eq!((c.public_per_minute, c.auth_failures_per_minute), (60, 20));
    assert!(c.trusted_proxies.is_empty());
}

// ---------- network restrictions ----------

#[actix_web::test]
async fn a_token_works_only_from_its_networks_and_refusals_are_audited() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let created = send(
        &app,
        post(
            "/api/admin/tokens",
            &admin,
            token_body(
                json!({"name": "office", "allowedCidrs": ["198.51.100.9/24", "2001:db8::/32"]}),
            ),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["allowedCidrs"],
        json!(["198.51.100.0/24", "2001:db8::/32"]),
        "stored and shown as networks"
    );
    let (id, office) = (
        created.body["id"].as_str().unwrap().to_owned(),
        created.body["token"].as_str().unwrap().to_owned(),
    );
    let me = |addr: &str| from(authed(TestRequest::get().uri("/api/me"), &office), addr);
    assert_eq!(send(&app, me("198.51.100.7:4000")).await.status, 200);
    assert_eq!(send(&app, me("[2001:db8::5]:4000")).await.status, 200);
    let outside = send(&app, me("203.0.113.9:4000")).await;
    let body = outside.error(403, "FORBIDDEN_SCOPE");
    let hint = body["hint"].as_str().unwrap();
    assert!(
        hint.contains("allowedCidrs") && hint.contains("203.0.113.9"),
        "{hint}"
    );
    // No address at all is no exception: a restriction never fails open.
    send(&app, authed(TestRequest::get().uri("/api/me"), &office))
        .await
        .error(403, "FORBIDDEN_SCOPE");
    let audit = send(
        &app,
        authed(
            TestRequest::get().uri("/api/admin/audit-events?action=token.network_refused"),
            &admin,
        ),
    )
    .await;
    let events = audit.body["items"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{}", audit.body);
    assert_eq!(events[0]["targetId"], id.as_str());
    assert!(
        !audit.body.to_string().contains(&office),
        "no secret in the audit log"
    );

    // A rotation keeps the networks; a PATCH replaces or lifts them.
    let rotated = send(
        &app,
        post(&format!("/api/admin/tokens/{id}/rotate"), &admin, json!({})),
    )
    .await;
    assert_eq!(rotated.body["allowedCidrs"], created.body["allowedCidrs"]);
    let fresh = rotated.body["token"].as_str().unwrap().to_owned();
    send(
        &app,
        from(
            authed(TestRequest::get().uri("/api/me"), &fresh),
            "203.0.113.9:1",
        ),
    )
    .await
    .error(403, "FORBIDDEN_SCOPE");
    let patch = |cidrs: Value| {
        authed(
            TestRequest::patch().uri(&format!("/api/admin/tokens/{id}")),
            &admin,
        )
        .set_json(json!({"allowedCidrs": cidrs}))
    };
    let lifted = send(&app, patch(json!([]))).await;
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    assert_eq!(lifted.body["allowedCidrs"], json!([]));
    assert_eq!(send(&app, me("203.0.113.9:4000")).await.status, 200);
    let moved = send(&app, patch(json!(["203.0.113.0/24"]))).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(send(&app, me("203.0.113.9:4000")).await.status, 200);
    send(&app, me("198.51.100.7:4000"))
        .await
        .error(403, "FORBIDDEN_SCOPE");

    // Bad lists name the field and change nothing.
    let many: Vec<String> = (0..33).map(|i| format!("10.{i}.0.0/16")).collect();
    for bad in [json!(["10.0.0.0/33"]), json!(["office"]), json!(many)] {
        let refused = send(
            &app,
            post(
                "/api/admin/tokens",
                &admin,
                token_body(json!({"name": "bad", "allowedCidrs": bad})),
            ),
        )
        .await;
        assert_eq!(
            refused.error(422, "VALIDATION_ERROR")["field"],
            "allowedCidrs"
        );
        assert_eq!(
            send(&app, patch(bad)).await.error(422, "VALIDATION_ERROR")["field"],
            "allowedCidrs"
        );
    }
}

#[actix_web::test]
async fn network_refusals_count_as_failed_authentications() {
    let guard = GuardConfig {
        auth_failures_per_minute: 3,
        ..GuardConfig::default()
    };
    let f = fixture_with(config(), guard).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let created = send(
        &app,
        post(
            "/api/admin/tokens",
            &admin,
            token_body(json!({"allowedCidrs": ["10.0.0.0/8"]})),
        ),
    )
    .await;
    let token = created.body["token"].as_str().unwrap().to_owned();
    let me = |addr: &str| from(authed(TestRequest::get().uri("/api/me"), &token), addr);
    for _ in 0..3 {
        send(&app, me("203.0.113.9:1"))
            .await
            .error(403, "FORBIDDEN_SCOPE");
    }
    send(&app, me("203.0.113.9:1"))
        .await
        .error(429, "RATE_LIMITED");
    // The allowed network is another address, with its own budget.
    assert_eq!(send(&app, me("10.1.2.3:1")).await.status, 200);
}

#[actix_web::test]
async fn an_enrollment_token_enrolls_only_from_its_networks_and_a_refusal_uses_nothing() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let fleet_id = fleet.body["fleetId"].as_str().unwrap();
    let issued = send(
        &app,
        post(
            &format!("/tenant/discovery/fleets/{fleet_id}/enrollment-tokens"),
            &admin,
            json!({"maxUses": 1, "allowedCidrs": ["198.51.100.0/24"]}),
        ),
    )
    .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let secret = issued.body["enrollmentToken"].as_str().unwrap().to_owned();
    let enroll = |addr: &str| {
        from(
            TestRequest::post().uri("/agent/enroll").set_json(
                json!({"enrollmentToken": secret, "hostname": "db-1", "platform": "linux"}),
            ),
            addr,
        )
    };
    send(&app, enroll("203.0.113.9:1"))
        .await
        .error(403, "FORBIDDEN_SCOPE");
    let inside = send(&app, enroll("198.51.100.7:1")).await;
    assert_eq!(
        inside.status, 201,
        "the refusal used up nothing: {}",
        inside.body
    );
    let listed = send(
        &app,
        authed(
            TestRequest::get().uri(&format!(
                "/tenant/discovery/fleets/{fleet_id}/enrollment-tokens"
            )),
            &admin,
        ),
    )
    .await;
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["allowedCidrs"] == json!(["198.51.100.0/24"])),
        "{}",
        listed.body
    );
    let audit = send(
        &app,
        authed(
            TestRequest::get()
                .uri("/api/admin/audit-events?action=enrollment_token.network_refused"),
            &admin,
        ),
    )
    .await;
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        audit.body
    );
}

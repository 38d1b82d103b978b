//! In-process tests of the HTTP contract over the in-memory store: the error contract,
//! authentication, RBAC, tenant isolation and the token administration API (seed 002)
//! at every bound.

mod support;

use actix_web::test::{self, TestRequest};
use serde_json::{Value, json};
use support::*;

macro_rules! app {
    ($f:expr) => {
        test::init_service(fleetpass_http::app($f.state.clone())).await
    };
}

// ---------- the error contract ----------

#[actix_web::test]
async fn unknown_routes_and_methods_answer_in_the_error_format() {
    let f = fixture(config()).await;
    let app = app!(f);
    send(&app, TestRequest::get().uri("/nope"))
        .await
        .error(404, "NOT_FOUND");
    send(&app, TestRequest::put().uri("/api/admin/tokens"))
        .await
        .error(405, "VALIDATION_ERROR");
    send(&app, TestRequest::delete().uri("/healthz"))
        .await
        .error(405, "VALIDATION_ERROR");
}

#[actix_web::test]
async fn unreadable_bodies_are_400_and_oversized_413() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let raw = |ct: &str, body: &'static str| {
        authed(TestRequest::post().uri("/api/admin/tokens"), &admin)
            .insert_header(("Content-Type", ct.to_owned()))
            .set_payload(body)
    };
    send(&app, raw("application/json", "{not json"))
        .await
        .error(400, "VALIDATION_ERROR");
    send(&app, raw("application/json", "[1,2]"))
        .await
        .error(400, "VALIDATION_ERROR");
    send(&app, raw("text/plain", "{}"))
        .await
        .error(400, "VALIDATION_ERROR");
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 1));
    let req = authed(TestRequest::post().uri("/api/admin/tokens"), &admin)
        .insert_header(("Content-Type", "application/json"))
        .set_payload(big);
    send(&app, req).await.error(413, "VALIDATION_ERROR");
}

#[actix_web::test]
async fn request_ids_are_kept_when_valid_and_made_otherwise() {
    let f = fixture(config()).await;
    let app = app!(f);
    let kept = send(
        &app,
        TestRequest::get()
            .uri("/healthz")
            .insert_header(("X-Request-Id", "abc.DEF-12_3")),
    )
    .await;
    assert_eq!(kept.header("x-request-id"), Some("abc.DEF-12_3"));
    let replaced = send(
        &app,
        TestRequest::get()
            .uri("/healthz")
            .insert_header(("X-Request-Id", "bad id!")),
    )
    .await;
    assert!(replaced.header("x-request-id").unwrap().starts_with("req_"));
    let made = send(&app, TestRequest::get().uri("/nope")).await;
    assert!(made.body["requestId"].as_str().unwrap().starts_with("req_"));
}

#[actix_web::test]
async fn health_and_readiness() {
    let f = fixture(config()).await;
    let app = app!(f);
    let ready = send(&app, TestRequest::get().uri("/readyz")).await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.body,
        json!({"status": "ready", "persistence": "memory"})
    );
    assert_eq!(
        send(&app, TestRequest::get().uri("/healthz")).await.body["status"],
        "ok"
    );
}

// ---------- authentication ----------

#[actix_web::test]
async fn a_token_works_from_each_of_the_three_places() {
    let f = fixture(config()).await;
    let (tenant_id, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let bearer = send(&app, authed(TestRequest::get().uri("/api/me"), &admin)).await;
    assert_eq!(bearer.status, 200, "{}", bearer.body);
    assert_eq!(bearer.body["tenantId"], tenant_id.as_str());
    assert_eq!(bearer.body["token"]["role"], "admin");
    let header = send(
        &app,
        TestRequest::get()
            .uri("/api/me")
            .insert_header(("x-api-key", admin.clone())),
    )
    .await;
    assert_eq!(header.status, 200);
    let query = send(
        &app,
        TestRequest::get().uri(&format!("/api/me?api_key={admin}")),
    )
    .await;
    assert_eq!(query.status, 200);
}

#[actix_web::test]
async fn query_tokens_can_be_turned_off() {
    let f = fixture(fleetpass_http::HttpConfig {
        query_tokens: false,
        ..config()
    })
    .await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let res = send(
        &app,
        TestRequest::get().uri(&format!("/api/me?api_key={admin}")),
    )
    .await;
    res.error(401, "UNAUTHORIZED");
    assert!(
        res.body["message"]
            .as_str()
            .unwrap()
            .contains("query string")
    );
}

#[actix_web::test]
async fn missing_malformed_and_unknown_tokens_are_401_with_a_challenge() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let none = send(&app, TestRequest::get().uri("/api/me")).await;
    none.error(401, "UNAUTHORIZED");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let mut typo = admin.clone();
    typo.replace_range(10..11, if &admin[10..11] == "A" { "B" } else { "A" });
    let res = send(&app, authed(TestRequest::get().uri("/api/me"), &typo)).await;
    assert!(
        res.error(401, "UNAUTHORIZED")["message"]
            .as_str()
            .unwrap()
            .contains("checksum")
    );
    let basic = TestRequest::get()
        .uri("/api/me")
        .insert_header(("Authorization", "Basic Zm9vOmJhcg=="));
    send(&app, basic).await.error(401, "UNAUTHORIZED");
    let unknown = fleetpass_domain::secret::PlainSecret::from_random(
        fleetpass_domain::secret::SecretKind::ApiToken,
        [9; 32],
    );
    let res = send(
        &app,
        authed(TestRequest::get().uri("/api/me"), unknown.expose()),
    )
    .await;
    assert!(
        res.error(401, "UNAUTHORIZED")["message"]
            .as_str()
            .unwrap()
            .contains("unknown")
    );
    let share = fleetpass_domain::secret::PlainSecret::from_random(
        fleetpass_domain::secret::SecretKind::Share,
        [9; 32],
    );
    send(
        &app,
        authed(TestRequest::get().uri("/api/me"), share.expose()),
    )
    .await
    .error(401, "UNAUTHORIZED");
}

#[actix_web::test]
async fn tokens_expire_at_the_instant_and_revocation_is_immediate() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let created = send(
        &app,
        post(
            "/api/admin/tokens",
            &admin,
            token_body(json!({"expiresInDays": 1})),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let token = created.body["token"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    f.clock
        .advance(time::Duration::days(1) - time::Duration::seconds(1));
    assert_eq!(
        send(&app, authed(TestRequest::get().uri("/api/me"), &token))
            .await
            .status,
        200
    );
    f.clock.advance(time::Duration::seconds(1));
    let expired = send(&app, authed(TestRequest::get().uri("/api/me"), &token)).await;
    assert!(
        expired.error(401, "UNAUTHORIZED")["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    let second = send(
        &app,
        post("/api/admin/tokens", &admin, token_body(json!({}))),
    )
    .await;
    let token = second.body["token"].as_str().unwrap().to_owned();
    let id2 = second.body["id"].as_str().unwrap().to_owned();
    let revoke = send(
        &app,
        authed(
            TestRequest::delete().uri(&format!("/api/admin/tokens/{id2}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(revoke.status, 204);
    let res = send(&app, authed(TestRequest::get().uri("/api/me"), &token)).await;
    assert!(
        res.error(401, "UNAUTHORIZED")["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let again = send(
        &app,
        authed(
            TestRequest::delete().uri(&format!("/api/admin/tokens/{id2}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(again.status, 204, "revoking twice is a no-op");
    let listed = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/api/admin/tokens/{id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(listed.body["status"], "expired");
}

#[actix_web::test]
async fn last_used_is_recorded_coarsely() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let me = send(&app, authed(TestRequest::get().uri("/api/me"), &admin)).await;
    let id = me.body["token"]["id"].as_str().unwrap().to_owned();
    let first = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/api/admin/tokens/{id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(first.body["lastUsedAt"], "2026-11-22T10:00:00Z");
    f.clock.advance(time::Duration::seconds(30));
    let within = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/api/admin/tokens/{id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(
        within.body["lastUsedAt"], "2026-11-22T10:00:00Z",
        "at most one write a minute"
    );
    f.clock.advance(time::Duration::seconds(30));
    let after = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/api/admin/tokens/{id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(after.body["lastUsedAt"], "2026-11-22T10:01:00Z");
}

// ---------- POST /api/admin/tokens (seed 002) ----------

#[actix_web::test]
async fn the_seed_request_creates_a_token_shown_once() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    // The seed's body names both owners with placeholder ids; a real client names one.
    let body =
        json!({"name": "example", "role": "admin", "allEnvironments": true, "expiresInDays": 1});
    let created = send(&app, post("/api/admin/tokens", &admin, body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let token = created.body["token"].as_str().unwrap();
    assert!(token.starts_with("fpk_") && token.len() == 53);
    assert_eq!(created.body["name"], "example");
    assert_eq!(created.body["role"], "admin");
    assert_eq!(created.body["allEnvironments"], true);
    assert_eq!(created.body["expiresAt"], "2026-11-23T10:00:00Z");
    assert_eq!(created.body["rateLimitPerMinute"], 300);
    assert_eq!(created.body["tokenHint"], format!("fpk_…{}", &token[49..]));
    let id = created.body["id"].as_str().unwrap();
    let read = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/api/admin/tokens/{id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(read.status, 200);
    assert!(
        read.body.get("token").is_none(),
        "the secret is shown only once"
    );
    let list = send(
        &app,
        authed(TestRequest::get().uri("/api/admin/tokens"), &admin),
    )
    .await;
    assert!(!list.body.to_string().contains(token), "never in a listing");
    assert_eq!(
        send(&app, authed(TestRequest::get().uri("/api/me"), token))
            .await
            .status,
        200
    );
}

async fn create_status(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    admin: &str,
    body: Value,
) -> Answer {
    send(app, post("/api/admin/tokens", admin, body)).await
}

#[actix_web::test]
async fn name_and_expiry_bounds() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    for (name, ok) in [
        ("".to_owned(), false),
        ("a".to_owned(), true),
        ("a".repeat(100), true),
        ("a".repeat(101), false),
    ] {
        let res = create_status(&app, &admin, token_body(json!({"name": name}))).await;
        if ok {
            assert_eq!(res.status, 201, "{} chars: {}", name.len(), res.body);
        } else {
            assert_eq!(res.error(422, "VALIDATION_ERROR")["field"], "name");
            assert_eq!(
                res.body["message"],
                "name must be between 1 and 100 characters"
            );
        }
    }
    // A control character is named as such, not as a length problem; the length is
    // counted as sent (the OpenAPI document's maxLength), and the name is kept trimmed.
    let res = create_status(&app, &admin, token_body(json!({"name": "ci\u{7}"}))).await;
    assert_eq!(res.error(422, "VALIDATION_ERROR")["field"], "name");
    assert_eq!(
        res.body["message"],
        "name must be text without control characters"
    );
    let padded = format!(" {} ", "a".repeat(99));
    let res = create_status(&app, &admin, token_body(json!({"name": padded}))).await;
    assert_eq!(res.error(422, "VALIDATION_ERROR")["field"], "name");
    let res = create_status(&app, &admin, token_body(json!({"name": "  ci  "}))).await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["name"], "ci");
    // JSON Schema's integer (and so the document) counts 5.0 as an integer; so does the
    // server. A fraction is still refused.
    let res = create_status(&app, &admin, token_body(json!({"expiresInDays": 30.0}))).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let res = create_status(&app, &admin, token_body(json!({"expiresInDays": 30.5}))).await;
    assert_eq!(res.error(422, "VALIDATION_ERROR")["field"], "expiresInDays");
    for (days, ok) in [
        (0, false),
        (1, true),
        (365, true),
        (366, false),
        (-1, false),
    ] {
        let res = create_status(&app, &admin, token_body(json!({"expiresInDays": days}))).await;
        if ok {
            assert_eq!(res.status, 201, "{days}: {}", res.body);
        } else {
            let body = res.error(422, "VALIDATION_ERROR");
            assert_eq!(body["field"], "expiresInDays");
            assert_eq!(body["message"], "expiresInDays must be between 1 and 365");
            assert!(body["hint"].is_string());
        }
    }
    for (limit, ok) in [(0, false), (1, true), (100_000, true), (100_001, false)] {
        let res = create_status(
            &app,
            &admin,
            token_body(json!({"rateLimitPerMinute": limit})),
        )
        .await;
        assert_eq!(
            res.status.as_u16(),
            if ok { 201 } else { 422 },
            "{limit}: {}",
            res.body
        );
    }
}

#[actix_web::test]
async fn required_fields_types_and_enums() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    for field in ["name", "role", "allEnvironments", "expiresInDays"] {
        let res = create_status(&app, &admin, token_body(json!({ field: null }))).await;
        let body = res.error(422, "VALIDATION_ERROR");
        assert_eq!(body["field"], field);
        assert_eq!(body["message"], format!("{field} is required"));
    }
    let res = create_status(&app, &admin, token_body(json!({"role": "owner"}))).await;
    assert_eq!(res.error(422, "VALIDATION_ERROR")["field"], "role");
    let res = create_status(&app, &admin, token_body(json!({"expiresInDays": "30"}))).await;
    assert_eq!(res.error(422, "VALIDATION_ERROR")["field"], "expiresInDays");
    let res = create_status(&app, &admin, token_body(json!({"surprise": 1}))).await;
    assert_eq!(res.error(422, "VALIDATION_ERROR")["field"], "surprise");
    let res = create_status(
        &app,
        &admin,
        token_body(json!({"name": "", "expiresInDays": 0})),
    )
    .await;
    let body = res.error(422, "VALIDATION_ERROR");
    assert_eq!(
        body["details"].as_array().map(Vec::len),
        Some(2),
        "every wrong field is listed: {body}"
    );
}

#[actix_web::test]
async fn environment_scope_rules() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let envs = send(
        &app,
        authed(TestRequest::get().uri("/api/admin/environments"), &admin),
    )
    .await;
    let production = envs.body["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(envs.body["items"][0]["name"], "production");

    let empty = create_status(&app, &admin, token_body(json!({"allEnvironments": false}))).await;
    assert_eq!(
        empty.error(422, "VALIDATION_ERROR")["field"],
        "environmentIds"
    );
    let empty_list = create_status(
        &app,
        &admin,
        token_body(json!({"allEnvironments": false, "environmentIds": []})),
    )
    .await;
    assert_eq!(
        empty_list.error(422, "VALIDATION_ERROR")["field"],
        "environmentIds"
    );
    let both = create_status(
        &app,
        &admin,
        token_body(json!({"allEnvironments": true, "environmentIds": [production]})),
    )
    .await;
    assert_eq!(
        both.error(422, "VALIDATION_ERROR")["field"],
        "environmentIds"
    );
    let all_with_empty = create_status(
        &app,
        &admin,
        token_body(json!({"allEnvironments": true, "environmentIds": []})),
    )
    .await;
    assert_eq!(all_with_empty.status, 201);
    let unknown = uuid_like();
    let res = create_status(
        &app,
        &admin,
        token_body(json!({"allEnvironments": false, "environmentIds": [unknown]})),
    )
    .await;
    assert_eq!(
        res.error(422, "VALIDATION_ERROR")["field"],
        "environmentIds"
    );
    let garbage = create_status(
        &app,
        &admin,
        token_body(json!({"allEnvironments": false, "environmentIds": ["x"]})),
    )
    .await;
    assert_eq!(
        garbage.error(422, "VALIDATION_ERROR")["field"],
        "environmentIds"
    );
    let scoped = create_status(
        &app,
        &admin,
        token_body(json!({"allEnvironments": false, "environmentIds": [production]})),
    )
    .await;
    assert_eq!(scoped.status, 201, "{}", scoped.body);
    assert_eq!(scoped.body["environmentIds"], json!([production]));
}

fn uuid_like() -> String {
    "0190f5d2-0000-7000-8000-000000000000".to_owned()
}

/// Creates a token with `body` overrides and returns its secret.
async fn mint(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    admin: &str,
    overrides: Value,
) -> String {
    let res = create_status(app, admin, token_body(overrides)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.body["token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn owner_rules_and_no_escalation() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let viewer_user = send(
        &app,
        post(
            "/api/admin/users",
            &admin,
            json!({"email": "v@example.com", "role": "viewer"}),
        ),
    )
    .await;
    assert_eq!(viewer_user.status, 201, "{}", viewer_user.body);
    let vid = viewer_user.body["id"].as_str().unwrap().to_owned();
    let sa = send(
        &app,
        post(
            "/api/admin/service-accounts",
            &admin,
            json!({"name": "deployer", "role": "operator"}),
        ),
    )
    .await;
    let said = sa.body["id"].as_str().unwrap().to_owned();

    let both = create_status(
        &app,
        &admin,
        token_body(json!({"ownerUserId": vid, "ownerServiceAccountId": said})),
    )
    .await;
    both.error(422, "VALIDATION_ERROR");
    let ok = create_status(
        &app,
        &admin,
        token_body(json!({"ownerUserId": vid, "role": "viewer"})),
    )
    .await;
    assert_eq!(ok.status, 201);
    assert_eq!(ok.body["ownerId"], vid.as_str());
    let above_owner = create_status(
        &app,
        &admin,
        token_body(json!({"ownerUserId": vid, "role": "operator"})),
    )
    .await;
    assert_eq!(above_owner.error(422, "VALIDATION_ERROR")["field"], "role");
    let wrong_kind = create_status(&app, &admin, token_body(json!({"ownerUserId": said}))).await;
    assert_eq!(
        wrong_kind.error(422, "VALIDATION_ERROR")["field"],
        "ownerUserId"
    );
    let sa_ok = create_status(
        &app,
        &admin,
        token_body(json!({"ownerServiceAccountId": said, "role": "operator"})),
    )
    .await;
    assert_eq!(sa_ok.status, 201);
    let unknown = create_status(
        &app,
        &admin,
        token_body(json!({"ownerServiceAccountId": uuid_like()})),
    )
    .await;
    assert_eq!(
        unknown.error(422, "VALIDATION_ERROR")["field"],
        "ownerServiceAccountId"
    );

    // A scoped admin cannot mint an all-environments token.
    let envs = send(
        &app,
        authed(TestRequest::get().uri("/api/admin/environments"), &admin),
    )
    .await;
    let production = envs.body["items"][0]["id"].as_str().unwrap().to_owned();
    let staging = send(
        &app,
        post(
            "/api/admin/environments",
            &admin,
            json!({"name": "staging"}),
        ),
    )
    .await;
    let staging = staging.body["id"].as_str().unwrap().to_owned();
    let scoped_admin = mint(
        &app,
        &admin,
        json!({"role": "admin", "allEnvironments": false, "environmentIds": [production]}),
    )
    .await;
    let broader = create_status(&app, &scoped_admin, token_body(json!({}))).await;
    broader.error(403, "FORBIDDEN_SCOPE");
    let other_env = create_status(
        &app,
        &scoped_admin,
        token_body(json!({"allEnvironments": false, "environmentIds": [staging]})),
    )
    .await;
    other_env.error(403, "FORBIDDEN_SCOPE");
    let same = create_status(
        &app,
        &scoped_admin,
        token_body(json!({"allEnvironments": false, "environmentIds": [production]})),
    )
    .await;
    assert_eq!(same.status, 201);
    // A scoped admin cannot manage environments.
    send(
        &app,
        post(
            "/api/admin/environments",
            &scoped_admin,
            json!({"name": "qa"}),
        ),
    )
    .await
    .error(403, "FORBIDDEN_SCOPE");
}

#[actix_web::test]
async fn every_admin_route_refuses_viewers_and_operators() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let viewer = mint(&app, &admin, json!({"role": "viewer"})).await;
    let operator = mint(&app, &admin, json!({"role": "operator"})).await;
    let id = uuid_like();
    let routes: Vec<(&str, String)> = vec![
        ("GET", "/api/admin/tokens".into()),
        ("POST", "/api/admin/tokens".into()),
        ("GET", format!("/api/admin/tokens/{id}")),
        ("PATCH", format!("/api/admin/tokens/{id}")),
        ("DELETE", format!("/api/admin/tokens/{id}")),
        ("POST", format!("/api/admin/tokens/{id}/rotate")),
        ("GET", "/api/admin/users".into()),
        ("POST", "/api/admin/users".into()),
        ("GET", format!("/api/admin/users/{id}")),
        ("PATCH", format!("/api/admin/users/{id}")),
        ("DELETE", format!("/api/admin/users/{id}")),
        ("GET", "/api/admin/service-accounts".into()),
        ("POST", "/api/admin/service-accounts".into()),
        ("GET", format!("/api/admin/service-accounts/{id}")),
        ("PATCH", format!("/api/admin/service-accounts/{id}")),
        ("DELETE", format!("/api/admin/service-accounts/{id}")),
        ("GET", "/api/admin/environments".into()),
        ("POST", "/api/admin/environments".into()),
        ("GET", format!("/api/admin/environments/{id}")),
        ("PATCH", format!("/api/admin/environments/{id}")),
        ("DELETE", format!("/api/admin/environments/{id}")),
        ("GET", "/api/admin/audit-events".into()),
        ("GET", "/api/admin/token-policy".into()),
        ("PUT", "/api/admin/token-policy".into()),
    ];
    // Valid bodies, so that nothing but the role can be the reason for refusal.
    let body_for = |path: &str| match path {
        "/api/admin/tokens" => token_body(json!({})),
        "/api/admin/users" => json!({"email": "x@example.com", "role": "viewer"}),
        "/api/admin/service-accounts" => json!({"name": "x", "role": "viewer"}),
        "/api/admin/environments" => json!({"name": "x"}),
        "/api/admin/token-policy" => {
            json!({"maxExpiresInDays": null, "maxEnrollmentExpiresHours": null})
        }
        _ => json!({}),
    };
    for token in [&viewer, &operator] {
        for (method, path) in &routes {
            let req = TestRequest::default()
                .method(method.parse().unwrap())
                .uri(path);
            let req = if matches!(*method, "POST" | "PATCH" | "PUT") {
                req.set_json(body_for(path))
            } else {
                req
            };
            let res = send(&app, authed(req, token)).await;
            res.error(403, "FORBIDDEN_ROLE");
        }
    }
    // …and the admin gets through every one (to a 2xx, 404 or 422, never 403).
    for (method, path) in &routes {
        let req = TestRequest::default()
            .method(method.parse().unwrap())
            .uri(path);
        let req = if matches!(*method, "POST" | "PATCH" | "PUT") {
            req.set_json(body_for(path))
        } else {
            req
        };
        let res = send(&app, authed(req, &admin)).await;
        assert_ne!(res.status.as_u16(), 403, "{method} {path}: {}", res.body);
        assert_ne!(res.status.as_u16(), 401, "{method} {path}: {}", res.body);
    }
    // Every role may ask who it is.
    for token in [&viewer, &operator, &admin] {
        assert_eq!(
            send(&app, authed(TestRequest::get().uri("/api/me"), token))
                .await
                .status,
            200
        );
    }
}

#[actix_web::test]
async fn another_tenants_ids_are_404() {
    let f = fixture(config()).await;
    let (_, acme) = tenant(&f, "acme").await;
    let (_, globex) = tenant(&f, "globex").await;
    let app = app!(f);
    let token = send(
        &app,
        post("/api/admin/tokens", &acme, token_body(json!({}))),
    )
    .await;
    let tid = token.body["id"].as_str().unwrap().to_owned();
    let user = send(
        &app,
        post(
            "/api/admin/users",
            &acme,
            json!({"email": "a@example.com", "role": "viewer"}),
        ),
    )
    .await;
    let uid = user.body["id"].as_str().unwrap().to_owned();
    let sa = send(
        &app,
        post(
            "/api/admin/service-accounts",
            &acme,
            json!({"name": "bot", "role": "viewer"}),
        ),
    )
    .await;
    let said = sa.body["id"].as_str().unwrap().to_owned();
    let env = send(
        &app,
        post("/api/admin/environments", &acme, json!({"name": "staging"})),
    )
    .await;
    let eid = env.body["id"].as_str().unwrap().to_owned();
    let probes = [
        TestRequest::get().uri(&format!("/api/admin/tokens/{tid}")),
        TestRequest::patch()
            .uri(&format!("/api/admin/tokens/{tid}"))
            .set_json(json!({"name": "x"})),
        TestRequest::delete().uri(&format!("/api/admin/tokens/{tid}")),
        TestRequest::post()
            .uri(&format!("/api/admin/tokens/{tid}/rotate"))
            .set_json(json!({})),
        TestRequest::get().uri(&format!("/api/admin/users/{uid}")),
        TestRequest::patch()
            .uri(&format!("/api/admin/users/{uid}"))
            .set_json(json!({"role": "admin"})),
        TestRequest::delete().uri(&format!("/api/admin/users/{uid}")),
        TestRequest::get().uri(&format!("/api/admin/service-accounts/{said}")),
        TestRequest::delete().uri(&format!("/api/admin/service-accounts/{said}")),
        TestRequest::get().uri(&format!("/api/admin/environments/{eid}")),
        TestRequest::patch()
            .uri(&format!("/api/admin/environments/{eid}"))
            .set_json(json!({"name": "x"})),
        TestRequest::delete().uri(&format!("/api/admin/environments/{eid}")),
    ];
    for probe in probes {
        send(&app, authed(probe, &globex))
            .await
            .error(404, "NOT_FOUND");
    }
    // The environment of another tenant cannot be put in a token's scope either.
    let res = send(
        &app,
        post(
            "/api/admin/tokens",
            &globex,
            token_body(json!({"allEnvironments": false, "environmentIds": [eid]})),
        ),
    )
    .await;
    res.error(422, "VALIDATION_ERROR");
    // And acme's things are all still there.
    assert_eq!(
        send(
            &app,
            authed(
                TestRequest::get().uri(&format!("/api/admin/tokens/{tid}")),
                &acme
            )
        )
        .await
        .body["status"],
        "active"
    );
}

// ---------- PATCH, rotate, public revocation ----------

#[actix_web::test]
async fn patch_changes_name_and_limit_and_refuses_the_rest() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let created = send(
        &app,
        post("/api/admin/tokens", &admin, token_body(json!({}))),
    )
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let uri = format!("/api/admin/tokens/{id}");
    let patch = |body: Value| authed(TestRequest::patch().uri(&uri), &admin).set_json(body);
    let ok = send(
        &app,
        patch(json!({"name": "renamed", "rateLimitPerMinute": 5})),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        (
            ok.body["name"].clone(),
            ok.body["rateLimitPerMinute"].clone()
        ),
        (json!("renamed"), json!(5))
    );
    let reset = send(&app, patch(json!({"rateLimitPerMinute": null}))).await;
    assert_eq!(reset.body["rateLimitPerMinute"], 300);
    let role = send(&app, patch(json!({"role": "admin"}))).await;
    let body = role.error(422, "READONLY_FIELD");
    assert_eq!(body["field"], "role");
    assert_eq!(
        body["hint"],
        "role is fixed at creation: create a new token and revoke this one."
    );
    for field in [
        "allEnvironments",
        "environmentIds",
        "expiresInDays",
        "ownerUserId",
        "token",
        "id",
    ] {
        let res = send(&app, patch(json!({ field: true }))).await;
        assert_eq!(res.error(422, "READONLY_FIELD")["field"], field);
    }
    let unknown = send(&app, patch(json!({"colour": "red"}))).await;
    assert_eq!(unknown.error(422, "VALIDATION_ERROR")["field"], "colour");
    let bad = send(&app, patch(json!({"name": ""}))).await;
    assert_eq!(bad.error(422, "VALIDATION_ERROR")["field"], "name");
}

#[actix_web::test]
async fn rotation_keeps_the_old_secret_for_the_grace_period() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let created = send(
        &app,
        post("/api/admin/tokens", &admin, token_body(json!({}))),
    )
    .await;
    let (id, old) = (
        created.body["id"].as_str().unwrap().to_owned(),
        created.body["token"].as_str().unwrap().to_owned(),
    );
    let rotate = |body: Value| {
        authed(
            TestRequest::post().uri(&format!("/api/admin/tokens/{id}/rotate")),
            &admin,
        )
        .set_json(body)
    };
    for bad in [-1, 169] {
        assert_eq!(
            send(&app, rotate(json!({"graceHours": bad})))
                .await
                .error(422, "VALIDATION_ERROR")["field"],
            "graceHours"
        );
    }
    let rotated = send(&app, rotate(json!({"graceHours": 2}))).await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    let new = rotated.body["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated.body["id"], id.as_str(), "same token, same settings");
    let me = |t: &str| authed(TestRequest::get().uri("/api/me"), t);
    f.clock
        .advance(time::Duration::hours(2) - time::Duration::seconds(1));
    assert_eq!(send(&app, me(&old)).await.status, 200);
    f.clock.advance(time::Duration::seconds(1));
    send(&app, me(&old)).await.error(401, "UNAUTHORIZED");
    assert_eq!(send(&app, me(&new)).await.status, 200);
    // Rotating without a body uses the default grace; a zero grace retires at once.
    let again = send(
        &app,
        authed(
            TestRequest::post().uri(&format!("/api/admin/tokens/{id}/rotate")),
            &admin,
        ),
    )
    .await;
    assert_eq!(again.status, 201, "{}", again.body);
    let newest = again.body["token"].as_str().unwrap().to_owned();
    let zero = send(&app, rotate(json!({"graceHours": 0}))).await;
    assert_eq!(zero.status, 201);
    send(&app, me(&newest)).await.error(401, "UNAUTHORIZED");
}

#[actix_web::test]
async fn anyone_can_revoke_a_leaked_token_and_learns_nothing() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let leaked = mint(&app, &admin, json!({})).await;
    let report = |t: &str| {
        TestRequest::post()
            .uri("/api/public/revocations")
            .set_json(json!({"token": t}))
    };
    let hit = send(&app, report(&leaked)).await;
    let never = fleetpass_domain::secret::PlainSecret::from_random(
        fleetpass_domain::secret::SecretKind::ApiToken,
        [3; 32],
    );
    let miss = send(&app, report(never.expose())).await;
    assert_eq!(
        (hit.status.as_u16(), &hit.body),
        (202, &miss.body),
        "same answer either way"
    );
    assert_eq!(miss.status, 202);
    send(&app, authed(TestRequest::get().uri("/api/me"), &leaked))
        .await
        .error(401, "UNAUTHORIZED");
    let audit = send(
        &app,
        authed(
            TestRequest::get().uri("/api/admin/audit-events?action=token.revoked"),
            &admin,
        ),
    )
    .await;
    assert_eq!(
        audit.body["items"][0]["actorKind"], "public",
        "{}",
        audit.body
    );
    send(&app, report("ghp_not_ours"))
        .await
        .error(422, "VALIDATION_ERROR");
}

// ---------- platform API, directory, audit, pagination ----------

#[actix_web::test]
async fn platform_api_needs_the_admin_key() {
    let off = fixture(fleetpass_http::HttpConfig::default()).await;
    let app = app!(off);
    let res = send(
        &app,
        TestRequest::get()
            .uri("/platform/tenants")
            .insert_header(("x-api-key", ADMIN_KEY)),
    )
    .await;
    assert_eq!(
        res.error(503, "SERVICE_UNAVAILABLE")["message"],
        "admin API not configured"
    );

    let f = fixture(config()).await;
    let app = app!(f);
    send(&app, TestRequest::get().uri("/platform/tenants"))
        .await
        .error(401, "UNAUTHORIZED");
    send(
        &app,
        authed(
            TestRequest::get().uri("/platform/tenants"),
            "wrong-key-wrong-key",
        ),
    )
    .await
    .error(403, "FORBIDDEN_ROLE");
    let created = send(
        &app,
        post("/platform/tenants", ADMIN_KEY, json!({"name": "initech"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let token = created.body["adminToken"].as_str().unwrap();
    let tid = created.body["tenantId"].as_str().unwrap();
    let me = send(&app, authed(TestRequest::get().uri("/api/me"), token)).await;
    assert_eq!(me.body["tenantId"], tid);
    send(
        &app,
        post("/platform/tenants", ADMIN_KEY, json!({"name": "initech"})),
    )
    .await
    .error(409, "CONFLICT");
    send(
        &app,
        post("/platform/tenants", ADMIN_KEY, json!({"name": ""})),
    )
    .await
    .error(422, "VALIDATION_ERROR");
    let one = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/platform/tenants/{tid}")),
            ADMIN_KEY,
        ),
    )
    .await;
    assert_eq!(one.body["name"], "initech");
    send(
        &app,
        authed(
            TestRequest::get().uri("/platform/tenants/not-a-uuid"),
            ADMIN_KEY,
        ),
    )
    .await
    .error(404, "NOT_FOUND");
}

#[actix_web::test]
async fn disabling_or_deleting_a_principal_revokes_its_tokens() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    for (kind, body) in [
        (
            "users",
            json!({"email": "ops@example.com", "role": "operator"}),
        ),
        (
            "service-accounts",
            json!({"name": "ci", "role": "operator"}),
        ),
    ] {
        let p = send(
            &app,
            post(&format!("/api/admin/{kind}"), &admin, body.clone()),
        )
        .await;
        assert_eq!(p.status, 201, "{}", p.body);
        send(&app, post(&format!("/api/admin/{kind}"), &admin, body))
            .await
            .error(409, "CONFLICT");
        let pid = p.body["id"].as_str().unwrap().to_owned();
        let owner = if kind == "users" {
            "ownerUserId"
        } else {
            "ownerServiceAccountId"
        };
        let t1 = mint(&app, &admin, json!({ owner: pid, "role": "operator" })).await;
        let disable = authed(
            TestRequest::patch().uri(&format!("/api/admin/{kind}/{pid}")),
            &admin,
        )
        .set_json(json!({"disabled": true}));
        let res = send(&app, disable).await;
        assert_eq!(
            (res.status.as_u16(), res.body["disabled"].clone()),
            (200, json!(true)),
            "{}",
            res.body
        );
        send(&app, authed(TestRequest::get().uri("/api/me"), &t1))
            .await
            .error(401, "UNAUTHORIZED");
        let enable = authed(
            TestRequest::patch().uri(&format!("/api/admin/{kind}/{pid}")),
            &admin,
        )
        .set_json(json!({"disabled": false}));
        send(&app, enable).await;
        let t2 = mint(&app, &admin, json!({ owner: pid, "role": "operator" })).await;
        let del = send(
            &app,
            authed(
                TestRequest::delete().uri(&format!("/api/admin/{kind}/{pid}")),
                &admin,
            ),
        )
        .await;
        assert_eq!(del.status, 204);
        send(&app, authed(TestRequest::get().uri("/api/me"), &t2))
            .await
            .error(401, "UNAUTHORIZED");
        send(
            &app,
            authed(
                TestRequest::get().uri(&format!("/api/admin/{kind}/{pid}")),
                &admin,
            ),
        )
        .await
        .error(404, "NOT_FOUND");
    }
    // The owner of the calling token cannot be disabled by it.
    let me = send(&app, authed(TestRequest::get().uri("/api/me"), &admin)).await;
    let owner = me.body["token"]["ownerId"].as_str().unwrap();
    let res = send(
        &app,
        authed(
            TestRequest::delete().uri(&format!("/api/admin/service-accounts/{owner}")),
            &admin,
        ),
    )
    .await;
    res.error(409, "CONFLICT");
}

#[actix_web::test]
async fn environments_are_unique_and_in_use_ones_stay() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    send(
        &app,
        post(
            "/api/admin/environments",
            &admin,
            json!({"name": "production"}),
        ),
    )
    .await
    .error(409, "CONFLICT");
    send(
        &app,
        post(
            "/api/admin/environments",
            &admin,
            json!({"name": "Bad Name"}),
        ),
    )
    .await
    .error(422, "VALIDATION_ERROR");
    let env = send(
        &app,
        post(
            "/api/admin/environments",
            &admin,
            json!({"name": "staging"}),
        ),
    )
    .await;
    let eid = env.body["id"].as_str().unwrap().to_owned();
    let created = send(
        &app,
        post(
            "/api/admin/tokens",
            &admin,
            token_body(json!({"allEnvironments": false, "environmentIds": [eid]})),
        ),
    )
    .await;
    let tid = created.body["id"].as_str().unwrap().to_owned();
    let del = || {
        authed(
            TestRequest::delete().uri(&format!("/api/admin/environments/{eid}")),
            &admin,
        )
    };
    let blocked = send(&app, del()).await;
    let body = blocked.error(409, "CONFLICT");
    assert_eq!(
        body["message"],
        "the environment still has fleets, or API tokens that are not revoked are scoped to it"
    );
    assert_eq!(
        body["hint"],
        "Delete its fleets and revoke the tokens scoped to it first."
    );
    send(
        &app,
        authed(
            TestRequest::delete().uri(&format!("/api/admin/tokens/{tid}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(send(&app, del()).await.status, 204);
    let renamed = authed(
        TestRequest::patch().uri("/api/admin/environments/x"),
        &admin,
    )
    .set_json(json!({"name": "qa"}));
    send(&app, renamed).await.error(404, "NOT_FOUND");
}

#[actix_web::test]
async fn lists_paginate_newest_first_without_gaps() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    for i in 0..5 {
        send(
            &app,
            post(
                "/api/admin/service-accounts",
                &admin,
                json!({"name": format!("sa-{i}"), "role": "viewer"}),
            ),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/admin/service-accounts?limit=2&cursor={c}"),
            None => "/api/admin/service-accounts?limit=2".to_owned(),
        };
        let page = send(&app, authed(TestRequest::get().uri(&uri), &admin)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_owned()),
        );
        match page.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // Five created plus the tenant's own admin account, newest first.
    assert_eq!(
        seen,
        ["sa-4", "sa-3", "sa-2", "sa-1", "sa-0", "tenant-admin"]
    );
    for bad in ["limit=0", "limit=201", "limit=ten", "cursor=%%%"] {
        let res = send(
            &app,
            authed(
                TestRequest::get().uri(&format!("/api/admin/tokens?{bad}")),
                &admin,
            ),
        )
        .await;
        res.error(422, "VALIDATION_ERROR");
    }
    let max = send(
        &app,
        authed(
            TestRequest::get().uri("/api/admin/tokens?limit=200"),
            &admin,
        ),
    )
    .await;
    assert_eq!(max.status, 200);
}

#[actix_web::test]
async fn every_change_is_audited() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let created = send(
        &app,
        post("/api/admin/tokens", &admin, token_body(json!({}))),
    )
    .await;
    let tid = created.body["id"].as_str().unwrap().to_owned();
    send(
        &app,
        authed(
            TestRequest::delete().uri(&format!("/api/admin/tokens/{tid}")),
            &admin,
        ),
    )
    .await;
    let events = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/api/admin/audit-events?targetId={tid}")),
            &admin,
        ),
    )
    .await;
    let actions: Vec<_> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["token.revoked", "token.created"]);
    let all = send(
        &app,
        authed(TestRequest::get().uri("/api/admin/audit-events"), &admin),
    )
    .await;
    let all_actions: Vec<_> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "tenant.created",
        "environment.created",
        "service_account.created",
        "token.created",
        "token.revoked",
    ] {
        assert!(
            all_actions.contains(&expected),
            "{expected} missing from {all_actions:?}"
        );
    }
    assert!(
        !all.body
            .to_string()
            .contains(created.body["token"].as_str().unwrap()),
        "no secret in the audit log"
    );
    let bad = send(
        &app,
        authed(
            TestRequest::get().uri("/api/admin/audit-events?since=yesterday"),
            &admin,
        ),
    )
    .await;
    assert_eq!(bad.error(422, "VALIDATION_ERROR")["field"], "since");
}

#[actix_web::test]
async fn metrics_and_the_reference_page_are_served() {
    let f = fixture(config()).await;
    let app = app!(f);
    send(&app, TestRequest::get().uri("/healthz")).await;
    let res = test::call_service(&app, TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(res.status(), 200);
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(
        text.contains(
            "fleetpass_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("fleetpass_http_request_duration_seconds_bucket"),
        "{text}"
    );
    let res = test::call_service(&app, TestRequest::get().uri("/docs").to_request()).await;
    assert_eq!(res.status(), 200);
    let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(
        html.contains("/api/admin/tokens") && html.contains("Create an API token"),
        "{html}"
    );
}

#[actix_web::test]
async fn the_openapi_document_is_served_and_current() {
    let f = fixture(config()).await;
    let app = app!(f);
    let doc = send(&app, TestRequest::get().uri("/openapi.json")).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc.body["paths"]["/api/admin/tokens"]["post"].is_object());
    // What the contract run (cargo xtask contract) relies on, checked without a server.
    let schemes = doc.body["components"]["securitySchemes"]
        .as_object()
        .unwrap();
    for scheme in [
        "bearer",
        "apiKeyHeader",
        "apiKeyQuery",
        "agent",
        "platformKey",
    ] {
        assert!(schemes.contains_key(scheme), "{scheme}");
    }
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let statuses = op["responses"].as_object().unwrap();
            if op["security"].is_array() {
                assert!(
                    statuses.contains_key("401"),
                    "{method} {path} documents 401"
                );
            }
            if let Some(body) = op.get("requestBody") {
                assert!(
                    statuses.contains_key("400"),
                    "{method} {path} documents 400"
                );
                let schema = body["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap();
                let schema = &doc.body["components"]["schemas"][schema];
                if schema["type"] == "array" {
                    // GitHub's partner batch, in GitHub's format: its items take the
                    // fields GitHub may add later, and the array is bounded.
                    assert_eq!(path, "/api/public/secret-scanning/github");
                    assert_eq!(
                        (&schema["minItems"], &schema["maxItems"]),
                        (&json!(1), &json!(1000))
                    );
                    assert_eq!(body["required"], true, "{method} {path}");
                } else {
                    assert_eq!(schema["additionalProperties"], false, "{method} {path}");
                }
            }
        }
    }
    let fleets = &doc.body["paths"]["/tenant/discovery/fleets"]["post"];
    assert_eq!(
        fleets["requestBody"]["required"], false,
        "all its fields are optional"
    );
    let audit = &doc.body["paths"]["/api/admin/audit-events"]["get"]["parameters"];
    let limit = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(
        (
            limit["schema"]["minimum"].as_i64(),
            limit["schema"]["maximum"].as_i64()
        ),
        (Some(1), Some(200))
    );
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .expect("docs/openapi.json exists: run `cargo xtask codegen`");
    // Not assert_eq: printing two whole documents helps nobody.
    assert!(
        committed == fleetpass_http::openapi::committed_json(),
        "docs/openapi.json is stale: run `cargo xtask codegen`"
    );
}

// ---------- issue 17, item 6: API consistency ----------

/// Every operation of the document, with a made-up query parameter (and the declared
/// ones), answers 400 naming it; `GET /tenant/scans?hostname=vm` returned every scan.
#[actix_web::test]
async fn every_operation_refuses_an_unknown_query_parameter_naming_it() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let enrolled = send(
        &app,
        TestRequest::post().uri("/agent/enroll").set_json(json!({
            "enrollmentToken": fleet.body["enrollmentToken"], "hostname": "h", "platform": "linux"
        })),
    )
    .await;
    let agent = enrolled.body["accessToken"].as_str().unwrap().to_owned();
    let doc = fleetpass_http::openapi::document();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let concrete = path
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        "0190c5a0-0000-7000-8000-000000000000"
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let uri = format!("{concrete}?zzUnknown=1&api_key=ignored-here");
            let req = TestRequest::default()
                .method(method.to_uppercase().parse().unwrap())
                .uri(&uri);
            let token = match fleetpass_http::openapi::guard_of(path, op) {
                fleetpass_http::openapi::Guard::Agent => agent.as_str(),
                fleetpass_http::openapi::Guard::Platform => ADMIN_KEY,
                _ => admin.as_str(),
            };
            let res = send(&app, authed(req, token)).await;
            let body = res.error(400, "VALIDATION_ERROR");
            assert_eq!(body["field"], "zzUnknown", "{method} {path}: {body}");
            assert!(
                body["message"].as_str().unwrap().contains("`zzUnknown`"),
                "{method} {path}: {body}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked}");
    // The example, and that declared parameters still pass.
    let res = send(
        &app,
        authed(
            TestRequest::get().uri("/tenant/scans?hostname=vm&limit=5"),
            &admin,
        ),
    )
    .await;
    let body = res.error(400, "VALIDATION_ERROR");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("takes fleetId, status, scenario, limit, cursor"),
        "{body}"
    );
    let res = send(
        &app,
        authed(
            TestRequest::get().uri("/tenant/scans?status=queued&limit=5"),
            &admin,
        ),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
}

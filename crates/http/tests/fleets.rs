//! In-process tests of fleets (seed 000), enrollment tokens, agents and their access
//! tokens over the in-memory store, with a pinned clock.

mod support;

use actix_web::test::{self, TestRequest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use support::*;

macro_rules! app {
    ($f:expr) => {
        test::init_service(fleetpass_http::app($f.state.clone())).await
    };
}

/// Mints an API token of `role` with the tenant admin token.
macro_rules! token {
    ($app:expr, $admin:expr, $body:expr) => {{
        let res = send(&$app, post("/api/admin/tokens", $admin, token_body($body))).await;
        assert_eq!(res.status, 201, "{}", res.body);
        res.body["token"].as_str().unwrap().to_owned()
    }};
}

fn enroll_body(token: &str) -> Value {
    json!({"enrollmentToken": token, "hostname": "scanner-01", "platform": "linux-x86_64", "agentVersion": "1.4.2"})
}

fn enroll(token: &str) -> TestRequest {
    TestRequest::post()
        .uri("/agent/enroll")
        .set_json(enroll_body(token))
}

#[actix_web::test]
async fn the_seed_request_creates_a_fleet_with_a_72h_one_time_token() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let operator = token!(app, &admin, json!({"role": "operator"}));
    // The seed's curl: POST with a bearer token and {"name": "Production"}.
    let req = TestRequest::post()
        .uri("/tenant/discovery/fleets")
        .insert_header(("Authorization", format!("Bearer {operator}")))
        .insert_header(("Content-Type", "application/json"))
        .set_payload("{\n\"name\": \"Production\"\n}");
    let res = send(&app, req).await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert!(
        res.body["fleetId"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
    let token = res.body["enrollmentToken"].as_str().unwrap();
    assert!(token.starts_with("fpe_") && token.len() == 53, "{token}");
    assert_eq!(res.body["expiresAt"], "2026-11-25T10:00:00Z");
    assert_eq!(res.body["name"], "Production");
    // Default name and environment.
    let untitled = send(&app, post("/tenant/discovery/fleets", &operator, json!({}))).await;
    assert_eq!(untitled.body["name"], "Untitled fleet");
    let envs = send(
        &app,
        authed(TestRequest::get().uri("/api/admin/environments"), &admin),
    )
    .await;
    assert_eq!(untitled.body["environmentId"], envs.body["items"][0]["id"]);
    // The seed's errors.
    let viewer = token!(app, &admin, json!({"role": "viewer"}));
    send(
        &app,
        post("/tenant/discovery/fleets", &viewer, json!({"name": "x"})),
    )
    .await
    .error(403, "FORBIDDEN_ROLE");
    send(
        &app,
        TestRequest::post()
            .uri("/tenant/discovery/fleets")
            .set_json(json!({})),
    )
    .await
    .error(401, "UNAUTHORIZED");
    for (name, status) in [
        ("".to_owned(), 422),
        ("a".to_owned(), 201),
        ("a".repeat(100), 201),
        ("a".repeat(101), 422),
    ] {
        let res = send(
            &app,
            post(
                "/tenant/discovery/fleets",
                &operator,
                json!({ "name": name }),
            ),
        )
        .await;
        assert_eq!(
            res.status.as_u16(),
            status,
            "{} chars: {}",
            name.len(),
            res.body
        );
    }
    let unknown = send(
        &app,
        post(
            "/tenant/discovery/fleets",
            &operator,
            json!({"name": "x", "colour": 1}),
        ),
    )
    .await;
    assert_eq!(unknown.error(422, "VALIDATION_ERROR")["field"], "colour");
    let bad_env = send(
        &app,
        post(
            "/tenant/discovery/fleets",
            &operator,
            json!({"environmentId": "0190f5d2-0000-7000-8000-000000000000"}),
        ),
    )
    .await;
    assert_eq!(
        bad_env.error(422, "VALIDATION_ERROR")["field"],
        "environmentId"
    );
}

#[actix_web::test]
async fn fleets_respect_environment_scopes_and_tenants() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let (_, other) = tenant(&f, "globex").await;
    let app = app!(f);
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
    let scoped = token!(
        app,
        &admin,
        json!({"role": "operator", "allEnvironments": false, "environmentIds": [staging]})
    );
    let prod_fleet = send(
        &app,
        post("/tenant/discovery/fleets", &admin, json!({"name": "prod"})),
    )
    .await;
    let prod_id = prod_fleet.body["fleetId"].as_str().unwrap().to_owned();
    // Defaulting to production is outside this token's scope.
    send(&app, post("/tenant/discovery/fleets", &scoped, json!({})))
        .await
        .error(403, "FORBIDDEN_SCOPE");
    let mine = send(
        &app,
        post(
            "/tenant/discovery/fleets",
            &scoped,
            json!({"name": "stage", "environmentId": staging}),
        ),
    )
    .await;
    assert_eq!(mine.status, 201, "{}", mine.body);
    let listed = send(
        &app,
        authed(TestRequest::get().uri("/tenant/discovery/fleets"), &scoped),
    )
    .await;
    let names: Vec<_> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("stage")],
        "lists are filtered to the token's environments"
    );
    let uri = format!("/tenant/discovery/fleets/{prod_id}");
    send(&app, authed(TestRequest::get().uri(&uri), &scoped))
        .await
        .error(403, "FORBIDDEN_SCOPE");
    send(&app, authed(TestRequest::get().uri(&uri), &other))
        .await
        .error(404, "NOT_FOUND");
    send(&app, authed(TestRequest::delete().uri(&uri), &other))
        .await
        .error(404, "NOT_FOUND");
    let issue = format!("/tenant/discovery/fleets/{prod_id}/enrollment-tokens");
    send(&app, post(&issue, &other, json!({})))
        .await
        .error(404, "NOT_FOUND");
    // An environment with a fleet cannot be deleted.
    send(
        &app,
        authed(
            TestRequest::delete().uri(&format!("/api/admin/environments/{staging}")),
            &admin,
        ),
    )
    .await
    .error(409, "CONFLICT");
    // Rename yes, move no.
    let patch = |body: Value| authed(TestRequest::patch().uri(&uri), &admin).set_json(body);
    assert_eq!(
        send(&app, patch(json!({"name": "renamed"}))).await.body["name"],
        "renamed"
    );
    let moved = send(&app, patch(json!({"environmentId": staging}))).await;
    assert_eq!(moved.error(422, "READONLY_FIELD")["field"], "environmentId");
}

#[actix_web::test]
async fn a_one_time_token_enrolls_once_and_says_why_it_refuses() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let token = fleet.body["enrollmentToken"].as_str().unwrap().to_owned();
    let fleet_id = fleet.body["fleetId"].as_str().unwrap().to_owned();
    let first = send(&app, enroll(&token)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["fleetId"], fleet_id.as_str());
    assert!(
        first.body["agentSecret"]
            .as_str()
            .unwrap()
            .starts_with("fpa_")
    );
    assert!(
        first.body["accessToken"]
            .as_str()
            .unwrap()
            .split('.')
            .count()
            == 3
    );
    assert_eq!(first.body["accessTokenExpiresAt"], "2026-11-22T10:15:00Z");
    let again = send(&app, enroll(&token)).await;
    let body = again.error(401, "UNAUTHORIZED");
    assert!(
        body["message"].as_str().unwrap().contains("used up"),
        "{body}"
    );
    assert!(
        body["hint"].as_str().unwrap().contains("enrollment-tokens"),
        "{body}"
    );

    let never = fleetpass_domain::secret::PlainSecret::from_random(
        fleetpass_domain::secret::SecretKind::Enrollment,
        [5; 32],
    );
    let unknown = send(&app, enroll(never.expose())).await;
    assert!(
        unknown.error(401, "UNAUTHORIZED")["message"]
            .as_str()
            .unwrap()
            .contains("unknown")
    );
    let mut typo = token.clone();
    typo.replace_range(8..9, if &token[8..9] == "A" { "B" } else { "A" });
    let malformed = send(&app, enroll(&typo)).await;
    assert!(
        malformed.error(401, "UNAUTHORIZED")["message"]
            .as_str()
            .unwrap()
            .contains("checksum")
    );

    let issue = format!("/tenant/discovery/fleets/{fleet_id}/enrollment-tokens");
    let issued = send(&app, post(&issue, &admin, json!({"maxUses": 2}))).await;
    let (revoked_token, revoked_id) = (
        issued.body["enrollmentToken"].as_str().unwrap().to_owned(),
        issued.body["id"].as_str().unwrap().to_owned(),
    );
    let del = send(
        &app,
        authed(
            TestRequest::delete().uri(&format!("{issue}/{revoked_id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(del.status, 204);
    let revoked = send(&app, enroll(&revoked_token)).await;
    assert!(
        revoked.error(401, "UNAUTHORIZED")["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );

    let list = send(&app, authed(TestRequest::get().uri(&issue), &admin)).await;
    let statuses: Vec<_> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["status"].clone(), t["usesLeft"].clone()))
        .collect();
    assert_eq!(
        statuses,
        [(json!("revoked"), json!(0)), (json!("used"), json!(0))]
    );
    assert!(
        !list.body.to_string().contains(&token),
        "no secret in a listing"
    );
}

#[actix_web::test]
async fn enrollment_tokens_expire_at_the_exact_instant() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let first = fleet.body["enrollmentToken"].as_str().unwrap().to_owned();
    let fleet_id = fleet.body["fleetId"].as_str().unwrap().to_owned();
    let issue = format!("/tenant/discovery/fleets/{fleet_id}/enrollment-tokens");
    let second = send(&app, post(&issue, &admin, json!({}))).await;
    let second = second.body["enrollmentToken"].as_str().unwrap().to_owned();
    f.clock
        .advance(time::Duration::hours(72) - time::Duration::seconds(1)); // 71:59:59
    assert_eq!(send(&app, enroll(&first)).await.status, 201);
    f.clock.advance(time::Duration::seconds(1)); // 72:00:00
    let late = send(&app, enroll(&second)).await;
    assert!(
        late.error(401, "UNAUTHORIZED")["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[actix_web::test]
async fn enrollment_token_bounds() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let issue = format!(
        "/tenant/discovery/fleets/{}/enrollment-tokens",
        fleet.body["fleetId"].as_str().unwrap()
    );
    for (field, value, ok) in [
        ("expiresHours", 0, false),
        ("expiresHours", 1, true),
        ("expiresHours", 720, true),
        ("expiresHours", 721, false),
        ("maxUses", 0, false),
        ("maxUses", 1, true),
        ("maxUses", 1000, true),
        ("maxUses", 1001, false),
    ] {
        let res = send(&app, post(&issue, &admin, json!({ field: value }))).await;
        if ok {
            assert_eq!(res.status, 201, "{field}={value}: {}", res.body);
            assert!(
                res.body["enrollmentToken"]
                    .as_str()
                    .unwrap()
                    .starts_with("fpe_")
            );
        } else {
            assert_eq!(res.error(422, "VALIDATION_ERROR")["field"], field);
        }
    }
    let three = send(
        &app,
        post(&issue, &admin, json!({"maxUses": 3, "expiresHours": 1})),
    )
    .await;
    assert_eq!(
        (
            three.body["usesLeft"].clone(),
            three.body["expiresAt"].clone()
        ),
        (json!(3), json!("2026-11-22T11:00:00Z"))
    );
    let token = three.body["enrollmentToken"].as_str().unwrap().to_owned();
    let results: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..5 {
            out.push(send(&app, enroll(&token)).await.status.as_u16());
        }
        out
    };
    assert_eq!(results, [201, 201, 201, 401, 401]);
}

/// Exchanges an agent's credentials for an access token.
fn exchange(agent_id: &str, secret: &str) -> TestRequest {
    TestRequest::post()
        .uri("/agent/token")
        .set_json(json!({"agentId": agent_id, "agentSecret": secret}))
}

#[actix_web::test]
async fn agents_get_short_lived_tokens_and_lose_them_when_revoked() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let enrolled = send(
        &app,
        enroll(fleet.body["enrollmentToken"].as_str().unwrap()),
    )
    .await;
    let agent_id = enrolled.body["agentId"].as_str().unwrap().to_owned();
    let secret = enrolled.body["agentSecret"].as_str().unwrap().to_owned();
    let fresh = send(&app, exchange(&agent_id, &secret)).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(fresh.body["tokenType"], "Bearer");
    let access = fresh.body["accessToken"].as_str().unwrap().to_owned();

    let other = fleetpass_domain::secret::PlainSecret::from_random(
        fleetpass_domain::secret::SecretKind::Agent,
        [1; 32],
    );
    send(&app, exchange(&agent_id, other.expose()))
        .await
        .error(401, "UNAUTHORIZED");
    send(
        &app,
        exchange("0190f5d2-0000-7000-8000-000000000000", &secret),
    )
    .await
    .error(401, "UNAUTHORIZED");

    let beat = |token: &str, body: Value| {
        authed(TestRequest::post().uri("/agent/heartbeat"), token).set_json(body)
    };
    f.clock.advance(time::Duration::minutes(5));
    let hb = send(&app, beat(&access, json!({"agentVersion": "1.5.0"}))).await;
    assert_eq!(hb.status, 200, "{}", hb.body);
    let read = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/tenant/discovery/agents/{agent_id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(
        (
            read.body["lastSeenAt"].clone(),
            read.body["agentVersion"].clone()
        ),
        (json!("2026-11-22T10:05:00Z"), json!("1.5.0"))
    );
    let claim = send(
        &app,
        authed(TestRequest::post().uri("/agent/jobs/claim"), &access),
    )
    .await;
    assert_eq!(claim.status, 204);
    send(&app, TestRequest::post().uri("/agent/jobs/claim"))
        .await
        .error(401, "UNAUTHORIZED");
    // An API token is not an agent token.
    send(
        &app,
        authed(TestRequest::post().uri("/agent/jobs/claim"), &admin),
    )
    .await
    .error(401, "UNAUTHORIZED");

    // Access tokens live 15 minutes.
    f.clock
        .advance(time::Duration::minutes(10) - time::Duration::seconds(1));
    assert_eq!(send(&app, beat(&access, json!({}))).await.status, 200);
    f.clock.advance(time::Duration::seconds(1));
    let expired = send(&app, beat(&access, json!({}))).await;
    assert!(
        expired.error(401, "UNAUTHORIZED")["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    // Revocation stops the secret and live access tokens at once.
    let live = send(&app, exchange(&agent_id, &secret)).await.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let del = send(
        &app,
        authed(
            TestRequest::delete().uri(&format!("/tenant/discovery/agents/{agent_id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(del.status, 204);
    send(&app, exchange(&agent_id, &secret))
        .await
        .error(401, "UNAUTHORIZED");
    send(&app, beat(&live, json!({})))
        .await
        .error(401, "UNAUTHORIZED");
    let listed = send(
        &app,
        authed(
            TestRequest::get().uri(&format!(
                "/tenant/discovery/fleets/{}/agents",
                fleet.body["fleetId"].as_str().unwrap()
            )),
            &admin,
        ),
    )
    .await;
    assert_eq!(listed.body["items"][0]["status"], "revoked");
}

fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let decode = |p: Option<&str>| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p.unwrap()).unwrap()).unwrap()
    };
    (decode(parts.next()), decode(parts.next()))
}

#[actix_web::test]
async fn access_tokens_verify_with_the_jwks_alone_and_forgeries_fail() {
    let f = fixture(config()).await;
    let (tenant_id, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let enrolled = send(
        &app,
        enroll(fleet.body["enrollmentToken"].as_str().unwrap()),
    )
    .await;
    let access = enrolled.body["accessToken"].as_str().unwrap().to_owned();
    let (header, claims) = jwt_parts(&access);
    assert_eq!(header["alg"], "EdDSA");
    // An RFC 9068 access token for this server.
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["iss"], "http://127.0.0.1:8080");
    assert_eq!(claims["aud"], "http://127.0.0.1:8080");
    assert_eq!(claims["client_id"], enrolled.body["agentId"]);
    assert!(claims["jti"].is_string());
    assert_eq!(claims["sub"], enrolled.body["agentId"]);
    assert_eq!(claims["tid"], tenant_id.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );

    // Verify as an outsider would: only the published JWKS.
    let jwks = send(&app, TestRequest::get().uri("/.well-known/jwks.json")).await;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.body.clone()).unwrap();
    let jwk = set
        .find(header["kid"].as_str().unwrap())
        .expect("the token's kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false; // the pinned clock is in 2026; the outsider's is not
    validation.set_audience(&["http://127.0.0.1:8080"]);
    let verified = jsonwebtoken::decode::<Value>(&access, &key, &validation).unwrap();
    assert_eq!(verified.claims["sub"], enrolled.body["agentId"]);

    let beat = |token: String| {
        authed(TestRequest::post().uri("/agent/heartbeat"), &token).set_json(json!({}))
    };
    // alg: none
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = access.split('.').nth(1).unwrap();
    send(&app, beat(format!("{none_header}.{payload}.")))
        .await
        .error(401, "UNAUTHORIZED");
    // HS256 keyed with the public key (the classic algorithm-confusion attack).
    let x = URL_SAFE_NO_PAD.decode(jwk_x(&jwks.body)).unwrap();
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = header["kid"].as_str().map(str::to_owned);
    let confused =
        jsonwebtoken::encode(&hs, &claims, &jsonwebtoken::EncodingKey::from_secret(&x)).unwrap();
    send(&app, beat(confused)).await.error(401, "UNAUTHORIZED");
    // A payload altered after signing.
    let mut altered = claims.clone();
    altered["exp"] = json!(claims["exp"].as_i64().unwrap() + 86_400);
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&altered).unwrap());
    let mut parts: Vec<&str> = access.split('.').collect();
    parts[1] = &forged_payload;
    send(&app, beat(parts.join(".")))
        .await
        .error(401, "UNAUTHORIZED");
    // The genuine one passes.
    assert_eq!(send(&app, beat(access.clone())).await.status, 200);
}

fn jwk_x(jwks: &Value) -> String {
    jwks["keys"][0]["x"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn tokens_minted_before_a_key_rotation_still_verify_after_it() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let enrolled = send(
        &app,
        enroll(fleet.body["enrollmentToken"].as_str().unwrap()),
    )
    .await;
    let before = enrolled.body["accessToken"].as_str().unwrap().to_owned();
    let old_kid = jwt_parts(&before).0["kid"].clone();

    let deps = &f.state.deps;
    // A key made a second later: "newest signs" must not hang on a tie.
    f.clock.advance(time::Duration::seconds(1));
    let new_kid = fleetpass_ports::keys::add_key(
        deps.store.as_ref(),
        deps.secrets.as_ref(),
        &f.master,
        deps.now(),
    )
    .await
    .unwrap();
    f.state.keys.reload().await.unwrap();

    let beat = |token: &str| {
        authed(TestRequest::post().uri("/agent/heartbeat"), token).set_json(json!({}))
    };
    assert_eq!(
        send(&app, beat(&before)).await.status,
        200,
        "the old key still verifies"
    );
    let secret = enrolled.body["agentSecret"].as_str().unwrap();
    let after = send(
        &app,
        exchange(enrolled.body["agentId"].as_str().unwrap(), secret),
    )
    .await;
    let after = after.body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        jwt_parts(&after).0["kid"],
        json!(new_kid),
        "the newest key signs"
    );
    assert_eq!(send(&app, beat(&after)).await.status, 200);
    let jwks = send(&app, TestRequest::get().uri("/.well-known/jwks.json")).await;
    let kids: Vec<_> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, [old_kid.clone(), json!(new_kid)]);

    // Retiring the old key ends what it signed.
    deps.store
        .retire_signing_key(old_kid.as_str().unwrap(), deps.now())
        .await
        .unwrap();
    f.state.keys.reload().await.unwrap();
    send(&app, beat(&before)).await.error(401, "UNAUTHORIZED");
    assert_eq!(send(&app, beat(&after)).await.status, 200);
}

#[actix_web::test]
async fn fleet_lifecycle_is_audited_and_deletion_ends_its_agents() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(
        &app,
        post("/tenant/discovery/fleets", &admin, json!({"name": "edge"})),
    )
    .await;
    let fleet_id = fleet.body["fleetId"].as_str().unwrap().to_owned();
    let enrolled = send(
        &app,
        enroll(fleet.body["enrollmentToken"].as_str().unwrap()),
    )
    .await;
    let agent_id = enrolled.body["agentId"].as_str().unwrap().to_owned();
    let access = enrolled.body["accessToken"].as_str().unwrap().to_owned();
    let issue = format!("/tenant/discovery/fleets/{fleet_id}/enrollment-tokens");
    let issued = send(&app, post(&issue, &admin, json!({}))).await;
    let tid = issued.body["id"].as_str().unwrap().to_owned();
    send(
        &app,
        authed(TestRequest::delete().uri(&format!("{issue}/{tid}")), &admin),
    )
    .await;
    send(
        &app,
        authed(
            TestRequest::delete().uri(&format!("/tenant/discovery/agents/{agent_id}")),
            &admin,
        ),
    )
    .await;
    let del = send(
        &app,
        authed(
            TestRequest::delete().uri(&format!("/tenant/discovery/fleets/{fleet_id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(del.status, 204);
    send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/tenant/discovery/fleets/{fleet_id}")),
            &admin,
        ),
    )
    .await
    .error(404, "NOT_FOUND");
    send(
        &app,
        authed(TestRequest::post().uri("/agent/heartbeat"), &access).set_json(json!({})),
    )
    .await
    .error(401, "UNAUTHORIZED");
    let audit = send(
        &app,
        authed(
            TestRequest::get().uri("/api/admin/audit-events?limit=200"),
            &admin,
        ),
    )
    .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "fleet.created",
        "enrollment_token.issued",
        "agent.enrolled",
        "enrollment_token.revoked",
        "agent.revoked",
        "fleet.deleted",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let enrolled_event = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "agent.enrolled")
        .unwrap();
    assert_eq!(
        (
            enrolled_event["actorKind"].clone(),
            enrolled_event["actorId"].clone()
        ),
        (json!("agent"), json!(agent_id))
    );
}

#[actix_web::test]
async fn leaked_enrollment_tokens_and_agent_secrets_can_be_revoked_by_anyone() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let fleet_id = fleet.body["fleetId"].as_str().unwrap().to_owned();
    let issue = format!("/tenant/discovery/fleets/{fleet_id}/enrollment-tokens");
    let many = send(&app, post(&issue, &admin, json!({"maxUses": 5}))).await;
    let leaked_enrollment = many.body["enrollmentToken"].as_str().unwrap().to_owned();
    let enrolled = send(&app, enroll(&leaked_enrollment)).await;
    let agent_id = enrolled.body["agentId"].as_str().unwrap().to_owned();
    let leaked_secret = enrolled.body["agentSecret"].as_str().unwrap().to_owned();
    let report = |t: &str| {
        TestRequest::post()
            .uri("/api/public/revocations")
            .set_json(json!({"token": t}))
    };
    for leaked in [&leaked_enrollment, &leaked_secret] {
        let res = send(&app, report(leaked)).await;
        assert_eq!(
            (res.status.as_u16(), res.body["status"].clone()),
            (202, json!("accepted"))
        );
    }
    let refused = send(&app, enroll(&leaked_enrollment)).await;
    assert!(
        refused.error(401, "UNAUTHORIZED")["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    send(&app, exchange(&agent_id, &leaked_secret))
        .await
        .error(401, "UNAUTHORIZED");
    let agent = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/tenant/discovery/agents/{agent_id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(agent.body["status"], "revoked");
    // Reporting again changes nothing and answers the same.
    assert_eq!(send(&app, report(&leaked_secret)).await.status, 202);
    let audit = send(
        &app,
        authed(
            TestRequest::get().uri("/api/admin/audit-events?limit=200"),
            &admin,
        ),
    )
    .await;
    let public: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actorKind"] == "public")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(public, ["agent.revoked", "enrollment_token.revoked"]);
}

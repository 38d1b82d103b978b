//! In-process tests of scans, their artifacts and share links (seed 001) over the
//! in-memory store, with a pinned clock.

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

/// A tenant with a fleet and an enrolled agent: (admin token, fleet id, agent access
/// token, agent credentials for `/agent/token`).
macro_rules! setup {
    ($app:expr, $f:expr) => {{
        let (_, admin) = tenant(&$f, "acme").await;
        let fleet = send(&$app, post("/tenant/discovery/fleets", &admin, json!({"name": "edge"}))).await;
        let fleet_id = fleet.body["fleetId"].as_str().unwrap().to_owned();
        let issue = format!("/tenant/discovery/fleets/{fleet_id}/enrollment-tokens");
        let many = send(&$app, post(&issue, &admin, json!({"maxUses": 10}))).await;
        let token = many.body["enrollmentToken"].as_str().unwrap().to_owned();
        let enrolled = send(
            &$app,
            TestRequest::post()
                .uri("/agent/enroll")
                .set_json(json!({"enrollmentToken": token, "hostname": "scanner", "platform": "linux"})),
        )
        .await;
        assert_eq!(enrolled.status, 201, "{}", enrolled.body);
        let credentials = json!({"agentId": enrolled.body["agentId"], "agentSecret": enrolled.body["agentSecret"]});
        (admin, fleet_id, enrolled.body["accessToken"].as_str().unwrap().to_owned(), credentials)
    }};
}

fn results() -> Value {
    json!({
        "assets": [
            {"hostname": "db-1", "ip": "10.0.0.5", "os": "Debian 12", "openPorts": [22, 5432],
             "software": [{"name": "postgresql", "version": "15.4"}, {"name": "openssh", "version": "9.2"}]},
            {"hostname": "web-1", "ip": "10.0.0.7", "os": "Ubuntu 24.04", "openPorts": [443]}
        ],
        "findings": [
            {"severity": "low", "title": "SSH banner reveals version", "assetHostname": "db-1"},
            {"severity": "critical", "title": "Default <admin> password", "assetHostname": "web-1", "detail": "admin/admin accepted"},
            {"severity": "high", "title": "TLS 1.0 enabled", "assetHostname": "web-1"}
        ]
    })
}

/// Requests a scan, has the agent claim it and send `results()`; returns the scan id.
macro_rules! completed_scan {
    ($app:expr, $admin:expr, $fleet:expr, $agent:expr) => {{
        let scan = send(&$app, post("/tenant/scans", $admin, json!({"fleetId": $fleet, "scenario": "inventory"}))).await;
        assert_eq!(scan.status, 202, "{}", scan.body);
        let id = scan.body["scanId"].as_str().unwrap().to_owned();
        let claimed = send(&$app, authed(TestRequest::post().uri("/agent/jobs/claim"), $agent)).await;
        assert_eq!(claimed.body["scanId"], id.as_str(), "{}", claimed.body);
        let done = send(&$app, post(&format!("/agent/scans/{id}/results"), $agent, results())).await;
        assert_eq!(done.status, 200, "{}", done.body);
        id
    }};
}

#[actix_web::test]
async fn scan_requests_are_validated_to_the_field() {
    let f = fixture(config()).await;
    let app = app!(f);
    let (admin, fleet, _, _) = setup!(app, f);
    let ok = send(
        &app,
        post(
            "/tenant/scans",
            &admin,
            json!({"fleetId": fleet, "scenario": "ports"}),
        ),
    )
    .await;
    assert_eq!(ok.status, 202, "{}", ok.body);
    assert_eq!(
        (
            ok.body["status"].clone(),
            ok.body["constraints"]["maxDurationMinutes"].clone()
        ),
        (json!("queued"), json!(60))
    );
    let scan = |body: Value| post("/tenant/scans", &admin, body);
    let field = |res: &Answer| {
        res.error(422, "VALIDATION_ERROR")["field"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let res = send(
        &app,
        scan(json!({"fleetId": fleet, "scenario": "vulnerabilities"})),
    )
    .await;
    assert_eq!(field(&res), "scenario");
    assert!(
        res.body["message"]
            .as_str()
            .unwrap()
            .contains("unsupported scenario")
    );
    let at = |m: i64| {
        fleetpass_http::views::ts(
            time::macros::datetime!(2026-11-22 10:00 UTC) + time::Duration::minutes(m),
        )
    };
    let cases = [
        (
            json!({"maxDurationMinutes": 29}),
            "compliance",
            "maxDurationMinutes",
        ),
        (
            json!({"maxDurationMinutes": 0}),
            "inventory",
            "maxDurationMinutes",
        ),
        (
            json!({"maxDurationMinutes": 1441}),
            "inventory",
            "maxDurationMinutes",
        ),
        (json!({"maxAssets": 0}), "inventory", "maxAssets"),
        (json!({"maxAssets": 100_001}), "inventory", "maxAssets"),
        (
            json!({"notBefore": at(60), "notAfter": at(30)}),
            "inventory",
            "notAfter",
        ),
        (json!({"notAfter": at(-1)}), "inventory", "notAfter"),
        (json!({"notAfter": at(14)}), "ports", "notAfter"),
        (
            json!({"notBefore": at(60), "notAfter": at(69)}),
            "software",
            "notAfter",
        ),
        (json!({"notBefore": "tomorrow"}), "inventory", "notBefore"),
        // Found by the fuzzer: a valid RFC 3339 text whose instant is in the year 10000
        // in UTC was stored and then panicked every rendering of the scan.
        (
            json!({"notBefore": "9999-12-31T23:59:59-00:01"}),
            "inventory",
            "notBefore",
        ),
        (
            json!({"notAfter": "9999-12-31T23:59:59-00:01"}),
            "inventory",
            "notAfter",
        ),
    ];
    for (constraints, scenario, expected) in cases {
        let res = send(
            &app,
            scan(json!({"fleetId": fleet, "scenario": scenario, "constraints": constraints})),
        )
        .await;
        assert_eq!(field(&res), expected, "{constraints}: {}", res.body);
    }
    let edge = json!({"notBefore": at(60), "notAfter": at(70), "maxDurationMinutes": 10, "maxAssets": 100_000});
    assert_eq!(
        send(
            &app,
            scan(json!({"fleetId": fleet, "scenario": "software", "constraints": edge}))
        )
        .await
        .status,
        202
    );
    let unknown = send(
        &app,
        scan(json!({"fleetId": "0190f5d2-0000-7000-8000-000000000000", "scenario": "ports"})),
    )
    .await;
    unknown.error(404, "NOT_FOUND");
    let viewer = send(
        &app,
        post(
            "/api/admin/tokens",
            &admin,
            token_body(json!({"role": "viewer"})),
        ),
    )
    .await;
    let viewer = viewer.body["token"].as_str().unwrap().to_owned();
    send(
        &app,
        post(
            "/tenant/scans",
            &viewer,
            json!({"fleetId": fleet, "scenario": "ports"}),
        ),
    )
    .await
    .error(403, "FORBIDDEN_ROLE");
    let listed = send(
        &app,
        authed(
            TestRequest::get().uri("/tenant/scans?scenario=software"),
            &viewer,
        ),
    )
    .await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.body
    );
    send(
        &app,
        authed(TestRequest::get().uri("/tenant/scans?status=done"), &viewer),
    )
    .await
    .error(422, "VALIDATION_ERROR");
}

#[actix_web::test]
async fn agents_claim_oldest_first_and_complete_with_signed_artifacts() {
    let f = fixture(config()).await;
    let app = app!(f);
    let (admin, fleet, agent, _) = setup!(app, f);
    send(
        &app,
        authed(TestRequest::post().uri("/agent/jobs/claim"), &agent),
    )
    .await;
    let id = completed_scan!(app, &admin, &fleet, &agent);
    let read = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/tenant/scans/{id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(read.body["status"], "completed");

    let report = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/tenant/scans/{id}/report")),
            &admin,
        ),
    )
    .await;
    let counts = &report.body["report"]["counts"];
    assert_eq!(
        (
            counts["assets"].clone(),
            counts["openPorts"].clone(),
            counts["software"].clone()
        ),
        (json!(2), json!(3), json!(2))
    );
    assert_eq!(counts["findingsBySeverity"]["critical"], 1);
    assert_eq!(
        report.body["report"]["topFindings"][0]["severity"],
        "critical"
    );

    let bundle = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/tenant/scans/{id}/bundle")),
            &admin,
        ),
    )
    .await;
    // Re-serialised with sorted keys and no whitespace, as an auditor would.
    let member = serde_json::to_string(&bundle.body["bundle"]).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, member.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        bundle.body["bundleSha256"],
        hex.as_str(),
        "the bundle hashes to its stated digest"
    );
    assert_eq!(
        bundle.body["bundle"]["assets"].as_array().map(Vec::len),
        Some(2)
    );

    // The passport verifies with nothing but the JWKS, and names what it attests.
    let passport = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/tenant/scans/{id}/passport")),
            &admin,
        ),
    )
    .await;
    let jws = passport.body["passport"].as_str().unwrap().to_owned();
    let claims = verify_with_jwks(&app, &jws)
        .await
        .expect("a genuine passport verifies");
    assert_eq!(claims["scanId"], id.as_str());
    assert_eq!(claims["fleetId"], fleet.as_str());
    assert_eq!(claims["scenario"], "inventory");
    assert_eq!(claims["bundleSha256"], hex.as_str());
    assert_eq!(claims["counts"]["findings"], 3);
    assert!(
        claims["tenantId"].is_string()
            && claims["environmentId"].is_string()
            && claims["completedAt"].is_string()
    );
    let mut altered = claims.clone();
    altered["counts"]["findings"] = json!(0);
    let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&altered).unwrap());
    assert!(
        verify_with_jwks(&app, &parts.join(".")).await.is_none(),
        "an altered passport is refused"
    );

    // Results only for a scan this agent has running.
    send(
        &app,
        post(&format!("/agent/scans/{id}/results"), &agent, results()),
    )
    .await
    .error(409, "CONFLICT");
    send(
        &app,
        post(
            "/agent/scans/0190f5d2-0000-7000-8000-000000000000/results",
            &agent,
            results(),
        ),
    )
    .await
    .error(404, "NOT_FOUND");
}

/// Verifies a JWS as an outsider: only the JWKS the server publishes.
async fn verify_with_jwks<S, B>(app: &S, jws: &str) -> Option<Value>
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let jwks = send(app, TestRequest::get().uri("/.well-known/jwks.json")).await;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.body).ok()?;
    let header = jsonwebtoken::decode_header(jws).ok()?;
    let key = jsonwebtoken::DecodingKey::from_jwk(set.find(&header.kid?)?).ok()?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(jws, &key, &validation)
        .ok()
        .map(|d| d.claims)
}

#[actix_web::test]
async fn results_are_checked_before_anything_is_stored() {
    let f = fixture(config()).await;
    let app = app!(f);
    let (admin, fleet, agent, _) = setup!(app, f);
    let scan = send(
        &app,
        post(
            "/tenant/scans",
            &admin,
            json!({"fleetId": fleet, "scenario": "inventory", "constraints": {"maxAssets": 1}}),
        ),
    )
    .await;
    let id = scan.body["scanId"].as_str().unwrap().to_owned();
    send(
        &app,
        authed(TestRequest::post().uri("/agent/jobs/claim"), &agent),
    )
    .await;
    let uri = format!("/agent/scans/{id}/results");
    let too_many = send(&app, post(&uri, &agent, results())).await;
    assert!(
        too_many.error(422, "VALIDATION_ERROR")["message"]
            .as_str()
            .unwrap()
            .contains("assets")
    );
    let bad_ip =
        json!({"assets": [{"hostname": "x", "ip": "not-an-ip", "os": "x"}], "findings": []});
    send(&app, post(&uri, &agent, bad_ip))
        .await
        .error(422, "VALIDATION_ERROR");
    let bad_severity =
        json!({"assets": [], "findings": [{"severity": "apocalyptic", "title": "x"}]});
    send(&app, post(&uri, &agent, bad_severity))
        .await
        .error(422, "VALIDATION_ERROR");
    let huge = format!(
        "{{\"assets\": [], \"findings\": [], \"pad\": \"{}\"}}",
        "x".repeat(16 * 1024 * 1024)
    );
    let req = authed(TestRequest::post().uri(&uri), &agent)
        .insert_header(("Content-Type", "application/json"))
        .set_payload(huge);
    send(&app, req).await.error(413, "VALIDATION_ERROR");
    // A large but legal body (over the ordinary 1 MiB limit) goes through.
    let many: Vec<Value> = (0..1).map(|i| json!({"hostname": format!("h{i}"), "ip": "10.0.0.1", "os": "x", "software": (0..40_000).map(|j| json!({"name": format!("pkg{j}"), "version": "1.0"})).collect::<Vec<_>>()})).collect();
    let big = json!({"assets": many, "findings": []});
    assert!(serde_json::to_vec(&big).unwrap().len() > 1024 * 1024);
    let ok = send(&app, post(&uri, &agent, big)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[actix_web::test]
async fn overdue_scans_fail_or_expire_at_the_exact_instant() {
    let f = fixture(config()).await;
    let app = app!(f);
    let (admin, fleet, agent, credentials) = setup!(app, f);
    let at = |m: i64| {
        fleetpass_http::views::ts(
            time::macros::datetime!(2026-11-22 10:00 UTC) + time::Duration::minutes(m),
        )
    };
    let queued = send(&app, post("/tenant/scans", &admin, json!({"fleetId": fleet, "scenario": "inventory", "constraints": {"notBefore": at(100), "notAfter": at(120)}}))).await;
    let queued_id = queued.body["scanId"].as_str().unwrap().to_owned();
    let running = send(&app, post("/tenant/scans", &admin, json!({"fleetId": fleet, "scenario": "inventory", "constraints": {"maxDurationMinutes": 20}}))).await;
    let running_id = running.body["scanId"].as_str().unwrap().to_owned();
    let claimed = send(
        &app,
        authed(TestRequest::post().uri("/agent/jobs/claim"), &agent),
    )
    .await;
    assert_eq!(
        claimed.body["scanId"],
        running_id.as_str(),
        "a scan before its notBefore is not claimable"
    );
    let status = |id: String| {
        let admin = admin.clone();
        let app = &app;
        async move {
            send(
                app,
                authed(
                    TestRequest::get().uri(&format!("/tenant/scans/{id}")),
                    &admin,
                ),
            )
            .await
            .body["status"]
                .clone()
        }
    };
    f.clock
        .advance(time::Duration::minutes(20) - time::Duration::seconds(1));
    assert_eq!(
        fleetpass_ports::service::scans::sweep(&f.state.deps)
            .await
            .unwrap(),
        0
    );
    f.clock.advance(time::Duration::seconds(1));
    assert_eq!(
        fleetpass_ports::service::scans::sweep(&f.state.deps)
            .await
            .unwrap(),
        1
    );
    assert_eq!(status(running_id.clone()).await, "failed");
    // Too late: the agent (with a fresh access token) is told the scan is over.
    let fresh = send(
        &app,
        TestRequest::post()
            .uri("/agent/token")
            .set_json(credentials),
    )
    .await;
    let fresh = fresh.body["accessToken"].as_str().unwrap().to_owned();
    send(
        &app,
        post(
            &format!("/agent/scans/{running_id}/results"),
            &fresh,
            results(),
        ),
    )
    .await
    .error(409, "CONFLICT");
    f.clock.set(time::macros::datetime!(2026-11-22 12:00 UTC));
    assert_eq!(
        fleetpass_ports::service::scans::sweep(&f.state.deps)
            .await
            .unwrap(),
        1
    );
    assert_eq!(status(queued_id).await, "expired");
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
        "scan.requested",
        "scan.claimed",
        "scan.failed",
        "scan.expired",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

#[actix_web::test]
async fn the_seed_alias_creates_a_passport_link_and_says_it_is_deprecated() {
    let f = fixture(config()).await;
    let app = app!(f);
    let (admin, fleet, agent, _) = setup!(app, f);
    let id = completed_scan!(app, &admin, &fleet, &agent);
    let pending = send(
        &app,
        post(
            "/tenant/scans",
            &admin,
            json!({"fleetId": fleet, "scenario": "ports"}),
        ),
    )
    .await;
    let pending = pending.body["scanId"].as_str().unwrap().to_owned();
    send(
        &app,
        post(
            &format!("/tenant/scans/{pending}/share-links"),
            &admin,
            json!({}),
        ),
    )
    .await
    .error(409, "CONFLICT");
    // Seed 001's curl body, exactly.
    let req = authed(
        TestRequest::post().uri(&format!("/tenant/scans/{id}/share")),
        &admin,
    )
    .insert_header(("Content-Type", "application/json"))
    .set_payload("{\n  \"label\": \"Auditor handoff\",\n  \"scope\": \"passport\"\n}");
    let res = send(&app, req).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let token = res.body["token"].as_str().unwrap();
    assert!(token.starts_with("fps_"));
    assert_eq!(
        res.body["url"],
        format!("http://127.0.0.1:8080/share/{token}")
    );
    assert_eq!(
        (res.body["scope"].clone(), res.body["label"].clone()),
        (json!("passport"), json!("Auditor handoff"))
    );
    assert_eq!(
        res.body["expiresAt"], "2026-11-29T10:00:00Z",
        "168 hours by default"
    );
    assert!(res.body["id"].is_string() && res.body["createdAt"].is_string());
    assert_eq!(res.header("deprecation"), Some("true"));
    assert_eq!(
        res.header("link"),
        Some(format!("</tenant/scans/{id}/share-links>; rel=\"successor-version\"").as_str())
    );
    let canonical = send(
        &app,
        post(
            &format!("/tenant/scans/{id}/share-links"),
            &admin,
            json!({}),
        ),
    )
    .await;
    assert_eq!(
        (canonical.status.as_u16(), canonical.body["scope"].clone()),
        (201, json!("passport"))
    );
    assert!(canonical.header("deprecation").is_none());
    let uri = format!("/tenant/scans/{id}/share-links");
    for (body, field) in [
        (json!({"expiresHours": 0}), "expiresHours"),
        (json!({"expiresHours": 721}), "expiresHours"),
        (json!({"scope": "everything"}), "scope"),
        (json!({"label": "x".repeat(201)}), "label"),
        (json!({"maxAccesses": 0}), "maxAccesses"),
        (json!({"maxAccesses": 10_001}), "maxAccesses"),
    ] {
        let res = send(&app, post(&uri, &admin, body.clone())).await;
        assert_eq!(res.error(422, "VALIDATION_ERROR")["field"], field, "{body}");
    }
    for (hours, scope) in [(1, "report"), (720, "bundle")] {
        let res = send(
            &app,
            post(
                &uri,
                &admin,
                json!({"expiresHours": hours, "scope": scope, "label": "x".repeat(200)}),
            ),
        )
        .await;
        assert_eq!(
            (res.status.as_u16(), res.body["scope"].clone()),
            (201, json!(scope)),
            "{}",
            res.body
        );
    }
}

#[actix_web::test]
async fn auditors_open_links_within_scope_until_they_expire_or_are_revoked() {
    let f = fixture(config()).await;
    let app = app!(f);
    let (admin, fleet, agent, _) = setup!(app, f);
    let id = completed_scan!(app, &admin, &fleet, &agent);
    let make = |body: Value| post(&format!("/tenant/scans/{id}/share-links"), &admin, body);
    let report_only = send(&app, make(json!({"scope": "report", "expiresHours": 1}))).await;
    let token = report_only.body["token"].as_str().unwrap().to_owned();
    let json_view = send(&app, TestRequest::get().uri(&format!("/share/{token}"))).await;
    assert_eq!(json_view.status, 200, "{}", json_view.body);
    assert_eq!(json_view.body["grants"], json!(["report"]));
    assert_eq!(json_view.body["report"]["counts"]["assets"], 2);
    for header in [
        "referrer-policy",
        "content-security-policy",
        "cache-control",
        "x-content-type-options",
    ] {
        assert!(json_view.header(header).is_some(), "{header} missing");
    }
    assert_eq!(json_view.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(json_view.header("cache-control"), Some("no-store"));
    assert_eq!(
        send(
            &app,
            TestRequest::get().uri(&format!("/share/{token}/report"))
        )
        .await
        .status,
        200
    );
    let denied = send(
        &app,
        TestRequest::get().uri(&format!("/share/{token}/bundle")),
    )
    .await;
    denied.error(403, "FORBIDDEN_SCOPE");
    assert_eq!(
        denied.header("referrer-policy"),
        Some("no-referrer"),
        "error answers keep the share headers"
    );
    send(
        &app,
        TestRequest::get().uri(&format!("/share/{token}/passport")),
    )
    .await
    .error(403, "FORBIDDEN_SCOPE");
    send(
        &app,
        TestRequest::get().uri(&format!("/share/{token}/secrets")),
    )
    .await
    .error(404, "NOT_FOUND");

    // Expiry at the exact instant.
    f.clock
        .advance(time::Duration::hours(1) - time::Duration::seconds(1));
    assert_eq!(
        send(&app, TestRequest::get().uri(&format!("/share/{token}")))
            .await
            .status,
        200
    );
    f.clock.advance(time::Duration::seconds(1));
    send(&app, TestRequest::get().uri(&format!("/share/{token}")))
        .await
        .error(404, "NOT_FOUND");

    // An access limit, then revocation, then garbage: all 404.
    let limited = send(&app, make(json!({"maxAccesses": 2}))).await;
    let limited_token = limited.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        send(
            &app,
            TestRequest::get().uri(&format!("/share/{limited_token}/passport"))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(
            &app,
            TestRequest::get().uri(&format!("/share/{limited_token}/bundle"))
        )
        .await
        .status,
        200
    );
    send(
        &app,
        TestRequest::get().uri(&format!("/share/{limited_token}")),
    )
    .await
    .error(404, "NOT_FOUND");
    let full = send(&app, make(json!({}))).await;
    let (full_token, full_id) = (
        full.body["token"].as_str().unwrap().to_owned(),
        full.body["id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        send(
            &app,
            TestRequest::get().uri(&format!("/share/{full_token}/passport"))
        )
        .await
        .status,
        200
    );
    let del = send(
        &app,
        authed(
            TestRequest::delete().uri(&format!("/tenant/share-links/{full_id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(del.status, 204);
    send(
        &app,
        TestRequest::get().uri(&format!("/share/{full_token}")),
    )
    .await
    .error(404, "NOT_FOUND");
    send(&app, TestRequest::get().uri("/share/fps_nonsense"))
        .await
        .error(404, "NOT_FOUND");
    // A leaked link can be revoked by whoever finds it, without credentials.
    let leaked = send(&app, make(json!({}))).await;
    let leaked = leaked.body["token"].as_str().unwrap().to_owned();
    let report = TestRequest::post()
        .uri("/api/public/revocations")
        .set_json(json!({"token": leaked}));
    assert_eq!(send(&app, report).await.status, 202);
    send(&app, TestRequest::get().uri(&format!("/share/{leaked}")))
        .await
        .error(404, "NOT_FOUND");

    let list = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/tenant/scans/{id}/share-links")),
            &admin,
        ),
    )
    .await;
    let rows: Vec<(Value, Value)> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["status"].clone(), l["accessCount"].clone()))
        .collect();
    assert_eq!(
        rows,
        [
            (json!("revoked"), json!(0)),
            (json!("revoked"), json!(1)),
            (json!("used_up"), json!(2)),
            (json!("expired"), json!(3))
        ]
    );
    assert!(
        !list.body.to_string().contains(&full_token),
        "no token in a listing"
    );
    let audit = send(
        &app,
        authed(
            TestRequest::get().uri("/api/admin/audit-events?action=share_link.accessed&limit=200"),
            &admin,
        ),
    )
    .await;
    assert_eq!(
        audit.body["items"].as_array().map(Vec::len),
        Some(6),
        "every counted access is audited"
    );
}

#[actix_web::test]
async fn browsers_get_a_readable_page() {
    let f = fixture(config()).await;
    let app = app!(f);
    let (admin, fleet, agent, _) = setup!(app, f);
    let id = completed_scan!(app, &admin, &fleet, &agent);
    let link = send(
        &app,
        post(
            &format!("/tenant/scans/{id}/share-links"),
            &admin,
            json!({"label": "Q4 <audit>", "scope": "bundle"}),
        ),
    )
    .await;
    let token = link.body["token"].as_str().unwrap().to_owned();
    let req = TestRequest::get()
        .uri(&format!("/share/{token}"))
        .insert_header(("Accept", "text/html,application/xhtml+xml"));
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = res
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'") && csp.contains("style-src 'sha256-"));
    let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(html.contains("Q4 &lt;audit&gt;"), "labels are escaped");
    assert!(
        html.contains("Default &lt;admin&gt; password"),
        "findings are escaped"
    );
    assert!(!html.contains("<admin>"));
    assert!(html.contains("Findings by severity") && html.contains("Top findings"));
    assert!(
        html.contains(&format!("/share/{token}/bundle")),
        "links to what the link grants"
    );
    assert!(
        !html.contains(&format!("/share/{token}/passport\"")),
        "no link to what it does not grant"
    );
    assert!(
        !html.contains("<link") && !html.contains("src="),
        "no external assets"
    );
    assert!(!html.contains("<script"), "no scripts");
    assert!(
        !html.contains("fleetpass passport verify"),
        "no passport to verify on a bundle link"
    );
}

#[actix_web::test]
async fn a_passport_link_page_shows_the_command_that_verifies_it() {
    let f = fixture(config()).await;
    let app = app!(f);
    let (admin, fleet, agent, _) = setup!(app, f);
    let id = completed_scan!(app, &admin, &fleet, &agent);
    let link = send(
        &app,
        post(
            &format!("/tenant/scans/{id}/share-links"),
            &admin,
            json!({}),
        ),
    )
    .await;
    let url = link.body["url"].as_str().unwrap().to_owned();
    let token = link.body["token"].as_str().unwrap().to_owned();
    let req = TestRequest::get()
        .uri(&format!("/share/{token}"))
        .insert_header(("Accept", "text/html"));
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), 200);
    let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(
        html.contains(&format!(
            "<pre><code>fleetpass passport verify {url}</code></pre>"
        )),
        "{html}"
    );
    assert!(html.contains("--passport passport.json --jwks jwks.json --bundle bundle.json"));
}

/// Issue 17, item 6: a 201 said nothing of where the new resource lives. Every create
/// of the document (but schedules, which need PostgreSQL: the server's black-box
/// schedules test covers them) now sends a `Location` that names it.
#[actix_web::test]
async fn every_created_response_says_where_the_new_resource_is() {
    let f = fixture(config()).await;
    let app = app!(f);
    let (admin, fleet, agent, _) = setup!(app, f);
    let scan = completed_scan!(app, &admin, &fleet, &agent);
    let _ = agent;
    let token_id = {
        let res = send(
            &app,
            post("/api/admin/tokens", &admin, token_body(json!({}))),
        )
        .await;
        res.body["id"].as_str().unwrap().to_owned()
    };
    let platform_post = |path: &str, body: Value| {
        TestRequest::post()
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {ADMIN_KEY}")))
            .set_json(body)
    };
    let enrollment = format!("/tenant/discovery/fleets/{fleet}/enrollment-tokens");
    let fresh_token = send(&app, post(&enrollment, &admin, json!({"maxUses": 2}))).await;
    // (operation, request, how to follow the Location, the id field of the answer)
    let creates: Vec<(&str, TestRequest, &str, &str)> = vec![
        ("post /platform/tenants", platform_post("/platform/tenants", json!({"name": "beta"})), "platform", "tenantId"),
        ("post /api/admin/tokens", post("/api/admin/tokens", &admin, token_body(json!({}))), "get", "id"),
        ("post /api/admin/tokens/{id}/rotate", post(&format!("/api/admin/tokens/{token_id}/rotate"), &admin, json!({})), "get", "id"),
        ("post /api/admin/users", post("/api/admin/users", &admin, json!({"email": "l@example.com", "role": "viewer"})), "get", "id"),
        ("post /api/admin/service-accounts", post("/api/admin/service-accounts", &admin, json!({"name": "loc", "role": "viewer"})), "get", "id"),
        ("post /api/admin/environments", post("/api/admin/environments", &admin, json!({"name": "staging"})), "get", "id"),
        ("post /tenant/discovery/fleets", post("/tenant/discovery/fleets", &admin, json!({})), "get", "fleetId"),
        ("post /tenant/discovery/fleets/{fleet_id}/enrollment-tokens", post(&enrollment, &admin, json!({})), "delete", "id"),
        ("post /agent/enroll", TestRequest::post().uri("/agent/enroll").set_json(json!({
            "enrollmentToken": fresh_token.body["enrollmentToken"], "hostname": "loc", "platform": "linux"})), "get", "agentId"),
        ("post /tenant/scans/{scan_id}/share-links", post(&format!("/tenant/scans/{scan}/share-links"), &admin, json!({})), "delete", "id"),
        ("post /tenant/scans/{scan_id}/share", post(&format!("/tenant/scans/{scan}/share"), &admin, json!({})), "delete", "id"),
    ];
    let mut exercised = std::collections::BTreeSet::new();
    for (operation, req, follow, id_field) in creates {
        let res = send(&app, req).await;
        assert_eq!(res.status, 201, "{operation}: {}", res.body);
        let location = res.header("location").unwrap_or_default().to_owned();
        let id = res.body[id_field].as_str().unwrap_or_default();
        assert!(
            !id.is_empty() && location.starts_with('/') && location.ends_with(id),
            "{operation}: Location {location:?} does not name {id:?}"
        );
        let followed = match follow {
            "get" => send(&app, authed(TestRequest::get().uri(&location), &admin)).await,
            "platform" => send(&app, authed(TestRequest::get().uri(&location), ADMIN_KEY)).await,
            _ => send(&app, authed(TestRequest::delete().uri(&location), &admin)).await,
        };
        assert!(
            followed.status.is_success(),
            "{operation}: {follow} {location} answered {}: {}",
            followed.status,
            followed.body
        );
        exercised.insert(operation.to_owned());
    }
    let doc = fleetpass_http::openapi::document();
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !op["responses"]["201"].is_null() {
                documented.insert(format!("{method} {path}"));
            }
        }
    }
    let untested: Vec<_> = documented.difference(&exercised).collect();
    assert_eq!(
        untested,
        ["post /tenant/schedules"],
        "every 201 is exercised"
    );
}

//! In-process tests of the tenant token policy (issue 21): who may read and set it, its
//! body's bounds, and its enforcement at token creation, rotation, enrollment-token
//! issue and fleet creation, and what `/api/me` shows of it. Over the in-memory store
//! with a pinned clock (2026-11-22 10:00 UTC).

mod support;

use actix_web::test::{self, TestRequest};
use serde_json::{Value, json};
use support::*;

macro_rules! app {
    ($f:expr) => {
        test::init_service(fleetpass_http::app($f.state.clone())).await
    };
}

const POLICY: &str = "/api/admin/token-policy";

fn put(token: &str, body: Value) -> TestRequest {
    authed(TestRequest::put().uri(POLICY), token).set_json(body)
}

fn get(path: &str, token: &str) -> TestRequest {
    authed(TestRequest::get().uri(path), token)
}

/// A token made by `admin` with `overrides` of the seed body; returns the whole answer.
macro_rules! mint {
    ($app:expr, $admin:expr, $overrides:expr) => {{
        let made = send(
            $app,
            post("/api/admin/tokens", $admin, token_body($overrides)),
        )
        .await;
        assert_eq!(made.status, 201, "{}", made.body);
        made.body
    }};
}

#[actix_web::test]
async fn only_an_all_environments_admin_sets_the_policy_and_any_admin_reads_it() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let env = send(
        &app,
        post(
            "/api/admin/environments",
            &admin,
            json!({"name": "staging"}),
        ),
    )
    .await;
    let env = env.body["id"].as_str().unwrap().to_owned();
    let scoped_admin = mint!(
        &app,
        &admin,
        json!({"role": "admin", "allEnvironments": false, "environmentIds": [env]})
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let viewer = mint!(&app, &admin, json!({"role": "viewer"}))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let operator = mint!(&app, &admin, json!({"role": "operator"}))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"maxExpiresInDays": 30, "maxEnrollmentExpiresHours": 24});

    let refused = send(&app, put(&scoped_admin, body.clone())).await;
    let e = refused.error(403, "FORBIDDEN_SCOPE");
    assert!(e["hint"].is_string(), "{e}");
    send(&app, put(&viewer, body.clone()))
        .await
        .error(403, "FORBIDDEN_ROLE");
    send(&app, put(&operator, body.clone()))
        .await
        .error(403, "FORBIDDEN_ROLE");
    for token in [&viewer, &operator] {
        send(&app, get(POLICY, token))
            .await
            .error(403, "FORBIDDEN_ROLE");
    }
    // Nothing was set by the refused calls.
    let none = json!({"maxExpiresInDays": null, "maxEnrollmentExpiresHours": null});
    let read = send(&app, get(POLICY, &scoped_admin)).await;
    assert_eq!((read.status.as_u16(), &read.body), (200, &none));

    let set = send(&app, put(&admin, body.clone())).await;
    assert_eq!((set.status.as_u16(), &set.body), (200, &body));
    let read = send(&app, get(POLICY, &scoped_admin)).await;
    assert_eq!(
        (read.status.as_u16(), &read.body),
        (200, &body),
        "an env-scoped admin reads it"
    );
    // The change is audited, naming the new maxima.
    let audit = send(
        &app,
        get(
            "/api/admin/audit-events?action=token_policy.updated",
            &admin,
        ),
    )
    .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", audit.body);
    assert_eq!(items[0]["details"], body);
    // null lifts a maximum again.
    let cleared = send(&app, put(&admin, none.clone())).await;
    assert_eq!((cleared.status.as_u16(), &cleared.body), (200, &none));
}

#[actix_web::test]
async fn the_policy_body_is_bounded_complete_and_closed() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    for (body, field) in [
        (
            json!({"maxExpiresInDays": 0, "maxEnrollmentExpiresHours": null}),
            "maxExpiresInDays",
        ),
        (
            json!({"maxExpiresInDays": 366, "maxEnrollmentExpiresHours": null}),
            "maxExpiresInDays",
        ),
        (
            json!({"maxExpiresInDays": null, "maxEnrollmentExpiresHours": 721}),
            "maxEnrollmentExpiresHours",
        ),
        (json!({"maxExpiresInDays": 30}), "maxEnrollmentExpiresHours"),
        (
            json!({"maxExpiresInDays": 30, "maxEnrollmentExpiresHours": 24, "maxUses": 1}),
            "maxUses",
        ),
    ] {
        let res = send(&app, put(&admin, body.clone())).await;
        let e = res.error(422, "VALIDATION_ERROR");
        assert_eq!(e["field"], field, "{body}: {e}");
    }
    let e = send(
        &app,
        put(
            &admin,
            json!({"maxExpiresInDays": 400, "maxEnrollmentExpiresHours": null}),
        ),
    )
    .await;
    let e = e.error(422, "VALIDATION_ERROR");
    assert!(
        e["message"].as_str().unwrap().contains("between 1 and 365"),
        "{e}"
    );
    let e = send(
        &app,
        put(&admin, json!({"maxEnrollmentExpiresHours": null})),
    )
    .await;
    let e = e.error(422, "VALIDATION_ERROR");
    assert_eq!(e["message"], "maxExpiresInDays is required", "{e}");
    assert!(e["hint"].as_str().unwrap().contains("null"), "{e}");
}

#[actix_web::test]
async fn token_creation_above_the_maximum_is_422_naming_the_field_and_the_policy() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let set = send(
        &app,
        put(
            &admin,
            json!({"maxExpiresInDays": 30, "maxEnrollmentExpiresHours": null}),
        ),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let over = send(
        &app,
        post(
            "/api/admin/tokens",
            &admin,
            token_body(json!({"expiresInDays": 31})),
        ),
    )
    .await;
    let e = over.error(422, "VALIDATION_ERROR");
    assert_eq!(e["field"], "expiresInDays", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with("expiresInDays must be at most 30") && message.contains("token policy"),
        "{e}"
    );
    assert!(
        e["hint"]
            .as_str()
            .unwrap()
            .starts_with("Use 30 days or fewer"),
        "{e}"
    );
    let at = mint!(&app, &admin, json!({"expiresInDays": 30}));
    assert_eq!(at["expiresAt"], "2026-12-22T10:00:00Z");
    // Lifted again, the full year is back.
    send(
        &app,
        put(
            &admin,
            json!({"maxExpiresInDays": null, "maxEnrollmentExpiresHours": null}),
        ),
    )
    .await;
    mint!(&app, &admin, json!({"expiresInDays": 365}));
}

#[actix_web::test]
async fn rotation_caps_an_expiry_the_policy_no_longer_allows() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let long = mint!(&app, &admin, json!({"expiresInDays": 365}));
    let short = mint!(&app, &admin, json!({"expiresInDays": 10}));
    send(
        &app,
        put(
            &admin,
            json!({"maxExpiresInDays": 30, "maxEnrollmentExpiresHours": null}),
        ),
    )
    .await;
    let rotate = |id: &Value| {
        authed(
            TestRequest::post().uri(&format!(
                "/api/admin/tokens/{}/rotate",
                id.as_str().unwrap()
            )),
            &admin,
        )
        .set_json(json!({}))
    };
    // Existing tokens keep their expiry until they are rotated.
    let before = send(
        &app,
        get(
            &format!("/api/admin/tokens/{}", long["id"].as_str().unwrap()),
            &admin,
        ),
    )
    .await;
    assert_eq!(before.body["expiresAt"], "2027-11-22T10:00:00Z");
    f.clock.advance(time::Duration::days(1));
    let rotated = send(&app, rotate(&long["id"])).await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    assert_eq!(
        rotated.body["expiresAt"], "2026-12-23T10:00:00Z",
        "capped to now + 30 days"
    );
    let read = send(
        &app,
        get(
            &format!("/api/admin/tokens/{}", long["id"].as_str().unwrap()),
            &admin,
        ),
    )
    .await;
    assert_eq!(read.body["expiresAt"], "2026-12-23T10:00:00Z");
    let kept = send(&app, rotate(&short["id"])).await;
    assert_eq!(kept.status, 201, "{}", kept.body);
    assert_eq!(
        kept.body["expiresAt"], short["expiresAt"],
        "an expiry inside the policy is kept, never extended"
    );
}

#[actix_web::test]
async fn enrollment_tokens_meet_the_policy_and_defaults_are_capped_to_it() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    send(
        &app,
        put(
            &admin,
            json!({"maxExpiresInDays": null, "maxEnrollmentExpiresHours": 24}),
        ),
    )
    .await;
    // A new fleet's first token asks for no lifetime: it gets the maximum, not a 422.
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    assert_eq!(fleet.status, 201, "{}", fleet.body);
    assert_eq!(
        fleet.body["expiresAt"], "2026-11-23T10:00:00Z",
        "24 h, not 72"
    );
    let issue = format!(
        "/tenant/discovery/fleets/{}/enrollment-tokens",
        fleet.body["fleetId"].as_str().unwrap()
    );
    let over = send(&app, post(&issue, &admin, json!({"expiresHours": 25}))).await;
    let e = over.error(422, "VALIDATION_ERROR");
    assert_eq!(e["field"], "expiresHours", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("expiresHours must be at most 24"),
        "{e}"
    );
    let at = send(&app, post(&issue, &admin, json!({"expiresHours": 24}))).await;
    assert_eq!(at.status, 201, "{}", at.body);
    assert_eq!(at.body["expiresAt"], "2026-11-23T10:00:00Z");
    let default = send(&app, post(&issue, &admin, json!({}))).await;
    assert_eq!(default.status, 201, "{}", default.body);
    assert_eq!(default.body["expiresAt"], "2026-11-23T10:00:00Z");
    // An enrollment maximum does not limit API tokens.
    mint!(&app, &admin, json!({"expiresInDays": 365}));
    // Without a policy, the default is 72 h as before.
    send(
        &app,
        put(
            &admin,
            json!({"maxExpiresInDays": null, "maxEnrollmentExpiresHours": null}),
        ),
    )
    .await;
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    assert_eq!(fleet.body["expiresAt"], "2026-11-25T10:00:00Z");
}

#[actix_web::test]
async fn api_me_shows_the_policy_to_every_role() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let viewer = mint!(&app, &admin, json!({"role": "viewer"}))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = send(&app, get("/api/me", &viewer)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(
        me.body["tokenPolicy"],
        json!({"maxExpiresInDays": null, "maxEnrollmentExpiresHours": null})
    );
    let policy = json!({"maxExpiresInDays": 90, "maxEnrollmentExpiresHours": 12});
    send(&app, put(&admin, policy.clone())).await;
    for token in [&viewer, &admin] {
        let me = send(&app, get("/api/me", token)).await;
        assert_eq!(me.body["tokenPolicy"], policy, "{}", me.body);
    }
}

//! The role is decided before the body (issue 16, defect 4): for every tenant operation
//! of the OpenAPI document that takes a body, a token one role below the documented
//! `x-required-role`, sending a body that is wrong in every way, hears 403
//! `FORBIDDEN_ROLE` (or `FORBIDDEN_SCOPE` for an environment-scoped admin managing
//! environments), never the 422 its body would earn. Reading the operations from the
//! document keeps the test whole as routes are added, and holds the document's roles to
//! what the server does.

mod support;

use actix_web::http::Method;
use actix_web::test::{self, TestRequest};
use serde_json::{Value, json};
use support::*;

/// A token of `role` (all environments unless `environment` is given) made by `admin`.
async fn token_of<S, B>(app: &S, admin: &str, role: &str, environment: Option<&str>) -> String
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let scope = match environment {
        Some(env) => json!({"role": role, "allEnvironments": false, "environmentIds": [env]}),
        None => json!({"role": role}),
    };
    let made = send(app, post("/api/admin/tokens", admin, token_body(scope))).await;
    assert_eq!(made.status.as_u16(), 201, "{}", made.body);
    made.body["token"].as_str().expect("token").to_owned()
}

#[actix_web::test]
async fn a_role_too_low_hears_403_before_its_body_is_judged() {
    let f = fixture(config()).await;
    let app = test::init_service(fleetpass_http::app(f.state.clone())).await;
    let (_, admin) = tenant(&f, "rbac").await;
    let env = send(
        &app,
        post(
            "/api/admin/environments",
            &admin,
            json!({"name": "staging"}),
        ),
    )
    .await;
    assert_eq!(env.status.as_u16(), 201, "{}", env.body);
    let env = env.body["id"].as_str().expect("id").to_owned();
    let viewer = token_of(&app, &admin, "viewer", None).await;
    let operator = token_of(&app, &admin, "operator", None).await;
    let scoped_admin = token_of(&app, &admin, "admin", Some(&env)).await;

    let doc = fleetpass_http::openapi::document();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            let (Some(role), Some(_)) = (op["x-required-role"].as_str(), op.get("requestBody"))
            else {
                continue;
            };
            let (token, code) = match role {
                "operator" => (&viewer, "FORBIDDEN_ROLE"),
                "admin" => (&operator, "FORBIDDEN_ROLE"),
                "admin with allEnvironments" => (&scoped_admin, "FORBIDDEN_SCOPE"),
                other => panic!("{method} {path}: a body on an operation for {other}"),
            };
            // Any id: the role is decided before the path names anything.
            let uri: String = path
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        "0190d4a2-58a4-7000-8000-000000000000"
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let bad = json!({"name": "", "role": "admin", "notAField": true, "expiresInDays": "x"});
            let req = authed(
                TestRequest::default().method(method.clone()).uri(&uri),
                token,
            )
            .set_json(bad);
            let answer = send(&app, req).await;
            assert_eq!(
                (answer.status.as_u16(), answer.body["code"].clone()),
                (403, Value::from(code)),
                "{method} {path} as a token below {role}: {}",
                answer.body
            );
            answer.error(403, code);
            checked += 1;
        }
    }
    assert!(
        checked >= 15,
        "only {checked} operations with a body were checked"
    );
}

/// The scope is decided before the body too, where the path names the resource: an
/// operator of environment A touching a fleet, scan or schedule of environment B with a
/// body wrong in every way hears 403 `FORBIDDEN_SCOPE`; in its own environment the same
/// body is the 422 it earns. On PostgreSQL, which keeps schedules.
#[actix_web::test]
async fn a_resource_outside_the_scope_is_403_before_its_body_is_judged() {
    let db = fleetpass_store_postgres::testing::TestDatabase::fresh().await;
    let guard = fleetpass_http::GuardConfig {
        public_per_minute: 100_000,
        auth_failures_per_minute: 100_000,
        ..fleetpass_http::GuardConfig::default()
    };
    let f = fixture_on(config(), guard, db.store_arc()).await;
    let app = test::init_service(fleetpass_http::app(f.state.clone())).await;
    let (_, admin) = tenant(&f, "scopes").await;
    let mut envs = Vec::new();
    for name in ["a", "b"] {
        let env = send(
            &app,
            post("/api/admin/environments", &admin, json!({"name": name})),
        )
        .await;
        assert_eq!(env.status.as_u16(), 201, "{}", env.body);
        envs.push(env.body["id"].as_str().expect("id").to_owned());
    }
    let operator_of_a = token_of(&app, &admin, "operator", Some(&envs[0])).await;
    // One fleet, scan and schedule in each environment.
    let mut targets = Vec::new();
    for env in &envs {
        let fleet = send(
            &app,
            post(
                "/tenant/discovery/fleets",
                &admin,
                json!({"environmentId": env}),
            ),
        )
        .await;
        assert_eq!(fleet.status.as_u16(), 201, "{}", fleet.body);
        let fleet = fleet.body["fleetId"].as_str().expect("fleetId").to_owned();
        let scan = send(
            &app,
            post(
                "/tenant/scans",
                &admin,
                json!({"fleetId": fleet, "scenario": "inventory"}),
            ),
        )
        .await;
        assert_eq!(scan.status.as_u16(), 202, "{}", scan.body);
        let scan = scan.body["scanId"].as_str().expect("scanId").to_owned();
        let schedule = send(
            &app,
            post(
                "/tenant/schedules",
                &admin,
                json!({"fleetId": fleet, "scenario": "ports", "intervalMinutes": 60}),
            ),
        )
        .await;
        assert_eq!(schedule.status.as_u16(), 201, "{}", schedule.body);
        let schedule = schedule.body["scheduleId"].as_str().expect("id").to_owned();
        targets.push([
            (Method::PATCH, format!("/tenant/discovery/fleets/{fleet}")),
            (
                Method::POST,
                format!("/tenant/discovery/fleets/{fleet}/enrollment-tokens"),
            ),
            (Method::POST, format!("/tenant/scans/{scan}/share-links")),
            (Method::POST, format!("/tenant/scans/{scan}/share")),
            (Method::PATCH, format!("/tenant/schedules/{schedule}")),
        ]);
    }
    let bad = json!({"name": "", "expiresHours": 0, "maxUses": 0, "notAField": true});
    for (env, (status, code)) in [
        (0, (422, "VALIDATION_ERROR")),
        (1, (403, "FORBIDDEN_SCOPE")),
    ] {
        for (method, uri) in &targets[env] {
            let req = authed(
                TestRequest::default().method(method.clone()).uri(uri),
                &operator_of_a,
            )
            .set_json(bad.clone());
            let answer = send(&app, req).await;
            assert_eq!(
                (answer.status.as_u16(), answer.body["code"].clone()),
                (status, Value::from(code)),
                "{method} {uri} (environment {env}): {}",
                answer.body
            );
        }
    }
}

/// A handler that takes its `Body` before its `Caller` would read the body before the
/// role is decided; the `Body` refuses to run, and every test of such a route shows a
/// 500 at once. With the `Caller` first, a low role is 403 and the right one goes on.
#[actix_web::test]
async fn a_body_before_its_caller_is_a_500_and_after_it_waits_for_the_role() {
    use fleetpass_http::extract::{Administer, Body, Caller};

    async fn body_first(_: Body<Value>, _: Caller<Administer>) -> actix_web::HttpResponse {
        actix_web::HttpResponse::Ok().finish()
    }
    async fn caller_first(_: Caller<Administer>, _: Body<Value>) -> actix_web::HttpResponse {
        actix_web::HttpResponse::Ok().finish()
    }
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "order").await;
    let full = test::init_service(fleetpass_http::app(f.state.clone())).await;
    let viewer = token_of(&full, &admin, "viewer", None).await;
    let app = test::init_service(
        actix_web::App::new()
            .app_data(f.state.clone())
            .service(
                actix_web::web::resource("/api/body-first")
                    .wrap(fleetpass_http::guard::layer(fleetpass_http::Class::Tenant))
                    .post(body_first),
            )
            .service(
                actix_web::web::resource("/api/caller-first")
                    .wrap(fleetpass_http::guard::layer(fleetpass_http::Class::Tenant))
                    .post(caller_first),
            ),
    )
    .await;
    let status = |path: &'static str, token: String| {
        let app = &app;
        async move {
            send(app, post(path, &token, json!({})))
                .await
                .status
                .as_u16()
        }
    };
    assert_eq!(status("/api/body-first", admin.clone()).await, 500);
    assert_eq!(status("/api/caller-first", viewer).await, 403);
    assert_eq!(status("/api/caller-first", admin).await, 200);
}

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

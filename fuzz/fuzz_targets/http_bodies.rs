//! Fuzzes every POST and PATCH request body of the API through the whole in-process
//! app (memory store): the first byte picks the route, the rest is the JSON body sent
//! with the route's credential; asserts no 5xx (but the memory store's documented 503
//! on schedules) and no panic.
#![no_main]

use actix_web::http::Method;
use fleetpass_fuzz::{Auth, exchange, server_error};
use libfuzzer_sys::fuzz_target;

/// A route: method, path (placeholders name fixtures, see `Fixtures::fill`), the
/// credential it takes, and whether a 503 is its documented answer on the memory store.
type Op = (Method, &'static str, Auth, bool);

/// Every POST and PATCH route registered in crates/http/src/routes/*.rs. Append only:
/// the first byte of the committed seeds picks by index.
const OPS: [Op; 24] = [
    (Method::POST, "/platform/tenants", Auth::Platform, false),
    (Method::POST, "/api/admin/tokens", Auth::Admin, false),
    (
        Method::PATCH,
        "/api/admin/tokens/{token}",
        Auth::Admin,
        false,
    ),
    (
        Method::POST,
        "/api/admin/tokens/{token}/rotate",
        Auth::Admin,
        false,
    ),
    (Method::POST, "/api/public/revocations", Auth::Public, false),
    (Method::POST, "/api/admin/environments", Auth::Admin, false),
    (
        Method::PATCH,
        "/api/admin/environments/{environment}",
        Auth::Admin,
        false,
    ),
    (Method::POST, "/api/admin/users", Auth::Admin, false),
    (Method::PATCH, "/api/admin/users/{user}", Auth::Admin, false),
    (
        Method::POST,
        "/api/admin/service-accounts",
        Auth::Admin,
        false,
    ),
    (
        Method::PATCH,
        "/api/admin/service-accounts/{service_account}",
        Auth::Admin,
        false,
    ),
    (Method::POST, "/tenant/discovery/fleets", Auth::Admin, false),
    (
        Method::PATCH,
        "/tenant/discovery/fleets/{fleet}",
        Auth::Admin,
        false,
    ),
    (
        Method::POST,
        "/tenant/discovery/fleets/{fleet}/enrollment-tokens",
        Auth::Admin,
        false,
    ),
    (Method::POST, "/agent/enroll", Auth::Public, false),
    (Method::POST, "/agent/token", Auth::Public, false),
    (Method::POST, "/agent/heartbeat", Auth::Agent, false),
    (Method::POST, "/agent/jobs/claim", Auth::Agent, false),
    (
        Method::POST,
        "/agent/scans/{running_scan}/results",
        Auth::Agent,
        false,
    ),
    (Method::POST, "/tenant/scans", Auth::Admin, false),
    (
        Method::POST,
        "/tenant/scans/{completed_scan}/share-links",
        Auth::Admin,
        false,
    ),
    (
        Method::POST,
        "/tenant/scans/{completed_scan}/share",
        Auth::Admin,
        false,
    ),
    (Method::POST, "/tenant/schedules", Auth::Admin, true),
    // No schedule exists on the memory store: any id serves.
    (
        Method::PATCH,
        "/tenant/schedules/0190f7d6-0000-7000-8000-000000000001",
        Auth::Admin,
        true,
    ),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (method, template, auth, may_503) = OPS[usize::from(pick) % OPS.len()].clone();
    let (path, answer) = exchange(method.clone(), |f| f.fill(template), auth, body.to_vec());
    assert!(
        !server_error(answer.status, may_503),
        "{method} {path} answered {}: {}",
        answer.status,
        answer.body
    );
});

//! Fuzzes the path ids and list parameters of the API through the whole in-process app
//! (memory store): the first byte picks a GET or DELETE route, the rest fills its `{id}`
//! segments (split at newlines, percent-encoded, so any bytes reach the router, invalid
//! UTF-8 included) or its query string (`cursor=…&limit=…`); asserts no 5xx (but the
//! memory store's documented 503 on schedules) and no panic.
#![no_main]

use actix_web::http::Method;
use fleetpass_fuzz::{Auth, exchange, percent_encode, server_error};
use libfuzzer_sys::fuzz_target;

/// A route: method, path (`{*}` takes a fuzzed segment, a `?{*}` the query string;
/// other placeholders name fixtures, see `Fixtures::fill`), its credential, and whether
/// a 503 is its documented answer on the memory store.
type Op = (Method, &'static str, Auth, bool);

/// Every GET and DELETE route with a path id in crates/http/src/routes/*.rs, then every
/// list. Append only: the first byte of the committed seeds picks by index.
const OPS: [Op; 39] = [
    (Method::GET, "/platform/tenants/{*}", Auth::Platform, false),
    (Method::GET, "/api/admin/tokens/{*}", Auth::Admin, false),
    (
        Method::GET,
        "/api/admin/environments/{*}",
        Auth::Admin,
        false,
    ),
    (Method::GET, "/api/admin/users/{*}", Auth::Admin, false),
    (
        Method::GET,
        "/api/admin/service-accounts/{*}",
        Auth::Admin,
        false,
    ),
    (
        Method::GET,
        "/tenant/discovery/fleets/{*}",
        Auth::Admin,
        false,
    ),
    (
        Method::GET,
        "/tenant/discovery/fleets/{*}/enrollment-tokens",
        Auth::Admin,
        false,
    ),
    (
        Method::GET,
        "/tenant/discovery/fleets/{*}/agents",
        Auth::Admin,
        false,
    ),
    (
        Method::GET,
        "/tenant/discovery/agents/{*}",
        Auth::Admin,
        false,
    ),
    (Method::GET, "/tenant/scans/{*}", Auth::Admin, false),
    (Method::GET, "/tenant/scans/{*}/report", Auth::Admin, false),
    (Method::GET, "/tenant/scans/{*}/bundle", Auth::Admin, false),
    (
        Method::GET,
        "/tenant/scans/{*}/passport",
        Auth::Admin,
        false,
    ),
    (
        Method::GET,
        "/tenant/scans/{*}/share-links",
        Auth::Admin,
        false,
    ),
    (Method::GET, "/tenant/schedules/{*}", Auth::Admin, true),
    (Method::GET, "/share/{*}", Auth::Public, false),
    (Method::GET, "/share/{*}/{*}", Auth::Public, false),
    (
        Method::GET,
        "/share/{share_secret}/{*}",
        Auth::Public,
        false,
    ),
    (Method::DELETE, "/api/admin/tokens/{*}", Auth::Admin, false),
    (
        Method::DELETE,
        "/api/admin/environments/{*}",
        Auth::Admin,
        false,
    ),
    (Method::DELETE, "/api/admin/users/{*}", Auth::Admin, false),
    (
        Method::DELETE,
        "/api/admin/service-accounts/{*}",
        Auth::Admin,
        false,
    ),
    (
        Method::DELETE,
        "/tenant/discovery/fleets/{*}",
        Auth::Admin,
        false,
    ),
    (
        Method::DELETE,
        "/tenant/discovery/fleets/{*}/enrollment-tokens/{*}",
        Auth::Admin,
        false,
    ),
    (
        Method::DELETE,
        "/tenant/discovery/agents/{*}",
        Auth::Admin,
        false,
    ),
    (
        Method::DELETE,
        "/tenant/share-links/{*}",
        Auth::Admin,
        false,
    ),
    (Method::DELETE, "/tenant/schedules/{*}", Auth::Admin, true),
    (Method::GET, "/platform/tenants?{*}", Auth::Platform, false),
    (Method::GET, "/api/admin/tokens?{*}", Auth::Admin, false),
    (
        Method::GET,
        "/api/admin/environments?{*}",
        Auth::Admin,
        false,
    ),
    (Method::GET, "/api/admin/users?{*}", Auth::Admin, false),
    (
        Method::GET,
        "/api/admin/service-accounts?{*}",
        Auth::Admin,
        false,
    ),
    (
        Method::GET,
        "/api/admin/audit-events?{*}",
        Auth::Admin,
        false,
    ),
    (
        Method::GET,
        "/tenant/discovery/fleets?{*}",
        Auth::Admin,
        false,
    ),
    (
        Method::GET,
        "/tenant/discovery/fleets/{fleet}/enrollment-tokens?{*}",
        Auth::Admin,
        false,
    ),
    (
        Method::GET,
        "/tenant/discovery/fleets/{fleet}/agents?{*}",
        Auth::Admin,
        false,
    ),
    (Method::GET, "/tenant/scans?{*}", Auth::Admin, false),
    (
        Method::GET,
        "/tenant/scans/{completed_scan}/share-links?{*}",
        Auth::Admin,
        false,
    ),
    (Method::GET, "/tenant/schedules?{*}", Auth::Admin, true),
];

/// `template` with its `{*}` holes filled from `input`: one newline-separated part per
/// hole, percent-encoded (a query string keeps its `&` and `=`).
fn fill_holes(template: &str, input: &[u8]) -> String {
    let mut parts = input.splitn(template.matches("{*}").count(), |&b| b == b'\n');
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find("{*}") {
        out.push_str(&rest[..at]);
        let keep: &[u8] = if rest[..at].ends_with('?') {
            b"&="
        } else {
            b""
        };
        out.push_str(&percent_encode(parts.next().unwrap_or_default(), keep));
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let (method, template, auth, may_503) = OPS[usize::from(pick) % OPS.len()].clone();
    let (path, answer) = exchange(
        method.clone(),
        |f| fill_holes(&f.fill(template), input),
        auth,
        Vec::new(),
    );
    assert!(
        !server_error(answer.status, may_503),
        "{method} {path} answered {}: {}",
        answer.status,
        answer.body
    );
});

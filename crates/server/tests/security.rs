//! Black-box tests of the request guard, idempotent replays and scoped admins, tried as
//! an attacker would: a lower role or narrower scope of the same tenant, an agent behind
//! the same NAT, anyone sending raw HTTP. Every request goes over a real socket as raw
//! bytes (`raw`), so nothing normalises a path before the server sees it.
//!
//! Each test names the defect it shows (issue 8; issue 16 at the end);
//! `docs/SECURITY.md` lists them.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use fleetpass_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use support::*;

/// The platform admin key of these servers.
const PLATFORM_KEY: &str = "security-test-platform-key";

/// A raw HTTP answer.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
    text: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn replayed(&self) -> bool {
        self.header("idempotent-replayed") == Some("true")
    }

    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

/// Decodes a chunked body.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        rest = &rest[end + 2..];
        if size == 0 || rest.len() < size {
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[(size + 2).min(rest.len())..];
    }
}

/// Sends `method target` with `headers` and `body` exactly as written, on a fresh
/// connection, and reads the whole answer.
fn raw(base: &str, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Raw {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).expect("writes");
    stream.write_all(body.as_bytes()).expect("writes");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("reads");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let bytes = &answer[split + 4..];
    let bytes = if chunked {
        dechunk(bytes)
    } else {
        bytes.to_vec()
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Raw {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// A request with a bearer token (and an `Idempotency-Key` when `key` is set).
fn call(
    base: &str,
    method: &str,
    target: &str,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> Raw {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(key) = key {
        headers.push(("Idempotency-Key", key));
    }
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    raw(base, method, target, &headers, &body)
}

/// A memory-mode server with the platform key and `envs`, and its demo admin token.
fn server(envs: &[(&str, &str)]) -> (Server, String) {
    let mut all = vec![("FLEETPASS_ADMIN_KEY", PLATFORM_KEY)];
    all.extend_from_slice(envs);
    let mut server = start(&all);
    let admin = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    (server, admin)
}

/// Creates an API token with `body` and returns `(id, secret)`.
fn token(base: &str, admin: &str, body: Value) -> (String, String) {
    let mut full =
        json!({"name": "t", "role": "viewer", "allEnvironments": true, "expiresInDays": 1});
    for (k, v) in body.as_object().expect("object") {
        full[k] = v.clone();
    }
    let res = call(base, "POST", "/api/admin/tokens", admin, None, &full);
    assert_eq!(res.status, 201, "{}", res.text);
    (
        res.body["id"].as_str().expect("id").to_owned(),
        res.body["token"].as_str().expect("token").to_owned(),
    )
}

/// Creates an environment and returns its id.
fn environment(base: &str, admin: &str, name: &str) -> String {
    let res = call(
        base,
        "POST",
        "/api/admin/environments",
        admin,
        None,
        &json!({"name": name}),
    );
    assert_eq!(res.status, 201, "{}", res.text);
    res.body["id"].as_str().expect("id").to_owned()
}

/// Creates a fleet (in `environment` when given) and returns `(fleetId, enrollmentToken)`.
fn fleet(base: &str, token: &str, environment: Option<&str>) -> (String, String) {
    let body = match environment {
        Some(env) => json!({"name": "f", "environmentId": env}),
        None => json!({"name": "f"}),
    };
    let res = call(base, "POST", "/tenant/discovery/fleets", token, None, &body);
    assert_eq!(res.status, 201, "{}", res.text);
    (
        res.body["fleetId"].as_str().expect("fleetId").to_owned(),
        res.body["enrollmentToken"]
            .as_str()
            .expect("token")
            .to_owned(),
    )
}

/// Enrolls an agent with `enrollment` and returns its access token.
fn enroll(base: &str, enrollment: &str, hostname: &str) -> Raw {
    let body = json!({"enrollmentToken": enrollment, "hostname": hostname, "platform": "linux"});
    raw(base, "POST", "/agent/enroll", &[], &body.to_string())
}

fn access_token(res: &Raw) -> String {
    assert_eq!(res.status, 201, "{}", res.text);
    res.body["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_owned()
}

/// Defect 1: the guard judged the raw path, the router a percent-decoded one.
#[test]
fn a_percent_encoded_path_gets_the_guard_of_the_route_it_reaches() {
    let (s, admin) = server(&[("FLEETPASS_AUTH_FAILURE_LIMIT", "3")]);
    let b = &s.base;
    // The per-token limit.
    let (_, limited) = token(b, &admin, json!({"rateLimitPerMinute": 2}));
    for _ in 0..2 {
        let ok = call(b, "GET", "/%61pi/me", &limited, None, &Value::Null);
        assert_eq!(ok.status, 200, "{}", ok.text);
        assert_eq!(ok.header("ratelimit-limit"), Some("2"));
    }
    let over = call(b, "GET", "/%61pi/m%65", &limited, None, &Value::Null);
    assert_eq!(
        (over.status, over.code()),
        (429, "RATE_LIMITED"),
        "{}",
        over.text
    );
    // Idempotency: two spellings of one route are one request.
    let body = json!({"name": "once"});
    let first = call(
        b,
        "POST",
        "/%74enant/discovery/fleets",
        &admin,
        Some("enc-1"),
        &body,
    );
    assert_eq!(first.status, 201, "{}", first.text);
    for target in ["/%74enant/discovery/fleets", "/tenant/discovery/fleets"] {
        let again = call(b, "POST", target, &admin, Some("enc-1"), &body);
        assert!(again.replayed(), "{target}: {}", again.text);
        assert_eq!(again.body["fleetId"], first.body["fleetId"]);
    }
    let fleets = call(
        b,
        "GET",
        "/tenant/discovery/fleets",
        &admin,
        None,
        &Value::Null,
    );
    let named_once = fleets.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|f| f["name"] == "once")
        .count();
    assert_eq!(named_once, 1, "one fleet, however the path was spelled");
    // Failed-authentication throttling of the platform key.
    for _ in 0..3 {
        let wrong = call(
            b,
            "GET",
            "/%70latform/tenants",
            "not-the-platform-key",
            None,
            &Value::Null,
        );
        assert_eq!(
            (wrong.status, wrong.code()),
            (403, "FORBIDDEN_ROLE"),
            "{}",
            wrong.text
        );
    }
    let guessing = call(
        b,
        "GET",
        "/%70latform/tenants",
        "still-not-the-key",
        None,
        &Value::Null,
    );
    assert_eq!(
        (guessing.status, guessing.code()),
        (429, "RATE_LIMITED"),
        "{}",
        guessing.text
    );
    // No answer that tells a right guess from a wrong one while blocked.
    let right = call(
        b,
        "GET",
        "/platform/tenants",
        PLATFORM_KEY,
        None,
        &Value::Null,
    );
    assert_eq!(right.status, 429, "{}", right.text);
}

/// Defect 2: replays were keyed by tenant and happened before authorization, and
/// refusals were stored and replayed to the caller who later had the right.
#[test]
fn a_stored_response_is_replayed_only_to_the_credential_that_made_it() {
    let (s, admin) = server(&[]);
    let b = &s.base;
    let staging = environment(b, &admin, "staging");
    let (_, viewer) = token(
        b,
        &admin,
        json!({"allEnvironments": false, "environmentIds": [staging]}),
    );
    let (_, operator) = token(b, &admin, json!({"role": "operator"}));
    // A viewer sending an admin's key and body gets its own refusal, not the admin token.
    let mint =
        json!({"name": "minted", "role": "admin", "allEnvironments": true, "expiresInDays": 1});
    let minted = call(b, "POST", "/api/admin/tokens", &admin, Some("k-1"), &mint);
    assert_eq!(minted.status, 201, "{}", minted.text);
    let secret = minted.body["token"].as_str().expect("token");
    let stolen = call(b, "POST", "/api/admin/tokens", &viewer, Some("k-1"), &mint);
    assert_eq!(
        (stolen.status, stolen.code()),
        (403, "FORBIDDEN_ROLE"),
        "{}",
        stolen.text
    );
    assert!(!stolen.replayed());
    assert!(
        !stolen.text.contains(secret),
        "the admin token leaked to a viewer"
    );
    // The same for an operator's enrollment secret.
    let body = json!({"name": "enrolling", "environmentId": staging});
    let created = call(
        b,
        "POST",
        "/tenant/discovery/fleets",
        &operator,
        Some("k-2"),
        &body,
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let enrollment = created.body["enrollmentToken"].as_str().expect("token");
    let stolen = call(
        b,
        "POST",
        "/tenant/discovery/fleets",
        &viewer,
        Some("k-2"),
        &body,
    );
    assert_eq!(stolen.status, 403, "{}", stolen.text);
    assert!(
        !stolen.text.contains(enrollment),
        "the enrollment secret leaked"
    );
    // Poisoning: a refusal under a key is not replayed to the admin who uses it next.
    let other =
        json!({"name": "later", "role": "viewer", "allEnvironments": true, "expiresInDays": 1});
    let refused = call(b, "POST", "/api/admin/tokens", &viewer, Some("k-3"), &other);
    assert_eq!(refused.status, 403);
    let later = call(b, "POST", "/api/admin/tokens", &admin, Some("k-3"), &other);
    assert_eq!(
        later.status, 201,
        "the admin got the viewer's refusal: {}",
        later.text
    );
    assert!(!later.replayed());
    // And the admin's own retry is still a replay.
    let retry = call(b, "POST", "/api/admin/tokens", &admin, Some("k-3"), &other);
    assert!(retry.replayed());
    assert_eq!(retry.body["token"], later.body["token"]);
}

/// Defect 3: agent routes scoped keys by address and replayed before authenticating.
#[test]
fn agent_routes_replay_only_to_the_agent_that_made_the_request() {
    let (s, admin) = server(&[]);
    let b = &s.base;
    let (fleet_id, enrollment) = fleet(b, &admin, None);
    let a = access_token(&enroll(b, &enrollment, "agent-a"));
    let issued = call(
        b,
        "POST",
        &format!("/tenant/discovery/fleets/{fleet_id}/enrollment-tokens"),
        &admin,
        None,
        &json!({}),
    );
    assert_eq!(issued.status, 201, "{}", issued.text);
    let second = issued.body["enrollmentToken"].as_str().expect("token");
    let b_token = access_token(&enroll(b, second, "agent-b"));
    let scan = call(
        b,
        "POST",
        "/tenant/scans",
        &admin,
        None,
        &json!({"fleetId": fleet_id, "scenario": "inventory"}),
    );
    assert_eq!(scan.status, 202, "{}", scan.text);
    let scan_id = scan.body["scanId"].as_str().expect("scanId");
    let claimed = call(
        b,
        "POST",
        "/agent/jobs/claim",
        &a,
        Some("claim-1"),
        &Value::Null,
    );
    assert_eq!(claimed.status, 200, "{}", claimed.text);
    assert_eq!(claimed.body["scanId"], scan_id);
    // Nobody: no replay, a 401.
    let anonymous = raw(
        b,
        "POST",
        "/agent/jobs/claim",
        &[("Idempotency-Key", "claim-1")],
        "",
    );
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (401, "UNAUTHORIZED"),
        "{}",
        anonymous.text
    );
    assert!(
        !anonymous.text.contains(scan_id),
        "another agent's scan leaked"
    );
    // Another agent (same address): its own answer, not agent A's scan.
    let other = call(
        b,
        "POST",
        "/agent/jobs/claim",
        &b_token,
        Some("claim-1"),
        &Value::Null,
    );
    assert_eq!(other.status, 204, "{}", other.text);
    assert!(!other.replayed());
    // Agent A's retry is its replay.
    let retry = call(
        b,
        "POST",
        "/agent/jobs/claim",
        &a,
        Some("claim-1"),
        &Value::Null,
    );
    assert!(retry.replayed());
    assert_eq!(retry.body["scanId"], scan_id);
}

/// Defect 5: an environment-scoped admin revoked wider tokens through their owner.
#[test]
fn a_scoped_admin_cannot_revoke_wider_tokens_through_their_owner() {
    let (s, admin) = server(&[]);
    let b = &s.base;
    let staging = environment(b, &admin, "staging");
    let (_, scoped) = token(
        b,
        &admin,
        json!({"role": "admin", "allEnvironments": false, "environmentIds": [staging]}),
    );
    let user = call(
        b,
        "POST",
        "/api/admin/users",
        &admin,
        None,
        &json!({"email": "ops@example.com", "role": "admin"}),
    );
    assert_eq!(user.status, 201, "{}", user.text);
    let user_id = user.body["id"].as_str().expect("id");
    let (_, wide) = token(b, &admin, json!({"role": "admin", "ownerUserId": user_id}));
    let path = format!("/api/admin/users/{user_id}");
    for change in [json!({"disabled": true}), json!({"role": "viewer"})] {
        let res = call(b, "PATCH", &path, &scoped, None, &change);
        assert_eq!(
            (res.status, res.code()),
            (403, "FORBIDDEN_SCOPE"),
            "{change}: {}",
            res.text
        );
    }
    let deleted = call(b, "DELETE", &path, &scoped, None, &Value::Null);
    assert_eq!(
        (deleted.status, deleted.code()),
        (403, "FORBIDDEN_SCOPE"),
        "{}",
        deleted.text
    );
    let renamed = call(b, "PATCH", &path, &scoped, None, &json!({"name": "Ops"}));
    assert_eq!(
        renamed.status, 200,
        "a change that revokes nothing is allowed: {}",
        renamed.text
    );
    let me = call(b, "GET", "/api/me", &wide, None, &Value::Null);
    assert_eq!(me.status, 200, "the wider token still works: {}", me.text);
    // An all-environments admin may.
    let disabled = call(b, "PATCH", &path, &admin, None, &json!({"disabled": true}));
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(
        call(b, "GET", "/api/me", &wide, None, &Value::Null).status,
        401
    );
}

/// Every item of every page of `path` (pages of 2), checking every page but the last
/// is full.
fn walk(base: &str, token: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let target = match &cursor {
            Some(c) => format!("{path}{sep}limit=2&cursor={c}"),
            None => format!("{path}{sep}limit=2"),
        };
        let page = call(base, "GET", &target, token, None, &Value::Null);
        assert_eq!(page.status, 200, "{}", page.text);
        let got = page.body["items"].as_array().expect("items").clone();
        cursor = page.body["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_some() {
            assert_eq!(
                got.len(),
                2,
                "a page before the last is full: {}",
                page.text
            );
        }
        items.extend(got);
        if cursor.is_none() {
            return items;
        }
    }
}

/// Defect 6: lists showed a scoped admin what single reads refused.
#[test]
fn lists_show_a_scoped_admin_only_what_its_scope_covers() {
    let (s, admin) = server(&[]);
    let b = &s.base;
    let staging = environment(b, &admin, "staging");
    let (scoped_id, scoped) = token(
        b,
        &admin,
        json!({"role": "admin", "allEnvironments": false, "environmentIds": [staging]}),
    );
    let mut visible = vec![scoped_id];
    let mut hidden = Vec::new();
    for i in 0..3 {
        visible.push(token(b, &admin, json!({"name": format!("s{i}"), "allEnvironments": false, "environmentIds": [staging]})).0);
        hidden.push(token(b, &admin, json!({"name": format!("w{i}")})).0);
    }
    let listed: Vec<String> = walk(b, &scoped, "/api/admin/tokens")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect();
    visible.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, visible, "exactly the tokens within staging");
    for id in &hidden {
        let one = call(
            b,
            "GET",
            &format!("/api/admin/tokens/{id}"),
            &scoped,
            None,
            &Value::Null,
        );
        assert_eq!(one.status, 403, "the single read agrees with the list");
    }
    // The audit log: events of staging's fleet, none of production's or tenant-wide ones.
    let (in_staging, _) = fleet(b, &admin, Some(&staging));
    let (in_production, _) = fleet(b, &admin, None);
    let events = walk(b, &scoped, "/api/admin/audit-events");
    let targets: Vec<&str> = events
        .iter()
        .filter_map(|e| e["targetId"].as_str())
        .collect();
    assert!(targets.contains(&in_staging.as_str()), "{events:?}");
    assert!(!targets.contains(&in_production.as_str()), "{events:?}");
    for id in &hidden {
        assert!(
            !targets.contains(&id.as_str()),
            "an all-environments token's event leaked"
        );
    }
    assert!(
        events
            .iter()
            .all(|e| e["action"] != "tenant.created" && e["action"] != "environment.created"),
        "tenant-wide events are for all-environments admins"
    );
    let all = walk(b, &admin, "/api/admin/audit-events");
    assert!(all.len() > events.len());
}

/// Defect 7: revoking a dead, rotated-out secret revoked its live replacement.
#[test]
fn revoking_a_rotated_out_secret_leaves_its_replacement_working() {
    let (s, admin) = server(&[]);
    let b = &s.base;
    let (id, first) = token(b, &admin, json!({}));
    let rotate = |grace: u32| {
        let res = call(
            b,
            "POST",
            &format!("/api/admin/tokens/{id}/rotate"),
            &admin,
            None,
            &json!({"graceHours": grace}),
        );
        assert_eq!(res.status, 201, "{}", res.text);
        res.body["token"].as_str().expect("token").to_owned()
    };
    let revoke = |secret: &str| {
        let res = raw(
            b,
            "POST",
            "/api/public/revocations",
            &[],
            &json!({"token": secret}).to_string(),
        );
        assert_eq!(res.status, 202, "{}", res.text);
    };
    let me = |secret: &str| call(b, "GET", "/api/me", secret, None, &Value::Null).status;
    let second = rotate(0);
    assert_eq!(me(&first), 401);
    revoke(&first);
    assert_eq!(
        me(&second),
        200,
        "the dead secret's report revoked its replacement"
    );
    // A rotated-out secret still in its grace stops at once; its replacement goes on.
    let third = rotate(24);
    assert_eq!(me(&second), 200, "in its grace");
    revoke(&second);
    assert_eq!(me(&second), 401);
    assert_eq!(me(&third), 200);
    // The current secret revokes the token.
    revoke(&third);
    assert_eq!(me(&third), 401);
}

/// Defect 8: once an address used up its failures, valid credentials from it were
/// refused too.
#[test]
fn failed_authentication_throttles_failing_attempts_not_valid_credentials() {
    let (s, admin) = server(&[("FLEETPASS_AUTH_FAILURE_LIMIT", "3")]);
    let b = &s.base;
    let (_, enrollment) = fleet(b, &admin, None);
    let agent = access_token(&enroll(b, &enrollment, "first"));
    // A fleet of agents retrying a used-up enrollment token.
    for _ in 0..3 {
        let used = enroll(b, &enrollment, "retry");
        assert_eq!(
            (used.status, used.code()),
            (401, "UNAUTHORIZED"),
            "{}",
            used.text
        );
    }
    let blocked = enroll(b, &enrollment, "retry");
    assert_eq!(
        (blocked.status, blocked.code()),
        (429, "RATE_LIMITED"),
        "{}",
        blocked.text
    );
    assert!(blocked.header("retry-after").is_some());
    let wrong = call(b, "GET", "/api/me", "fpk_not-a-token", None, &Value::Null);
    assert_eq!(wrong.status, 429, "{}", wrong.text);
    // An operator and an agent behind the same address.
    let (_, operator) = token(b, &admin, json!({"role": "operator"}));
    assert_eq!(
        call(b, "GET", "/api/me", &operator, None, &Value::Null).status,
        200
    );
    let beat = call(b, "POST", "/agent/heartbeat", &agent, None, &json!({}));
    assert_eq!(beat.status, 200, "{}", beat.text);
}

/// Defect 9: the owner's role was checked outside the transaction that stores the
/// token, so a concurrent demotion could leave an admin token owned by a viewer. Two
/// replicas on one PostgreSQL database race the two, many times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demotion_racing_token_creation_never_leaves_a_token_above_its_owner() {
    let db = TestDatabase::fresh().await;
    let admin = cli_tenant(db.url(), "acme");
    let env = [("DATABASE_URL", db.url())];
    let (one, two) = (start(&env), start(&env));
    let client = reqwest::Client::new();
    let send = |base: &str, method: reqwest::Method, path: &str, body: Value| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let mut created = 0;
    for i in 0..25 {
        let user = send(
            &one.base,
            reqwest::Method::POST,
            "/api/admin/users",
            json!({"email": format!("u{i}@example.com"), "role": "admin"}),
        )
        .await
        .expect("answers");
        let user: Value = user.json().await.expect("json");
        let user_id = user["id"].as_str().expect("id").to_owned();
        let demote = send(
            &one.base,
            reqwest::Method::PATCH,
            &format!("/api/admin/users/{user_id}"),
            json!({"role": "viewer"}),
        );
        let mint = send(
            &two.base,
            reqwest::Method::POST,
            "/api/admin/tokens",
            json!({"name": "race", "role": "admin", "allEnvironments": true, "expiresInDays": 1, "ownerUserId": user_id}),
        );
        let (demoted, minted) = tokio::join!(demote, mint);
        assert_eq!(demoted.expect("answers").status().as_u16(), 200);
        let minted = minted.expect("answers");
        let status = minted.status().as_u16();
        let body: Value = minted.json().await.expect("json");
        match status {
            201 => {
                created += 1;
                let secret = body["token"].as_str().expect("token");
                let used = client
                    .get(format!("{}/api/admin/tokens", one.base))
                    .bearer_auth(secret)
                    .send()
                    .await
                    .expect("answers");
                assert_eq!(
                    used.status().as_u16(),
                    401,
                    "round {i}: an admin token of a viewer works"
                );
            }
            409 | 422 => {}
            other => panic!("round {i}: {other} {body}"),
        }
    }
    eprintln!("{created} of 25 tokens were created before their owner's demotion");
}

/// What a process wrote to stdout and stderr, read from the start so that a verbose
/// log never fills a pipe and stalls the server.
struct Captured {
    threads: Vec<std::thread::JoinHandle<String>>,
}

impl Captured {
    fn of(server: &mut Server) -> Self {
        let out = server.child.stdout.take().expect("piped stdout");
        let err = server.child.stderr.take().expect("piped stderr");
        let read = |mut pipe: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        Self {
            threads: vec![read(Box::new(out)), read(Box::new(err))],
        }
    }

    /// Everything, once the process has ended.
    fn text(self) -> String {
        self.threads
            .into_iter()
            .map(|t| t.join().expect("reader"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs a whole flow — platform, tokens, fleet, enrollment, agent token exchange, scan,
/// results, share link and its page and artifacts, revocations — and returns every
/// secret it used or was handed.
fn whole_flow(b: &str, tenant: &str) -> Vec<String> {
    let mut secrets = vec![PLATFORM_KEY.to_owned()];
    let body = json!({ "name": tenant }).to_string();
    let tenant = raw(
        b,
        "POST",
        "/platform/tenants",
        &[("Authorization", &format!("Bearer {PLATFORM_KEY}"))],
        &body,
    );
    assert_eq!(tenant.status, 201, "{}", tenant.text);
    let admin = tenant.body["adminToken"]
        .as_str()
        .expect("adminToken")
        .to_owned();
    let listed = raw(
        b,
        "GET",
        "/platform/tenants",
        &[("x-api-key", PLATFORM_KEY)],
        "",
    );
    assert_eq!(listed.status, 200);
    secrets.push(admin.clone());
    // Tokens: made, rotated, used by each of the three ways, revoked.
    let (id, operator) = token(b, &admin, json!({"role": "operator"}));
    let rotated = call(
        b,
        "POST",
        &format!("/api/admin/tokens/{id}/rotate"),
        &admin,
        Some("rotate-1"),
        &json!({"graceHours": 1}),
    );
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let current = rotated.body["token"].as_str().expect("token").to_owned();
    assert_eq!(
        raw(b, "GET", &format!("/api/me?api_key={current}"), &[], "").status,
        200
    );
    assert_eq!(
        raw(b, "GET", "/api/me", &[("x-api-key", &current)], "").status,
        200
    );
    secrets.extend([operator.clone(), current.clone()]);
    // A fleet, an agent, a scan and its results.
    let (fleet_id, enrollment) = fleet(b, &current, None);
    let enrolled = enroll(b, &enrollment, "logged-host");
    let access = access_token(&enrolled);
    let agent_id = enrolled.body["agentId"]
        .as_str()
        .expect("agentId")
        .to_owned();
    let agent_secret = enrolled.body["agentSecret"]
        .as_str()
        .expect("agentSecret")
        .to_owned();
    let exchanged = raw(
        b,
        "POST",
        "/agent/token",
        &[],
        &json!({"agentId": agent_id, "agentSecret": agent_secret}).to_string(),
    );
    assert_eq!(exchanged.status, 200, "{}", exchanged.text);
    let fresh = exchanged.body["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_owned();
    secrets.extend([
        enrollment.clone(),
        agent_secret.clone(),
        access.clone(),
        fresh.clone(),
    ]);
    let scan = call(
        b,
        "POST",
        "/tenant/scans",
        &current,
        None,
        &json!({"fleetId": fleet_id, "scenario": "inventory"}),
    );
    let scan_id = scan.body["scanId"].as_str().expect("scanId").to_owned();
    assert_eq!(
        call(b, "POST", "/agent/heartbeat", &fresh, None, &json!({})).status,
        200
    );
    assert_eq!(
        call(
            b,
            "POST",
            "/agent/jobs/claim",
            &fresh,
            Some("claim"),
            &Value::Null
        )
        .status,
        200
    );
    let results = json!({"assets": [{"hostname": "db-1", "ip": "10.0.0.5", "os": "Debian 12", "openPorts": [22], "software": [{"name": "openssl", "version": "3.0"}]}], "findings": []});
    let done = call(
        b,
        "POST",
        &format!("/agent/scans/{scan_id}/results"),
        &fresh,
        None,
        &results,
    );
    assert!(done.status < 300, "{}", done.text);
    // A share link, its page, its artifacts, a wrong artifact, a mangled path.
    let shared = call(
        b,
        "POST",
        &format!("/tenant/scans/{scan_id}/share-links"),
        &current,
        None,
        &json!({"label": "audit"}),
    );
    assert_eq!(shared.status, 201, "{}", shared.text);
    let share = shared.body["token"].as_str().expect("token").to_owned();
    secrets.push(share.clone());
    for path in [
        format!("/share/{share}"),
        format!("/share/{share}/report"),
        format!("/share/{share}/bundle"),
        format!("/share/{share}/passport"),
        format!("/share/{share}/nope"),
        format!("/%73hare/{share}"),
        format!("/nowhere/{share}"),
    ] {
        raw(b, "GET", &path, &[], "");
    }
    let page = raw(
        b,
        "GET",
        &format!("/share/{share}"),
        &[("Accept", "text/html")],
        "",
    );
    assert_eq!(page.status, 200);
    // Revocations of every kind, then the dead secrets tried again.
    for secret in [&share, &enrollment, &agent_secret, &operator, &current] {
        let res = raw(
            b,
            "POST",
            "/api/public/revocations",
            &[],
            &json!({"token": secret}).to_string(),
        );
        assert_eq!(res.status, 202, "{}", res.text);
    }
    assert_eq!(
        call(b, "GET", "/api/me", &current, None, &Value::Null).status,
        401
    );
    assert_eq!(
        raw(b, "GET", &format!("/share/{share}"), &[], "").status,
        404
    );
    assert_eq!(enroll(b, &enrollment, "again").status, 401);
    secrets
}

/// Defect 4 and the whole-flow check: at trace level, in both formats and on
/// both stores, no secret the flow used appears in anything the process wrote.
#[tokio::test]
async fn no_secret_of_a_whole_flow_reaches_the_log() {
    let db = TestDatabase::fresh().await;
    for (store, format) in [
        ("memory", "pretty"),
        ("memory", "json"),
        ("postgres", "json"),
        ("postgres", "pretty"),
    ] {
        let mut envs = vec![
            ("FLEETPASS_ADMIN_KEY", PLATFORM_KEY),
            ("FLEETPASS_LOG", "trace"),
            ("FLEETPASS_LOG_FORMAT", format),
        ];
        if store == "postgres" {
            envs.push(("DATABASE_URL", db.url()));
        }
        let mut server = spawn(&envs);
        let captured = Captured::of(&mut server);
        wait_listening(&mut server);
        let base = server.base.clone();
        let tenant = format!("logged-{store}-{format}");
        let secrets = tokio::task::spawn_blocking(move || whole_flow(&base, &tenant))
            .await
            .expect("the flow ran");
        drop(server);
        let logs = captured.text();
        assert!(
            logs.contains("request finished"),
            "{store}/{format}: the log was captured"
        );
        for secret in &secrets {
            // The part after any prefix: a secret's body is what must not leak.
            let body = secret.get(4..).unwrap_or(secret);
            assert!(
                !logs.contains(body),
                "{store}/{format}: a secret ({}…) reached the log",
                &secret[..secret.len().min(8)]
            );
        }
        // The master key of Postgres mode is a secret too.
        assert!(
            !logs.contains(MASTER_KEY),
            "{store}/{format}: the master key was logged"
        );
        assert!(
            logs.contains("/share/{token}"),
            "{store}/{format}: routes are logged by pattern"
        );
    }
}

// Issue 16: five holes of the second round of attacks.

/// A fleet with one enrolled agent and one scan it claimed: `(agent token, scan id)`.
fn claimed_scan(b: &str, admin: &str) -> (String, String) {
    let (fleet_id, enrollment) = fleet(b, admin, None);
    let agent = access_token(&enroll(b, &enrollment, "node-a"));
    let scan = call(
        b,
        "POST",
        "/tenant/scans",
        admin,
        None,
        &json!({"fleetId": fleet_id, "scenario": "inventory"}),
    );
    assert_eq!(scan.status, 202, "{}", scan.text);
    let claimed = call(b, "POST", "/agent/jobs/claim", &agent, None, &Value::Null);
    assert_eq!(claimed.status, 200, "{}", claimed.text);
    let id = claimed.body["scanId"].as_str().expect("scanId").to_owned();
    (agent, id)
}

/// Defect 16.1: a NUL in free text of scan results was a 500 on PostgreSQL (its
/// `jsonb` refuses U+0000) and stored by the memory store. Both stores now refuse it
/// the same way, a 422 naming the field, and the scan can still be completed.
#[tokio::test]
async fn a_nul_in_scan_results_is_a_422_naming_the_field_on_both_stores() {
    let db = TestDatabase::fresh().await;
    let pg_admin = cli_tenant(db.url(), "nul");
    let pg = start(&[("DATABASE_URL", db.url())]);
    let (memory, memory_admin) = server(&[]);
    for (s, admin) in [(&pg, pg_admin), (&memory, memory_admin)] {
        let b = &s.base;
        let (agent, scan) = claimed_scan(b, &admin);
        let path = format!("/agent/scans/{scan}/results");
        let finding = |extra: Value| {
            let mut f = json!({"severity": "high", "title": "t"});
            for (k, v) in extra.as_object().expect("object") {
                f[k] = v.clone();
            }
            json!({"assets": [], "findings": [f]})
        };
        let host = json!({"hostname": "a\u{0}b", "ip": "10.0.0.1", "os": "linux"});
        for (body, field) in [
            (finding(json!({"detail": "a\u{0}b"})), "findings[0].detail"),
            (
                finding(json!({"assetHostname": "a\u{0}b"})),
                "findings[0].assetHostname",
            ),
            (json!({"assets": [host]}), "assets[0].hostname"),
        ] {
            let res = call(b, "POST", &path, &agent, Some("same-key"), &body);
            assert_eq!(
                (res.status, res.code(), res.body["field"].as_str()),
                (422, "VALIDATION_ERROR", Some(field)),
                "{}",
                res.text
            );
            assert!(res.text.contains("NUL"), "{}", res.text);
        }
        // What the agent's domain makes of a NUL it read (U+FFFD) is kept.
        let res = call(
            b,
            "POST",
            &path,
            &agent,
            Some("same-key"),
            &finding(json!({"detail": "a\u{FFFD}b"})),
        );
        assert_eq!(
            (res.status, res.body["status"].as_str()),
            (200, Some("completed")),
            "{}",
            res.text
        );
    }
}

/// Defect 16.2: any client-chosen method (and path) became a permanent `/metrics`
/// label. A thousand made-up methods and paths add no series.
#[test]
fn made_up_methods_and_paths_add_no_metrics_series() {
    // Quiet: a thousand request lines would fill the unread stderr pipe and stall it.
    let (s, _) = server(&[("FLEETPASS_LOG", "warn")]);
    let b = &s.base;
    let series = || {
        raw(b, "GET", "/metrics", &[], "")
            .text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count()
    };
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut word = |len: usize| -> String {
        (0..len)
            .map(|_| char::from(b'A' + (next() % 26) as u8))
            .collect()
    };
    let mut send = |n: usize| {
        for i in 0..n {
            let method = word(4 + i % 60);
            let path = match i % 3 {
                0 => "/healthz".to_owned(),
                1 => format!("/{}", word(12).to_lowercase()),
                _ => format!("/tenant/scans/{}", word(20)),
            };
            let res = raw(b, &method, &path, &[], "");
            assert!(res.status >= 400, "{method} {path}: {}", res.status);
        }
    };
    // Every shape once, so its `other`/`unmatched` series exist; then a thousand more.
    // (`/metrics` itself is counted after it answers, so read it once first.)
    send(30);
    series();
    let before = series();
    send(1000);
    assert_eq!(series(), before, "made-up methods or paths added series");
}

/// The peak resident memory of `server`, from `/proc`.
fn peak_rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Sends a POST with `body` on its own connection, writing from another thread so a
/// server that answers (and closes) before the body is in does not fail the test.
fn post_big(base: &str, target: &str, token: &str, body: Vec<u8>) -> Raw {
    let addr = base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut writer = stream.try_clone().expect("clone");
    let writing = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
    });
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let _ = writing.join();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body_text = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    Raw {
        status,
        headers: Vec::new(),
        body: serde_json::from_str(&body_text).unwrap_or(Value::Null),
        text,
    }
}

/// `{"x":[0,0,…]}` of about `size` bytes: the 18× amplifier.
fn zeros(size: usize) -> Vec<u8> {
    let mut body = b"{\"x\":[0".to_vec();
    while body.len() + 4 < size {
        body.extend_from_slice(b",0");
    }
    body.extend_from_slice(b"]}");
    body
}

/// Defect 16.3: a 16 MiB body was parsed into a generic JSON tree (about 18× its size)
/// before the scan or its fields were checked. Now a body for a scan the agent has not
/// claimed is refused unread, and one with an unknown field is refused as it streams,
/// its cost the bytes themselves. The bounds are generous (the old peak grew by about
/// 280 MiB): they catch the tree, not the allocator.
#[test]
fn a_16_mib_results_body_costs_about_its_size_not_18_times_it() {
    let (s, admin) = server(&[]);
    let b = &s.base;
    let (agent, scan) = claimed_scan(b, &admin);
    let body = zeros(16 * 1024 * 1024 - 64);
    let start = peak_rss_kib(&s);
    let other = "0190d4a2-58a4-7000-8000-000000000000";
    let res = post_big(
        b,
        &format!("/agent/scans/{other}/results"),
        &agent,
        body.clone(),
    );
    assert_eq!(res.status, 404, "{}", &res.text[..res.text.len().min(500)]);
    let unread = peak_rss_kib(&s);
    assert!(
        unread < start + 8 * 1024,
        "a body for another scan grew the peak RSS from {start} to {unread} KiB"
    );
    let res = post_big(b, &format!("/agent/scans/{scan}/results"), &agent, body);
    assert_eq!(
        (res.status, res.body["field"].as_str()),
        (422, Some("x")),
        "{}",
        &res.text[..res.text.len().min(500)]
    );
    let read = peak_rss_kib(&s);
    assert!(
        read < start + 64 * 1024,
        "a 16 MiB body grew the peak RSS from {start} to {read} KiB"
    );
}

/// Defect 16.3, the bound: only `LARGE_UPLOADS` (4) bodies above 1 MiB are taken at
/// once; the next hears 503 with `Retry-After`, and ordinary bodies never wait.
#[test]
fn large_uploads_beyond_the_bound_hear_503_and_small_ones_go_on() {
    let (s, admin) = server(&[]);
    let b = &s.base;
    let addr = b.trim_start_matches("http://");
    let (agent, scan) = claimed_scan(b, &admin);
    let target = format!("/agent/scans/{scan}/results");
    // Four uploads that declare 16 MiB and send 1 KiB, holding their turns.
    let holders: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).expect("connects");
            let head = format!(
                "POST {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {agent}\r\nContent-Type: application/json\r\nContent-Length: 16000000\r\n\r\n{{\"assets\":[\"{}",
                "a".repeat(1024)
            );
            stream.write_all(head.as_bytes()).expect("writes");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let fifth = post_big(b, &target, &agent, zeros(2 * 1024 * 1024));
    assert_eq!(
        fifth.status,
        503,
        "{}",
        &fifth.text[..fifth.text.len().min(500)]
    );
    assert_eq!(fifth.body["code"], "SERVICE_UNAVAILABLE", "{}", fifth.text);
    assert!(
        fifth.text.to_ascii_lowercase().contains("retry-after: 1"),
        "{}",
        fifth.text
    );
    let small = call(b, "POST", &target, &agent, None, &json!({"assets": []}));
    assert_eq!(small.status, 200, "{}", small.text);
    drop(holders);
}

/// Sends `bytes` as they are on a fresh connection and returns the whole answer.
fn raw_bytes(base: &str, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Defect 16.5, pinned: the answers actix-http's connection layer gives before a request
/// exists — 431 for a head over its buffer, 400 for a request it cannot parse — reach no
/// middleware, so they carry neither `X-Request-Id` nor the error body. actix-web has no
/// hook for them (docs/SECURITY.md, "Answers outside the error contract"). This test
/// fails when that changes, so the docs can follow; every answer to a parsed request
/// keeps the contract (the 405 and 404 below).
#[test]
fn answers_before_a_request_exists_are_the_only_ones_outside_the_error_contract() {
    let (s, _) = server(&[]);
    let b = &s.base;
    let host = b.trim_start_matches("http://");
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    for (what, bytes, status) in [
        ("a 200 KB header", huge.into_bytes(), "431"),
        (
            "a broken request line",
            b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "a header without a colon",
            format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nno colon here\r\n\r\n").into_bytes(),
            "400",
        ),
    ] {
        let answer = raw_bytes(b, &bytes);
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert_eq!(
            head.split_whitespace().nth(1),
            Some(status),
            "{what}: {answer}"
        );
        assert!(
            !head.to_ascii_lowercase().contains("x-request-id") && body.is_empty(),
            "{what} now follows the error contract: update docs/SECURITY.md and this test: {answer}"
        );
    }
    for (method, path, status) in [("DELETE", "/healthz", 405), ("GET", "/nowhere", 404)] {
        let res = raw(b, method, path, &[], "");
        assert_eq!(res.status, status, "{}", res.text);
        assert!(res.header("x-request-id").is_some() && res.body["code"].is_string());
    }
}

/// Issue 17, item 5: what an operator expects of the logs and `/metrics`. JSON lines
/// name the tenant, the actor (a token or agent id) and the client address once (no
/// `spans` list), with a short `latency_ms`; an agent's routine check-in is not an
/// INFO line; `/metrics` has the service's families and, with
/// `FLEETPASS_METRICS_TOKEN`, answers only the bearer of that token.
#[tokio::test]
async fn logs_and_metrics_tell_an_operator_who_what_and_how_much() {
    let db = TestDatabase::fresh().await;
    let admin = cli_tenant(db.url(), "observed");
    let mut s = spawn(&[
        ("DATABASE_URL", db.url()),
        ("FLEETPASS_LOG_FORMAT", "json"),
        ("FLEETPASS_LOG", "info"),
        ("FLEETPASS_METRICS_TOKEN", "metrics-scrape-token-0123"),
    ]);
    let captured = Captured::of(&mut s);
    wait_listening(&mut s);
    let b = s.base.clone();
    let me = call(&b, "GET", "/api/me", &admin, None, &Value::Null);
    assert_eq!(me.status, 200, "{}", me.text);
    let token_id = me.body["token"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_agent, _scan) = claimed_scan(&b, &admin);
    let wrong = call(&b, "GET", "/api/me", "fp_live_wrong", None, &Value::Null);
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    let (_, slow) = token(&b, &admin, json!({"rateLimitPerMinute": 1}));
    for _ in 0..2 {
        call(&b, "GET", "/api/me", &slow, None, &Value::Null);
    }

    let open = raw(&b, "GET", "/metrics", &[], "");
    assert_eq!(
        (open.status, open.code()),
        (401, "UNAUTHORIZED"),
        "{}",
        open.text
    );
    let scraped = raw(
        &b,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer metrics-scrape-token-0123")],
        "",
    );
    assert_eq!(scraped.status, 200, "{}", scraped.text);
    for family in [
        "fleetpass_scans{status=\"running\"} 1",
        "fleetpass_scans{status=\"queued\"} 0",
        "fleetpass_scan_queue_age_seconds 0",
        "fleetpass_agents{last_seen=\"never\"}",
        "fleetpass_auth_failures_total{kind=\"api_token\"} 1",
        "fleetpass_rate_limited_total{kind=\"token\"} 1",
        "fleetpass_db_pool_connections{state=\"max\"}",
        "fleetpass_db_pool_connections{state=\"in_use\"}",
        "fleetpass_db_pool_waiting 0",
        "fleetpass_build_info{version=",
        "fleetpass_process_resident_memory_bytes",
        "fleetpass_http_requests_total{method=\"GET\",route=\"/api/me\",status=\"200\"}",
    ] {
        assert!(
            scraped.text.contains(family),
            "/metrics lacks {family}:\n{}",
            scraped.text
        );
    }

    drop(s);
    let lines: Vec<Value> = captured
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let finished: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request finished")
        .collect();
    let me_line = finished
        .iter()
        .find(|l| l["span"]["route"] == "/api/me" && l["status"] == 200)
        .expect("a line for GET /api/me");
    assert_eq!(
        me_line["span"]["actor"],
        format!("token:{token_id}"),
        "{me_line}"
    );
    assert!(me_line["span"]["tenant"].is_string(), "{me_line}");
    assert_eq!(me_line["span"]["client"], "127.0.0.1", "{me_line}");
    for line in &finished {
        assert!(line.get("spans").is_none(), "fields twice: {line}");
        let latency = line["latency_ms"].to_string();
        assert!(
            latency.split('.').nth(1).is_none_or(|d| d.len() <= 3),
            "latency_ms {latency}"
        );
        assert!(
            !(line["span"]["route"] == "/agent/jobs/claim" && line["status"] == 200),
            "an agent's check-in is an INFO line: {line}"
        );
    }
}

/// Issue 21: the server's keys sign two kinds of JWT, and each validator takes only its
/// own. A real passport presented as an agent's access token is refused, and a real
/// access token handed to `fleetpass passport verify` with the server's JWKS is
/// refused by its type, though both signatures are the server's.
#[test]
fn a_passport_is_no_access_token_and_an_access_token_no_passport() {
    let (server, admin) = server(&[]);
    let b = &server.base;
    let (agent, scan_id) = claimed_scan(b, &admin);
    let results = json!({"assets": [{"hostname": "db-1", "ip": "10.0.0.5", "os": "Debian 12",
        "openPorts": [22], "software": []}], "findings": []});
    let done = call(
        b,
        "POST",
        &format!("/agent/scans/{scan_id}/results"),
        &agent,
        None,
        &results,
    );
    assert!(done.status < 300, "{}", done.text);
    let passport = call(
        b,
        "GET",
        &format!("/tenant/scans/{scan_id}/passport"),
        &admin,
        None,
        &Value::Null,
    );
    assert_eq!(passport.status, 200, "{}", passport.text);
    let jws = passport.body["passport"]
        .as_str()
        .expect("passport")
        .to_owned();
    let beat = |token: &str| call(b, "POST", "/agent/heartbeat", token, None, &json!({})).status;
    assert_eq!(beat(&agent), 200, "the genuine access token works");
    assert_eq!(beat(&jws), 401, "a passport is no access token");

    let dir = std::env::temp_dir().join(format!("fleetpass-typed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let jwks = raw(b, "GET", "/.well-known/jwks.json", &[], "");
    std::fs::write(dir.join("jwks.json"), &jwks.text).expect("written");
    let verify = |token: &str| {
        std::fs::write(dir.join("token"), token).expect("written");
        let out = std::process::Command::new(binary())
            .args(["passport", "verify", "--passport"])
            .arg(dir.join("token"))
            .arg("--jwks")
            .arg(dir.join("jwks.json"))
            .output()
            .expect("fleetpass runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(verify(&jws).0, Some(0), "the passport verifies");
    let (code, stderr) = verify(&agent);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("wrong type") && stderr.contains("at+jwt"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 21: a token's `allowedCidrs` judge the client address the guard uses for
/// everything else — the socket peer, or what a trusted proxy says. An untrusted peer
/// that writes an allowed address into `X-Forwarded-For` changes nothing.
#[test]
fn allowed_cidrs_judge_the_real_client_address_not_a_forged_header() {
    for (trusted, forwarded, status) in [
        (None, "10.1.1.1", 403),
        (Some("127.0.0.1"), "10.1.1.1", 200),
        (Some("127.0.0.1"), "203.0.113.9", 403),
    ] {
        let envs: Vec<(&str, &str)> = trusted
            .map(|t| ("FLEETPASS_TRUSTED_PROXIES", t))
            .into_iter()
            .collect();
        let (server, admin) = server(&envs);
        let b = &server.base;
        let (_, office) = token(b, &admin, json!({"allowedCidrs": ["10.0.0.0/8"]}));
        let me = raw(
            b,
            "GET",
            "/api/me",
            &[
                ("Authorization", &format!("Bearer {office}")),
                ("X-Forwarded-For", forwarded),
            ],
            "",
        );
        assert_eq!(
            me.status, status,
            "trusted {trusted:?}, forwarded {forwarded}: {}",
            me.text
        );
        if status == 403 {
            assert_eq!(me.body["code"], "FORBIDDEN_SCOPE");
        }
    }
}

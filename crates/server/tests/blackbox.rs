//! Black-box tests of the `fleetpass` binary over real sockets: the README's first
//! command, the seed 002 request, configuration errors, logs that never carry a query
//! token, graceful shutdown, and several processes sharing one PostgreSQL database.

mod support;

use std::io::Read as _;
use std::process::Command;
use std::time::{Duration, Instant};

use fleetpass_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn memory_mode_prints_a_demo_token_that_answers_the_seed_request() {
    let mut server = start(&[]);
    let token = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    assert!(token.starts_with("fpk_"), "{token}");
    // Seed 002's request. Its example fills every optional field with placeholder
    // strings ("example"), which name no real owner or environment; a client sends the
    // fields it means, as here.
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{}/api/admin/tokens", server.base),
        &token,
        Some(json!({"name": "example", "role": "admin", "allEnvironments": true, "expiresInDays": 1})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let minted = body["token"].as_str().expect("the full token, once");
    assert!(minted.starts_with("fpk_"));
    let (status, me) = call(
        reqwest::Method::GET,
        &format!("{}/api/me", server.base),
        minted,
        None,
    )
    .await;
    assert_eq!(
        (status, me["token"]["name"].as_str()),
        (200, Some("example"))
    );
    // The literal placeholder body is refused with every problem named, never a 500.
    let (status, err) = call(
        reqwest::Method::POST,
        &format!("{}/api/admin/tokens", server.base),
        &token,
        Some(json!({ "name": "example", "ownerUserId": "example", "ownerServiceAccountId": "example",
                     "role": "admin", "allEnvironments": true, "environmentIds": ["example"], "expiresInDays": 1 })),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (422, Some("VALIDATION_ERROR")),
        "{err}"
    );
    assert!(
        err["details"].as_array().is_some_and(|d| d.len() >= 2),
        "{err}"
    );
}

#[test]
fn invalid_configuration_is_one_line_naming_the_variable_and_exit_2() {
    for (var, value) in [
        ("FLEETPASS_BIND", "nowhere"),
        ("FLEETPASS_LOG_FORMAT", "xml"),
        ("FLEETPASS_NOPE", "1"),
        ("FLEETPASS_MASTER_KEY", "short"),
    ] {
        let out = command(&[(var, value)])
            .arg("serve")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
    }
}

#[tokio::test]
async fn a_query_string_token_never_reaches_the_log() {
    let mut server = start(&[("FLEETPASS_LOG", "trace"), ("FLEETPASS_LOG_FORMAT", "json")]);
    let token = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    let url = format!("{}/api/me?api_key={token}", server.base);
    let res = reqwest::get(&url).await.expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    let bad = reqwest::get(format!("{}/nope?api_key={token}", server.base))
        .await
        .expect("answers");
    assert_eq!(bad.status().as_u16(), 404);
    let _ = server.child.kill();
    let mut logs = String::new();
    server
        .child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut logs)
        .expect("readable");
    assert!(
        logs.contains("request finished"),
        "the access log was captured: {logs}"
    );
    // The secret part of the token (after the prefix) must appear nowhere.
    assert!(
        !logs.contains(&token[4..]),
        "a query token leaked into the log"
    );
    assert!(
        logs.contains("\"request_id\":\"req_"),
        "log lines carry the request id"
    );
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let mut server = start(&[]);
    let pid = server.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(35);
    loop {
        if let Some(exit) = server.child.try_wait().expect("waitable") {
            assert!(exit.success(), "exited with {exit}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 35 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn replicas_on_one_database_behave_as_one_service() {
    let db = TestDatabase::unmigrated().await;
    let url = db.url().to_owned();
    // Two replicas start at once on an empty database: migrations must not race.
    let a = start(&[
        ("DATABASE_URL", &url),
        ("FLEETPASS_PUBLIC_URL", SERVICE_URL),
    ]);
    let b = start(&[
        ("DATABASE_URL", &url),
        ("FLEETPASS_PUBLIC_URL", SERVICE_URL),
    ]);
    for s in [&a, &b] {
        let ready: Value = reqwest::get(format!("{}/readyz", s.base))
            .await
            .expect("answers")
            .json()
            .await
            .expect("json");
        assert_eq!(ready["persistence"], "postgres");
    }
    // An operator creates a tenant from the command line, straight in the store.
    let out = command(&[("DATABASE_URL", &url)])
        .args(["tenant", "create", "--name", "acme"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let admin = stdout
        .split("(shown once): ")
        .nth(1)
        .expect("token line")
        .trim()
        .to_owned();
    // A token minted on one replica works on the other…
    let (status, created) = call(
        reqwest::Method::POST,
        &format!("{}/api/admin/tokens", a.base),
        &admin,
        Some(json!({"name": "ci", "role": "viewer", "allEnvironments": true, "expiresInDays": 1})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("token").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(
        call(
            reqwest::Method::GET,
            &format!("{}/api/me", b.base),
            &token,
            None
        )
        .await
        .0,
        200
    );
    // …and revoking it on one replica stops it there at once, and on the other within
    // the spec's 5 s (a notification, in practice milliseconds; the cache's 2 s expiry
    // otherwise).
    let (status, _) = call(
        reqwest::Method::DELETE,
        &format!("{}/api/admin/tokens/{id}", a.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let me = |base: String| {
        let token = token.clone();
        async move {
            call(
                reqwest::Method::GET,
                &format!("{base}/api/me"),
                &token,
                None,
            )
            .await
        }
    };
    let (status, err) = me(a.base.clone()).await;
    assert_eq!((status, err["code"].as_str()), (401, Some("UNAUTHORIZED")));
    let revoked_at = Instant::now();
    loop {
        let (status, err) = me(b.base.clone()).await;
        if status == 401 {
            assert_eq!(err["code"].as_str(), Some("UNAUTHORIZED"));
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "the other replica still accepts the token 5 s after its revocation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "the other replica refused the revoked token after {:?}",
        revoked_at.elapsed()
    );
    // A uniqueness rule holds across replicas.
    let env = |base: String| {
        let admin = admin.clone();
        async move {
            call(
                reqwest::Method::POST,
                &format!("{base}/api/admin/environments"),
                &admin,
                Some(json!({"name": "staging"})),
            )
            .await
            .0
        }
    };
    let (x, y) = tokio::join!(env(a.base.clone()), env(b.base.clone()));
    let mut statuses = [x, y];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    // `fleetpass migrate` on an up-to-date database applies nothing.
    let out = command(&[("DATABASE_URL", &url)])
        .arg("migrate")
        .output()
        .expect("runs");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("applied 0"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop((a, b));
}

#[tokio::test]
async fn an_unreachable_database_is_503_not_500() {
    let db = TestDatabase::fresh().await;
    let out = command(&[("DATABASE_URL", db.url())])
        .args(["tenant", "create", "--name", "acme"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let admin = stdout
        .split("(shown once): ")
        .nth(1)
        .expect("token line")
        .trim()
        .to_owned();
    let server = start(&[("DATABASE_URL", db.url()), ("FLEETPASS_MIGRATE", "off")]);
    assert_eq!(
        call(
            reqwest::Method::GET,
            &format!("{}/api/me", server.base),
            &admin,
            None
        )
        .await
        .0,
        200
    );
    drop(db); // the database vanishes under the running server
    let res = reqwest::Client::new()
        .get(format!("{}/api/me", server.base))
        .header("Authorization", format!("Bearer {admin}"))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE", "{body}");
    let ready = reqwest::get(format!("{}/readyz", server.base))
        .await
        .expect("answers");
    assert_eq!(ready.status().as_u16(), 503);
}

#[test]
fn postgres_mode_refuses_to_start_without_a_durable_master_key() {
    let out = command(&[
        (
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        ),
        ("FLEETPASS_MASTER_KEY_FILE", ""),
    ])
    .arg("serve")
    .output()
    .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FLEETPASS_MASTER_KEY") && stderr.trim().lines().count() == 1,
        "{stderr}"
    );

    // The command the message points to works in that same environment.
    let made = command(&[
        (
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        ),
        ("FLEETPASS_MASTER_KEY_FILE", ""),
    ])
    .args(["keys", "new-master-key"])
    .output()
    .expect("runs");
    assert!(made.status.success(), "{made:?}");
    let key = String::from_utf8_lossy(&made.stdout);
    assert!(key.trim().len() >= 43, "a 32-byte key in base64: {key}");
}

#[tokio::test]
async fn the_seed_fleet_request_works_unchanged_with_an_operator_token() {
    let mut server = start(&[]);
    let admin = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    let (_, op) = post_json(
        &format!("{}/api/admin/tokens", server.base),
        Some(&admin),
        json!({"name": "op", "role": "operator", "allEnvironments": true, "expiresInDays": 1}),
    )
    .await;
    let operator = op["token"].as_str().expect("token").to_owned();
    // Seed 000's curl, byte for byte but for the host and the token.
    let out = Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            &format!("{}/tenant/discovery/fleets", server.base),
        ])
        .args(["-H", &format!("Authorization: Bearer {operator}")])
        .args(["-H", "Content-Type: application/json"])
        .args(["-d", "{\n\"name\": \"Production\"\n}"])
        .args(["-w", "\n%{http_code}"])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    assert_eq!(code, "201", "{text}");
    let body: Value = serde_json::from_str(body).expect("json");
    assert!(
        body["fleetId"].is_string() && body["expiresAt"].is_string(),
        "{body}"
    );
    assert!(
        body["enrollmentToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("fpe_")),
        "{body}"
    );
}

/// Sends `n` enrollments with one token, alternating between `bases`, all at once, and
/// returns how many succeeded and how many were refused as used up.
async fn enroll_race(bases: &[String], token: &str, n: usize) -> (usize, usize) {
    let client = reqwest::Client::new();
    let calls = (0..n).map(|i| {
        let client = client.clone();
        let url = format!("{}/agent/enroll", bases[i % bases.len()]);
        let body =
            json!({"enrollmentToken": token, "hostname": format!("host-{i}"), "platform": "linux"});
        tokio::spawn(async move {
            let res = client.post(url).json(&body).send().await.expect("answers");
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, body)
        })
    });
    let mut ok = 0;
    let mut used_up = 0;
    for call in calls.collect::<Vec<_>>() {
        let (status, body) = call.await.expect("joined");
        match status {
            201 => ok += 1,
            401 if body["message"]
                .as_str()
                .is_some_and(|m| m.contains("used up")) =>
            {
                used_up += 1
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    (ok, used_up)
}

#[tokio::test]
async fn one_time_tokens_hold_under_races_across_two_processes() {
    let db = TestDatabase::fresh().await;
    let url = db.url().to_owned();
    let admin = cli_tenant(&url, "acme");
    let a = start(&[
        ("DATABASE_URL", &url),
        ("FLEETPASS_PUBLIC_URL", SERVICE_URL),
    ]);
    let b = start(&[
        ("DATABASE_URL", &url),
        ("FLEETPASS_PUBLIC_URL", SERVICE_URL),
    ]);
    let bases = [a.base.clone(), b.base.clone()];
    let (status, fleet) = post_json(
        &format!("{}/tenant/discovery/fleets", a.base),
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{fleet}");
    let once = fleet["enrollmentToken"].as_str().expect("token").to_owned();
    assert_eq!(enroll_race(&bases, &once, 50).await, (1, 49));
    let issue = format!(
        "{}/tenant/discovery/fleets/{}/enrollment-tokens",
        b.base,
        fleet["fleetId"].as_str().expect("id")
    );
    let (_, three) = post_json(&issue, Some(&admin), json!({"maxUses": 3})).await;
    let three = three["enrollmentToken"].as_str().expect("token").to_owned();
    assert_eq!(enroll_race(&bases, &three, 50).await, (3, 47));
    let agents = call(
        reqwest::Method::GET,
        &format!(
            "{}/tenant/discovery/fleets/{}/agents?limit=200",
            a.base,
            fleet["fleetId"].as_str().expect("id")
        ),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        agents.1["items"].as_array().map(Vec::len),
        Some(4),
        "exactly the successful enrollments exist"
    );
}

#[tokio::test]
async fn signing_keys_are_shared_persist_and_rotate() {
    let db = TestDatabase::fresh().await;
    let url = db.url().to_owned();
    let admin = cli_tenant(&url, "acme");
    let a = start(&[
        ("DATABASE_URL", &url),
        ("FLEETPASS_PUBLIC_URL", SERVICE_URL),
    ]);
    let (_, fleet) = post_json(
        &format!("{}/tenant/discovery/fleets", a.base),
        Some(&admin),
        json!({}),
    )
    .await;
    let issue = format!(
        "{}/tenant/discovery/fleets/{}/enrollment-tokens",
        a.base,
        fleet["fleetId"].as_str().expect("id")
    );
    let (_, many) = post_json(&issue, Some(&admin), json!({"maxUses": 5})).await;
    let token = many["enrollmentToken"].as_str().expect("token").to_owned();
    let body = json!({"enrollmentToken": token, "hostname": "h", "platform": "linux"});
    let (status, enrolled) = post_json(&format!("{}/agent/enroll", a.base), None, body).await;
    assert_eq!(status, 201, "{enrolled}");
    let before = enrolled["accessToken"].as_str().expect("jwt").to_owned();
    let beat = |base: String, jwt: String| async move {
        post_json(&format!("{base}/agent/heartbeat"), Some(&jwt), json!({}))
            .await
            .0
    };

    // A second process verifies what the first signed: the keys live in the database.
    let b = start(&[
        ("DATABASE_URL", &url),
        ("FLEETPASS_PUBLIC_URL", SERVICE_URL),
    ]);
    assert_eq!(beat(b.base.clone(), before.clone()).await, 200);

    // Rotate from the command line; a process started after it signs with the new key.
    let out = command(&[("DATABASE_URL", &url)])
        .args(["keys", "rotate"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = start(&[
        ("DATABASE_URL", &url),
        ("FLEETPASS_PUBLIC_URL", SERVICE_URL),
    ]);
    let exchange = json!({"agentId": enrolled["agentId"], "agentSecret": enrolled["agentSecret"]});
    let (status, fresh) = post_json(&format!("{}/agent/token", c.base), None, exchange).await;
    assert_eq!(status, 200, "{fresh}");
    let after = fresh["accessToken"].as_str().expect("jwt").to_owned();
    assert_ne!(kid(&before), kid(&after));
    // The token minted before the rotation still verifies everywhere, and the older
    // processes learn the new key on first sight of its kid (within a few seconds).
    assert_eq!(beat(c.base.clone(), before.clone()).await, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    while beat(a.base.clone(), after.clone()).await != 200 {
        assert!(
            Instant::now() < deadline,
            "replica a never learned the rotated key"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", c.base))
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    drop((a, b, c));
}

//! Black-box tests of spec §1's guarantees across replicas: two `fleetpass` processes on
//! one PostgreSQL database behave as one service for idempotency keys (twenty concurrent
//! requests with one key run once) and for rate limits (a key limited to 5 a minute
//! gets 5, however its requests are spread).

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fleetpass_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use support::*;

/// A response's status, `Idempotent-Replayed` and `Retry-After` headers, and body.
struct Reply {
    status: u16,
    replayed: bool,
    retry_after: Option<u64>,
    remaining: Option<String>,
    body: Value,
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let res = req.send().await.expect("the server answers");
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let replayed = header("idempotent-replayed").as_deref() == Some("true");
    let retry_after = header("retry-after").and_then(|v| v.parse().ok());
    let remaining = header("ratelimit-remaining");
    let status = res.status().as_u16();
    Reply {
        status,
        replayed,
        retry_after,
        remaining,
        body: res.json().await.unwrap_or(Value::Null),
    }
}

/// Two server processes on one fresh database, and the admin token of a tenant in it.
fn two_replicas(db: &TestDatabase) -> (Server, Server, String) {
    let admin = cli_tenant(db.url(), "acme");
    let env = [("DATABASE_URL", db.url())];
    (start(&env), start(&env), admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_requests_with_one_key_on_two_replicas_run_once() {
    let db = TestDatabase::fresh().await;
    let (a, b, admin) = two_replicas(&db);
    let client = reqwest::Client::new();
    let body = json!({"name": "exactly-once", "role": "viewer", "allEnvironments": true, "expiresInDays": 1});
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let base = if i % 2 == 0 { &a.base } else { &b.base };
            let req = client
                .post(format!("{base}/api/admin/tokens"))
                .bearer_auth(&admin)
                .header("Idempotency-Key", "one-key-two-replicas")
                .json(&body);
            tokio::spawn(send(req))
        })
        .collect();
    let mut replies = Vec::new();
    for call in calls {
        replies.push(call.await.expect("join"));
    }
    let ran: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == 201 && !r.replayed)
        .collect();
    assert_eq!(ran.len(), 1, "exactly one request ran");
    let secret = &ran[0].body["token"];
    for r in &replies {
        match r.status {
            201 => assert_eq!(&r.body["token"], secret, "a replay is the first response"),
            409 => assert_eq!(r.body["code"], "CONFLICT", "{}", r.body),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    // Afterwards every replica replays, and the token exists once.
    for base in [&a.base, &b.base] {
        let again = send(
            client
                .post(format!("{base}/api/admin/tokens"))
                .bearer_auth(&admin)
                .header("Idempotency-Key", "one-key-two-replicas")
                .json(&body),
        )
        .await;
        assert_eq!((again.status, again.replayed), (201, true));
        assert_eq!(&again.body["token"], secret);
    }
    let list = send(
        client
            .get(format!("{}/api/admin/tokens?limit=200", a.base))
            .bearer_auth(&admin),
    )
    .await;
    let named = list.body["items"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|t| t["name"] == "exactly-once")
        .count();
    assert_eq!(named, 1, "one token was created");
}

/// Seconds into the current minute, by the clock the servers read too.
fn second_of_minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_limited_to_5_a_minute_gets_5_across_two_replicas() {
    let db = TestDatabase::fresh().await;
    let (a, b, admin) = two_replicas(&db);
    let client = reqwest::Client::new();
    let created = send(
        client
            .post(format!("{}/api/admin/tokens", a.base))
            .bearer_auth(&admin)
            .json(
                &json!({"name": "slow", "role": "viewer", "allEnvironments": true,
                          "expiresInDays": 1, "rateLimitPerMinute": 5}),
            ),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let token = created.body["token"].as_str().expect("a token").to_owned();
    // The six requests must fall in one fixed window (a whole minute): start early in one.
    if second_of_minute() > 45 {
        tokio::time::sleep(Duration::from_secs(61 - second_of_minute())).await;
    }
    let mut statuses = Vec::new();
    let mut last = None;
    for i in 0..6 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let reply = send(client.get(format!("{base}/api/me")).bearer_auth(&token)).await;
        statuses.push(reply.status);
        if reply.status == 200 {
            assert_eq!(reply.remaining, Some((4 - i).to_string()), "request {i}");
        }
        last = Some(reply);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 429],
        "5 through, then refused"
    );
    let refused = last.expect("six replies");
    assert_eq!(refused.body["code"], "RATE_LIMITED");
    let expected = 60 - second_of_minute();
    let retry_after = refused.retry_after.expect("Retry-After on a 429");
    assert!(
        retry_after.abs_diff(expected) <= 1,
        "Retry-After {retry_after} is the rest of the minute ({expected})"
    );
    assert_eq!(refused.body["retryAfterSeconds"], retry_after);
}

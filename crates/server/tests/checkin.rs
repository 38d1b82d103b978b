//! Black-box tests of long-poll check-ins (`POST /agent/jobs/claim?wait=…`) and batched
//! presence, over real sockets: woken by a scan queued through another server process,
//! 204 when the wait ends, exactly one claim among fifty woken waiters, 401 for a
//! revoked agent's open poll, 204 for every open poll on SIGTERM, a `notBefore` scan
//! waking its waiters at that time, 503 + `Retry-After` over the held-poll limit, and
//! `lastSeenAt` written by the batch surviving a restart. Each case runs on PostgreSQL
//! (two replicas where it matters) and in memory mode.
//!
//! Timing bounds are generous on purpose: speed is the bench's business; these check
//! behaviour (a poll that should be woken is answered long before its wait ends).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use fleetpass_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use support::*;

/// One client for all calls, with a timeout far beyond any wait a test asks for.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("a client")
}

/// An enrolled agent: its id and access token.
#[derive(Clone)]
struct Agent {
    id: String,
    token: String,
}

/// A fleet with `agents` agents enrolled through `base`.
async fn fleet_with_agents(base: &str, admin: &str, agents: usize) -> (String, Vec<Agent>) {
    let (status, fleet) = post_json(
        &format!("{base}/tenant/discovery/fleets"),
        Some(admin),
        json!({"name": "long-poll"}),
    )
    .await;
    assert_eq!(status, 201, "{fleet}");
    let fleet_id = fleet["fleetId"].as_str().expect("fleet id").to_owned();
    let (status, issued) = post_json(
        &format!("{base}/tenant/discovery/fleets/{fleet_id}/enrollment-tokens"),
        Some(admin),
        json!({"maxUses": agents.max(1)}),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let enrollment = issued["enrollmentToken"]
        .as_str()
        .or_else(|| issued["token"].as_str())
        .expect("an enrollment token")
        .to_owned();
    let mut enrolled = Vec::new();
    for i in 0..agents {
        let (status, body) = post_json(
            &format!("{base}/agent/enroll"),
            None,
            json!({"enrollmentToken": enrollment, "hostname": format!("host-{i}"), "platform": "linux"}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        enrolled.push(Agent {
            id: body["agentId"].as_str().expect("agent id").to_owned(),
            token: body["accessToken"].as_str().expect("token").to_owned(),
        });
    }
    (fleet_id, enrolled)
}

/// A check-in's outcome: status, `Retry-After`, body, and how long it was held.
struct Polled {
    status: u16,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

async fn poll(base: &str, agent: &Agent, wait: u32) -> Polled {
    let start = Instant::now();
    let res = client()
        .post(format!("{base}/agent/jobs/claim?wait={wait}"))
        .bearer_auth(&agent.token)
        .send()
        .await
        .expect("the server answers");
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.json().await.unwrap_or(Value::Null);
    Polled {
        status,
        retry_after,
        body,
        took: start.elapsed(),
    }
}

async fn queue_scan(base: &str, admin: &str, fleet: &str, constraints: Value) -> String {
    let (status, scan) = post_json(
        &format!("{base}/tenant/scans"),
        Some(admin),
        json!({"fleetId": fleet, "scenario": "inventory", "constraints": constraints}),
    )
    .await;
    assert_eq!(status, 202, "{scan}");
    scan["scanId"].as_str().expect("scan id").to_owned()
}

/// Lets polls just sent reach their wait, so a test acts only once its waiters wait.
async fn settle() {
    // Each poll's first claim and subscription take milliseconds; a second is plenty.
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// A memory-mode server and its demo admin token.
fn memory_server(envs: &[(&str, &str)]) -> (Server, String) {
    use std::io::BufRead as _;
    let mut server = spawn(envs);
    // Read on, after the token, for as long as the server prints: a closed pipe would
    // fail its next line.
    let stdout = server.child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some((_, token)) = line.split_once("(shown once): ") {
                let _ = tx.send(token.trim().to_owned());
            }
        }
    });
    let admin = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the demo admin token");
    wait_listening(&mut server);
    (server, admin)
}

/// Two PostgreSQL replicas on `db` and a tenant's admin token.
fn two_replicas(db: &TestDatabase, envs: &[(&str, &str)]) -> (Server, Server, String) {
    let admin = cli_tenant(db.url(), "acme");
    // Small pools: the machine's PostgreSQL is shared by every test and checkout.
    let mut all = vec![
        ("DATABASE_URL", db.url()),
        ("FLEETPASS_DB_POOL_SIZE", "4"),
        ("FLEETPASS_PUBLIC_URL", SERVICE_URL),
    ];
    all.extend_from_slice(envs);
    (start(&all), start(&all), admin)
}

// ---- the cases, each over (where the agents wait, where the operator acts) ----

async fn a_poll_is_woken_by_a_queued_scan(wait_on: &str, queue_on: &str, admin: &str) {
    let (fleet, agents) = fleet_with_agents(queue_on, admin, 1).await;
    let agent = agents[0].clone();
    let base = wait_on.to_owned();
    let held = tokio::spawn(async move { poll(&base, &agent, 60).await });
    settle().await;
    let scan = queue_scan(queue_on, admin, &fleet, json!({})).await;
    let polled = held.await.expect("join");
    assert_eq!(polled.status, 200, "{}", polled.body);
    assert_eq!(polled.body["scanId"], scan.as_str(), "{}", polled.body);
    assert_eq!(polled.body["status"], "running");
    assert!(
        polled.took < Duration::from_secs(30),
        "woken, not expired: {:?}",
        polled.took
    );
}

async fn fifty_waiters_make_exactly_one_claim(bases: [&str; 2], admin: &str) {
    let (fleet, agents) = fleet_with_agents(bases[0], admin, 50).await;
    let polls: Vec<_> = agents
        .into_iter()
        .enumerate()
        .map(|(i, agent)| {
            let base = bases[i % 2].to_owned();
            tokio::spawn(async move { poll(&base, &agent, 12).await })
        })
        .collect();
    settle().await;
    let scan = queue_scan(bases[1], admin, &fleet, json!({})).await;
    let mut claimed = Vec::new();
    for p in polls {
        let polled = p.await.expect("join");
        match polled.status {
            200 => claimed.push(
                polled.body["scanId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            204 => assert!(
                polled.took >= Duration::from_secs(9),
                "a loser waits on until its wait ends: {:?}",
                polled.took
            ),
            other => panic!("unexpected {other}: {}", polled.body),
        }
    }
    assert_eq!(claimed, vec![scan], "exactly one claim, of the queued scan");
}

async fn a_revoked_agents_poll_ends_with_401(wait_on: &str, revoke_on: &str, admin: &str) {
    let (_, agents) = fleet_with_agents(revoke_on, admin, 1).await;
    let agent = agents[0].clone();
    let id = agent.id.clone();
    let base = wait_on.to_owned();
    let held = tokio::spawn(async move { poll(&base, &agent, 60).await });
    settle().await;
    let res = client()
        .delete(format!("{revoke_on}/tenant/discovery/agents/{id}"))
        .bearer_auth(admin)
        .send()
        .await
        .expect("answers");
    assert!(res.status().is_success(), "{}", res.status());
    let revoked = Instant::now();
    let polled = held.await.expect("join");
    assert_eq!(polled.status, 401, "{}", polled.body);
    assert_eq!(polled.body["code"], "UNAUTHORIZED");
    assert!(
        revoked.elapsed() < Duration::from_secs(5),
        "within the spec's 5 s: {:?}",
        revoked.elapsed()
    );
}

async fn a_not_before_scan_wakes_its_waiters_then(wait_on: &str, queue_on: &str, admin: &str) {
    let (fleet, agents) = fleet_with_agents(queue_on, admin, 1).await;
    let agent = agents[0].clone();
    let base = wait_on.to_owned();
    let held = tokio::spawn(async move { poll(&base, &agent, 60).await });
    settle().await;
    let not_before = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
    let not_before = not_before
        .replace_nanosecond(0)
        .expect("whole seconds")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats");
    let queued = Instant::now();
    let scan = queue_scan(queue_on, admin, &fleet, json!({"notBefore": not_before})).await;
    let polled = held.await.expect("join");
    assert_eq!(polled.status, 200, "{}", polled.body);
    assert_eq!(polled.body["scanId"], scan.as_str());
    let after = queued.elapsed();
    // notBefore was 4-5 s after queueing (rounded down to the second).
    assert!(
        after >= Duration::from_secs(3),
        "not before its time: {after:?}"
    );
    assert!(
        after < Duration::from_secs(30),
        "woken at its time: {after:?}"
    );
}

// ---- PostgreSQL: two replicas ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_poll_on_one_replica_is_woken_by_a_scan_queued_through_another() {
    let db = TestDatabase::fresh().await;
    let (a, b, admin) = two_replicas(&db, &[]);
    a_poll_is_woken_by_a_queued_scan(&a.base, &b.base, &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fifty_waiters_on_two_replicas_woken_for_one_scan_make_one_claim() {
    let db = TestDatabase::fresh().await;
    let (a, b, admin) = two_replicas(&db, &[]);
    fifty_waiters_make_exactly_one_claim([&a.base, &b.base], &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_agent_revoked_through_another_replica_gets_401_on_its_open_poll() {
    let db = TestDatabase::fresh().await;
    let (a, b, admin) = two_replicas(&db, &[]);
    a_revoked_agents_poll_ends_with_401(&a.base, &b.base, &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_not_before_scan_queued_on_another_replica_wakes_waiters_at_that_time() {
    let db = TestDatabase::fresh().await;
    let (a, b, admin) = two_replicas(&db, &[]);
    a_not_before_scan_wakes_its_waiters_then(&a.base, &b.base, &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_presence_written_by_the_batch_survives_a_restart() {
    let db = TestDatabase::fresh().await;
    let admin = cli_tenant(db.url(), "acme");
    let env = [("DATABASE_URL", db.url()), ("FLEETPASS_DB_POOL_SIZE", "4")];
    let server = start(&env);
    let (_, agents) = fleet_with_agents(&server.base, &admin, 1).await;
    let agent = &agents[0];
    // A plain check-in is presence: no heartbeat, no write on the request path.
    let polled = poll(&server.base, agent, 0).await;
    assert_eq!(polled.status, 204);
    let url = format!("{}/tenant/discovery/agents/{}", server.base, agent.id);
    let (status, before) = call(reqwest::Method::GET, &url, &admin, None).await;
    assert_eq!(status, 200, "{before}");
    let seen = before["lastSeenAt"].clone();
    assert!(
        seen.is_string(),
        "this replica shows its noted sighting: {before}"
    );
    // Past one flush interval (5 s), then killed outright: only the batch wrote it.
    tokio::time::sleep(Duration::from_secs(7)).await;
    drop(server);
    let again = start(&env);
    let url = format!("{}/tenant/discovery/agents/{}", again.base, agent.id);
    let (status, after) = call(reqwest::Method::GET, &url, &admin, None).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(
        after["lastSeenAt"], seen,
        "written, and survived the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_heartbeat_still_lands_its_version() {
    let db = TestDatabase::fresh().await;
    let admin = cli_tenant(db.url(), "acme");
    let server = start(&[("DATABASE_URL", db.url()), ("FLEETPASS_DB_POOL_SIZE", "4")]);
    let (_, agents) = fleet_with_agents(&server.base, &admin, 1).await;
    let agent = &agents[0];
    let (status, beat) = post_json(
        &format!("{}/agent/heartbeat", server.base),
        Some(&agent.token),
        json!({"agentVersion": "9.9.9"}),
    )
    .await;
    assert_eq!(status, 200, "{beat}");
    assert_eq!(beat["agentVersion"], "9.9.9");
    assert!(beat["lastSeenAt"].is_string(), "{beat}");
    let url = format!("{}/tenant/discovery/agents/{}", server.base, agent.id);
    let (_, read) = call(reqwest::Method::GET, &url, &admin, None).await;
    assert_eq!(read["agentVersion"], "9.9.9");
}

// ---- memory mode: the same cases in one process ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_poll_is_woken_by_a_queued_scan() {
    let (server, admin) = memory_server(&[]);
    a_poll_is_woken_by_a_queued_scan(&server.base, &server.base, &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_fifty_waiters_woken_for_one_scan_make_one_claim() {
    let (server, admin) = memory_server(&[]);
    fifty_waiters_make_exactly_one_claim([&server.base, &server.base], &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_revoked_agents_open_poll_ends_with_401() {
    let (server, admin) = memory_server(&[]);
    a_revoked_agents_poll_ends_with_401(&server.base, &server.base, &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_not_before_scan_wakes_its_waiters_at_that_time() {
    let (server, admin) = memory_server(&[]);
    a_not_before_scan_wakes_its_waiters_then(&server.base, &server.base, &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_with_nothing_queued_ends_with_204_and_outlives_the_servers_own_timeouts() {
    let (server, admin) = memory_server(&[]);
    let (_, agents) = fleet_with_agents(&server.base, &admin, 1).await;
    // 8 s: past actix-web's 5 s keep-alive and client request timeouts.
    let polled = poll(&server.base, &agents[0], 8).await;
    assert_eq!(polled.status, 204, "{}", polled.body);
    assert!(
        polled.took >= Duration::from_millis(7_000),
        "held for its wait, less at most a tenth: {:?}",
        polled.took
    );
    assert!(polled.took < Duration::from_secs(30), "{:?}", polled.took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_is_capped_by_the_server() {
    let (server, admin) = memory_server(&[("FLEETPASS_MAX_POLL_WAIT", "2")]);
    let (_, agents) = fleet_with_agents(&server.base, &admin, 1).await;
    let polled = poll(&server.base, &agents[0], 3600).await;
    assert_eq!(polled.status, 204);
    assert!(polled.took < Duration::from_secs(20), "{:?}", polled.took);
    let bad = poll(&server.base, &agents[0], 3601).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.body["field"], "wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_held_poll_limit_a_check_in_is_503_with_retry_after() {
    let (server, admin) = memory_server(&[("FLEETPASS_MAX_HELD_POLLS", "2")]);
    let (_, agents) = fleet_with_agents(&server.base, &admin, 3).await;
    let held: Vec<_> = agents[..2]
        .iter()
        .cloned()
        .map(|agent| {
            let base = server.base.clone();
            tokio::spawn(async move { poll(&base, &agent, 6).await })
        })
        .collect();
    settle().await;
    let refused = poll(&server.base, &agents[2], 6).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.body["code"], "SERVICE_UNAVAILABLE");
    assert!(refused.retry_after.is_some(), "Retry-After is set");
    // A plain claim holds nothing and is still served.
    assert_eq!(poll(&server.base, &agents[2], 0).await.status, 204);
    for h in held {
        assert_eq!(h.await.expect("join").status, 204);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_polls_with_204_and_the_server_exits() {
    let (mut server, admin) = memory_server(&[]);
    let (_, agents) = fleet_with_agents(&server.base, &admin, 3).await;
    let held: Vec<_> = agents
        .into_iter()
        .map(|agent| {
            let base = server.base.clone();
            tokio::spawn(async move { poll(&base, &agent, 120).await })
        })
        .collect();
    settle().await;
    let pid = server.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    for h in held {
        let polled = h.await.expect("join");
        assert_eq!(polled.status, 204, "{}", polled.body);
        assert!(
            polled.took < Duration::from_secs(20),
            "ended promptly, not at its wait: {:?}",
            polled.took
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = server.child.try_wait().expect("waitable") {
            assert!(exit.success(), "exited with {exit}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_server_raises_its_open_files_limit_and_says_what_it_got() {
    use std::io::BufRead as _;
    let mut server = spawn(&[]);
    let stderr = server.child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("open-files limit") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a log line about the open-files limit");
    assert!(line.contains("raised to the hard limit"), "{line}");
    // The hard limit of this process (the test's, inherited by the server).
    let hard = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(4).map(str::to_owned))
        });
    if let Some(hard) = hard {
        assert!(
            line.contains(&format!("open_files={hard}")),
            "{line} (hard limit {hard})"
        );
    }
}

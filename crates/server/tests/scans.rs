//! Black-box tests of scans and share links over real processes: the claim race across
//! two replicas on one PostgreSQL database, seed 001's curl, and the auditor's page in a
//! real headless browser.

mod support;

use std::path::PathBuf;
use std::process::Command;

use fleetpass_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use support::*;

/// Enrolls `n` agents into a new fleet, alternating between `bases`; returns the fleet
/// id and the agents' access tokens.
async fn fleet_with_agents(bases: &[String], admin: &str, n: usize) -> (String, Vec<String>) {
    let (status, fleet) = post_json(
        &format!("{}/tenant/discovery/fleets", bases[0]),
        Some(admin),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{fleet}");
    let fleet_id = fleet["fleetId"].as_str().expect("id").to_owned();
    let issue = format!(
        "{}/tenant/discovery/fleets/{fleet_id}/enrollment-tokens",
        bases[0]
    );
    let (_, token) = post_json(&issue, Some(admin), json!({"maxUses": n})).await;
    let token = token["enrollmentToken"].as_str().expect("token").to_owned();
    let mut agents = Vec::new();
    for i in 0..n {
        let body = json!({"enrollmentToken": token, "hostname": format!("agent-{i}"), "platform": "linux"});
        let (status, enrolled) = post_json(
            &format!("{}/agent/enroll", bases[i % bases.len()]),
            None,
            body,
        )
        .await;
        assert_eq!(status, 201, "{enrolled}");
        agents.push(enrolled["accessToken"].as_str().expect("jwt").to_owned());
    }
    (fleet_id, agents)
}

#[tokio::test]
async fn twenty_agents_on_two_replicas_claim_ten_scans_exactly_once() {
    let db = TestDatabase::fresh().await;
    let url = db.url().to_owned();
    let admin = cli_tenant(&url, "acme");
    let a = start(&[("DATABASE_URL", &url)]);
    let b = start(&[("DATABASE_URL", &url)]);
    let bases = [a.base.clone(), b.base.clone()];
    let (fleet, agents) = fleet_with_agents(&bases, &admin, 20).await;
    for _ in 0..10 {
        let (status, scan) = post_json(
            &format!("{}/tenant/scans", a.base),
            Some(&admin),
            json!({"fleetId": fleet, "scenario": "inventory"}),
        )
        .await;
        assert_eq!(status, 202, "{scan}");
    }
    let client = reqwest::Client::new();
    let claims: Vec<_> = agents
        .iter()
        .enumerate()
        .map(|(i, jwt)| {
            let req = client
                .post(format!("{}/agent/jobs/claim", bases[i % 2]))
                .bearer_auth(jwt);
            tokio::spawn(async move {
                let res = req.send().await.expect("answers");
                let status = res.status().as_u16();
                (status, res.json::<Value>().await.unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut claimed = Vec::new();
    let mut empty = 0;
    for claim in claims {
        match claim.await.expect("joined") {
            (200, scan) => claimed.push(scan["scanId"].as_str().expect("id").to_owned()),
            (204, _) => empty += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    claimed.sort();
    claimed.dedup();
    assert_eq!(
        (claimed.len(), empty),
        (10, 10),
        "10 distinct scans and 10 × 204"
    );
    drop((a, b));
}

/// Runs a scan end to end on `base` and returns its id.
async fn completed_scan(base: &str, admin: &str) -> String {
    let (fleet, agents) = fleet_with_agents(&[base.to_owned()], admin, 1).await;
    let (_, scan) = post_json(
        &format!("{base}/tenant/scans"),
        Some(admin),
        json!({"fleetId": fleet, "scenario": "compliance"}),
    )
    .await;
    let id = scan["scanId"].as_str().expect("id").to_owned();
    let (status, _) = post_json(
        &format!("{base}/agent/jobs/claim"),
        Some(&agents[0]),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let results = json!({
        "assets": [
            {"hostname": "db-1.internal", "ip": "10.0.0.5", "os": "Debian 12", "openPorts": [22, 5432],
             "software": [{"name": "postgresql", "version": "15.4"}]},
            {"hostname": "web-1.internal", "ip": "10.0.0.7", "os": "Ubuntu 24.04", "openPorts": [80, 443]}
        ],
        "findings": [
            {"severity": "critical", "title": "Default admin password accepted", "assetHostname": "web-1.internal"},
            {"severity": "high", "title": "TLS 1.0 enabled", "assetHostname": "web-1.internal"},
            {"severity": "medium", "title": "PostgreSQL listens on all interfaces", "assetHostname": "db-1.internal"},
            {"severity": "info", "title": "SSH banner reveals version"}
        ]
    });
    let (status, done) = post_json(
        &format!("{base}/agent/scans/{id}/results"),
        Some(&agents[0]),
        results,
    )
    .await;
    assert_eq!(status, 200, "{done}");
    id
}

#[tokio::test]
async fn the_seed_share_request_works_unchanged() {
    let mut server = start(&[]);
    let admin = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    let id = completed_scan(&server.base, &admin).await;
    // Seed 001's curl, byte for byte but for the host, the scan id and the token.
    let out = Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            &format!("{}/tenant/scans/{id}/share", server.base),
        ])
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args(["-H", "Content-Type: application/json"])
        .args([
            "-d",
            "{\n  \"label\": \"Auditor handoff\",\n  \"scope\": \"passport\"\n}",
        ])
        .args(["-D", "-", "-w", "\n%{http_code}"])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, code) = text.rsplit_once('\n').expect("status line");
    assert_eq!(code, "201", "{text}");
    assert!(rest.to_lowercase().contains("deprecation: true"), "{rest}");
    let body: Value = serde_json::from_str(rest.rsplit("\r\n\r\n").next().unwrap_or_default())
        .expect("json body");
    let token = body["token"].as_str().expect("token");
    assert_eq!(body["url"], format!("{}/share/{token}", server.base));
}

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("Debian's chromium is needed for the browser test: `cargo xtask test` installs it (apt-get install chromium)")
}

/// Runs headless Chromium on `url` with `args` and returns its stdout.
fn headless(url: &str, args: &[&str]) -> String {
    let profile = std::env::temp_dir().join(format!("fleetpass-chromium-{}", uuid_like()));
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn uuid_like() -> String {
    format!(
        "{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    )
}

#[tokio::test]
async fn an_auditor_sees_the_share_page_in_a_real_browser() {
    let mut server = start(&[]);
    let admin = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    let id = completed_scan(&server.base, &admin).await;
    let (status, link) = post_json(
        &format!("{}/tenant/scans/{id}/share-links", server.base),
        Some(&admin),
        json!({"label": "Q4 external audit", "scope": "passport", "expiresHours": 48}),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().expect("url").to_owned();
    // What a person sees: the DOM after the browser rendered it.
    let dom = headless(&url, &["--dump-dom"]);
    for text in [
        "Q4 external audit",
        "Compliance scan",
        "Findings by severity",
        "Default admin password accepted",
        "What this link grants",
        "How to verify the passport",
        "/.well-known/jwks.json",
    ] {
        assert!(dom.contains(text), "the page should show {text:?}: {dom}");
    }
    assert!(
        dom.contains(&format!("{url}/passport")),
        "links to the passport"
    );
    assert!(
        dom.contains(&format!("fleetpass passport verify {url}")),
        "shows the one command that verifies everything"
    );
    // A screenshot, kept as a test artifact.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    let shot = dir.join("share-page.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1400",
            "--hide-scrollbars",
        ],
    );
    let bytes = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "a real PNG of the page"
    );
    // Each render was one counted access.
    let list: Value = reqwest::Client::new()
        .get(format!("{}/tenant/scans/{id}/share-links", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"][0]["accessCount"], 2, "{list}");
}

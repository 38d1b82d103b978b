//! Black-box tests of the hash-chained audit log over real sockets: concurrent writers
//! on two processes sharing one PostgreSQL database chain as one order, the export
//! verifies offline, and `fleetpass audit verify` names each tampering.

mod support;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fleetpass_domain::audit::chain::verify_chain;
use fleetpass_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use support::*;

/// How many audited writes race across the two processes.
const RACING_WRITES: usize = 40;

async fn get_text(url: &str, token: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let res = req.send().await.expect("the server answers");
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, res.text().await.expect("a body"))
}

/// Runs `fleetpass audit verify` on `export` (written to `dir`), answering whether it
/// passed and its one line of output.
fn cli_verify(dir: &Path, name: &str, export: &str, jwks: &Path) -> (bool, String) {
    let file = dir.join(name);
    std::fs::write(&file, export).expect("write the export");
    let out = std::process::Command::new(binary())
        .args(["audit", "verify"])
        .arg(&file)
        .arg("--jwks")
        .arg(jwks)
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_owned())
}

fn lines(export: &str) -> Vec<String> {
    export.lines().map(str::to_owned).collect()
}

fn joined(lines: &[String]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

#[tokio::test]
async fn the_chain_holds_under_races_across_two_processes_and_tampering_is_named() {
    let db = TestDatabase::fresh().await;
    let url = db.url().to_owned();
    let admin = cli_tenant(&url, "acme");
    let a = start(&[("DATABASE_URL", &url)]);
    let b = start(&[("DATABASE_URL", &url)]);

    // Audited writes, alternating between the processes, all at once.
    let client = reqwest::Client::new();
    let calls: Vec<_> = (0..RACING_WRITES)
        .map(|i| {
            let base = if i % 2 == 0 { &a.base } else { &b.base };
            let req = client
                .post(format!("{base}/tenant/discovery/fleets"))
                .header("Authorization", format!("Bearer {admin}"))
                .json(&json!({"name": format!("fleet {i}")}));
            tokio::spawn(async move { req.send().await.expect("answers").status().as_u16() })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.expect("joined"), 201);
    }

    let (status, kind, export) = get_text(
        &format!("{}/api/admin/audit-events/export", a.base),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(kind, "application/x-ndjson");
    let (_, _, jwks) = get_text(&format!("{}/.well-known/jwks.json", b.base), None).await;
    let verified = verify_chain(&export, Some(&jwks)).expect("the export verifies");
    let all = lines(&export);
    let events = all.len() - 1;
    assert!(
        events > RACING_WRITES,
        "the tenant's own events and the racing ones"
    );
    assert_eq!(verified.first_seq, Some(1));
    assert_eq!(verified.checkpoint.seq, events as u64, "seq 1..=N, no gaps");
    assert_eq!((verified.events, verified.redacted), (events as u64, 0));

    // Resuming from a cursor gives the rest of the chain, anchored where the reader was.
    let (_, _, rest) = get_text(
        &format!("{}/api/admin/audit-events/export?cursor=10", b.base),
        Some(&admin),
    )
    .await;
    let resumed = verify_chain(&rest, Some(&jwks)).expect("a resumed export verifies");
    assert_eq!(resumed.first_seq, Some(11));
    let tenth: Value = serde_json::from_str(&all[9]).expect("json");
    assert_eq!(
        resumed.anchor.to_string(),
        tenth["digest"].as_str().expect("digest")
    );

    // The on-demand checkpoint attests the same head.
    let (status, cp) = post_json(
        &format!("{}/api/admin/audit-events/checkpoint", b.base),
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{cp}");
    assert_eq!(cp["seq"], json!(events));
    assert_eq!(
        cp["head"].as_str(),
        Some(verified.checkpoint.head.to_string().as_str())
    );

    let dir = std::env::temp_dir().join(format!("fleetpass-audit-{}", free_port()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let jwks_file = dir.join("jwks.json");
    std::fs::write(&jwks_file, &jwks).expect("write the JWKS");
    let (ok, line) = cli_verify(&dir, "export.ndjson", &export, &jwks_file);
    assert!(ok, "{line}");
    assert!(line.starts_with("audit export verified:"), "{line}");

    let checkpoint = all[events].clone();
    let body = |i: usize| all[i].clone();
    let mut cases: Vec<(&str, Vec<String>, &str)> = Vec::new();
    let mut changed = all.clone();
    changed[20] = body(20).replace("fleet.created", "fleet.deleted");
    cases.push(("changed", changed, "changed event: the body of seq 21"));
    let mut deleted = all.clone();
    deleted.remove(20);
    cases.push((
        "deleted",
        deleted,
        "deleted event: expected seq 21, found seq 22",
    ));
    let mut reordered = all.clone();
    reordered.swap(20, 22);
    cases.push((
        "reordered",
        reordered,
        "reordered events: seq 22 comes after seq 23",
    ));
    let mut inserted = all.clone();
    inserted.insert(21, body(20));
    cases.push(("inserted", inserted, "inserted event at seq 21"));
    let mut truncated = all[..events - 3].to_vec();
    truncated.push(checkpoint.clone());
    cases.push(("truncated", truncated, "truncated: the checkpoint counts"));
    // A checkpoint whose claims were changed after signing.
    let cp_line: Value = serde_json::from_str(&checkpoint).expect("json");
    let jws = cp_line["jws"].as_str().expect("jws");
    let parts: Vec<&str> = jws.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    claims["seq"] = json!(events - 3);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let mut resigned = all[..events - 3].to_vec();
    resigned.push(json!({"type": "checkpoint", "jws": forged}).to_string());
    cases.push(("altered-checkpoint", resigned, "bad signature"));

    for (name, tampered, want) in cases {
        let (ok, line) = cli_verify(
            &dir,
            &format!("{name}.ndjson"),
            &joined(&tampered),
            &jwks_file,
        );
        assert!(!ok, "{name}: a tampered export must not verify: {line}");
        assert!(line.contains(want), "{name}: expected {want:?} in {line:?}");
    }

    // A checkpoint signed by another server's key: its JWKS does not hold the kid.
    let other_db = TestDatabase::fresh().await;
    let c = start(&[("DATABASE_URL", other_db.url())]);
    let (_, _, other_jwks) = get_text(&format!("{}/.well-known/jwks.json", c.base), None).await;
    let other_file = dir.join("other-jwks.json");
    std::fs::write(&other_file, &other_jwks).expect("write the JWKS");
    let (ok, line) = cli_verify(&dir, "foreign.ndjson", &export, &other_file);
    assert!(!ok, "{line}");
    assert!(line.contains("unknown key"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_environment_scoped_admin_gets_the_rest_of_the_chain_redacted() {
    let db = TestDatabase::fresh().await;
    let url = db.url().to_owned();
    let admin = cli_tenant(&url, "acme");
    let a = start(&[("DATABASE_URL", &url)]);
    let (status, env) = post_json(
        &format!("{}/api/admin/environments", a.base),
        Some(&admin),
        json!({"name": "staging"}),
    )
    .await;
    assert_eq!(status, 201, "{env}");
    let env_id = env["id"].as_str().expect("id").to_owned();
    let (status, scoped) = post_json(
        &format!("{}/api/admin/tokens", a.base),
        Some(&admin),
        json!({"name": "staging admin", "role": "admin", "allEnvironments": false,
               "environmentIds": [env_id], "expiresInDays": 1}),
    )
    .await;
    assert_eq!(status, 201, "{scoped}");
    let scoped = scoped["token"].as_str().expect("token").to_owned();
    let (status, fleet) = post_json(
        &format!("{}/tenant/discovery/fleets", a.base),
        Some(&scoped),
        json!({"environmentId": env_id}),
    )
    .await;
    assert_eq!(status, 201, "{fleet}");

    let (_, _, jwks) = get_text(&format!("{}/.well-known/jwks.json", a.base), None).await;
    let (status, _, export) = get_text(
        &format!("{}/api/admin/audit-events/export", a.base),
        Some(&scoped),
    )
    .await;
    assert_eq!(status, 200, "{export}");
    let verified = verify_chain(&export, Some(&jwks)).expect("a redacted export verifies");
    assert!(verified.events >= 1, "the staging fleet's event is shown");
    assert!(
        verified.redacted >= 1,
        "the tenant-wide events are redacted"
    );
    for line in export.lines() {
        let line: Value = serde_json::from_str(line).expect("json");
        if line["type"] == "redacted" {
            assert!(
                line.get("event").is_none(),
                "a redacted line has no body: {line}"
            );
        }
        if line["type"] == "event" {
            assert_eq!(line["event"]["environmentIds"], json!([env_id]), "{line}");
        }
    }
}

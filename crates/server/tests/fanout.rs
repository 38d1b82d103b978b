//! Black-box tests of scans that cover a fleet, over real processes on one PostgreSQL
//! database: a fan-out scan queued through one replica wakes the held check-ins of its
//! agents on both, each agent claims its own part, and the parts' results merge into one
//! bundle and passport; label targets, refusals and cancellation.

mod support;

use fleetpass_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use support::*;

/// A fleet of `n` agents enrolled alternately through `bases`: the fleet id and each
/// agent's (id, access token).
async fn fleet(bases: &[String], admin: &str, n: usize) -> (String, Vec<(String, String)>) {
    let (status, fleet) = post_json(
        &format!("{}/tenant/discovery/fleets", bases[0]),
        Some(admin),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{fleet}");
    let id = fleet["fleetId"].as_str().expect("id").to_owned();
    let (status, token) = post_json(
        &format!(
            "{}/tenant/discovery/fleets/{id}/enrollment-tokens",
            bases[0]
        ),
        Some(admin),
        json!({"maxUses": n, "labels": {"site": "fra1"}}),
    )
    .await;
    assert_eq!(status, 201, "{token}");
    assert_eq!(token["labels"], json!({"site": "fra1"}), "{token}");
    let secret = token["enrollmentToken"].as_str().expect("token").to_owned();
    let mut agents = Vec::new();
    for i in 0..n {
        // Half say they are databases; the token's label wins over an agent's own.
        let labels = if i % 2 == 0 {
            json!({"role": "db", "site": "elsewhere"})
        } else {
            json!({})
        };
        let body = json!({"enrollmentToken": secret, "hostname": format!("node-{i}"),
                          "platform": "linux", "labels": labels});
        let (status, enrolled) = post_json(
            &format!("{}/agent/enroll", bases[i % bases.len()]),
            None,
            body,
        )
        .await;
        assert_eq!(status, 201, "{enrolled}");
        agents.push((
            enrolled["agentId"].as_str().expect("id").to_owned(),
            enrolled["accessToken"].as_str().expect("jwt").to_owned(),
        ));
    }
    (id, agents)
}

fn results(host: &str) -> Value {
    json!({"assets": [{"hostname": host, "ip": "10.0.0.5", "os": "Debian 12", "openPorts": [22]}],
           "findings": [{"severity": "high", "title": format!("{host}: old TLS"), "assetHostname": host}]})
}

async fn get(url: &str, token: &str) -> (u16, Value) {
    call(reqwest::Method::GET, url, token, None).await
}

#[tokio::test]
async fn a_fan_out_scan_wakes_every_agent_on_both_replicas_and_merges_their_results() {
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
    let (fleet_id, agents) = fleet(&bases, &admin, 4).await;

    let (status, listed) = get(
        &format!(
            "{}/tenant/discovery/fleets/{fleet_id}/agents?labels=role:db,site:fra1",
            a.base
        ),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );

    // Every agent holds a check-in on its replica before the scan exists.
    let client = reqwest::Client::new();
    let polls: Vec<_> = agents
        .iter()
        .enumerate()
        .map(|(i, (_, jwt))| {
            let req = client
                .post(format!("{}/agent/jobs/claim?wait=60", bases[i % 2]))
                .bearer_auth(jwt);
            tokio::spawn(async move {
                let res = req.send().await.expect("answers");
                (
                    res.status().as_u16(),
                    res.json::<Value>().await.unwrap_or(Value::Null),
                )
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (status, scan) = post_json(
        &format!("{}/tenant/scans", a.base),
        Some(&admin),
        json!({"fleetId": fleet_id, "scenario": "inventory", "target": "all"}),
    )
    .await;
    assert_eq!(status, 202, "{scan}");
    assert_eq!(scan["target"], "all");
    assert_eq!(scan["progress"]["queued"], 4, "{scan}");
    let scan_id = scan["scanId"].as_str().expect("id").to_owned();
    for poll in polls {
        let (status, claimed) = poll.await.expect("joined");
        assert_eq!(
            status, 200,
            "every agent is woken for its own part: {claimed}"
        );
        assert_eq!(claimed["scanId"], scan_id.as_str());
    }
    for (i, (_, jwt)) in agents.iter().enumerate() {
        let (status, done) = post_json(
            &format!("{}/agent/scans/{scan_id}/results", bases[(i + 1) % 2]),
            Some(jwt),
            results(&format!("node-{i}")),
        )
        .await;
        assert_eq!(status, 200, "{done}");
    }
    let (_, scan) = get(&format!("{}/tenant/scans/{scan_id}", b.base), &admin).await;
    assert_eq!(scan["status"], "completed", "{scan}");
    assert_eq!(scan["progress"]["completed"], 4, "{scan}");
    let (_, bundle) = get(&format!("{}/tenant/scans/{scan_id}/bundle", a.base), &admin).await;
    let assets = bundle["bundle"]["assets"]
        .as_array()
        .expect("assets")
        .clone();
    let mut reporters: Vec<&str> = assets
        .iter()
        .filter_map(|x| x["agentId"].as_str())
        .collect();
    reporters.sort_unstable();
    let mut ids: Vec<&str> = agents.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        reporters, ids,
        "each asset names the agent that reported it"
    );
    let (_, report) = get(&format!("{}/tenant/scans/{scan_id}/report", a.base), &admin).await;
    assert_eq!(report["report"]["counts"]["assets"], 4, "{report}");
    assert_eq!(
        report["report"]["counts"]["findingsBySeverity"]["high"], 4,
        "{report}"
    );

    // A selector: the two agents that said role=db.
    let (status, by_label) = post_json(
        &format!("{}/tenant/scans", b.base),
        Some(&admin),
        json!({"fleetId": fleet_id, "scenario": "inventory", "target": {"labels": {"role": "db"}}}),
    )
    .await;
    assert_eq!(status, 202, "{by_label}");
    assert_eq!(by_label["progress"]["total"], 2, "{by_label}");
    // Nobody: a 422 that says why.
    let (status, refused) = post_json(
        &format!("{}/tenant/scans", b.base),
        Some(&admin),
        json!({"fleetId": fleet_id, "scenario": "inventory", "target": {"labels": {"role": "web"}}}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["field"], "target", "{refused}");
    let (status, refused) = post_json(
        &format!("{}/tenant/scans", b.base),
        Some(&admin),
        json!({"fleetId": fleet_id, "scenario": "inventory", "target": {"agents": []}}),
    )
    .await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (422, Some("target.agents")),
        "{refused}"
    );

    // Cancel: the agent holding a part hears it at its next exchange.
    let by_label_id = by_label["scanId"].as_str().expect("id");
    let db_agent = &agents[0].1;
    let (status, claimed) = post_json(
        &format!("{}/agent/jobs/claim", a.base),
        Some(db_agent),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, claimed["scanId"].as_str()),
        (200, Some(by_label_id)),
        "{claimed}"
    );
    let (status, cancelled) = post_json(
        &format!("{}/tenant/scans/{by_label_id}/cancel", b.base),
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["progress"]["cancelled"], 2, "{cancelled}");
    let (status, late) = post_json(
        &format!("{}/agent/scans/{by_label_id}/results", a.base),
        Some(db_agent),
        results("node-0"),
    )
    .await;
    assert_eq!(status, 409, "{late}");
    assert!(
        late["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cancelled"),
        "{late}"
    );
    let (status, again) = post_json(
        &format!("{}/tenant/scans/{by_label_id}/cancel", a.base),
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{again}");
    let (status, _) = get(
        &format!("{}/tenant/scans/{by_label_id}/report", a.base),
        &admin,
    )
    .await;
    assert_eq!(status, 409, "a cancelled scan has no artifacts");
    let (status, parts) = get(
        &format!(
            "{}/tenant/scans/{by_label_id}/parts?status=cancelled",
            a.base
        ),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{parts}");
    assert_eq!(parts["items"].as_array().map(Vec::len), Some(2), "{parts}");
    drop((a, b));
}

#[tokio::test]
async fn an_operator_relabels_an_agent_and_memory_mode_fans_out_too() {
    let mut server = start(&[]);
    let admin = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    let bases = [server.base.clone()];
    let (fleet_id, agents) = fleet(&bases, &admin, 2).await;
    let (status, patched) = call(
        reqwest::Method::PATCH,
        &format!("{}/tenant/discovery/agents/{}", server.base, agents[1].0),
        &admin,
        Some(json!({"labels": {"role": "web"}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["labels"], json!({"role": "web"}));
    let (status, bad) = call(
        reqwest::Method::PATCH,
        &format!("{}/tenant/discovery/agents/{}", server.base, agents[1].0),
        &admin,
        Some(json!({"labels": {"Bad Key": "x"}})),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    let (status, scan) = post_json(
        &format!("{}/tenant/scans", server.base),
        Some(&admin),
        json!({"fleetId": fleet_id, "scenario": "inventory",
               "target": {"agents": [agents[1].0]}}),
    )
    .await;
    assert_eq!(status, 202, "{scan}");
    assert_eq!(scan["target"], "agents");
    let (status, none) = post_json(
        &format!("{}/agent/jobs/claim", server.base),
        Some(&agents[0].1),
        json!({}),
    )
    .await;
    assert_eq!(status, 204, "another agent's part is not claimable: {none}");
    let (status, claimed) = post_json(
        &format!("{}/agent/jobs/claim", server.base),
        Some(&agents[1].1),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{claimed}");
    let id = claimed["scanId"].as_str().expect("id");
    let (status, done) = post_json(
        &format!("{}/agent/scans/{id}/results", server.base),
        Some(&agents[1].1),
        results("node-1"),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done["status"], "completed",
        "the only part completes the scan: {done}"
    );
    let (_, passport) = get(
        &format!("{}/tenant/scans/{id}/passport", server.base),
        &admin,
    )
    .await;
    assert!(passport["passport"].as_str().is_some(), "{passport}");
}

//! Black-box tests of the GitHub secret-scanning partner endpoint: a server started
//! with a key set made here, reports signed as GitHub signs them (ECDSA P-256 over the
//! raw body), and what each token is labelled and what happened to it.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fleetpass_domain::secret::DOCUMENTED_TEST_TOKEN;
use p256::pkcs8::EncodePublicKey as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use support::*;

const PATH: &str = "/api/public/secret-scanning/github";

/// A partner's signing key, as GitHub holds its own.
struct Partner {
    pair: EcdsaKeyPair,
    id: String,
}

impl Partner {
    fn new(id: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Self {
            pair,
            id: id.to_owned(),
        }
    }

    /// The public key as GitHub's key set carries it: PEM SubjectPublicKeyInfo.
    fn pem(&self) -> String {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(self.pair.public_key().as_ref())
            .unwrap()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
    }

    fn sign(&self, body: &str) -> String {
        let signature = self
            .pair
            .sign(&SystemRandom::new(), body.as_bytes())
            .unwrap();
        STANDARD.encode(signature.as_ref())
    }
}

/// Writes a key set with `partners` (the first current) and returns its path.
fn key_file(name: &str, partners: &[&Partner]) -> std::path::PathBuf {
    let keys: Vec<Value> = partners
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"key_identifier": p.id, "key": p.pem(), "is_current": i == 0}))
        .collect();
    let path = std::env::temp_dir().join(format!(
        "fleetpass-scanning-{name}-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, json!({ "public_keys": keys }).to_string()).unwrap();
    path
}

/// Posts `body` with the given signature headers; `(status, body)`.
async fn report(base: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{PATH}"))
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.expect("answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `body` signed by `partner`.
async fn signed(base: &str, partner: &Partner, body: &str) -> (u16, Value) {
    let signature = partner.sign(body);
    report(
        base,
        body,
        &[
            ("GITHUB-PUBLIC-KEY-IDENTIFIER", &partner.id),
            ("GITHUB-PUBLIC-KEY-SIGNATURE", &signature),
        ],
    )
    .await
}

fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn matches(tokens: &[&str]) -> String {
    let items: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({"token": t, "type": "fleetpass_secret",
                "url": "https://github.com/octocat/Hello-World/blob/1234/foo.txt",
                "source": "content"})
        })
        .collect();
    Value::Array(items).to_string()
}

/// Creates an admin API token and returns `(id, secret)`.
async fn api_token(base: &str, admin: &str, name: &str) -> (String, String) {
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{base}/api/admin/tokens"),
        admin,
        Some(json!({"name": name, "role": "admin", "allEnvironments": true, "expiresInDays": 1})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["token"].as_str().unwrap().to_owned(),
    )
}

async fn me(base: &str, token: &str) -> u16 {
    call(reqwest::Method::GET, &format!("{base}/api/me"), token, None)
        .await
        .0
}

#[tokio::test]
async fn a_signed_report_revokes_the_live_secrets_and_labels_each() {
    let github = Partner::new("github-current");
    let older = Partner::new("github-old");
    let keys = key_file("labels", &[&github, &older]);
    let mut server = start(&[
        (
            "FLEETPASS_SECRET_SCANNING_KEYS_FILE",
            keys.to_str().unwrap(),
        ),
        ("FLEETPASS_ADMIN_KEY", "secret-scanning-platform-key"),
    ]);
    let admin = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    let b = server.base.clone();

    let (leaked_id, leaked) = api_token(&b, &admin, "leaked").await;
    let (revoked_id, revoked) = api_token(&b, &admin, "revoked before").await;
    let (status, _) = call(
        reqwest::Method::DELETE,
        &format!("{b}/api/admin/tokens/{revoked_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, fleet) = call(
        reqwest::Method::POST,
        &format!("{b}/tenant/discovery/fleets"),
        &admin,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{fleet}");
    let enrollment = fleet["enrollmentToken"].as_str().unwrap().to_owned();
    let mut typo = leaked.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let not_ours = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";

    let reported = [
        leaked.as_str(),
        enrollment.as_str(),
        revoked.as_str(),
        not_ours,
        DOCUMENTED_TEST_TOKEN,
        typo.as_str(),
        leaked.as_str(),
    ];
    let body = matches(&reported);
    let (status, answer) = signed(&b, &github, &body).await;
    assert_eq!(status, 200, "{answer}");
    let labels: Vec<&str> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "true_positive",  // a live API token
            "true_positive",  // a live enrollment token
            "false_positive", // revoked before
            "false_positive", // not a Fleetpass secret
            "false_positive", // well-formed, never issued
            "false_positive", // a bad checksum
            "false_positive", // the same token again: revoked by the first
        ]
    );
    for (entry, token) in answer.as_array().unwrap().iter().zip(reported) {
        assert_eq!(entry["token_hash"], sha256_hex(token));
        assert_eq!(entry["token_type"], "fleetpass_secret");
        let keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["label", "token_hash", "token_type"], "nothing else");
    }
    assert!(
        !answer.to_string().contains(&leaked),
        "no secret is written back"
    );

    // The live ones are dead now, and the tenant was told.
    assert_eq!(me(&b, &leaked).await, 401);
    let enrolled = post_json(
        &format!("{b}/agent/enroll"),
        None,
        json!({"enrollmentToken": enrollment, "hostname": "h", "platform": "linux"}),
    )
    .await;
    assert_eq!(enrolled.0, 401, "{}", enrolled.1);
    let (status, events) = call(
        reqwest::Method::GET,
        &format!("{b}/api/admin/audit-events?action=token.revoked"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{events}");
    let reported_event = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["targetId"] == leaked_id.as_str())
        .unwrap_or_else(|| panic!("an audit event for the leaked token: {events}"));
    assert_eq!(reported_event["actorKind"], "public", "{reported_event}");

    // A key of the set that is no longer current still verifies.
    let (status, answer) = signed(&b, &older, &matches(&[DOCUMENTED_TEST_TOKEN])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["label"], "false_positive");
    let _ = std::fs::remove_file(keys);
}

#[tokio::test]
async fn unsigned_wrongly_signed_or_oversized_reports_are_refused() {
    let github = Partner::new("github-current");
    let stranger = Partner::new("github-current");
    let keys = key_file("refusals", &[&github]);
    let mut server = start(&[
        (
            "FLEETPASS_SECRET_SCANNING_KEYS_FILE",
            keys.to_str().unwrap(),
        ),
        ("FLEETPASS_ADMIN_KEY", "secret-scanning-platform-key"),
    ]);
    let admin = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    let b = server.base.clone();
    // The admin token itself is reported each time: were it ever taken, it would die.
    let body = matches(&[admin.as_str()]);

    let unauthorized = |(status, body): (u16, Value), what: &str| {
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["code"], "UNAUTHORIZED", "{what}");
        assert!(
            body["hint"]
                .as_str()
                .unwrap()
                .contains("GITHUB-PUBLIC-KEY-SIGNATURE"),
            "{what}: {body}"
        );
        body["message"].as_str().unwrap().to_owned()
    };
    let message = unauthorized(report(&b, &body, &[]).await, "unsigned");
    assert!(
        message.contains("GITHUB-PUBLIC-KEY-IDENTIFIER"),
        "{message}"
    );
    let only_id = [("GITHUB-PUBLIC-KEY-IDENTIFIER", github.id.as_str())];
    let message = unauthorized(report(&b, &body, &only_id).await, "no signature");
    assert!(message.contains("GITHUB-PUBLIC-KEY-SIGNATURE"), "{message}");
    // Same identifier, another key: a forger who read the key id.
    let message = unauthorized(signed(&b, &stranger, &body).await, "wrong key");
    assert!(message.contains("does not verify"), "{message}");
    // A genuine signature over another body.
    let other = matches(&[DOCUMENTED_TEST_TOKEN]);
    let genuine = github.sign(&other);
    let swapped = [
        ("GITHUB-PUBLIC-KEY-IDENTIFIER", github.id.as_str()),
        ("GITHUB-PUBLIC-KEY-SIGNATURE", genuine.as_str()),
    ];
    unauthorized(report(&b, &body, &swapped).await, "tampered body");
    let unknown = Partner::new("not-in-the-set");
    let message = unauthorized(signed(&b, &unknown, &body).await, "unknown key id");
    assert!(message.contains("does not know"), "{message}");
    assert_eq!(me(&b, &admin).await, 200, "nothing was revoked");

    // Signed but out of bounds.
    let many: Vec<&str> = vec![DOCUMENTED_TEST_TOKEN; 1001];
    let (status, answer) = signed(&b, &github, &matches(&many)).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["field"], "body", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("1000"),
        "{answer}"
    );
    let (status, answer) = signed(&b, &github, "[]").await;
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = signed(&b, &github, r#"[{"type":"x"}]"#).await;
    assert_eq!(
        (status, &answer["field"]),
        (422, &json!("[0].token")),
        "{answer}"
    );
    let (status, answer) = signed(&b, &github, r#"{"token":"x"}"#).await;
    assert_eq!(status, 400, "{answer}");
    // 1000 is fine.
    let (status, answer) = signed(&b, &github, &matches(&many[..1000])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.as_array().unwrap().len(), 1000);
    assert_eq!(me(&b, &admin).await, 200);
    let _ = std::fs::remove_file(keys);
}

#[tokio::test]
async fn without_a_key_set_the_endpoint_is_not_there() {
    let server = start(&[]);
    let github = Partner::new("github-current");
    let report_body = matches(&[DOCUMENTED_TEST_TOKEN]);
    // Unsigned is unauthenticated, configured or not (and counted as a failure).
    let (status, body) = report(&server.base, &report_body, &[]).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = signed(&server.base, &github, &report_body).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "NOT_FOUND");
    assert!(
        body["hint"]
            .as_str()
            .unwrap()
            .contains("FLEETPASS_SECRET_SCANNING_KEYS_FILE"),
        "{body}"
    );
}

#[test]
fn a_bad_key_set_stops_the_server_naming_the_variable() {
    let mut server = spawn(&[(
        "FLEETPASS_SECRET_SCANNING_KEYS",
        r#"{"public_keys":[{"key_identifier":"k","key":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}]}"#,
    )]);
    // Bounded: a server that started anyway is stopped (by its own pid) when dropped.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server started with a bad key set"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("FLEETPASS_SECRET_SCANNING_KEYS"),
        "{stderr}"
    );
}

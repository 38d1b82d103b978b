//! The `/docs` reference over a real server: every `curl` example on the page, run as
//! printed (with the reader's variables filled in), answers its documented status; the
//! page is strict-CSP HTML that a real headless browser renders, with screenshots of the
//! seed operations kept under the target directory; and every `fleetpass … --help`
//! shows examples.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use fleetpass_store_postgres::testing::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const ADMIN_KEY: &str = "docs-test-platform-key-0123456789";

/// One example of the page: operation id, documented status, command.
struct Example {
    op: String,
    status: String,
    command: String,
}

fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> String {
    tag.split(&format!("{name}=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

/// The `<pre class="curl" …><code>…</code></pre>` blocks of the page.
fn examples(page: &str) -> Vec<Example> {
    page.split("<pre class=\"curl\"")
        .skip(1)
        .map(|block| {
            let (tag, rest) = block.split_once('>').expect("tag");
            let code = rest
                .trim_start_matches("<code>")
                .split("</code>")
                .next()
                .expect("code");
            Example {
                op: attr(tag, "data-op"),
                status: attr(tag, "data-status"),
                command: unescape(code),
            }
        })
        .collect()
}

async fn ok(method: Method, url: String, token: &str, body: Option<Value>, want: u16) -> Value {
    let (status, value) = call(method, &url, token, body).await;
    assert_eq!(status, want, "{url}: {value}");
    value
}

/// A tenant with one of everything the examples name, as the shell variables of the
/// page.
async fn variables(base: &str) -> BTreeMap<&'static str, String> {
    let s = |v: &Value, k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .to_owned()
    };
    let mut vars = BTreeMap::new();
    vars.insert("FLEETPASS_URL", base.to_owned());
    vars.insert("FLEETPASS_ADMIN_KEY", ADMIN_KEY.to_owned());
    let tenant = ok(
        Method::POST,
        format!("{base}/platform/tenants"),
        ADMIN_KEY,
        Some(json!({"name": "docs"})),
        201,
    )
    .await;
    let admin = s(&tenant, "adminToken");
    vars.insert("TENANT_ID", s(&tenant, "tenantId"));
    vars.insert("FLEETPASS_TOKEN", admin.clone());
    let post = |path: &str, body: Value, want: u16| {
        ok(
            Method::POST,
            format!("{base}{path}"),
            &admin,
            Some(body),
            want,
        )
    };
    let env = post("/api/admin/environments", json!({"name": "qa"}), 201).await;
    vars.insert("ENVIRONMENT_ID", s(&env, "id"));
    let user = post(
        "/api/admin/users",
        json!({"email": "grace@example.com", "role": "viewer"}),
        201,
    )
    .await;
    vars.insert("USER_ID", s(&user, "id"));
    let account = post(
        "/api/admin/service-accounts",
        json!({"name": "nightly", "role": "viewer"}),
        201,
    )
    .await;
    vars.insert("SERVICE_ACCOUNT_ID", s(&account, "id"));
    let token =
        json!({"name": "spare", "role": "viewer", "allEnvironments": true, "expiresInDays": 1});
    let spare = post("/api/admin/tokens", token.clone(), 201).await;
    vars.insert("TOKEN_ID", s(&spare, "id"));
    let leaked = post("/api/admin/tokens", token, 201).await;
    vars.insert("LEAKED_SECRET", s(&leaked, "token"));
    let fleet = post("/tenant/discovery/fleets", json!({"name": "docs"}), 201).await;
    let fleet_id = s(&fleet, "fleetId");
    vars.insert("FLEET_ID", fleet_id.clone());
    let issue = format!("/tenant/discovery/fleets/{fleet_id}/enrollment-tokens");
    let enrollment = post(&issue, json!({"maxUses": 5}), 201).await;
    vars.insert("ENROLLMENT_TOKEN", s(&enrollment, "enrollmentToken"));
    vars.insert("ENROLLMENT_TOKEN_ID", s(&enrollment, "id"));
    let (status, agent) = post_json(
        &format!("{base}/agent/enroll"),
        None,
        json!({"enrollmentToken": s(&enrollment, "enrollmentToken"), "hostname": "docs-01",
            "platform": "linux-x86_64"}),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    let access = s(&agent, "accessToken");
    vars.insert("AGENT_ID", s(&agent, "agentId"));
    vars.insert("AGENT_SECRET", s(&agent, "agentSecret"));
    vars.insert("AGENT_ACCESS_TOKEN", access.clone());
    // A completed scan with a share link, for the share examples.
    let done = post(
        "/tenant/scans",
        json!({"fleetId": fleet_id, "scenario": "inventory"}),
        202,
    )
    .await;
    let done = s(&done, "scanId");
    ok(
        Method::POST,
        format!("{base}/agent/jobs/claim"),
        &access,
        None,
        200,
    )
    .await;
    ok(
        Method::POST,
        format!("{base}/agent/scans/{done}/results"),
        &access,
        Some(json!({"assets": [{"hostname": "db-1", "ip": "10.0.0.5", "os": "Debian 12"}]})),
        200,
    )
    .await;
    let link = post(&format!("/tenant/scans/{done}/share-links"), json!({}), 201).await;
    vars.insert("SHARE_TOKEN", s(&link, "token"));
    vars.insert("SHARE_LINK_ID", s(&link, "id"));
    // A queued scan: the claim example claims it, the results example completes it,
    // and the scan examples after them read and share it.
    let queued = post(
        "/tenant/scans",
        json!({"fleetId": fleet_id, "scenario": "inventory"}),
        202,
    )
    .await;
    vars.insert("SCAN_ID", s(&queued, "scanId"));
    // Newer, so the claim example takes the one above: the cancel example's.
    let to_cancel = post(
        "/tenant/scans",
        json!({"fleetId": fleet_id, "scenario": "inventory"}),
        202,
    )
    .await;
    vars.insert("QUEUED_SCAN_ID", s(&to_cancel, "scanId"));
    let schedule = post(
        "/tenant/schedules",
        json!({"fleetId": fleet_id, "scenario": "inventory",
        "intervalMinutes": 60, "enabled": false}),
        201,
    )
    .await;
    vars.insert("SCHEDULE_ID", s(&schedule, "scheduleId"));
    vars
}

/// Runs one example as printed, pasted into a real `bash` whose environment holds the
/// variables (and nothing the page does not name: `set -u` stops at any other), with
/// `curl` wrapped to print only the status; returns the status.
fn run(command: &str, vars: &BTreeMap<&'static str, String>) -> String {
    let script = format!(
        "set -u\ncurl() {{ command curl -s -o /dev/null -w '%{{http_code}}' \"$@\"; }}\n{command}\n"
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("bash runs curl");
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    if status.is_empty() {
        return format!(
            "nothing (bash: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    status
}

/// A secret-scanning partner's signing key, as GitHub holds its own.
struct Partner(ring::signature::EcdsaKeyPair);

impl Partner {
    const ID: &str = "docs-partner-key";

    fn new() -> Self {
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("a key pair");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("the key pair loads");
        Self(pair)
    }

    /// The key set naming this key, in GitHub's JSON.
    fn key_set(&self) -> String {
        use p256::pkcs8::EncodePublicKey as _;
        use ring::signature::KeyPair as _;
        let pem = p256::ecdsa::VerifyingKey::from_sec1_bytes(self.0.public_key().as_ref())
            .expect("a P-256 point")
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .expect("PEM");
        serde_json::json!({"public_keys": [
            {"key_identifier": Self::ID, "key": pem, "is_current": true}
        ]})
        .to_string()
    }

    fn sign(&self, body: &str) -> String {
        use base64::Engine as _;
        let signature = self
            .0
            .sign(&ring::rand::SystemRandom::new(), body.as_bytes())
            .expect("signs");
        base64::engine::general_purpose::STANDARD.encode(signature.as_ref())
    }
}

#[tokio::test]
async fn every_curl_example_on_the_page_answers_as_documented() {
    let db = TestDatabase::fresh().await;
    let partner = Partner::new();
    let key_set = partner.key_set();
    let server = start(&[
        ("DATABASE_URL", db.url()),
        ("FLEETPASS_ADMIN_KEY", ADMIN_KEY),
        ("FLEETPASS_SECRET_SCANNING_KEYS", key_set.as_str()),
    ]);
    let res = reqwest::get(format!("{}/docs", server.base))
        .await
        .expect("answers");
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    let page = res.text().await.expect("html");
    let mut all = examples(&page);
    let doc: Value = reqwest::get(format!("{}/openapi.json", server.base))
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let operations = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().expect("methods").len())
        .sum::<usize>();
    assert_eq!(all.len(), operations, "one example per operation");
    let mut vars = variables(&server.base).await;
    // The partner's report is signed over the exact bytes curl sends: the
    // here-document's text and its final newline.
    let report = all
        .iter()
        .find(|e| e.op == "github")
        .expect("the partner endpoint's example");
    let sent = report
        .command
        .split_once("<<EOF\n")
        .and_then(|(_, rest)| rest.rsplit_once("\nEOF"))
        .map(|(body, _)| format!("{body}\n"))
        .expect("a here-document body");
    vars.insert("PARTNER_KEY_ID", Partner::ID.to_owned());
    vars.insert("PARTNER_SIGNATURE", partner.sign(&sent));
    // The variables the test sets are exactly the ones the page tells the reader of.
    let listed: Vec<&str> = fleetpass_http::docs::EXAMPLE_VARIABLES
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let set: Vec<&str> = vars.keys().copied().collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_unstable();
    assert_eq!(set, listed_sorted, "the page's variable table");
    for name in &listed {
        assert!(
            page.contains(&format!("<code>${name}</code>")),
            "{name} on the page"
        );
    }
    // Deletions last, the fleet (with its agents) after everything in it.
    let rank = |e: &Example| match (e.command.starts_with("curl -X DELETE"), e.op.as_str()) {
        (false, _) => 0,
        (true, "delete_fleet") => 2,
        (true, _) => 1,
    };
    all.sort_by_key(rank);
    let mut wrong = Vec::new();
    for example in &all {
        let got = run(&example.command, &vars);
        if got != example.status {
            wrong.push(format!(
                "{} answered {got}, documented {}:\n{}",
                example.op, example.status, example.command
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} examples:\n{}",
        wrong.len(),
        all.len(),
        wrong.join("\n\n")
    );
    // The guides' shell snippets run start to finish with the same variables.
    let guides = concat!(env!("CARGO_MANIFEST_DIR"), "/../http/src/guides");
    let mut snippets = 0;
    for entry in std::fs::read_dir(guides).expect("the guides") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        for block in text.split("```sh\n").skip(1) {
            let block = block.split_once("```").expect("its end").0;
            let out = Command::new("bash")
                .arg("-c")
                .arg(format!("set -euo pipefail\n{block}"))
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
                .output()
                .expect("bash runs");
            assert!(
                out.status.success(),
                "{}: {block}\n{}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            snippets += 1;
        }
    }
    assert!(snippets >= 1, "the guides' snippets ran");
}

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("Debian's chromium is needed for the browser test: `cargo xtask test` installs it (apt-get install chromium)")
}

/// Runs headless Chromium on `url` with `args`; returns stdout.
fn headless(url: &str, args: &[&str]) -> String {
    let profile =
        std::env::temp_dir().join(format!("fleetpass-docs-chromium-{}", std::process::id()));
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
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

/// Where the screenshots are kept: `<target dir>/test-artifacts/`.
fn artifacts() -> PathBuf {
    let target = option_env!("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

#[tokio::test]
async fn the_reference_renders_in_a_real_browser_with_the_seed_operations() {
    let server = start(&[]);
    let url = format!("{}/docs", server.base);
    let dom = headless(&url, &["--dump-dom"]);
    for text in [
        // Seed 002: the token-creation operation with its fields and bounds.
        "op-create_token",
        "expiresInDays",
        "1-365",
        "\"admin\" | \"operator\" | \"viewer\"",
        // Seed 001: the share alias with its fields, defaults and enum.
        "op-create_share_alias",
        "\"report\" | \"bundle\" | \"passport\"",
        "default 168",
        "1-10000",
        // Guides rendered from markdown, not shown raw.
        "<strong>Idempotency.</strong>",
        "The enrollment flow",
        "Verifying a passport.",
    ] {
        assert!(dom.contains(text), "the page should show {text:?}");
    }
    assert!(!dom.contains("**Idempotency.**"), "markdown is rendered");
    for (anchor, file) in [
        ("op-create_token", "docs-create-token.png"),
        ("op-create_share_alias", "docs-share-link.png"),
    ] {
        let shot = artifacts().join(file);
        let _ = std::fs::remove_file(&shot);
        headless(
            &format!("{url}#{anchor}"),
            &[
                &format!("--screenshot={}", shot.display()),
                "--window-size=1400,1800",
                "--hide-scrollbars",
            ],
        );
        let bytes = std::fs::read(&shot).expect("chromium wrote the screenshot");
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "a real PNG of {anchor}"
        );
    }
}

#[test]
fn every_help_says_what_fleetpass_is_and_shows_examples() {
    let help = |args: &[&str]| {
        let out = command(&[])
            .args(args)
            .arg("--help")
            .output()
            .expect("runs");
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&[]);
    assert!(
        top.starts_with("Fleetpass: a multi-tenant control plane for discovery fleets"),
        "{top}"
    );
    for args in [
        &[][..],
        &["serve"],
        &["migrate"],
        &["tenant"],
        &["tenant", "create"],
        &["keys"],
        &["keys", "rotate"],
        &["keys", "list"],
        &["keys", "retire"],
        &["keys", "new-master-key"],
    ] {
        let text = help(args);
        assert!(
            text.contains("Example:") || text.contains("Examples:"),
            "`fleetpass {} --help` shows an example:\n{text}",
            args.join(" ")
        );
    }
}

//! Black-box tests of issue 17, "the first hour of a new user": each test runs the
//! `fleetpass` binary as a new operator would and names the item it shows.

mod support;

use std::process::Output;

use fleetpass_store_postgres::testing::TestDatabase;
use serde_json::Value;
use support::*;

/// A second master key, not the one the test processes use by default.
const OTHER_MASTER_KEY: &str = "HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

/// Runs `fleetpass ARGS` with `envs` and returns what it did.
fn run(envs: &[(&str, &str)], args: &[&str]) -> Output {
    command(envs).args(args).output().expect("runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The kids `keys list` shows, and its lines.
fn listed(url: &str) -> Vec<String> {
    let out = run(&[("DATABASE_URL", url)], &["keys", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}

/// Item 1: `keys rotate` under another master key succeeded and locked every later
/// start out; the help minted a fresh key per start; `keys retire` asked for a master
/// key the docs say it does not need.
#[tokio::test]
async fn a_wrong_master_key_is_refused_before_anything_is_written() {
    let db = TestDatabase::fresh().await;
    let url = db.url().to_owned();
    let first = run(&[("DATABASE_URL", &url)], &["keys", "rotate"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(listed(&url).len(), 1);

    let wrong = [
        ("DATABASE_URL", url.as_str()),
        ("FLEETPASS_MASTER_KEY", OTHER_MASTER_KEY),
    ];
    let refused = run(&wrong, &["keys", "rotate"]);
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("master key")
            && message.contains("nothing was changed")
            && message.contains("fleetpass keys retire")
            && message.contains("docs/OPERATIONS.md"),
        "the refusal names what is wrong and how to recover: {message}"
    );
    assert_eq!(listed(&url).len(), 1, "nothing was written");
    let list = run(&wrong, &["keys", "list"]);
    assert!(
        stdout(&list).contains("the configured master key cannot open it"),
        "{}",
        stdout(&list)
    );

    // A start under the wrong key is refused the same way, and writes nothing.
    let mut wrong_start = spawn(&wrong);
    let status = wrong_start.child.wait().expect("exits");
    assert!(!status.success());
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut wrong_start.child.stderr.take().expect("piped"),
        &mut text,
    )
    .expect("stderr");
    assert!(text.contains("nothing was changed"), "{text}");
    assert_eq!(listed(&url).len(), 1);
    // The right key still starts.
    drop(start(&[("DATABASE_URL", &url)]));

    // The documented recovery from a lost master key, exactly as written: retire the
    // keys (no master key needed), then start with a new master key.
    let kid = listed(&url)[0]
        .split_whitespace()
        .next()
        .expect("a kid")
        .to_owned();
    let retired = command(&[("DATABASE_URL", &url), ("FLEETPASS_MASTER_KEY_FILE", "")])
        .args(["keys", "retire", &kid])
        .output()
        .expect("runs");
    assert!(retired.status.success(), "{}", stderr(&retired));
    let fresh = start(&wrong);
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", fresh.base))
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_ne!(keys[0]["kid"], kid.as_str());

    // The help no longer mints a master key per start.
    let help = stdout(&run(&[], &["--help"]));
    assert!(
        !help.contains("=$(fleetpass keys new-master-key)"),
        "{help}"
    );
}

/// Every `FLEETPASS_*` name the README, docs/, the /docs guides and the agent's
/// command line give a user.
fn documented_names() -> std::collections::BTreeSet<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut files: Vec<std::path::PathBuf> = vec![
        format!("{root}/README.md").into(),
        format!("{root}/crates/agent/src/main.rs").into(),
    ];
    for dir in ["docs", "crates/http/src/guides"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).expect("a docs directory") {
            let path = entry.expect("an entry").path();
            if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for (at, _) in text.match_indices("FLEETPASS_") {
            // Inside a longer word (the documented test token `fpk_FLEETPASS_…`) it
            // names no variable.
            if text[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                continue;
            }
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            names.insert(name.trim_end_matches('_').to_owned());
        }
    }
    names
}

/// Item 3: with a documented variable such as `FLEETPASS_URL` in the environment the
/// server refused to start, and even `keys new-master-key` exited 2, so the README's
/// `export FLEETPASS_MASTER_KEY=$(…)` was silently empty.
#[test]
fn documented_settings_are_accepted_and_typos_still_refused() {
    let names = documented_names();
    for name in [
        "FLEETPASS_URL",
        "FLEETPASS_TOKEN",
        "FLEETPASS_SERVER",
        "FLEETPASS_AGENT_STATE",
        "FLEETPASS_AGENT_LOG",
    ] {
        assert!(names.contains(name), "{name} is documented");
    }
    // Documented names other than the server's own settings (the README's table), with
    // any value, and the server still starts.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("the README");
    let settings: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|n| n.starts_with("FLEETPASS_"))
        .collect();
    assert!(settings.contains(&"FLEETPASS_BIND"), "{settings:?}");
    let others: Vec<(&str, &str)> = names
        .iter()
        // The README's example of a typo is not a setting.
        .filter(|n| !settings.contains(&n.as_str()) && *n != "FLEETPASS_BINDD")
        .map(|n| (n.as_str(), "some value"))
        .collect();
    assert!(others.len() >= 5, "{others:?}");
    let mut server = spawn(&others);
    wait_listening(&mut server);
    drop(server);

    // A command that takes no server configuration ignores even a broken one.
    let broken = [("FLEETPASS_BIND", "nowhere"), ("FLEETPASS_BINDD", "x")];
    let key = run(&broken, &["keys", "new-master-key"]);
    assert!(key.status.success(), "{}", stderr(&key));
    assert!(stdout(&key).trim().len() >= 43);
    let verify = run(
        &broken,
        &[
            "passport",
            "verify",
            "--passport",
            "/nonexistent",
            "--jwks",
            "/nonexistent",
        ],
    );
    assert!(
        stderr(&verify).contains("passport NOT verified: cannot read --jwks"),
        "{}",
        stderr(&verify)
    );

    // A typo is still refused, naming the setting it resembles.
    let typo = run(&[("FLEETPASS_BINDD", "127.0.0.1:1")], &["serve"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        stderr(&typo).contains("FLEETPASS_BINDD: unknown setting; did you mean FLEETPASS_BIND?"),
        "{}",
        stderr(&typo)
    );
}

/// Item 4: exit codes and messages of the command line.
#[tokio::test]
async fn failures_exit_2_with_messages_that_say_what_and_where() {
    // A runtime failure exits 2, and a closed port is named.
    let closed = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{closed}/fleetpass");
    let out = run(&[("DATABASE_URL", &url)], &["migrate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("127.0.0.1:{closed}")),
        "{}",
        stderr(&out)
    );

    // A bad bind stops the server before it logs `listening` or hands out a token.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let bind = taken.local_addr().expect("bound").to_string();
    let out = run(&[("FLEETPASS_BIND", &bind)], &["serve"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Failed to bind"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("listening"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("token"), "{}", stdout(&out));

    // `keys list` says when there are none, uses RFC 3339 and marks the signing key;
    // no command repeats the server's NOTICE about the migrations table.
    let db = TestDatabase::fresh().await;
    let url = db.url().to_owned();
    let empty = run(&[("DATABASE_URL", &url)], &["keys", "list"]);
    assert!(
        stdout(&empty).contains("no signing keys yet"),
        "{}",
        stdout(&empty)
    );
    assert!(!stderr(&empty).contains("NOTICE"), "{}", stderr(&empty));
    for _ in 0..2 {
        let out = run(&[("DATABASE_URL", &url)], &["keys", "rotate"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stderr(&out).contains("NOTICE"), "{}", stderr(&out));
    }
    let lines = listed(&url);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with("active, verifies"), "{lines:?}");
    assert!(lines[1].ends_with("active, signs"), "{lines:?}");
    let created = lines[0].split_whitespace().nth(2).expect("a time");
    assert!(
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{created}"
    );

    // `tenant create` says it needs DATABASE_URL, and a duplicate name says so plainly.
    let help = stdout(&run(&[], &["tenant", "create", "--help"]));
    assert!(
        help.contains("needs DATABASE_URL") && !help.contains("in memory:"),
        "{help}"
    );
    cli_tenant(&url, "acme");
    let again = run(
        &[("DATABASE_URL", &url)],
        &["tenant", "create", "--name", "acme"],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("a tenant named \"acme\" already exists")
            && !stderr(&again).contains("conflict on"),
        "{}",
        stderr(&again)
    );
}

/// A TCP proxy in front of the test PostgreSQL server that a test can cut (closing
/// every connection through it) and restore on the same port.
struct Proxy {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn new() -> Self {
        let mut proxy = Self {
            port: free_port(),
            task: None,
        };
        proxy.restore().await;
        proxy
    }

    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the proxy's port");
        self.task = Some(tokio::spawn(async move {
            // Dropping the set (when the task is aborted) aborts every connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:5432").await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Item 4: during a database outage the auth-change listener warned every second, and
/// nothing said when it had recovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_listener_backs_off_during_an_outage_and_says_when_it_is_back() {
    let db = TestDatabase::fresh().await;
    let mut proxy = Proxy::new().await;
    let url = format!("postgres://postgres@127.0.0.1:{}/{}", proxy.port, db.name());
    let mut server = spawn(&[("DATABASE_URL", &url)]);
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let pipe = server.child.stderr.take().expect("piped stderr");
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(pipe)).map_while(Result::ok) {
            lines.lock().expect("the log").push(line);
        }
    });
    wait_listening(&mut server);
    let listener_lines = |from: usize| -> Vec<String> {
        log.lock().expect("the log")[from..]
            .iter()
            .filter(|l| l.contains("auth-change listener"))
            .cloned()
            .collect()
    };
    // Let the listener subscribe, then take the database away for 7 s.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let cut_at = log.lock().expect("the log").len();
    proxy.cut();
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    let during = listener_lines(cut_at);
    assert_eq!(during.len(), 1, "one warning per outage: {during:#?}");
    assert!(during[0].contains("WARN"), "{during:#?}");

    proxy.restore().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let after = listener_lines(cut_at);
        if after.iter().any(|l| l.contains("has reconnected")) {
            assert_eq!(after.len(), 2, "{after:#?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line says the listener is back: {after:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    drop(server);
    proxy.cut();
}

/// Item 6, over a real socket on PostgreSQL: `Location` on a 201 (schedules too), an
/// unknown query parameter named, a secret of the wrong kind named, and a revoked
/// agent told about agent credentials rather than `x-api-key`.
#[tokio::test]
async fn the_api_says_where_what_and_which_kind() {
    let db = TestDatabase::fresh().await;
    let url = db.url().to_owned();
    let admin = cli_tenant(&url, "acme");
    let server = start(&[("DATABASE_URL", &url)]);
    let b = &server.base;
    let client = reqwest::Client::new();
    let fleet = client
        .post(format!("{b}/tenant/discovery/fleets"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("answers");
    assert_eq!(fleet.status().as_u16(), 201);
    let location = fleet.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    let fleet: Value = fleet.json().await.expect("json");
    assert_eq!(
        location,
        format!(
            "/tenant/discovery/fleets/{}",
            fleet["fleetId"].as_str().expect("id")
        )
    );
    let schedule = client
        .post(format!("{b}/tenant/schedules"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"fleetId": fleet["fleetId"], "scenario": "inventory", "intervalMinutes": 60}))
        .send()
        .await
        .expect("answers");
    assert_eq!(schedule.status().as_u16(), 201);
    let location = schedule.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    let (status, got) = call(
        reqwest::Method::GET,
        &format!("{b}{location}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{got}");

    let (status, body) = call(
        reqwest::Method::GET,
        &format!("{b}/tenant/scans?hostname=vm"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "hostname", "{body}");

    // An enrollment token sent as an API token.
    let enrollment = fleet["enrollmentToken"].as_str().expect("fpe_").to_owned();
    let (status, body) = call(
        reqwest::Method::GET,
        &format!("{b}/api/me"),
        &enrollment,
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("an enrollment token, not an API token")),
        "{body}"
    );

    // A revoked agent hears about agent credentials.
    let (status, enrolled) = post_json(
        &format!("{b}/agent/enroll"),
        None,
        serde_json::json!({"enrollmentToken": enrollment, "hostname": "h", "platform": "linux"}),
    )
    .await;
    assert_eq!(status, 201, "{enrolled}");
    let agent_id = enrolled["agentId"].as_str().expect("id");
    let (status, _) = call(
        reqwest::Method::DELETE,
        &format!("{b}/tenant/discovery/agents/{agent_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let access = enrolled["accessToken"].as_str().expect("jwt");
    let (status, body) = post_json(
        &format!("{b}/agent/heartbeat"),
        Some(access),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let hint = body["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("enroll it again") && !hint.contains("x-api-key"),
        "{body}"
    );
    let (status, body) = post_json(
        &format!("{b}/agent/token"),
        None,
        serde_json::json!({"agentId": agent_id, "agentSecret": enrolled["agentSecret"]}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        !body["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("x-api-key"),
        "{body}"
    );
}

/// Item 8: the server's help names its log settings and the agent's.
#[test]
fn the_servers_help_names_the_log_settings() {
    let help = stdout(&run(&[], &["--help"]));
    for needle in [
        "Examples:",
        "FLEETPASS_LOG",
        "FLEETPASS_LOG_FORMAT",
        "FLEETPASS_AGENT_LOG",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}

/// Item 2: the README's round by hand never said where `$SCAN` and `$ACCESS_TOKEN`
/// come from. It runs, as printed, in a real `bash` against a memory-mode server,
/// with only `TOKEN` (the demo token the server printed) and `B` set.
#[test]
fn the_readme_round_runs_in_bash_as_printed() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("the README");
    let after = readme
        .split_once("A whole round, by hand")
        .expect("the round")
        .1;
    let block = after
        .split_once("```sh\n")
        .expect("its block")
        .1
        .split_once("```")
        .expect("its end")
        .0;
    // The reader replaces the placeholder with the token; so does the test.
    let mut server = start(&[]);
    let token = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    let block = block.replace("export TOKEN=fpk_…", &format!("export TOKEN={token}"));
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{block}"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("B", &server.base)
        .output()
        .expect("bash runs");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    // curl prints the answers back to back, without newlines.
    let answers: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .map(|a| a.unwrap_or_else(|e| panic!("{e}: {text}")))
        .collect();
    let last = answers.last().expect("the share link");
    assert!(
        last["url"]
            .as_str()
            .is_some_and(|u| u.contains("/share/fps_")),
        "{text}"
    );
    assert!(text.contains("\"status\":\"completed\""), "{text}");
}

/// The `sh` blocks of docs/PASSPORTS.md's "Verifying by hand".
fn by_hand_snippets() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/PASSPORTS.md"
    ))
    .expect("docs/PASSPORTS.md");
    let section = doc
        .split_once("## Verifying by hand")
        .expect("the section")
        .1;
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split_once("```").expect("its end").0.to_owned())
        .collect()
}

/// Item 7: bundles are RFC 8785 and the docs' Python and jq snippets hash a bundle
/// with non-ASCII text to its `bundleSha256`; the share page, its JSON and `passport
/// verify` name the tenant and the fleet; `passport verify <url>` spends one access.
#[tokio::test]
async fn passports_hash_by_rfc_8785_name_tenant_and_fleet_and_verify_in_one_access() {
    let mut server = start(&[]);
    let admin = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    let b = server.base.clone();
    let (_, fleet) = post_json(
        &format!("{b}/tenant/discovery/fleets"),
        Some(&admin),
        serde_json::json!({"name": "Rechenzentrum Süd"}),
    )
    .await;
    let (_, agent) = post_json(
        &format!("{b}/agent/enroll"),
        None,
        serde_json::json!({"enrollmentToken": fleet["enrollmentToken"], "hostname": "h", "platform": "linux"}),
    )
    .await;
    let access = agent["accessToken"].as_str().expect("jwt").to_owned();
    let (_, scan) = post_json(
        &format!("{b}/tenant/scans"),
        Some(&admin),
        serde_json::json!({"fleetId": fleet["fleetId"], "scenario": "inventory"}),
    )
    .await;
    let id = scan["scanId"].as_str().expect("id").to_owned();
    post_json(
        &format!("{b}/agent/jobs/claim"),
        Some(&access),
        serde_json::json!({}),
    )
    .await;
    let results = serde_json::json!({
        "assets": [{"hostname": "сервер-1", "ip": "10.0.0.5", "os": "Debian 12 — “bookworm”", "openPorts": [22],
                    "software": [{"name": "naïve-𝔘tils", "version": "1.0"}]}],
        "findings": [{"severity": "low", "title": "Grüße, \"quoted\" \\ and tab\there", "assetHostname": "сервер-1"}]
    });
    let (status, done) = post_json(
        &format!("{b}/agent/scans/{id}/results"),
        Some(&access),
        results,
    )
    .await;
    assert_eq!(status, 200, "{done}");

    // The docs' snippets, run as printed on the bundle, print its digest.
    let bundle = reqwest::Client::new()
        .get(format!("{b}/tenant/scans/{id}/bundle"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("text");
    let expected = serde_json::from_str::<Value>(&bundle).expect("json")["bundleSha256"]
        .as_str()
        .expect("digest")
        .to_owned();
    let dir = std::env::temp_dir().join(format!("fleetpass-by-hand-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    std::fs::write(dir.join("bundle.json"), &bundle).expect("written");
    let snippets = by_hand_snippets();
    assert_eq!(snippets.len(), 2, "Python and jq");
    for snippet in &snippets {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{snippet}"))
            .current_dir(&dir)
            .output()
            .expect("bash runs");
        assert_eq!(stdout(&out).trim(), expected, "{snippet}\n{}", stderr(&out));
    }
    // Python's default (ensure_ascii=True) does not: the docs say why.
    let ascii = std::process::Command::new("python3")
        .arg("-c")
        .arg("import hashlib, json, sys\nb = json.load(open('bundle.json'))['bundle']\nprint(hashlib.sha256(json.dumps(b, sort_keys=True, separators=(',', ':')).encode()).hexdigest())")
        .current_dir(&dir)
        .output()
        .expect("python runs");
    assert_ne!(stdout(&ascii).trim(), expected);
    std::fs::remove_dir_all(&dir).expect("removed");

    // One access for the whole verification, names in the output.
    let (status, link) = post_json(
        &format!("{b}/tenant/scans/{id}/share-links"),
        Some(&admin),
        serde_json::json!({"maxAccesses": 1}),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().expect("url");
    let out = command(&[])
        .args(["passport", "verify", url])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.contains("of fleet \"Rechenzentrum Süd\" (") && said.contains("(tenant \"demo\" ("),
        "{said}"
    );
    let (_, links) = call(
        reqwest::Method::GET,
        &format!("{b}/tenant/scans/{id}/share-links"),
        &admin,
        None,
    )
    .await;
    assert_eq!(links["items"][0]["accessCount"], 1, "{links}");

    // The share page and its JSON name them too.
    let (_, link) = post_json(
        &format!("{b}/tenant/scans/{id}/share-links"),
        Some(&admin),
        serde_json::json!({}),
    )
    .await;
    let url = link["url"].as_str().expect("url");
    let json: Value = reqwest::get(url)
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (json["tenantName"].as_str(), json["fleetName"].as_str()),
        (Some("demo"), Some("Rechenzentrum Süd")),
        "{json}"
    );
    let page = reqwest::Client::new()
        .get(url)
        .header("Accept", "text/html")
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("Shared by tenant <b>demo (")
            && page.contains("fleet <b>Rechenzentrum Süd ("),
        "{page}"
    );
}

/// Item 5 (the part outside the HTTP middleware): a JSON log line carried the
/// request's fields twice, under `span` and again under `spans`.
#[tokio::test]
async fn json_log_lines_carry_the_request_fields_once() {
    let mut server = spawn(&[("FLEETPASS_LOG_FORMAT", "json")]);
    let pipe = server.child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(pipe)).map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    wait_listening(&mut server);
    reqwest::get(format!("{}/healthz", server.base))
        .await
        .expect("answers");
    let line = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("a request line within 10 s");
        if line.contains("request finished") {
            break line;
        }
    };
    let json: Value = serde_json::from_str(&line).expect("one JSON object a line");
    assert!(json["span"]["request_id"].is_string(), "{json}");
    assert!(json.get("spans").is_none(), "{json}");
}

/// Item 4's bind-first order let a reader take the demo token and close the pipe
/// before the server printed its last line: `println!` then panicked on the broken
/// pipe and the server died under its first request (connection reset). A closed
/// stdout is no reason to stop serving.
#[tokio::test]
async fn a_closed_stdout_does_not_stop_the_server() {
    let mut server = spawn(&[]);
    drop(server.child.stdout.take());
    wait_listening(&mut server);
    for _ in 0..3 {
        let res = reqwest::get(format!("{}/healthz", server.base))
            .await
            .expect("the server still answers");
        assert_eq!(res.status().as_u16(), 200);
    }
    assert!(
        server.child.try_wait().expect("status").is_none(),
        "the server is still running"
    );
}

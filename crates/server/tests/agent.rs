//! Black-box test of the product's two halves together: a real `fleetpass` server
//! process, a real `fleetpass-agent` process that enrolls and runs scans of this
//! machine, and `fleetpass passport verify` checking the outcome through a share link
//! (and refusing it once a byte is altered).

mod support;

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// The agent binary: `FLEETPASS_AGENT_BIN`, or this build's, built now. Cargo builds
/// only this package's binaries for its tests, so `cargo test -p fleetpass --test agent`
/// alone would otherwise test a missing or stale agent.
fn agent_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("FLEETPASS_AGENT_BIN") {
        return bin.into();
    }
    let server = Path::new(env!("CARGO_BIN_EXE_fleetpass"));
    let profile_dir = server.parent().expect("the binary's directory");
    let target_dir = profile_dir.parent().expect("the target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "fleetpass-agent",
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building fleetpass-agent failed");
    profile_dir.join("fleetpass-agent")
}

/// An agent process, stopped (by its own pid) when dropped.
struct Agent {
    child: Child,
    logs: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent(bin: &Path, state: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FLEETPASS_AGENT_STATE", state)
        // The most talkative level, so that "never in the logs" covers every line.
        .env("FLEETPASS_AGENT_LOG", "trace");
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn this_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("the kernel's host name")
        .trim()
        .to_owned()
}

async fn get(url: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("answers");
    let status = res.status().as_u16();
    (status, res.bytes().await.expect("body").to_vec())
}

async fn wait_completed(base: &str, admin: &str, scan: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = get(&format!("{base}/tenant/scans/{scan}"), Some(admin)).await;
        let body: Value = serde_json::from_slice(&body).expect("json");
        if body["status"] == "completed" {
            return;
        }
        assert!(
            Instant::now() < deadline && body["status"] != "failed",
            "scan {scan} did not complete: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn verify(args: &[&str]) -> Output {
    Command::new(binary())
        .env_clear()
        .arg("passport")
        .arg("verify")
        .args(args)
        .output()
        .expect("fleetpass runs")
}

/// Flips one byte of `bytes` at the first occurrence of `needle`, within it.
fn flip(bytes: &[u8], needle: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the needle is there");
    let mut out = bytes.to_vec();
    out[at] = if out[at] == b'x' { b'y' } else { b'x' };
    out
}

#[tokio::test]
async fn a_real_agent_scans_this_host_and_the_passport_verifies_from_its_share_link() {
    let agent_bin = agent_binary();
    let mut server = start(&[]);
    let admin = token_from_stdout(&mut server, "Demo tenant admin token (shown once):");
    let base = server.base.clone();
    let (status, fleet) = post_json(
        &format!("{base}/tenant/discovery/fleets"),
        Some(&admin),
        json!({"name": "this machine"}),
    )
    .await;
    assert_eq!(status, 201, "{fleet}");
    let fleet_id = fleet["fleetId"].as_str().expect("fleet id").to_owned();
    let enrollment = fleet["enrollmentToken"].as_str().expect("token").to_owned();

    // Enroll: credentials go to a 0600 state file and nowhere else.
    let dir = std::env::temp_dir().join(format!("fleetpass-agent-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state_path = dir.join("agent/state.json");
    // A mistyped token is refused by its checksum, before anything is sent or saved.
    let mut typo = enrollment.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).expect("ASCII");
    let refused = agent(&agent_bin, &state_path)
        .args(["enroll", "--server", &base, "--token", &typo])
        .output()
        .expect("the agent runs");
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("bad checksum"),
        "{}",
        text(&refused)
    );
    assert!(!state_path.exists());
    let enrolled = agent(&agent_bin, &state_path)
        .args(["enroll", "--server", &base, "--token", &enrollment])
        .output()
        .expect("the agent runs");
    assert!(enrolled.status.success(), "{}", text(&enrolled));
    let mode = std::fs::metadata(&state_path)
        .expect("the state file exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the state file is private");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).expect("readable"))
            .expect("json");
    let secret = state["agentSecret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("fpa_"), "{state}");
    assert!(
        !text(&enrolled).contains(&secret),
        "enroll never prints the secret"
    );
    // A second enrollment does not overwrite the credentials it would lose.
    let again = agent(&agent_bin, &state_path)
        .args(["enroll", "--server", &base, "--token", &enrollment])
        .output()
        .expect("the agent runs");
    assert!(!again.status.success());
    assert!(text(&again).contains("--force"), "{}", text(&again));

    // Run it with its defaults (a 300 s check-in outstanding, a heartbeat at start),
    // logs to a file, and give it two scans once it waits: they complete within
    // `wait_completed`'s minute only because the held check-in is woken.
    let logs = dir.join("agent.log");
    let log_file = std::fs::File::create(&logs).expect("log file");
    let child = agent(&agent_bin, &state_path)
        .args([
            "run",
            "--poll-seconds",
            "300",
            "--heartbeat-seconds",
            "3600",
        ])
        .stdout(log_file.try_clone().expect("dup"))
        .stderr(log_file)
        .stdin(Stdio::null())
        .spawn()
        .expect("the agent starts");
    let mut running = Agent { child, logs };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut scans = Vec::new();
    for scenario in ["inventory", "software"] {
        let (status, scan) = post_json(
            &format!("{base}/tenant/scans"),
            Some(&admin),
            json!({"fleetId": fleet_id, "scenario": scenario}),
        )
        .await;
        assert_eq!(status, 202, "{scan}");
        scans.push(scan["scanId"].as_str().expect("scan id").to_owned());
    }
    for scan in &scans {
        wait_completed(&base, &admin, scan).await;
    }

    // The results describe this machine.
    let hostname = this_hostname();
    for scan in &scans {
        let (status, bundle) =
            get(&format!("{base}/tenant/scans/{scan}/bundle"), Some(&admin)).await;
        assert_eq!(status, 200);
        let bundle: Value = serde_json::from_slice(&bundle).expect("json");
        assert_eq!(
            bundle["bundle"]["assets"][0]["hostname"], hostname,
            "{bundle}"
        );
    }
    let (_, software) = get(
        &format!("{base}/tenant/scans/{}/bundle", scans[1]),
        Some(&admin),
    )
    .await;
    let software: Value = serde_json::from_slice(&software).expect("json");
    let packages = software["bundle"]["assets"][0]["software"]
        .as_array()
        .expect("a software list");
    assert!(
        !packages.is_empty()
            && packages
                .iter()
                .all(|p| p["name"].as_str().is_some_and(|n| !n.is_empty())),
        "at least one installed package: {software}"
    );
    let (_, agents) = get(
        &format!("{base}/tenant/discovery/fleets/{fleet_id}/agents"),
        Some(&admin),
    )
    .await;
    let agents: Value = serde_json::from_slice(&agents).expect("json");
    assert!(
        agents["items"][0]["lastSeenAt"].is_string(),
        "the agent heartbeats: {agents}"
    );

    // A share link, verified end to end by the auditor's command.
    let (status, link) = post_json(
        &format!("{base}/tenant/scans/{}/share-links", scans[1]),
        Some(&admin),
        json!({"label": "auditor"}),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().expect("url").to_owned();
    let out = verify(&[&url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("passport verified: software scan"),
        "{}",
        text(&out)
    );

    // The same three, saved as files: they verify; one altered byte does not.
    let (_, passport) = get(&format!("{url}/passport"), None).await;
    let (_, bundle) = get(&format!("{url}/bundle"), None).await;
    let (_, jwks) = get(&format!("{base}/.well-known/jwks.json"), None).await;
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("writable");
        path.display().to_string()
    };
    let (p, j, b) = (
        file("passport.json", &passport),
        file("jwks.json", &jwks),
        file("bundle.json", &bundle),
    );
    let out = verify(&["--passport", &p, "--jwks", &j, "--bundle", &b]);
    assert!(out.status.success(), "{}", text(&out));

    let tampered_bundle = file("bundle-tampered.json", &flip(&bundle, hostname.as_bytes()));
    let out = verify(&["--passport", &p, "--jwks", &j, "--bundle", &tampered_bundle]);
    assert!(!out.status.success(), "a tampered bundle must not verify");
    let reason = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        reason.contains("bundle digest mismatch") && reason.lines().count() == 1,
        "one line saying why: {reason}"
    );

    // One byte inside the JWS payload (after the first dot).
    let doc: Value = serde_json::from_slice(&passport).expect("json");
    let jws = doc["passport"].as_str().expect("jws");
    let payload = jws.split('.').nth(1).expect("payload");
    // The whole payload as the needle: a few of its bytes alone can recur in the
    // header (both encode `fleetpass…`), and flipping those would test the header.
    let mut tampered = passport.clone();
    let at = tampered
        .windows(payload.len())
        .position(|w| w == payload.as_bytes())
        .expect("the payload is in the document")
        + 10;
    tampered[at] = if tampered[at] == b'x' { b'y' } else { b'x' };
    let tampered_passport = file("passport-tampered.json", &tampered);
    let out = verify(&[
        "--passport",
        &tampered_passport,
        "--jwks",
        &j,
        "--bundle",
        &b,
    ]);
    assert!(!out.status.success(), "a tampered passport must not verify");
    let reason = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        reason.contains("bad signature") && reason.lines().count() == 1,
        "one line saying why: {reason}"
    );

    // SIGTERM stops the agent cleanly; its secret never reached its logs.
    let pid = running.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = running.child.try_wait().expect("waitable") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "a clean stop exits 0: {status}");
    let mut logs = String::new();
    std::fs::File::open(&running.logs)
        .expect("logs")
        .read_to_string(&mut logs)
        .expect("readable");
    assert!(logs.contains("scan completed and results sent"), "{logs}");
    assert!(logs.contains("stopping"), "{logs}");
    assert!(!logs.contains(&secret), "the agent secret is in its logs");
    assert!(
        !logs.contains(&secret[4..20]),
        "no part of the agent secret is in its logs"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The auditor's command reads no server configuration, and every failure is exit 1
/// with one line saying why (unreadable file, unreachable server, not a share link).
#[test]
fn passport_verify_needs_no_server_configuration_and_explains_failures() {
    let run = |args: &[&str]| {
        Command::new(binary())
            .env_clear()
            // Would stop `serve` with exit 2; the auditor's command never reads it.
            .env("FLEETPASS_NO_SUCH_SETTING", "1")
            .args(["passport", "verify"])
            .args(args)
            .output()
            .expect("fleetpass runs")
    };
    let port = free_port();
    let cases: [(Vec<String>, &str); 3] = [
        (
            vec![
                "--passport".into(),
                "/nonexistent/p".into(),
                "--jwks".into(),
                "/nonexistent/j".into(),
            ],
            "cannot read --jwks /nonexistent/j",
        ),
        (
            vec![format!("http://127.0.0.1:{port}/share/fps_gone")],
            "cannot fetch the passport",
        ),
        (
            vec!["https://example.com/not-a-share".into()],
            "not a share link",
        ),
    ];
    for (args, why) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("passport NOT verified: ")
                && stderr.contains(why)
                && stderr.lines().count() == 1,
            "{args:?}: {stderr}"
        );
    }
}

//! Black-box tests of the `fleetpass-agent` command line (issue 17, item 8): what a
//! user sees when enrollment cannot reach the server, and what `--help` shows.

use std::process::Command;
use std::time::{Duration, Instant};

use fleetpass_domain::secret::{PlainSecret, SecretKind};

fn agent() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetpass-agent"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

/// `enroll` against a port nobody listens on retried for about 90 s, saying only
/// "error sending request".
#[test]
fn enroll_against_a_closed_port_fails_at_once_with_the_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let token = PlainSecret::from_random(SecretKind::Enrollment, [3; 32]);
    let state =
        std::env::temp_dir().join(format!("fleetpass-agent-cli-{}.json", std::process::id()));
    let started = Instant::now();
    let out = agent()
        .args(["--state", state.to_str().expect("utf-8")])
        .args(["enroll", "--server", &format!("http://127.0.0.1:{port}")])
        .args(["--token", token.expose()])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to http://127.0.0.1:{port}"))
            && stderr.contains("Connection refused"),
        "{stderr}"
    );
    assert!(!state.exists());
}

#[test]
fn help_shows_examples_and_the_environment() {
    let help = |args: &[&str]| {
        let out = agent().args(args).output().expect("runs");
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&["--help"]);
    for needle in [
        "Examples:",
        "fleetpass-agent enroll --server",
        "FLEETPASS_AGENT_LOG",
        "FLEETPASS_AGENT_STATE",
        "FLEETPASS_SERVER",
    ] {
        assert!(top.contains(needle), "{needle}: {top}");
    }
    for sub in ["enroll", "run"] {
        let text = help(&[sub, "--help"]);
        assert!(text.contains("Examples:"), "{sub}: {text}");
    }
    let enroll = help(&["enroll", "--help"]);
    assert!(enroll.contains("--label <KEY=VALUE>"), "{enroll}");
}

/// A malformed `--label` is a usage error naming what is wrong, before any request:
/// the server address here has nothing listening, so a request would say so instead.
#[test]
fn a_malformed_label_is_refused_before_any_request() {
    let token = PlainSecret::from_random(SecretKind::Enrollment, [3; 32]);
    let state = std::env::temp_dir().join(format!(
        "fleetpass-agent-cli-label-{}.json",
        std::process::id()
    ));
    let enroll = |labels: &[&str]| {
        let mut cmd = agent();
        cmd.args(["--state", state.to_str().expect("utf-8")])
            .args(["enroll", "--server", "http://127.0.0.1:9", "--token"])
            .arg(token.expose());
        for label in labels {
            cmd.args(["--label", label]);
        }
        let out = cmd.output().expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = enroll(&["role"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("`role` is not KEY=VALUE"), "{stderr}");
    let (code, stderr) = enroll(&["Role=db"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("the key `Role` must be 1-63 characters"),
        "{stderr}"
    );
    let (code, stderr) = enroll(&["role=db ok"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("the value `db ok`"), "{stderr}");
    let (code, stderr) = enroll(&["role=db", "role=web"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--label role=… is given twice"), "{stderr}");
    assert!(!stderr.contains("cannot connect"), "{stderr}");
    assert!(!state.exists());
}

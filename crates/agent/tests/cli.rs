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
}

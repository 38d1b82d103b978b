//! Shared helpers of the black-box tests: run the `fleetpass` binary on a free port with
//! a chosen environment, read what it prints, and call it over HTTP.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running server process, stopped (by its own pid) when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The master key of every Postgres-mode process in these tests (any 32 bytes do).
pub const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The binary under test: this build's, or the one `FLEETPASS_TEST_BIN` names (to run
/// the black-box tests against another build, such as the commit before a fix).
pub fn binary() -> String {
    std::env::var("FLEETPASS_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_fleetpass").to_owned())
}

/// The binary with exactly `envs` (and PATH) in its environment, plus the test master
/// key for Postgres mode unless `envs` names one, and roomy per-address limits
/// ([`ROOMY_LIMITS`]) unless `envs` sets them.
pub fn command(envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    let postgres = envs.iter().any(|(k, _)| *k == "DATABASE_URL");
    if postgres
        && !envs
            .iter()
            .any(|(k, _)| k.starts_with("FLEETPASS_MASTER_KEY"))
    {
        cmd.env("FLEETPASS_MASTER_KEY", MASTER_KEY);
    }
    // Tests race dozens of requests from one address; the spec's per-address limits
    // (tested on their own in tests/guards.rs) would refuse them.
    for (var, roomy) in ROOMY_LIMITS {
        if !envs.iter().any(|(k, _)| *k == var) {
            cmd.env(var, roomy);
        }
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// The per-address limits of test processes unless a test sets its own.
pub const ROOMY_LIMITS: [(&str, &str); 2] = [
    ("FLEETPASS_PUBLIC_RATE_LIMIT", "100000"),
    ("FLEETPASS_AUTH_FAILURE_LIMIT", "100000"),
];

/// The `FLEETPASS_PUBLIC_URL` replicas of one service share: agent access tokens are
/// issued for it (their `aud`), so replicas with different URLs would refuse each
/// other's tokens, as two different services should.
pub const SERVICE_URL: &str = "http://fleetpass.test";

/// Starts `fleetpass serve` on a free port and waits until it listens.
pub fn start(envs: &[(&str, &str)]) -> Server {
    let mut server = spawn(envs);
    wait_listening(&mut server);
    server
}

/// Starts `fleetpass serve` on a free port, with stdout and stderr piped, and returns
/// at once (take the pipes before [`wait_listening`] when the server logs a lot).
pub fn spawn(envs: &[(&str, &str)]) -> Server {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut all = vec![("FLEETPASS_BIND", bind.as_str())];
    all.extend_from_slice(envs);
    let child = command(&all)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the fleetpass binary starts");
    Server {
        child,
        base: format!("http://{bind}"),
    }
}

/// Waits until `server` accepts connections; panics with its stderr if it exits first.
pub fn wait_listening(server: &mut Server) {
    let bind = server.base.trim_start_matches("http://").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(&bind).is_ok() {
            return;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = server.child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("the server exited with {status} before listening: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not start listening on {bind} within 30 s");
}

/// Reads stdout lines until one contains `marker` and returns the token after it.
pub fn token_from_stdout(server: &mut Server, marker: &str) -> String {
    let stdout = server.child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("a line with the token")
            .expect("readable stdout");
        if let Some((_, rest)) = line.split_once(marker) {
            return rest.trim().to_owned();
        }
    }
}

pub async fn call(
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, url)
        .header("Authorization", format!("Bearer {token}"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("the server answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Creates a tenant with the CLI and returns its admin token.
pub fn cli_tenant(url: &str, name: &str) -> String {
    let out = command(&[("DATABASE_URL", url)])
        .args(["tenant", "create", "--name", name])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout
        .split("(shown once): ")
        .nth(1)
        .expect("token line")
        .trim()
        .to_owned()
}

pub async fn post_json(url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).json(&body);
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let res = req.send().await.expect("answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub fn kid(jwt: &str) -> String {
    use base64::Engine as _;
    let header = jwt.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url header");
    let header: Value = serde_json::from_slice(&bytes).expect("json header");
    header["kid"].as_str().unwrap_or_default().to_owned()
}

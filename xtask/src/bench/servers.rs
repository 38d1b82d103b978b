//! The processes under test: the release `fleetpass` binary (memory or PostgreSQL) and
//! the bare actix-web baseline, each on a free loopback port, its output in a log
//! file, ended (by its own pid) when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The platform admin key the benchmark's servers run with.
pub const ADMIN_KEY: &str = "fleetpass-bench-admin-key";

/// Where cargo puts build output: `CARGO_TARGET_DIR`, else the workspace's `target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| crate::root().join("target"), PathBuf::from)
}

/// Builds the server and the baseline in release mode (a no-op when up to date), at a
/// low priority: the machine may be shared.
///
/// # Errors
/// When the build fails.
pub fn build() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("building: cargo build --release -p fleetpass -p fleetpass-bench-baseline");
    let status = Command::new("nice")
        .args([cargo.as_str(), "build", "--release", "-q"])
        .args(["-p", "fleetpass", "-p", "fleetpass-bench-baseline"])
        .current_dir(crate::root())
        .status()
        .context("Failed to run cargo build")?;
    if !status.success() {
        bail!("the release build failed");
    }
    Ok(())
}

/// A free port on 127.0.0.1 (the OS picks it; it is free again once the probe closes).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether `GET path` on `base` answers 200 (a plain HTTP/1.1 exchange: the probe
/// needs no client library).
fn answers_200(base: &str, path: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let addr = base.trim_start_matches("http://");
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if conn.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// The whole HTTP/1.1 answer to `GET path` with `bearer`, as it came off the wire
/// (`Connection: close`, read to the end): what the identical-bytes baseline replays.
///
/// # Errors
/// When the exchange fails or the answer is not a 200.
pub fn capture(base: &str, path: &str, bearer: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read as _, Write as _};
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr)
        .with_context(|| format!("Failed to connect to {addr}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)
        .with_context(|| format!("Failed to read the answer to {path}"))?;
    anyhow::ensure!(
        raw.starts_with(b"HTTP/1.1 200 "),
        "GET {path} did not answer 200: {}",
        String::from_utf8_lossy(&raw[..raw.len().min(200)])
    );
    Ok(raw)
}

/// A running server process.
pub struct Server {
    /// What it is, for messages.
    pub label: String,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    child: Child,
    log: PathBuf,
    /// How it was started, to start it again on the same port.
    spec: Spec,
}

/// A server's command line, environment and address.
struct Spec {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    bind_env: Option<String>,
    bind: String,
    ready_path: String,
}

impl Spec {
    fn spawn(&self, log: &Path, append: bool) -> anyhow::Result<Child> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(log)?;
        let mut cmd = Command::new(&self.program);
        cmd.args(self.args.iter().map(|a| a.replace("{bind}", &self.bind)))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        if let Some(var) = &self.bind_env {
            cmd.env(var, &self.bind);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.spawn()
            .with_context(|| format!("Failed to start {}", self.program.display()))
    }
}

impl Server {
    /// Starts `program` with `args` and `env` on a free port (`bind_env` names the
    /// variable that takes the address, or the port goes in `args` in place of
    /// `{bind}`), and waits until `ready_path` answers.
    ///
    /// # Errors
    /// When it does not start or does not answer within 60 s.
    pub fn start(
        label: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
        bind_env: Option<&str>,
        ready_path: &str,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let spec = Spec {
            program: program.to_path_buf(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            bind_env: bind_env.map(str::to_owned),
            bind: format!("127.0.0.1:{port}"),
            ready_path: ready_path.to_owned(),
        };
        let log = log_dir.join(format!("{}.log", label.replace([' ', '(', ')', '/'], "_")));
        let child = spec.spawn(&log, false)?;
        let mut server = Self {
            label: label.to_owned(),
            base: format!("http://{}", spec.bind),
            child,
            log,
            spec,
        };
        server.wait_ready(ready_path)?;
        println!(
            "started {label} (pid {}) on {}",
            server.pid(),
            server.spec.bind
        );
        Ok(server)
    }

    /// Sends SIGTERM to it (our own child, by its pid) and waits up to `limit` for it
    /// to exit; how long it took, or `None` if it had not exited by then.
    ///
    /// # Errors
    /// When `kill` cannot be run.
    pub fn terminate(&mut self, limit: Duration) -> anyhow::Result<Option<Duration>> {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("Failed to run kill")?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.pid());
        while started.elapsed() < limit {
            if self.child.try_wait()?.is_some() {
                return Ok(Some(started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(None)
    }

    /// Starts it again, on the same address, with the same settings (its log goes on
    /// in the same file), and waits until it answers.
    ///
    /// # Errors
    /// When it does not start or answer.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.child = self.spec.spawn(&self.log, true)?;
        let path = self.spec.ready_path.clone();
        self.wait_ready(&path)?;
        println!("restarted {} (pid {})", self.label, self.pid());
        Ok(())
    }

    fn wait_ready(&mut self, path: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        let url = format!("{}{path}", self.base);
        while started.elapsed() < Duration::from_secs(60) {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} while starting: {}",
                    self.label,
                    self.log_tail()
                );
            }
            if answers_200(&self.base, path) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{} did not answer {url} within 60 s: {}",
            self.label,
            self.log_tail()
        )
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory now (`VmRSS` in /proc), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Its whole log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our own child, by its pid; SIGKILL is fine, nothing of it outlives the run.
        let _ = self.child.kill();
        let _ = self.child.wait();
        println!("stopped {} (pid {})", self.label, self.child.id());
    }
}

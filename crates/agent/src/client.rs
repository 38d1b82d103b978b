//! The agent's side of the `/agent/*` API: enrollment, token exchange and renewal,
//! heartbeats, claims and results, each retried with jittered exponential backoff on
//! 429, 503 (and other 5xx) and network errors, as the API reference asks of clients.

use std::time::Duration;

use fleetpass_domain::label::Labels;
use fleetpass_domain::scan::{MaxAssets, MaxDurationMinutes, ScanResults, Scenario};
use fleetpass_domain::secret::PlainSecret;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

/// This agent's version, reported at enrollment and in heartbeats.
pub const AGENT_VERSION: &str = concat!("fleetpass-agent/", env!("CARGO_PKG_VERSION"));

/// How long before its expiry an access token is renewed.
const RENEW_BEFORE: time::Duration = time::Duration::minutes(2);

/// How much longer than its wait a check-in may take before the agent gives it up.
const CHECK_IN_SLACK: Duration = Duration::from_secs(30);

/// Why a call failed for good (after its retries).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The server refused the credentials (401): a revoked agent or a bad secret.
    #[error("the server refused this agent's credentials: {0}")]
    Unauthorized(String),
    /// Any other 4xx: the request itself is wrong; retrying will not help.
    #[error("the server refused the request ({status}): {message}")]
    Refused {
        /// The status.
        status: StatusCode,
        /// The error body's `message`.
        message: String,
    },
    /// Retries ran out on 429/5xx/network errors.
    #[error("the server is unreachable or overloaded: {0}")]
    Unavailable(String),
    /// Nothing answered at the server's address (refused, or no such host), where
    /// waiting would not help (enrollment, with a person at the terminal).
    #[error(
        "cannot connect to {server}: {reason}; check --server and that the server is running there"
    )]
    Unreachable {
        /// The base URL.
        server: String,
        /// The whole cause, e.g. "… Connection refused (os error 111)".
        reason: String,
    },
}

/// A transport error and every cause under it, one after the other ("error sending
/// request: client error (Connect): tcp connect error: Connection refused (os error
/// 111)"): reqwest's own message alone says only "error sending request".
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let line = c.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = c.source();
    }
    text
}

/// Whether `e` means nothing answered at the address: the connection was refused or
/// the host name does not resolve (not a timeout, which a busy network can cause).
fn nothing_there(e: &reqwest::Error) -> bool {
    if !e.is_connect() || e.is_timeout() {
        return false;
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), std::io::ErrorKind::ConnectionRefused)
                || io.to_string().contains("failed to lookup address");
        }
        if c.to_string().contains("dns error") {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Backoff with jitter ("equal jitter": a random wait between half and all of an
/// exponentially growing ceiling), so a fleet of agents that lost the server together
/// does not come back together, and none retries at once.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Starts at `base`, doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            attempt: 0,
            base,
            cap,
        }
    }

    /// The next wait: uniform in `[ceiling/2, ceiling]`, where the ceiling doubles
    /// each attempt up to the cap; never below what the server asked (`Retry-After`).
    pub fn next(&mut self, at_least: Option<Duration>) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let jittered = Duration::from_millis(rand::random_range(ms / 2..=ms.max(1)));
        jittered.max(at_least.unwrap_or_default())
    }
}

/// The pause between check-ins: none while the server holds them (a long-poll paces
/// itself), jittered exponential backoff after a failure or when a check-in comes back
/// at once (a server stopping, or one that does not hold check-ins), so that an agent
/// never spins and a fleet that lost its server does not return in step.
#[derive(Debug, Clone)]
pub struct Pace {
    backoff: Backoff,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        }
    }
}

impl Pace {
    /// A check-in held at least this long was a real wait.
    const HELD: Duration = Duration::from_millis(500);

    /// After a check-in answered "nothing" once it had been held for `held`.
    pub fn nothing_after(&mut self, held: Duration) -> Duration {
        if held >= Self::HELD {
            self.backoff = Self::default().backoff;
            Duration::ZERO
        } else {
            self.backoff.next(None)
        }
    }

    /// After a scan was claimed (and worked): check in again at once.
    pub fn claimed(&mut self) {
        self.backoff = Self::default().backoff;
    }

    /// After a check-in failed for good (its own retries, which honour `Retry-After`,
    /// ran out).
    pub fn failed(&mut self) -> Duration {
        self.backoff.next(None)
    }
}

/// `POST /agent/enroll`'s answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolled {
    /// The new agent's id.
    pub agent_id: String,
    /// Its fleet.
    pub fleet_id: String,
    /// Its secret, shown once.
    pub agent_secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessToken {
    access_token: String,
    #[serde(with = "time::serde::rfc3339")]
    access_token_expires_at: OffsetDateTime,
}

/// The part of a claimed scan (`POST /agent/jobs/claim`) the agent acts on.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedScan {
    /// Its id.
    pub scan_id: String,
    /// What to do.
    pub scenario: Scenario,
    /// Its limits.
    pub constraints: Constraints,
}

/// The limits of a claimed scan, as the server states them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraints {
    /// Minutes the scan may run.
    pub max_duration_minutes: u32,
    /// Assets it may report.
    pub max_assets: Option<u32>,
}

impl ClaimedScan {
    /// The scan's run-time limit, through the domain's own bounds.
    pub fn max_duration(&self) -> MaxDurationMinutes {
        MaxDurationMinutes::new(i64::from(self.constraints.max_duration_minutes))
            .unwrap_or(MaxDurationMinutes::default_limit())
    }

    /// The scan's asset limit, if any.
    pub fn max_assets(&self) -> Option<MaxAssets> {
        self.constraints
            .max_assets
            .and_then(|m| MaxAssets::new(i64::from(m)).ok())
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// One answer, before it is judged.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

/// A client of one server, for one agent.
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// How many times a retryable failure is retried before giving up (then the run
    /// loop logs it and tries again at its next tick).
    max_retries: u32,
    backoff_base: Duration,
    backoff_cap: Duration,
    token: Option<(String, OffsetDateTime)>,
}

/// How [`Client::send_with`] sends: see there.
#[derive(Debug, Clone, Copy, Default)]
struct Sending {
    fail_fast: bool,
    timeout: Option<Duration>,
}

impl Client {
    /// A client of the server at `base` (`https://…`, no trailing slash needed).
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(AGENT_VERSION)
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            max_retries: 8,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
            token: None,
        })
    }

    /// Sends one request, retrying retryable failures with backoff.
    async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&[u8]>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, CallError> {
        self.send_with(
            method,
            path,
            bearer,
            body,
            idempotency_key,
            Sending::default(),
        )
        .await
    }

    /// [`Client::send`], as `how` says: with `fail_fast`, a connection nothing answers
    /// (refused, no such host) is reported at once instead of retried; with a
    /// `timeout`, each attempt gets it instead of the client's (a held check-in takes
    /// as long as its wait).
    async fn send_with(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&[u8]>,
        idempotency_key: Option<&str>,
        how: Sending,
    ) -> Result<Answer, CallError> {
        let url = format!("{}{path}", self.base);
        let mut backoff = Backoff::new(self.backoff_base, self.backoff_cap);
        let mut attempt = 0;
        loop {
            let mut req = self.http.request(method.clone(), &url);
            if let Some(timeout) = how.timeout {
                req = req.timeout(timeout);
            }
            if let Some(token) = bearer {
                req = req.bearer_auth(token);
            }
            if let Some(key) = idempotency_key {
                req = req.header("Idempotency-Key", key);
            }
            if let Some(body) = body {
                req = req
                    .header("Content-Type", "application/json")
                    .body(body.to_vec());
            }
            let (reason, retry_after) = match req.send().await {
                Ok(res) => {
                    let status = res.status();
                    let retry_after = res
                        .headers()
                        .get("Retry-After")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = res.bytes().await.map(|b| b.to_vec());
                    match body {
                        Ok(body)
                            if status != StatusCode::TOO_MANY_REQUESTS
                                && !status.is_server_error() =>
                        {
                            return Ok(Answer { status, body });
                        }
                        Ok(_) => (format!("{method} {path} answered {status}"), retry_after),
                        Err(e) => (
                            format!("{method} {path}: {}", chain(&e.without_url())),
                            None,
                        ),
                    }
                }
                Err(e) if how.fail_fast && nothing_there(&e) => {
                    return Err(CallError::Unreachable {
                        server: self.base.clone(),
                        reason: chain(&e.without_url()),
                    });
                }
                Err(e) => (
                    format!("{method} {path}: {}", chain(&e.without_url())),
                    None,
                ),
            };
            if attempt >= self.max_retries {
                return Err(CallError::Unavailable(reason));
            }
            attempt += 1;
            let wait = backoff.next(retry_after);
            tracing::warn!(%reason, wait_ms = wait.as_millis() as u64, attempt, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Decodes a 2xx answer, or turns a 4xx into its error.
    fn judge<T: DeserializeOwned>(answer: Answer) -> Result<Option<T>, CallError> {
        if answer.status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let message = || {
            serde_json::from_slice::<ErrorBody>(&answer.body)
                .ok()
                .and_then(|b| b.message)
                .unwrap_or_else(|| answer.status.to_string())
        };
        if answer.status == StatusCode::UNAUTHORIZED {
            return Err(CallError::Unauthorized(message()));
        }
        if !answer.status.is_success() {
            return Err(CallError::Refused {
                status: answer.status,
                message: message(),
            });
        }
        serde_json::from_slice(&answer.body)
            .map(Some)
            .map_err(|e| CallError::Refused {
                status: answer.status,
                message: format!("unexpected answer: {e}"),
            })
    }

    /// Enrolls with a (format-checked) enrollment token.
    pub async fn enroll(
        &self,
        token: &PlainSecret,
        hostname: &str,
        platform: &str,
        labels: &Labels,
    ) -> Result<Enrolled, CallError> {
        let mut body = serde_json::json!({
            "enrollmentToken": token.expose(),
            "hostname": hostname,
            "platform": platform,
            "agentVersion": AGENT_VERSION,
        });
        if !labels.is_empty() {
            body["labels"] = labels
                .iter()
                .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        let body = serde_json::to_vec(&body).unwrap_or_default();
        // Someone is at the terminal: an address where nothing answers is reported at
        // once (an overloaded or restarting server is still waited for).
        let answer = self
            .send_with(
                Method::POST,
                "/agent/enroll",
                None,
                Some(&body),
                None,
                Sending {
                    fail_fast: true,
                    timeout: None,
                },
            )
            .await?;
        Self::judge(answer)?.ok_or_else(|| CallError::Refused {
            status: StatusCode::NO_CONTENT,
            message: "empty enrollment answer".into(),
        })
    }

    /// A valid access token: the current one, or a fresh one when it is missing or
    /// within [`RENEW_BEFORE`] of its expiry (by this machine's clock).
    async fn access_token(
        &mut self,
        agent_id: &str,
        secret: &PlainSecret,
    ) -> Result<String, CallError> {
        let now = OffsetDateTime::now_utc();
        if let Some((token, expires)) = &self.token
            && *expires - RENEW_BEFORE > now
        {
            return Ok(token.clone());
        }
        let body = serde_json::json!({"agentId": agent_id, "agentSecret": secret.expose()});
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let answer = self
            .send(Method::POST, "/agent/token", None, Some(&body), None)
            .await?;
        let fresh: AccessToken = Self::judge(answer)?.ok_or_else(|| CallError::Refused {
            status: StatusCode::NO_CONTENT,
            message: "empty token answer".into(),
        })?;
        tracing::info!(expires_at = %fresh.access_token_expires_at, "obtained an access token");
        self.token = Some((fresh.access_token.clone(), fresh.access_token_expires_at));
        Ok(fresh.access_token)
    }

    /// Calls an agent endpoint with the access token; on a 401 (the token was refused,
    /// e.g. the server's keys rotated) exchanges the secret once more and retries once.
    async fn agent_call<T: DeserializeOwned>(
        &mut self,
        agent_id: &str,
        secret: &PlainSecret,
        path: &str,
        body: Option<&[u8]>,
        idempotency_key: Option<&str>,
    ) -> Result<Option<T>, CallError> {
        self.agent_call_within(agent_id, secret, path, body, idempotency_key, None)
            .await
    }

    /// [`agent_call`](Self::agent_call) with a timeout of its own per attempt.
    async fn agent_call_within<T: DeserializeOwned>(
        &mut self,
        agent_id: &str,
        secret: &PlainSecret,
        path: &str,
        body: Option<&[u8]>,
        idempotency_key: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Option<T>, CallError> {
        for first in [true, false] {
            let token = self.access_token(agent_id, secret).await?;
            let answer = self
                .send_with(
                    Method::POST,
                    path,
                    Some(&token),
                    body,
                    idempotency_key,
                    Sending {
                        fail_fast: false,
                        timeout,
                    },
                )
                .await?;
            match Self::judge(answer) {
                Err(CallError::Unauthorized(_)) if first => self.token = None,
                other => return other,
            }
        }
        Err(CallError::Unauthorized(
            "the access token was refused twice".into(),
        ))
    }

    /// `POST /agent/heartbeat`.
    pub async fn heartbeat(
        &mut self,
        agent_id: &str,
        secret: &PlainSecret,
    ) -> Result<(), CallError> {
        let body = serde_json::to_vec(&serde_json::json!({"agentVersion": AGENT_VERSION}))
            .unwrap_or_default();
        self.agent_call::<serde_json::Value>(
            agent_id,
            secret,
            "/agent/heartbeat",
            Some(&body),
            None,
        )
        .await
        .map(|_| ())
    }

    /// A check-in: `POST /agent/jobs/claim?wait=…`, held by the server until a scan of
    /// the fleet is claimable (the scan) or the wait ends (`None`). The server caps the
    /// wait and ends it before the access token expires (which [`RENEW_BEFORE`] keeps
    /// at least two minutes away when the check-in is sent). A 503 with `Retry-After`
    /// (the server holds its limit of check-ins) is retried after that time, like any
    /// overload.
    pub async fn check_in(
        &mut self,
        agent_id: &str,
        secret: &PlainSecret,
        wait: Duration,
    ) -> Result<Option<ClaimedScan>, CallError> {
        let path = format!("/agent/jobs/claim?wait={}", wait.as_secs());
        // The answer may take the whole wait; past it and a margin, the connection is
        // taken for lost.
        let timeout = wait + CHECK_IN_SLACK;
        self.agent_call_within(agent_id, secret, &path, None, None, Some(timeout))
            .await
    }

    /// `POST /agent/scans/{id}/results`, under an idempotency key so that a retry after
    /// a lost answer replays the first outcome instead of failing as "not running".
    pub async fn submit(
        &mut self,
        agent_id: &str,
        secret: &PlainSecret,
        scan_id: &str,
        results: &ScanResults,
    ) -> Result<(), CallError> {
        let body = serde_json::to_vec(results).unwrap_or_default();
        let key = format!("results-{scan_id}");
        self.agent_call::<serde_json::Value>(
            agent_id,
            secret,
            &format!("/agent/scans/{scan_id}/results"),
            Some(&body),
            Some(&key),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    /// A one-thread HTTP server answering each connection with the next canned answer;
    /// the receiver gets each request's first line (`POST /agent/token HTTP/1.1`).
    fn canned_with_log(answers: Vec<String>) -> (String, std::sync::mpsc::Receiver<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for answer in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8_lossy(&request);
                let _ = tx.send(text.lines().next().unwrap_or_default().to_owned());
                stream.write_all(answer.as_bytes()).unwrap();
            }
        });
        (format!("http://{addr}"), rx)
    }

    fn canned(answers: &'static [&'static str]) -> String {
        canned_with_log(answers.iter().map(|a| (*a).to_owned()).collect()).0
    }

    fn json_answer(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn token_answer(expires_in: time::Duration) -> String {
        let at = (OffsetDateTime::now_utc() + expires_in)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        json_answer(
            "200 OK",
            &format!(
                r#"{{"accessToken":"jwt","tokenType":"Bearer","accessTokenExpiresAt":"{at}"}}"#
            ),
        )
    }

    fn requests(rx: &std::sync::mpsc::Receiver<String>) -> Vec<String> {
        rx.try_iter()
            .map(|line| {
                line.split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    fn secret() -> PlainSecret {
        PlainSecret::from_random(fleetpass_domain::secret::SecretKind::Agent, [1; 32])
    }

    #[tokio::test]
    async fn a_token_is_reused_until_two_minutes_before_its_expiry_then_renewed() {
        let ok = json_answer("200 OK", "{}");
        let (base, rx) = canned_with_log(vec![
            token_answer(time::Duration::minutes(15)),
            ok.clone(),
            ok.clone(),
        ]);
        let mut client = Client::new(&base).unwrap();
        client.heartbeat("agent", &secret()).await.unwrap();
        client.heartbeat("agent", &secret()).await.unwrap();
        assert_eq!(
            requests(&rx),
            ["/agent/token", "/agent/heartbeat", "/agent/heartbeat"]
        );

        let (base, rx) = canned_with_log(vec![
            token_answer(time::Duration::seconds(90)),
            ok.clone(),
            token_answer(time::Duration::minutes(15)),
            ok,
        ]);
        let mut client = Client::new(&base).unwrap();
        client.heartbeat("agent", &secret()).await.unwrap();
        client.heartbeat("agent", &secret()).await.unwrap();
        assert_eq!(
            requests(&rx),
            [
                "/agent/token",
                "/agent/heartbeat",
                "/agent/token",
                "/agent/heartbeat"
            ],
            "a token within two minutes of its expiry is renewed before use"
        );
    }

    #[tokio::test]
    async fn a_refused_access_token_is_exchanged_once_more_but_a_refused_secret_is_final() {
        let unauthorized = json_answer("401 Unauthorized", r#"{"message":"token refused"}"#);
        let (base, rx) = canned_with_log(vec![
            token_answer(time::Duration::minutes(15)),
            unauthorized.clone(),
            token_answer(time::Duration::minutes(15)),
            json_answer("200 OK", "{}"),
        ]);
        let mut client = Client::new(&base).unwrap();
        client.heartbeat("agent", &secret()).await.unwrap();
        assert_eq!(
            requests(&rx),
            [
                "/agent/token",
                "/agent/heartbeat",
                "/agent/token",
                "/agent/heartbeat"
            ]
        );

        let (base, _rx) = canned_with_log(vec![json_answer(
            "401 Unauthorized",
            r#"{"message":"invalid agent credentials"}"#,
        )]);
        let mut client = Client::new(&base).unwrap();
        match client.heartbeat("agent", &secret()).await {
            Err(CallError::Unauthorized(message)) => {
                assert_eq!(message, "invalid agent credentials")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn overload_and_unavailability_are_retried_and_retry_after_is_honoured() {
        let base = canned(&[
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n",
        ]);
        let mut client = Client::new(&base).unwrap();
        client.backoff_base = Duration::from_millis(10);
        let started = std::time::Instant::now();
        let answer = client
            .send(Method::POST, "/agent/jobs/claim", Some("jwt"), None, None)
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "waited as Retry-After asked"
        );
    }

    #[tokio::test]
    async fn a_check_in_asks_to_wait_and_honours_a_busy_servers_retry_after() {
        let (base, rx) = canned_with_log(vec![
            token_answer(time::Duration::minutes(15)),
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
            "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n".to_owned(),
        ]);
        let mut client = Client::new(&base).unwrap();
        client.backoff_base = Duration::from_millis(10);
        let started = std::time::Instant::now();
        let claimed = client
            .check_in("agent", &secret(), Duration::from_secs(300))
            .await
            .unwrap();
        assert!(claimed.is_none());
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "waited as Retry-After asked"
        );
        assert_eq!(
            requests(&rx),
            [
                "/agent/token",
                "/agent/jobs/claim?wait=300",
                "/agent/jobs/claim?wait=300"
            ]
        );
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let base = canned(&[
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: 31\r\nconnection: close\r\n\r\n{\"message\":\"agent was revoked\"}",
        ]);
        let mut client = Client::new(&base).unwrap();
        client.backoff_base = Duration::from_millis(10);
        let answer = client
            .send(Method::POST, "/agent/jobs/claim", Some("jwt"), None, None)
            .await
            .unwrap();
        match Client::judge::<serde_json::Value>(answer) {
            Err(CallError::Unauthorized(message)) => assert_eq!(message, "agent was revoked"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn network_errors_are_retried_then_reported() {
        // A port nobody listens on: every attempt is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut client = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
        client.backoff_base = Duration::from_millis(5);
        client.max_retries = 2;
        let err = client
            .send(Method::POST, "/agent/heartbeat", None, None, None)
            .await
            .err()
            .expect("unreachable");
        assert!(matches!(err, CallError::Unavailable(_)), "{err}");
        // The cause is in the message, not only "error sending request".
        assert!(err.to_string().contains("Connection refused"), "{err}");
    }

    #[test]
    fn check_ins_follow_each_other_at_once_unless_they_fail_or_come_back_at_once() {
        let mut pace = Pace::default();
        assert_eq!(pace.nothing_after(Duration::from_secs(290)), Duration::ZERO);
        let first = pace.nothing_after(Duration::from_millis(3));
        assert!(first >= Duration::from_millis(500), "{first:?}");
        let failed = pace.failed();
        assert!(failed >= Duration::from_secs(1), "backing off: {failed:?}");
        pace.claimed();
        assert!(pace.failed() <= Duration::from_secs(1), "reset by a claim");
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap_and_honours_retry_after() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let waits: Vec<_> = (0..8).map(|_| b.next(None)).collect();
        for (i, w) in waits.iter().enumerate() {
            let ceiling = (100u64 << i).min(1000);
            assert!(
                (ceiling / 2..=ceiling).contains(&(w.as_millis() as u64)),
                "attempt {i}: {w:?}"
            );
        }
        assert!(b.next(Some(Duration::from_secs(5))) >= Duration::from_secs(5));
    }
}

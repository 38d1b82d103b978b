//! The benchmark's data, made through the server's own HTTP API (the answers are the
//! truth, not the store's internals): a tenant, API tokens, a fleet, enrollment
//! tokens, an enrolled agent, completed scans and share links.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// Requests a minute for the benchmark's tokens: the most the API allows, far above
/// what one token sees while its load rotates over [`TOKENS`].
pub const ROOMY: u32 = 100_000;

/// API tokens the load rotates over, as in the reference setup.
pub const TOKENS: usize = 40;

/// How many setup requests are in flight at once.
const PARALLEL: usize = 32;

/// A client of one server.
#[derive(Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    /// A client for the server at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    /// Sends `method path` with an optional bearer token and JSON body; the status
    /// and the JSON answer (null when empty).
    ///
    /// # Errors
    /// When the request fails.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("Failed to call {path}"))?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, value))
    }

    /// `POST path`, which must answer `expect`.
    ///
    /// # Errors
    /// On any other status.
    pub async fn post(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: &Value,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let (status, value) = self
            .call(reqwest::Method::POST, path, bearer, Some(body))
            .await?;
        if status != expect {
            bail!("POST {path} answered {status} (expected {expect}): {value}");
        }
        Ok(value)
    }

    /// The length in bytes of `GET path`'s body, and its status.
    ///
    /// # Errors
    /// When the request fails.
    pub async fn get_len(&self, path: &str, bearer: &str) -> anyhow::Result<(u16, usize)> {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .send()
            .await?;
        let status = res.status().as_u16();
        Ok((status, res.bytes().await?.len()))
    }

    /// Creates a tenant with the platform key; its admin token.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn tenant(&self, admin_key: &str, name: &str) -> anyhow::Result<String> {
        let v = self
            .post(
                "/platform/tenants",
                Some(admin_key),
                &json!({ "name": name }),
                201,
            )
            .await?;
        field(&v, "adminToken")
    }

    /// Mints `n` admin tokens allowed `per_minute` requests each.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn tokens(
        &self,
        admin: &str,
        n: usize,
        per_minute: u32,
    ) -> anyhow::Result<Vec<String>> {
        let admin = Arc::new(admin.to_owned());
        self.many(n, move |api, i| {
            let admin = admin.clone();
            async move {
                let v = api
                    .post(
                        "/api/admin/tokens",
                        Some(&admin),
                        &json!({"name": format!("bench-{i}"), "role": "admin",
                                "allEnvironments": true, "expiresInDays": 30,
                                "rateLimitPerMinute": per_minute}),
                        201,
                    )
                    .await?;
                field(&v, "token")
            }
        })
        .await
    }

    /// Creates a fleet; its id.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn fleet(&self, token: &str, name: &str) -> anyhow::Result<String> {
        let v = self
            .post(
                "/tenant/discovery/fleets",
                Some(token),
                &json!({ "name": name }),
                201,
            )
            .await?;
        field(&v, "fleetId")
    }

    /// Makes `n` enrollment tokens for `fleet`, each good for `max_uses`, with the
    /// given API tokens in turn (so that no token's limit is reached).
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn enrollment_tokens(
        &self,
        tokens: &[String],
        fleet: &str,
        n: usize,
        max_uses: u32,
    ) -> anyhow::Result<Vec<String>> {
        let tokens = Arc::new(tokens.to_vec());
        let path = Arc::new(format!(
            "/tenant/discovery/fleets/{fleet}/enrollment-tokens"
        ));
        self.many(n, move |api, i| {
            let (tokens, path) = (tokens.clone(), path.clone());
            async move {
                let v = api
                    .post(
                        &path,
                        Some(&tokens[i % tokens.len()]),
                        &json!({ "maxUses": max_uses }),
                        201,
                    )
                    .await?;
                field(&v, "enrollmentToken")
            }
        })
        .await
    }

    /// Enrolls an agent; its access token.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn enroll(&self, enrollment_token: &str) -> anyhow::Result<String> {
        let v = self
            .post(
                "/agent/enroll",
                None,
                &json!({"enrollmentToken": enrollment_token, "hostname": "bench-setup",
                        "platform": "linux-x86_64"}),
                201,
            )
            .await?;
        field(&v, "accessToken")
    }

    /// Queues an inventory scan of `fleet`, has the agent claim it and send one asset;
    /// the completed scan's id.
    ///
    /// # Errors
    /// When a step is refused.
    pub async fn completed_scan(
        &self,
        token: &str,
        fleet: &str,
        agent: &str,
    ) -> anyhow::Result<String> {
        let v = self
            .post(
                "/tenant/scans",
                Some(token),
                &json!({"fleetId": fleet, "scenario": "inventory"}),
                202,
            )
            .await?;
        let scan = field(&v, "scanId")?;
        self.post("/agent/jobs/claim", Some(agent), &json!({}), 200)
            .await?;
        self.post(
            &format!("/agent/scans/{scan}/results"),
            Some(agent),
            &json!({"assets": [{"hostname": "db-1", "ip": "10.0.0.5", "os": "Debian 12",
                                "openPorts": [22], "software": []}], "findings": []}),
            200,
        )
        .await?;
        Ok(scan)
    }

    /// Makes `n` share links to `scan`, with the given API tokens in turn; their
    /// tokens.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn share_links(
        &self,
        tokens: &[String],
        scan: &str,
        n: usize,
    ) -> anyhow::Result<Vec<String>> {
        let tokens = Arc::new(tokens.to_vec());
        let path = Arc::new(format!("/tenant/scans/{scan}/share-links"));
        self.many(n, move |api, i| {
            let (tokens, path) = (tokens.clone(), path.clone());
            async move {
                let v = api
                    .post(
                        &path,
                        Some(&tokens[i % tokens.len()]),
                        &json!({ "label": "bench" }),
                        201,
                    )
                    .await?;
                field(&v, "token")
            }
        })
        .await
    }

    /// Runs `make(api, i)` for `i` in `0..n`, [`PARALLEL`] at a time; the results in
    /// order of `i`.
    async fn many<F, Fut>(&self, n: usize, make: F) -> anyhow::Result<Vec<String>>
    where
        F: Fn(Self, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<String>> + Send + 'static,
    {
        let make = Arc::new(make);
        let mut out = vec![String::new(); n];
        let mut set = tokio::task::JoinSet::new();
        let mut next = 0;
        while next < n || !set.is_empty() {
            while next < n && set.len() < PARALLEL {
                let (api, make, i) = (self.clone(), make.clone(), next);
                set.spawn(async move { (i, make(api, i).await) });
                next += 1;
            }
            if let Some(joined) = set.join_next().await {
                let (i, result) = joined?;
                out[i] = result?;
            }
        }
        Ok(out)
    }
}

fn field(v: &Value, name: &str) -> anyhow::Result<String> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no {name} in {v}"))
}

//! Prometheus metrics of the HTTP layer, served at `GET /metrics`.
//!
//! Process-wide, like the process they describe: every worker of one server records into
//! the same registry. Routes are labelled by their pattern (`/tenant/scans/{scan_id}`),
//! never by the concrete path, so ids and share tokens never become label values, and
//! every label comes from a closed set: a method the router knows or `other`, a route
//! template or `unmatched`, a status code. A client can therefore never add a series.

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::http::Method;
use fleetpass_domain::Timestamp;
use fleetpass_ports::store::ServiceStats;
use prometheus::{
    Encoder as _, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::guard::Class;

/// The metrics this server exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    auth_failures: IntCounterVec,
    rate_limited: IntCounterVec,
    scans: IntGaugeVec,
    queue_age: Gauge,
    agents: IntGaugeVec,
    pool: IntGaugeVec,
    pool_waiting: IntGauge,
}

/// Why a request was answered 429, as `fleetpass_rate_limited_total{kind}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// An API token's own limit.
    Token,
    /// The per-address limit of public endpoints.
    Address,
    /// The failed-authentication limit of an address.
    AuthFailures,
}

impl LimitKind {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Address => "address",
            Self::AuthFailures => "auth_failures",
        }
    }
}

impl Metrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("fleetpass".to_owned()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by method, route and status.",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by method and route.",
            ),
            &["method", "route"],
        )?;
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "auth_failures_total",
                "Failed authentications, by the credential the route takes: api_token, agent, platform, public (a credential in the body).",
            ),
            &["kind"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_total",
                "Requests answered 429, by the limit they met: token, address, auth_failures.",
            ),
            &["kind"],
        )?;
        let scans = IntGaugeVec::new(
            Opts::new(
                "scans",
                "Scans of every tenant, by status (read at scrape time).",
            ),
            &["status"],
        )?;
        let queue_age = Gauge::with_opts(Opts::new(
            "scan_queue_age_seconds",
            "How long the oldest scan an agent could claim now has waited (0: none waits).",
        ))?;
        let agents = IntGaugeVec::new(
            Opts::new(
                "agents",
                "Agents that are not revoked, by how long ago they were last seen (1m, 5m, 1h, older, never).",
            ),
            &["last_seen"],
        )?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database connections of this process: in_use, max.",
            ),
            &["state"],
        )?;
        let pool_waiting = IntGauge::with_opts(Opts::new(
            "db_pool_waiting",
            "Requests of this process waiting for a database connection.",
        ))?;
        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "The running build (always 1)."),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(auth_failures.clone()),
            Box::new(rate_limited.clone()),
            Box::new(scans.clone()),
            Box::new(queue_age.clone()),
            Box::new(agents.clone()),
            Box::new(pool.clone()),
            Box::new(pool_waiting.clone()),
            Box::new(build_info),
        ] {
            registry.register(collector)?;
        }
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            requests,
            latency,
            auth_failures,
            rate_limited,
            scans,
            queue_age,
            agents,
            pool,
            pool_waiting,
        })
    }

    /// Counts a failed authentication on a route of `class`.
    pub fn auth_failed(&self, class: Class) {
        let kind = match class {
            Class::Tenant => "api_token",
            Class::Agent => "agent",
            Class::Platform => "platform",
            Class::Public | Class::Open => "public",
        };
        self.auth_failures.with_label_values(&[kind]).inc();
    }

    /// Counts a 429.
    pub fn rate_limited(&self, kind: LimitKind) {
        self.rate_limited.with_label_values(&[kind.as_str()]).inc();
    }

    /// Sets the gauges read from the store at scrape time.
    pub fn observe(&self, stats: &ServiceStats, now: Timestamp) {
        for (status, n) in &stats.scans {
            self.scans
                .with_label_values(&[status.as_str()])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        let age = stats
            .oldest_claimable
            .map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
        self.queue_age.set(age);
        for (bucket, n) in &stats.agents {
            self.agents
                .with_label_values(&[bucket.as_str()])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        if let Some(pool) = stats.pool {
            let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            self.pool
                .with_label_values(&["in_use"])
                .set(gauge(pool.in_use));
            self.pool.with_label_values(&["max"]).set(gauge(pool.max));
            self.pool_waiting.set(gauge(pool.waiting));
        }
    }

    /// The process's metrics; `None` only if the registry could not be built (then
    /// nothing is recorded, and requests are not affected).
    pub fn global() -> Option<&'static Metrics> {
        static METRICS: OnceLock<Option<Metrics>> = OnceLock::new();
        METRICS
            .get_or_init(|| {
                Metrics::new()
                    .map_err(|e| tracing::error!(error = %e, "metrics disabled"))
                    .ok()
            })
            .as_ref()
    }

    /// Records one answered request. `route` is the matched pattern, or `unmatched`.
    pub fn record(&self, method: &Method, route: &str, status: u16, took: Duration) {
        let method = method_label(method);
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(took.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The label of a request's method: the methods a route can answer, or `other` for any
/// method a client made up (an 8 KB `FOOBARQQ1…` would otherwise be a series for ever).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"FOOBARQQ1").unwrap();
        assert_eq!(method_label(&made_up), "other");
        assert_eq!(method_label(&Method::TRACE), "other");
    }
}

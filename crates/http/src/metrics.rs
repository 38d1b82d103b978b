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
use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The metrics this server exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
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
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
        })
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

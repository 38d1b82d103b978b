//! The request context middleware: assigns the request id, logs one line per request,
//! and renders every error response through the one error contract.
//!
//! Log lines name the route pattern (`/share/{token}`), which the route's guard records
//! on the request span, never the raw path or query: paths carry share tokens and
//! queries an `api_key`. A path no route matched is logged redacted.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use tracing::Instrument as _;

use fleetpass_domain::secret::SecretKind;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::RequestId;

/// The routes an agent calls on a timer, whose successful answers are logged at DEBUG.
const ROUTINE_AGENT_ROUTES: [&str; 3] = ["/agent/jobs/claim", "/agent/heartbeat", "/agent/token"];

/// The request id header, kept from the client when valid.
pub const REQUEST_ID: &str = "x-request-id";

/// Whether an incoming request id is one we keep: 1-128 of `[A-Za-z0-9._-]`.
pub fn valid_request_id(raw: &str) -> bool {
    (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The middleware itself, for `actix_web::middleware::from_fn`.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let incoming = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v));
    let id = match incoming {
        Some(id) => id.to_owned(),
        None => {
            let ids = req
                .app_data::<web::Data<AppState>>()
                .map(|s| s.deps.ids.new_id())
                .unwrap_or_default();
            format!("req_{}", ids.simple())
        }
    };
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = tracing::field::Empty,
        // Recorded by the route's guard: who asks (a token or agent id, never a
        // secret), for which tenant, from where.
        tenant = tracing::field::Empty,
        actor = tracing::field::Empty,
        client = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => render_errors(res, &id),
        // Only a middleware can fail before a response exists, and then the request is
        // gone; hand actix a finished response to send in its place.
        Err(e) => {
            let api = e.as_error::<ApiError>().cloned().unwrap_or_else(|| {
                span.in_scope(|| tracing::error!(error = %e, "unhandled error"));
                ApiError::internal()
            });
            let mut response = api.into_response(&id);
            if let Ok(value) = HeaderValue::from_str(&id) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID), value);
            }
            return Err(actix_web::error::InternalError::from_response(e, response).into());
        }
    };
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(HeaderName::from_static(REQUEST_ID), value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let took = started.elapsed();
    let pattern = res.request().match_pattern();
    if pattern.is_none() {
        span.record("route", redacted_path(res.request().path()).as_str());
    }
    if let Some(metrics) = crate::metrics::Metrics::global() {
        metrics.record(
            res.request().method(),
            pattern.as_deref().unwrap_or("unmatched"),
            res.status().as_u16(),
            took,
        );
    }
    // Microsecond precision: `0.108`, not `0.10833200000000001`.
    let latency_ms = (took.as_secs_f64() * 1e6).round() / 1e3;
    let status = res.status().as_u16();
    // An agent's routine check-in is DEBUG: a fleet of them would drown every other line.
    let routine = res.status().is_success()
        && pattern
            .as_deref()
            .is_some_and(|p| ROUTINE_AGENT_ROUTES.contains(&p));
    span.in_scope(|| {
        if routine {
            tracing::debug!(status, latency_ms, "request finished");
        } else {
            tracing::info!(status, latency_ms, "request finished");
        }
    });
    Ok(res)
}

/// A path no route matched, fit for a log line: every segment that could carry a
/// secret — one with a secret's prefix, longer than an id, or with anything but
/// `[A-Za-z0-9._-]` (so every percent-encoding) — is replaced by `…`.
pub fn redacted_path(path: &str) -> String {
    let plain = |segment: &str| {
        segment.len() <= 40
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !SecretKind::ALL
                .iter()
                .any(|kind| segment.starts_with(kind.prefix()))
    };
    path.split('/')
        .map(|segment| if plain(segment) { segment } else { "…" })
        .collect::<Vec<_>>()
        .join("/")
}

/// Marks a response that is final already (the guard rendered it, or it replays a
/// stored one byte for byte): [`render_errors`] passes it on untouched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rendered;

/// Renders any error response as the contract's JSON body: an `ApiError` as itself,
/// anything actix made on its own (unknown route, wrong method, unreadable body) by
/// its status.
pub(crate) fn render_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    id: &str,
) -> ServiceResponse<BoxBody> {
    if res.response().extensions().contains::<Rendered>() {
        return res.map_into_boxed_body();
    }
    let status = res.status();
    let api = match res.response().error() {
        Some(e) => Some(e.as_error::<ApiError>().cloned().unwrap_or_else(|| {
            if status.is_server_error() {
                tracing::error!(error = %e, "unhandled error");
            }
            ApiError::from_status(status)
        })),
        None if status.is_client_error() || status.is_server_error() => {
            Some(ApiError::from_status(status))
        }
        None => None,
    };
    match api {
        Some(api) => {
            // Keep what the route added (security headers of /share, Retry-After, …);
            // only the body and its own headers are replaced.
            let kept: Vec<_> = res
                .headers()
                .iter()
                .filter(|(name, _)| {
                    *name != header::CONTENT_TYPE && *name != header::CONTENT_LENGTH
                })
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            let mut res = res.into_response(api.into_response(id));
            for (name, value) in kept {
                if !res.headers().contains_key(&name) {
                    res.headers_mut().insert(name, value);
                }
            }
            res
        }
        None => res.map_into_boxed_body(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redacted_path, valid_request_id};

    #[test]
    fn unmatched_paths_are_logged_without_anything_secret_shaped() {
        assert_eq!(redacted_path("/nope/x-1.json"), "/nope/x-1.json");
        assert_eq!(
            redacted_path("/tenant/scans/0192e4a0-7b1c-7d2e-8f00-aabbccddeeff/nope"),
            "/tenant/scans/0192e4a0-7b1c-7d2e-8f00-aabbccddeeff/nope"
        );
        let share = format!("fps_{}", "A".repeat(49));
        assert_eq!(redacted_path(&format!("/sh%61re/{share}/x")), "/…/…/x");
        assert_eq!(redacted_path("/x/fpk_short"), "/x/…");
        assert_eq!(redacted_path(&format!("/x/{}", "a".repeat(41))), "/x/…");
    }

    #[test]
    fn request_id_rules() {
        assert!(valid_request_id("abc-123_x.y"));
        assert!(valid_request_id(&"a".repeat(128)));
        assert!(!valid_request_id(&"a".repeat(129)));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id("ünï"));
    }
}

//! The request context middleware: assigns the request id, logs one line per request
//! (path only: a query string can carry an `api_key`, so it never reaches a log), and
//! renders every error response through the one error contract.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use tracing::Instrument as _;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::RequestId;

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
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
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
    if let Some(metrics) = crate::metrics::Metrics::global() {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        metrics.record(
            res.request().method().as_str(),
            &route,
            res.status().as_u16(),
            took,
        );
    }
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            latency_ms = took.as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    Ok(res)
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
    use super::valid_request_id;

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

//! `fleetpass-bench-baseline`: the floor `cargo xtask bench` measures the real server
//! against. A bare actix-web server, with the same number of workers as `fleetpass
//! serve` on this machine, that answers `GET /api/me` with a fixed JSON body as long as
//! the real answer and the headers every real answer carries (`x-request-id`,
//! `x-content-type-options`, `cache-control`). Whatever the real server spends above
//! this is Fleetpass: routing, the guard, authentication, the store, serialisation.
//!
//! Not a product binary: nothing but the benchmark runs it.
//!
//! Usage: `fleetpass-bench-baseline <bind address> <body bytes> [workers]`.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context as _;

/// The request id header, as the real server names it.
const REQUEST_ID: &str = "x-request-id";

/// Whether an incoming request id is kept, by the real server's rule (1-128 of
/// `[A-Za-z0-9._-]`), so that both servers do the same work per request.
fn valid_request_id(raw: &str) -> bool {
    (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A JSON object of exactly `bytes` bytes (at least the 14 of its empty padding).
fn body_of(bytes: usize) -> String {
    let frame = r#"{"padding":""}"#;
    let fill = bytes.saturating_sub(frame.len());
    format!(r#"{{"padding":"{}"}}"#, "x".repeat(fill))
}

/// `GET /api/me`: the fixed body, a request id like the real server's (the client's
/// when valid, otherwise `req_` and a fresh UUID v7), and the same fixed headers.
async fn me(req: HttpRequest, body: web::Data<web::Bytes>) -> HttpResponse {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(
            || format!("req_{}", uuid::Uuid::now_v7().simple()),
            str::to_owned,
        );
    let mut res = HttpResponse::Ok()
        .content_type("application/json")
        .body(body.get_ref().clone());
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(HeaderName::from_static(REQUEST_ID), value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: fleetpass-bench-baseline <bind address> <body bytes> [workers]";
    let bind: std::net::SocketAddr = args
        .next()
        .context(usage)?
        .parse()
        .context("Invalid bind address")?;
    let bytes: usize = args
        .next()
        .context(usage)?
        .parse()
        .context("Invalid body size")?;
    // actix's default is one worker per core, which is what `fleetpass serve` runs
    // with; the benchmark passes the count explicitly so that both always match.
    let workers = match args.next() {
        Some(n) => n.parse().context("Invalid worker count")?,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let body = web::Data::new(web::Bytes::from(body_of(bytes)));
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(body.clone())
                .route("/api/me", web::get().to(me))
        })
        .workers(workers)
        .bind(bind)
        .with_context(|| format!("Failed to bind {bind}"))?
        .run()
        .await
        .context("Server failed")
    })
}

#[cfg(test)]
mod tests {
    use super::{body_of, valid_request_id};

    #[test]
    fn the_body_has_the_asked_size_and_is_json() {
        for n in [0, 14, 15, 300, 1000] {
            let body = body_of(n);
            assert_eq!(body.len(), n.max(14));
            assert!(body.starts_with('{') && body.ends_with('}'));
        }
    }

    #[test]
    fn request_ids_follow_the_servers_rule() {
        assert!(valid_request_id("abc-123_x.y"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("has space"));
    }
}

//! `fleetpass-bench-baseline`: the floor `cargo xtask bench` measures the real server
//! against. A bare actix-web server, with the same number of workers as `fleetpass
//! serve` on this machine, that answers `GET /api/me` with a fixed JSON body as long as
//! the real answer and the headers every real answer carries (`x-request-id`,
//! `x-content-type-options`, `cache-control`). Whatever the real server spends above
//! this is Fleetpass: routing, the guard, authentication, the store, serialisation.
//!
//! With `--replay FILE` it is the second baseline, the identical-bytes one: it answers
//! every `GET /api/me` with the status, headers and body of a response captured from
//! the real server at the start of the run (FILE holds it as it came off the wire), the
//! same for every request, with no work per request beyond sending it. The first mode
//! asks what the framework costs when it does the real server's per-request chores;
//! this one asks what the same bytes cost on their own, which is what a user compares.
//!
//! Not a product binary: nothing but the benchmark runs it.
//!
//! Usage: `fleetpass-bench-baseline <bind address> (<body bytes> | --replay <file>) [workers]`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::{Context as _, bail};

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

/// A captured response, replayed as it is.
#[derive(Debug, Clone)]
struct Replay {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: web::Bytes,
}

/// Headers actix-web writes itself on every response; a replayed copy would send them
/// twice (or, for `connection: close`, which the capture asked for, end every
/// keep-alive connection).
const FRAMING: &[&str] = &["content-length", "date", "connection", "transfer-encoding"];

impl Replay {
    /// Parses a whole HTTP/1.1 response (status line, headers, blank line, body).
    fn parse(raw: &[u8]) -> anyhow::Result<Self> {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no end of the response head")?;
        let head = std::str::from_utf8(&raw[..split]).context("a head that is not UTF-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let code = status_line
            .split(' ')
            .nth(1)
            .context("no status in the status line")?;
        let status = StatusCode::from_bytes(code.as_bytes()).context("Invalid status")?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').context("a header line without ':'")?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .with_context(|| format!("Invalid header name {name:?}"))?;
            if name.as_str() == "transfer-encoding" {
                bail!("a chunked capture: replay needs the body as sent, with its length");
            }
            if FRAMING.contains(&name.as_str()) {
                continue;
            }
            let value = HeaderValue::from_str(value.trim())
                .with_context(|| format!("Invalid value of {name}"))?;
            headers.push((name, value));
        }
        Ok(Self {
            status,
            headers,
            body: web::Bytes::copy_from_slice(&raw[split + 4..]),
        })
    }
}

/// `GET /api/me` in replay mode: the captured answer. Header values are reference
/// counted, so the clones are the least actix-web lets a handler do.
async fn replay(replay: web::Data<Replay>) -> HttpResponse {
    let mut res = HttpResponse::build(replay.status).body(replay.body.clone());
    let headers = res.headers_mut();
    for (name, value) in &replay.headers {
        headers.append(name.clone(), value.clone());
    }
    res
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage =
        "usage: fleetpass-bench-baseline <bind address> (<body bytes> | --replay <file>) [workers]";
    let bind: std::net::SocketAddr = args
        .next()
        .context(usage)?
        .parse()
        .context("Invalid bind address")?;
    let second = args.next().context(usage)?;
    let mode = if second == "--replay" {
        let path = args.next().context(usage)?;
        let raw = std::fs::read(&path).with_context(|| format!("Failed to read {path}"))?;
        Mode::Replay(Replay::parse(&raw).with_context(|| format!("Invalid capture {path}"))?)
    } else {
        Mode::Sized(second.parse().context("Invalid body size")?)
    };
    // actix's default is one worker per core, which is what `fleetpass serve` runs
    // with; the benchmark passes the count explicitly so that both always match.
    let workers = match args.next() {
        Some(n) => n.parse().context("Invalid worker count")?,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || match &mode {
            Mode::Sized(bytes) => App::new()
                .app_data(web::Data::new(web::Bytes::from(body_of(*bytes))))
                .route("/api/me", web::get().to(me)),
            Mode::Replay(captured) => App::new()
                .app_data(web::Data::new(captured.clone()))
                .route("/api/me", web::get().to(replay)),
        })
        .workers(workers)
        .bind(bind)
        .with_context(|| format!("Failed to bind {bind}"))?
        .run()
        .await
        .context("Server failed")
    })
}

/// Which baseline this process is.
#[derive(Debug, Clone)]
enum Mode {
    /// A fixed body of this many bytes, the real server's per-request chores.
    Sized(usize),
    /// The captured answer, as it is.
    Replay(Replay),
}

#[cfg(test)]
mod tests {
    use super::{Replay, body_of, valid_request_id};

    #[test]
    fn a_capture_replays_its_status_headers_and_body_without_the_framing() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nx-request-id: req_1\r\n\
            ratelimit: \"token\";r=9;t=60\r\nconnection: close\r\n\
            date: Tue, 08 Dec 2026 00:00:00 GMT\r\n\r\n{\"a\":1}";
        let r = Replay::parse(raw).expect("a valid capture");
        assert_eq!(r.status.as_u16(), 200);
        assert_eq!(&r.body[..], b"{\"a\":1}");
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-request-id", "ratelimit"]);
        assert_eq!(r.headers[1].1, "\"token\";r=9;t=60");
    }

    #[test]
    fn a_chunked_or_headless_capture_is_refused() {
        assert!(
            Replay::parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n")
                .is_err()
        );
        assert!(Replay::parse(b"HTTP/1.1 200 OK\r\n").is_err());
    }

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

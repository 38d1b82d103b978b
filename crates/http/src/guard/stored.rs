//! A response as kept for replay: status, the headers that are part of the answer,
//! and the body, in a small length-prefixed binary form (bodies need not be text).
//! The form is sealed before it is stored, so it is never seen at rest.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::web::Bytes;

/// The headers that belong to an answer and are replayed with it. Per-request ones
/// (`X-Request-Id`, rate-limit headers) are set afresh on every response instead.
const KEPT: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::LINK,
    header::WWW_AUTHENTICATE,
    HeaderName::from_static("deprecation"),
    HeaderName::from_static("sunset"),
];

/// The version tag of the form, so that a later change can tell old records apart.
const MAGIC: &[u8; 4] = b"FPR1";

/// A stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredResponse {
    status: u16,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

fn push_chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    // Header names and values are far below 64 KiB (actix refuses larger heads).
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Some(head)
}

fn take_u16(input: &mut &[u8]) -> Option<u16> {
    take(input, 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn take_chunk<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = take_u16(input)?;
    take(input, usize::from(len))
}

impl StoredResponse {
    /// What to keep of a response with `status`, `headers` and `body`.
    pub(crate) fn capture(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Self {
        let headers = KEPT
            .iter()
            .flat_map(|name| {
                headers
                    .get_all(name)
                    .map(move |value| (name.clone(), value.clone()))
            })
            .collect();
        Self {
            status: status.as_u16(),
            headers,
            body,
        }
    }

    /// The binary form.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.status.to_be_bytes());
        let count = u16::try_from(self.headers.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for (name, value) in self.headers.iter().take(usize::from(count)) {
            push_chunk(&mut out, name.as_str().as_bytes());
            push_chunk(&mut out, value.as_bytes());
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// Reads the binary form; `None` when it is not one.
    pub(crate) fn decode(mut input: &[u8]) -> Option<Self> {
        if take(&mut input, 4)? != MAGIC {
            return None;
        }
        let status = take_u16(&mut input)?;
        StatusCode::from_u16(status).ok()?;
        let count = take_u16(&mut input)?;
        let mut headers = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let name = HeaderName::from_bytes(take_chunk(&mut input)?).ok()?;
            let value = HeaderValue::from_bytes(take_chunk(&mut input)?).ok()?;
            headers.push((name, value));
        }
        Some(Self {
            status,
            headers,
            body: Bytes::copy_from_slice(input),
        })
    }

    /// The response to send again.
    pub(crate) fn to_response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = HttpResponse::build(status);
        for (name, value) in &self.headers {
            res.append_header((name.clone(), value.clone()));
        }
        res.body(self.body.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_status_kept_headers_and_any_body() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::LOCATION, HeaderValue::from_static("/x/1"));
        headers.insert(
            HeaderName::from_static("x-request-id"),
            HeaderValue::from_static("req_1"),
        );
        let body = Bytes::from_static(b"{\"a\":1}\0\xff");
        let stored = StoredResponse::capture(StatusCode::CREATED, &headers, body.clone());
        let back = StoredResponse::decode(&stored.encode()).unwrap();
        assert_eq!(back, stored);
        assert_eq!(back.status, 201);
        assert_eq!(back.body, body);
        assert!(
            back.headers.iter().all(|(n, _)| n != "x-request-id"),
            "per-request headers are not kept"
        );
        assert_eq!(back.headers.len(), 2);
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        assert_eq!(StoredResponse::decode(b""), None);
        assert_eq!(StoredResponse::decode(b"XXXX\x00\xc8\x00\x00"), None);
        assert_eq!(StoredResponse::decode(b"FPR1\x00\xc8\x00\x01\x00"), None);
        assert!(StoredResponse::decode(b"FPR1\x00\xc8\x00\x00").is_some());
    }
}

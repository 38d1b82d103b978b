//! `POST /api/public/secret-scanning/github`: GitHub's secret-scanning partner
//! endpoint. GitHub reports the Fleetpass secrets it found in public places as a
//! signed batch; each is revoked as `POST /api/public/revocations` would, and the
//! answer labels each one `true_positive` (it was live, it is revoked now) or
//! `false_positive` (anything else), in GitHub's feedback format.

use actix_web::{HttpRequest, HttpResponse, web};
use fleetpass_domain::scan::Sha256Hex;
use fleetpass_ports::service::auth::{self, LeakOutcome};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::route;
use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{BodyLimit, decode_array, read_bytes};
use crate::guard::Class;
use crate::secret_scanning::{KEY_ID_HEADER, SIGNATURE_HEADER, SignatureRefusal};

/// The route's path.
pub const PATH: &str = "/api/public/secret-scanning/github";

/// The most matches one report may carry.
pub const MAX_REPORTED: usize = 1000;

/// The largest report accepted (4 MiB): [`MAX_REPORTED`] matches of about 4 KiB each,
/// room for a 256-character token and type, a 2 KiB URL (GitHub's blob URLs carry the
/// owner, repository, a 40-character commit and the file path) and the source, with
/// JSON around them. A report GitHub really sends is far smaller; this only bounds
/// what an unsigned sender can make the server read before the signature is checked.
pub const REPORT_LIMIT: usize = 4 * 1024 * 1024;

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        route(PATH, Class::Public)
            .app_data(BodyLimit(REPORT_LIMIT))
            .app_data(web::PayloadConfig::new(REPORT_LIMIT))
            .post(github),
    );
}

/// One match of a report, as GitHub sends it. Fields GitHub may add later are
/// ignored rather than refused: a partner endpoint must not start failing every
/// report the day the sender grows its format.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReportedSecret {
    /// The text that matched a Fleetpass pattern.
    #[schema(example = "fpk_FLEETPASS_TEST_TOKEN_NEVER_ISSUED_000000000C-Bysw")]
    pub token: String,
    /// The secret type the pattern was registered under; the answer echoes it as
    /// `token_type`.
    #[serde(rename = "type")]
    #[schema(example = "fleetpass_api_token")]
    pub token_type: String,
    /// The public URL where it was found (may be empty).
    #[serde(default)]
    pub url: Option<String>,
    /// Where on GitHub it was found (`content`, `commit`, `pull_request_comment`, …).
    #[serde(default)]
    pub source: Option<String>,
}

/// Whether a reported token was a live Fleetpass secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretLabel {
    /// It was a live Fleetpass secret; it is revoked now.
    TruePositive,
    /// Anything else: not a Fleetpass secret, a bad checksum, unknown, or already
    /// revoked, expired or used up.
    FalsePositive,
}

impl From<LeakOutcome> for SecretLabel {
    fn from(outcome: LeakOutcome) -> Self {
        match outcome {
            LeakOutcome::Revoked => Self::TruePositive,
            LeakOutcome::NotLive => Self::FalsePositive,
        }
    }
}

/// The answer about one reported token, in GitHub's feedback format. The token is
/// named by its hash, not echoed: a live secret is never written back out, not even
/// to the party that sent it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretFeedback {
    /// The SHA-256 of the reported `token` (its UTF-8 bytes), as 64 lowercase hex
    /// digits.
    #[schema(example = "1f0a6f1d4f8c1b0a4b7c6e1f8f6f1d5b3c2a1e0f9d8c7b6a5f4e3d2c1b0a9f8e")]
    pub token_hash: String,
    /// The reported `type`, as sent.
    #[schema(example = "fleetpass_api_token")]
    pub token_type: String,
    /// The verdict.
    pub label: SecretLabel,
}

/// The lowercase hex SHA-256 of `text`, as GitHub's `token_hash` wants it.
fn token_hash(text: &str) -> String {
    Sha256Hex::of(text.as_bytes()).into()
}

/// The 401 for a report that is not signed by a configured partner key.
fn refused(refusal: SignatureRefusal) -> ApiError {
    ApiError::unauthorized(format!("the report {refusal}")).hint(format!(
        "Sign the raw body with ECDSA P-256 / SHA-256 using a key of the configured key set: \
         its key_identifier in {KEY_ID_HEADER}, the base64 DER signature in {SIGNATURE_HEADER}."
    ))
}

/// Receive a GitHub secret-scanning partner report: revoke every live Fleetpass secret
/// in it and label each match.
///
/// The request must be signed (ECDSA P-256 over SHA-256 of the raw body) with a key of
/// the configured key set; nothing of the body is parsed before the signature
/// verifies. Each token is revoked as `POST /api/public/revocations` does, in order: a
/// token reported twice is `true_positive` the first time (if live) and
/// `false_positive` after, as it is revoked by then. The answer lists one entry per
/// match, in the order sent.
#[utoipa::path(post, path = "/api/public/secret-scanning/github", tag = "tokens",
    params(
        ("GITHUB-PUBLIC-KEY-IDENTIFIER" = String, Header,
            description = "The `key_identifier` of the key in the configured key set that signed the body."),
        ("GITHUB-PUBLIC-KEY-SIGNATURE" = String, Header,
            description = "Base64 of the ASN.1 DER ECDSA P-256 / SHA-256 signature of the raw body bytes."),
    ),
    request_body(content = Vec<ReportedSecret>,
        description = "GitHub's report: 1-1000 matches (max 4 MiB)."),
    responses(
        (status = 200, description = "One label per reported match, in the order sent",
            body = Vec<SecretFeedback>,
            example = json!([
                {"token_hash": "1f0a6f1d4f8c1b0a4b7c6e1f8f6f1d5b3c2a1e0f9d8c7b6a5f4e3d2c1b0a9f8e",
                 "token_type": "fleetpass_api_token", "label": "true_positive"},
                {"token_hash": "f9164b551efad2fd94d51279813f4294ac1d6b6b794a7b4925814940a8debe63",
                 "token_type": "fleetpass_api_token", "label": "false_positive"}
            ])),
        (status = 400, description = "VALIDATION_ERROR: the body is not JSON, not an array or not sent as `application/json`", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: a signature header is missing, the key identifier is not in the configured key set, or the signature does not verify over the body", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: the partner endpoint is not configured on this server (no FLEETPASS_SECRET_SCANNING_KEYS_FILE or FLEETPASS_SECRET_SCANNING_KEYS)", body = ErrorBody),
        (status = 413, description = "VALIDATION_ERROR: the body is over 4 MiB", body = ErrorBody),
        (status = 422, description = "VALIDATION_ERROR: no match, more than 1000, or a match without `token` or `type` (`field` names it, e.g. `[3].token`)", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE: the store is unreachable (the matches before the failure are revoked already; a retry labels them `false_positive`), or too many large bodies in flight (`Retry-After`)", body = ErrorBody)))]
pub async fn github(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let header = |name: &'static str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| refused(SignatureRefusal::Missing(name)))
    };
    // An unsigned call is unauthenticated whatever this server is configured for.
    let (key_id, signature) = (header(KEY_ID_HEADER)?, header(SIGNATURE_HEADER)?);
    let Some(keys) = &state.config.secret_scanning else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "the secret-scanning partner endpoint is not configured on this server",
        )
        .hint(
            "The operator sets FLEETPASS_SECRET_SCANNING_KEYS_FILE (or \
             FLEETPASS_SECRET_SCANNING_KEYS) to the partner's public key set.",
        ));
    };
    let body = read_bytes(&req, payload.into_inner()).await?;
    keys.verify(key_id, signature, &body).map_err(refused)?;
    let reported: Vec<ReportedSecret> = decode_array(&req, &body)?;
    if reported.is_empty() || reported.len() > MAX_REPORTED {
        return Err(ApiError::invalid_message(
            "body",
            format!(
                "must list 1 to {MAX_REPORTED} matches, not {}",
                reported.len()
            ),
        )
        .hint(format!(
            "Send the matches in batches of at most {MAX_REPORTED}."
        )));
    }
    let outcomes =
        auth::revoke_reported(&state.deps, reported.iter().map(|r| r.token.as_str())).await?;
    let feedback: Vec<SecretFeedback> = reported
        .into_iter()
        .zip(outcomes)
        .map(|(r, outcome)| SecretFeedback {
            token_hash: token_hash(&r.token),
            token_type: r.token_type,
            label: outcome.into(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(feedback))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_hash_is_lowercase_hex_sha256() {
        // SHA-256("abc"), FIPS 180-2's first example.
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

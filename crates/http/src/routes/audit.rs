//! `/api/admin/audit-events/export` (the hash-chained log as NDJSON) and
//! `/api/admin/audit-events/checkpoint` (a signed checkpoint on demand).

use actix_web::{HttpResponse, web};
use fleetpass_domain::audit::chain::ExportLine;
use fleetpass_domain::value::{ValueError, parse_timestamp};
use fleetpass_ports::service::audit::{self as svc, AuditExport, ExportFrom};
use futures_util::stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::route;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Administer, Caller};
use crate::guard::Class;

/// The export's media type: one JSON object per line.
const NDJSON: &str = "application/x-ndjson";

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(route("/api/admin/audit-events/export", Class::Tenant).get(export_audit_events))
        .service(route("/api/admin/audit-events/checkpoint", Class::Tenant).post(audit_checkpoint));
}

/// Query of `GET /api/admin/audit-events/export`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// The last `seq` the reader holds: the export starts after it.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub cursor: Option<String>,
    /// RFC 3339 instant: the export starts at the first event at or after it.
    pub since: Option<String>,
}

/// A signed checkpoint of the tenant's audit chain.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointView {
    /// The tenant.
    pub tenant_id: String,
    /// The number of chained events (the head's seq).
    pub seq: u64,
    /// The head's digest, 64 lowercase hex digits.
    pub head: String,
    /// When it was signed.
    #[schema(format = DateTime)]
    pub at: String,
    /// A compact JWS (EdDSA, `kid` in the header) over these claims, verifiable with
    /// `GET /.well-known/jwks.json`.
    pub jws: String,
}

/// Export the audit log as a verifiable NDJSON stream.
///
/// One JSON object per line, in `seq` order: `{"type":"event","seq","digest","prev","event"}`
/// for an event the caller's scope covers, `{"type":"redacted","seq","digest","prev"}`
/// for one it does not, and last `{"type":"checkpoint","jws"}`, signed now over the
/// head the export ends at. Verify offline with `fleetpass audit verify`.
#[utoipa::path(get, path = "/api/admin/audit-events/export", tag = "audit", params(ExportParams), security(("bearer" = [])),
    responses((status = 200, description = "NDJSON export lines", content_type = "application/x-ndjson", body = String),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn export_audit_events(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
    params: web::Query<ExportParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let cursor = params
        .cursor
        .map(|c| {
            c.parse::<u64>().map_err(|_| {
                ApiError::invalid(
                    "cursor",
                    &ValueError::Format {
                        expected: "the seq of an exported event (a whole number)",
                    },
                )
            })
        })
        .transpose()?;
    let since = params
        .since
        .map(|s| parse_timestamp(&s))
        .transpose()
        .map_err(|e| ApiError::invalid("since", &e))?;
    let export = svc::start_export(
        &state.deps,
        &state.keys,
        &caller.actor,
        ExportFrom { cursor, since },
    )
    .await?;
    let lines = stream::unfold(Some((state, export)), |next| async move {
        let (state, mut export): (web::Data<AppState>, AuditExport) = next?;
        match export.next_lines(&state.deps).await {
            Ok(Some(lines)) => Some((Ok(ndjson(&lines)), Some((state, export)))),
            Ok(None) => None,
            Err(e) => {
                // The status line is gone: cutting the stream short leaves an export
                // with no checkpoint, which never verifies.
                tracing::error!(error = %e, "audit export failed mid-stream");
                Some((Err(actix_web::Error::from(ApiError::from(e))), None))
            }
        }
    });
    Ok(HttpResponse::Ok().content_type(NDJSON).streaming(lines))
}

fn ndjson(lines: &[ExportLine]) -> web::Bytes {
    let mut out = Vec::new();
    for line in lines {
        // An export line is strings, numbers and a JSON value: it always serializes.
        if serde_json::to_writer(&mut out, line).is_ok() {
            out.push(b'\n');
        }
    }
    web::Bytes::from(out)
}

/// Sign a checkpoint of the audit chain now.
#[utoipa::path(post, path = "/api/admin/audit-events/checkpoint", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = CheckpointView), (status = 403, body = ErrorBody)))]
pub async fn audit_checkpoint(
    state: web::Data<AppState>,
    caller: Caller<Administer>,
) -> Result<HttpResponse, ApiError> {
    let signed = svc::checkpoint(&state.deps, &state.keys, &caller.actor).await?;
    Ok(HttpResponse::Ok().json(CheckpointView {
        tenant_id: signed.claims.tenant_id,
        seq: signed.claims.seq,
        head: signed.claims.head.to_string(),
        at: signed.claims.at,
        jws: signed.jws,
    }))
}

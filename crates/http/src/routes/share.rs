//! `/share/*`: the public side of share links, for auditors. JSON for API clients, a
//! self-contained HTML page for people (`Accept: text/html`), and each artifact the
//! link grants. No credentials: the token in the path is the credential, so every
//! answer here forbids caching, referrers, framing and outside resources.

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use fleetpass_domain::scan::{Finding, Report, Scan, Severity};
use fleetpass_domain::share::{Artifact, ShareLink};
use fleetpass_ports::service::shares::{self, ShareRefused, Shared};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::route;
use super::scans::artifact_response;
use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::guard::Class;
use crate::views::ts;

/// The page's whole stylesheet. Inline, so the page renders offline; allowed by its
/// hash in the Content-Security-Policy, so nothing else can run or load.
const CSS: &str = r#"
:root{--ink:#17202a;--muted:#5d6d7e;--line:#e5e8ec;--bg:#f6f7f9;--card:#fff;--accent:#1f5fbf}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#12263f;color:#fff;padding:28px 0 24px}
.wrap{max-width:960px;margin:0 auto;padding:0 24px}
.brand{font-size:13px;letter-spacing:.08em;text-transform:uppercase;opacity:.75}
h1{margin:6px 0 4px;font-size:26px;font-weight:650}
.sub{opacity:.85}
main{padding:24px 0 48px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:20px 22px;margin-bottom:18px}
h2{font-size:16px;margin:0 0 14px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.stat{border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.stat b{display:block;font-size:24px}
.stat span{color:var(--muted);font-size:13px}
.sev{display:inline-block;min-width:72px;text-align:center;border-radius:999px;padding:2px 10px;font-size:12px;font-weight:600;text-transform:uppercase}
.critical{background:#7b1020;color:#fff}.high{background:#d9480f;color:#fff}.medium{background:#f59f00;color:#222}
.low{background:#a5d8ff;color:#0b3050}.info{background:#e9ecef;color:#343a40}
.chips{display:flex;flex-wrap:wrap;gap:10px}
.chip{display:flex;align-items:center;gap:8px;border:1px solid var(--line);border-radius:8px;padding:6px 10px}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:8px 6px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.grants li{margin:4px 0}
.yes{color:#2b8a3e;font-weight:600}.no{color:var(--muted)}
a{color:var(--accent)}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f3f5;padding:1px 5px;border-radius:4px;word-break:break-all}
ol li{margin:6px 0}
pre{margin:8px 0 12px;background:#f1f3f5;border-radius:6px;padding:10px 12px;overflow-x:auto}
pre code{padding:0;background:none}
footer{color:var(--muted);font-size:13px;text-align:center}
"#;

/// The Content-Security-Policy of every `/share` answer: nothing loads or runs but
/// the page's own stylesheet.
fn csp() -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, CSS.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

/// Registers the routes, with the headers every share answer carries.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let headers = DefaultHeaders::new()
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::CONTENT_SECURITY_POLICY, csp()))
        .add((header::X_FRAME_OPTIONS, "DENY"));
    cfg.service(
        web::scope("/share")
            .wrap(headers)
            .service(route("/{token}", Class::Public).get(landing))
            // Before `{artifact}`, which it would match: the passport has a parameter
            // of its own, and a document that says so exactly.
            .service(route("/{token}/passport", Class::Public).get(passport))
            .service(route("/{token}/{artifact}", Class::Public).get(artifact)),
    );
}

fn refused(e: ShareRefused) -> ApiError {
    match e {
        ShareRefused::Unavailable => ApiError::new(ErrorCode::NotFound, "this share link does not exist or is no longer valid")
            .hint("Share links expire, can be revoked and can have an access limit: ask the sender for a new one."),
        ShareRefused::OutOfScope(scope) => ApiError::new(
            ErrorCode::ForbiddenScope,
            format!("this share link grants up to the {scope}, not this artifact"),
        )
        .hint("Ask the sender for a link with a wider scope."),
        ShareRefused::Store(e) => e.into(),
    }
}

/// The JSON a client gets from `GET /share/{token}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharedView {
    /// The shared scan.
    pub scan_id: String,
    /// Its scenario.
    pub scenario: String,
    /// When it completed.
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    /// The link's label.
    pub label: Option<String>,
    /// The widest artifact the link grants.
    pub scope: String,
    /// The artifacts it grants, in nesting order.
    pub grants: Vec<String>,
    /// When the link stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The report.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
    /// Where to fetch each granted artifact.
    #[schema(value_type = Object)]
    pub links: serde_json::Value,
    /// Where the keys that verify the passport are published.
    pub jwks_url: String,
    /// The name of the tenant that shares the scan.
    pub tenant_name: Option<String>,
    /// The name of the fleet that ran it.
    pub fleet_name: Option<String>,
}

fn granted(link: &ShareLink) -> Vec<Artifact> {
    Artifact::ALL
        .into_iter()
        .filter(|a| link.grants(*a))
        .collect()
}

/// The share link's landing: JSON, or a page for browsers.
#[utoipa::path(get, path = "/share/{token}", tag = "share links",
    params(("token" = String, Path, description = "The share token (fps_…)")),
    responses((status = 200, description = "JSON (`SharedView`) or, for `Accept: text/html`, a readable page", body = SharedView),
        (status = 404, description = "Unknown, expired, revoked or used-up link", body = ErrorBody)))]
pub async fn landing(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let shared = shares::open(&state.deps, &token, Artifact::Report)
        .await
        .map_err(refused)?;
    let base = format!("{}/share/{}", state.config.public_url, token.as_str());
    let jwks_url = format!("{}/.well-known/jwks.json", state.config.public_url);
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        let page = page(&shared, Some(&shared.artifacts.report), &base, &jwks_url);
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(page.into_string()));
    }
    let Shared {
        link,
        scan,
        artifacts,
        tenant_name,
        fleet_name,
    } = shared;
    let links: serde_json::Map<String, serde_json::Value> = granted(&link)
        .iter()
        .map(|a| {
            (
                a.as_str().to_owned(),
                format!("{base}/{}", a.as_str()).into(),
            )
        })
        .collect();
    Ok(HttpResponse::Ok().json(SharedView {
        scan_id: scan.id.to_string(),
        scenario: scan.scenario.as_str().to_owned(),
        completed_at: scan.finished_at.map(ts),
        label: link.label.as_ref().map(ToString::to_string),
        scope: link.scope.as_str().to_owned(),
        grants: granted(&link)
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        expires_at: ts(link.expires_at),
        // Through a JSON value, as stored, so its keys go out sorted as they always have.
        report: serde_json::to_value(&artifacts.report).map_err(|e| {
            tracing::error!(error = %e, "a report did not serialize");
            ApiError::internal()
        })?,
        links: links.into(),
        jwks_url,
        tenant_name,
        fleet_name,
    }))
}

/// What `GET /share/{token}/passport` may carry besides the passport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Include {
    /// The bundle (`bundleSha256`, `bundle`), so a verifier spends one access of the
    /// link, not two.
    Bundle,
}

/// `?include=` of the shared passport.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PassportParams {
    /// `bundle`: the answer carries the bundle as well.
    #[param(inline)]
    pub include: Option<Include>,
}

/// One artifact through a share link: `report` or `bundle` (the passport has its own
/// operation, `GET /share/{token}/passport`).
#[utoipa::path(get, path = "/share/{token}/{artifact}", tag = "share links",
    params(("token" = String, Path, description = "The share token (fps_…)"),
        ("artifact" = String, Path, description = "`report` or `bundle`")),
    responses((status = 200, description = "The artifact, as at /tenant/scans/{scan_id}/{artifact}"),
        (status = 403, description = "Outside the link's scope", body = ErrorBody),
        (status = 404, description = "Unknown, expired, revoked or used-up link", body = ErrorBody)))]
pub async fn artifact(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (token, artifact) = path.into_inner();
    let artifact = Artifact::parse(&artifact).map_err(|_| ApiError::not_found())?;
    let shared = shares::open(&state.deps, &token, artifact)
        .await
        .map_err(refused)?;
    Ok(artifact_response(
        artifact,
        shared.scan.id,
        &shared.artifacts,
    ))
}

/// The passport through a share link; with `?include=bundle` the bundle too, for one
/// counted access (what `fleetpass passport verify <url>` uses).
#[utoipa::path(get, path = "/share/{token}/passport", tag = "share links",
    params(("token" = String, Path, description = "The share token (fps_…)"), PassportParams),
    responses((status = 200, description = "The passport, as at /tenant/scans/{scan_id}/passport; with `include=bundle` also `bundleSha256` and `bundle`"),
        (status = 403, description = "Outside the link's scope", body = ErrorBody),
        (status = 404, description = "Unknown, expired, revoked or used-up link", body = ErrorBody)))]
pub async fn passport(
    state: web::Data<AppState>,
    token: web::Path<String>,
    params: web::Query<PassportParams>,
) -> Result<HttpResponse, ApiError> {
    let shared = shares::open(&state.deps, &token, Artifact::Passport)
        .await
        .map_err(refused)?;
    let a = &shared.artifacts;
    if params.include != Some(Include::Bundle) {
        return Ok(artifact_response(Artifact::Passport, shared.scan.id, a));
    }
    // One access for both: the passport grants the bundle too (scopes nest). The
    // bundle goes out verbatim, as `…/bundle` sends it.
    let passport = serde_json::to_string(&a.passport).map_err(|e| {
        tracing::error!(error = %e, "a passport did not serialize");
        ApiError::internal()
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("X-Bundle-Sha256", a.bundle_sha256.as_str()))
        .body(format!(
            "{{\"scanId\":\"{}\",\"passport\":{passport},\"format\":\"JWS compact serialization (EdDSA / Ed25519)\",\"verifyWith\":\"/.well-known/jwks.json\",\"bundleSha256\":\"{}\",\"bundle\":{}}}",
            shared.scan.id, a.bundle_sha256, a.bundle_json
        )))
}

fn severity_badge(s: Severity) -> Markup {
    html! { span class=(format!("sev {}", s.as_str())) { (s.as_str()) } }
}

fn findings_table(findings: &[Finding]) -> Markup {
    html! {
        @if findings.is_empty() {
            p { "No findings." }
        } @else {
            table {
                thead { tr { th { "Severity" } th { "Finding" } th { "Asset" } } }
                tbody {
                    @for f in findings {
                        tr {
                            td { (severity_badge(f.severity)) }
                            td { (f.title) @if let Some(d) = &f.detail { br; small { (d) } } }
                            td { (f.asset_hostname.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    }
}

/// The auditor's page. maud escapes every interpolated value.
fn page(shared: &Shared, report: Option<&Report>, base: &str, jwks_url: &str) -> Markup {
    let Shared {
        link,
        scan,
        artifacts,
        tenant_name,
        fleet_name,
    } = shared;
    let named = |name: &Option<String>, id: String| match name {
        Some(name) => format!("{name} ({id})"),
        None => id,
    };
    let tenant = named(tenant_name, scan.tenant_id.to_string());
    let fleet = named(fleet_name, scan.fleet_id.to_string());
    let title = link.label.as_ref().map_or_else(
        || format!("{} scan", capitalised(scan)),
        ToString::to_string,
    );
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex, nofollow";
                title { "Fleetpass · " (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header { div class="wrap" {
                    div class="brand" { "Fleetpass · shared scan results" }
                    h1 { (title) }
                    div class="sub" {
                        (capitalised(scan)) " scan · completed "
                        (scan.finished_at.map(human).unwrap_or_default())
                        " · this link expires " (human(link.expires_at))
                    }
                    div class="sub" { "Shared by tenant " b { (tenant) } " · fleet " b { (fleet) } }
                } }
                main { div class="wrap" {
                    @if let Some(r) = report {
                        section {
                            h2 { "Summary" }
                            div class="grid" {
                                div class="stat" { b { (r.counts.assets) } span { "assets" } }
                                div class="stat" { b { (r.counts.open_ports) } span { "open ports" } }
                                div class="stat" { b { (r.counts.software) } span { "software packages" } }
                                div class="stat" { b { (r.counts.findings) } span { "findings" } }
                            }
                        }
                        section {
                            h2 { "Findings by severity" }
                            div class="chips" {
                                @for s in Severity::DESCENDING {
                                    div class="chip" {
                                        (severity_badge(s))
                                        b { (r.counts.findings_by_severity.get(&s).copied().unwrap_or(0)) }
                                    }
                                }
                            }
                        }
                        section {
                            h2 { "Top findings" }
                            (findings_table(&r.top_findings))
                        }
                    }
                    section {
                        h2 { "What this link grants" }
                        ul class="grants" {
                            @for a in Artifact::ALL {
                                li {
                                    @if link.grants(a) {
                                        span class="yes" { "✓ " } a href=(format!("{base}/{}", a.as_str())) { (artifact_name(a)) }
                                    } @else {
                                        span class="no" { "✗ " (artifact_name(a)) " (not included)" }
                                    }
                                }
                            }
                        }
                        p { "Each visit counts as one access"
                            @if let Some(max) = link.max_accesses { " (" (link.access_count) " of " (max.get()) " used)" }
                            ". The link stops working on " (human(link.expires_at)) "." }
                    }
                    @if link.grants(Artifact::Passport) {
                        section {
                            h2 { "How to verify the passport" }
                            p { "With the " code { "fleetpass" } " command (it fetches the passport, the bundle and the public keys, checks the signature and the bundle's SHA-256, and exits 0 only when everything checks):" }
                            pre { code { (format!("fleetpass passport verify {base}")) } }
                            p { "Or offline, from saved files: " code { "fleetpass passport verify --passport passport.json --jwks jwks.json --bundle bundle.json" } ". By hand, with any JOSE library:" }
                            ol {
                                li { "Download the passport from " a href=(format!("{base}/passport")) { (format!("{base}/passport")) }
                                     ": its " code { "passport" } " field is a JWS (EdDSA, Ed25519)." }
                                li { "Fetch the public keys from " a href=(jwks_url) { (jwks_url) }
                                     " and pick the key whose " code { "kid" } " matches the JWS header." }
                                li { "Verify the signature with any JOSE library; the claims name the tenant, fleet, environment, scan, scenario, completion time and counts." }
                                li { "Download the bundle and check that the SHA-256 of its " code { "bundle" }
                                     " member in RFC 8785 canonical form (JCS) equals the passport's "
                                     code { "bundleSha256" } ": " code { (artifacts.bundle_sha256) }
                                     " (docs/PASSPORTS.md has Python and jq snippets)." }
                            }
                        }
                    }
                } }
                footer { div class="wrap" { "Shared through Fleetpass. Scan " code { (scan.id) } } }
            }
        }
    }
}

/// A timestamp for people: minutes, in UTC.
fn human(at: fleetpass_domain::Timestamp) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let format =
        time::macros::format_description!("[day] [month repr:short] [year], [hour]:[minute] UTC");
    at.format(&format).unwrap_or_else(|_| ts(at))
}

fn artifact_name(a: Artifact) -> &'static str {
    match a {
        Artifact::Report => "Report (summary)",
        Artifact::Bundle => "Bundle (every asset and finding, with its SHA-256)",
        Artifact::Passport => "Passport (signed attestation)",
    }
}

fn capitalised(scan: &Scan) -> String {
    let name = scan.scenario.as_str();
    let mut chars = name.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

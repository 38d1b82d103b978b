//! `GET /docs`: the API reference a consumer reads instead of the JSON, rendered on the
//! server from the OpenAPI document ([`crate::openapi::document`]) and the guides in
//! `src/guides/*.md`, once per process.
//!
//! Server-rendered HTML rather than a vendored Redoc or Scalar bundle: it is built from
//! the very document the server serves and Schemathesis checks, so it cannot drift; it
//! needs no JavaScript, so it works offline and under a CSP that allows nothing but its
//! own stylesheet (by hash); and it adds no megabytes of third-party script to the
//! binary. Every `curl` example carries its documented status in `data-status`, and a
//! test runs them all against a live server (`crates/server/tests/docs.rs`).

use std::fmt::Write as _;
use std::sync::OnceLock;

use base64::Engine as _;
use maud::{Markup, PreEscaped, html};
use serde_json::Value;

use crate::openapi::{self, TEXT_PATTERN};

/// The page's whole stylesheet, inline and allowed by its hash.
const CSS: &str = r#"
:root{--ink:#17202a;--muted:#5d6d7e;--line:#e5e8ec;--bg:#f6f7f9;--card:#fff;--accent:#1f5fbf;--code:#0f1b2d}
*{box-sizing:border-box}
body{margin:0;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--ink);background:var(--bg)}
nav{position:fixed;top:0;bottom:0;left:0;width:270px;overflow-y:auto;background:#12263f;color:#d6e0f0;padding:20px 16px 40px;font-size:13px}
nav a{color:#d6e0f0;text-decoration:none;display:block;padding:2px 0}
nav a:hover{color:#fff}
nav h2{font-size:11px;letter-spacing:.08em;text-transform:uppercase;color:#8fa6c4;margin:18px 0 6px}
nav .brand{font-size:17px;font-weight:650;color:#fff}
nav .m{display:inline-block;width:48px;font:600 10px ui-monospace,monospace;color:#8fd3a8}
main{margin-left:270px;padding:28px 40px 80px;max-width:1100px}
h1{font-size:28px;margin:0 0 8px}
h2.area{font-size:22px;margin:44px 0 12px;padding-bottom:6px;border-bottom:2px solid var(--line);text-transform:capitalize}
section.op,section.guide{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:20px 24px;margin:0 0 22px}
section.op:target{border-color:var(--accent);box-shadow:0 0 0 3px #d0e0fa}
main:has(section.op:target)>:not(section.op:target):not(.back){display:none}
.back{display:none;margin:0 0 14px}
main:has(section.op:target)>.back{display:block}
h3{margin:0 0 4px;font-size:18px}
h3 code{font-size:16px;background:none;padding:0}
h4{font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:18px 0 6px}
.verb{display:inline-block;min-width:62px;text-align:center;border-radius:5px;padding:1px 8px;margin-right:8px;font:700 12px ui-monospace,monospace;color:#fff;vertical-align:2px}
.get{background:#2b8a3e}.post{background:#1f5fbf}.patch{background:#b35c00}.delete{background:#c92a2a}.put{background:#5f3dc4}
.auth{color:var(--muted);font-size:13px;margin:2px 0 10px}
.auth b{color:var(--ink)}
table{width:100%;border-collapse:collapse;font-size:13.5px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:11px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
td.f{white-space:nowrap}
.c{color:#4a5a6a;font-size:12.5px}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f3f5;padding:1px 5px;border-radius:4px;word-break:break-word}
pre{background:var(--code);color:#e6edf3;border-radius:8px;padding:12px 14px;overflow-x:auto;font:12.5px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre code{background:none;color:inherit;padding:0}
.req{color:#c92a2a;font-weight:600}
.st{font:700 12.5px ui-monospace,monospace}
"#;

/// The guides, in reading order: anchor, title, markdown.
const GUIDES: [(&str, &str, &str); 8] = [
    (
        "authentication",
        "Authentication",
        include_str!("guides/authentication.md"),
    ),
    ("errors", "Errors", include_str!("guides/errors.md")),
    (
        "pagination",
        "Pagination",
        include_str!("guides/pagination.md"),
    ),
    (
        "idempotency",
        "Idempotency",
        include_str!("guides/idempotency.md"),
    ),
    (
        "rate-limits",
        "Rate limits",
        include_str!("guides/rate-limits.md"),
    ),
    (
        "enrollment",
        "The enrollment flow",
        include_str!("guides/enrollment.md"),
    ),
    (
        "fleet-scans",
        "Scan a whole fleet",
        include_str!("guides/fleet-scans.md"),
    ),
    (
        "share-links",
        "Share links and passport verification",
        include_str!("guides/share-links.md"),
    ),
];

/// The areas, in the order a consumer meets them; tags not listed follow.
const AREAS: [&str; 11] = [
    "tokens",
    "environments",
    "users",
    "service-accounts",
    "audit",
    "fleets",
    "agents",
    "agent",
    "scans",
    "share links",
    "schedules",
];

/// The rendered page.
pub fn page() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| render(openapi::document()).into_string())
}

/// The page's Content-Security-Policy: nothing loads or runs but its own stylesheet.
pub fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let digest = ring::digest::digest(&ring::digest::SHA256, CSS.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'"
        )
    })
}

/// Markdown to HTML. The guides are the project's own text, but raw HTML in them is
/// still shown as text, so the page holds only what the renderer makes.
fn markdown(md: &str) -> Markup {
    use pulldown_cmark::{Event, Options, Parser};
    let events = Parser::new_ext(md, Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
        other => other,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    PreEscaped(out)
}

/// Markdown of one sentence or phrase, without the paragraph around it.
fn inline(md: &str) -> Markup {
    let html = markdown(md).into_string();
    let html = html.trim_end();
    let html = html
        .strip_prefix("<p>")
        .and_then(|h| h.strip_suffix("</p>"))
        .unwrap_or(html);
    PreEscaped(html.to_owned())
}

/// An operation of the document.
struct Op<'a> {
    method: &'a str,
    path: &'a str,
    op: &'a Value,
}

impl Op<'_> {
    fn id(&self) -> String {
        format!("op-{}", self.op["operationId"].as_str().unwrap_or_default())
    }
}

fn operations(doc: &Value) -> Vec<(String, Vec<Op<'_>>)> {
    let mut groups: Vec<(String, Vec<Op<'_>>)> = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "put", "patch", "delete"] {
            let op = &item[method];
            if op.is_null() {
                continue;
            }
            let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
            let entry = match groups.iter_mut().position(|(t, _)| *t == tag) {
                Some(i) => &mut groups[i].1,
                None => {
                    groups.push((tag, Vec::new()));
                    &mut groups.last_mut().expect("just pushed").1
                }
            };
            entry.push(Op { method, path, op });
        }
    }
    let rank = |tag: &str| AREAS.iter().position(|a| *a == tag).unwrap_or(AREAS.len());
    groups.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then(a.0.cmp(&b.0)));
    groups
}

/// Follows a `$ref` to its schema.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => r
            .strip_prefix("#/components/schemas/")
            .map_or(schema, |name| &doc["components"]["schemas"][name]),
        None => schema,
    }
}

/// A type as a reader says it: `integer`, `string (uuid)`, `"a" | "b"`, `array of object`.
fn type_label(doc: &Value, schema: &Value) -> String {
    let schema_ref = schema;
    let schema = resolve(doc, schema);
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ if !schema["oneOf"].is_null() || !schema["anyOf"].is_null() => {
            let alts = schema["oneOf"]
                .as_array()
                .or(schema["anyOf"].as_array())
                .cloned()
                .unwrap_or_default();
            return alts
                .iter()
                .map(|a| type_label(doc, a))
                .collect::<Vec<_>>()
                .join(" | ");
        }
        _ if schema_ref.get("$ref").is_some() => vec!["object"],
        _ => vec!["any"],
    };
    let mut label = types
        .iter()
        .map(|t| match *t {
            "array" => format!("array of {}", type_label(doc, &schema["items"])),
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" | ");
    if let Some(format) = schema["format"].as_str()
        && !["int32", "int64"].contains(&format)
    {
        let _ = write!(label, " ({format})");
    }
    label
}

/// The bounds, pattern and default of a schema, in words.
fn constraints(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let n = |k: &str| schema[k].as_i64();
    match (n("minimum"), n("maximum")) {
        (Some(a), Some(b)) => out.push(format!("{a}-{b}")),
        (Some(a), None) => out.push(format!("≥ {a}")),
        (None, Some(b)) => out.push(format!("≤ {b}")),
        _ => {}
    }
    match (n("minLength"), n("maxLength")) {
        (Some(a), Some(b)) => out.push(format!("{a}-{b} characters")),
        (Some(a), None) => out.push(format!("≥ {a} characters")),
        (None, Some(b)) => out.push(format!("≤ {b} characters")),
        _ => {}
    }
    match (n("minItems"), n("maxItems")) {
        (Some(a), Some(b)) => out.push(format!("{a}-{b} items")),
        (Some(a), None) => out.push(format!("≥ {a} items")),
        (None, Some(b)) => out.push(format!("≤ {b} items")),
        _ => {}
    }
    match schema["pattern"].as_str() {
        Some(p) if p == TEXT_PATTERN => {
            out.push("no control characters, not blank (trimmed)".to_owned());
        }
        Some(p) if p.contains("0-9a-fA-F]{8}") => {}
        Some(p) => out.push(format!("pattern {p}")),
        None => {}
    }
    if !schema["default"].is_null() {
        out.push(format!("default {}", schema["default"]));
    }
    out
}

/// One row of a field table.
struct Field {
    name: String,
    ty: String,
    required: bool,
    description: String,
    constraints: Vec<String>,
}

/// The fields of an object schema, nested objects and arrays of objects flattened with
/// a dotted (`constraints.maxAssets`) or bracketed (`assets[].ip`) prefix.
fn fields(doc: &Value, schema: &Value, prefix: &str, depth: usize, out: &mut Vec<Field>) {
    let schema = resolve(doc, schema);
    // A flattened view (`allOf` of its parts) lists the parts' fields.
    for part in schema["allOf"].as_array().into_iter().flatten() {
        fields(doc, part, prefix, depth, out);
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        let full = format!("{prefix}{name}");
        let target = first_ref(prop).map_or(prop, |r| resolve(doc, r));
        let description = prop["description"]
            .as_str()
            .or(target["description"].as_str())
            .unwrap_or_default()
            .to_owned();
        out.push(Field {
            name: full.clone(),
            ty: type_label(doc, first_ref(prop).unwrap_or(prop)),
            required: required.contains(&name.as_str()),
            description,
            constraints: constraints(prop),
        });
        if depth < 2 {
            if target["properties"].is_object() {
                fields(doc, target, &format!("{full}."), depth + 1, out);
            } else if !target["items"].is_null() {
                let items = resolve(doc, &target["items"]);
                if items["properties"].is_object() {
                    fields(doc, &target["items"], &format!("{full}[]."), depth + 1, out);
                }
            }
        }
    }
}

/// The `$ref` of a property that is a reference or a nullable reference.
fn first_ref(prop: &Value) -> Option<&Value> {
    if prop.get("$ref").is_some() {
        return Some(prop);
    }
    prop["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|alt| alt.get("$ref").is_some())
}

fn field_table(rows: &[Field], with_required: bool) -> Markup {
    html! {
        table {
            thead { tr { th { "Field" } th { "Type" } @if with_required { th { "Required" } } th { "Description" } } }
            tbody {
                @for f in rows {
                    tr {
                        td.f { code { (f.name) } }
                        td { (f.ty) }
                        @if with_required {
                            td {
                                @if f.required { span.req { "Yes" } } @else { "No" }
                            }
                        }
                        td {
                            (inline(&f.description))
                            @if !f.constraints.is_empty() {
                                br; span.c { (f.constraints.join("; ")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The shell variable that stands for a path parameter in the examples.
fn path_var(path: &str, name: &str) -> String {
    let var = match name {
        "id" if path.starts_with("/api/admin/tokens") => "TOKEN_ID",
        "id" if path.starts_with("/api/admin/users") => "USER_ID",
        "id" if path.starts_with("/api/admin/service-accounts") => "SERVICE_ACCOUNT_ID",
        "id" if path.starts_with("/api/admin/environments") => "ENVIRONMENT_ID",
        "id" if path.starts_with("/platform/tenants") => "TENANT_ID",
        // Cancelling wants a scan still queued; `$SCAN_ID` is claimed and completed by
        // the agent examples.
        "scan_id" if path.ends_with("/cancel") => "QUEUED_SCAN_ID",
        "token_id" => "ENROLLMENT_TOKEN_ID",
        "link_id" => "SHARE_LINK_ID",
        "token" => "SHARE_TOKEN",
        "artifact" => return "report".to_owned(),
        other => return format!("${}", other.to_uppercase()),
    };
    format!("${var}")
}

/// Values in example bodies that must be the reader's own.
fn body_var(field: &str) -> Option<&'static str> {
    Some(match field {
        "fleetId" => "$FLEET_ID",
        "environmentId" => "$ENVIRONMENT_ID",
        "agentId" => "$AGENT_ID",
        "enrollmentToken" => "$ENROLLMENT_TOKEN",
        "agentSecret" => "$AGENT_SECRET",
        "token" => "$LEAKED_SECRET",
        _ => return None,
    })
}

/// The example body of an operation, with the reader's own ids as variables.
fn example_body(doc: &Value, op: &Value) -> Option<Value> {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    let schema = resolve(doc, schema);
    let mut example = schema["example"].clone();
    if example.is_null() {
        return None;
    }
    if let Some(map) = example.as_object_mut() {
        for (k, v) in map.iter_mut() {
            if let Some(var) = body_var(k) {
                *v = Value::String(var.to_owned());
            }
        }
    }
    Some(example)
}

/// A copy-pasteable `curl` for the operation. `$FLEETPASS_URL`, `$FLEETPASS_TOKEN` and
/// the id variables are the reader's.
fn curl(doc: &Value, o: &Op<'_>) -> String {
    let mut path = o.path.to_owned();
    for param in o.op["parameters"].as_array().into_iter().flatten() {
        if param["in"] == "path" {
            let name = param["name"].as_str().unwrap_or_default();
            path = path.replace(&format!("{{{name}}}"), &path_var(o.path, name));
        }
    }
    let mut lines = vec![format!(
        "curl -X {} \"$FLEETPASS_URL{path}\"",
        o.method.to_uppercase()
    )];
    match openapi::guard_of(o.path, o.op) {
        openapi::Guard::Tenant => {
            lines.push("  -H \"Authorization: Bearer $FLEETPASS_TOKEN\"".to_owned());
        }
        openapi::Guard::Agent => {
            lines.push("  -H \"Authorization: Bearer $AGENT_ACCESS_TOKEN\"".to_owned());
        }
        openapi::Guard::Platform => {
            lines.push("  -H \"Authorization: Bearer $FLEETPASS_ADMIN_KEY\"".to_owned());
        }
        openapi::Guard::Public | openapi::Guard::Open => {}
    }
    if o.path == crate::routes::secret_scanning::PATH {
        // The partner signs the exact bytes that follow (the here-document's text and
        // its final newline).
        lines.push(format!(
            "  -H \"{}: $PARTNER_KEY_ID\"",
            crate::secret_scanning::KEY_ID_HEADER
        ));
        lines.push(format!(
            "  -H \"{}: $PARTNER_SIGNATURE\"",
            crate::secret_scanning::SIGNATURE_HEADER
        ));
    }
    let body = example_body(doc, o.op);
    if body.is_some() {
        lines.push("  -H \"Content-Type: application/json\"".to_owned());
        // The body comes from a here-document with an unquoted delimiter, so the
        // reader's `$FLEET_ID` and friends expand (inside `-d '…'` they would not).
        lines.push("  --data-binary @- <<EOF".to_owned());
    }
    let mut command = lines.join(" \\\n");
    if let Some(body) = body {
        let json = serde_json::to_string_pretty(&body).unwrap_or_default();
        command.push_str(&format!("\n{json}\nEOF"));
    }
    command
}

/// The shell variables the examples use and where each comes from, in the order a
/// reader meets them (the page lists them; the docs test sets them the same way).
pub const EXAMPLE_VARIABLES: [(&str, &str); 22] = [
    (
        "FLEETPASS_URL",
        "the server's base URL, e.g. http://127.0.0.1:8080",
    ),
    (
        "FLEETPASS_ADMIN_KEY",
        "the platform admin key the server was started with",
    ),
    (
        "FLEETPASS_TOKEN",
        "an API token: the demo token a memory-mode server prints, or adminToken of POST /platform/tenants",
    ),
    ("TENANT_ID", "tenantId of POST /platform/tenants"),
    ("ENVIRONMENT_ID", "id of POST /api/admin/environments"),
    ("USER_ID", "id of POST /api/admin/users"),
    (
        "SERVICE_ACCOUNT_ID",
        "id of POST /api/admin/service-accounts",
    ),
    ("TOKEN_ID", "id of POST /api/admin/tokens"),
    (
        "LEAKED_SECRET",
        "any Fleetpass secret you found (token of POST /api/admin/tokens, for a try)",
    ),
    ("FLEET_ID", "fleetId of POST /tenant/discovery/fleets"),
    (
        "ENROLLMENT_TOKEN",
        "enrollmentToken of POST /tenant/discovery/fleets or of …/enrollment-tokens",
    ),
    (
        "ENROLLMENT_TOKEN_ID",
        "id of POST /tenant/discovery/fleets/{fleet_id}/enrollment-tokens",
    ),
    ("AGENT_ID", "agentId of POST /agent/enroll"),
    ("AGENT_SECRET", "agentSecret of POST /agent/enroll"),
    (
        "AGENT_ACCESS_TOKEN",
        "accessToken of POST /agent/enroll or POST /agent/token",
    ),
    ("SCAN_ID", "scanId of POST /tenant/scans"),
    (
        "QUEUED_SCAN_ID",
        "scanId of a POST /tenant/scans no agent has claimed yet",
    ),
    (
        "SHARE_LINK_ID",
        "id of POST /tenant/scans/{scan_id}/share-links",
    ),
    (
        "SHARE_TOKEN",
        "token of POST /tenant/scans/{scan_id}/share-links",
    ),
    ("SCHEDULE_ID", "scheduleId of POST /tenant/schedules"),
    (
        "PARTNER_KEY_ID",
        "the key_identifier of a key in the server's secret-scanning key set (FLEETPASS_SECRET_SCANNING_KEYS_FILE)",
    ),
    (
        "PARTNER_SIGNATURE",
        "base64 of that key's DER ECDSA P-256 / SHA-256 signature of the exact body sent (GitHub makes it)",
    ),
];

/// The first 2xx status of an operation: what its example answers.
fn success(op: &Value) -> Option<(String, &Value)> {
    op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(s, _)| s.starts_with('2'))
        .map(|(s, r)| (s.clone(), r))
}

fn auth_line(o: &Op<'_>) -> Markup {
    let role = o.op["x-required-role"].as_str().unwrap_or("any");
    html! {
        p.auth {
            @match openapi::guard_of(o.path, o.op) {
                openapi::Guard::Tenant => { "Auth: " b { "API token" } " (Bearer, x-api-key or ?api_key=) · role: " b { (role) } }
                openapi::Guard::Agent => { "Auth: " b { "agent access token" } " (Bearer JWT from POST /agent/token)" }
                openapi::Guard::Platform => { "Auth: " b { "platform admin key" } " (FLEETPASS_ADMIN_KEY)" }
                openapi::Guard::Public => { "Auth: " b { "none" } " (public; limited per client address)" }
                openapi::Guard::Open => { "Auth: " b { "none" } }
            }
        }
    }
}

fn operation(doc: &Value, o: &Op<'_>) -> Markup {
    let op = o.op;
    let params: Vec<&Value> = op["parameters"].as_array().into_iter().flatten().collect();
    let body_schema = &op["requestBody"]["content"]["application/json"]["schema"];
    let mut body_fields = Vec::new();
    if !body_schema.is_null() {
        fields(doc, body_schema, "", 0, &mut body_fields);
    }
    let success = success(op);
    let mut response_fields = Vec::new();
    if let Some((_, response)) = &success {
        let schema = &response["content"]["application/json"]["schema"];
        if !schema.is_null() {
            fields(doc, schema, "", 0, &mut response_fields);
        }
    }
    let errors: Vec<(&String, &Value)> = op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(s, _)| !s.starts_with('2'))
        .collect();
    let status = success.as_ref().map(|(s, _)| s.clone()).unwrap_or_default();
    html! {
        section.op id=(o.id()) {
            h3 { span class={ "verb " (o.method) } { (o.method.to_uppercase()) } code { (o.path) } }
            @if let Some(summary) = op["summary"].as_str() { p { (inline(summary)) } }
            @if let Some(description) = op["description"].as_str() { (markdown(description)) }
            (auth_line(o))
            @if !params.is_empty() {
                h4 { "Parameters" }
                table {
                    thead { tr { th { "Name" } th { "In" } th { "Type" } th { "Required" } th { "Description" } } }
                    tbody {
                        @for p in &params {
                            tr {
                                td.f { code { (p["name"].as_str().unwrap_or_default()) } }
                                td { (p["in"].as_str().unwrap_or_default()) }
                                td { (type_label(doc, &p["schema"])) }
                                td { @if p["required"] == true { span.req { "Yes" } } @else { "No" } }
                                td {
                                    (inline(p["description"].as_str().unwrap_or_default()))
                                    @let c = constraints(&p["schema"]);
                                    @if !c.is_empty() { br; span.c { (c.join("; ")) } }
                                }
                            }
                        }
                    }
                }
            }
            @if !body_schema.is_null() {
                h4 {
                    "Request body"
                    @if op["requestBody"]["required"] != true { " (optional: an empty body uses the defaults)" }
                }
                (field_table(&body_fields, true))
            }
            h4 { "Response " span.st { (status) } }
            @if let Some((_, response)) = &success {
                p { (inline(response["description"].as_str().unwrap_or_default())) }
            }
            @if !response_fields.is_empty() { (field_table(&response_fields, true)) }
            @if let Some((_, response)) = &success && let Some(links) = response["links"].as_object() {
                p.c {
                    "Next: "
                    @for (i, link) in links.values().enumerate() {
                        @if i > 0 { ", " }
                        @let target = link["operationId"].as_str().unwrap_or_default();
                        a href={ "#op-" (target) } { code { (target) } }
                        @for (param, expr) in link["parameters"].as_object().into_iter().flatten() {
                            " (" code { (param) } " = " code { (expr.as_str().unwrap_or_default()) } ")"
                        }
                    }
                }
            }
            @if let Some((_, response)) = &success
                && let example = &resolve(doc, &response["content"]["application/json"]["schema"])["example"]
                && !example.is_null()
            {
                pre { code { (serde_json::to_string_pretty(example).unwrap_or_default()) } }
            }
            h4 { "Errors" }
            table {
                thead { tr { th { "Code" } th { "Meaning" } th { "Typical cause" } th { "Suggested fix" } } }
                tbody {
                    @for (s, r) in &errors {
                        @let row = s.parse().ok().and_then(openapi::error_row);
                        @let meaning = row.map_or("", |r| r.meaning);
                        @let cause = r["description"].as_str().unwrap_or_default();
                        @let cause = cause.strip_prefix(&format!("{meaning}: ")).unwrap_or(cause);
                        tr {
                            td.st { (s) }
                            td { (meaning) }
                            td { (inline(cause)) }
                            td { (inline(row.map_or("", |r| r.fix))) }
                        }
                    }
                }
            }
            h4 { "Example" }
            pre.curl data-op=(op["operationId"].as_str().unwrap_or_default()) data-status=(status) {
                code { (curl(doc, o)) }
            }
        }
    }
}

fn render(doc: &Value) -> Markup {
    let groups = operations(doc);
    html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Fleetpass API reference" }
                style { (PreEscaped(CSS)) }
            }
            body {
                nav {
                    div.brand { "Fleetpass API" }
                    h2 { "Guides" }
                    @for (id, title, _) in GUIDES { a href={ "#" (id) } { (title) } }
                    a href="#status-codes" { "Status codes" }
                    @for (tag, ops) in &groups {
                        h2 { (tag) }
                        @for o in ops {
                            a href={ "#" (o.id()) } {
                                span.m { (o.method.to_uppercase()) }
                                (o.op["summary"].as_str().unwrap_or(o.path).replace('`', ""))
                            }
                        }
                    }
                }
                main {
                    // An operation's link shows it alone (CSS `:target`, no script).
                    p.back { a href="#" { "← The whole reference" } }
                    h1 { "Fleetpass API reference" }
                    (markdown(doc["info"]["description"].as_str().unwrap_or_default()))
                    p {
                        "The examples paste into bash (or any POSIX shell) once these variables are set: "
                        "request bodies come from here-documents, so the variables in them expand. "
                        "Set each from the answer that names it, e.g. "
                        code { "FLEET_ID=$(curl … | jq -r .fleetId)" } ". "
                        "The machine-readable document is " a href="/openapi.json" { "/openapi.json" } " (OpenAPI 3.1)."
                    }
                    table.vars {
                        thead { tr { th { "Variable" } th { "Where it comes from" } } }
                        tbody {
                            @for (name, from) in EXAMPLE_VARIABLES {
                                tr { td { code { "$" (name) } } td { (from) } }
                            }
                        }
                    }
                    h2.area { "Guides" }
                    @for (id, title, md) in GUIDES {
                        section.guide id=(id) { h3 { (title) } (markdown(md)) }
                    }
                    section.guide id="status-codes" {
                        h3 { "Status codes" }
                        table {
                            thead { tr { th { "Code" } th { "Meaning" } th { "Typical cause" } th { "Suggested fix" } } }
                            tbody {
                                @for row in openapi::ERRORS {
                                    tr { td.st { (row.status) } td { (row.meaning) } td { (inline(row.cause)) } td { (inline(row.fix)) } }
                                }
                            }
                        }
                    }
                    @for (tag, ops) in &groups {
                        h2.area id={ "area-" (tag.replace(' ', "-")) } { (tag) }
                        @for o in ops { (operation(doc, o)) }
                    }
                }
            }
        }
    }
}

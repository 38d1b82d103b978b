//! The OpenAPI 3.1 document, assembled from the handlers' `#[utoipa::path]` annotations
//! and the wire types' `ToSchema` derives, then completed by [`document`] with what
//! every route shares: the statuses its guard class, body and parameters can answer
//! (each with the error body), the security schemes, `additionalProperties: false` on
//! every request body (the server refuses unknown fields everywhere), whether a body
//! may be left out, and the bounds of every field as schema keywords, from one table
//! keyed by wire name so one name means one rule. `cargo xtask codegen` writes it to
//! `docs/openapi.json`; a test fails when that file is stale, and `cargo xtask contract`
//! runs Schemathesis against a live server to hold the document to what it does.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::routes::{
    agent, directory, fleets, platform, policy, scans, schedules, secret_scanning, share, system,
    tokens,
};

mod rules;

pub use rules::TEXT_PATTERN;
use rules::{
    add_links, body_example, field_rule, param_rule, response_example, results_schema,
    synthesized_example, uuid_string,
};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fleetpass API",
        description = "Multi-tenant control plane for discovery fleets. Errors always have the `ErrorBody` shape; every response carries `X-Request-Id`.\n\n**Idempotency.** Every POST honours an `Idempotency-Key` header (1-255 printable ASCII characters, bare or as a Structured Fields string — one key either way — else 400 naming `Idempotency-Key`), scoped to the credential that sent it (the API token, agent or platform key; the client address on public endpoints) and kept 24 h. The same request again replays the first response byte for byte with `Idempotent-Replayed: true`; the key with a different request (method, path, body) is 422 `IDEMPOTENCY_KEY_REUSED`; while the first is still running, 409 `CONFLICT` with `Retry-After`. Only 2xx responses are kept: after a 4xx or 5xx a retry runs again.\n\n**Rate limits.** Per API token (`rateLimitPerMinute`, default 300), per client address on public endpoints (default 60 a minute), and on failed authentication per address (default 20 a minute). Limited responses carry the RateLimit fields of draft-ietf-httpapi-ratelimit-headers-11 with one named policy per limit (`RateLimit-Policy: \"token\";q=300;w=60`, `RateLimit: \"token\";r=299;t=21`) and, for one release, the older `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`; over the limit the answer is 429 `RATE_LIMITED` with `Retry-After`, `retryAfterSeconds` and the draft's problem `type` (`…#quota-exceeded`). Windows are whole minutes.\n\n**Input.** Request bodies refuse fields they do not name (`additionalProperties: false`, 422 naming the field). Integer fields take `5` and `5.0` alike, as JSON Schema's `integer` does; a fraction is 422. Free text refuses control characters (422 \"must be text without control characters\"), is trimmed, and counts its length as sent."
    ),
    paths(
        system::healthz,
        system::readyz,
        system::openapi,
        system::docs,
        system::metrics,
        system::me,
        platform::create_tenant,
        platform::list_tenants,
        platform::get_tenant,
        tokens::create_token,
        tokens::list_tokens,
        tokens::get_token,
        tokens::update_token,
        tokens::revoke_token,
        tokens::rotate_token,
        tokens::revoke_leaked,
        policy::get_token_policy,
        policy::set_token_policy,
        secret_scanning::github,
        directory::create_environment,
        directory::list_environments,
        directory::get_environment,
        directory::update_environment,
        directory::delete_environment,
        directory::create_user,
        directory::list_users,
        directory::get_user,
        directory::update_user,
        directory::delete_user,
        directory::create_service_account,
        directory::list_service_accounts,
        directory::get_service_account,
        directory::update_service_account,
        directory::delete_service_account,
        directory::list_audit_events,
        fleets::create_fleet,
        fleets::list_fleets,
        fleets::get_fleet,
        fleets::update_fleet,
        fleets::delete_fleet,
        fleets::issue_enrollment_token,
        fleets::list_enrollment_tokens,
        fleets::revoke_enrollment_token,
        fleets::list_agents,
        fleets::get_agent,
        fleets::patch_agent,
        fleets::revoke_agent,
        agent::enroll,
        agent::token,
        agent::heartbeat,
        agent::claim,
        agent::submit_results,
        agent::jwks,
        scans::request_scan,
        scans::list_scans,
        scans::get_scan,
        scans::list_parts,
        scans::cancel_scan,
        scans::report,
        scans::bundle,
        scans::passport,
        scans::create_share_link,
        scans::create_share_alias,
        scans::list_share_links,
        scans::revoke_share_link,
        share::landing,
        share::artifact,
        share::passport,
        schedules::create_schedule,
        schedules::list_schedules,
        schedules::get_schedule,
        schedules::update_schedule,
        schedules::delete_schedule,
    ),
    components(schemas(
        crate::error::ErrorBody,
        crate::error::ErrorCode,
        crate::error::FieldProblem
    ))
)]
pub struct ApiDoc;

/// The complete document (see the module docs), built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        refine(&mut doc);
        doc
    })
}

/// The document as committed in `docs/openapi.json`: pretty JSON, marked as generated.
pub fn committed_json() -> String {
    let mut doc = document().clone();
    // JSON has no comments: the file says it is generated in `info.x-generated`.
    doc["info"]["x-generated"] = json!("Generated by `cargo xtask codegen`, do not edit");
    format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
}

/// How a route is guarded, read back from the document: which statuses the guard
/// itself can answer follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// An API token (three ways to present it).
    Tenant,
    /// An agent's access token.
    Agent,
    /// The platform admin key.
    Platform,
    /// No credential; limited per client address.
    Public,
    /// Not guarded (health, documents, keys).
    Open,
}

/// The routes of [`Guard::Public`]: no security requirement, but limited per address.
const PUBLIC_PREFIXES: [&str; 4] = ["/agent/enroll", "/agent/token", "/api/public/", "/share/"];

/// The guard class of an operation of the document.
pub fn guard_of(path: &str, op: &Value) -> Guard {
    let schemes: Vec<&str> = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|m| m.keys().map(String::as_str))
        .collect();
    if schemes.contains(&"bearer") {
        Guard::Tenant
    } else if schemes.contains(&"agent") {
        Guard::Agent
    } else if schemes.contains(&"platformKey") || schemes.contains(&"platform_admin_key") {
        Guard::Platform
    } else if PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p)) {
        Guard::Public
    } else {
        Guard::Open
    }
}

/// One status of the error table: what it means, what typically causes it, how to fix
/// it (the seeds' error tables; the `/docs` page renders the same rows).
#[derive(Debug, Clone, Copy)]
pub struct ErrorRow {
    /// The HTTP status.
    pub status: u16,
    /// Its name.
    pub meaning: &'static str,
    /// The code(s) of the error body and the usual cause.
    pub cause: &'static str,
    /// What the caller should do.
    pub fix: &'static str,
}

/// Every error status the API answers with.
pub const ERRORS: [ErrorRow; 10] = [
    ErrorRow {
        status: 400,
        meaning: "Bad request",
        cause: "VALIDATION_ERROR: the body is not JSON, not a JSON object or not sent as `application/json`, or a query parameter is repeated or unreadable.",
        fix: "Send one JSON object with `Content-Type: application/json`; give each query parameter once.",
    },
    ErrorRow {
        status: 401,
        meaning: "Unauthorized",
        cause: "UNAUTHORIZED: no credential, or a malformed, unknown, expired or revoked one (`WWW-Authenticate: Bearer` is set).",
        fix: "Send `Authorization: Bearer <token>`, `x-api-key: <token>` or `?api_key=` with a valid token.",
    },
    ErrorRow {
        status: 403,
        meaning: "Forbidden",
        cause: "FORBIDDEN_ROLE: the token's role is too low (a viewer writing, a non-admin on /api/admin) or the platform key is wrong; FORBIDDEN_SCOPE: the resource or requested scope is outside the token's environments, or the token (or enrollment token) was used from an address outside its `allowedCidrs`.",
        fix: "Use a token with the role and environments the RBAC matrix asks for, from a network its allowedCidrs name.",
    },
    ErrorRow {
        status: 404,
        meaning: "Not found",
        cause: "NOT_FOUND: the id does not exist, belongs to another tenant, or the share link expired, was revoked or used up.",
        fix: "Check the id and the tenant; ids are the UUIDs the API returned.",
    },
    ErrorRow {
        status: 409,
        meaning: "Conflict",
        cause: "CONFLICT: a uniqueness or state clash (a name taken, a scan not completed), or the same Idempotency-Key still in flight.",
        fix: "Read the resource again and resolve the clash; for an in-flight key, retry after `Retry-After`.",
    },
    ErrorRow {
        status: 413,
        meaning: "Payload too large",
        cause: "VALIDATION_ERROR: the body is over the endpoint's limit (1 MiB; 4 MiB for a secret-scanning report; 16 MiB for scan results).",
        fix: "Send a smaller body.",
    },
    ErrorRow {
        status: 422,
        meaning: "Unprocessable entity",
        cause: "VALIDATION_ERROR: a field breaks a rule (bounds, enum, missing, unknown, infeasible constraints; `field` names it, `details` lists several); READONLY_FIELD: a PATCH sets a fixed field; IDEMPOTENCY_KEY_REUSED: the key was used for another request.",
        fix: "Fix the field named in `field`/`details` as `hint` says; use a new Idempotency-Key per operation.",
    },
    ErrorRow {
        status: 429,
        meaning: "Too many requests",
        cause: "RATE_LIMITED: over the token's `rateLimitPerMinute` (default 300), the public limit per address (default 60), or too many failed authentications from the address.",
        fix: "Wait `Retry-After` seconds (also `retryAfterSeconds`); back off with jitter.",
    },
    ErrorRow {
        status: 500,
        meaning: "Internal server error",
        cause: "INTERNAL: an unexpected failure; the body carries only the requestId.",
        fix: "Retry with exponential backoff; quote the requestId if it persists.",
    },
    ErrorRow {
        status: 503,
        meaning: "Service unavailable",
        cause: "SERVICE_UNAVAILABLE: the database is unreachable (`Retry-After` set), schedules without PostgreSQL, or the platform API not configured.",
        fix: "Retry shortly; schedules need DATABASE_URL; /platform needs FLEETPASS_ADMIN_KEY.",
    },
];

/// The error table's row of `status`.
pub fn error_row(status: u16) -> Option<&'static ErrorRow> {
    ERRORS.iter().find(|r| r.status == status)
}

/// Gives every JSON response an example (see [`refine`]): at the schema for a `$ref`
/// (so the reference page shows it too), inline otherwise.
fn add_response_examples(doc: &mut Value) {
    let mut named = std::collections::BTreeSet::new();
    let mut inline = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let media = &response["content"]["application/json"];
                match ref_name(&media["schema"]) {
                    Some(name) => {
                        named.insert(name);
                    }
                    None if media.is_object() && media.get("example").is_none() => {
                        inline.push((path.clone(), method.clone(), status.clone()));
                    }
                    None => {}
                }
            }
        }
    }
    let schemas = doc["components"]["schemas"].clone();
    for name in named {
        if schemas[&name].is_object() && schemas[&name].get("example").is_none() {
            let example = synthesized_example(&schemas, &schemas[&name], "");
            doc["components"]["schemas"][&name]["example"] = example;
        }
    }
    for (path, method, status) in inline {
        let media =
            &mut doc["paths"][&path][&method]["responses"][&status]["content"]["application/json"];
        media["example"] = synthesized_example(&schemas, &media["schema"], "");
    }
}

/// The name of the schema `value` refers to, if it is a `$ref`.
fn ref_name(value: &Value) -> Option<String> {
    value["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .map(str::to_owned)
}

/// Completes the generated document (see the module docs).
fn refine(doc: &mut Value) {
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "fpk_…",
            "description": "An API token as `Authorization: Bearer fpk_…` (checked first)."},
        "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key",
            "description": "The same API token in the `x-api-key` header."},
        "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key",
            "description": "The same API token as `?api_key=`; never logged; off when FLEETPASS_QUERY_TOKENS=off."},
        "agent": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "An agent access token (EdDSA JWT from POST /agent/token, 15 minutes)."},
        "platformKey": {"type": "http", "scheme": "bearer",
            "description": "The platform admin key (FLEETPASS_ADMIN_KEY) as a bearer token (or `x-api-key`)."}
    });
    // Users and service accounts share one PATCH type; a service account has no email
    // and its name cannot be cleared.
    let mut account = doc["components"]["schemas"]["PatchPrincipalBody"].clone();
    if let Some(props) = account["properties"].as_object_mut() {
        props.remove("email");
    }
    account["properties"]["name"]["type"] = json!("string");
    account["properties"]["name"]["description"] =
        json!("A new name, 1-100 characters, unique per tenant.");
    account["description"] = json!("Body of `PATCH /api/admin/service-accounts/{id}`.");
    doc["components"]["schemas"]["PatchServiceAccountBody"] = account;
    let mut body_schemas = Vec::new();
    let paths = doc["paths"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut refined = Map::new();
    for (path, mut item) in paths {
        for (method, op) in item.as_object_mut().into_iter().flatten() {
            if let Some(name) = refine_operation(&path, method, op) {
                body_schemas.push(name);
            }
        }
        refined.insert(path, item);
    }
    doc["paths"] = Value::Object(refined);
    add_links(doc);
    // Media types the annotations do not state.
    let text = |media: &str| json!({media: {"schema": {"type": "string"}}});
    doc["paths"]["/share/{token}"]["get"]["responses"]["200"]["content"]["text/html"] =
        json!({"schema": {"type": "string"}});
    doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"] = text("text/plain");
    doc["paths"]["/openapi.json"]["get"]["responses"]["200"]["content"] = json!({
        "application/json": {"schema": {"type": "object"},
            "example": {"openapi": "3.1.0", "info": {"title": "Fleetpass API"}, "paths": {}}}
    });
    doc["paths"]["/.well-known/jwks.json"]["get"]["responses"]["200"]["content"] = json!({
        "application/json": {"schema": {"type": "object", "required": ["keys"],
            "properties": {"keys": {"type": "array", "items": {"type": "object"}}}},
            "example": {"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                "kid": "k-01a2271f", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}}
    });
    let schemas = &mut doc["components"]["schemas"];
    schemas["ScanResults"] = results_schema();
    schemas["SecretScanningReport"] = rules::secret_scanning_report();
    for name in ["ErrorBody", "CreatedFleetView", "CreatedShareView"] {
        if let Some(example) = response_example(name) {
            schemas[name]["example"] = example;
        }
    }
    // Every request body refuses unknown fields, nested objects included.
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = body_schemas.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let schema = &mut schemas[&name];
        if schema.is_null() {
            continue;
        }
        // A partner's batch (an array) is GitHub's format, whose items take fields
        // GitHub may add later (`routes::secret_scanning`).
        if schema["type"] == "array" {
            continue;
        }
        schema["additionalProperties"] = json!(false);
        if let Some(example) = body_example(&name) {
            schema["example"] = example;
        }
        for (field, prop) in schema["properties"].as_object_mut().into_iter().flatten() {
            collect_refs(prop, &mut body_schemas);
            if let Some(rule) = field_rule(&name, field) {
                merge(prop, &rule);
            }
        }
    }
    // A scan's target is a union the derives cannot state: the request's form in the
    // request body, the reported form wherever a scan is shown (lists inline it).
    for (name, schema) in schemas.as_object_mut().into_iter().flatten() {
        set_target_schema(schema, name == "RequestScanBody");
    }
    // Every JSON response has an example: the tables' where they give one, otherwise
    // one built from the schema (`rules::synthesized_example`).
    add_response_examples(doc);
    let schemas = &mut doc["components"]["schemas"];
    // A body with no required field may be left out: the server reads an empty body
    // as `{}`. An array that needs an item may not.
    let required: std::collections::BTreeSet<String> = schemas
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, s)| {
            s["required"].as_array().is_some_and(|r| !r.is_empty())
                || s["minItems"].as_u64().is_some_and(|n| n > 0)
        })
        .map(|(name, _)| name.clone())
        .collect();
    for item in doc["paths"]
        .as_object_mut()
        .into_iter()
        .flatten()
        .map(|(_, i)| i)
    {
        for (_, op) in item.as_object_mut().into_iter().flatten() {
            let Some(body) = op.get_mut("requestBody") else {
                continue;
            };
            let name = ref_name(&body["content"]["application/json"]["schema"]);
            body["required"] = json!(name.is_some_and(|n| required.contains(&n)));
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    // `allEnvironments: false` needs a non-empty `environmentIds`; `true` an absent or
    // empty one.
    let token = &mut schemas["CreateTokenBody"];
    token["properties"]["environmentIds"]["items"] = uuid_string();
    token["properties"]["role"]["example"] = json!("operator");
    token["oneOf"] = json!([
        {"properties": {"allEnvironments": {"const": true},
            "environmentIds": {"type": ["array", "null"], "maxItems": 0}}},
        {"properties": {"allEnvironments": {"const": false},
            "environmentIds": {"type": "array", "minItems": 1}}, "required": ["environmentIds"]}
    ]);
    // At most one owner.
    token["not"] = json!({"required": ["ownerUserId", "ownerServiceAccountId"]});
}

/// Replaces the schema of every `target` property under `schema` with
/// [`rules::target_schema`], keeping its description.
fn set_target_schema(schema: &mut Value, request: bool) {
    match schema {
        Value::Object(map) => {
            if let Some(target) = map.get_mut("properties").and_then(|p| p.get_mut("target")) {
                let mut replaced = rules::target_schema(request);
                replaced["description"] = target["description"].take();
                *target = replaced;
            }
            map.values_mut().for_each(|v| set_target_schema(v, request));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| set_target_schema(v, request)),
        _ => {}
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = ref_name(value) {
                out.push(name);
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Adds the keywords of `rule` to a property schema, which may be a plain schema or a
/// nullable `oneOf` of a `$ref` and `null`.
fn merge(prop: &mut Value, rule: &Value) {
    for (k, v) in rule.as_object().into_iter().flatten() {
        prop[k] = v.clone();
    }
}

/// The lowest role that may call a tenant operation (the RBAC matrix).
fn required_role(method: &str, path: &str) -> &'static str {
    if path == "/api/me" {
        "any"
    } else if (path.starts_with("/api/admin/environments") || path == policy::PATH)
        && method != "get"
    {
        // Tenant-wide settings (`Action::ManageEnvironments`).
        "admin with allEnvironments"
    } else if path.starts_with("/api/admin/") {
        "admin"
    } else if method == "get" {
        "viewer"
    } else {
        "operator"
    }
}

/// Exactly the `Idempotency-Key` values the guard accepts: 1-255 printable ASCII
/// characters not opening with a quote, or a Structured Fields string of 1-255
/// characters (`\"` and `\\` escaped) without parameters.
pub(crate) const IDEMPOTENCY_KEY_PATTERN: &str = r#"^(?:[\u0020\u0021\u0023-\u007E][\u0020-\u007E]{0,254}|"(?:[\u0020\u0021\u0023-\u005B\u005D-\u007E]|\\["\\]){1,255}")$"#;

/// Completes one operation; returns the schema name of its request body.
fn refine_operation(path: &str, method: &str, op: &mut Value) -> Option<String> {
    let guard = guard_of(path, op);
    let mut statuses: Vec<u16> = Vec::new();
    match guard {
        Guard::Tenant => {
            op["x-required-role"] = json!(required_role(method, path));
            // Three ways to present one API token, in the server's order.
            op["security"] = json!([{"bearer": []}, {"apiKeyHeader": []}, {"apiKeyQuery": []}]);
            // 403 everywhere, /api/me too: a token used from outside its allowedCidrs.
            statuses.extend([401, 403, 429, 500, 503]);
        }
        Guard::Agent => statuses.extend([401, 429, 500, 503]),
        Guard::Platform => {
            op["security"] = json!([{"platformKey": []}]);
            statuses.extend([401, 403, 429, 500, 503]);
        }
        Guard::Public => statuses.extend([429, 500, 503]),
        Guard::Open => {}
    }
    if guard != Guard::Open && method == "post" {
        // Idempotency-Key: malformed → 400, reused → 422, still in flight → 409.
        statuses.extend([400, 409, 422]);
        let params = op.get_mut("parameters").and_then(Value::as_array_mut);
        let mut params = params.map(std::mem::take).unwrap_or_default();
        params.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "The key of one operation: 1-255 printable ASCII characters, bare (`8e03978e-…`) or as a Structured Fields string (`\"8e03978e-…\"`, draft-ietf-httpapi-idempotency-key-header); both spellings are one key. Kept 24 hours: within them the same request with the same key replays the first response. Malformed → 400 naming `Idempotency-Key`.",
            "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN}
        }));
        op["parameters"] = Value::Array(params);
    }
    let mut has_query = false;
    let params = op.get_mut("parameters").and_then(Value::as_array_mut);
    for param in params.into_iter().flatten() {
        let name = param["name"].as_str().unwrap_or_default().to_owned();
        match param["in"].as_str() {
            Some("path") => statuses.push(404),
            Some("query") => has_query = true,
            _ => {}
        }
        if let Some(rule) = param_rule(path, &name) {
            param["schema"] = rule;
        }
    }
    // Every operation refuses a query parameter it does not declare (400 naming it,
    // `extract::check_query_names`); a repeated or unreadable one → 400 too, and one
    // that breaks a rule → 422.
    statuses.push(400);
    if has_query {
        statuses.push(422);
    }
    let mut body_schema = None;
    if op.get("requestBody").is_some() {
        statuses.extend([400, 413, 422]);
        let content = &mut op["requestBody"]["content"]["application/json"];
        if path.ends_with("/results") {
            content["schema"] = json!({"$ref": "#/components/schemas/ScanResults"});
        }
        if path == "/api/admin/service-accounts/{id}" {
            content["schema"] = json!({"$ref": "#/components/schemas/PatchServiceAccountBody"});
        }
        if path == secret_scanning::PATH {
            content["schema"] = json!({"$ref": "#/components/schemas/SecretScanningReport"});
        }
        body_schema = ref_name(&content["schema"]);
    }
    let op_has_body = op.get("requestBody").is_some();
    if let Some(location) = location_of(path, method)
        && let Some(created) = op["responses"].get_mut("201")
    {
        created["headers"] = json!({"Location": {
            "description": format!("The created resource: `{location}` (a path on this server)."),
            "schema": {"type": "string"}
        }});
    }
    let responses = op.get_mut("responses").and_then(Value::as_object_mut);
    if let Some(responses) = responses {
        for status in statuses {
            let key = status.to_string();
            let entry = responses.entry(key).or_insert_with(|| json!({}));
            if entry["content"].is_null() {
                entry["content"] = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
            }
            let described = entry["description"].as_str().is_some_and(|d| !d.is_empty());
            if !described && let Some(row) = error_row(status) {
                entry["description"] = json!(format!("{}: {}", row.meaning, row.cause));
            }
            if status == 400 {
                let body = if path == secret_scanning::PATH {
                    "; the body is not JSON, not an array or of the wrong content type"
                } else if op_has_body {
                    "; the body is not JSON, not an object or of the wrong content type"
                } else {
                    ""
                };
                let key = if guard != Guard::Open && method == "post" {
                    "; a malformed `Idempotency-Key`"
                } else {
                    ""
                };
                entry["description"] = json!(format!(
                    "VALIDATION_ERROR: a query parameter this operation does not declare (`field` and `details` name each; `api_key` is always accepted), or a repeated or unreadable one{body}{key}"
                ));
            }
            if status == 429 {
                entry["headers"] = json!({
                    "Retry-After": {"description": "Seconds until the window ends; it takes precedence over `RateLimit`'s `t`.", "schema": {"type": "integer"}},
                    "RateLimit-Policy": {"description": "The quota policy that was exceeded, per draft-ietf-httpapi-ratelimit-headers-11: `\"token\";q=300;w=60` (`\"address\"` on public endpoints). Absent on the failed-authentication block.", "schema": {"type": "string"}},
                    "RateLimit": {"description": "What is left of it: `\"token\";r=0;t=21`.", "schema": {"type": "string"}}
                });
            }
            if status == 401 {
                entry["headers"] = json!({"WWW-Authenticate": {"description": "Always `Bearer`.", "schema": {"type": "string"}}});
            }
        }
    }
    body_schema
}

/// Where the `Location` of a 201 from `method path` points, as a route pattern with
/// the created resource's id; `None` for operations that create nothing.
/// `routes::created` sends it; a test holds every 201 of the document to this table.
pub fn location_of(path: &str, method: &str) -> Option<&'static str> {
    if method != "post" {
        return None;
    }
    Some(match path {
        "/platform/tenants" => "/platform/tenants/{id}",
        "/api/admin/tokens" | "/api/admin/tokens/{id}/rotate" => "/api/admin/tokens/{id}",
        "/api/admin/users" => "/api/admin/users/{id}",
        "/api/admin/service-accounts" => "/api/admin/service-accounts/{id}",
        "/api/admin/environments" => "/api/admin/environments/{id}",
        "/tenant/discovery/fleets" => "/tenant/discovery/fleets/{fleet_id}",
        "/tenant/discovery/fleets/{fleet_id}/enrollment-tokens" => {
            "/tenant/discovery/fleets/{fleet_id}/enrollment-tokens/{token_id}"
        }
        "/agent/enroll" => "/tenant/discovery/agents/{agent_id}",
        "/tenant/scans/{scan_id}/share-links" | "/tenant/scans/{scan_id}/share" => {
            "/tenant/share-links/{link_id}"
        }
        "/tenant/schedules" => "/tenant/schedules/{id}",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Every 201 of the document declares its `Location`.
    #[test]
    fn every_created_response_declares_its_location() {
        let doc = super::document();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let created = &op["responses"]["201"];
                if !created.is_null() && created["headers"]["Location"].is_null() {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(missing.is_empty(), "201s without Location: {missing:#?}");
    }

    /// Every JSON answer of every operation shows an example, in the document and so on
    /// the reference page: at its media type or at the schema it refers to.
    #[test]
    fn every_json_response_has_an_example() {
        let doc = super::document();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                for (status, response) in op["responses"].as_object().into_iter().flatten() {
                    let media = &response["content"]["application/json"];
                    if media.is_null() {
                        continue;
                    }
                    let at_schema = super::ref_name(&media["schema"])
                        .map(|n| &doc["components"]["schemas"][n]["example"]);
                    let example = media.get("example").or(at_schema);
                    if example.is_none_or(Value::is_null) {
                        missing.push(format!("{method} {path} {status}"));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "responses without an example: {missing:#?}"
        );
    }
}

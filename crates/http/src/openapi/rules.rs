//! The rules the OpenAPI document is completed with ([`super::document`]): the bounds
//! of every field and parameter by wire name, the results body's schema, the examples
//! of request and response bodies, and the links from each create to the calls its id
//! feeds. Tables only; `openapi.rs` applies them.

use fleetpass_domain::label::MAX_LABELS;
use fleetpass_domain::network::{ALLOWED_CIDR_PATTERN, MAX_ALLOWED_CIDRS};
use fleetpass_domain::scan::{MAX_TARGET_AGENTS, PartStatus, ScanStatus};
use serde_json::{Value, json};

/// The pattern of free text the domain's `bounded_text` accepts (with `maxLength`):
/// no control characters, and something besides white space (it is trimmed).
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// Ids are UUIDs as the API renders them.
const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

fn text(min: u64, max: u64) -> Value {
    json!({"minLength": min, "maxLength": max, "pattern": TEXT_PATTERN})
}

fn int(min: i64, max: i64) -> Value {
    json!({"minimum": min, "maximum": max})
}

fn one_of(values: &[&str]) -> Value {
    json!({"enum": values})
}

pub(super) fn uuid() -> Value {
    json!({"format": "uuid", "pattern": UUID_PATTERN})
}

/// [`uuid`] as a whole schema (for parameters and array items, which need the type).
pub(super) fn uuid_string() -> Value {
    json!({"type": "string", "format": "uuid", "pattern": UUID_PATTERN})
}

fn with_default(mut rule: Value, default: Value) -> Value {
    rule["default"] = default;
    rule
}

/// A label's key and value, as the domain's `LabelKey` and `LabelValue` accept them
/// (unanchored, to be composed).
const LABEL_KEY: &str = fleetpass_domain::label::KEY_PATTERN;
const LABEL_VALUE: &str = fleetpass_domain::label::VALUE_PATTERN;

/// The keywords of a labels object (`{"role": "db"}`), merged into the field's own
/// schema so its type (nullable or not) and description stay.
fn labels() -> Value {
    json!({
        "maxProperties": MAX_LABELS,
        "propertyNames": {"type": "string", "pattern": format!("^{LABEL_KEY}$")},
        "additionalProperties": {"type": "string", "pattern": format!("^{LABEL_VALUE}$")}
    })
}

/// The schema of a scan's `target`: as a request sends it (`{"agents": [ids]}`), or as
/// a scan reports it (`"agents"`: the parts name them). Replaces the field's schema
/// but for its description.
pub(super) fn target_schema(request: bool) -> Value {
    let mut selector = labels();
    selector["type"] = json!("object");
    selector["minProperties"] = json!(1);
    let by_labels = json!({"type": "object", "additionalProperties": false,
        "required": ["labels"], "properties": {"labels": selector}});
    if request {
        json!({"oneOf": [
            {"type": "null"},
            {"type": "string", "enum": ["any", "all"]},
            {"type": "object", "additionalProperties": false, "required": ["agents"],
                "properties": {"agents": {"type": "array", "minItems": 1,
                    "maxItems": MAX_TARGET_AGENTS, "items": uuid_string()}}},
            by_labels
        ], "example": "all"})
    } else {
        json!({"oneOf": [{"type": "string", "enum": ["any", "all", "agents"]}, by_labels]})
    }
}

const SCENARIOS: [&str; 4] = ["inventory", "ports", "software", "compliance"];

/// The rule of a request field, by schema and wire name (`*` for any schema). The
/// domain's newtypes hold the same bounds; the HTTP tests and the contract run keep
/// the two in step.
pub(super) fn field_rule(schema: &str, field: &str) -> Option<Value> {
    Some(match (schema, field) {
        ("CreateEnvironmentBody" | "PatchEnvironmentBody", "name") => json!({
            "minLength": 1, "maxLength": 63, "pattern": "^[a-z][a-z0-9-]{0,62}$"
        }),
        ("CreateShareBody", "label") => text(1, 200),
        ("CreateUserBody" | "PatchPrincipalBody", "email") => {
            json!({"format": "email", "maxLength": 254})
        }
        (_, "labels") => labels(),
        (_, "allowedCidrs") => json!({"maxItems": MAX_ALLOWED_CIDRS,
            "items": {"type": "string", "pattern": ALLOWED_CIDR_PATTERN}}),
        ("EnrollBody", "hostname") => text(1, 253),
        ("EnrollBody" | "HeartbeatBody", "platform" | "agentVersion") => text(1, 64),
        ("EnrollBody", "enrollmentToken") => json!({"pattern": "^fpe_[A-Za-z0-9_-]{49}$"}),
        ("TokenBody", "agentSecret") => json!({"pattern": "^fpa_[A-Za-z0-9_-]{49}$"}),
        // The shape of every secret; its checksum is beyond a schema (a mistyped one is
        // a 422 naming the checksum).
        ("RevocationBody", "token") => json!({"pattern": "^fp[keas]_[A-Za-z0-9_-]{49}$"}),
        (_, "name") => text(1, 100),
        (_, "role") => one_of(&["admin", "operator", "viewer"]),
        (_, "scenario") => one_of(&SCENARIOS),
        ("CreateShareBody", "scope") => {
            with_default(one_of(&["report", "bundle", "passport"]), json!("passport"))
        }
        ("CreateShareBody", "expiresHours") => with_default(int(1, 720), json!(168)),
        (_, "expiresHours") => with_default(int(1, 720), json!(72)),
        (_, "maxUses") => with_default(int(1, 1000), json!(1)),
        (_, "maxAccesses") => int(1, 10_000),
        (_, "expiresInDays") => int(1, 365),
        // A token policy's maxima: the bounds of the lifetimes they cap (`null`: none).
        ("TokenPolicyBody", "maxExpiresInDays") => int(1, 365),
        ("TokenPolicyBody", "maxEnrollmentExpiresHours") => int(1, 720),
        (_, "rateLimitPerMinute") => with_default(int(1, 100_000), json!(300)),
        (_, "graceHours") => with_default(int(0, 168), json!(24)),
        (_, "maxDurationMinutes") => int(1, 1440),
        (_, "maxAssets") => int(1, 100_000),
        (_, "intervalMinutes") => int(15, 10_080),
        (_, "notBefore" | "notAfter") => json!({"format": "date-time"}),
        (_, "fleetId" | "environmentId" | "ownerUserId" | "ownerServiceAccountId" | "agentId") => {
            uuid()
        }
        _ => return None,
    })
}

/// The largest `wait` a check-in may ask for (the server holds it at most its own cap).
const MAX_WAIT_PARAM: u32 = crate::routes::agent::MAX_WAIT_PARAM;

/// The rule of a query or path parameter, by name.
pub(super) fn param_rule(path: &str, name: &str) -> Option<Value> {
    Some(match name {
        "limit" => json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
        "wait" => json!({"type": "integer", "minimum": 0, "maximum": MAX_WAIT_PARAM, "default": 0}),
        // A cursor is the base64url of a 16-byte id (its last character carries 2 bits).
        "cursor" => json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{21}[AQgw]$"}),
        "status" if path.ends_with("/parts") => json!({"type": "string",
            "enum": PartStatus::ALL.map(PartStatus::as_str)}),
        "status" => json!({"type": "string", "enum": ScanStatus::ALL.map(ScanStatus::as_str)}),
        // One to 32 `key:value` pairs, comma-separated.
        "labels" => json!({"type": "string", "pattern": format!(
            "^{LABEL_KEY}:{LABEL_VALUE}(?:,{LABEL_KEY}:{LABEL_VALUE}){{0,{}}}$", MAX_LABELS - 1)}),
        "scenario" => json!({"type": "string", "enum": SCENARIOS}),
        "artifact" => json!({"type": "string", "enum": ["report", "bundle", "passport"]}),
        "token" if path.starts_with("/share/") => json!({"type": "string", "pattern": "^fps_"}),
        "since" => json!({"type": "string", "format": "date-time"}),
        "fleetId" | "actorId" | "targetId" | "id" => uuid_string(),
        n if n.ends_with("_id") => uuid_string(),
        _ => return None,
    })
}

/// The results body of `POST /agent/scans/{scan_id}/results` (the domain's
/// `ScanResults`, which has no schema of its own).
pub(super) fn results_schema() -> Value {
    let text = |max: u64| {
        let mut t = text(1, max);
        t["type"] = json!("string");
        t
    };
    json!({
        "type": "object",
        "description": "What the agent found: at most 100 000 assets (or the scan's `maxAssets`), 16 MiB in all.",
        "additionalProperties": false,
        "properties": {
            "assets": {"type": "array", "default": [], "maxItems": 100_000, "items": {
                "type": "object", "additionalProperties": false,
                "required": ["hostname", "ip", "os"],
                "properties": {
                    "hostname": text(253),
                    "ip": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
                    "os": {"type": "string", "maxLength": 200},
                    "openPorts": {"type": "array", "default": [], "items": {"type": "integer", "minimum": 1, "maximum": 65535}},
                    "software": {"type": "array", "default": [], "items": {
                        "type": "object", "additionalProperties": false, "required": ["name", "version"],
                        "properties": {"name": text(200), "version": {"type": "string", "maxLength": 100}}
                    }}
                }
            }},
            "findings": {"type": "array", "default": [], "items": {
                "type": "object", "additionalProperties": false, "required": ["severity", "title"],
                "properties": {
                    "severity": {"type": "string", "enum": ["info", "low", "medium", "high", "critical"]},
                    "title": text(500),
                    "assetHostname": {"type": ["string", "null"]},
                    "detail": {"type": ["string", "null"], "maxLength": 10_000}
                }
            }}
        },
        "example": {
            "assets": [{"hostname": "db-1", "ip": "10.0.0.5", "os": "Debian 12", "openPorts": [22, 5432],
                "software": [{"name": "postgresql", "version": "16.4"}]}],
            "findings": [{"severity": "medium", "title": "SSH allows password login", "assetHostname": "db-1"}]
        }
    })
}

/// The body of `POST /api/public/secret-scanning/github`: GitHub's array of matches,
/// bounded as the handler bounds it.
pub(super) fn secret_scanning_report() -> Value {
    use crate::routes::secret_scanning::MAX_REPORTED;
    json!({
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_REPORTED,
        "items": {"$ref": "#/components/schemas/ReportedSecret"},
        "description": "GitHub's secret-scanning report: one entry per match. Fields of an entry that are not listed are ignored (GitHub's format may grow).",
        "example": [{
            "token": fleetpass_domain::secret::DOCUMENTED_TEST_TOKEN,
            "type": "fleetpass_api_token",
            "url": "https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/foo/bar.txt",
            "source": "content"
        }]
    })
}

/// Request examples, by schema (the seeds' among them).
pub(super) fn body_example(schema: &str) -> Option<Value> {
    Some(match schema {
        "CreateTokenBody" => {
            json!({"name": "ci", "role": "operator", "allEnvironments": true, "expiresInDays": 30})
        }
        "CreateFleetBody" => json!({"name": "Production"}),
        "CreateShareBody" => json!({"label": "Auditor handoff", "scope": "passport"}),
        "IssueEnrollmentBody" => json!({"expiresHours": 72, "maxUses": 5}),
        "RequestScanBody" => {
            json!({"fleetId": "0193a5b2-7c1e-7a00-8000-000000000001", "scenario": "inventory"})
        }
        "CreateEnvironmentBody" => json!({"name": "staging"}),
        "CreateUserBody" => json!({"email": "ada@example.com", "name": "Ada", "role": "viewer"}),
        "CreateServiceAccountBody" => json!({"name": "ci-runner", "role": "operator"}),
        "CreateTenantBody" => json!({"name": "acme"}),
        "EnrollBody" => {
            json!({"enrollmentToken": "fpe_…", "hostname": "scanner-01", "platform": "linux-x86_64"})
        }
        "HeartbeatBody" => json!({"agentVersion": "1.4.2"}),
        "RotateTokenBody" => json!({"graceHours": 24}),
        "TokenPolicyBody" => json!({"maxExpiresInDays": 90, "maxEnrollmentExpiresHours": 168}),
        "PatchTokenBody" => json!({"name": "ci (rotated)"}),
        "PatchFleetBody" => json!({"name": "Production EU"}),
        "PatchEnvironmentBody" => json!({"name": "qa-eu"}),
        "PatchPrincipalBody" => json!({"role": "operator"}),
        "PatchServiceAccountBody" => json!({"name": "ci-runner-eu"}),
        "CreateScheduleBody" => json!({"fleetId": "0193a5b2-7c1e-7a00-8000-000000000001",
            "scenario": "inventory", "intervalMinutes": 60, "enabled": true}),
        "PatchScheduleBody" => json!({"intervalMinutes": 120}),
        "TokenBody" => json!({"agentId": "0193a5b2-7c1e-7a00-8000-000000000002",
            "agentSecret": "fpa_…"}),
        "RevocationBody" => json!({"token": "fpk_…"}),
        "ConstraintsBody" => json!({"maxDurationMinutes": 30, "maxAssets": 500}),
        _ => return None,
    })
}

/// Where a response's id feeds another call: (operation, status, pointer into its
/// body, parameter, the operations that take it).
const LINKS: [(&str, &str, &str, &str, &[&str]); 11] = [
    (
        "create_fleet",
        "201",
        "/fleetId",
        "fleet_id",
        &[
            "get_fleet",
            "update_fleet",
            "delete_fleet",
            "issue_enrollment_token",
            "list_enrollment_tokens",
            "list_agents",
        ],
    ),
    (
        "create_token",
        "201",
        "/id",
        "id",
        &["get_token", "update_token", "revoke_token", "rotate_token"],
    ),
    (
        "create_environment",
        "201",
        "/id",
        "id",
        &[
            "get_environment",
            "update_environment",
            "delete_environment",
        ],
    ),
    (
        "create_user",
        "201",
        "/id",
        "id",
        &["get_user", "update_user", "delete_user"],
    ),
    (
        "create_service_account",
        "201",
        "/id",
        "id",
        &[
            "get_service_account",
            "update_service_account",
            "delete_service_account",
        ],
    ),
    (
        "request_scan",
        "202",
        "/scanId",
        "scan_id",
        &[
            "get_scan",
            "report",
            "bundle",
            "passport",
            "create_share_link",
            "list_share_links",
        ],
    ),
    (
        "create_share_link",
        "201",
        "/id",
        "link_id",
        &["revoke_share_link"],
    ),
    (
        "create_share_link",
        "201",
        "/token",
        "token",
        &["landing", "artifact"],
    ),
    (
        "create_schedule",
        "201",
        "/scheduleId",
        "schedule_id",
        &["get_schedule", "update_schedule", "delete_schedule"],
    ),
    (
        "enroll",
        "201",
        "/agentId",
        "agent_id",
        &["get_agent", "revoke_agent"],
    ),
    ("create_tenant", "201", "/tenantId", "id", &["get_tenant"]),
];

/// Adds the [`LINKS`] to the responses they start from.
pub(super) fn add_links(doc: &mut Value) {
    let mut ops: std::collections::BTreeMap<String, (String, String)> = Default::default();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if let Some(id) = op["operationId"].as_str() {
                ops.insert(id.to_owned(), (path.clone(), method.clone()));
            }
        }
    }
    for (from, status, pointer, param, targets) in LINKS {
        let Some((path, method)) = ops.get(from) else {
            continue;
        };
        let response = &mut doc["paths"][path][method]["responses"][status];
        for target in targets {
            let name: String = target
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
                })
                .collect();
            response["links"][name] = json!({
                "operationId": target,
                "parameters": {(param): format!("$response.body#{pointer}")},
            });
        }
    }
}

/// Response examples, by schema (the seeds' responses and the error body).
pub(super) fn response_example(schema: &str) -> Option<Value> {
    Some(match schema {
        "ErrorBody" => {
            json!({"code": "VALIDATION_ERROR", "message": "expiresHours must be between 1 and 720",
            "field": "expiresHours", "hint": "Use a value from 1 to 720.", "requestId": "req_01a2271c5af370cabe3b7ee981ea6590"})
        }
        "CreatedFleetView" => {
            json!({"fleetId": "01a2271f-a5c5-77e2-b617-8a4713b58b5d", "name": "Production",
            "environmentId": "01a2271f-a5aa-77fd-a2e8-53b8f143698c",
            "enrollmentToken": "fpe_…", "enrollmentTokenId": "01a2271f-a5c6-7a10-8a3e-2f1f4c9b1d20",
            "expiresAt": "2026-11-25T10:15:00Z", "createdAt": "2026-11-22T10:15:00Z"})
        }
        "CreatedShareView" => {
            json!({"id": "01a2271f-b1c2-7d3e-8f40-5a6b7c8d9e0f", "url": "https://fleetpass.example.com/share/fps_…",
            "token": "fps_…", "scope": "passport", "label": "Auditor handoff", "maxAccesses": null,
            "expiresAt": "2026-11-29T10:15:00Z", "createdAt": "2026-11-22T10:15:00Z"})
        }
        _ => return None,
    })
}

/// A realistic value of a response field, by wire name, for the examples
/// [`synthesized_example`] builds; `None` leaves the field to its type.
fn sample(field: &str) -> Option<Value> {
    Some(match field {
        "name" => json!("Production"),
        "tenantName" => json!("Acme Corp"),
        "hostname" => json!("web-01.internal"),
        "email" => json!("ada@example.com"),
        "label" => json!("Auditor handoff"),
        "platform" => json!("linux-x86_64"),
        "agentVersion" => json!("1.4.2"),
        "tokenHint" | "hint" => json!("fpk_…x7Qa"),
        "token" => json!("fpk_…"),
        "adminToken" => json!("fpk_…"),
        "agentSecret" => json!("fpa_…"),
        "enrollmentToken" => json!("fpe_…"),
        "accessToken" => json!("eyJhbGciOiJFZERTQSIsImtpZCI6Ims…"),
        "url" => json!("https://fleetpass.example.com/share/fps_…"),
        "nextCursor" => json!("AZoicf1xd_e2F4pHE7WLXQ"),
        "action" => json!("token.created"),
        "actorKind" => json!("token"),
        "role" => json!("operator"),
        "scope" => json!("passport"),
        "scenario" => json!("inventory"),
        "persistence" => json!("postgres"),
        "bundleSha256" => json!("3f0c…e9a1"),
        "passport" => json!("eyJhbGciOiJFZERTQSIsImtpZCI6Ims…"),
        "kid" => json!("k-01a2271f"),
        "rateLimitPerMinute" => json!(300),
        "allEnvironments" => json!(false),
        "maxAssets" => json!(500),
        "maxDurationMinutes" => json!(60),
        "maxUses" => json!(1),
        "maxAccesses" => json!(10),
        "intervalMinutes" => json!(360),
        "accessCount" | "uses" => json!(1),
        "expiresHours" => json!(168),
        _ => return None,
    })
}

/// A fixed UUID v7-shaped id per field name, so one example document reads consistently
/// (the same `fleetId` wherever it appears).
fn sample_id(field: &str) -> String {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash = field.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!(
        "01a2271f-{:04x}-7{:03x}-8{:03x}-{:012x}",
        (hash >> 48) & 0xffff,
        (hash >> 36) & 0xfff,
        (hash >> 24) & 0xfff,
        hash & 0xffff_ffff_ffff
    )
}

/// An example of `schema` (resolving `$ref`s in `schemas`), for the responses the
/// tables above give none: a schema's own `example` where it has one; otherwise each
/// property from [`sample`], or from its name (`…Id` an id, `…At` a time), its `enum`,
/// `format` and type. Optional fields are shown too, so a reader sees every field.
pub(super) fn synthesized_example(schemas: &Value, schema: &Value, field: &str) -> Value {
    if let Some(name) = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
        return synthesized_example(schemas, &schemas[name], field);
    }
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    if let Some(first) = ["oneOf", "anyOf"]
        .iter()
        .find_map(|k| schema[k].as_array().and_then(|v| v.first()))
    {
        return synthesized_example(schemas, first, field);
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema["properties"].is_object() => "object",
        _ => "string",
    };
    let scalar = !matches!(kind, "object" | "array");
    if let Some(value) = sample(field).filter(|_| scalar) {
        return value;
    }
    if let Some(first) = schema["enum"].as_array().and_then(|v| v.first()) {
        return first.clone();
    }
    let nullable = schema["type"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t == "null"));
    match kind {
        // What has not happened yet, in a live resource.
        _ if nullable && matches!(field, "revokedAt" | "retiredAt" | "lastAccessedAt") => {
            Value::Null
        }
        "object" => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, prop)| (name.clone(), synthesized_example(schemas, prop, name)))
                .collect(),
        ),
        "array" => {
            let item = field.strip_suffix('s').unwrap_or(field);
            json!([synthesized_example(schemas, &schema["items"], item)])
        }
        "integer" => schema["minimum"]
            .as_i64()
            .map_or(json!(1), |m| json!(m.max(1))),
        "number" => json!(1.0),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ if field == "id" || field.ends_with("Id") || field.ends_with("By") => {
            json!(sample_id(field))
        }
        _ if field.ends_with("At") || schema["format"] == "date-time" => json!(match field {
            "expiresAt" | "notAfter" => "2026-12-22T10:15:00Z",
            "lastUsedAt" | "lastSeenAt" | "finishedAt" | "lastRunAt" => "2026-11-22T11:02:41Z",
            "nextRunAt" => "2026-11-22T16:15:00Z",
            _ => "2026-11-22T10:15:00Z",
        }),
        _ if schema["format"] == "uuid" => json!(sample_id(field)),
        _ => json!("…"),
    }
}

//! Scale: the same requests against a server whose database holds a million rows and
//! one whose database holds a thousand, in alternating rounds, so that the ratio is the
//! cost of size alone.
//!
//! Both databases get the same API-made data (`pg_setup`, plus share links), then grow
//! in SQL to their size by copying one valid row of each table with new ids (older
//! than the API-made ones, UUID v7-shaped) and new digests: 1 M API tokens (with their
//! secrets), 1 M share links, 100 k scans and 1 M audit events in the large one, 1 000
//! of each in the small one, all in the benchmark's tenant, so every tenant-scoped
//! index the requests use is as deep as it gets. `VACUUM ANALYZE` then, as a long-lived
//! database would be.
//!
//! Lists are read at depth: page 1 000 (50 a page, a keyset cursor 49 950 rows in) on
//! the large database, and the last full page on the small one (page 20 of 1 000 rows):
//! with keyset pagination both are one index descent, which is what this measures.

use std::path::Path;

use super::api::Api;
use super::db::Database;
use super::postgres::{pg_setup, start_pg_server};
use super::{
    Env, Options, Outcome, alternate, client_address, http_rotating, rotating_gets, rotating_urls,
};

/// Rows a list page holds in these requests.
const PAGE: u64 = 50;

/// The page read at depth on the large database.
const DEEP_PAGE: u64 = 1_000;

/// Share links made through the API on each server (opened in turn by the load).
const LINKS: usize = 500;

/// Rows of each table, by database.
struct Size {
    /// How the report names this database.
    label: &'static str,
    tokens: u64,
    share_links: u64,
    scans: u64,
    audit_events: u64,
}

const LARGE: Size = Size {
    label: "1 M rows",
    tokens: 1_000_000,
    share_links: 1_000_000,
    scans: 100_000,
    audit_events: 1_000_000,
};

/// The large database of a `--quick` run (a smoke check of the machinery only).
const QUICK: Size = Size {
    label: "20 k rows (--quick)",
    tokens: 20_000,
    share_links: 20_000,
    scans: 5_000,
    audit_events: 20_000,
};

const SMALL: Size = Size {
    label: "1 k rows",
    tokens: 1_000,
    share_links: 1_000,
    scans: 1_000,
    audit_events: 1_000,
};

/// A server, its database and what the load needs of it.
struct Side {
    server: super::servers::Server,
    rows: &'static str,
    tokens: Vec<String>,
    scans: Vec<String>,
    links: Vec<String>,
    token_cursor: String,
    audit_cursor: String,
    // Dropped last: the server holds connections to it.
    _db: Database,
}

/// Makes a database of `size`, starts a server on it, and prepares the load.
fn side(env: &Env, bin: &Path, tag: &str, size: &Size) -> anyhow::Result<Side> {
    let db = Database::create(env.tools.psql.clone(), tag)?;
    let label = format!("fleetpass (PostgreSQL, {})", size.label);
    let server = start_pg_server(&label, bin, &db, &env.work)?;
    let api = Api::new(&server.base);
    let data = env.rt.block_on(pg_setup(&api))?;
    let links = env
        .rt
        .block_on(api.share_links(&data.tokens, &data.scans[0], LINKS))?;
    let tenant = db.sql(&format!(
        "SELECT tenant_id FROM fleets WHERE id = '{}'",
        data.fleet
    ))?;
    let started = std::time::Instant::now();
    grow(&db, &tenant, size)?;
    println!(
        "  {label}: grew to {} tokens, {} share links, {} scans, {} audit events in {:.0} s",
        size.tokens,
        size.share_links,
        size.scans,
        size.audit_events,
        started.elapsed().as_secs_f64()
    );
    let token_cursor = deep_cursor(&db, "api_tokens", &tenant)?;
    let audit_cursor = deep_cursor(&db, "audit_events", &tenant)?;
    Ok(Side {
        server,
        rows: size.label,
        tokens: data.tokens,
        scans: data.scans,
        links,
        token_cursor,
        audit_cursor,
        _db: db,
    })
}

/// The statement that copies one row of `table` of `tenant` (`source`, with `ORDER BY`
/// and filters) `count` times, with new ids from `pg_temp.bench_id`.
fn copies(table: &str, columns: &str, values: &str, source: &str, count: u64) -> String {
    format!(
        "INSERT INTO {table} ({columns}) SELECT {values} \
           FROM (SELECT * FROM {table} {source} LIMIT 1) s, \
                (SELECT i, pg_temp.bench_id(i) AS id FROM generate_series(1, {count}) i) g;"
    )
}

/// Grows the tenant's tables to `size` (never shrinks them), in one session.
fn grow(db: &Database, tenant: &str, size: &Size) -> anyhow::Result<()> {
    let count = |table: &str| -> anyhow::Result<u64> {
        Ok(db
            .sql(&format!(
                "SELECT count(*) FROM {table} WHERE tenant_id = '{tenant}'"
            ))?
            .parse()?)
    };
    let missing =
        |table: &str, want: u64| -> anyhow::Result<u64> { Ok(want.saturating_sub(count(table)?)) };
    let of_tenant = format!("WHERE tenant_id = '{tenant}' ORDER BY id");
    let sql = [
        // UUID v7-shaped ids a day and `i` milliseconds old: older than the API's, and
        // in the order the server's own ids would have.
        "CREATE FUNCTION pg_temp.bench_id(i bigint) RETURNS uuid LANGUAGE sql AS $$ \
           SELECT encode(overlay(uuid_send(gen_random_uuid()) placing \
             substring(int8send((extract(epoch from now()) * 1000)::int8 - 86400000 - i) from 3) \
             from 1 for 6), 'hex')::uuid $$;"
            .to_owned(),
        copies(
            "api_tokens",
            "id, tenant_id, owner_id, name, role, all_environments, environment_ids, \
             rate_limit_per_minute, expires_at, created_at, last_used_at, revoked_at, hint",
            "g.id, s.tenant_id, s.owner_id, 'bulk-' || g.i, s.role, s.all_environments, \
             s.environment_ids, s.rate_limit_per_minute, s.expires_at, s.created_at, NULL, NULL, s.hint",
            &of_tenant,
            missing("api_tokens", size.tokens)?,
        ),
        "INSERT INTO api_token_secrets (digest, token_id, valid_until) \
           SELECT sha256(uuid_send(t.id)), t.id, NULL FROM api_tokens t \
           WHERE t.name LIKE 'bulk-%' \
             AND NOT EXISTS (SELECT 1 FROM api_token_secrets x WHERE x.token_id = t.id);"
            .to_owned(),
        copies(
            "scans",
            "id, tenant_id, fleet_id, environment_id, scenario, max_duration_minutes, \
             not_before, not_after, max_assets, status, requested_at, claimed_by, claimed_at, finished_at",
            "g.id, s.tenant_id, s.fleet_id, s.environment_id, s.scenario, s.max_duration_minutes, \
             s.not_before, s.not_after, s.max_assets, s.status, s.requested_at, s.claimed_by, \
             s.claimed_at, s.finished_at",
            &format!("WHERE tenant_id = '{tenant}' AND status = 'completed' ORDER BY id"),
            missing("scans", size.scans)?,
        ),
        copies(
            "share_links",
            "id, tenant_id, scan_id, digest, scope, label, expires_at, max_accesses, \
             access_count, last_accessed_at, revoked_at, created_at, hint",
            "g.id, s.tenant_id, s.scan_id, sha256(uuid_send(g.id)), s.scope, s.label, \
             s.expires_at, s.max_accesses, 0, NULL, NULL, s.created_at, s.hint",
            &of_tenant,
            missing("share_links", size.share_links)?,
        ),
        copies(
            "audit_events",
            "id, tenant_id, actor_kind, actor_id, action, target_id, at, details, environment_ids",
            "g.id, s.tenant_id, s.actor_kind, s.actor_id, s.action, s.target_id, s.at, \
             s.details, s.environment_ids",
            &of_tenant,
            missing("audit_events", size.audit_events)?,
        ),
    ]
    .join("\n");
    db.sql(&sql)?;
    db.sql("VACUUM ANALYZE api_tokens, api_token_secrets, scans, share_links, audit_events")?;
    Ok(())
}

/// The cursor of the deepest page read in `table` (see the module's docs): page
/// [`DEEP_PAGE`], or the last full one of a smaller table.
fn deep_cursor(db: &Database, table: &str, tenant: &str) -> anyhow::Result<String> {
    let rows: u64 = db
        .sql(&format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = '{tenant}'"
        ))?
        .parse()?;
    let page = (rows / PAGE).clamp(2, DEEP_PAGE);
    // The cursor names the last row of the page before (keyset: `id < cursor`).
    let offset = (page - 1) * PAGE - 1;
    db.sql(&format!(
        "SELECT translate(rtrim(encode(uuid_send(id), 'base64'), '='), '+/', '-_') \
           FROM {table} WHERE tenant_id = '{tenant}' ORDER BY id DESC OFFSET {offset} LIMIT 1"
    ))
}

/// Runs the scale scenarios: each request on the large database (A) against the same
/// on the small one (B).
///
/// # Errors
/// When a database, server or setup request fails.
pub fn run(env: &Env, opts: &Options, bin: &Path) -> anyhow::Result<Vec<Outcome>> {
    let large_size = if opts.quick { &QUICK } else { &LARGE };
    let large = side(env, bin, "large", large_size)?;
    let small = side(env, bin, "small", &SMALL)?;
    type Request = fn(&Side, usize) -> String;
    let scenarios: [(&'static str, &str, Request); 4] = [
        ("scale-scan-read", "`GET /tenant/scans/{id}`", |s, i| {
            format!("/tenant/scans/{}", s.scans[i % s.scans.len()])
        }),
        (
            "scale-tokens-page",
            "`GET /api/admin/tokens`, page 1 000 (1 M rows) / 20 (1 k rows)",
            |s, _| format!("/api/admin/tokens?limit={PAGE}&cursor={}", s.token_cursor),
        ),
        (
            "scale-audit-page",
            "`GET /api/admin/audit-events`, page 1 000 (1 M rows) / 20 (1 k rows)",
            |s, _| {
                format!(
                    "/api/admin/audit-events?limit={PAGE}&cursor={}",
                    s.audit_cursor
                )
            },
        ),
        ("scale-share-open", "`GET /share/{token}`", |s, i| {
            format!("/share/{}", s.links[i % s.links.len()])
        }),
    ];
    let mut outcomes = Vec::new();
    for (name, title, request) in scenarios {
        println!("\n## {name}");
        let public = name == "scale-share-open";
        let load = |side: &Side, label: &str| {
            if public {
                // Anonymous, spread over client addresses as the public scenarios are.
                let lines = (0..side.links.len())
                    .map(|i| format!("GET\t{}\t\t{}", request(side, i), client_address(i)))
                    .collect();
                let urls = (0..side.links.len()).map(|i| request(side, i)).collect();
                http_rotating(label, &side.server, lines, urls, 200)
            } else {
                let path = |i: usize| request(side, i);
                http_rotating(
                    label,
                    &side.server,
                    rotating_gets(&side.tokens, path),
                    rotating_urls(&side.tokens, path),
                    200,
                )
            }
        };
        let mut a = load(&large, large.rows);
        let mut b = load(&small, small.rows);
        let (sa, sb, mut notes) = alternate(env, opts, &mut a, &mut b)?;
        notes.push(format!(
            "Cost at {} ÷ cost at {} = {:.2} (the inverse of the throughput ratio; target ≤ 1.2).",
            large.rows,
            small.rows,
            sb.median() / sa.median().max(1e-9)
        ));
        outcomes.push(Outcome {
            name,
            title: format!(
                "{title}: {} (A) against {} (B), PostgreSQL",
                large.rows, small.rows
            ),
            a: sa,
            b: sb,
            more: Vec::new(),
            server: large.server.label.clone(),
            rss_kib: large.server.rss_kib(),
            notes,
        });
    }
    Ok(outcomes)
}

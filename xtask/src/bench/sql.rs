//! The pgbench baselines: per scenario, the statements the server sends for one
//! request in the steady state, copied from PostgreSQL's own log of a few requests of
//! each kind (`ALTER DATABASE … SET log_statement = 'all'`; docs/PERFORMANCE.md says
//! how), in the same order and transactions. Only the parameters differ in form:
//! pgbench draws them from small `bench_*` tables of the data the benchmark made
//! through the API (a random row per transaction, looked up inside the same statement,
//! so no extra round trip), and makes new ids and digests in SQL. Constant parameters
//! are pgbench variables (`-D`), so that `-M prepared` binds them as the server's
//! driver does.
//!
//! What the steady state leaves out, by design of the server (docs/ARCHITECTURE.md):
//! authentication (credentials are cached in process, `authcache.rs`), rate limits
//! (spent from leases in process; a lease of up to 256 requests costs one upsert, under
//! 0.5 % of these requests), `lastUsedAt` (written in batches every 5 s), and the
//! per-checkout `SELECT 1` (skipped for a connection used within the last second). So
//! `GET /api/me` sends no SQL at all: its baseline is the bare actix-web server.
//!
//! When the server's SQL changes, capture it again and update these texts.

use super::db::Database;

/// A new id shaped like the server's UUID v7 (milliseconds first, so inserts land at
/// the right edge of the primary key's B-tree as the server's do).
const NEW_ID: &str = "encode(overlay(uuid_send(gen_random_uuid()) placing substring(int8send((extract(epoch from clock_timestamp()) * 1000)::int8) from 3) from 1 for 6), 'hex')::uuid";

/// A new 32-byte digest, unique as the server's are.
const NEW_DIGEST: &str = "sha256(uuid_send(gen_random_uuid()))";

const SCAN_COLUMNS: &str = r#""scans"."id", "scans"."tenant_id", "scans"."fleet_id", "scans"."environment_id", "scans"."scenario", "scans"."max_duration_minutes", "scans"."not_before", "scans"."not_after", "scans"."max_assets", "scans"."status", "scans"."requested_at", "scans"."claimed_by", "scans"."claimed_at", "scans"."finished_at""#;

const SHARE_COLUMNS: &str = r#""share_links"."id", "share_links"."tenant_id", "share_links"."scan_id", "share_links"."scope", "share_links"."label", "share_links"."expires_at", "share_links"."max_accesses", "share_links"."access_count", "share_links"."last_accessed_at", "share_links"."revoked_at", "share_links"."created_at", "share_links"."hint""#;

/// The constants the scripts bind, and the parameter tables.
pub struct Params {
    tenant: String,
    environment: String,
    fleet: String,
}

/// `'a','b',…` for an SQL array of texts (tokens are base64url: no quotes inside).
fn text_array(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    format!("ARRAY[{}]::text[]", quoted.join(","))
}

impl Params {
    /// Makes the parameter tables of `tokens` (API tokens) and `scans`, and the client
    /// addresses the public scenarios rotate, and reads the tenant's constants. Checks
    /// that every token is found by its digest (SHA-256 of the secret's text), as the
    /// server finds it.
    ///
    /// # Errors
    /// When a statement fails or a token is not found.
    pub fn load(
        db: &Database,
        tokens: &[String],
        scans: &[String],
        fleet: &str,
    ) -> anyhow::Result<Self> {
        db.sql(&format!(
            "CREATE TABLE bench_tokens AS \
               SELECT (row_number() OVER ())::int AS i, s.digest, 'token:' || s.token_id AS limit_key \
               FROM api_token_secrets s JOIN unnest({}) t ON s.digest = sha256(convert_to(t, 'UTF8')); \
             CREATE TABLE bench_scans AS \
               SELECT (row_number() OVER ())::int AS i, id FROM scans WHERE id = ANY(ARRAY[{}]::uuid[]); \
             CREATE TABLE bench_addresses AS \
               SELECT i, CASE WHEN i < 256 THEN '198.51.100.' ELSE '203.0.113.' END || (i % 256) AS addr \
               FROM generate_series(0, 511) i; \
             ALTER TABLE bench_tokens ADD PRIMARY KEY (i); \
             ALTER TABLE bench_scans ADD PRIMARY KEY (i); \
             ALTER TABLE bench_addresses ADD PRIMARY KEY (i); \
             ANALYZE bench_tokens, bench_scans, bench_addresses",
            text_array(tokens),
            scans.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(",")
        ))?;
        let found: usize = db.sql("SELECT count(*) FROM bench_tokens")?.parse()?;
        anyhow::ensure!(
            found == tokens.len(),
            "found {found} of {} tokens by their digest: the digest rule changed",
            tokens.len()
        );
        let row = db.sql(&format!(
            "SELECT f.tenant_id, f.environment_id FROM fleets f WHERE f.id = '{fleet}'"
        ))?;
        let (tenant, environment) = row
            .split_once('|')
            .map(|(t, e)| (t.to_owned(), e.to_owned()))
            .ok_or_else(|| anyhow::anyhow!("fleet {fleet} not found"))?;
        Ok(Self {
            tenant,
            environment,
            fleet: fleet.to_owned(),
        })
    }

    /// The `-D` variables every script uses.
    pub fn defines(&self, db: &Database) -> anyhow::Result<Vec<(String, String)>> {
        let count = |table: &str| db.sql(&format!("SELECT count(*) FROM {table}"));
        Ok(vec![
            ("ntokens".to_owned(), count("bench_tokens")?),
            ("nscans".to_owned(), count("bench_scans")?),
            ("tenant".to_owned(), self.tenant.clone()),
            ("environment".to_owned(), self.environment.clone()),
            ("fleet".to_owned(), self.fleet.clone()),
        ])
    }

    /// `GET /tenant/scans/{id}`: the scan (one of the completed ones, in turn as the
    /// server's load takes them).
    pub fn scan_sql() -> String {
        format!(
            "\\set s random(1, :nscans)\nSELECT {SCAN_COLUMNS} FROM \"scans\" WHERE ((\"scans\".\"tenant_id\" = :tenant) AND (\"scans\".\"id\" = (SELECT id FROM bench_scans WHERE i = :s))) LIMIT 1;\n"
        )
    }

    /// `POST /tenant/scans/{id}/share-links`: the scan read, then in one transaction
    /// the scan's key-share lock, the link and its audit event (`:t` picks the token
    /// that acts).
    pub fn share_create_sql() -> String {
        format!(
            r#"\set t random(1, :ntokens)
\set s random(1, :nscans)
SELECT {SCAN_COLUMNS} FROM "scans" WHERE (("scans"."tenant_id" = :tenant) AND ("scans"."id" = (SELECT id FROM bench_scans WHERE i = :s))) LIMIT 1;
BEGIN;
SELECT "scans"."id" FROM "scans" WHERE (("scans"."tenant_id" = :tenant) AND ("scans"."id" = (SELECT id FROM bench_scans WHERE i = :s))) LIMIT 1 FOR KEY SHARE;
INSERT INTO "share_links" ("id", "tenant_id", "scan_id", "digest", "scope", "label", "expires_at", "max_accesses", "access_count", "last_accessed_at", "revoked_at", "created_at", "hint") VALUES ({NEW_ID}, :tenant, (SELECT id FROM bench_scans WHERE i = :s), {NEW_DIGEST}, 'passport', 'bench', now() + interval '168 hours', NULL, 0, NULL, NULL, now(), 'fps_…bnch');
INSERT INTO "audit_events" ("id", "tenant_id", "actor_kind", "actor_id", "action", "target_id", "at", "details", "environment_ids") VALUES ({NEW_ID}, :tenant, 'token', (SELECT substr(limit_key, 7)::uuid FROM bench_tokens WHERE i = :t), 'share_link.created', {NEW_ID}, now(), jsonb_build_object('hint', 'fps_…bnch', 'scope', 'passport', 'scanId', (SELECT id FROM bench_scans WHERE i = :s), 'expiresHours', 168), ARRAY[:environment::uuid]);
COMMIT;
"#
        )
    }

    /// Makes the table of share links pgbench opens: every link there is.
    ///
    /// # Errors
    /// When a statement fails.
    pub fn share_links_table(db: &Database) -> anyhow::Result<String> {
        db.sql(
            "DROP TABLE IF EXISTS bench_share_links; \
             CREATE TABLE bench_share_links AS \
               SELECT (row_number() OVER ())::int AS i, id, digest, scan_id FROM share_links; \
             ALTER TABLE bench_share_links ADD PRIMARY KEY (i); ANALYZE bench_share_links",
        )?;
        db.sql("SELECT count(*) FROM bench_share_links")
    }

    /// `GET /share/{token}`: in one transaction the link (locked), its access count,
    /// the scan and the audit event; then the artifacts.
    pub fn share_open_sql() -> String {
        format!(
            r#"\set l random(1, :nlinks)
BEGIN;
SELECT {SHARE_COLUMNS} FROM "share_links" WHERE ("share_links"."digest" = (SELECT digest FROM bench_share_links WHERE i = :l)) LIMIT 1 FOR NO KEY UPDATE;
UPDATE "share_links" SET "access_count" = ("share_links"."access_count" + 1), "last_accessed_at" = now() WHERE ("share_links"."id" = (SELECT id FROM bench_share_links WHERE i = :l)) RETURNING {SHARE_COLUMNS};
SELECT {SCAN_COLUMNS} FROM "scans" WHERE (("scans"."tenant_id" = :tenant) AND ("scans"."id" = (SELECT scan_id FROM bench_share_links WHERE i = :l))) LIMIT 1;
INSERT INTO "audit_events" ("id", "tenant_id", "actor_kind", "actor_id", "action", "target_id", "at", "details", "environment_ids") VALUES ({NEW_ID}, :tenant, 'public', NULL, 'share_link.accessed', (SELECT id FROM bench_share_links WHERE i = :l), now(), '{{"artifact": "report", "accessCount": 1}}'::jsonb, NULL);
COMMIT;
SELECT "scan_artifacts"."scan_id", "scan_artifacts"."bundle_json", "scan_artifacts"."bundle_sha256", "scan_artifacts"."report", "scan_artifacts"."passport" FROM ("scans" LEFT OUTER JOIN "scan_artifacts" ON ("scan_artifacts"."scan_id" = "scans"."id")) WHERE (("scans"."tenant_id" = :tenant) AND ("scans"."id" = (SELECT scan_id FROM bench_share_links WHERE i = :l))) LIMIT 1;
"#
        )
    }

    /// Makes the table of enrollment tokens pgbench consumes, from their texts (each
    /// allows 1000 uses; [`Params::reset_enrollment`] gives them back before a run).
    ///
    /// # Errors
    /// When a statement fails or a token is not found.
    pub fn enrollment_table(db: &Database, tokens: &[String]) -> anyhow::Result<String> {
        db.sql(&format!(
            "DROP TABLE IF EXISTS bench_enrollment_tokens; \
             CREATE TABLE bench_enrollment_tokens AS \
               SELECT (row_number() OVER ())::int AS i, e.id, e.digest \
               FROM enrollment_tokens e JOIN unnest({}) t ON e.digest = sha256(convert_to(t, 'UTF8')); \
             ALTER TABLE bench_enrollment_tokens ADD PRIMARY KEY (i); ANALYZE bench_enrollment_tokens",
            text_array(tokens)
        ))?;
        let found = db.sql("SELECT count(*) FROM bench_enrollment_tokens")?;
        anyhow::ensure!(
            found == tokens.len().to_string(),
            "found {found} of {} enrollment tokens by their digest",
            tokens.len()
        );
        Ok(found)
    }

    /// Gives pgbench's enrollment tokens their uses back (between runs, untimed).
    pub const RESET_ENROLLMENT: &str = "UPDATE enrollment_tokens SET uses = 0 \
         WHERE id IN (SELECT id FROM bench_enrollment_tokens)";

    /// `POST /agent/enroll`: in one transaction the token's fleet, the fleet's
    /// key-share lock, the token (locked), its use, the agent and the audit event.
    pub fn enroll_sql() -> String {
        format!(
            r#"\set e random(1, :nenroll)
BEGIN;
SELECT "enrollment_tokens"."fleet_id" FROM "enrollment_tokens" WHERE ("enrollment_tokens"."digest" = (SELECT digest FROM bench_enrollment_tokens WHERE i = :e)) LIMIT 1;
SELECT "fleets"."id" FROM "fleets" WHERE ("fleets"."id" = :fleet) LIMIT 1 FOR KEY SHARE;
SELECT "enrollment_tokens"."id", "enrollment_tokens"."tenant_id", "enrollment_tokens"."fleet_id", "enrollment_tokens"."max_uses", "enrollment_tokens"."uses", "enrollment_tokens"."expires_at", "enrollment_tokens"."created_at", "enrollment_tokens"."revoked_at", "enrollment_tokens"."hint" FROM "enrollment_tokens" WHERE ("enrollment_tokens"."digest" = (SELECT digest FROM bench_enrollment_tokens WHERE i = :e)) LIMIT 1 FOR UPDATE;
UPDATE "enrollment_tokens" SET "uses" = ("enrollment_tokens"."uses" + 1) WHERE ("enrollment_tokens"."id" = (SELECT id FROM bench_enrollment_tokens WHERE i = :e));
INSERT INTO "agents" ("id", "tenant_id", "fleet_id", "hostname", "platform", "agent_version", "secret_digest", "enrolled_at", "last_seen_at", "revoked_at") VALUES ({NEW_ID}, :tenant, :fleet, 'bench-pgbench', 'linux-x86_64', NULL, {NEW_DIGEST}, now(), NULL, NULL);
INSERT INTO "audit_events" ("id", "tenant_id", "actor_kind", "actor_id", "action", "target_id", "at", "details", "environment_ids") VALUES ({NEW_ID}, :tenant, 'agent', {NEW_ID}, 'agent.enrolled', {NEW_ID}, now(), jsonb_build_object('fleetId', :fleet::text, 'hostname', 'bench-pgbench', 'platform', 'linux-x86_64', 'enrollmentTokenId', (SELECT id FROM bench_enrollment_tokens WHERE i = :e)), NULL);
COMMIT;
"#
        )
    }
}

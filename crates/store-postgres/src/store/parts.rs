//! The parts of fan-out scans on PostgreSQL: making them with the scan, an agent's claim
//! of its own part, its results, the progress counts, the merge's pages, the scan's end,
//! cancelling, and the sweeper's and a revocation's failing of open parts.
//!
//! Locks (beside those of `scans.rs`):
//! - Making the parts share-locks the targeted agents' rows, in id order, so a
//!   concurrent revocation either commits first (the agent is not targeted) or waits and
//!   then fails the new part; the batched presence flush updates agents in id order too.
//! - A part is locked `FOR UPDATE` by its claim (`SKIP LOCKED`: the agent's own second
//!   poll moves on), its results (waiting), the sweeper (`SKIP LOCKED`, in key order) and
//!   a revocation (by one statement). The scan row is locked to end or cancel the scan
//!   (`FOR NO KEY UPDATE`, then its open parts in key order), and by a claim's one-time
//!   `queued → running` update, which skips the row when it is held (a claim holds its
//!   part, so waiting for the scan row could close a cycle with a cancellation).

use diesel::sql_types::{
    Array, BigInt, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, QueryableByName};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::Agent;
use fleetpass_domain::ids::{AgentId, ScanId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::{
    MaxDurationMinutes, PartFailure, PartStatus, Progress, Scan, ScanPart, ScanStatus, ScanTarget,
};
use fleetpass_ports::RepoError;
use fleetpass_ports::store::{ScanArtifacts, constraint};
use uuid::Uuid;

use super::{PgStore, insert_audit, overfetch};
use crate::error::{CorruptRow, DbError};
use crate::rows::{ArtifactsRow, ScanRow, labels_column};
use crate::schema::{scan_artifacts, scan_parts, scans};

fn conflict(constraint: fleetpass_ports::Conflict) -> DbError {
    RepoError::Conflict { constraint }.into()
}

/// The domain's default run-time limit, as the SQL below binds it (never written twice).
fn default_minutes() -> i32 {
    i32::try_from(MaxDurationMinutes::default_limit().get()).unwrap_or(i32::MAX)
}

#[derive(QueryableByName)]
struct AgentIdRow {
    #[diesel(sql_type = SqlUuid)]
    agent_id: Uuid,
}

/// Makes the queued parts of a new fan-out scan, inside its transaction: one per live
/// agent of the fleet that `target` selects. Returns the agents, sorted.
pub(super) async fn insert_parts(
    c: &mut AsyncPgConnection,
    scan: &Scan,
    target: &ScanTarget,
) -> Result<Vec<AgentId>, DbError> {
    let (filter, labels, listed): (&str, serde_json::Value, Vec<Uuid>) = match target {
        ScanTarget::Any => return Ok(Vec::new()),
        ScanTarget::All => ("TRUE", serde_json::json!({}), Vec::new()),
        ScanTarget::Labels(selector) => (
            "a.labels @> $4",
            labels_column(selector.labels()),
            Vec::new(),
        ),
        ScanTarget::Agents(ids) => (
            "a.id = ANY($5)",
            serde_json::json!({}),
            ids.iter().map(|a| a.as_uuid()).collect(),
        ),
    };
    // The filter is one of three fixed texts above, never input.
    let sql = format!(
        "WITH picked AS (SELECT a.id FROM agents a \
           WHERE a.tenant_id = $2 AND a.fleet_id = $3 AND a.revoked_at IS NULL AND {filter} \
           ORDER BY a.id FOR SHARE) \
         INSERT INTO scan_parts (scan_id, agent_id, status) \
         SELECT $1, id, 'queued' FROM picked RETURNING agent_id"
    );
    let rows: Vec<AgentIdRow> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(scan.id.as_uuid())
        .bind::<SqlUuid, _>(scan.tenant_id.as_uuid())
        .bind::<SqlUuid, _>(scan.fleet_id.as_uuid())
        .bind::<Jsonb, _>(labels)
        .bind::<Array<SqlUuid>, _>(listed.clone())
        .load(c)
        .await?;
    if let ScanTarget::Agents(ids) = target
        && rows.len() != ids.len()
    {
        return Err(conflict(constraint::TARGET_NOT_IN_FLEET));
    }
    if rows.is_empty() {
        return Err(conflict(constraint::TARGET_EMPTY));
    }
    let mut agents: Vec<AgentId> = rows
        .into_iter()
        .map(|r| AgentId::from_uuid(r.agent_id))
        .collect();
    agents.sort_unstable();
    Ok(agents)
}

#[derive(QueryableByName)]
struct ScanIdRow {
    #[diesel(sql_type = SqlUuid)]
    scan_id: Uuid,
}

/// The oldest scan with a queued part of `agent` that is claimable at `now`, its part
/// locked (`SKIP LOCKED`), inside the claim's transaction.
pub(super) async fn claimable_part(
    c: &mut AsyncPgConnection,
    agent: &Agent,
    now: Timestamp,
) -> Result<Option<Uuid>, DbError> {
    let row: Option<ScanIdRow> = diesel::sql_query(
        "SELECT p.scan_id FROM scan_parts p JOIN scans s ON s.id = p.scan_id \
         WHERE p.agent_id = $1 AND p.status = 'queued' AND s.tenant_id = $2 \
           AND s.status IN ('queued', 'running') \
           AND (s.not_before IS NULL OR s.not_before <= $3) \
           AND $3 < COALESCE(s.not_after, \
                 s.requested_at + make_interval(mins => COALESCE(s.max_duration_minutes, $4))) \
         ORDER BY p.scan_id LIMIT 1 FOR UPDATE OF p SKIP LOCKED",
    )
    .bind::<SqlUuid, _>(agent.id.as_uuid())
    .bind::<SqlUuid, _>(agent.tenant_id.as_uuid())
    .bind::<Timestamptz, _>(now)
    .bind::<Integer, _>(default_minutes())
    .get_result(c)
    .await
    .optional()?;
    Ok(row.map(|r| r.scan_id))
}

/// `claim_parts`: one statement claims every claimable queued part of the batch's
/// agents, in key order, skipping parts another claim holds.
pub(super) async fn claim_many(
    store: &PgStore,
    tenant: TenantId,
    id: ScanId,
    agents: &[AgentId],
    now: Timestamp,
) -> Result<Option<(Scan, Vec<AgentId>)>, RepoError> {
    let ids: Vec<Uuid> = agents.iter().map(|a| a.as_uuid()).collect();
    store
        .transaction(|c| {
            async move {
                let rows: Vec<AgentIdRow> = diesel::sql_query(
                    "WITH picked AS (SELECT p.scan_id, p.agent_id FROM scan_parts p \
                       JOIN scans s ON s.id = p.scan_id \
                       WHERE p.scan_id = $1 AND s.tenant_id = $2 AND p.agent_id = ANY($3) \
                         AND p.status = 'queued' AND s.status IN ('queued', 'running') \
                         AND (s.not_before IS NULL OR s.not_before <= $4) \
                         AND $4 < COALESCE(s.not_after, \
                               s.requested_at + make_interval(mins => COALESCE(s.max_duration_minutes, $5))) \
                       ORDER BY p.agent_id FOR UPDATE OF p SKIP LOCKED) \
                     UPDATE scan_parts p SET status = 'running', claimed_at = $4 FROM picked \
                     WHERE p.scan_id = picked.scan_id AND p.agent_id = picked.agent_id \
                     RETURNING p.agent_id",
                )
                .bind::<SqlUuid, _>(id.as_uuid())
                .bind::<SqlUuid, _>(tenant.as_uuid())
                .bind::<Array<SqlUuid>, _>(&ids)
                .bind::<Timestamptz, _>(now)
                .bind::<Integer, _>(default_minutes())
                .load(c)
                .await?;
                if rows.is_empty() {
                    return Ok(None);
                }
                let scan = mark_running(c, id.as_uuid(), now).await?;
                let mut claimed: Vec<AgentId> =
                    rows.into_iter().map(|r| AgentId::from_uuid(r.agent_id)).collect();
                claimed.sort_unstable();
                Ok(Some((scan, claimed)))
            }
            .scope_boxed()
        })
        .await
}

/// Claims `agent`'s locked part of `scan` at `now`; the scan runs from its first claim.
pub(super) async fn claim_part(
    c: &mut AsyncPgConnection,
    agent: &Agent,
    scan: Uuid,
    now: Timestamp,
) -> Result<Scan, DbError> {
    diesel::update(
        scan_parts::table
            .filter(scan_parts::scan_id.eq(scan))
            .filter(scan_parts::agent_id.eq(agent.id.as_uuid())),
    )
    .set((
        scan_parts::status.eq(PartStatus::Running.as_str()),
        scan_parts::claimed_at.eq(now),
    ))
    .execute(c)
    .await?;
    mark_running(c, scan, now).await
}

/// Marks `scan` running from `now` if it is still queued, and reads it.
async fn mark_running(
    c: &mut AsyncPgConnection,
    scan: Uuid,
    now: Timestamp,
) -> Result<Scan, DbError> {
    // The scan runs from its first claim. Its row is taken only if free (`SKIP
    // LOCKED`): a cancellation or a finisher holding it locks parts after it, so
    // waiting here (holding this part) could deadlock with them; a concurrent first
    // claim that holds it is marking it running anyway.
    diesel::sql_query(
        "UPDATE scans SET status = 'running', claimed_at = $2 WHERE id = \
           (SELECT id FROM scans WHERE id = $1 AND status = 'queued' FOR NO KEY UPDATE SKIP LOCKED)",
    )
    .bind::<SqlUuid, _>(scan)
    .bind::<Timestamptz, _>(now)
    .execute(c)
    .await?;
    let row = scans::table
        .find(scan)
        .select(<ScanRow as diesel::SelectableHelper<diesel::pg::Pg>>::as_select())
        .first::<ScanRow>(c)
        .await?;
    Ok(Scan::try_from(row)?)
}

fn part_of(
    (agent, status, claimed_at, finished_at, failure): (
        Uuid,
        String,
        Option<Timestamp>,
        Option<Timestamp>,
        Option<String>,
    ),
) -> Result<ScanPart, RepoError> {
    let corrupt = |reason: &dyn std::fmt::Display| CorruptRow::repo("scan_parts", agent, reason);
    Ok(ScanPart {
        agent_id: AgentId::from_uuid(agent),
        status: PartStatus::parse(&status).map_err(|e| corrupt(&e))?,
        claimed_at,
        finished_at,
        failure: failure
            .as_deref()
            .map(PartFailure::parse)
            .transpose()
            .map_err(|e| corrupt(&e))?,
    })
}

/// Checks that scan `id` is one of `tenant`'s.
async fn of_tenant(c: &mut AsyncPgConnection, tenant: TenantId, id: ScanId) -> Result<(), DbError> {
    scans::table
        .filter(scans::tenant_id.eq(tenant.as_uuid()))
        .filter(scans::id.eq(id.as_uuid()))
        .select(scans::id)
        .first::<Uuid>(c)
        .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = SqlUuid)]
    scan_id: Uuid,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn progress_in(
    c: &mut AsyncPgConnection,
    tenant: TenantId,
    ids: &[ScanId],
) -> Result<Vec<(ScanId, Progress)>, DbError> {
    let ids: Vec<Uuid> = ids.iter().map(|s| s.as_uuid()).collect();
    let rows: Vec<CountRow> = diesel::sql_query(
        "SELECT p.scan_id, p.status, count(*) AS n FROM scan_parts p \
         JOIN scans s ON s.id = p.scan_id \
         WHERE s.tenant_id = $1 AND p.scan_id = ANY($2) GROUP BY p.scan_id, p.status",
    )
    .bind::<SqlUuid, _>(tenant.as_uuid())
    .bind::<Array<SqlUuid>, _>(ids)
    .load(c)
    .await?;
    let mut out: Vec<(ScanId, Progress)> = Vec::new();
    for row in rows {
        let status = PartStatus::parse(&row.status)
            .map_err(|e| CorruptRow::repo("scan_parts", row.scan_id, &e))?;
        let id = ScanId::from_uuid(row.scan_id);
        let n = u32::try_from(row.n).unwrap_or(u32::MAX);
        match out.iter_mut().find(|(s, _)| *s == id) {
            Some((_, p)) => p.count(status, n),
            None => {
                let mut p = Progress::default();
                p.count(status, n);
                out.push((id, p));
            }
        }
    }
    Ok(out)
}

/// `scan_progress`.
pub(super) async fn progress(
    store: &PgStore,
    tenant: TenantId,
    ids: &[ScanId],
) -> Result<Vec<(ScanId, Progress)>, RepoError> {
    store
        .run(|c| async move { progress_in(c, tenant, ids).await }.scope_boxed())
        .await
}

/// `list_parts`.
pub(super) async fn list(
    store: &PgStore,
    tenant: TenantId,
    scan: ScanId,
    status: Option<PartStatus>,
    page: PageRequest,
) -> Result<Page<ScanPart>, RepoError> {
    store
        .run(|c| {
            async move {
                of_tenant(c, tenant, scan).await?;
                let mut query = scan_parts::table
                    .filter(scan_parts::scan_id.eq(scan.as_uuid()))
                    .select((
                        scan_parts::agent_id,
                        scan_parts::status,
                        scan_parts::claimed_at,
                        scan_parts::finished_at,
                        scan_parts::failure,
                    ))
                    .order(scan_parts::agent_id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(status) = status {
                    query = query.filter(scan_parts::status.eq(status.as_str()));
                }
                if let Some(cursor) = page.cursor {
                    query = query.filter(scan_parts::agent_id.lt(cursor.last_id()));
                }
                let rows = query.load(c).await?;
                let parts = rows
                    .into_iter()
                    .map(part_of)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_overfetch(parts, page.limit, |p| {
                    p.agent_id.as_uuid()
                }))
            }
            .scope_boxed()
        })
        .await
}

/// `get_part`.
pub(super) async fn get(
    store: &PgStore,
    agent: &Agent,
    id: ScanId,
) -> Result<Option<ScanPart>, RepoError> {
    store
        .run(|c| {
            async move {
                let row = scan_parts::table
                    .inner_join(scans::table)
                    .filter(scans::tenant_id.eq(agent.tenant_id.as_uuid()))
                    .filter(scan_parts::scan_id.eq(id.as_uuid()))
                    .filter(scan_parts::agent_id.eq(agent.id.as_uuid()))
                    .select((
                        scan_parts::agent_id,
                        scan_parts::status,
                        scan_parts::claimed_at,
                        scan_parts::finished_at,
                        scan_parts::failure,
                    ))
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(part_of).transpose()?)
            }
            .scope_boxed()
        })
        .await
}

/// `submit_part`.
pub(super) async fn submit(
    store: &PgStore,
    agent: AgentId,
    id: ScanId,
    at: Timestamp,
    results_json: &str,
) -> Result<bool, RepoError> {
    store
        .transaction(|c| {
            async move {
                let part = scan_parts::table
                    .filter(scan_parts::scan_id.eq(id.as_uuid()))
                    .filter(scan_parts::agent_id.eq(agent.as_uuid()))
                    .select(scan_parts::status)
                    .for_update()
                    .first::<String>(c)
                    .await
                    .optional()?;
                let Some(status) = part else {
                    return Err(RepoError::NotFound.into());
                };
                if status != PartStatus::Running.as_str() {
                    return Err(conflict(constraint::SCAN_NOT_RUNNING));
                }
                diesel::update(
                    scan_parts::table
                        .filter(scan_parts::scan_id.eq(id.as_uuid()))
                        .filter(scan_parts::agent_id.eq(agent.as_uuid())),
                )
                .set((
                    scan_parts::status.eq(PartStatus::Completed.as_str()),
                    scan_parts::finished_at.eq(at),
                    scan_parts::results.eq(results_json),
                ))
                .execute(c)
                .await?;
                has_open_parts(c, id.as_uuid()).await
            }
            .scope_boxed()
        })
        .await
}

/// `part_results`.
pub(super) async fn results(
    store: &PgStore,
    tenant: TenantId,
    id: ScanId,
    after: Option<AgentId>,
    limit: u32,
) -> Result<Vec<(AgentId, String)>, RepoError> {
    store
        .run(|c| {
            async move {
                of_tenant(c, tenant, id).await?;
                let mut query = scan_parts::table
                    .filter(scan_parts::scan_id.eq(id.as_uuid()))
                    .filter(scan_parts::status.eq(PartStatus::Completed.as_str()))
                    .select((scan_parts::agent_id, scan_parts::results))
                    .order(scan_parts::agent_id.asc())
                    .limit(i64::from(limit))
                    .into_boxed();
                if let Some(after) = after {
                    query = query.filter(scan_parts::agent_id.gt(after.as_uuid()));
                }
                let rows: Vec<(Uuid, Option<String>)> = query.load(c).await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|(a, r)| r.map(|r| (AgentId::from_uuid(a), r)))
                    .collect())
            }
            .scope_boxed()
        })
        .await
}

#[derive(QueryableByName)]
struct Open {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    open: bool,
}

/// Whether scan `id` has a queued or running part. The statuses are literals, not
/// bound, so that every plan can use the partial index on open parts (see
/// `status_is` in `scans.rs`): one index probe, however many parts have ended.
async fn has_open_parts(c: &mut AsyncPgConnection, id: Uuid) -> Result<bool, DbError> {
    Ok(diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM scan_parts \
           WHERE scan_id = $1 AND status IN ('queued', 'running')) AS open",
    )
    .bind::<SqlUuid, _>(id)
    .get_result::<Open>(c)
    .await?
    .open)
}

async fn lock_scan(
    c: &mut AsyncPgConnection,
    tenant: TenantId,
    id: ScanId,
) -> Result<Scan, DbError> {
    let row = scans::table
        .filter(scans::tenant_id.eq(tenant.as_uuid()))
        .filter(scans::id.eq(id.as_uuid()))
        .select(<ScanRow as diesel::SelectableHelper<diesel::pg::Pg>>::as_select())
        .for_no_key_update()
        .first::<ScanRow>(c)
        .await?;
    Ok(Scan::try_from(row)?)
}

async fn set_end(
    c: &mut AsyncPgConnection,
    id: ScanId,
    status: ScanStatus,
    at: Timestamp,
) -> Result<Scan, DbError> {
    let row = diesel::update(scans::table.find(id.as_uuid()))
        .set((scans::status.eq(status.as_str()), scans::finished_at.eq(at)))
        .returning(<ScanRow as diesel::SelectableHelper<diesel::pg::Pg>>::as_returning())
        .get_result::<ScanRow>(c)
        .await?;
    Ok(Scan::try_from(row)?)
}

/// `finish_fan_out`.
pub(super) async fn finish(
    store: &PgStore,
    tenant: TenantId,
    id: ScanId,
    at: Timestamp,
    artifacts: Option<&ScanArtifacts>,
    audit: &AuditEvent,
) -> Result<Option<Scan>, RepoError> {
    store
        .transaction(|c| {
            async move {
                let scan = lock_scan(c, tenant, id).await?;
                if !scan.target.fans_out()
                    || scan.status.is_final()
                    || has_open_parts(c, id.as_uuid()).await?
                {
                    return Ok(None);
                }
                let status = if artifacts.is_some() {
                    ScanStatus::Completed
                } else {
                    ScanStatus::Failed
                };
                let ended = set_end(c, id, status, at).await?;
                if let Some(artifacts) = artifacts {
                    diesel::insert_into(scan_artifacts::table)
                        .values(ArtifactsRow::new(id, artifacts)?)
                        .execute(c)
                        .await?;
                }
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(Some(ended))
            }
            .scope_boxed()
        })
        .await
}

/// `fan_outs_to_finish`.
pub(super) async fn ready(store: &PgStore, limit: u32) -> Result<Vec<Scan>, RepoError> {
    store
        .run(|c| {
            async move {
                let open = scan_parts::table
                    .filter(scan_parts::scan_id.eq(scans::id))
                    .filter(
                        scan_parts::status
                            .eq_any([PartStatus::Queued.as_str(), PartStatus::Running.as_str()]),
                    );
                let rows: Vec<ScanRow> = scans::table
                    .filter(
                        scans::status
                            .eq_any([ScanStatus::Queued.as_str(), ScanStatus::Running.as_str()]),
                    )
                    .filter(scans::target.ne(serde_json::json!("any")))
                    .filter(diesel::dsl::not(diesel::dsl::exists(open)))
                    .select(<ScanRow as diesel::SelectableHelper<diesel::pg::Pg>>::as_select())
                    .limit(i64::from(limit))
                    .load(c)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(Scan::try_from)
                    .collect::<Result<Vec<_>, _>>()?)
            }
            .scope_boxed()
        })
        .await
}

/// `cancel_scan`.
pub(super) async fn cancel(
    store: &PgStore,
    tenant: TenantId,
    id: ScanId,
    at: Timestamp,
    audit: &AuditEvent,
) -> Result<Scan, RepoError> {
    store
        .transaction(|c| {
            async move {
                let scan = lock_scan(c, tenant, id).await?;
                if scan.status.is_final() {
                    return Err(conflict(constraint::SCAN_FINISHED));
                }
                let cancelled = set_end(c, id, ScanStatus::Cancelled, at).await?;
                end_open(c, Some(id.as_uuid()), None, PartStatus::Cancelled, None, at).await?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(cancelled)
            }
            .scope_boxed()
        })
        .await
}

/// Ends the open parts of a scan, or of an agent, as `status`, in key order (so two
/// such statements never deadlock on each other).
pub(super) async fn end_open(
    c: &mut AsyncPgConnection,
    scan: Option<Uuid>,
    agent: Option<Uuid>,
    status: PartStatus,
    failure: Option<PartFailure>,
    at: Timestamp,
) -> Result<usize, DbError> {
    Ok(diesel::sql_query(
        "WITH open AS (SELECT scan_id, agent_id FROM scan_parts \
           WHERE status IN ('queued', 'running') \
             AND ($1::uuid IS NULL OR scan_id = $1) AND ($2::uuid IS NULL OR agent_id = $2) \
           ORDER BY scan_id, agent_id FOR UPDATE) \
         UPDATE scan_parts p SET status = $3, failure = $4, finished_at = $5 \
         FROM open WHERE p.scan_id = open.scan_id AND p.agent_id = open.agent_id",
    )
    .bind::<Nullable<SqlUuid>, _>(scan)
    .bind::<Nullable<SqlUuid>, _>(agent)
    .bind::<Text, _>(status.as_str())
    .bind::<Nullable<Text>, _>(failure.map(PartFailure::as_str))
    .bind::<Timestamptz, _>(at)
    .execute(c)
    .await?)
}

/// The sweeper's share: fails every open part past its deadline (`Scan::part_overdue`,
/// in SQL), skipping parts another transaction holds. Returns how many failed.
pub(super) async fn sweep(store: &PgStore, now: Timestamp) -> Result<usize, RepoError> {
    store
        .run(|c| {
            async move {
                Ok(diesel::sql_query(
                    "WITH overdue AS (SELECT p.scan_id, p.agent_id, p.status FROM scan_parts p \
                       JOIN scans s ON s.id = p.scan_id \
                       WHERE p.status IN ('queued', 'running') AND ( \
                         (p.status = 'running' AND p.claimed_at \
                            + make_interval(mins => COALESCE(s.max_duration_minutes, $2)) <= $1) \
                         OR (p.status = 'queued' AND COALESCE(s.not_after, s.requested_at \
                            + make_interval(mins => COALESCE(s.max_duration_minutes, $2))) <= $1)) \
                       ORDER BY p.scan_id, p.agent_id FOR UPDATE OF p SKIP LOCKED) \
                     UPDATE scan_parts p SET status = 'failed', finished_at = $1, \
                       failure = CASE overdue.status WHEN 'running' THEN 'no_results' ELSE 'not_claimed' END \
                     FROM overdue WHERE p.scan_id = overdue.scan_id AND p.agent_id = overdue.agent_id",
                )
                .bind::<Timestamptz, _>(now)
                .bind::<Integer, _>(default_minutes())
                .execute(c)
                .await?)
            }
            .scope_boxed()
        })
        .await
}

//! The scan methods of [`PgStore`]: requesting, reading and listing scans, claiming,
//! completing with artifacts, and the sweeper. The `ScanStore` impl at the end of
//! this file delegates to the functions here and in `share_links`.
//!
//! Locks (in addition to the discipline described in `store.rs`):
//! - `create` key-share locks the fleet, like every write of a row under a fleet, so a
//!   concurrent `delete_fleet` either commits first (and the scan is refused with
//!   `NotFound`) or waits for the scan and deletes it too.
//! - `claim`, `complete` and the sweeper lock only the scan rows they change, `FOR NO
//!   KEY UPDATE`: the lock PostgreSQL's own UPDATE of non-key columns takes. It excludes
//!   every other writer of the row, yet lets through the key-share locks that foreign
//!   key checks (a new share link or artifacts row) take on it. Claims and sweeps `SKIP
//!   LOCKED` rows: a row another transaction holds is being moved by it. `complete`
//!   waits instead: the agent must hear the outcome for its own scan.
//! - Besides those rows they only key-share lock the tenant's row (through the audit
//!   event's foreign key), which nothing but a tenant deletion could conflict with. So
//!   `delete_fleet`, which locks the fleet and then, through the cascade, its scans
//!   (and then their artifacts and share links), can wait for them but never deadlock
//!   with them: none of them waits for anything `delete_fleet` holds.

use async_trait::async_trait;
use diesel::dsl::sql;
use diesel::expression::SqlLiteral;
use diesel::sql_types::{Bool, Integer, Nullable};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, NullableExpressionMethods, OptionalExtension,
    QueryDsl, SelectableHelper,
};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::Agent;
use fleetpass_domain::ids::{AgentId, FleetId, ScanId, ShareLinkId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::{
    MaxDurationMinutes, PartStatus, Progress, Scan, ScanPart, ScanStatus, ScanTarget,
};
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::{Artifact, ShareLink};
use fleetpass_ports::RepoError;
use fleetpass_ports::store::{
    AuditFor, ScanArtifacts, ScanFilter, ScanStore, ShareAccess, constraint,
};
use uuid::Uuid;

use super::{PgStore, insert_audit, overfetch, parts, share_links};
use crate::cached::CachedExt as _;
use crate::error::{DbError, InconsistentWrite};
use crate::rows::{ArtifactsRow, ScanRow, convert_all};
use crate::schema::{fleets, scan_artifacts, scans};

/// How many overdue scans one sweeper transaction moves at most. Bounds how long it
/// holds their locks, and keeps its one multi-row audit insert (8 parameters a row) far
/// below PostgreSQL's 65 535 bind parameters.
const SWEEP_BATCH: i64 = 500;

diesel::define_sql_function! {
    /// PostgreSQL's `make_interval(years, months, weeks, days, hours, mins)`, called
    /// positionally (diesel has no named arguments): a run-time limit in minutes as an
    /// interval.
    fn make_interval(
        years: Integer,
        months: Integer,
        weeks: Integer,
        days: Integer,
        hours: Integer,
        mins: Integer
    ) -> Interval;
}

diesel::define_sql_function! {
    /// `coalesce` of a nullable integer column and a fallback.
    fn coalesce(value: Nullable<Integer>, fallback: Integer) -> Integer;
}

/// `scans.status = '<status>'`, with the status written into the SQL as a literal
/// rather than bound, for the claim and sweeper queries: only then can PostgreSQL use
/// the partial indexes `WHERE status = …` that serve them in every plan of the prepared
/// statement, generic ones included (see the scans migration). The text is the domain's
/// fixed wire name, never input.
fn status_is(status: ScanStatus) -> SqlLiteral<Bool> {
    sql(&format!("\"scans\".\"status\" = '{}'", status.as_str()))
}

/// Key-share locks a fleet of `tenant` (`NotFound` when there is none) and returns its
/// environment: `lock_fleet` in `store.rs`, for a write that also needs to know where
/// the fleet lives.
pub(super) async fn lock_fleet_environment(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: FleetId,
) -> Result<Uuid, DbError> {
    Ok(fleets::table
        .filter(fleets::tenant_id.eq(tenant.as_uuid()))
        .filter(fleets::id.eq(id.as_uuid()))
        .select(fleets::environment_id)
        .for_key_share()
        .first::<Uuid>(conn)
        .await?)
}

/// Reads a scan of `tenant`.
pub(super) async fn load(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: ScanId,
) -> Result<Scan, DbError> {
    let row = scans::table
        .filter(scans::tenant_id.eq(tenant.as_uuid()))
        .filter(scans::id.eq(id.as_uuid()))
        .select(ScanRow::as_select())
        .first(conn)
        .await?;
    Ok(Scan::try_from(row)?)
}

/// `create_scan`.
pub(super) async fn create(
    store: &PgStore,
    scan: &Scan,
    target: &ScanTarget,
    audit: &AuditEvent,
) -> Result<Vec<AgentId>, RepoError> {
    store
        .transaction(|c| async move { insert(c, scan, target, audit).await }.scope_boxed())
        .await
}

/// Stores a new scan and its audit event inside the caller's transaction: the one code
/// path of `create_scan` and of the scans due schedules enqueue, so the checks a new scan
/// goes through live here only. Key-share locks the fleet first (`NotFound` when it is
/// not one of the scan's tenant's).
pub(super) async fn insert(
    c: &mut AsyncPgConnection,
    scan: &Scan,
    target: &ScanTarget,
    audit: &AuditEvent,
) -> Result<Vec<AgentId>, DbError> {
    let environment = lock_fleet_environment(c, scan.tenant_id, scan.fleet_id).await?;
    // The foreign key only ties the scan to a fleet of its tenant; a scan filed under
    // another environment than its fleet's would leak into (or hide from) env-scoped
    // listings, and is a bug in the caller.
    if environment != scan.environment_id.as_uuid() {
        return Err(InconsistentWrite::repo(
            "scans",
            scan.id,
            "its environment is not its fleet's",
        )
        .into());
    }
    diesel::insert_into(scans::table)
        .values(ScanRow::from(scan))
        .execute(c)
        .await?;
    let targeted = parts::insert_parts(c, scan, target).await?;
    insert_audit(c, std::slice::from_ref(audit)).await?;
    // The fleet's held check-ins, on every replica, wake when this commits (or at its
    // `notBefore`): a fan-out scan's parts wake their own agents only.
    super::wakeups::announce(c, &super::wakeups::scan_queued(scan)).await?;
    Ok(targeted)
}

/// `get_scan`.
pub(super) async fn get(store: &PgStore, tenant: TenantId, id: ScanId) -> Result<Scan, RepoError> {
    store
        .run(|c| async move { load(c, tenant, id).await }.scope_boxed())
        .await
}

/// `list_scans`.
pub(super) async fn list(
    store: &PgStore,
    tenant: TenantId,
    filter: &ScanFilter,
    page: PageRequest,
) -> Result<Page<Scan>, RepoError> {
    store
        .run(|c| {
            async move {
                let mut query = scans::table
                    .filter(scans::tenant_id.eq(tenant.as_uuid()))
                    .select(ScanRow::as_select())
                    .order(scans::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                // Every filter in SQL, before the limit: filtering a fetched page would
                // shrink it and break the overfetch that tells whether more exist.
                if let Some(fleet) = filter.fleet {
                    query = query.filter(scans::fleet_id.eq(fleet.as_uuid()));
                }
                if let Some(status) = filter.status {
                    query = query.filter(scans::status.eq(status.as_str()));
                }
                if let Some(scenario) = filter.scenario {
                    query = query.filter(scans::scenario.eq(scenario.as_str()));
                }
                if let Some(envs) = &filter.environments {
                    let envs: Vec<Uuid> = envs.iter().map(|e| e.as_uuid()).collect();
                    query = query.filter(scans::environment_id.eq_any(envs));
                }
                if let Some(cursor) = page.cursor {
                    query = query.filter(scans::id.lt(cursor.last_id()));
                }
                let items: Vec<Scan> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |s| s.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
}

/// `claim_scan`: race-free across processes because the candidate row is locked with
/// `SKIP LOCKED`: concurrent claims each lock a different queued scan (or find none
/// left), and a claim that reaches a row another claim just committed re-checks it,
/// sees it running and moves on.
pub(super) async fn claim(
    store: &PgStore,
    agent: &Agent,
    now: Timestamp,
    audit: AuditFor<'_, Scan>,
) -> Result<Option<Scan>, RepoError> {
    store
        .transaction(|c| {
            async move {
                // Exactly `Scan::claimable(now)`, in SQL: it must pick the *oldest*
                // claimable scan, which cannot be decided after fetching one row.
                // The agent's own part of a fan-out scan, if one is claimable.
                let part = parts::claimable_part(c, agent, now).await?;
                let found = scans::table
                    .filter(scans::tenant_id.eq(agent.tenant_id.as_uuid()))
                    .filter(scans::fleet_id.eq(agent.fleet_id.as_uuid()))
                    .filter(status_is(ScanStatus::Queued))
                    .filter(scans::target.eq(serde_json::json!("any")))
                    .filter(scans::not_before.is_null().or(scans::not_before.le(now)))
                    .filter(scans::not_after.is_null().or(scans::not_after.gt(now)))
                    .order(scans::id.asc())
                    .limit(1)
                    .select(ScanRow::as_select())
                    .for_no_key_update()
                    .skip_locked()
                    .first(c)
                    .await
                    .optional()?;
                // The older of the two (ids are UUID v7); the other's lock goes with
                // the transaction.
                let row = match (found, part) {
                    (None, None) => return Ok(None),
                    (Some(row), Some(part)) if part < row.id => {
                        return Ok(Some(parts::claim_part(c, agent, part, now).await?));
                    }
                    (None, Some(part)) => {
                        return Ok(Some(parts::claim_part(c, agent, part, now).await?));
                    }
                    (Some(row), _) => row,
                };
                // Stored times have microseconds and `now` is truncated to them when
                // bound, which keeps both comparisons exactly the domain's.
                debug_assert!(
                    Scan::try_from(row.clone()).is_ok_and(|s| s.claimable(now)),
                    "the claim query and Scan::claimable disagree"
                );
                let row = diesel::update(scans::table.find(row.id))
                    .set((
                        scans::status.eq(ScanStatus::Running.as_str()),
                        scans::claimed_by.eq(agent.id.as_uuid()),
                        scans::claimed_at.eq(now),
                    ))
                    .returning(ScanRow::as_returning())
                    .cached()
                    .get_result(c)
                    .await?;
                let claimed = Scan::try_from(row)?;
                insert_audit(c, &[audit(&claimed)]).await?;
                Ok(Some(claimed))
            }
            .scope_boxed()
        })
        .await
}

/// `complete_scan`.
pub(super) async fn complete(
    store: &PgStore,
    agent: AgentId,
    id: ScanId,
    at: Timestamp,
    artifacts: &ScanArtifacts,
    audit: &AuditEvent,
) -> Result<Scan, RepoError> {
    store
        .transaction(|c| {
            async move {
                // Waits for a sweeper (or a second completion) holding the row, then
                // decides on what it committed.
                let row = scans::table
                    .find(id.as_uuid())
                    .select(ScanRow::as_select())
                    .for_no_key_update()
                    .first(c)
                    .await
                    .optional()?;
                // Another agent's scan is as unknown as a missing one.
                let Some(row) = row.filter(|r| r.claimed_by == Some(agent.as_uuid())) else {
                    return Err(RepoError::NotFound.into());
                };
                let scan = Scan::try_from(row)?;
                if scan.status != ScanStatus::Running {
                    return Err(RepoError::Conflict {
                        constraint: constraint::SCAN_NOT_RUNNING,
                    }
                    .into());
                }
                let row = diesel::update(scans::table.find(id.as_uuid()))
                    .set((
                        scans::status.eq(ScanStatus::Completed.as_str()),
                        scans::finished_at.eq(at),
                    ))
                    .returning(ScanRow::as_returning())
                    .cached()
                    .get_result(c)
                    .await?;
                diesel::insert_into(scan_artifacts::table)
                    .values(ArtifactsRow::new(id, artifacts)?)
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(Scan::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
}

/// `get_scan_artifacts`.
pub(super) async fn artifacts(
    store: &PgStore,
    tenant: TenantId,
    id: ScanId,
) -> Result<Option<ScanArtifacts>, RepoError> {
    store
        .run(|c| {
            async move {
                // One query: no scan row is NotFound, a scan without artifacts `None`.
                let row = scans::table
                    .left_join(scan_artifacts::table)
                    .filter(scans::tenant_id.eq(tenant.as_uuid()))
                    .filter(scans::id.eq(id.as_uuid()))
                    .select(scan_artifacts::all_columns.nullable())
                    .first::<Option<ArtifactsRow>>(c)
                    .await?;
                Ok(row.map(ScanArtifacts::try_from).transpose()?)
            }
            .scope_boxed()
        })
        .await
}

/// `sweep_scans`: batches of at most [`SWEEP_BATCH`] scans, each batch one transaction
/// with its audit events, until a batch comes back short. Safe on several replicas at
/// once: candidates are locked `SKIP LOCKED`, so two sweepers never lock the same scan,
/// and one that reaches a scan the other already moved re-checks it against the
/// prefilter, which it no longer passes.
///
/// Every call ends: a batch that goes on to another moved every scan it selected, and a
/// moved scan no longer passes the prefilter. (Scans skipped because another
/// transaction holds them are that transaction's to move, or the next sweep's.)
pub(super) async fn sweep(
    store: &PgStore,
    now: Timestamp,
    audit: AuditFor<'_, Scan>,
) -> Result<usize, RepoError> {
    let mut moved = parts::sweep(store, now).await?;
    loop {
        let batch = store
            .transaction(|c| async move { sweep_batch(c, now, audit).await }.scope_boxed())
            .await?;
        moved += batch.moved;
        let full = i64::try_from(batch.selected).unwrap_or(i64::MAX) >= SWEEP_BATCH;
        if !full || batch.moved < batch.selected {
            return Ok(moved);
        }
    }
}

/// What one sweeper transaction did.
struct SweepBatch {
    /// Scans it selected (and locked).
    selected: usize,
    /// Scans it moved.
    moved: usize,
}

/// Moves up to a batch of overdue scans.
async fn sweep_batch(
    c: &mut AsyncPgConnection,
    now: Timestamp,
    audit: AuditFor<'_, Scan>,
) -> Result<SweepBatch, DbError> {
    // A prefilter that matches exactly `Scan::overdue(now)`, so that the rows it locks
    // are the ones that move; the domain still decides below. The limit's default comes
    // from the domain as a parameter rather than being written down twice.
    let default_limit =
        i32::try_from(MaxDurationMinutes::default_limit().get()).unwrap_or(i32::MAX);
    let limit = make_interval(
        0,
        0,
        0,
        0,
        0,
        coalesce(scans::max_duration_minutes, default_limit),
    );
    let deadline = scans::claimed_at + limit.nullable();
    // Implied by the deadline (no limit is under a minute), and unlike it a range the
    // partial index on running scans' `claimed_at` can serve.
    let claimed_before = now - time::Duration::minutes(i64::from(MaxDurationMinutes::MIN));
    let running_overdue = status_is(ScanStatus::Running)
        .and(scans::claimed_at.le(claimed_before))
        .and(deadline.le(now));
    let queued_overdue = status_is(ScanStatus::Queued).and(scans::not_after.le(now));
    // No ORDER BY: which overdue scans go first does not matter, and an order would
    // steer the planner from the two small partial indexes to a walk of the whole table.
    // Without one, the locks are taken in no particular order, which is safe because
    // SKIP LOCKED never waits for a lock.
    let rows = scans::table
        .filter(running_overdue.or(queued_overdue))
        .limit(SWEEP_BATCH)
        .select(ScanRow::as_select())
        .for_no_key_update()
        .skip_locked()
        .load::<ScanRow>(c)
        .await?;
    let selected = rows.len();

    let (mut failed, mut expired) = (Vec::new(), Vec::new());
    for row in rows {
        let scan = Scan::try_from(row)?;
        match scan.overdue(now) {
            Some(ScanStatus::Failed) => failed.push(scan.id.as_uuid()),
            Some(ScanStatus::Expired) => expired.push(scan.id.as_uuid()),
            // Not overdue after all (only possible if the prefilter and the domain
            // drift apart): left as it is; the lock goes with the transaction.
            _ => {}
        }
    }
    let mut events = Vec::with_capacity(failed.len() + expired.len());
    let moves = [
        (ScanStatus::Running, ScanStatus::Failed, failed),
        (ScanStatus::Queued, ScanStatus::Expired, expired),
    ];
    for (from, status, ids) in moves {
        if ids.is_empty() {
            continue;
        }
        // `claimed_by` and `claimed_at` stay: a failed scan keeps who let it fail, and
        // that agent's late results then meet SCAN_NOT_RUNNING rather than NotFound.
        // The rows are locked, so `from` still holds; saying so keeps this statement
        // from ever moving a scan twice on its own.
        let moved = diesel::update(
            scans::table
                .filter(scans::id.eq_any(ids))
                .filter(scans::status.eq(from.as_str())),
        )
        .set((
            scans::status.eq(status.as_str()),
            scans::finished_at.eq(now),
        ))
        .returning(ScanRow::as_returning())
        .load::<ScanRow>(c)
        .await?;
        for row in moved {
            events.push(audit(&Scan::try_from(row)?));
        }
    }
    insert_audit(c, &events).await?;
    Ok(SweepBatch {
        selected,
        moved: events.len(),
    })
}

#[async_trait]
impl ScanStore for PgStore {
    // ---- scans ----

    async fn create_scan(
        &self,
        scan: &Scan,
        target: &ScanTarget,
        audit: &AuditEvent,
    ) -> Result<Vec<AgentId>, RepoError> {
        create(self, scan, target, audit).await
    }

    async fn scan_progress(
        &self,
        tenant: TenantId,
        ids: &[ScanId],
    ) -> Result<Vec<(ScanId, Progress)>, RepoError> {
        parts::progress(self, tenant, ids).await
    }

    async fn list_parts(
        &self,
        tenant: TenantId,
        scan: ScanId,
        status: Option<PartStatus>,
        page: PageRequest,
    ) -> Result<Page<ScanPart>, RepoError> {
        parts::list(self, tenant, scan, status, page).await
    }

    async fn claim_parts(
        &self,
        tenant: TenantId,
        id: ScanId,
        agents: &[AgentId],
        now: Timestamp,
    ) -> Result<Option<(Scan, Vec<AgentId>)>, RepoError> {
        parts::claim_many(self, tenant, id, agents, now).await
    }

    async fn get_part(&self, agent: &Agent, id: ScanId) -> Result<Option<ScanPart>, RepoError> {
        parts::get(self, agent, id).await
    }

    async fn submit_part(
        &self,
        agent: AgentId,
        id: ScanId,
        at: Timestamp,
        results_json: &str,
    ) -> Result<bool, RepoError> {
        parts::submit(self, agent, id, at, results_json).await
    }

    async fn part_results(
        &self,
        tenant: TenantId,
        id: ScanId,
        after: Option<AgentId>,
        limit: u32,
    ) -> Result<Vec<(AgentId, String)>, RepoError> {
        parts::results(self, tenant, id, after, limit).await
    }

    async fn finish_fan_out(
        &self,
        tenant: TenantId,
        id: ScanId,
        at: Timestamp,
        artifacts: Option<&ScanArtifacts>,
        audit: &AuditEvent,
    ) -> Result<Option<Scan>, RepoError> {
        parts::finish(self, tenant, id, at, artifacts, audit).await
    }

    async fn fan_outs_to_finish(&self, limit: u32) -> Result<Vec<Scan>, RepoError> {
        parts::ready(self, limit).await
    }

    async fn cancel_scan(
        &self,
        tenant: TenantId,
        id: ScanId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Scan, RepoError> {
        parts::cancel(self, tenant, id, at, audit).await
    }

    async fn get_scan(&self, tenant: TenantId, id: ScanId) -> Result<Scan, RepoError> {
        get(self, tenant, id).await
    }

    async fn list_scans(
        &self,
        tenant: TenantId,
        filter: &ScanFilter,
        page: PageRequest,
    ) -> Result<Page<Scan>, RepoError> {
        list(self, tenant, filter, page).await
    }

    async fn claim_scan(
        &self,
        agent: &Agent,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<Option<Scan>, RepoError> {
        claim(self, agent, now, audit).await
    }

    async fn complete_scan(
        &self,
        agent: AgentId,
        id: ScanId,
        at: Timestamp,
        artifacts: &ScanArtifacts,
        audit: &AuditEvent,
    ) -> Result<Scan, RepoError> {
        complete(self, agent, id, at, artifacts, audit).await
    }

    async fn get_scan_artifacts(
        &self,
        tenant: TenantId,
        id: ScanId,
    ) -> Result<Option<ScanArtifacts>, RepoError> {
        artifacts(self, tenant, id).await
    }

    async fn sweep_scans(
        &self,
        now: Timestamp,
        audit: AuditFor<'_, Scan>,
    ) -> Result<usize, RepoError> {
        sweep(self, now, audit).await
    }

    // ---- share links ----

    async fn create_share_link(
        &self,
        link: &ShareLink,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        share_links::create(self, link, digest, audit).await
    }

    async fn get_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
    ) -> Result<ShareLink, RepoError> {
        share_links::get(self, tenant, id).await
    }

    async fn list_share_links(
        &self,
        tenant: TenantId,
        scan: ScanId,
        page: PageRequest,
    ) -> Result<Page<ShareLink>, RepoError> {
        share_links::list(self, tenant, scan, page).await
    }

    async fn revoke_share_link(
        &self,
        tenant: TenantId,
        id: ShareLinkId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ShareLink, RepoError> {
        share_links::revoke(self, tenant, id, at, audit).await
    }

    async fn access_share_link(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
        artifact: Artifact,
        audit: AuditFor<'_, ShareLink>,
    ) -> Result<ShareAccess, RepoError> {
        share_links::access(self, digest, now, artifact, audit).await
    }

    async fn find_share_link_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<ShareLink>, RepoError> {
        share_links::find_by_digest(self, digest).await
    }
}

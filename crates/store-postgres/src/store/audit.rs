//! The [`AuditStore`](fleetpass_ports::store::AuditStore) part of [`PgStore`]: the audit
//! log.

use async_trait::async_trait;
use diesel::{
    ExpressionMethods, OptionalExtension, PgArrayExpressionMethods, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;
use diesel_async::scoped_futures::ScopedFutureExt;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::audit::chain::ChainHead;
use fleetpass_domain::ids::TenantId;
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_ports::RepoError;
use fleetpass_ports::store::{AuditFilter, AuditStore, ChainRange, ChainedEvent};
use uuid::Uuid;

use super::{PgStore, head_of, overfetch};
use crate::rows::{AuditRow, convert_all};
use crate::schema::{audit_events, audit_heads};

#[async_trait]
impl AuditStore for PgStore {
    // ---- audit log ----

    async fn list_audit_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, RepoError> {
        self.run(|c| {
            async move {
                let mut query = audit_events::table
                    .filter(audit_events::tenant_id.eq(tenant.as_uuid()))
                    .select(AuditRow::as_select())
                    .order(audit_events::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(action) = &filter.action {
                    query = query.filter(audit_events::action.eq(action));
                }
                if let Some(actor) = filter.actor_id {
                    query = query.filter(audit_events::actor_id.eq(actor));
                }
                if let Some(target) = filter.target_id {
                    query = query.filter(audit_events::target_id.eq(target));
                }
                if let Some(since) = filter.since {
                    query = query.filter(audit_events::at.ge(since));
                }
                if let Some(envs) = &filter.environments {
                    // A NULL (tenant-wide) scope is contained by nothing.
                    let envs: Vec<Uuid> = envs.iter().map(|id| id.as_uuid()).collect();
                    query = query.filter(audit_events::environment_ids.is_contained_by(envs));
                }
                if let Some(cursor) = page.cursor {
                    query = query.filter(audit_events::id.lt(cursor.last_id()));
                }
                let items: Vec<AuditEvent> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |e| e.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn audit_head(&self, tenant: TenantId) -> Result<ChainHead, RepoError> {
        self.run(|c| {
            async move {
                let row: Option<(i64, Vec<u8>)> = audit_heads::table
                    .find(tenant.as_uuid())
                    .select((audit_heads::seq, audit_heads::digest))
                    .first(c)
                    .await
                    .optional()?;
                head_of(row)
            }
            .scope_boxed()
        })
        .await
    }

    async fn list_audit_chain(
        &self,
        tenant: TenantId,
        range: ChainRange,
    ) -> Result<Vec<ChainedEvent>, RepoError> {
        let bound = |seq: u64| i64::try_from(seq).unwrap_or(i64::MAX);
        self.run(|c| {
            async move {
                let mut query = audit_events::table
                    .filter(audit_events::tenant_id.eq(tenant.as_uuid()))
                    .filter(audit_events::seq.gt(bound(range.after_seq)))
                    .filter(audit_events::seq.le(bound(range.upto_seq)))
                    .select(AuditRow::as_select())
                    .order(audit_events::seq.asc())
                    .limit(i64::from(range.limit))
                    .into_boxed();
                if let Some(since) = range.since {
                    query = query.filter(audit_events::at.ge(since));
                }
                let rows: Vec<AuditRow> = query.load(c).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let Some(link) = row.link()? else { continue };
                    out.push(ChainedEvent {
                        link,
                        event: row.try_into()?,
                    });
                }
                Ok(out)
            }
            .scope_boxed()
        })
        .await
    }
}

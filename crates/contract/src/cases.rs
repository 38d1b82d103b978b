//! The contract cases: one function per obligation of the [`Store`] port, each panicking
//! with a message naming the broken obligation.
//!
//! Every case makes its own tenants, so cases are independent even when they share one
//! store, and each case checks its tenants' whole audit log: a successful write must
//! have recorded exactly its event, a failed one nothing.

use fleetpass_domain::Timestamp;
use fleetpass_domain::fleet::{Agent, EnrollmentToken, Fleet};
use fleetpass_domain::ids::{EnvironmentId, FleetId, ScanId, TenantId};
use fleetpass_domain::scan::{Scan, ScanStatus};
use fleetpass_domain::share::ShareLink;
use fleetpass_domain::token::{ApiToken, TokenLookup};
use fleetpass_ports::Store;
use fleetpass_ports::store::{ScanFilter, ShareAccess};
use time::Duration;

use crate::fixtures::Fixtures;
use crate::support::{Auditor, Setup, all};

mod audit;
mod claims;
mod enrollment;
mod fanout;
mod fleets;
mod keys;
mod policy;
mod principals;
mod scans;
mod schedules;
mod secrets;
mod share_links;
mod stats;
mod tenants;
mod tokens;

pub use audit::*;
pub use claims::*;
pub use enrollment::*;
pub use fanout::*;
pub use fleets::*;
pub use keys::*;
pub use policy::*;
pub use principals::*;
pub use scans::*;
pub use schedules::*;
pub use secrets::*;
pub use share_links::*;
pub use stats::*;
pub use tenants::*;
pub use tokens::*;

/// The names of every case that [`contract_suite!`](crate::contract_suite) runs, read
/// from the same list the macro expands.
pub const ALL: &[&str] = crate::__contract_cases!(names);

/// What a lookup of a token's current, unrotated secret must return.
fn found(token: &ApiToken, owner_disabled: bool) -> Option<TokenLookup> {
    Some(TokenLookup {
        token: token.clone(),
        secret_valid_until: None,
        owner_disabled,
    })
}

/// Every fleet of `tenant` (in `environments`, when given), newest first.
async fn fleets_of(
    store: &dyn Store,
    tenant: TenantId,
    environments: Option<&[EnvironmentId]>,
) -> Vec<Fleet> {
    all(
        "list_fleets",
        |p| store.list_fleets(tenant, environments, p),
        |f| f.id.as_uuid(),
    )
    .await
}

/// Every enrollment token of `fleet`, newest first.
async fn enrollment_tokens_of(
    store: &dyn Store,
    tenant: TenantId,
    fleet: FleetId,
) -> Vec<EnrollmentToken> {
    all(
        "list_enrollment_tokens",
        |p| store.list_enrollment_tokens(tenant, fleet, p),
        |t| t.id.as_uuid(),
    )
    .await
}

/// Every agent of `fleet`, newest first.
async fn agents_of(store: &dyn Store, tenant: TenantId, fleet: FleetId) -> Vec<Agent> {
    all(
        "list_agents",
        |p| store.list_agents(tenant, fleet, None, p),
        |a| a.id.as_uuid(),
    )
    .await
}

/// `token` after `uses` enrollments.
fn used(token: &EnrollmentToken, uses: u32) -> EnrollmentToken {
    EnrollmentToken {
        uses,
        ..token.clone()
    }
}

/// Every scan of `tenant` that passes `filter`, newest first.
async fn scans_of(store: &dyn Store, tenant: TenantId, filter: &ScanFilter) -> Vec<Scan> {
    all(
        "list_scans",
        |p| store.list_scans(tenant, filter, p),
        |s| s.id.as_uuid(),
    )
    .await
}

/// Every share link of `scan`, newest first.
async fn share_links_of(store: &dyn Store, tenant: TenantId, scan: ScanId) -> Vec<ShareLink> {
    all(
        "list_share_links",
        |p| store.list_share_links(tenant, scan, p),
        |l| l.id.as_uuid(),
    )
    .await
}

/// What `list_scans` must list of `rows` (one tenant's scans as they now are) for
/// `filter`: the rows that pass every field of it, newest first.
fn filtered(rows: &[Scan], filter: &ScanFilter) -> Vec<Scan> {
    let mut want: Vec<Scan> = rows
        .iter()
        .filter(|s| {
            filter.fleet.is_none_or(|f| s.fleet_id == f)
                && filter.status.is_none_or(|st| s.status == st)
                && filter.scenario.is_none_or(|sc| s.scenario == sc)
                && filter
                    .environments
                    .as_ref()
                    .is_none_or(|envs| envs.contains(&s.environment_id))
        })
        .cloned()
        .collect();
    want.sort_by_key(|s| std::cmp::Reverse(s.id));
    want
}

/// `scan` as the sweeper leaves it at `now`: moved to `status`, finished then.
fn swept(scan: &Scan, status: ScanStatus, now: Timestamp) -> Scan {
    Scan {
        status,
        finished_at: Some(now),
        ..scan.clone()
    }
}

/// The link and scan of an opened share link; panics naming `what` otherwise.
fn opened(outcome: ShareAccess, what: &str) -> (ShareLink, Scan) {
    match outcome {
        ShareAccess::Opened(link, scan) => (link, scan),
        other => panic!("{what}: expected Opened, got {other:?}"),
    }
}

/// `link` after its `n`th access, at `at`.
fn accessed(link: &ShareLink, n: u32, at: Timestamp) -> ShareLink {
    ShareLink {
        access_count: n,
        last_accessed_at: Some(at),
        ..link.clone()
    }
}

/// A fleet of the tenant with an agent and a scan the agent claimed and completed:
/// what a share link shares. Returns the fleet and the completed scan.
async fn completed_scan(setup: &mut Setup<'_>, fx: &Fixtures) -> (Fleet, Scan) {
    let claims = Auditor::claims(fx);
    let (fleet, _, _) = setup.fleet().await;
    let agent = setup.agent(&fleet).await;
    let scan = setup.scan(&fleet).await;
    let running = setup.claim_exactly(&claims, &agent, &scan, fx.now()).await;
    let done = setup
        .complete(
            &agent,
            &running,
            fx.now() + Duration::minutes(5),
            &fx.artifacts(),
        )
        .await;
    (fleet, done)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The `pub async fn` names in `source`: every one is a case.
    fn cases_in(source: &str) -> impl Iterator<Item = String> + '_ {
        source
            .lines()
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split('(').next())
            .map(str::to_owned)
    }

    /// Every case in this file and in every file of `cases/` runs in the suite: a case
    /// missing from the macro's list would silently never run against any adapter. The
    /// directory is read rather than listed, so a new file of cases cannot be missed;
    /// a file that is not declared as a module defines cases the list lacks, and fails
    /// here too.
    #[test]
    fn the_suite_runs_every_case() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut sources = vec![std::fs::read_to_string(src.join("cases.rs")).expect("cases.rs")];
        let mut files = 0;
        for entry in std::fs::read_dir(src.join("cases")).expect("the cases directory") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|ext| ext == "rs") {
                sources.push(std::fs::read_to_string(&path).expect("a case file"));
                files += 1;
            }
        }
        assert!(files > 1, "no case files found under {}", src.display());
        let defined: BTreeSet<String> = sources.iter().flat_map(|s| cases_in(s)).collect();
        let total: usize = sources.iter().map(|s| cases_in(s).count()).sum();
        assert_eq!(defined.len(), total, "a case name is defined twice");
        let listed: BTreeSet<String> = super::ALL.iter().map(|&name| name.to_owned()).collect();
        assert_eq!(listed.len(), super::ALL.len(), "a case is listed twice");
        assert_eq!(defined, listed, "cases defined vs cases the suite runs");
    }
}

//! The one contract test suite for the [`Store`](fleetpass_ports::Store) port, run against
//! every store adapter so that they cannot drift apart.
//!
//! An adapter runs the whole suite from one integration test file:
//!
//! ```text
//! fleetpass_contract::contract_suite!(async { std::sync::Arc::new(MemoryStore::new()) });
//! ```
//!
//! The argument is an expression evaluating to a future; its output must dereference to a
//! store (`Arc<MemoryStore>`, a guard that owns a throwaway database, …). The macro
//! expands to one `#[test]` per case in [`cases`], each awaiting a fresh store from the
//! expression and keeping it alive until the case ends. Cases also hold when they share
//! one store: each makes its own tenants and every name it makes is unique. The one
//! exception are the cases that call `sweep_scans` (the `sweep_*` cases,
//! `complete_scan_only_while_running` and `fleet_delete_cascades_to_scans_and_share_links`):
//! a sweep moves every overdue scan of the store and they count what moved, so they need
//! a store of their own, as the macro gives every case. So do the cases that call
//! `run_due_schedules` (the `run_due_*` cases and `fleet_delete_removes_its_schedules`):
//! a run enqueues for every due schedule of the store and they count what it enqueued.
//!
//! The tests run on a two-worker multi-thread Tokio runtime built by this crate, so the
//! calling crate needs nothing but this one as a dev-dependency.

pub mod cases;
pub mod fixtures;
pub mod guards;
mod support;

/// The Tokio this crate runs the cases on, re-exported for adapters' own test helpers.
pub use tokio;

/// Expands to one `#[test]` per contract case, each run against a fresh store from
/// `$make`: an expression evaluating to a future whose output dereferences to a store.
/// The output is kept alive until the case ends, so a guard owning a throwaway database
/// is dropped only afterwards (still inside the runtime).
#[macro_export]
macro_rules! contract_suite {
    ($make:expr $(,)?) => {
        $crate::__contract_cases!(tests $make);
    };
}

/// The one list of case names, fed to [`__contract_expand!`] in the given mode: `tests
/// <make>` for the test functions, `names` for their names. Keeping one list is what lets
/// a unit test prove the suite misses no case.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_cases {
    ($($mode:tt)*) => {
        $crate::__contract_expand! { [$($mode)*]
            ping_answers
            tenant_create_then_read
            tenant_name_conflict_stores_nothing
            tenant_unknown_is_not_found
            tenant_list_pages_newest_first
            environment_lifecycle
            environment_name_unique_per_tenant
            environment_rename_conflict
            missing_environments_reports_foreign_and_unknown
            environment_delete_blocked_by_live_scoped_token
            environment_cross_tenant_is_not_found
            principals_listed_by_kind
            principal_names_unique_per_tenant
            update_principal_writes_fields
            update_principal_conflict_changes_nothing
            update_principal_revokes_tokens
            delete_principal_revokes_and_orphans_tokens
            principal_cross_tenant_is_not_found
            token_create_then_lookup
            token_list_newest_first
            update_token_writes_only_name_and_rate_limit
            revoke_token_is_idempotent
            rotate_token_caps_old_secrets
            rotate_token_caps_expiry_and_never_extends
            token_policy_set_then_read
            token_policy_is_tenant_isolated
            touch_token_sets_last_used
            token_cross_tenant_is_not_found
            allowed_cidrs_round_trip_and_refusals_are_recorded
            lists_paginate_newest_first
            audit_filters
            audit_is_tenant_isolated
            fleet_create_then_read
            fleet_create_refuses_foreign_environment
            fleet_list_filters_by_environment
            fleet_rename
            fleet_delete_cascades
            fleet_cross_tenant_is_not_found
            fleet_lists_paginate_newest_first
            enrollment_token_issue_list_revoke
            enrollment_token_cross_tenant_is_not_found
            enroll_unknown_secret_is_refused
            enroll_refuses_expired_and_revoked
            enroll_counts_uses_until_used_up
            enroll_concurrent_one_time_token
            enroll_concurrent_respects_max_uses
            agent_read_list_revoke
            agent_cross_tenant_is_not_found
            record_heartbeat_sets_last_seen_and_version
            mark_agent_seen_shows_in_reads_and_never_moves_back
            signing_keys_add_list_retire
            environment_delete_blocked_by_fleet
            scan_create_then_read
            scan_create_refuses_foreign_fleet
            scan_list_filters_before_paging
            fan_out_parts_follow_the_target
            fan_out_parts_are_claimed_by_their_agents_and_the_scan_ends_with_them
            a_batch_claims_exactly_its_agents_queued_parts
            cancel_ends_a_scan_and_its_open_parts
            overdue_parts_fail
            scan_cross_tenant_is_not_found
            claim_takes_oldest_claimable_of_own_fleet
            claim_concurrent_never_shares_a_scan
            complete_scan_stores_artifacts_exactly
            complete_scan_keeps_any_text_the_domain_allows
            service_stats_count_every_tenant
            complete_scan_only_by_its_agent
            complete_scan_only_while_running
            sweep_fails_and_expires_at_deadlines
            sweep_concurrent_moves_each_scan_once
            share_link_create_then_read
            share_link_create_refuses_foreign_scan
            share_link_cross_tenant_is_not_found
            share_link_access_counts_and_returns_scan
            share_link_access_stops_at_max_accesses
            share_link_access_refused_from_expires_at
            share_link_revoke_is_idempotent
            share_link_access_unknown_digest_is_unavailable
            share_link_access_out_of_scope_writes_nothing
            share_link_concurrent_accesses_respect_max
            fleet_delete_cascades_to_scans_and_share_links
            find_enrollment_token_by_digest_any_tenant_and_state
            find_share_link_by_digest_any_tenant_and_state
            find_agent_by_secret_digest_any_tenant_and_state
            schedule_create_then_read
            schedule_list_filters_by_environment_before_paging
            schedule_update_writes_fields
            schedule_delete_removes_it
            schedule_cross_tenant_is_not_found
            run_due_schedules_enqueues_at_next_run_at
            run_due_schedules_collapses_missed_runs
            run_due_schedules_concurrent_enqueues_each_once
            fleet_delete_removes_its_schedules
        }
    };
}

/// Expands the case list of [`__contract_cases!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_expand {
    ([tests $make:expr] $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                $crate::__private::run(async {
                    // Bound, not a temporary: a guard owning the store's database must
                    // outlive the case.
                    let store = $make.await;
                    $crate::cases::$case(&*store).await;
                });
            }
        )*
    };
    ([names] $($case:ident)*) => {
        &[$(stringify!($case)),*]
    };
}

/// Expands to one `#[test]` per contract case of the guard ports: the idempotency cases
/// against the store `idempotency = …` makes, the rate-limiter cases against the one
/// `limiter = …` makes. Each is an expression evaluating to a future whose output
/// dereferences to the adapter (a guard owning a throwaway database is kept alive until
/// the case ends), made afresh for every case.
#[macro_export]
macro_rules! guard_suite {
    (idempotency = $idem:expr, limiter = $limit:expr $(,)?) => {
        $crate::__guard_cases!(tests idempotency $idem);
        $crate::__guard_cases!(tests limiter $limit);
    };
}

/// The one list of guard case names per port, fed to [`__guard_expand!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __guard_cases {
    ($mode:tt idempotency $($make:expr)?) => {
        $crate::__guard_expand! { [$mode $($make)?]
            idem_first_claim_is_fresh_then_in_flight
            idem_complete_then_replay_bytes_unchanged
            idem_different_request_is_mismatch
            idem_scopes_and_keys_are_independent
            idem_window_expiry_frees_the_key
            idem_expired_lease_is_taken_over
            idem_abandon_frees_the_key
            idem_complete_twice_keeps_the_first
            idem_purge_drops_closed_windows_only
            idem_concurrent_claims_one_fresh
        }
    };
    ($mode:tt limiter $($make:expr)?) => {
        $crate::__guard_expand! { [$mode $($make)?]
            limit_allows_exactly_max_then_refuses
            limit_next_window_counts_from_zero
            limit_keys_are_independent
            limit_peek_does_not_count
            limit_concurrent_hits_count_once_each
            limit_add_counts_many_at_once
            limit_purge_forgets_ended_windows_only
        }
    };
}

/// Expands a list of [`__guard_cases!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __guard_expand {
    ([tests $make:expr] $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                $crate::__private::run(async {
                    // Bound, not a temporary: a guard owning the database must outlive
                    // the case.
                    let adapter = $make.await;
                    $crate::guards::$case(&*adapter).await;
                });
            }
        )*
    };
    ([names] $($case:ident)*) => {
        &[$(stringify!($case)),*]
    };
}

/// What the macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    /// Runs a case the way `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`
    /// would, without the caller having to name Tokio.
    ///
    /// # Panics
    /// When the runtime cannot be built, or when the case panics.
    pub fn run<F: Future>(case: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the contract tests' Tokio runtime must build")
            .block_on(case)
    }
}

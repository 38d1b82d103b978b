//! [`Conflict`]: every uniqueness or state rule a write or a use case can clash with.
//!
//! One enum shared by the stores (which raise the store-level variants), the services
//! (which raise the rest) and the HTTP adapter (which maps each variant to its message
//! with an exhaustive `match`), so a new rule cannot reach a client unexplained.

use std::fmt;

/// Declares [`Conflict`], its [`Conflict::ALL`] list and its names from one list, so
/// the list of every variant cannot fall behind the enum (tests walk it).
macro_rules! conflicts {
    ($( $(#[$doc:meta])* $name:ident => $text:literal, )*) => {
        /// A rule the request clashes with. Stores raise the variants marked *store*;
        /// services raise the others. The Postgres adapter maps its unique-index names
        /// to these in one place (`store-postgres/src/error.rs`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Conflict {
            $( $(#[$doc])* $name, )*
        }

        impl Conflict {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$name),*];

            /// A stable name for logs (clients see the HTTP adapter's wording instead).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$name => $text, )*
                }
            }
        }
    };
}

conflicts! {
    /// *Store*: tenant names are unique across the platform.
    TenantName => "tenant_name",
    /// *Store*: environment names are unique per tenant.
    EnvironmentName => "environment_name",
    /// *Store*: an environment that fleets live in, or live tokens are scoped to, cannot
    /// be deleted.
    EnvironmentInUse => "environment_in_use",
    /// *Store*: user emails are unique per tenant.
    UserEmail => "user_email",
    /// *Store*: service account names are unique per tenant.
    ServiceAccountName => "service_account_name",
    /// *Store*: signing key ids are unique.
    SigningKeyId => "signing_key_id",
    /// *Store*: a token's owner must be enabled and hold at least the token's role when
    /// the token is stored (a concurrent demotion or disabling may have changed it since
    /// the service looked).
    TokenOwnerChanged => "token_owner_changed",
    /// *Store*: results can only complete a running scan.
    ScanNotRunning => "scan_not_running",
    /// *Store*: a fan-out scan's target selects no live agent of its fleet.
    TargetEmpty => "target_empty",
    /// *Store*: a fan-out scan lists an agent that is not a live agent of its fleet.
    TargetNotInFleet => "target_not_in_fleet",
    /// *Store*: the scan has ended (completed, failed, expired or cancelled), so it
    /// cannot be cancelled.
    ScanFinished => "scan_finished",
    /// The scan was cancelled: its agents' results are no longer wanted.
    ScanCancelled => "scan_cancelled",
    /// The scan has no artifacts yet: it has not completed.
    ScanNotCompleted => "scan_not_completed",
    /// The token is revoked or expired, so it cannot be changed or rotated.
    TokenNotActive => "token_not_active",
    /// The change would revoke the token making the request.
    PrincipalIsCaller => "principal_is_caller",
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_distinct() {
        let names: HashSet<_> = Conflict::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Conflict::ALL.len());
    }
}

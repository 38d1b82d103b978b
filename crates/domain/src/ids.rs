//! Typed ids. Every id is a UUID (v7, made by the id port) wrapped so that a tenant id
//! can never be passed where a token id is expected.

use uuid::Uuid;

macro_rules! id_newtype {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID that was made by the id port or read back from a store.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Parses an id from its text form; `None` when it is not a UUID.
            pub fn parse(raw: &str) -> Option<Self> {
                Uuid::parse_str(raw).ok().map(Self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_newtype!(
    /// A tenant: an isolated customer.
    TenantId,
    /// An environment of a tenant.
    EnvironmentId,
    /// A user or service account: whoever owns API tokens.
    PrincipalId,
    /// An API token (not its secret).
    TokenId,
    /// An audit event.
    AuditEventId,
    /// A fleet.
    FleetId,
    /// An enrollment token (not its secret).
    EnrollmentTokenId,
    /// An enrolled agent.
    AgentId,
    /// A scan.
    ScanId,
    /// A share link (not its token).
    ShareLinkId,
    /// A schedule.
    ScheduleId,
);

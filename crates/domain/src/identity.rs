//! Tenants, environments, principals (users and service accounts), roles and
//! environment scopes.

use std::collections::BTreeSet;
use std::fmt;

use crate::Timestamp;
use crate::ids::{EnvironmentId, PrincipalId, TenantId};
use crate::value::{ValueError, text_newtype};

text_newtype!(
    /// A tenant's display name, 1-100 characters.
    TenantName, 1, 100
);
text_newtype!(
    /// A person's display name, 1-100 characters.
    PersonName, 1, 100
);
text_newtype!(
    /// A service account's name, 1-100 characters, unique per tenant.
    ServiceAccountName, 1, 100
);

impl ServiceAccountName {
    /// The service account that owns a new tenant's first admin token.
    pub fn tenant_admin() -> Self {
        Self("tenant-admin".to_owned())
    }
}

/// An environment's name: 1-63 characters of `a-z`, `0-9` and `-`, starting with a
/// letter, unique per tenant (`production`, `staging`, …). The shape is kept narrow so
/// a name is safe in URLs, logs and config files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvironmentName(String);

impl EnvironmentName {
    /// The environment every new tenant gets and fleets default to.
    pub fn production() -> Self {
        Self("production".to_owned())
    }

    /// Validates `raw`.
    pub fn new(raw: &str) -> Result<Self, ValueError> {
        const SHAPE: ValueError = ValueError::Format {
            expected: "1-63 characters of a-z, 0-9 and '-', starting with a letter",
        };
        let ok = (1..=63).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(SHAPE)
        }
    }

    /// The validated name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, as the `validator` crate understands one, kept lowercase so that
/// uniqueness per tenant is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Validates and lowercases `raw` (at most 254 characters).
    pub fn new(raw: &str) -> Result<Self, ValueError> {
        use validator::ValidateEmail;
        let lowered = raw.trim().to_lowercase();
        if lowered.len() <= 254 && lowered.validate_email() {
            Ok(Self(lowered))
        } else {
            Err(ValueError::Format {
                expected: "an email address",
            })
        }
    }

    /// The validated address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A role, ordered by power: `Viewer < Operator < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads everything in scope.
    Viewer,
    /// Reads and runs fleets, scans and share links.
    Operator,
    /// Everything, including `/api/admin/*`.
    Admin,
}

impl Role {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Parses the wire name.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        match raw {
            "viewer" => Ok(Self::Viewer),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            _ => Err(ValueError::OneOf {
                allowed: "admin, operator, viewer",
            }),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which environments a token reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvScope {
    /// Every environment of the tenant, present and future.
    All,
    /// Only these (never empty: the constructor refuses an empty set).
    Only(BTreeSet<EnvironmentId>),
}

impl EnvScope {
    /// Builds a scope from the wire pair `allEnvironments` / `environmentIds`.
    ///
    /// # Errors
    /// `ScopeError::EmptyList` when not all environments and no ids are given;
    /// `ScopeError::ListWithAll` when all environments *and* some ids are given.
    ///
    /// ```
    /// use fleetpass_domain::identity::{EnvScope, ScopeError};
    /// use fleetpass_domain::ids::EnvironmentId;
    /// let staging = EnvironmentId::from_uuid(uuid::Uuid::from_u128(1));
    /// assert!(EnvScope::from_wire(true, vec![]).unwrap().is_all());
    /// assert!(EnvScope::from_wire(false, vec![staging]).unwrap().contains(staging));
    /// assert_eq!(EnvScope::from_wire(false, vec![]), Err(ScopeError::EmptyList));
    /// assert_eq!(EnvScope::from_wire(true, vec![staging]), Err(ScopeError::ListWithAll));
    /// ```
    pub fn from_wire(all: bool, ids: Vec<EnvironmentId>) -> Result<Self, ScopeError> {
        match (all, ids.is_empty()) {
            (true, true) => Ok(Self::All),
            (true, false) => Err(ScopeError::ListWithAll),
            (false, true) => Err(ScopeError::EmptyList),
            (false, false) => Ok(Self::Only(ids.into_iter().collect())),
        }
    }

    /// Whether this scope reaches `env`.
    pub fn contains(&self, env: EnvironmentId) -> bool {
        match self {
            Self::All => true,
            Self::Only(ids) => ids.contains(&env),
        }
    }

    /// Whether everything `other` reaches is also reached by `self`.
    pub fn covers(&self, other: &EnvScope) -> bool {
        match (self, other) {
            (Self::All, _) => true,
            (Self::Only(_), Self::All) => false,
            (Self::Only(mine), Self::Only(theirs)) => theirs.is_subset(mine),
        }
    }

    /// Whether this is the all-environments scope.
    pub fn is_all(&self) -> bool {
        matches!(self, Self::All)
    }

    /// The listed ids (empty for `All`).
    pub fn ids(&self) -> Vec<EnvironmentId> {
        match self {
            Self::All => Vec::new(),
            Self::Only(ids) => ids.iter().copied().collect(),
        }
    }
}

/// Why an `allEnvironments` / `environmentIds` pair was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// `allEnvironments: false` with no ids.
    #[error("must list at least one environment when allEnvironments is false")]
    EmptyList,
    /// `allEnvironments: true` with ids.
    #[error("must be absent or empty when allEnvironments is true")]
    ListWithAll,
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its name (unique across the platform).
    pub name: TenantName,
    /// When it was created.
    pub created_at: Timestamp,
}

/// An environment of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// Its id.
    pub id: EnvironmentId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// Its name, unique per tenant.
    pub name: EnvironmentName,
    /// When it was created.
    pub created_at: Timestamp,
}

/// What kind of principal this is; the two share everything but how they are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A human, known by email (unique per tenant).
    User {
        /// Their address.
        email: Email,
        /// Their display name, if given.
        name: Option<PersonName>,
    },
    /// A machine identity, known by name (unique per tenant).
    ServiceAccount {
        /// Its name.
        name: ServiceAccountName,
    },
}

/// A user or a service account: something that owns API tokens and has a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Its id.
    pub id: PrincipalId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// User or service account, with their names.
    pub kind: PrincipalKind,
    /// The highest role any of its tokens may have.
    pub role: Role,
    /// A disabled principal's tokens are revoked and it cannot own new ones.
    pub disabled: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

impl Principal {
    /// Whether this is a user (as opposed to a service account).
    pub fn is_user(&self) -> bool {
        matches!(self.kind, PrincipalKind::User { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn env(n: u128) -> EnvironmentId {
        EnvironmentId::from_uuid(Uuid::from_u128(n))
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!(Role::parse("admin"), Ok(Role::Admin));
        assert!(Role::parse("Admin").is_err());
        assert!(Role::parse("owner").is_err());
    }

    #[test]
    fn scope_wire_rules() {
        assert_eq!(EnvScope::from_wire(true, vec![]), Ok(EnvScope::All));
        assert_eq!(
            EnvScope::from_wire(true, vec![env(1)]),
            Err(ScopeError::ListWithAll)
        );
        assert_eq!(
            EnvScope::from_wire(false, vec![]),
            Err(ScopeError::EmptyList)
        );
        assert!(EnvScope::from_wire(false, vec![env(1)]).is_ok());
    }

    #[test]
    fn scope_coverage() {
        let one = EnvScope::from_wire(false, vec![env(1)]).unwrap();
        let two = EnvScope::from_wire(false, vec![env(1), env(2)]).unwrap();
        assert!(EnvScope::All.covers(&two));
        assert!(two.covers(&one));
        assert!(!one.covers(&two));
        assert!(!two.covers(&EnvScope::All));
        assert!(one.contains(env(1)) && !one.contains(env(2)));
    }

    #[test]
    fn environment_names() {
        assert!(EnvironmentName::new("production").is_ok());
        assert!(EnvironmentName::new("eu-west-2").is_ok());
        assert!(EnvironmentName::new("").is_err());
        assert!(EnvironmentName::new("2prod").is_err());
        assert!(EnvironmentName::new("Prod").is_err());
        assert!(EnvironmentName::new(&"a".repeat(63)).is_ok());
        assert!(EnvironmentName::new(&"a".repeat(64)).is_err());
    }

    #[test]
    fn emails_are_validated_and_lowercased() {
        assert_eq!(
            Email::new(" Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        assert!(Email::new("not-an-email").is_err());
    }
}

//! Share links: expiring public links that hand a scan's artifacts to an outsider.

use crate::Timestamp;
use crate::ids::{ScanId, ShareLinkId, TenantId};
use crate::value::{ValueError, int_newtype, text_newtype};

int_newtype!(
    /// A share link's lifetime, 1-720 hours (default 168: a week).
    ShareTtlHours, 1, 720
);
int_newtype!(
    /// How many times a link may be opened, 1-10 000 (unlimited when absent).
    MaxAccesses, 1, 10_000
);
text_newtype!(
    /// A human-readable label, 1-200 characters.
    ShareLabel, 1, 200
);

impl ShareTtlHours {
    /// The lifetime of a link that names none.
    pub const fn default_ttl() -> Self {
        Self(168)
    }

    /// The expiry of a link made at `now`.
    pub fn expiry_from(self, now: Timestamp) -> Timestamp {
        now + time::Duration::hours(i64::from(self.get()))
    }
}

/// The artifacts of a scan, in the order scopes nest: a scope grants itself and every
/// artifact before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Artifact {
    /// The summary.
    Report,
    /// Every asset and finding, with the bundle's SHA-256.
    Bundle,
    /// The signed attestation: the full hand-off.
    Passport,
}

impl Artifact {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Bundle => "bundle",
            Self::Passport => "passport",
        }
    }

    /// Parses the wire name.
    ///
    /// # Errors
    /// `OneOf` otherwise.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        match raw {
            "report" => Ok(Self::Report),
            "bundle" => Ok(Self::Bundle),
            "passport" => Ok(Self::Passport),
            _ => Err(ValueError::OneOf {
                allowed: "report, bundle, passport",
            }),
        }
    }

    /// Every artifact, in nesting order.
    pub const ALL: [Artifact; 3] = [Self::Report, Self::Bundle, Self::Passport];

    /// The scope of a share link that names none: the passport, the full hand-off an
    /// auditor is usually sent, since a link exists to hand the scan over.
    pub const DEFAULT_SHARE_SCOPE: Self = Self::Passport;
}

/// A share link's metadata (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    /// Its id.
    pub id: ShareLinkId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The scan it shares.
    pub scan_id: ScanId,
    /// The widest artifact it grants.
    pub scope: Artifact,
    /// Its label.
    pub label: Option<ShareLabel>,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// How many accesses it allows (`None`: unlimited).
    pub max_accesses: Option<MaxAccesses>,
    /// How many it has had.
    pub access_count: u32,
    /// The last one.
    pub last_accessed_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// When it was made.
    pub created_at: Timestamp,
    /// The non-secret hint of its token (`fps_…x7Qa`).
    pub hint: String,
}

/// A share link's status at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareStatus {
    /// Opens.
    Active,
    /// Past its expiry.
    Expired,
    /// Every access taken.
    UsedUp,
    /// Revoked.
    Revoked,
}

impl ShareStatus {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::UsedUp => "used_up",
            Self::Revoked => "revoked",
        }
    }
}

impl ShareLink {
    /// Its status at `now`. Revocation wins, then exhaustion, then expiry.
    pub fn status(&self, now: Timestamp) -> ShareStatus {
        if self.revoked_at.is_some() {
            ShareStatus::Revoked
        } else if self
            .max_accesses
            .is_some_and(|m| self.access_count >= m.get())
        {
            ShareStatus::UsedUp
        } else if now >= self.expires_at {
            ShareStatus::Expired
        } else {
            ShareStatus::Active
        }
    }

    /// Whether it grants `artifact`.
    pub fn grants(&self, artifact: Artifact) -> bool {
        artifact <= self.scope
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: Timestamp = datetime!(2026-11-22 10:00 UTC);

    fn link(scope: Artifact, max: Option<u32>) -> ShareLink {
        ShareLink {
            id: ShareLinkId::from_uuid(uuid::Uuid::from_u128(1)),
            tenant_id: TenantId::from_uuid(uuid::Uuid::from_u128(2)),
            scan_id: ScanId::from_uuid(uuid::Uuid::from_u128(3)),
            scope,
            label: None,
            expires_at: ShareTtlHours::default_ttl().expiry_from(NOW),
            max_accesses: max.map(|m| MaxAccesses::new(i64::from(m)).unwrap()),
            access_count: 0,
            last_accessed_at: None,
            revoked_at: None,
            created_at: NOW,
            hint: "fps_…abcd".into(),
        }
    }

    #[test]
    fn scopes_nest() {
        let report = link(Artifact::Report, None);
        assert!(report.grants(Artifact::Report) && !report.grants(Artifact::Bundle));
        let bundle = link(Artifact::Bundle, None);
        assert!(
            bundle.grants(Artifact::Report)
                && bundle.grants(Artifact::Bundle)
                && !bundle.grants(Artifact::Passport)
        );
        assert!(
            Artifact::ALL
                .iter()
                .all(|a| link(Artifact::Passport, None).grants(*a))
        );
    }

    #[test]
    fn expiry_exhaustion_and_revocation() {
        let mut l = link(Artifact::Passport, Some(2));
        let week = time::Duration::hours(168);
        assert_eq!(
            l.status(NOW + week - time::Duration::seconds(1)),
            ShareStatus::Active
        );
        assert_eq!(l.status(NOW + week), ShareStatus::Expired);
        l.access_count = 2;
        assert_eq!(l.status(NOW), ShareStatus::UsedUp);
        l.revoked_at = Some(NOW);
        assert_eq!(l.status(NOW), ShareStatus::Revoked);
        assert!(
            ShareTtlHours::new(0).is_err()
                && ShareTtlHours::new(721).is_err()
                && ShareTtlHours::new(720).is_ok()
        );
        assert!(MaxAccesses::new(10_001).is_err() && ShareLabel::new(&"x".repeat(201)).is_err());
    }
}

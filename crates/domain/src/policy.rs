//! A tenant's token policy: the longest lifetimes it lets new API tokens and enrollment
//! tokens have, and the pure checks of a requested lifetime against it.
//!
//! No policy (both maxima `None`) is the behaviour from before policies existed: every
//! lifetime the newtypes allow (1-365 days, 1-720 hours) is accepted.

use crate::Timestamp;
use crate::fleet::EnrollmentTtlHours;
use crate::token::TokenTtlDays;

/// The longest lifetimes a tenant allows for the tokens it issues. Each maximum is one of
/// the lifetime newtypes, so a policy can only name lifetimes a token could have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenPolicy {
    /// The longest `expiresInDays` of a new API token; `None`: any (up to 365).
    pub max_token_days: Option<TokenTtlDays>,
    /// The longest `expiresHours` of a new enrollment token; `None`: any (up to 720).
    pub max_enrollment_hours: Option<EnrollmentTtlHours>,
}

/// A requested lifetime above the tenant's maximum, and how to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyExceeded {
    /// An API token asked for more days than the policy allows.
    #[error(
        "must be at most {max}: the tenant's token policy allows API tokens of at most {max} days"
    )]
    TokenDays {
        /// The policy's maximum, in days.
        max: u32,
    },
    /// An enrollment token asked for more hours than the policy allows.
    #[error(
        "must be at most {max}: the tenant's token policy allows enrollment tokens of at most {max} hours"
    )]
    EnrollmentHours {
        /// The policy's maximum, in hours.
        max: u32,
    },
}

impl PolicyExceeded {
    /// How the caller can fix the request: ask for no more than the maximum, or have
    /// the policy changed by whoever may change it.
    pub fn hint(self) -> String {
        let (max, unit) = match self {
            Self::TokenDays { max } => (max, "days"),
            Self::EnrollmentHours { max } => (max, "hours"),
        };
        format!(
            "Use {max} {unit} or fewer; only an admin whose token covers all environments can raise the tenant's token policy."
        )
    }
}

impl TokenPolicy {
    /// No limits beyond the lifetimes' own bounds.
    pub const NONE: Self = Self {
        max_token_days: None,
        max_enrollment_hours: None,
    };

    /// Whether the policy limits nothing.
    pub fn is_none(&self) -> bool {
        *self == Self::NONE
    }

    /// Checks the lifetime asked for a new API token.
    ///
    /// # Errors
    /// [`PolicyExceeded::TokenDays`] when `ttl` is above the maximum.
    pub fn check_token_ttl(&self, ttl: TokenTtlDays) -> Result<(), PolicyExceeded> {
        match self.max_token_days {
            Some(max) if ttl > max => Err(PolicyExceeded::TokenDays { max: max.get() }),
            _ => Ok(()),
        }
    }

    /// The lifetime of a new enrollment token: the one asked for, checked against the
    /// maximum; with none asked for, the default (72 h) or the maximum if that is
    /// lower, so that a default the caller did not choose never fails a request.
    ///
    /// # Errors
    /// [`PolicyExceeded::EnrollmentHours`] when `requested` is above the maximum.
    pub fn enrollment_ttl(
        &self,
        requested: Option<EnrollmentTtlHours>,
    ) -> Result<EnrollmentTtlHours, PolicyExceeded> {
        match (requested, self.max_enrollment_hours) {
            (Some(ttl), Some(max)) if ttl > max => {
                Err(PolicyExceeded::EnrollmentHours { max: max.get() })
            }
            (Some(ttl), _) => Ok(ttl),
            (None, max) => Ok(max.map_or(EnrollmentTtlHours::default_ttl(), |max| {
                max.min(EnrollmentTtlHours::default_ttl())
            })),
        }
    }

    /// The expiry of a token rotated at `now` that expired at `current`: unchanged, or
    /// `now` plus the maximum if that is sooner. A rotation hands out a new secret, and
    /// a new secret must not carry a lifetime the policy no longer allows; the expiry
    /// never moves later.
    pub fn rotated_expiry(&self, current: Timestamp, now: Timestamp) -> Timestamp {
        self.max_token_days
            .map_or(current, |max| current.min(max.expiry_from(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: Timestamp = datetime!(2026-12-08 10:00 UTC);

    fn days(n: i64) -> TokenTtlDays {
        TokenTtlDays::new(n).unwrap()
    }

    fn hours(n: i64) -> EnrollmentTtlHours {
        EnrollmentTtlHours::new(n).unwrap()
    }

    fn policy(d: Option<i64>, h: Option<i64>) -> TokenPolicy {
        TokenPolicy {
            max_token_days: d.map(days),
            max_enrollment_hours: h.map(hours),
        }
    }

    #[test]
    fn no_policy_allows_every_lifetime_as_before() {
        let none = TokenPolicy::default();
        assert!(none.is_none());
        assert_eq!(none.check_token_ttl(TokenTtlDays::max()), Ok(()));
        assert_eq!(
            none.enrollment_ttl(Some(EnrollmentTtlHours::max())),
            Ok(EnrollmentTtlHours::max())
        );
        assert_eq!(
            none.enrollment_ttl(None),
            Ok(EnrollmentTtlHours::default_ttl())
        );
        let far = NOW + time::Duration::days(365);
        assert_eq!(none.rotated_expiry(far, NOW), far);
    }

    #[test]
    fn token_days_up_to_the_maximum_pass_and_above_it_say_the_maximum() {
        let p = policy(Some(30), None);
        assert_eq!(p.check_token_ttl(days(30)), Ok(()));
        assert_eq!(p.check_token_ttl(days(1)), Ok(()));
        let e = p.check_token_ttl(days(31)).unwrap_err();
        assert_eq!(e, PolicyExceeded::TokenDays { max: 30 });
        assert!(e.to_string().contains("at most 30 days"), "{e}");
        assert!(e.hint().starts_with("Use 30 days or fewer"), "{}", e.hint());
    }

    #[test]
    fn enrollment_hours_are_checked_and_the_default_is_capped() {
        let p = policy(None, Some(24));
        assert_eq!(p.enrollment_ttl(Some(hours(24))), Ok(hours(24)));
        assert_eq!(
            p.enrollment_ttl(Some(hours(25))),
            Err(PolicyExceeded::EnrollmentHours { max: 24 })
        );
        assert_eq!(p.enrollment_ttl(None), Ok(hours(24)), "the default, capped");
        let roomy = policy(None, Some(200));
        assert_eq!(
            roomy.enrollment_ttl(None),
            Ok(EnrollmentTtlHours::default_ttl()),
            "a maximum above the default leaves the default"
        );
        assert_eq!(
            p.check_token_ttl(TokenTtlDays::max()),
            Ok(()),
            "one maximum does not limit the other kind"
        );
    }

    #[test]
    fn rotation_caps_the_expiry_and_never_extends_it() {
        let p = policy(Some(30), None);
        let far = NOW + time::Duration::days(300);
        assert_eq!(p.rotated_expiry(far, NOW), NOW + time::Duration::days(30));
        let soon = NOW + time::Duration::days(3);
        assert_eq!(p.rotated_expiry(soon, NOW), soon);
    }
}

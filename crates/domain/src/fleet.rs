//! Fleets, their one-time enrollment tokens and the agents that enroll with them.

use crate::Timestamp;
use crate::ids::{AgentId, EnrollmentTokenId, EnvironmentId, FleetId, TenantId};
use crate::label::Labels;
use crate::network::AllowedCidrs;
use crate::value::{int_newtype, text_newtype};

text_newtype!(
    /// A fleet's display name, 1-100 characters.
    FleetName, 1, 100
);
int_newtype!(
    /// An enrollment token's lifetime, 1-720 hours (default 72).
    EnrollmentTtlHours, 1, 720
);
int_newtype!(
    /// How many agents an enrollment token may enroll, 1-1000 (default 1: one-time).
    MaxUses, 1, 1000
);
text_newtype!(
    /// An agent's host name, 1-253 characters (a DNS name's limit).
    Hostname, 1, 253
);
text_newtype!(
    /// An agent's platform (`linux-x86_64`, …), 1-64 characters.
    Platform, 1, 64
);
text_newtype!(
    /// An agent's software version, 1-64 characters.
    AgentVersion, 1, 64
);

impl FleetName {
    /// The name of a fleet created without one.
    pub fn untitled() -> Self {
        Self("Untitled fleet".to_owned())
    }
}

impl EnrollmentTtlHours {
    /// The lifetime of a token that names none (and of a fleet's first token).
    pub const fn default_ttl() -> Self {
        Self(72)
    }

    /// The expiry of a token issued at `now`.
    pub fn expiry_from(self, now: Timestamp) -> Timestamp {
        now + time::Duration::hours(i64::from(self.get()))
    }
}

impl MaxUses {
    /// One use: an enrollment token enrolls one agent unless asked for more, so a
    /// leaked token is worth at most one rogue agent.
    pub const fn once() -> Self {
        Self(1)
    }
}

/// The default number of uses is [`MaxUses::once`].
impl Default for MaxUses {
    fn default() -> Self {
        Self::once()
    }
}

/// How long an agent access token (a JWT) lives.
pub const ACCESS_TOKEN_TTL: time::Duration = time::Duration::minutes(15);

/// A fleet: a set of agents in one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// Its id.
    pub id: FleetId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The environment it lives in; fixed at creation.
    pub environment_id: EnvironmentId,
    /// Its name.
    pub name: FleetName,
    /// When it was created.
    pub created_at: Timestamp,
}

/// An enrollment token's metadata (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentToken {
    /// Its id.
    pub id: EnrollmentTokenId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The fleet agents enroll into with it.
    pub fleet_id: FleetId,
    /// How many enrollments it allows.
    pub max_uses: MaxUses,
    /// How many it has had.
    pub uses: u32,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// The non-secret hint of its secret (`fpe_…x7Qa`).
    pub hint: String,
    /// The labels every agent it enrolls carries (over the agent's own).
    pub labels: Labels,
    /// The networks agents may enroll from with it; empty: anywhere.
    pub allowed_cidrs: AllowedCidrs,
}

/// An enrollment token's status at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentStatus {
    /// Usable.
    Active,
    /// Every use taken.
    Used,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl EnrollmentStatus {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Used => "used",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// Why an enrollment was refused: each says which, so an operator can act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnrollmentRefusal {
    /// No token has this secret (or it is not an enrollment token at all).
    #[error("unknown enrollment token")]
    Unknown,
    /// The token is past its expiry.
    #[error("the enrollment token has expired")]
    Expired,
    /// The token was revoked.
    #[error("the enrollment token was revoked")]
    Revoked,
    /// Every use of the token is taken.
    #[error("the enrollment token has been used up")]
    UsedUp,
}

impl EnrollmentToken {
    /// Its status at `now`. Revocation wins, then exhaustion, then expiry.
    pub fn status(&self, now: Timestamp) -> EnrollmentStatus {
        if self.revoked_at.is_some() {
            EnrollmentStatus::Revoked
        } else if self.uses >= self.max_uses.get() {
            EnrollmentStatus::Used
        } else if now >= self.expires_at {
            EnrollmentStatus::Expired
        } else {
            EnrollmentStatus::Active
        }
    }

    /// Enrollments still possible (0 unless active).
    pub fn uses_left(&self, now: Timestamp) -> u32 {
        match self.status(now) {
            EnrollmentStatus::Active => self.max_uses.get() - self.uses,
            _ => 0,
        }
    }

    /// Whether one more enrollment may use it at `now`.
    ///
    /// # Errors
    /// The refusal that says why not.
    pub fn check_usable(&self, now: Timestamp) -> Result<(), EnrollmentRefusal> {
        match self.status(now) {
            EnrollmentStatus::Active => Ok(()),
            EnrollmentStatus::Used => Err(EnrollmentRefusal::UsedUp),
            EnrollmentStatus::Expired => Err(EnrollmentRefusal::Expired),
            EnrollmentStatus::Revoked => Err(EnrollmentRefusal::Revoked),
        }
    }
}

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Its id (the JWT subject).
    pub id: AgentId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its fleet.
    pub fleet_id: FleetId,
    /// The host it runs on.
    pub hostname: Hostname,
    /// Its platform.
    pub platform: Platform,
    /// Its software version, as last reported.
    pub agent_version: Option<AgentVersion>,
    /// When it enrolled.
    pub enrolled_at: Timestamp,
    /// When it last sent a heartbeat.
    pub last_seen_at: Option<Timestamp>,
    /// When it was revoked; its secret and tokens stop working then.
    pub revoked_at: Option<Timestamp>,
    /// What it is (`role=db`): set at enrollment, changed by operators, targeted by
    /// scans.
    pub labels: Labels,
}

impl Agent {
    /// The wire status.
    pub fn status(&self) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        }
    }
}

/// The claims of an agent access token: a JWT access token of RFC 9068 (`typ: at+jwt`
/// in its header, see [`crate::jose`]) signed by the server's keys, for the server
/// itself: `iss` and `aud` are both the server's public URL, `sub` and `client_id` the
/// agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentClaims {
    /// Issuer: the server's public URL ([`AgentClaims::LEGACY_ISSUER`] before typing).
    pub iss: String,
    /// Audience: the server's public URL, so a token for another server does not pass
    /// ([`AgentClaims::LEGACY_AUDIENCE`] before typing).
    pub aud: String,
    /// The agent id.
    pub sub: String,
    /// The OAuth client: the agent, as `sub` (absent before typing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The tenant id.
    pub tid: String,
    /// The fleet id.
    pub fid: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// This token's own id (absent before typing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Why a well-signed access token is not accepted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsRejected {
    /// Past `exp`.
    #[error("the access token has expired")]
    Expired,
    /// Before `nbf`.
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// Wrong issuer, audience, subject or client.
    #[error("the access token is not an agent access token of this server")]
    WrongKind,
}

impl AgentClaims {
    /// The issuer of the untyped tokens signed before RFC 9068 typing.
    pub const LEGACY_ISSUER: &'static str = "fleetpass";
    /// The audience of those tokens.
    pub const LEGACY_AUDIENCE: &'static str = "fleetpass-agent";

    /// The claims of an access token for `agent` from the server at `issuer` (its
    /// public URL), with id `jti`, issued at `now`, valid for [`ACCESS_TOKEN_TTL`].
    pub fn new(agent: &Agent, issuer: &str, jti: uuid::Uuid, now: Timestamp) -> Self {
        let iat = now.unix_timestamp();
        Self {
            iss: issuer.to_owned(),
            aud: issuer.to_owned(),
            sub: agent.id.to_string(),
            client_id: Some(agent.id.to_string()),
            tid: agent.tenant_id.to_string(),
            fid: agent.fleet_id.to_string(),
            iat,
            nbf: iat,
            exp: (now + ACCESS_TOKEN_TTL).unix_timestamp(),
            jti: Some(jti.to_string()),
        }
    }

    /// When it expires.
    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_unix_timestamp(self.exp).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Checks issuer, audience, subject and the time window at `now` for the server
    /// at `issuer`, and returns the agent id. A token whose header was typed `at+jwt`
    /// must carry this server's claims in full; an untyped one (`typing` legacy, signed
    /// before typing, at most [`ACCESS_TOKEN_TTL`] ago) the fixed claims of then, so a
    /// rolling upgrade logs no agent out.
    ///
    /// # Errors
    /// Why the claims are not acceptable now.
    pub fn check(
        &self,
        typing: crate::jose::Typing,
        issuer: &str,
        now: Timestamp,
    ) -> Result<AgentId, ClaimsRejected> {
        let ours = match typing {
            crate::jose::Typing::Explicit => {
                self.iss == issuer
                    && self.aud == issuer
                    && self.client_id.as_deref() == Some(self.sub.as_str())
                    && self.jti.is_some()
            }
            crate::jose::Typing::Legacy => {
                self.iss == Self::LEGACY_ISSUER && self.aud == Self::LEGACY_AUDIENCE
            }
        };
        if !ours {
            return Err(ClaimsRejected::WrongKind);
        }
        let agent = AgentId::parse(&self.sub).ok_or(ClaimsRejected::WrongKind)?;
        let now = now.unix_timestamp();
        if now >= self.exp {
            return Err(ClaimsRejected::Expired);
        }
        if now < self.nbf {
            return Err(ClaimsRejected::NotYetValid);
        }
        Ok(agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::Typing;
    use time::macros::datetime;
    use uuid::Uuid;

    const NOW: Timestamp = datetime!(2026-11-22 10:00 UTC);

    fn token(max: u32) -> EnrollmentToken {
        EnrollmentToken {
            labels: Labels::none(),
            id: EnrollmentTokenId::from_uuid(Uuid::from_u128(1)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            fleet_id: FleetId::from_uuid(Uuid::from_u128(3)),
            max_uses: MaxUses::new(i64::from(max)).unwrap(),
            uses: 0,
            expires_at: EnrollmentTtlHours::default_ttl().expiry_from(NOW),
            created_at: NOW,
            revoked_at: None,
            hint: "fpe_…abcd".into(),
            allowed_cidrs: AllowedCidrs::anywhere(),
        }
    }

    #[test]
    fn works_until_the_expiry_instant() {
        let t = token(1);
        let almost = NOW + time::Duration::hours(72) - time::Duration::seconds(1);
        assert_eq!(t.check_usable(almost), Ok(()));
        assert_eq!(
            t.check_usable(NOW + time::Duration::hours(72)),
            Err(EnrollmentRefusal::Expired)
        );
    }

    #[test]
    fn uses_run_out_and_revocation_wins() {
        let mut t = token(3);
        assert_eq!(t.uses_left(NOW), 3);
        t.uses = 3;
        assert_eq!(
            (t.status(NOW), t.uses_left(NOW)),
            (EnrollmentStatus::Used, 0)
        );
        assert_eq!(t.check_usable(NOW), Err(EnrollmentRefusal::UsedUp));
        t.revoked_at = Some(NOW);
        assert_eq!(
            t.check_usable(NOW + time::Duration::days(9)),
            Err(EnrollmentRefusal::Revoked)
        );
    }

    #[test]
    fn access_tokens_live_fifteen_minutes() {
        let agent = Agent {
            labels: Labels::none(),
            id: AgentId::from_uuid(Uuid::from_u128(9)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            fleet_id: FleetId::from_uuid(Uuid::from_u128(3)),
            hostname: Hostname::new("h").unwrap(),
            platform: Platform::new("linux").unwrap(),
            agent_version: None,
            enrolled_at: NOW,
            last_seen_at: None,
            revoked_at: None,
        };
        let issuer = "https://fleet.example";
        let claims = AgentClaims::new(&agent, issuer, Uuid::from_u128(9), NOW);
        let check = |c: &AgentClaims, at| c.check(Typing::Explicit, issuer, at);
        assert_eq!(
            check(&claims, NOW + time::Duration::seconds(899)),
            Ok(agent.id)
        );
        assert_eq!(
            check(&claims, NOW + ACCESS_TOKEN_TTL),
            Err(ClaimsRejected::Expired)
        );
        assert_eq!(
            check(&claims, NOW - time::Duration::seconds(1)),
            Err(ClaimsRejected::NotYetValid)
        );
        let mut other = claims.clone();
        other.aud = "https://elsewhere.example".into();
        assert_eq!(check(&other, NOW), Err(ClaimsRejected::WrongKind));
        let mut no_client = claims.clone();
        no_client.client_id = None;
        assert_eq!(check(&no_client, NOW), Err(ClaimsRejected::WrongKind));
        // Typed claims are not the legacy ones, nor the other way round.
        assert_eq!(
            claims.check(Typing::Legacy, issuer, NOW),
            Err(ClaimsRejected::WrongKind)
        );
        let legacy = AgentClaims {
            iss: AgentClaims::LEGACY_ISSUER.into(),
            aud: AgentClaims::LEGACY_AUDIENCE.into(),
            client_id: None,
            jti: None,
            ..claims.clone()
        };
        assert_eq!(legacy.check(Typing::Legacy, issuer, NOW), Ok(agent.id));
        assert_eq!(check(&legacy, NOW), Err(ClaimsRejected::WrongKind));
    }

    #[test]
    fn bounds() {
        assert!(EnrollmentTtlHours::new(0).is_err() && EnrollmentTtlHours::new(721).is_err());
        assert!(EnrollmentTtlHours::new(1).is_ok() && EnrollmentTtlHours::new(720).is_ok());
        assert!(MaxUses::new(0).is_err() && MaxUses::new(1001).is_err());
        assert!(MaxUses::new(1000).is_ok());
        assert_eq!(FleetName::untitled().as_str(), "Untitled fleet");
    }
}

//! Fuzzes every id type's parser in `fleetpass_domain::ids` (what every `{id}` path
//! segment goes through, via `fleetpass_http::extract::path_id`) on arbitrary text:
//! never a panic; all types agree; a parsed id prints (`Display`) to text that parses to
//! the same id.
#![no_main]

use fleetpass_domain::ids::*;
use fleetpass_http::extract::path_id;
use libfuzzer_sys::fuzz_target;

/// Checks one id type on `raw`; `Some(uuid)` when it parsed.
macro_rules! check {
    ($raw:expr, $($ty:ident),+ $(,)?) => {[$({
        let parsed = $ty::parse($raw);
        assert_eq!(path_id($raw, $ty::parse).ok(), parsed);
        if let Some(id) = parsed {
            let text = id.to_string();
            assert_eq!($ty::parse(&text), Some(id), "{} {text}", stringify!($ty));
            assert_eq!($ty::from_uuid(id.as_uuid()), id);
        }
        parsed.map(|id| id.as_uuid())
    }),+]};
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let all = check!(
        &raw,
        TenantId,
        EnvironmentId,
        PrincipalId,
        TokenId,
        AuditEventId,
        FleetId,
        EnrollmentTokenId,
        AgentId,
        ScanId,
        ShareLinkId,
        ScheduleId,
    );
    assert!(
        all.iter().all(|id| *id == all[0]),
        "{raw:?}: the id types disagree"
    );
});

//! Decides access with the domain's pure `authorize`, as the server does for every
//! request: `cargo run -p fleetpass-domain --example authorize`.

use fleetpass_domain::access::{Action, Actor, Denied, authorize};
use fleetpass_domain::identity::{EnvScope, Role};
use fleetpass_domain::ids::{EnvironmentId, TenantId, TokenId};
use uuid::Uuid;

fn main() {
    let staging = EnvironmentId::from_uuid(Uuid::from_u128(1));
    let production = EnvironmentId::from_uuid(Uuid::from_u128(2));
    let token = |role, scope| Actor {
        tenant_id: TenantId::from_uuid(Uuid::from_u128(100)),
        token_id: TokenId::from_uuid(Uuid::from_u128(101)),
        owner_id: None,
        role,
        scope,
    };
    let staging_operator = token(
        Role::Operator,
        EnvScope::from_wire(false, vec![staging]).expect("one environment"),
    );
    let viewer = token(Role::Viewer, EnvScope::All);
    let admin = token(Role::Admin, EnvScope::All);

    let cases = [
        (
            "staging operator requests a scan in staging",
            &staging_operator,
            Action::Operate,
            Some(staging),
        ),
        (
            "staging operator requests a scan in production",
            &staging_operator,
            Action::Operate,
            Some(production),
        ),
        (
            "viewer reads a production scan",
            &viewer,
            Action::Read,
            Some(production),
        ),
        (
            "viewer creates a share link",
            &viewer,
            Action::Operate,
            Some(production),
        ),
        (
            "staging operator creates an environment",
            &staging_operator,
            Action::ManageEnvironments,
            None,
        ),
        (
            "admin creates an environment",
            &admin,
            Action::ManageEnvironments,
            None,
        ),
    ];
    for (what, actor, action, env) in cases {
        // The HTTP layer maps these to 403 FORBIDDEN_ROLE and 403 FORBIDDEN_SCOPE.
        let outcome = match authorize(actor, action, env) {
            Ok(()) => "allowed".to_owned(),
            Err(Denied::Role { .. }) => "403 FORBIDDEN_ROLE".to_owned(),
            Err(denied @ Denied::Scope) => format!("403 FORBIDDEN_SCOPE ({denied})"),
        };
        println!("{what}: {outcome}");
    }
    assert_eq!(
        authorize(&staging_operator, Action::Operate, Some(production)),
        Err(Denied::Scope)
    );
}

//! The contract cases of the signing keys.

use fleetpass_ports::Store;
use fleetpass_ports::store::{StoredSigningKey, constraint};
use time::Duration;

use crate::fixtures::Fixtures;
use crate::support::Must;

/// Signing keys read back as added (every byte), listed oldest first whatever order
/// they were added in, retired ones included; a taken kid is
/// `Conflict(SIGNING_KEY_ID)` and changes nothing; retiring sets `retired_at` once (a
/// second retire keeps the first time) and an unknown kid is `NotFound`.
pub async fn signing_keys_add_list_retire(store: &dyn Store) {
    let fx = Fixtures::new();
    let hour = |h| fx.now() + Duration::hours(h);
    // Keys are not tenant-scoped: a shared store may hold other cases' keys, so only
    // this case's kids are looked at.
    let ours = |keys: Vec<StoredSigningKey>, kids: &[String]| -> Vec<StoredSigningKey> {
        keys.into_iter().filter(|k| kids.contains(&k.kid)).collect()
    };
    let (middle, oldest, newest) = (
        fx.signing_key(hour(2)),
        fx.signing_key(hour(1)),
        fx.signing_key(hour(3)),
    );
    let retired_before = StoredSigningKey {
        retired_at: Some(hour(5)),
        ..fx.signing_key(hour(4))
    };
    for key in [&middle, &oldest, &newest, &retired_before] {
        store.add_signing_key(key).await.must("add_signing_key");
    }
    let kids = [&oldest, &middle, &newest, &retired_before].map(|k| k.kid.clone());
    let listed = ours(
        store.list_signing_keys().await.must("list_signing_keys"),
        &kids,
    );
    assert_eq!(
        listed,
        vec![
            oldest.clone(),
            middle.clone(),
            newest.clone(),
            retired_before.clone()
        ],
        "list_signing_keys, oldest first, as added"
    );

    let twin = StoredSigningKey {
        kid: middle.kid.clone(),
        ..fx.signing_key(hour(6))
    };
    store.add_signing_key(&twin).await.must_conflict(
        constraint::SIGNING_KEY_ID,
        "add_signing_key with a taken kid",
    );

    store
        .retire_signing_key(&middle.kid, hour(7))
        .await
        .must("retire_signing_key");
    store
        .retire_signing_key(&middle.kid, hour(8))
        .await
        .must("retire_signing_key twice");
    store
        .retire_signing_key(&retired_before.kid, hour(9))
        .await
        .must("retire_signing_key of a retired key");
    let unknown = format!("kid-{}", fx.id().simple());
    store
        .retire_signing_key(&unknown, hour(7))
        .await
        .must_be_not_found("retire_signing_key of an unknown kid");

    let retired = StoredSigningKey {
        retired_at: Some(hour(7)),
        ..middle
    };
    let listed = ours(
        store.list_signing_keys().await.must("list_signing_keys"),
        &kids,
    );
    assert_eq!(
        listed,
        vec![oldest, retired, newest, retired_before],
        "after a refused duplicate and retirements: the first retired_at stays, \
         retired keys are still listed"
    );
}

//! Black-box test of schedules over two replicas on one PostgreSQL database: both run
//! the schedule runner, and a due schedule still enqueues exactly one scan.

mod support;

use std::time::{Duration, Instant};

use fleetpass_store_postgres::testing::TestDatabase;
use serde_json::json;
use support::*;

#[tokio::test]
async fn two_replicas_enqueue_a_due_schedule_once() {
    let db = TestDatabase::fresh().await;
    let url = db.url().to_owned();
    let admin = cli_tenant(&url, "acme");
    let a = start(&[("DATABASE_URL", &url)]);
    let b = start(&[("DATABASE_URL", &url)]);
    let (_, fleet) = post_json(
        &format!("{}/tenant/discovery/fleets", a.base),
        Some(&admin),
        json!({}),
    )
    .await;
    let body = json!({"fleetId": fleet["fleetId"], "scenario": "inventory", "intervalMinutes": 60});
    let (status, schedule) =
        post_json(&format!("{}/tenant/schedules", b.base), Some(&admin), body).await;
    assert_eq!(status, 201, "{schedule}");
    let created = Instant::now();
    let count = || async {
        call(
            reqwest::Method::GET,
            &format!("{}/tenant/scans", a.base),
            &admin,
            None,
        )
        .await
        .1["items"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default()
    };
    // Each replica's runner ticks every 15 s; give both a full tick past creation.
    while count().await == 0 {
        assert!(
            created.elapsed() < Duration::from_secs(30),
            "no scan was enqueued within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let both_ticked = Duration::from_secs(16);
    if let Some(rest) = both_ticked.checked_sub(created.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    assert_eq!(
        count().await,
        1,
        "one due time, one scan, however many replicas run"
    );
    drop((a, b));
}

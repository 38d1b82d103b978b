//! In-process tests of schedules: refused (503) without persistence, and on a real
//! PostgreSQL test database with a pinned clock: validation, scope, and due schedules
//! enqueueing one scan per due time.

mod support;

use actix_web::test::{self, TestRequest};
use fleetpass_http::GuardConfig;
use fleetpass_store_postgres::testing::TestDatabase;
use serde_json::json;
use support::*;

macro_rules! app {
    ($f:expr) => {
        test::init_service(fleetpass_http::app($f.state.clone())).await
    };
}

fn roomy() -> GuardConfig {
    GuardConfig {
        public_per_minute: 100_000,
        auth_failures_per_minute: 100_000,
        ..GuardConfig::default()
    }
}

#[actix_web::test]
async fn without_persistence_every_schedule_call_is_503() {
    let f = fixture(config()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let id = "0190f5d2-0000-7000-8000-000000000000";
    let calls = [
        post(
            "/tenant/schedules",
            &admin,
            json!({"fleetId": id, "scenario": "ports", "intervalMinutes": 60}),
        ),
        authed(TestRequest::get().uri("/tenant/schedules"), &admin),
        authed(
            TestRequest::get().uri(&format!("/tenant/schedules/{id}")),
            &admin,
        ),
        authed(
            TestRequest::get().uri("/tenant/schedules/not-an-id"),
            &admin,
        ),
        authed(
            TestRequest::patch().uri(&format!("/tenant/schedules/{id}")),
            &admin,
        )
        .set_json(json!({"enabled": false})),
        authed(
            TestRequest::delete().uri(&format!("/tenant/schedules/{id}")),
            &admin,
        ),
    ];
    for call in calls {
        let res = send(&app, call).await;
        let body = res.error(503, "SERVICE_UNAVAILABLE");
        assert_eq!(
            body["hint"],
            "schedules require Postgres persistence: set DATABASE_URL"
        );
    }
    // Credentials still come first.
    send(&app, TestRequest::get().uri("/tenant/schedules"))
        .await
        .error(401, "UNAUTHORIZED");
}

#[actix_web::test]
async fn due_schedules_enqueue_one_scan_per_due_time() {
    let db = TestDatabase::fresh().await;
    let f = fixture_on(config(), roomy(), db.store_arc()).await;
    let (_, admin) = tenant(&f, "acme").await;
    let app = app!(f);
    let fleet = send(&app, post("/tenant/discovery/fleets", &admin, json!({}))).await;
    let fleet_id = fleet.body["fleetId"].as_str().unwrap().to_owned();
    let create = |body: serde_json::Value| post("/tenant/schedules", &admin, body);
    for (body, field) in [
        (
            json!({"fleetId": fleet_id, "scenario": "ports", "intervalMinutes": 14}),
            "intervalMinutes",
        ),
        (
            json!({"fleetId": fleet_id, "scenario": "ports", "intervalMinutes": 10_081}),
            "intervalMinutes",
        ),
        (
            json!({"fleetId": fleet_id, "scenario": "nmap", "intervalMinutes": 60}),
            "scenario",
        ),
        (
            json!({"fleetId": fleet_id, "scenario": "compliance", "intervalMinutes": 60, "constraints": {"maxDurationMinutes": 29}}),
            "maxDurationMinutes",
        ),
        (
            json!({"fleetId": fleet_id, "scenario": "ports", "intervalMinutes": 60, "constraints": {"notAfter": "2026-12-01T00:00:00Z"}}),
            "constraints.notAfter",
        ),
        (
            json!({"fleetId": fleet_id, "scenario": "ports"}),
            "intervalMinutes",
        ),
    ] {
        let res = send(&app, create(body.clone())).await;
        assert_eq!(res.error(422, "VALIDATION_ERROR")["field"], field, "{body}");
    }
    let made = send(
        &app,
        create(json!({"fleetId": fleet_id, "scenario": "ports", "intervalMinutes": 60})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(
        (made.body["enabled"].clone(), made.body["nextRunAt"].clone()),
        (json!(true), json!("2026-11-22T10:00:00Z"))
    );
    let id = made.body["scheduleId"].as_str().unwrap().to_owned();
    let paused = send(&app, create(json!({"fleetId": fleet_id, "scenario": "inventory", "intervalMinutes": 15, "enabled": false}))).await;
    assert_eq!(paused.status, 201);

    let run = || fleetpass_ports::service::schedules::run_due(&f.state.deps);
    macro_rules! scans {
        () => {{
            let res = send(
                &app,
                authed(TestRequest::get().uri("/tenant/scans?limit=200"), &admin),
            )
            .await;
            res.body["items"]
                .as_array()
                .map(Vec::len)
                .unwrap_or_default()
        }};
    }
    assert_eq!(run().await.unwrap(), 1, "due at creation");
    assert_eq!(run().await.unwrap(), 0, "each due time runs once");
    assert_eq!(scans!(), 1);
    f.clock.advance(time::Duration::minutes(59));
    assert_eq!(run().await.unwrap(), 0);
    f.clock.advance(time::Duration::minutes(1));
    assert_eq!(run().await.unwrap(), 1, "due again after the interval");
    // Down for five and a half hours: one scan, and the cadence keeps its phase.
    f.clock.advance(time::Duration::minutes(330));
    assert_eq!(run().await.unwrap(), 1);
    let read = send(
        &app,
        authed(
            TestRequest::get().uri(&format!("/tenant/schedules/{id}")),
            &admin,
        ),
    )
    .await;
    assert_eq!(
        read.body["nextRunAt"], "2026-11-22T17:00:00Z",
        "{}",
        read.body
    );
    assert_eq!(read.body["lastRunAt"], "2026-11-22T16:30:00Z");
    assert_eq!(scans!(), 3);

    // Pause, change, resume; fleetId is fixed.
    let uri = format!("/tenant/schedules/{id}");
    let patch =
        |body: serde_json::Value| authed(TestRequest::patch().uri(&uri), &admin).set_json(body);
    let moved = send(&app, patch(json!({"fleetId": fleet_id}))).await;
    assert_eq!(moved.error(422, "READONLY_FIELD")["field"], "fleetId");
    let off = send(
        &app,
        patch(json!({"enabled": false, "intervalMinutes": 30, "scenario": "software"})),
    )
    .await;
    assert_eq!(
        (
            off.body["enabled"].clone(),
            off.body["intervalMinutes"].clone()
        ),
        (json!(false), json!(30)),
        "{}",
        off.body
    );
    f.clock.advance(time::Duration::hours(3));
    assert_eq!(run().await.unwrap(), 0, "paused schedules do not run");
    let listed = send(
        &app,
        authed(TestRequest::get().uri("/tenant/schedules"), &admin),
    )
    .await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(2));

    // Viewers read, operators write; other tenants see nothing.
    let viewer = send(
        &app,
        post(
            "/api/admin/tokens",
            &admin,
            token_body(json!({"role": "viewer"})),
        ),
    )
    .await;
    let viewer = viewer.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        send(&app, authed(TestRequest::get().uri(&uri), &viewer))
            .await
            .status,
        200
    );
    send(&app, authed(TestRequest::delete().uri(&uri), &viewer))
        .await
        .error(403, "FORBIDDEN_ROLE");
    let (_, other) = tenant(&f, "globex").await;
    send(&app, authed(TestRequest::get().uri(&uri), &other))
        .await
        .error(404, "NOT_FOUND");
    let del = send(&app, authed(TestRequest::delete().uri(&uri), &admin)).await;
    assert_eq!(del.status, 204);
    send(&app, authed(TestRequest::get().uri(&uri), &admin))
        .await
        .error(404, "NOT_FOUND");
    assert_eq!(scans!(), 3, "its scans stay");
    let audit = send(
        &app,
        authed(
            TestRequest::get().uri("/api/admin/audit-events?limit=200"),
            &admin,
        ),
    )
    .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "schedule.created",
        "schedule.updated",
        "schedule.deleted",
        "scan.requested",
    ] {
        assert!(actions.contains(&expected), "{expected} missing");
    }
}

//! Fuzzes the PostgreSQL store through the whole in-process app: each input is the body
//! of `POST /agent/scans/{id}/results` for a freshly claimed scan, on a real database
//! (a fresh copy of the migrated template on the local server, as the tests use). The
//! store is where text meets `jsonb`, which refuses what Rust strings may hold (a NUL
//! was a 500 that every retry met again). Asserts never a 5xx and never a panic; what
//! is accepted reads back through the API with the digest its passport attests.
#![no_main]

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::http::Method;
use fleetpass_fuzz::{Auth, Harness, block_on, server_error};
use fleetpass_store_postgres::testing::TestDatabase;
use libfuzzer_sys::fuzz_target;

thread_local! {
    /// The database and the harness over it; never dropped (see `fleetpass_fuzz`'s own
    /// harness): the database outlives the run and is swept as stale by a later test run.
    static PG: ManuallyDrop<RefCell<Option<(Rc<Harness>, Rc<TestDatabase>)>>> =
        const { ManuallyDrop::new(RefCell::new(None)) };
}

fn harness() -> Rc<Harness> {
    if let Some((h, _)) = PG.with(|pg| pg.borrow().clone()) {
        return h;
    }
    let (h, db) = block_on(async {
        let db = Rc::new(TestDatabase::fresh().await);
        let store: Arc<dyn fleetpass_ports::Store> = db.store_arc();
        (Rc::new(Harness::on(store).await), db)
    });
    PG.with(|pg| *pg.borrow_mut() = Some((h.clone(), db)));
    h
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    block_on(async {
        h.end_rate_limit_windows().await;
        let scan = h.claimed_scan().await;
        let path = format!("/agent/scans/{scan}/results");
        let answer = h.send(Method::POST, path.clone(), Auth::Agent, data.to_vec()).await;
        assert!(
            !server_error(answer.status, false),
            "{} on the PostgreSQL store: {}",
            answer.status,
            answer.body
        );
        if answer.status.is_success() {
            let bundle = h
                .send(Method::GET, format!("/tenant/scans/{scan}/bundle"), Auth::Admin, Vec::new())
                .await;
            assert!(bundle.status.is_success(), "the bundle of a completed scan: {}", bundle.body);
        }
    });
});

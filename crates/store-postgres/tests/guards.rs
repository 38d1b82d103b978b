//! The guard contract suite (idempotency records and rate limits) against PostgreSQL:
//! every case runs on its own freshly migrated database, dropped when the case ends.

fleetpass_contract::guard_suite!(
    idempotency = fleetpass_store_postgres::testing::TestStore::fresh(),
    limiter = fleetpass_store_postgres::testing::TestStore::fresh(),
);

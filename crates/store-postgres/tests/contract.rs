//! The store contract suite against PostgreSQL: every case runs on its own freshly
//! migrated database, dropped when the case ends.

fleetpass_contract::contract_suite!(fleetpass_store_postgres::testing::TestStore::fresh());

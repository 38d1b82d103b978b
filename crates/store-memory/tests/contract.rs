//! The store contract suite, run against the in-memory store: a fresh store per case.

fleetpass_contract::contract_suite!(async {
    std::sync::Arc::new(fleetpass_store_memory::MemoryStore::new())
});

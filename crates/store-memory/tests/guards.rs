//! The guard contract suite (idempotency records and rate limits) against the
//! in-process adapters: a fresh adapter per case.

fleetpass_contract::guard_suite!(
    idempotency = async { std::sync::Arc::new(fleetpass_store_memory::MemoryIdempotency::new()) },
    limiter = async { std::sync::Arc::new(fleetpass_store_memory::MemoryRateLimiter::new()) },
);

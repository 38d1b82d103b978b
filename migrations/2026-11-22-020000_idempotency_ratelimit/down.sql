-- Reverts the idempotency and rate-limit migration: both tables hold only short-lived
-- operational state, so nothing of value is lost.

DROP TABLE rate_limit_windows;
DROP TABLE idempotency_keys;

-- Idempotency records and shared rate-limit counters (spec §1).
--
-- Neither table references tenants: an idempotency scope is a tenant *or* a client
-- address, and both tables hold short-lived operational state that is purged by time,
-- never by a tenant's deletion.

-- One row per (scope, key). The primary key is the claim: a request claims its key
-- with INSERT … ON CONFLICT DO UPDATE … WHERE (the row is expired or its lease ran
-- out), so of any number of concurrent claims exactly one inserts or takes over.
-- `response` is sealed by the application (AES-256-GCM under the master key): a stored
-- response may carry a secret, and the database never holds it in plain text.
CREATE TABLE idempotency_keys (
    scope            text        NOT NULL,
    key              text        NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 255),
    -- SHA-256 over method, path and query, and body.
    fingerprint      bytea       NOT NULL CHECK (octet_length(fingerprint) = 32),
    -- Who holds the claim: only the holder may complete or abandon it.
    claim_id         uuid        NOT NULL,
    -- A claim whose request never completed lapses here (the process died).
    lease_expires_at timestamptz NOT NULL,
    -- NULL while the request runs.
    response         bytea,
    created_at       timestamptz NOT NULL,
    -- The end of the replay window (24 h after the first claim); purged after it.
    expires_at       timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, key)
);
-- Serves the periodic purge.
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- One row per (key, fixed window). UNLOGGED: counters are worth less than the WAL
-- writes that would make them crash-safe; after a crash the table is empty and the
-- current window starts counting again, which at worst lets one extra window's worth
-- of requests through.
CREATE UNLOGGED TABLE rate_limit_windows (
    key          text        NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    hits         bigint      NOT NULL CHECK (hits > 0),
    CONSTRAINT rate_limit_windows_pkey PRIMARY KEY (key, window_start)
);
-- Serves the periodic purge.
CREATE INDEX rate_limit_windows_window_end_idx ON rate_limit_windows (window_end);

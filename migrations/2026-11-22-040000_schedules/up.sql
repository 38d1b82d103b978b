-- Schedules: a scan request repeated every `interval_minutes`. Each due time enqueues
-- one scan (a row in `scans`) however many replicas run the scheduler; the adapter
-- locks the due schedule `FOR UPDATE SKIP LOCKED` and moves its `next_run_at` in the
-- same transaction as the scan it inserts.
--
-- Tenant isolation is built into the keys as for scans: a schedule references its fleet
-- through the (tenant_id, id) pair, and is deleted with it. The scans a schedule
-- enqueued do not reference it: they stay when it is deleted.

CREATE TABLE schedules (
    id                   uuid        PRIMARY KEY,
    tenant_id            uuid        NOT NULL,
    fleet_id             uuid        NOT NULL,
    -- The fleet's environment, copied at creation (a fleet never moves), so that an
    -- env-scoped caller's listing needs no join. The adapter checks it matches.
    environment_id       uuid        NOT NULL,
    scenario             text        NOT NULL
        CHECK (scenario IN ('inventory', 'ports', 'software', 'compliance')),
    max_duration_minutes integer     NULL CHECK (max_duration_minutes BETWEEN 1 AND 1440),
    max_assets           integer     NULL CHECK (max_assets BETWEEN 1 AND 100000),
    interval_minutes     integer     NOT NULL CHECK (interval_minutes BETWEEN 15 AND 10080),
    enabled              boolean     NOT NULL,
    next_run_at          timestamptz NOT NULL,
    last_run_at          timestamptz NULL,
    created_at           timestamptz NOT NULL,
    CONSTRAINT schedules_fleet_fkey FOREIGN KEY (tenant_id, fleet_id)
        REFERENCES fleets (tenant_id, id) ON DELETE CASCADE
);
-- Serves the newest-first listing. Not unique: nothing references schedules, so no
-- tenant-consistent foreign key needs a (tenant_id, id) key to point at.
CREATE INDEX schedules_tenant_id_idx ON schedules (tenant_id, id DESC);
-- Serves the listing of an env-scoped caller (`environment_id = ANY(...)`).
CREATE INDEX schedules_tenant_environment_id_idx
    ON schedules (tenant_id, environment_id, id DESC);
-- Serves the cascade of a fleet's deletion.
CREATE INDEX schedules_fleet_id_idx ON schedules (fleet_id);
-- The scheduler: enabled schedules by due time. Partial, so disabled schedules cost
-- nothing; the adapter writes `enabled` into the query as the bare column (never a
-- bound parameter), which every plan can match against the predicate.
CREATE INDEX schedules_due_idx ON schedules (next_run_at, id) WHERE enabled;

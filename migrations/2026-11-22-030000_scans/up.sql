-- Scans, the artifacts of completed ones, share links to them, and the service itself
-- as an audit actor (the sweeper that fails and expires overdue scans).
--
-- Tenant isolation is built into the keys as for fleets: a scan references its fleet,
-- and a share link its scan, through (tenant_id, id) pairs. Deleting a fleet cascades
-- to its scans, and from them to their artifacts and share links; the adapter's lock
-- order for that is described in store.rs and store/scans.rs.
--
-- `claimed_by` has no foreign key, on purpose. Scans are requested unclaimed, a claim
-- only ever sets it to an agent of the scan's own fleet (it selects by the agent's
-- tenant and fleet), and agents are only ever deleted together with their fleet, which
-- deletes that fleet's scans in the same statement; so it does not dangle. A key would
-- add nothing but a key-share lock on the agent row to every claim, and a second
-- cascade path (agent -> scan) inside `delete_fleet` to reason about. (Should agents
-- ever be deleted on their own, ON DELETE SET NULL would not do either: the lifecycle
-- check below wants every claimed scan to keep naming its claimer, for the record.)

CREATE TABLE scans (
    id                   uuid        PRIMARY KEY,
    tenant_id            uuid        NOT NULL,
    fleet_id             uuid        NOT NULL,
    -- The fleet's environment, copied at request time (a fleet never moves), so that an
    -- env-scoped caller's listing needs no join. The adapter checks it matches.
    environment_id       uuid        NOT NULL,
    scenario             text        NOT NULL
        CHECK (scenario IN ('inventory', 'ports', 'software', 'compliance')),
    max_duration_minutes integer     NULL CHECK (max_duration_minutes BETWEEN 1 AND 1440),
    not_before           timestamptz NULL,
    not_after            timestamptz NULL,
    max_assets           integer     NULL CHECK (max_assets BETWEEN 1 AND 100000),
    status               text        NOT NULL
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'expired')),
    requested_at         timestamptz NOT NULL,
    -- The claiming agent; see above for why there is no foreign key.
    claimed_by           uuid        NULL,
    claimed_at           timestamptz NULL,
    finished_at          timestamptz NULL,
    CONSTRAINT scans_fleet_fkey FOREIGN KEY (tenant_id, fleet_id)
        REFERENCES fleets (tenant_id, id) ON DELETE CASCADE,
    -- Mirrors the lifecycle: only a claim sets `claimed_by`/`claimed_at` (together), and
    -- they stay through completion or failure; a scan that expired was never claimed;
    -- exactly the three end states have `finished_at`.
    CONSTRAINT scans_lifecycle_check CHECK (
        CASE status
            WHEN 'queued' THEN
                claimed_by IS NULL AND claimed_at IS NULL AND finished_at IS NULL
            WHEN 'running' THEN
                claimed_by IS NOT NULL AND claimed_at IS NOT NULL AND finished_at IS NULL
            WHEN 'expired' THEN
                claimed_by IS NULL AND claimed_at IS NULL AND finished_at IS NOT NULL
            ELSE -- completed, failed
                claimed_by IS NOT NULL AND claimed_at IS NOT NULL AND finished_at IS NOT NULL
        END
    )
);
-- Serves the newest-first listing (the status and scenario filters are applied on this
-- range scan) and, being unique (the primary key implies it), is the target of the
-- (tenant_id, scan_id) foreign key of share links.
CREATE UNIQUE INDEX scans_tenant_id_idx ON scans (tenant_id, id DESC);
-- Serves the listing of one fleet's scans and the cascade of a fleet's deletion.
CREATE INDEX scans_fleet_id_idx ON scans (fleet_id, id DESC);
-- Serves the listing of an env-scoped caller (`environment_id = ANY(...)`).
CREATE INDEX scans_tenant_environment_id_idx ON scans (tenant_id, environment_id, id DESC);
-- The claim and sweeper indexes are partial: they hold only live scans, never the many
-- finished ones. PostgreSQL can use a partial index only where it can prove the query
-- implies the index's predicate, and a prepared statement's generic plan (which it may
-- switch to after five runs) cannot prove `status = $1` implies `status = 'queued'`;
-- it then walks a fleet's whole history for every claim, or the whole table for every
-- sweep. So the adapter writes these statuses into those queries as literals
-- (`status_is` in store/scans.rs), never as bound parameters.
-- Claiming: the oldest queued scan of a fleet.
CREATE INDEX scans_claim_idx ON scans (fleet_id, id) WHERE status = 'queued';
-- The sweeper: running scans by claim time, and queued scans that can expire by their
-- `not_after`.
CREATE INDEX scans_sweep_running_idx ON scans (claimed_at) WHERE status = 'running';
CREATE INDEX scans_sweep_queued_idx
    ON scans (not_after) WHERE status = 'queued' AND not_after IS NOT NULL;

-- What a completed scan keeps, written once with its completion.
CREATE TABLE scan_artifacts (
    scan_id       uuid  PRIMARY KEY REFERENCES scans (id) ON DELETE CASCADE,
    -- text, never json/jsonb: the bundle's bytes are what its SHA-256 (and so every
    -- passport) names, and jsonb would reorder keys and respace it.
    bundle_json   text  NOT NULL,
    -- Lowercase hex, as the port states.
    bundle_sha256 text  NOT NULL CHECK (bundle_sha256 ~ '^[0-9a-f]{64}$'),
    -- The report is derived data that is only ever served whole, so jsonb is fine.
    report        jsonb NOT NULL,
    -- A compact JWS.
    passport      text  NOT NULL
);

CREATE TABLE share_links (
    id               uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    scan_id          uuid        NOT NULL,
    -- SHA-256 of the link's token; opening a link finds it by this.
    digest           bytea       NOT NULL CHECK (octet_length(digest) = 32),
    scope            text        NOT NULL CHECK (scope IN ('report', 'bundle', 'passport')),
    label            text        NULL,
    expires_at       timestamptz NOT NULL,
    max_accesses     integer     NULL CHECK (max_accesses BETWEEN 1 AND 10000),
    -- Counted under the link's row lock by each access; never beyond max_accesses.
    access_count     integer     NOT NULL DEFAULT 0,
    last_accessed_at timestamptz NULL,
    revoked_at       timestamptz NULL,
    created_at       timestamptz NOT NULL,
    hint             text        NOT NULL,
    CONSTRAINT share_links_digest_key UNIQUE (digest),
    CONSTRAINT share_links_access_count_check
        CHECK (access_count >= 0 AND (max_accesses IS NULL OR access_count <= max_accesses)),
    CONSTRAINT share_links_scan_fkey FOREIGN KEY (tenant_id, scan_id)
        REFERENCES scans (tenant_id, id) ON DELETE CASCADE
);
-- Serves a scan's link listing and the cascade of a scan's deletion.
CREATE INDEX share_links_scan_id_idx ON share_links (scan_id, id DESC);

-- The service acts too (the sweeper), without an id. The actor/id check of the fleets
-- migration already requires "no id" of every kind but token and agent, so only the kind
-- check widens; every existing row passes it.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check
    CHECK (actor_kind IN ('token', 'platform', 'public', 'agent', 'system'));

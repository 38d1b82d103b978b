-- Scans that cover a fleet: agent labels (on agents, and on the enrollment tokens that
-- give them), a scan's target, one part per targeted agent of a fan-out scan, and the
-- `cancelled` status.

-- Labels are a JSON object of strings, validated by the domain (at most 32 pairs).
ALTER TABLE agents ADD COLUMN labels jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(labels) = 'object');
ALTER TABLE enrollment_tokens ADD COLUMN labels jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(labels) = 'object');

-- The target in its wire form: "any" (one agent, as every scan before), "all",
-- {"agents": [...]} or {"labels": {...}}. Every existing scan is "any".
ALTER TABLE scans ADD COLUMN target jsonb NOT NULL DEFAULT '"any"';

ALTER TABLE scans DROP CONSTRAINT scans_status_check;
ALTER TABLE scans ADD CONSTRAINT scans_status_check
    CHECK (status IN ('queued', 'running', 'completed', 'failed', 'expired', 'cancelled'));

-- The lifecycle, widened: a fan-out scan never has `claimed_by` (its parts name their
-- agents) and is running from its first part's claim; a cancelled scan has ended, claimed
-- or not. A scan of target "any" keeps exactly the old rule.
ALTER TABLE scans DROP CONSTRAINT scans_lifecycle_check;
ALTER TABLE scans ADD CONSTRAINT scans_lifecycle_check CHECK (
    CASE
        WHEN status = 'cancelled' THEN
            finished_at IS NOT NULL AND (claimed_by IS NULL) = (claimed_at IS NULL OR target <> '"any"')
        WHEN target <> '"any"' THEN
            claimed_by IS NULL AND CASE status
                WHEN 'queued' THEN claimed_at IS NULL AND finished_at IS NULL
                WHEN 'running' THEN claimed_at IS NOT NULL AND finished_at IS NULL
                ELSE finished_at IS NOT NULL -- completed, failed (a fan-out never expires)
            END
        ELSE CASE status
            WHEN 'queued' THEN
                claimed_by IS NULL AND claimed_at IS NULL AND finished_at IS NULL
            WHEN 'running' THEN
                claimed_by IS NOT NULL AND claimed_at IS NOT NULL AND finished_at IS NULL
            WHEN 'expired' THEN
                claimed_by IS NULL AND claimed_at IS NULL AND finished_at IS NOT NULL
            ELSE -- completed, failed
                claimed_by IS NOT NULL AND claimed_at IS NOT NULL AND finished_at IS NOT NULL
        END
    END
);
-- Claiming skips fan-out scans in the fleet-wide claim (their parts are claimed
-- instead); the partial index stays on queued scans, which now includes them.

-- One part per targeted agent. `agent_id` has no foreign key for the reason `claimed_by`
-- has none (see the scans migration): agents go only with their fleet, whose scans, and
-- so their parts, go in the same statement.
CREATE TABLE scan_parts (
    scan_id     uuid        NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    agent_id    uuid        NOT NULL,
    status      text        NOT NULL
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    claimed_at  timestamptz NULL,
    finished_at timestamptz NULL,
    failure     text        NULL CHECK (failure IN ('not_claimed', 'no_results', 'agent_revoked')),
    -- The agent's validated results (JSON text) once it completed; merged into the
    -- scan's bundle when the last part ends.
    results     text        NULL,
    PRIMARY KEY (scan_id, agent_id),
    CONSTRAINT scan_parts_lifecycle_check CHECK (
        CASE status
            WHEN 'queued' THEN claimed_at IS NULL AND finished_at IS NULL AND results IS NULL
            WHEN 'running' THEN claimed_at IS NOT NULL AND finished_at IS NULL AND results IS NULL
            WHEN 'completed' THEN claimed_at IS NOT NULL AND finished_at IS NOT NULL AND results IS NOT NULL
            WHEN 'failed' THEN finished_at IS NOT NULL AND failure IS NOT NULL AND results IS NULL
            ELSE finished_at IS NOT NULL AND results IS NULL -- cancelled
        END
    )
);
-- An agent's claim: its queued parts, oldest scan first (ids are UUID v7).
CREATE INDEX scan_parts_claim_idx ON scan_parts (agent_id, scan_id) WHERE status = 'queued';
-- A revocation's open parts, and the sweeper's.
CREATE INDEX scan_parts_open_idx ON scan_parts (agent_id) WHERE status IN ('queued', 'running');
CREATE INDEX scan_parts_sweep_idx ON scan_parts (scan_id) WHERE status IN ('queued', 'running');

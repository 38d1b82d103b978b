-- Fleets, their enrollment tokens, the agents that enroll with them, JWT signing keys,
-- and agents as audit actors.
--
-- Tenant isolation is built into the keys: a fleet references its environment, and
-- enrollment tokens and agents reference their fleet, through (tenant_id, id) pairs, so
-- a row can never point at another tenant's environment or fleet even if the adapter
-- had a bug. The adapter still checks (and locks) the parent itself first, because it
-- must answer NotFound rather than trip over a foreign key violation.
--
-- Deleting a fleet cascades to its enrollment tokens and agents (their secrets stop
-- working with them). Deleting an environment that a fleet lives in is refused by the
-- adapter with ENVIRONMENT_IN_USE; the foreign key (no ON DELETE action) is the backstop.

-- The target of the (tenant_id, environment_id) foreign key of fleets. Implied by the
-- primary key, so it can never be violated. (The foundation's non-unique
-- environments_tenant_id_idx stays: environments are few, and it is not ours to drop.)
ALTER TABLE environments ADD CONSTRAINT environments_tenant_id_key UNIQUE (tenant_id, id);

CREATE TABLE fleets (
    id             uuid        PRIMARY KEY,
    tenant_id      uuid        NOT NULL REFERENCES tenants (id),
    -- Fixed at creation.
    environment_id uuid        NOT NULL,
    name           text        NOT NULL,
    created_at     timestamptz NOT NULL,
    CONSTRAINT fleets_environment_fkey FOREIGN KEY (tenant_id, environment_id)
        REFERENCES environments (tenant_id, id)
);
-- Serves the newest-first listing, and (being unique, which the primary key implies)
-- is also the target of the (tenant_id, fleet_id) foreign keys below.
CREATE UNIQUE INDEX fleets_tenant_id_idx ON fleets (tenant_id, id DESC);
-- Serves the listing of an env-scoped caller (`environment_id = ANY(...)`) and the
-- "does a fleet live here?" check before an environment is deleted.
CREATE INDEX fleets_tenant_environment_id_idx ON fleets (tenant_id, environment_id, id DESC);

CREATE TABLE enrollment_tokens (
    id         uuid        PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    fleet_id   uuid        NOT NULL,
    -- SHA-256 of the secret; enrollment finds the token by it.
    digest     bytea       NOT NULL CHECK (octet_length(digest) = 32),
    max_uses   integer     NOT NULL CHECK (max_uses BETWEEN 1 AND 1000),
    -- Claimed under a row lock by each enrollment; never beyond max_uses.
    uses       integer     NOT NULL DEFAULT 0 CHECK (uses BETWEEN 0 AND max_uses),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz NULL,
    hint       text        NOT NULL,
    CONSTRAINT enrollment_tokens_digest_key UNIQUE (digest),
    CONSTRAINT enrollment_tokens_fleet_fkey FOREIGN KEY (tenant_id, fleet_id)
        REFERENCES fleets (tenant_id, id) ON DELETE CASCADE
);
-- Serves a fleet's token listing and the cascade of a fleet's deletion.
CREATE INDEX enrollment_tokens_fleet_id_idx ON enrollment_tokens (fleet_id, id DESC);

CREATE TABLE agents (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    fleet_id      uuid        NOT NULL,
    hostname      text        NOT NULL,
    platform      text        NOT NULL,
    agent_version text        NULL,
    -- SHA-256 of the agent's long-lived secret.
    secret_digest bytea       NOT NULL CHECK (octet_length(secret_digest) = 32),
    enrolled_at   timestamptz NOT NULL,
    last_seen_at  timestamptz NULL,
    revoked_at    timestamptz NULL,
    CONSTRAINT agents_secret_digest_key UNIQUE (secret_digest),
    CONSTRAINT agents_fleet_fkey FOREIGN KEY (tenant_id, fleet_id)
        REFERENCES fleets (tenant_id, id) ON DELETE CASCADE
);
-- Serves a fleet's agent listing and the cascade of a fleet's deletion.
CREATE INDEX agents_fleet_id_idx ON agents (fleet_id, id DESC);

-- Platform-wide (not per tenant). The private key is sealed by the service with the
-- configured master key before it gets here.
CREATE TABLE signing_keys (
    kid                text        NOT NULL,
    sealed_private_key bytea       NOT NULL,
    public_key         bytea       NOT NULL,
    created_at         timestamptz NOT NULL,
    retired_at         timestamptz NULL,
    -- Named after `constraint::SIGNING_KEY_ID`: a taken kid is a Conflict by this name.
    CONSTRAINT signing_keys_pkey PRIMARY KEY (kid)
);

-- Agents act too (enrolling, for one), and like tokens they carry an id. Both new
-- checks only widen the old ones, so every existing row passes them.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check
    CHECK (actor_kind IN ('token', 'platform', 'public', 'agent'));
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_check;
-- Mirrors `AuditActor`: token and agent actors have an id, the others none.
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_check
    CHECK ((actor_kind IN ('token', 'agent')) = (actor_id IS NOT NULL));

-- Fleetpass foundation: tenants, environments, principals, API tokens and their secrets,
-- and the audit log.
--
-- Unique constraints are named after `fleetpass_ports::store::constraint`: the adapter
-- turns a unique violation into `RepoError::Conflict` by that name, so renaming one here
-- is a breaking change there.
--
-- Every tenant listing is keyset-paginated newest first (`WHERE tenant_id = $1 AND
-- id < $cursor ORDER BY id DESC`), so each tenant-scoped table has an index that serves
-- exactly that range scan.
--
-- Foreign keys to tenants have no ON DELETE action on purpose: nothing deletes tenants
-- yet, and when something does it should be a deliberate, audited operation rather than
-- a silent cascade.

CREATE TABLE tenants (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT tenants_name_key UNIQUE (name)
);

CREATE TABLE environments (
    id         uuid        PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    name       text        NOT NULL,
    created_at timestamptz NOT NULL,
    -- Also serves lookups by name within a tenant.
    CONSTRAINT environments_tenant_name_key UNIQUE (tenant_id, name)
);
CREATE INDEX environments_tenant_id_idx ON environments (tenant_id, id DESC);

CREATE TABLE principals (
    id         uuid        PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    kind       text        NOT NULL CHECK (kind IN ('user', 'service_account')),
    -- Users: email (lowercased by the domain) and an optional display name.
    -- Service accounts: name only.
    email      text        NULL,
    name       text        NULL,
    role       text        NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    disabled   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    CONSTRAINT principals_kind_names_check CHECK (
        (kind = 'user' AND email IS NOT NULL)
        OR (kind = 'service_account' AND email IS NULL AND name IS NOT NULL)
    )
);
CREATE UNIQUE INDEX principals_tenant_email_key
    ON principals (tenant_id, email) WHERE kind = 'user';
CREATE UNIQUE INDEX principals_tenant_sa_name_key
    ON principals (tenant_id, name) WHERE kind = 'service_account';
-- Principals are always listed by kind (users or service accounts), so the kind sits
-- between the tenant and the id to keep that listing a single range scan.
CREATE INDEX principals_tenant_kind_id_idx ON principals (tenant_id, kind, id DESC);

CREATE TABLE api_tokens (
    id                    uuid        PRIMARY KEY,
    tenant_id             uuid        NOT NULL REFERENCES tenants (id),
    -- NULL once the owner is deleted; the token is revoked in the same transaction.
    owner_id              uuid        NULL REFERENCES principals (id) ON DELETE SET NULL,
    name                  text        NOT NULL,
    role                  text        NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    all_environments      boolean     NOT NULL,
    -- No foreign key is possible on an array; the adapter locks the environments while
    -- it writes a token and checks for scoped tokens before deleting an environment.
    environment_ids       uuid[]      NOT NULL DEFAULT '{}',
    rate_limit_per_minute integer     NULL CHECK (rate_limit_per_minute BETWEEN 1 AND 100000),
    expires_at            timestamptz NOT NULL,
    created_at            timestamptz NOT NULL,
    last_used_at          timestamptz NULL,
    revoked_at            timestamptz NULL,
    hint                  text        NOT NULL,
    -- Mirrors `EnvScope`: either all environments, or a non-empty list without NULLs.
    CONSTRAINT api_tokens_scope_check CHECK (
        (all_environments AND cardinality(environment_ids) = 0)
        OR (NOT all_environments AND cardinality(environment_ids) > 0
            AND array_position(environment_ids, NULL) IS NULL)
    )
);
CREATE INDEX api_tokens_tenant_id_idx ON api_tokens (tenant_id, id DESC);
-- Serves revoking an owner's tokens and the ON DELETE SET NULL of a deleted owner.
CREATE INDEX api_tokens_owner_id_idx ON api_tokens (owner_id);
-- Serves "is a live token scoped to this environment?" before deleting one.
CREATE INDEX api_tokens_live_environment_ids_idx
    ON api_tokens USING gin (environment_ids) WHERE revoked_at IS NULL;

-- A token has one current secret and, after rotations, older ones that work until
-- `valid_until`. Only SHA-256 digests are stored.
CREATE TABLE api_token_secrets (
    digest      bytea       PRIMARY KEY CHECK (octet_length(digest) = 32),
    token_id    uuid        NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    valid_until timestamptz NULL
);
CREATE INDEX api_token_secrets_token_id_idx ON api_token_secrets (token_id);

CREATE TABLE audit_events (
    id         uuid        PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    actor_kind text        NOT NULL CHECK (actor_kind IN ('token', 'platform', 'public')),
    actor_id   uuid        NULL,
    action     text        NOT NULL,
    target_id  uuid        NULL,
    at         timestamptz NOT NULL,
    details    jsonb       NOT NULL DEFAULT '{}',
    -- Mirrors `AuditActor`: only a token actor has an id.
    CONSTRAINT audit_events_actor_check CHECK ((actor_kind = 'token') = (actor_id IS NOT NULL))
);
CREATE INDEX audit_events_tenant_id_idx ON audit_events (tenant_id, id DESC);
-- One index per equality filter of the audit listing, each ending in `id DESC` so a
-- filtered page is still one range scan.
CREATE INDEX audit_events_tenant_action_idx ON audit_events (tenant_id, action, id DESC);
CREATE INDEX audit_events_tenant_actor_idx
    ON audit_events (tenant_id, actor_id, id DESC) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_events_tenant_target_idx
    ON audit_events (tenant_id, target_id, id DESC) WHERE target_id IS NOT NULL;

-- The per-tenant hash chain over the audit log (issue 22). Each event gets its place
-- in its tenant's chain (seq 1, 2, …) and digest = SHA-256(prev_digest ‖ JCS(body)),
-- computed by the service (RFC 8785 is not SQL's to do). Events written before this
-- migration keep NULLs: they stay listed but are outside the chain, which starts at a
-- tenant's first event after it with the genesis prev (32 zero bytes).
ALTER TABLE audit_events
    ADD COLUMN seq bigint NULL CHECK (seq IS NULL OR seq > 0),
    ADD COLUMN prev_digest bytea NULL CHECK (prev_digest IS NULL OR length(prev_digest) = 32),
    ADD COLUMN digest bytea NULL CHECK (digest IS NULL OR length(digest) = 32),
    ADD CONSTRAINT audit_events_chained CHECK ((seq IS NULL) = (digest IS NULL)
                                               AND (seq IS NULL) = (prev_digest IS NULL));

-- No two events of a tenant at one seq: the last line of defence against a fork, which
-- the head row's lock already prevents. Also the export's keyset.
CREATE UNIQUE INDEX audit_events_tenant_seq_key ON audit_events (tenant_id, seq)
    WHERE seq IS NOT NULL;

-- The head of each tenant's chain. A writer takes its row FOR UPDATE as the last lock
-- of its transaction, so the chain is one total order per tenant across replicas.
CREATE TABLE audit_heads (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
    seq bigint NOT NULL CHECK (seq >= 0),
    digest bytea NOT NULL CHECK (length(digest) = 32)
);

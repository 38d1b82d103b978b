DROP TABLE audit_heads;
DROP INDEX audit_events_tenant_seq_key;
ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_chained,
    DROP COLUMN digest,
    DROP COLUMN prev_digest,
    DROP COLUMN seq;

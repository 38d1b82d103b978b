-- Reverts the fleets migration: drops its tables, dependents first, and restores the
-- foundation's audit actor checks.

DROP TABLE signing_keys;
DROP TABLE agents;
DROP TABLE enrollment_tokens;
DROP TABLE fleets;
ALTER TABLE environments DROP CONSTRAINT environments_tenant_id_key;

-- Events by agents may exist and are history, so they stay: the old checks come back
-- NOT VALID, which holds every new row to them without judging the old ones.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_check
    CHECK ((actor_kind = 'token') = (actor_id IS NOT NULL)) NOT VALID;
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check
    CHECK (actor_kind IN ('token', 'platform', 'public')) NOT VALID;

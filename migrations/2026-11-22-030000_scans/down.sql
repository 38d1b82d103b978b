-- Reverts the scans migration: drops its tables, dependents first, and restores the
-- fleets migration's audit actor kind check.

DROP TABLE share_links;
DROP TABLE scan_artifacts;
DROP TABLE scans;

-- Events by the system may exist and are history, so they stay: the old check comes
-- back NOT VALID, which holds every new row to it without judging the old ones.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check
    CHECK (actor_kind IN ('token', 'platform', 'public', 'agent')) NOT VALID;

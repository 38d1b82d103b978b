ALTER TABLE audit_events DROP COLUMN environment_ids;

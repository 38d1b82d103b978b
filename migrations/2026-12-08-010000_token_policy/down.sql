-- Tenants go back to having no token policy; the audit events of its changes stay.
ALTER TABLE tenants
    DROP COLUMN max_enrollment_hours,
    DROP COLUMN max_token_days;

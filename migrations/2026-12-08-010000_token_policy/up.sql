-- A tenant's token policy: the longest lifetime of a new API token (days) and of a new
-- enrollment token (hours). NULL is no maximum beyond the lifetimes' own bounds, which
-- is every tenant's state before this migration, so nothing changes until an admin
-- sets one. Columns of the tenant rather than a table of their own: one row per
-- tenant either way, and the tenant row is what authentication already reads.
ALTER TABLE tenants
    ADD COLUMN max_token_days integer NULL
        CHECK (max_token_days BETWEEN 1 AND 365),
    ADD COLUMN max_enrollment_hours integer NULL
        CHECK (max_enrollment_hours BETWEEN 1 AND 720);

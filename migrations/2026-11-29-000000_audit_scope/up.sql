-- The environments an audit event concerns, so that an environment-scoped admin's
-- listing is filtered in the query (full pages, cursors that stay right). NULL marks a
-- tenant-wide event (principals, all-environment tokens), which only all-environments
-- admins read; events written before this column existed are tenant-wide.
ALTER TABLE audit_events
    ADD COLUMN environment_ids uuid[] NULL
        CHECK (environment_ids IS NULL
               OR (cardinality(environment_ids) > 0 AND array_position(environment_ids, NULL) IS NULL));

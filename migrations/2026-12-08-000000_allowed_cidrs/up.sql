-- Network restrictions on credentials (issue 21): the networks an API token or an
-- enrollment token may be used from, as canonical CIDR text (`10.0.0.0/8`). Empty, the
-- default every existing row gets, means anywhere. The domain parses them again on
-- read; at most 32 entries.
ALTER TABLE api_tokens
    ADD COLUMN allowed_cidrs text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(allowed_cidrs) <= 32 AND array_position(allowed_cidrs, NULL) IS NULL);
ALTER TABLE enrollment_tokens
    ADD COLUMN allowed_cidrs text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(allowed_cidrs) <= 32 AND array_position(allowed_cidrs, NULL) IS NULL);

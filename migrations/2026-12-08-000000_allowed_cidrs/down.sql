ALTER TABLE enrollment_tokens DROP COLUMN allowed_cidrs;
ALTER TABLE api_tokens DROP COLUMN allowed_cidrs;

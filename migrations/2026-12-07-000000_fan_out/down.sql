DROP TABLE scan_parts;
DELETE FROM scans WHERE target <> '"any"' OR status = 'cancelled';
ALTER TABLE scans DROP CONSTRAINT scans_lifecycle_check;
ALTER TABLE scans ADD CONSTRAINT scans_lifecycle_check CHECK (
    CASE status
        WHEN 'queued' THEN claimed_by IS NULL AND claimed_at IS NULL AND finished_at IS NULL
        WHEN 'running' THEN claimed_by IS NOT NULL AND claimed_at IS NOT NULL AND finished_at IS NULL
        WHEN 'expired' THEN claimed_by IS NULL AND claimed_at IS NULL AND finished_at IS NOT NULL
        ELSE claimed_by IS NOT NULL AND claimed_at IS NOT NULL AND finished_at IS NOT NULL
    END
);
ALTER TABLE scans DROP CONSTRAINT scans_status_check;
ALTER TABLE scans ADD CONSTRAINT scans_status_check
    CHECK (status IN ('queued', 'running', 'completed', 'failed', 'expired'));
ALTER TABLE scans DROP COLUMN target;
ALTER TABLE enrollment_tokens DROP COLUMN labels;
ALTER TABLE agents DROP COLUMN labels;

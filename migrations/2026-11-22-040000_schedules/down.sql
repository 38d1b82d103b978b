-- Reverts the schedules migration. The scans schedules enqueued never referenced them,
-- so they stay.

DROP TABLE schedules;

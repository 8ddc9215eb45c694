-- The scheduled connection health check (heartbeat) after onboarding: when the next one is due
-- (claimed by moving it on, so one replica runs it per interval), and what the last one measured.
ALTER TABLE connections ADD COLUMN health_due_at TEXT;
ALTER TABLE connections ADD COLUMN heartbeat_at TEXT;
ALTER TABLE connections ADD COLUMN heartbeat_round_trip_ms BIGINT;

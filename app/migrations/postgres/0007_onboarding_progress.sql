-- Onboarding progress, so that a run cut short by a crash resumes from its last completed step
-- instead of starting again. Each start (Connect or Retry) begins a new run number; each step of
-- that run is recorded in the same transaction as its event.
ALTER TABLE connections ADD COLUMN onboarding_run BIGINT NOT NULL DEFAULT 0;

-- step: 'provider_started' (detail: the provider's settings groups, a JSON array) or
-- 'group:<name>' (that group is stored in synced_settings and its "Synced" event recorded).
CREATE TABLE onboarding_steps (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    run BIGINT NOT NULL,
    step TEXT NOT NULL,
    detail TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (connection_id, run, step)
);

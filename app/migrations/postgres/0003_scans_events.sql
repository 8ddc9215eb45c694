ALTER TABLE invitations ADD COLUMN registration_code TEXT;
ALTER TABLE connections ADD COLUMN registration_code TEXT;
ALTER TABLE connections ADD COLUMN consumer_id TEXT;
-- The connection's shared secret with the provider (base64). Never returned by the API.
ALTER TABLE connections ADD COLUMN secret TEXT;
ALTER TABLE connections ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE scan_runs (
    id BIGSERIAL PRIMARY KEY,
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    suite TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT
);
CREATE INDEX scan_runs_by_connection ON scan_runs (connection_id, id);

CREATE TABLE scan_results (
    id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES scan_runs(id),
    connection_id BIGINT NOT NULL,
    check_id TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    retryable BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX scan_results_by_connection ON scan_results (connection_id, check_id, id);

-- Every event shown live on the page, with a per-connection sequence number for replay.
CREATE TABLE connection_events (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    seq BIGINT NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (connection_id, seq)
);

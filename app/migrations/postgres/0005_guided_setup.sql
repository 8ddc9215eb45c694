-- Guided Setup: who marked which activity complete, when. A log (latest row per activity wins),
-- so the audit of every completion is kept.
CREATE TABLE guided_completions (
    id BIGSERIAL PRIMARY KEY,
    activity TEXT NOT NULL,
    completed_by TEXT NOT NULL,
    completed_at TEXT NOT NULL
);
CREATE INDEX guided_completions_by_activity ON guided_completions (activity, id);

-- Every verification run ("connection" round trip or "data" sample), kept so the page shows the
-- latest one after a reload and the history of attempts stays. `ok` is 0/1 (no booleans on Any);
-- `detail` is JSON text (message, measured link statuses, tables).
CREATE TABLE verification_results (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    ok BIGINT NOT NULL,
    latency_ms BIGINT,
    detail TEXT NOT NULL,
    run_by TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX verification_results_by_kind ON verification_results (connection_id, kind, id);

-- The per-user cap on open event streams, over all replicas (app/src/server/stream_slots.rs):
-- each replica says it is alive (its heartbeat pushes expires_at, milliseconds since the Unix
-- epoch) and records the streams it holds open; a dead replica's streams stop counting when its
-- heartbeat expires. Used with PostgreSQL; with SQLite there is one process, counted in memory.
CREATE TABLE replicas (
    owner TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE TABLE open_streams (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    opened_ms BIGINT NOT NULL
);
CREATE INDEX open_streams_by_user ON open_streams (user_id);

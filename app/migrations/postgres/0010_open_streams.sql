-- The per-user cap on open event streams, over all replicas (app/src/server/stream_slots.rs):
-- each replica says it is alive (its heartbeat pushes expires_at, milliseconds since the Unix
-- epoch) and counts the streams it holds open per user; a dead replica's streams stop counting
-- when its heartbeat expires. Used with PostgreSQL; with SQLite there is one process, counted
-- in memory.
CREATE TABLE replicas (
    owner TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE TABLE replica_streams (
    owner TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    open BIGINT NOT NULL,
    PRIMARY KEY (owner, user_id)
);

-- The health dashboard's history: every heartbeat (what it measured and the statuses it implied),
-- and each direction's messages counted per hour. Both are kept 7 days (the sweep prunes them).
CREATE TABLE heartbeats (
    id BIGSERIAL PRIMARY KEY,
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    at TEXT NOT NULL,
    outbound_ms BIGINT,
    outbound TEXT NOT NULL,
    inbound TEXT NOT NULL
);
CREATE INDEX heartbeats_by_time ON heartbeats (at, connection_id);

CREATE TABLE link_traffic (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    direction TEXT NOT NULL,
    hour TEXT NOT NULL,
    messages BIGINT NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, direction, hour)
);
CREATE INDEX link_traffic_by_hour ON link_traffic (hour);

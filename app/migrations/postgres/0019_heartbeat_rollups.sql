-- The heartbeat history read without reading every heartbeat (rules: model::rollup). Per
-- connection and hour: how many heartbeats, answered, each health counted, and the round trips in
-- a histogram (bucket upper bounds in ms, as model::rollup::RTT_BOUNDS_MS: 1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 5000, 7000, 10000, 15000, 20000, 30000,
-- then everything above). And each connection's latest heartbeat with its Down streaks, which the
-- issues a Down direction opens are read from. Both filled from the heartbeats kept so far.
CREATE TABLE heartbeat_hours (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    hour TEXT NOT NULL,
    beats BIGINT NOT NULL,
    answered BIGINT NOT NULL,
    up BIGINT NOT NULL,
    slow BIGINT NOT NULL,
    down BIGINT NOT NULL,
    min_ms BIGINT,
    max_ms BIGINT,
    rtt_00 BIGINT NOT NULL DEFAULT 0,
    rtt_01 BIGINT NOT NULL DEFAULT 0,
    rtt_02 BIGINT NOT NULL DEFAULT 0,
    rtt_03 BIGINT NOT NULL DEFAULT 0,
    rtt_04 BIGINT NOT NULL DEFAULT 0,
    rtt_05 BIGINT NOT NULL DEFAULT 0,
    rtt_06 BIGINT NOT NULL DEFAULT 0,
    rtt_07 BIGINT NOT NULL DEFAULT 0,
    rtt_08 BIGINT NOT NULL DEFAULT 0,
    rtt_09 BIGINT NOT NULL DEFAULT 0,
    rtt_10 BIGINT NOT NULL DEFAULT 0,
    rtt_11 BIGINT NOT NULL DEFAULT 0,
    rtt_12 BIGINT NOT NULL DEFAULT 0,
    rtt_13 BIGINT NOT NULL DEFAULT 0,
    rtt_14 BIGINT NOT NULL DEFAULT 0,
    rtt_15 BIGINT NOT NULL DEFAULT 0,
    rtt_16 BIGINT NOT NULL DEFAULT 0,
    rtt_17 BIGINT NOT NULL DEFAULT 0,
    rtt_18 BIGINT NOT NULL DEFAULT 0,
    rtt_19 BIGINT NOT NULL DEFAULT 0,
    rtt_20 BIGINT NOT NULL DEFAULT 0,
    rtt_21 BIGINT NOT NULL DEFAULT 0,
    rtt_22 BIGINT NOT NULL DEFAULT 0,
    rtt_23 BIGINT NOT NULL DEFAULT 0,
    rtt_24 BIGINT NOT NULL DEFAULT 0,
    rtt_25 BIGINT NOT NULL DEFAULT 0,
    rtt_26 BIGINT NOT NULL DEFAULT 0,
    rtt_27 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (connection_id, hour)
);
CREATE INDEX heartbeat_hours_by_hour ON heartbeat_hours (hour);

INSERT INTO heartbeat_hours (connection_id, hour, beats, answered, up, slow, down, min_ms, max_ms, rtt_00, rtt_01, rtt_02, rtt_03, rtt_04, rtt_05, rtt_06, rtt_07, rtt_08, rtt_09, rtt_10, rtt_11, rtt_12, rtt_13, rtt_14, rtt_15, rtt_16, rtt_17, rtt_18, rtt_19, rtt_20, rtt_21, rtt_22, rtt_23, rtt_24, rtt_25, rtt_26, rtt_27)
SELECT connection_id, substr(at, 1, 13) || ':00:00.000000Z', COUNT(*), COUNT(outbound_ms),
    SUM(CASE WHEN outbound = 'up' AND inbound = 'up' THEN 1 ELSE 0 END),
    SUM(CASE WHEN (outbound = 'slow' OR inbound = 'slow') AND outbound <> 'down' AND inbound <> 'down' THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound = 'down' OR inbound = 'down' THEN 1 ELSE 0 END),
    MIN(outbound_ms), MAX(outbound_ms),
    SUM(CASE WHEN outbound_ms <= 1 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 1 AND outbound_ms <= 2 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 2 AND outbound_ms <= 3 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 3 AND outbound_ms <= 5 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 5 AND outbound_ms <= 7 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 7 AND outbound_ms <= 10 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 10 AND outbound_ms <= 15 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 15 AND outbound_ms <= 20 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 20 AND outbound_ms <= 30 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 30 AND outbound_ms <= 50 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 50 AND outbound_ms <= 70 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 70 AND outbound_ms <= 100 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 100 AND outbound_ms <= 150 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 150 AND outbound_ms <= 200 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 200 AND outbound_ms <= 300 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 300 AND outbound_ms <= 500 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 500 AND outbound_ms <= 700 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 700 AND outbound_ms <= 1000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 1000 AND outbound_ms <= 1500 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 1500 AND outbound_ms <= 2000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 2000 AND outbound_ms <= 3000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 3000 AND outbound_ms <= 5000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 5000 AND outbound_ms <= 7000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 7000 AND outbound_ms <= 10000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 10000 AND outbound_ms <= 15000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 15000 AND outbound_ms <= 20000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 20000 AND outbound_ms <= 30000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN outbound_ms > 30000 THEN 1 ELSE 0 END)
FROM heartbeats GROUP BY connection_id, substr(at, 1, 13);

CREATE TABLE heartbeat_latest (
    connection_id BIGINT PRIMARY KEY REFERENCES connections(id),
    at TEXT,
    round_trip_ms BIGINT,
    answered_at TEXT,
    outbound_down_since TEXT,
    outbound_down_beats BIGINT NOT NULL DEFAULT 0,
    inbound_down_since TEXT,
    inbound_down_beats BIGINT NOT NULL DEFAULT 0
);

INSERT INTO heartbeat_latest (connection_id, at, round_trip_ms, answered_at, outbound_down_since,
    outbound_down_beats, inbound_down_since, inbound_down_beats)
SELECT c.id,
    (SELECT MAX(h.at) FROM heartbeats h WHERE h.connection_id = c.id),
    (SELECT h.outbound_ms FROM heartbeats h WHERE h.connection_id = c.id ORDER BY h.at DESC, h.id DESC LIMIT 1),
    (SELECT MAX(h.at) FROM heartbeats h WHERE h.connection_id = c.id AND h.outbound_ms IS NOT NULL),
    (SELECT MIN(h.at) FROM heartbeats h WHERE h.connection_id = c.id AND h.outbound = 'down' AND h.at > COALESCE((SELECT MAX(x.at) FROM heartbeats x WHERE x.connection_id = c.id AND x.outbound <> 'down'), '')),
    (SELECT COUNT(*) FROM heartbeats h WHERE h.connection_id = c.id AND h.outbound = 'down' AND h.at > COALESCE((SELECT MAX(x.at) FROM heartbeats x WHERE x.connection_id = c.id AND x.outbound <> 'down'), '')),
    (SELECT MIN(h.at) FROM heartbeats h WHERE h.connection_id = c.id AND h.inbound = 'down' AND h.at > COALESCE((SELECT MAX(x.at) FROM heartbeats x WHERE x.connection_id = c.id AND x.inbound <> 'down'), '')),
    (SELECT COUNT(*) FROM heartbeats h WHERE h.connection_id = c.id AND h.inbound = 'down' AND h.at > COALESCE((SELECT MAX(x.at) FROM heartbeats x WHERE x.connection_id = c.id AND x.inbound <> 'down'), ''))
FROM connections c
WHERE c.onboarding = 'complete' AND EXISTS (SELECT 1 FROM heartbeats h WHERE h.connection_id = c.id);

-- Written, never read: the latest heartbeat is heartbeat_latest's.
ALTER TABLE connections DROP COLUMN heartbeat_at;
ALTER TABLE connections DROP COLUMN heartbeat_round_trip_ms;

-- Off-boarded connections keep their record and history but give up their company and provider
-- URL, so those are unique among live connections only. SQLite cannot drop a column's UNIQUE:
-- the table is rebuilt (SQLite's documented procedure: the new table renamed into place, its
-- indexes made again). It needs foreign keys off, which only holds outside a transaction:
-- `Db::connect` runs the SQLite migrations on a connection with them off and checks them after.
CREATE TABLE connections_rebuilt (
    id INTEGER PRIMARY KEY,
    company_id BIGINT NOT NULL REFERENCES companies(id),
    url TEXT NOT NULL,
    invitation_id BIGINT REFERENCES invitations(id),
    contact_email TEXT NOT NULL,
    state TEXT NOT NULL,
    registered BIGINT NOT NULL,
    onboarding TEXT NOT NULL,
    outbound TEXT NOT NULL,
    inbound TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    registration_code TEXT,
    consumer_id TEXT,
    secret TEXT,
    event_seq BIGINT NOT NULL DEFAULT 0,
    auth_state TEXT,
    inbound_seen_at TEXT,
    onboarding_run BIGINT NOT NULL DEFAULT 0,
    health_due_at TEXT,
    heartbeat_at TEXT,
    heartbeat_round_trip_ms BIGINT
);
INSERT INTO connections_rebuilt (id, company_id, url, invitation_id, contact_email, state,
    registered, onboarding, outbound, inbound, version, created_at, updated_at, registration_code,
    consumer_id, secret, event_seq, auth_state, inbound_seen_at, onboarding_run, health_due_at,
    heartbeat_at, heartbeat_round_trip_ms)
SELECT id, company_id, url, invitation_id, contact_email, state, registered, onboarding,
    outbound, inbound, version, created_at, updated_at, registration_code, consumer_id, secret,
    event_seq, auth_state, inbound_seen_at, onboarding_run, health_due_at, heartbeat_at,
    heartbeat_round_trip_ms
FROM connections;
DROP TABLE connections;
ALTER TABLE connections_rebuilt RENAME TO connections;
CREATE UNIQUE INDEX connections_consumer_id_unique ON connections (consumer_id);
CREATE UNIQUE INDEX connections_live_company ON connections (company_id) WHERE state <> 'off_boarded';
CREATE UNIQUE INDEX connections_live_url ON connections (url) WHERE state <> 'off_boarded';

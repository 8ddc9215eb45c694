-- The pending authorisation's anti-forgery value, and when the provider last reached us.
ALTER TABLE connections ADD COLUMN auth_state TEXT;
ALTER TABLE connections ADD COLUMN inbound_seen_at TEXT;

-- Settings synced from the provider during onboarding, one row per group (upserted: steps are
-- idempotent, so a resumed run rewrites the same rows).
CREATE TABLE synced_settings (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    grp TEXT NOT NULL,
    body TEXT NOT NULL,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, grp)
);

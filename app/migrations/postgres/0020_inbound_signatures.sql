-- The signatures of accepted provider calls, each kept until its timestamp has left the clock
-- window (after which the clock check refuses the call anyway): a captured call is refused as a
-- replay by every replica, and after a restart, not just by the process that took it first.
CREATE TABLE inbound_signatures (
    signature TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX inbound_signatures_expiry ON inbound_signatures (expires_at);

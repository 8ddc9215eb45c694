-- Failed sign-ins, counted in the database so that every replica throttles on the same counts
-- (app/src/server/throttle.rs). key: 'account:<address>:<email>' or 'address:<address>';
-- last_ms: milliseconds since the Unix epoch of the latest failure.
CREATE TABLE sign_in_failures (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_ms BIGINT NOT NULL
);

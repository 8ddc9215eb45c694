-- Background work (a connection's scan or onboarding run, the email delivery pass) is claimed
-- with a lease before it runs, so that of several replicas on one database exactly one runs it,
-- and another takes it over when the holder dies (the lease expires) or stops (it hands it back).
-- work: 'scan:<connection id>', 'onboarding:<connection id>', 'outbox'.
-- owner: the replica's id for this process lifetime. expires_at: milliseconds since the Unix
-- epoch by the holder's clock, pushed forward by its heartbeat.
CREATE TABLE work_leases (
    work TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Data migration: the provider's Impact tables copied into this instance's database. One row per
-- migration; its tables with where each stands (the provider's opaque cursor after the last page
-- stored, so a migration cut short by a crash carries on from there); and the records themselves.
CREATE TABLE data_migrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    state TEXT NOT NULL,
    started_by TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX data_migrations_by_connection ON data_migrations (connection_id, id);
-- One running migration per connection, whichever replica starts it.
CREATE UNIQUE INDEX data_migrations_one_running ON data_migrations (connection_id) WHERE state = 'running';

CREATE TABLE data_migration_tables (
    migration_id BIGINT NOT NULL REFERENCES data_migrations(id),
    ord BIGINT NOT NULL,
    name TEXT NOT NULL,
    total BIGINT NOT NULL,
    copied BIGINT NOT NULL,
    after_cursor TEXT,
    done BIGINT NOT NULL,
    PRIMARY KEY (migration_id, name)
);

-- The migrated records, keyed by the provider's record id; `migration_id` is the migration that
-- last wrote the record, so a table copied to its end drops what the provider no longer has.
CREATE TABLE impact_records (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    tbl TEXT NOT NULL,
    record_id TEXT NOT NULL,
    body TEXT NOT NULL,
    migration_id BIGINT NOT NULL,
    migrated_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, tbl, record_id)
);

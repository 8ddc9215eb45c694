-- The issue workflow: per issue (a check's id or a heartbeat direction's, per connection) who it
-- is assigned to and until when it is muted; who follows it; its activity notes. And the due time
-- of periodic work that one replica does per period (the issues digest).
CREATE TABLE issue_states (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    issue TEXT NOT NULL,
    assignee TEXT,
    muted_until TEXT,
    PRIMARY KEY (connection_id, issue)
);
CREATE TABLE issue_followers (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    issue TEXT NOT NULL,
    email TEXT NOT NULL,
    PRIMARY KEY (connection_id, issue, email)
);
CREATE TABLE issue_notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    issue TEXT NOT NULL,
    author TEXT NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX issue_notes_by_issue ON issue_notes (connection_id, issue, id);
CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    due_at TEXT NOT NULL
);

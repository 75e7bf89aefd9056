-- Tasks, their callback deliveries, every attempt, and the profile.
-- Times are Unix nanoseconds on the sender's clock.

CREATE TABLE tasks (
    seq                      INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id                  TEXT NOT NULL UNIQUE,
    type                     TEXT NOT NULL,
    instruction              TEXT NOT NULL DEFAULT '',
    params                   TEXT NOT NULL DEFAULT '{}',
    status                   TEXT NOT NULL,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    completed_at             INTEGER,
    callback_url             TEXT,
    callback_succeeded       INTEGER,
    callback_succeeded_at    INTEGER,
    response                 TEXT,
    metadata                 TEXT NOT NULL DEFAULT '{}',
    unique_id                TEXT,
    unique_claim             TEXT UNIQUE, -- unique_id of a task that holds it (error tasks do not)
    is_test                  INTEGER NOT NULL DEFAULT 0,
    customer_review_status   TEXT,
    customer_review_comments TEXT NOT NULL DEFAULT '[]',
    prior_responses          TEXT NOT NULL DEFAULT '[]',
    auto_complete_at         INTEGER
);
CREATE INDEX tasks_created ON tasks (created_at);
CREATE INDEX tasks_status ON tasks (status, seq);
CREATE INDEX tasks_unique_id ON tasks (unique_id) WHERE unique_id IS NOT NULL;
CREATE INDEX tasks_auto_complete ON tasks (auto_complete_at)
    WHERE status = 'pending' AND auto_complete_at IS NOT NULL;

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id          TEXT NOT NULL REFERENCES tasks (task_id),
    event            TEXT NOT NULL,
    target           TEXT NOT NULL,
    webhook_id       TEXT NOT NULL,
    payload          BLOB NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX deliveries_task ON deliveries (task_id, id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_in_flight ON deliveries (id) WHERE state = 'in_flight';

CREATE TABLE attempts (
    delivery_id    INTEGER NOT NULL REFERENCES deliveries (id),
    n              INTEGER NOT NULL,
    due_at         INTEGER NOT NULL,
    started_at     INTEGER NOT NULL,
    url            TEXT NOT NULL,
    finished       INTEGER NOT NULL DEFAULT 0,
    status         INTEGER,
    error          TEXT,
    error_class    TEXT,
    latency_ns     INTEGER,
    reply_headers  TEXT,
    reply_body     BLOB,
    PRIMARY KEY (delivery_id, n)
) WITHOUT ROWID;

CREATE TABLE profile (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    default_callback_url TEXT NOT NULL DEFAULT '',
    callback_auth_key    TEXT NOT NULL DEFAULT '',
    signing_secret       TEXT NOT NULL DEFAULT ''
);

-- tasks and deliveries are rebuilt with plain INTEGER PRIMARY KEY rowids
-- instead of AUTOINCREMENT (rows are never deleted, so a new row's id is
-- still one past the largest ever given, and each insert no longer reads
-- and writes sqlite_sequence), unique_claim becomes a partial unique index
-- (tasks without a unique_id, nearly all, no longer add a NULL entry to
-- it). Run with foreign keys off and checked before commit (see migrate).

DROP VIEW task_view;

CREATE TABLE tasks_new (
    seq                      INTEGER PRIMARY KEY,
    task_id                  TEXT NOT NULL UNIQUE,
    type                     TEXT NOT NULL,
    instruction              TEXT NOT NULL DEFAULT '',
    params                   TEXT NOT NULL DEFAULT '{}',
    status                   TEXT NOT NULL,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    completed_at             INTEGER,
    callback_url             TEXT,
    callback_succeeded       INTEGER, -- not written since 0004: see task_view
    callback_succeeded_at    INTEGER,
    response                 TEXT,
    metadata                 TEXT NOT NULL DEFAULT '{}',
    unique_id                TEXT,
    unique_claim             TEXT, -- unique_id of a task that holds it (error tasks do not)
    is_test                  INTEGER NOT NULL DEFAULT 0,
    customer_review_status   TEXT,
    customer_review_comments TEXT NOT NULL DEFAULT '[]',
    prior_responses          TEXT NOT NULL DEFAULT '[]',
    auto_complete_at         INTEGER
);
INSERT INTO tasks_new (seq, task_id, type, instruction, params, status, created_at, updated_at, completed_at,
    callback_url, callback_succeeded, callback_succeeded_at, response, metadata, unique_id, unique_claim, is_test, customer_review_status,
    customer_review_comments, prior_responses, auto_complete_at)
SELECT seq, task_id, type, instruction, params, status, created_at, updated_at, completed_at,
    callback_url, callback_succeeded, callback_succeeded_at, response, metadata, unique_id, unique_claim, is_test, customer_review_status,
    customer_review_comments, prior_responses, auto_complete_at
FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE UNIQUE INDEX tasks_unique_claim ON tasks (unique_claim) WHERE unique_claim IS NOT NULL;
CREATE INDEX tasks_status ON tasks (status, seq);
CREATE INDEX tasks_unique_id ON tasks (unique_id) WHERE unique_id IS NOT NULL;
CREATE INDEX tasks_auto_complete ON tasks (auto_complete_at)
    WHERE status = 'pending' AND auto_complete_at IS NOT NULL;

CREATE TABLE deliveries_new (
    id                 INTEGER PRIMARY KEY,
    task_id            TEXT NOT NULL REFERENCES tasks (task_id),
    event              TEXT NOT NULL,
    target             TEXT NOT NULL,
    webhook_id         TEXT NOT NULL,
    payload            BLOB NOT NULL,
    state              TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    attempt_due_at     INTEGER,
    attempt_started_at INTEGER
);
INSERT INTO deliveries_new (id, task_id, event, target, webhook_id, payload, state, attempts, next_attempt_at,
    created_at, updated_at, attempt_due_at, attempt_started_at)
SELECT id, task_id, event, target, webhook_id, payload, state, attempts, next_attempt_at,
    created_at, updated_at, attempt_due_at, attempt_started_at
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_task ON deliveries (task_id, id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_in_flight ON deliveries (id) WHERE state = 'in_flight';

CREATE VIEW task_view AS
SELECT t.seq, t.task_id, t.type, t.instruction, t.params, t.status, t.created_at,
    CASE WHEN d.state IN ('succeeded', 'failed') AND d.updated_at > t.updated_at
        THEN d.updated_at ELSE t.updated_at END AS updated_at,
    t.completed_at, t.callback_url,
    CASE d.state WHEN 'succeeded' THEN 1 WHEN 'failed' THEN 0 END AS callback_succeeded,
    CASE d.state WHEN 'succeeded' THEN d.updated_at END AS callback_succeeded_at,
    t.response, t.metadata, t.unique_id, t.is_test, t.customer_review_status,
    t.customer_review_comments, t.prior_responses
FROM tasks t LEFT JOIN deliveries d
    ON d.id = (SELECT MAX(id) FROM deliveries WHERE task_id = t.task_id);

-- Bins and their captures. Bodies live apart from the list metadata so that
-- listing a bin never reads them.
CREATE TABLE bins (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,          -- unix ns
    scenario        TEXT,                      -- the bin's script as JSON, NULL for the default reply
    capture_count   INTEGER NOT NULL DEFAULT 0,
    last_capture_at INTEGER                    -- unix ns
);

-- Capture ids only ever grow (AUTOINCREMENT), even after deletes, so that a
-- stream client can resume after an id.
CREATE TABLE captures (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    bin_id      INTEGER NOT NULL REFERENCES bins(id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,              -- http | email
    method      TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    query       TEXT    NOT NULL,
    proto       TEXT    NOT NULL,
    headers     BLOB    NOT NULL,              -- the fields in received order, byte for byte (see encodeHeaders)
    size        INTEGER NOT NULL,              -- bytes received (kept bytes when truncated)
    truncated   INTEGER NOT NULL,
    remote_addr TEXT    NOT NULL,
    tls         INTEGER NOT NULL,
    received_at INTEGER NOT NULL,              -- unix ns
    read_ns     INTEGER NOT NULL,              -- time spent reading the body
    reply       TEXT    NOT NULL,              -- JSON {status} | {fault} | {smtp_code}
    email       TEXT                           -- JSON of the parsed message, e-mail captures only
);
CREATE INDEX captures_bin_id ON captures(bin_id, id);

CREATE TABLE bodies (
    capture_id INTEGER PRIMARY KEY REFERENCES captures(id) ON DELETE CASCADE,
    body       BLOB NOT NULL
);

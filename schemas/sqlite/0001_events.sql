-- One row per CloudEvent, idempotent on (source, id). The event is kept
-- losslessly: its attributes and extensions as the SDK's structured JSON
-- without data, and the data bytes untouched in their own column, so JSON
-- data keeps its exact bytes. The other columns copy what queries filter on.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    time_ns     INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    subject     TEXT    NOT NULL DEFAULT '',
    attrs       BLOB    NOT NULL,
    data        BLOB,
    data_base64 INTEGER NOT NULL DEFAULT 0,
    transport   TEXT    NOT NULL DEFAULT '',
    topic       TEXT    NOT NULL DEFAULT '',
    partition   INTEGER NOT NULL DEFAULT 0,
    "offset"    INTEGER NOT NULL DEFAULT 0,
    route       TEXT    NOT NULL DEFAULT '',
    received_ns INTEGER NOT NULL DEFAULT 0
);

-- The identity; INSERT OR IGNORE relies on it for idempotent appends.
CREATE UNIQUE INDEX events_identity ON events (source, id);

-- The sort key of every query and its cursor.
CREATE INDEX events_time ON events (time_ns, source, id);

-- Time windows filtered by type (exact or prefix).
CREATE INDEX events_type_time ON events (type, time_ns);

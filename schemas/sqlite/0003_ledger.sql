-- The audit store becomes an append-only ledger: event versions, each
-- stored once, and entries, each appended once to a log and never
-- changed. The rows of the events table are turned into versions and
-- entries of the log "legacy" by a Go step that runs after this file in
-- the same transaction (digests need Go); 0004 drops the old table.

-- One row per event version (source, id, digest), where digest is the
-- SHA-256 of the event's canonical encoding (sinks.DigestEvent). The event
-- is kept losslessly as before: attributes and extensions as the SDK's
-- structured JSON without data, the data bytes untouched in their own
-- column (NULL for no data, an empty blob for empty data). The rowid vid
-- is the order versions were first stored in.
CREATE TABLE versions (
    vid         INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    digest      BLOB    NOT NULL,
    -- time_ns is the indexed time: the event's time, or the first entry's.
    time_ns     INTEGER NOT NULL,
    -- stored_ns is the time of the first entry of the record that first
    -- stored the version: the day retention removes it on.
    stored_ns   INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    subject     TEXT    NOT NULL DEFAULT '',
    attrs       BLOB    NOT NULL,
    data        BLOB,
    data_base64 INTEGER NOT NULL DEFAULT 0,
    -- conflict: another version of (source, id) was stored before.
    conflict    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (source, id, digest)
);

-- The sort key of every query and its cursor.
CREATE INDEX versions_time ON versions (time_ns, source, id, digest);

-- Type filters (exact or prefix) read the sort key from the index itself.
CREATE INDEX versions_type_time ON versions (type, time_ns, source, id, digest);

-- Retention removes whole days by stored_ns.
CREATE INDEX versions_stored ON versions (stored_ns);

-- One row per entry, at its position (log, seq); key is sinks.Entry.Key,
-- the hop's identity, which keeps a hop recorded twice to one entry.
CREATE TABLE entries (
    log         TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    key         BLOB    NOT NULL,
    time_ns     INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    digest      BLOB    NOT NULL,
    transport   TEXT    NOT NULL DEFAULT '',
    topic       TEXT    NOT NULL DEFAULT '',
    partition   INTEGER NOT NULL DEFAULT 0,
    "offset"    INTEGER NOT NULL DEFAULT 0,
    request     TEXT    NOT NULL DEFAULT '',
    principal   TEXT    NOT NULL DEFAULT '',
    route       TEXT    NOT NULL DEFAULT '',
    destination TEXT    NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT '',
    replay      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (log, seq),
    -- A key is unique: it hashes the version with the hop, so keys are
    -- unique per version exactly when they are unique at all. Indexed
    -- after the version, the keys of one commit land beside each other
    -- (as its versions do) instead of on a random page each, which would
    -- rewrite the whole index on every commit once it outgrows one; and
    -- the index is also each version's trail.
    UNIQUE (source, id, digest, key)
) WITHOUT ROWID;

-- Entry filters that select few entries of a route are answered from here
-- first. Only entries with a route are indexed (queries name the
-- condition to use it): one without, such as a reception at HTTP ingest
-- (before any route took the event), costs no insert here, and inserts
-- here are dear, at one place in the middle of the index per route,
-- destination and kind.
CREATE INDEX entries_route ON entries (route, destination, kind, time_ns) WHERE route <> '';

-- Entry time windows and retention.
CREATE INDEX entries_time ON entries (time_ns);

-- Each log's size, its last seq. Kept apart from the entries so that
-- retention, which removes old entries, never lowers it: a position is
-- never given twice.
CREATE TABLE logs (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL
) WITHOUT ROWID;

-- The order the data step reads the old rows in; dropped with the table.
CREATE INDEX events_received ON events (received_ns, source, id, replay);

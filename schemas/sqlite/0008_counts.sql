-- Per-minute counts, so that the explorer's overview (GET /v1/counts and
-- GET /v1/totals) reads a row per minute, type and kind instead of one per
-- event. Append adds to them in the transaction of the rows they count,
-- and retention takes away what it removes in its own, so they always
-- equal counts of the versions and entries stored: a version or an entry
-- found stored already (a duplicate) is not appended and not counted.
-- minute is the time in nanoseconds since 1970 divided by a minute,
-- rounded down (sinks.MinuteOf).

-- Versions per minute of their indexed time (versions.time_ns) and type;
-- conflicts counts those stored as a conflict.
CREATE TABLE count_versions (
    minute    INTEGER NOT NULL,
    type      TEXT    NOT NULL,
    n         INTEGER NOT NULL,
    conflicts INTEGER NOT NULL,
    PRIMARY KEY (minute, type)
) WITHOUT ROWID;

-- Entries per minute of their time and kind; routed counts those with a
-- route (what GET /v1/counts?by=outcome charts).
CREATE TABLE count_entries (
    minute INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    routed INTEGER NOT NULL,
    PRIMARY KEY (minute, kind)
) WITHOUT ROWID;

-- What the store holds already.
INSERT INTO count_versions (minute, type, n, conflicts)
SELECT (time_ns - ((time_ns % 60000000000) + 60000000000) % 60000000000) / 60000000000 AS m, type, COUNT(*), SUM(conflict)
FROM versions GROUP BY m, type;

INSERT INTO count_entries (minute, kind, n, routed)
SELECT (time_ns - ((time_ns % 60000000000) + 60000000000) % 60000000000) / 60000000000 AS m, kind, COUNT(*), SUM(route <> '')
FROM entries GROUP BY m, kind;

-- The audit store becomes an append-only ledger: event versions, stored
-- once each, and the entries of what happened to them, appended to a log
-- each and never changed.
--
-- Versions: one row per (source, id, digest), the event kept losslessly as
-- in the events table before (attrs, data, data_flags). hour and time_ns
-- are the version's indexed time (the event's time, or the first entry's).
-- stored_ns is when it was first stored as the ledger dates it, the time
-- of the first entry of the record that stored it, and names its day
-- partition for retention; added_ns orders the versions as a store added
-- them (its clock, kept increasing); conflict is 1 when another version of
-- the (source, id) was stored before it. A repeated row of one version (a
-- writer racing another) has the same sorting key, so merges keep one:
-- keep makes that the one added first, as reads pick it before merges.
CREATE TABLE IF NOT EXISTS {{.Versions}}{{.OnCluster}} (
    hour        UInt32,
    type        {{.LowCardinality}},
    time_ns     Int64,
    source      String,
    id          String,
    digest      FixedString(32),
    subject     String,
    attrs       String,
    data        String,
    data_flags  UInt8,
    stored_ns   Int64,
    added_ns    Int64,
    conflict    UInt8,
    keep        UInt64 MATERIALIZED bitNot(toUInt64(added_ns)){{if .DateTime64}},
    time        DateTime64(9, 'UTC') MATERIALIZED fromUnixTimestamp64Nano(time_ns){{end}}
) ENGINE = {{.Replacing "versions" "keep"}}
PARTITION BY toYYYYMMDD(toDateTime(intDiv(stored_ns, 1000000000), 'UTC'))
PRIMARY KEY (hour, type, time_ns)
ORDER BY (hour, type, time_ns, source, id, digest)
SETTINGS index_granularity = 256
;
-- Every version's identity and position, ordered by identity: Append asks
-- it which versions of a batch's events are stored, and Get where they are.
CREATE TABLE IF NOT EXISTS {{.Identities}}{{.OnCluster}} (
    source      String,
    id          String,
    digest      FixedString(32),
    type        {{.LowCardinality}},
    hour        UInt32,
    time_ns     Int64,
    stored_ns   Int64,
    added_ns    Int64,
    keep        UInt64
) ENGINE = {{.Replacing "identities" "keep"}}
PARTITION BY toYYYYMMDD(toDateTime(intDiv(stored_ns, 1000000000), 'UTC'))
ORDER BY (source, id, digest)
SETTINGS index_granularity = 256
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.IdentitiesView}}{{.OnCluster}} TO {{.Identities}} AS
SELECT source, id, digest, type, hour, time_ns, stored_ns, added_ns, keep FROM {{.Versions}}
;
-- Entries: narrow rows, never merged away, in their log's order. hour is
-- the entry's time in whole hours (clamped like the versions'), which
-- names its day partition; key is Entry.Key, the identity entries are
-- deduplicated on.
CREATE TABLE IF NOT EXISTS {{.Entries}}{{.OnCluster}} (
    log         {{.LowCardinality}},
    seq         UInt64,
    time_ns     Int64,
    hour        UInt32,
    kind        {{.LowCardinality}},
    source      String,
    id          String,
    digest      FixedString(32),
    key         FixedString(16),
    transport   {{.LowCardinality}},
    topic       {{.LowCardinality}},
    `partition` Int64,
    `offset`    Int64,
    request     String,
    principal   String,
    route       {{.LowCardinality}},
    destination {{.LowCardinality}},
    attempts    UInt32,
    error       String,
    replay      String
) ENGINE = {{.Plain "entries"}}
PARTITION BY toYYYYMMDD(toDateTime(hour * 3600, 'UTC'))
ORDER BY (log, seq)
;
-- The entries again, ordered by version: a trail, and the entry filters
-- of a query, are read by (source, id, digest).
CREATE TABLE IF NOT EXISTS {{.Trails}}{{.OnCluster}} AS {{.Entries}}
ENGINE = {{.Plain "trails"}}
PARTITION BY toYYYYMMDD(toDateTime(hour * 3600, 'UTC'))
ORDER BY (source, id, digest, time_ns, log, seq)
SETTINGS index_granularity = 256
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.TrailsView}}{{.OnCluster}} TO {{.Trails}} AS
SELECT * FROM {{.Entries}}
;
-- The entries' keys, ordered by key, for deduplication across logs.
CREATE TABLE IF NOT EXISTS {{.Keys}}{{.OnCluster}} (
    key         FixedString(16),
    hour        UInt32,
    log         {{.LowCardinality}},
    seq         UInt64
) ENGINE = {{.Plain "keys"}}
PARTITION BY toYYYYMMDD(toDateTime(hour * 3600, 'UTC'))
ORDER BY key
SETTINGS index_granularity = 256
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.KeysView}}{{.OnCluster}} TO {{.Keys}} AS
SELECT key, hour, log, seq FROM {{.Entries}}
;
-- Each log's last seq, kept when retention drops the entries, so a log's
-- positions go on where they were.
CREATE TABLE IF NOT EXISTS {{.Logs}}{{.OnCluster}} (
    log         {{.LowCardinality}},
    seq         UInt64
) ENGINE = {{.Replacing "logs" "seq"}}
ORDER BY log
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.LogsView}}{{.OnCluster}} TO {{.Logs}} AS
SELECT log, max(seq) AS seq FROM {{.Entries}} GROUP BY log
;
-- The events table's rows move into the ledger: LEDGER is not SQL but the
-- data step sinks/clickhouse runs (digests need its Go code), safe to run
-- again. It leaves the events table renamed to {{.Table}}_pre_ledger when
-- it held rows, and drops it when it did not. The identity table of the
-- events table goes with it.
DROP TABLE IF EXISTS {{.IDsView}}{{.OnCluster}}
;
LEDGER {{.Table}}
;
DROP TABLE IF EXISTS {{.IDs}}{{.OnCluster}}

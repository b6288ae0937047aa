-- Per-minute counts, so that the explorer's overview (GET /v1/counts and
-- GET /v1/totals) reads a row per minute, type and kind instead of one per
-- event. Views add each insert into the versions and the entries to them;
-- SummingMergeTree adds up rows of the same key as it merges, and reads
-- sum() over a GROUP BY, so parts not merged yet count right. minute is
-- the time in nanoseconds since 1970 divided by a minute, rounded down
-- (sinks.MinuteOf).
--
-- Versions per minute of their indexed time and type; conflicts counts
-- those stored as a conflict. stored_hour is the hour the versions were
-- stored in: partitioned by its day like the versions, retention drops the
-- counts of the versions it drops.
CREATE TABLE IF NOT EXISTS {{.VersionCounts}}{{.OnCluster}} (
    minute      Int64,
    type        {{.LowCardinality}},
    stored_hour UInt32,
    n           Int64,
    conflicts   Int64
) ENGINE = {{.Summing "version_counts"}}
PARTITION BY toYYYYMMDD(toDateTime(stored_hour * 3600, 'UTC'))
ORDER BY (minute, type, stored_hour)
;
-- Entries per minute of their time, log and kind; routed counts those with
-- a route (what GET /v1/counts?by=outcome charts). hour is the entries'
-- own, which names their day partition here as there. Counted per log, so
-- that a store whose insert failed after it landed can set its own log's
-- counts right (see recoverLog).
CREATE TABLE IF NOT EXISTS {{.EntryCounts}}{{.OnCluster}} (
    minute Int64,
    hour   UInt32,
    log    {{.LowCardinality}},
    kind   {{.LowCardinality}},
    n      Int64,
    routed Int64
) ENGINE = {{.Summing "entry_counts"}}
PARTITION BY toYYYYMMDD(toDateTime(hour * 3600, 'UTC'))
ORDER BY (minute, kind, log, hour)
;
-- COUNTS is not SQL but the daemon's step (sinks/clickhouse,
-- migrate_counts.go): it empties both tables and fills them from the
-- versions (FINAL: a version stored twice counts once) and the entries, so
-- that it can run again after being cut short. Like migration 0002, it
-- wants no writer of an older build running meanwhile.
COUNTS
;
-- The views' SELECTs are sinks/clickhouse's (migrate_counts.go), which the
-- COUNTS step runs too.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.VersionCountsView}}{{.OnCluster}} TO {{.VersionCounts}} AS
{{.VersionCountsSelect}}
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.EntryCountsView}}{{.OnCluster}} TO {{.EntryCounts}} AS
{{.EntryCountsSelect}}

-- One row per appended record. The event is kept losslessly: its
-- attributes and extensions as the CloudEvents SDK's structured JSON without
-- data (attrs), and the data bytes untouched in their own column (data), so
-- JSON data keeps its exact bytes. data_flags: bit 0 set when the event has
-- data at all (nil and empty differ), bit 1 when it was base64 in JSON.
-- The other columns copy what queries filter and sort on.
--
-- hour is the record's time in whole hours since 1970 (clamped to UInt32),
-- so a time window prunes by the primary index before the type narrows it.
-- time_ns is the query sort key's time; received_ns orders the records of
-- one identity (the later wins); version is the bitwise complement of the
-- append sequence, so among rows with the same sorting key the engine keeps
-- the one stored first ("ties keep the stored one").
CREATE TABLE IF NOT EXISTS {{.Table}}{{.OnCluster}} (
    hour        UInt32,
    type        {{.LowCardinality}},
    time_ns     Int64,
    source      String,
    id          String,
    replay      String,
    received_ns Int64,
    version     UInt64,
    subject     String,
    route       {{.LowCardinality}},
    outcome     {{.LowCardinality}},
    transport   {{.LowCardinality}},
    topic       {{.LowCardinality}},
    `partition` Int64,
    `offset`    Int64,
    attrs       String,
    data        String,
    data_flags  UInt8{{if .DateTime64}},
    time        DateTime64(9, 'UTC') MATERIALIZED fromUnixTimestamp64Nano(time_ns){{end}}
) ENGINE = {{.Engine "events"}}
PARTITION BY toYYYYMMDD(toDateTime(hour * 3600, 'UTC'))
ORDER BY (hour, type, time_ns, source, id, replay, received_ns)
;
-- Every record's identity and where it sits in the events table, ordered by
-- identity so the winner of an identity (latest received_ns, then highest
-- version) is found without scanning by time. A row appears here only once
-- its events row is written (the view runs after the table's insert), so
-- the winner always has its events row.
CREATE TABLE IF NOT EXISTS {{.IDs}}{{.OnCluster}} (
    source      String,
    id          String,
    replay      String,
    received_ns Int64,
    version     UInt64,
    hour        UInt32,
    type        {{.LowCardinality}},
    time_ns     Int64
) ENGINE = {{.Engine "ids"}}
PARTITION BY toYYYYMMDD(toDateTime(hour * 3600, 'UTC'))
ORDER BY (source, id, replay, received_ns)
SETTINGS index_granularity = 256
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.IDsView}}{{.OnCluster}} TO {{.IDs}} AS
SELECT source, id, replay, received_ns, version, hour, type, time_ns FROM {{.Table}}

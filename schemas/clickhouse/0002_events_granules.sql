-- The events table rebuilt with granules of 256 rows instead of 8,192 and a
-- primary index on (hour, type, time_ns) only. A page of 100 records reads
-- its rows' full columns (1 KiB of data or more each) by the granule: with
-- 8,192-row granules that was three granules, some 25 MB, for 100 rows;
-- with 256-row granules it is one or two. The shorter primary key keeps the
-- index, which the server holds in memory, at about 40 bytes a granule.
-- The sorting key, which merges deduplicate on, is unchanged.
--
-- A table's granularity cannot be altered, so the table is created anew,
-- with the same columns, under {{.Next}}; the view feeding the identity
-- table is dropped; the SWAP step copies the rows into the new table and
-- renames it into place (the old table is renamed to {{.Prev}} and dropped
-- once the new one is in place; see sinks/clickhouse); the view is created
-- again on the new table. The identity table keeps its rows: the rows'
-- positions do not change. Stop the writers of older builds before
-- starting this one on an existing database: rows they write during the
-- copy may be missed.
CREATE TABLE IF NOT EXISTS {{.Next}}{{.OnCluster}} AS {{.Table}}
ENGINE = {{.Engine "v2"}}
PARTITION BY toYYYYMMDD(toDateTime(hour * 3600, 'UTC'))
PRIMARY KEY (hour, type, time_ns)
ORDER BY (hour, type, time_ns, source, id, replay, received_ns)
SETTINGS index_granularity = 256
;
DROP TABLE IF EXISTS {{.IDsView}}{{.OnCluster}}
;
SWAP {{.Table}} WITH {{.Next}}
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.IDsView}}{{.OnCluster}} TO {{.IDs}} AS
SELECT source, id, replay, received_ns, version, hour, type, time_ns FROM {{.Table}}

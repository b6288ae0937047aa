-- The W3C trace and span each entry's hop happened under (sinks.Entry
-- TraceID and SpanID, lower-case hex); '' for entries written before, or
-- of hops that were not traced. TRACECOLUMNS is not SQL but the daemon's
-- step (sinks/clickhouse, migrate_trace.go): it adds
--   trace_id String DEFAULT '', span_id String DEFAULT ''
-- to the trails and then the entries table, each only where missing, so
-- that the migration can run again after being cut short (18.16 has no
-- ADD COLUMN IF NOT EXISTS). The trails get them first, so that the view
-- copying entries there always finds the columns.
TRACECOLUMNS
;

-- The W3C trace and span each entry's hop happened under (sinks.Entry
-- TraceID and SpanID, lower-case hex); '' for entries written before, or
-- of hops that were not traced.
ALTER TABLE entries ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
ALTER TABLE entries ADD COLUMN span_id  TEXT NOT NULL DEFAULT '';

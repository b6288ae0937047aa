-- The record gains its outcome and, for a copy published again by a replay
-- job, the job's id. The identity becomes (source, id, replay): a replayed
-- copy is stored beside its original. For an identity already stored the
-- record with the later received_ns wins (Append is an upsert guarded on
-- it), so outcomes recorded later supersede earlier ones.
ALTER TABLE events ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN replay  TEXT NOT NULL DEFAULT '';

DROP INDEX events_identity;
CREATE UNIQUE INDEX events_identity ON events (source, id, replay);

-- The sort key of every query and its cursor, now with replay last.
DROP INDEX events_time;
CREATE INDEX events_time ON events (time_ns, source, id, replay);

-- Type filters (exact or prefix) read the sort key from the index itself,
-- so a page streams in order instead of sorting its matches.
DROP INDEX events_type_time;
CREATE INDEX events_type_time ON events (type, time_ns, source, id, replay);

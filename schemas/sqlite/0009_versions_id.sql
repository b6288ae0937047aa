-- A look-up by id alone (GET /v1/events/{id} without ?source=, which
-- lists the id's sources) reads the versions of that id in the query
-- order instead of walking versions_time through the whole store.
CREATE INDEX versions_id ON versions (id, time_ns, source, digest);

// Package sinks is the audit store contract: every event the bus carries is
// kept as a Record in a Store, queryable by time, type, source, subject and
// id, and idempotent on the CloudEvents identity (source, id). Writer puts a
// bounded batching queue in front of any Store so callers learn when their
// records are durable, which is what lets the router acknowledge a source
// only after the audit write.
package sinks

// Package sinks is the audit store contract: an append-only ledger of
// every event the bus carries. A Store keeps each version of an event
// (source, id and the digest of its content, DigestEvent) once, bit-exact,
// and appends an Entry for each hop that happened to it (received,
// filtered, delivered, dead-lettered, poison, replayed) to its log, once
// per Entry.Key, at a position (log, seq) that never changes. Versions are
// queryable by time, type, source, subject, id and by their entries.
// Writer puts a bounded batching queue in front of any Store so callers
// learn when their records are durable, which is what lets the router
// acknowledge a source only after the audit write.
package sinks

// Package clickhouse is the audit store on ClickHouse, for scale: a
// sinks.Store on github.com/ClickHouse/clickhouse-go/v2 (native protocol,
// column-wise batch inserts), with its schema applied at Open from the
// versioned migrations in schemas/clickhouse.
//
// # Tables
//
// The events table (Config.Table) is a ReplacingMergeTree partitioned by
// day and ordered by (hour, type, time_ns, source, id, replay, received_ns):
// a time window prunes by hour through the primary index, (hour, type,
// time_ns), and a type (exact or prefix) narrows it, and the identity is in
// the sorting key so merges drop a repeated append of the same record. Its
// granules are of 256 rows, not the engine's 8,192: a page reads its 100
// full rows (1 KiB or more each) a granule at a time, so small granules
// keep that to a few hundred rows (schema 2 rebuilt tables of schema 1 in
// place; see schemas/clickhouse). Its version column orders rows with
// the same key so the one stored first survives merges, which is the
// contract's "ties keep the stored one".
//
// A record's time or type may change when a later record of its identity
// supersedes it, so the engine cannot find an identity's rows by its key
// alone. A materialized view copies every row's identity, Received, version
// and position into <table>_ids, ordered by identity, and every read asks
// it which row of an identity wins (latest Received, then first stored);
// see Query. Scan (sinks.Scanner, which replays read through) asks it once
// for many pages, and only about the identities recorded at more than one
// time; rows of an identity at one instant are told apart in the client. The view writes only after the events row is written, so an
// append that fails half-way leaves nothing visible, and retrying it is
// safe. Superseded rows stay on disk, invisible, until their day partition
// expires.
//
// # Server versions
//
// The DDL uses only what ClickHouse 18.16 has (String, Int64, UInt32,
// ReplacingMergeTree with a version column, PARTITION BY, LIMIT BY,
// materialized views). Where SELECT version() allows, Open adds
// LowCardinality columns (19.1), a TTL for Config.Retention (19.6; older
// servers get expired day partitions dropped instead) and a DateTime64
// "time" column (20.5) for people writing SQL by hand.
//
// Modern servers (19.1 and later) take the driver's own connection path:
// with Config.Compat left at auto the store only asks their version.
// Servers before 19.1 mishandle the driver's "INSERT ... FORMAT Native", so
// the store connects to them through LegacyDialer, which rewrites that one
// query text on the wire. CI runs the suite against Debian's 18.16 only:
// the modern path is the driver's and is not tested here.
package clickhouse

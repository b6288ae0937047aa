// Package clickhouse is the audit ledger on ClickHouse, for scale: a
// sinks.Store on github.com/ClickHouse/clickhouse-go/v2 (native protocol,
// column-wise batch inserts), with its schema applied at Open from the
// numbered migrations in schemas/clickhouse.
//
// # Tables
//
// Config.Table names the ledger's tables (default "events"):
//
//   - <table>_versions: one row per event version (source, id, digest),
//     the event kept losslessly (its attributes as the SDK's JSON without
//     data, the data bytes apart). A ReplacingMergeTree partitioned by the
//     day the version was stored and ordered by (hour, type, time_ns,
//     source, id, digest), with 256-row granules: a time window prunes by
//     hour through the primary index (hour, type, time_ns), a type narrows
//     it, and a page reads its 100 rows a small granule at a time. A
//     version is stored once; only two writers racing to store the same
//     version write it twice, and then merges keep the row added first,
//     which reads pick too, before any merge.
//   - <table>_identities, fed by a view: every version's identity and
//     position, ordered by (source, id, digest), for Get and for Append's
//     lookup of the versions a batch's events already have.
//   - <table>_entries: the entries, narrow rows in a plain MergeTree
//     partitioned by day of the entry's time and ordered by (log, seq),
//     never merged away or changed.
//   - <table>_trails, <table>_keys and <table>_logs, fed by views of the
//     entries: the entries ordered by version (trails, and the entry
//     filters of a query), their keys ordered by key (deduplication), and
//     each log's last seq (kept when retention drops the entries).
//
// # Appending
//
// An Append computes the records' digests and entry keys, asks the
// identity table which versions of the batch's events are stored and then
// the keys table which keys of those versions' entries are (while other
// Appends of the store insert; an entry is inserted only once its version
// is, so the entries of a version not stored are new and a batch of new
// events costs one lookup), then, one Append at a time per store, adds to those answers
// what the appends that committed since it asked stored (the store keeps
// its last commits' versions and keys in memory), inserts the new
// versions (flagging conflicts), and inserts the new entries numbered on
// from the log's last seq, one insert per day partition, so that each
// lands whole or not at all and in seq order. An Append that asked before
// another failed asks again in its turn.
// The last seq is read at Open and kept in memory; after a failed
// insert, which may have landed although it failed, the next Append
// reads it back from the server and writes the rows the views missed, so
// the log has no hole and nothing is appended twice. Two stores appending
// to one database must use different logs (Config.Log). Between them,
// deduplication and conflicts are decided by what is stored when an
// Append looks: two writers that store the same hop, or versions of the
// same new event, at the same moment may both store it, each in its own
// log, and neither sees the other's version as a conflict (a version
// stored twice this way is read once: its rows share their sorting key).
// Per-minute counts (<table>_version_counts and <table>_entry_counts,
// SummingMergeTree tables fed by views of the versions and the entries,
// read with sum() over a GROUP BY so that parts not merged yet count
// right) answer Counts, CountOutcomes and CountTotals over whole minutes
// without reading a row per event. They count every row inserted: a
// version two writers raced to store counts twice in them, as its
// entries count twice in the outcomes, where queries read it once; an
// insert of versions whose view failed after the table took it leaves
// them uncounted. A failed insert of entries is counted right by the
// next Append, which sets its log's counts of the hours it touched.
// Retention drops versions by the day they were stored and entries by
// their own day: an event that arrives again after its version's day was
// dropped is stored as a new version, and its entries are not checked
// against entries of the dropped version that a later day still holds.
//
// # Server versions
//
// The DDL uses only what ClickHouse 18.16 has (String, FixedString,
// Int64, UInt32, ReplacingMergeTree with a version column, PARTITION BY,
// LIMIT BY, materialized views, external tables for the lookups). Where
// SELECT version() allows, Open adds LowCardinality columns (19.1), TTLs
// for Config.Retention (19.6; older servers get expired day partitions
// dropped instead, through Retain) and a DateTime64 "time" column on the
// versions (20.5) for people writing SQL by hand.
//
// Modern servers (19.1 and later) take the driver's own connection path:
// with Config.Compat left at auto the store only asks their version.
// Servers before 19.1 mishandle the driver's "INSERT ... FORMAT Native", so
// the store connects to them through LegacyDialer, which rewrites that one
// query text on the wire. CI runs the suite against Debian's 18.16 only:
// the modern path is the driver's and is not tested here.
package clickhouse

// Package clickhouse embeds the ClickHouse audit store's schema as numbered
// migrations (0001_name.sql, 0002_name.sql, ...), applied in order at
// start-up by sinks/clickhouse.
//
// The files are text/template templates, because names and server features
// are only known at start-up. Each file holds statements separated by lines
// that are exactly ";" and every statement must be safe to run again (IF NOT
// EXISTS), since ClickHouse has no transactional DDL: a migration cut short
// is simply run again. Some statements are not SQL: "SWAP {{.Table}} WITH
// {{.Next}}" has sinks/clickhouse copy the events table's rows into
// {{.Next}} and rename that into the table's place, and "LEDGER
// {{.Table}}" has it move the events table's rows into the ledger's tables
// (digests are computed in Go), in steps that are likewise safe to run
// again; "COUNTS" fills the per-minute counts of 0007 from the ledger.
// The data they see:
//
//	{{.DB}}             the database, quoted
//	{{.Table}}          the events table (schemas 1 and 2),
//	                    database-qualified and quoted
//	{{.IDs}}            its identity table, likewise
//	{{.IDsView}}        the materialized view feeding it, likewise
//	{{.Next}}           the events table's rebuild (<table>_v2), likewise
//	{{.Prev}}           the events table's name while a rebuild replaces it
//	                    (<table>_v1), likewise
//	{{.Versions}}       the ledger's versions (<table>_versions), likewise
//	{{.Identities}}     the versions by identity (<table>_identities) and
//	{{.IdentitiesView}} the view feeding it
//	{{.Entries}}        the ledger's entries (<table>_entries)
//	{{.Trails}}         the entries by version (<table>_trails) and
//	{{.TrailsView}}     the view feeding it
//	{{.Keys}}           the entries' keys (<table>_keys) and
//	{{.KeysView}}       the view feeding it
//	{{.Logs}}           each log's last seq (<table>_logs) and
//	{{.LogsView}}       the view feeding it
//	{{.TreeHashes}}     each log's Merkle tree hashes (<table>_tree_hashes)
//	{{.TreeCheckpoints}} and checkpoints (<table>_tree_checkpoints)
//	{{.VersionCounts}}  versions per minute and type (<table>_version_counts)
//	{{.VersionCountsView}} and the view feeding it
//	{{.EntryCounts}}    entries per minute, log and kind (<table>_entry_counts)
//	{{.EntryCountsView}} and the view feeding it
//	{{.VersionCountsSelect}}, {{.EntryCountsSelect}} the views' SELECTs
//	{{.OnCluster}}      " ON CLUSTER `name`", or "" without a cluster
//	{{.Engine "t"}}     the ReplacingMergeTree engine clause for table t of
//	                    schemas 1 and 2 (Replicated on a cluster),
//	                    versioned by `version`
//	{{.Replacing "t" "v"}} the ReplacingMergeTree engine clause for the
//	                    ledger's table t, versioned by column v
//	{{.Plain "t"}}      the MergeTree engine clause for the ledger's table t
//	{{.Summing "t"}}    the SummingMergeTree engine clause for table t
//	{{.LowCardinality}} "LowCardinality(String)" where the server has it,
//	                    else "String"
//	{{.DateTime64}}     true where the server has DateTime64 and
//	                    fromUnixTimestamp64Nano (20.5 and later)
package clickhouse

import "embed"

// Migrations holds the *.sql migration templates.
//
//go:embed *.sql
var Migrations embed.FS

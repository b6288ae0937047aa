// Package clickhouse embeds the ClickHouse audit store's schema as numbered
// migrations (0001_name.sql, 0002_name.sql, ...), applied in order at
// start-up by sinks/clickhouse.
//
// The files are text/template templates, because names and server features
// are only known at start-up. Each file holds statements separated by lines
// that are exactly ";" and every statement must be safe to run again (IF NOT
// EXISTS), since ClickHouse has no transactional DDL: a migration cut short
// is simply run again. One statement is not SQL: "SWAP {{.Table}} WITH
// {{.Next}}" has sinks/clickhouse copy the events table's rows into
// {{.Next}} and rename that into the table's place, in steps that are
// likewise safe to run again. The data they see:
//
//	{{.DB}}            the database, quoted
//	{{.Table}}         the events table, database-qualified and quoted
//	{{.IDs}}           the identity table, likewise
//	{{.IDsView}}       the materialized view feeding it, likewise
//	{{.Next}}          the events table's rebuild (<table>_v2), likewise
//	{{.Prev}}          the events table's name while a rebuild replaces it
//	                   (<table>_v1), likewise
//	{{.OnCluster}}     " ON CLUSTER `name`", or "" without a cluster
//	{{.Engine "t"}}    the ReplacingMergeTree engine clause for table t
//	                   (Replicated on a cluster), versioned by `version`
//	{{.LowCardinality}} "LowCardinality(String)" where the server has it,
//	                   else "String"
//	{{.DateTime64}}    true where the server has DateTime64 and
//	                   fromUnixTimestamp64Nano (20.5 and later)
package clickhouse

import "embed"

// Migrations holds the *.sql migration templates.
//
//go:embed *.sql
var Migrations embed.FS

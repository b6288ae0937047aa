// Package sqlite embeds the SQLite audit store's schema as numbered
// migrations (0001_name.sql, 0002_name.sql, ...), applied in order at
// start-up by sinks/sqlite.
package sqlite

import "embed"

// Migrations holds the *.sql migration files.
//
//go:embed *.sql
var Migrations embed.FS

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/auditbus/auditbus/sinks"
)

// migration is one numbered schema step: its SQL, then its data step, if
// it has one, in the same transaction.
type migration struct {
	version int
	name    string
	sql     string
	data    func(ctx context.Context, tx *sql.Tx) error
}

// dataSteps are the migrations' steps that need Go, by version: they run
// after the version's SQL file.
var dataSteps = map[int]func(ctx context.Context, tx *sql.Tx) error{
	3: ledgerFromEvents,
}

// loadMigrations reads NNNN_name.sql files from fsys in version order and
// insists the numbers run 1, 2, 3... so a missing file cannot be skipped.
// Each gets its data step from dataSteps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, n := range names {
		num, _, ok := strings.Cut(n, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlite: migration %q: name must be NNNN_name.sql", n)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: n, sql: string(b), data: dataSteps[v]})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlite: migration %q: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate brings the schema of db up to the newest of ms, each step in its
// own transaction with its version row, and refuses a database whose
// version is newer than ms know: an older build must not write to a schema
// it does not understand.
func migrate(ctx context.Context, db *sql.DB, path string, ms []migration) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_ns INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1e9 AS INTEGER)))`); err != nil {
		return fmt.Errorf("sqlite %s: create schema_version: %w", path, err)
	}
	var have int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&have); err != nil {
		return fmt.Errorf("sqlite %s: read schema version: %w", path, err)
	}
	if have > len(ms) {
		return fmt.Errorf("%w: sqlite %s has schema version %d, this build knows up to %d; upgrade auditbus",
			sinks.ErrSchemaTooNew, path, have, len(ms))
	}
	for _, m := range ms[have:] {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("sqlite %s: migration %s: %w", path, m.name, err)
		}
		if m.data != nil {
			if err := m.data(ctx, tx); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("sqlite %s: migration %s, data step: %w", path, m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, name) VALUES (?, ?)`, m.version, m.name); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("sqlite %s: record migration %s: %w", path, m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlite %s: migration %s: %w", path, m.name, err)
		}
	}
	return nil
}

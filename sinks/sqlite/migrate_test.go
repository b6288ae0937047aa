package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	schema "github.com/auditbus/auditbus/schemas/sqlite"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sinktest"
	"github.com/auditbus/auditbus/sinks/sqlite"
)

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	dir := t.TempDir()
	open(t, dir).Close()
	s := open(t, dir) // a second start finds the schema current
	defer s.Close()
	db, err := sql.Open("sqlite", "file:"+s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, v int
	var mode string
	if err := db.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(schema.Migrations, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(files); n != want || v != want {
		t.Errorf("schema_version: %d rows, version %d; want %d, %d", n, v, want, want)
	}
	var tables string
	if err := db.QueryRow(`SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)`).Scan(&tables); err != nil ||
		tables != "count_entries count_versions entries logs schema_version tree_checkpoints tree_hashes versions" {
		t.Errorf("tables %q, %v; want the ledger's", tables, err)
	}
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v; want wal", mode, err)
	}
}

// A store with versions and entries but no per-minute counts (as before
// migration 0008, so before 0009 too) gets them at its next start, equal to what it holds.
func TestMigrationFillsCounts(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	at := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	sinktest.CountsData(t, context.Background(), s, at)
	path := s.Path()
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{`DROP TABLE count_versions`, `DROP TABLE count_entries`, `DROP INDEX versions_id`, `DELETE FROM schema_version WHERE version >= 8`} {
		if _, err := db.Exec(st); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s = open(t, dir)
	defer s.Close()
	sinktest.CheckCounts(t, context.Background(), s, at)
}

// alterClosed makes a store in a new directory, closes it and runs stmt
// on its database, as someone editing the file by hand would. It returns
// the directory and the database's path.
func alterClosed(t *testing.T, stmt string) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	s := open(t, dir)
	path = s.Path()
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dir, path := alterClosed(t, `INSERT INTO schema_version (version, name) VALUES (99, '0099_future.sql')`)
	_, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if !errors.Is(err, sinks.ErrSchemaTooNew) || !strings.Contains(err.Error(), "99") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

// A database whose schema the writer cannot prepare its statements
// against (a table dropped by hand) gets an error naming the statement,
// not a panic closing the ones that never prepared.
func TestOpenReportsUnpreparableSchema(t *testing.T) {
	dir, _ := alterClosed(t, `DROP TABLE tree_checkpoints`)
	s2, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err == nil {
		s2.Close()
		t.Fatal("Open accepted a store without its tree_checkpoints table")
	}
	if !strings.Contains(err.Error(), "tree_checkpoints") {
		t.Fatalf("Open: %v; want the statement that failed named", err)
	}
}

func TestOpenRejectsBadSynchronous(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{Synchronous: "OFF"}); err == nil {
		t.Fatal("synchronous=OFF accepted")
	}
}

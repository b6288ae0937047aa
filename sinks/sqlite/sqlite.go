// Package sqlite is the embedded audit store, the zero-setup default: the
// audit ledger in one SQLite file (pure Go, no cgo) in WAL mode under the
// data directory. Event versions are stored once each, entries appended
// to the store's log with gapless positions in the same transaction, and
// both indexed for the queries of package sinks.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	schema "github.com/auditbus/auditbus/schemas/sqlite"
	"github.com/auditbus/auditbus/sinks"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the database file's name inside the data directory.
const FileName = "audit.db"

// Options tune the store; zero fields take the defaults.
type Options struct {
	// Synchronous is SQLite's synchronous pragma. "FULL", the default,
	// makes every Append fsync the write-ahead log before it returns, so a
	// record reported durable survives a process crash, an OS crash and
	// power loss. "NORMAL" fsyncs only when the log is copied into the
	// database: it still survives a process crash (committed pages are in
	// the OS's file cache), but an OS crash or power loss may lose the
	// last commits, which breaks the Writer's promise that a record it
	// reported durable is kept. "EXTRA" also syncs the directory.
	Synchronous string
	// BusyTimeout is how long a statement waits for a lock (default 10s).
	BusyTimeout time.Duration
	// Log names the log this store appends entries to (default
	// sinks.DefaultLogName()). Stores sharing one file each write their
	// own log.
	Log string
}

// Store is the SQLite audit store.
type Store struct {
	path string
	log  string
	db   *sql.DB
	w    *writer

	wmu    sync.Mutex // SQLite has one writer; queueing here beats lock retries
	closed atomic.Bool

	ckpt *checkpointer
	// sync is the synchronous pragma the writing connection runs with.
	sync string

	// fewEntries is how many entries of a route an entry filter may
	// select for a query to start from them (see selectVersions).
	fewEntries int
}

var (
	_ sinks.Store          = (*Store)(nil)
	_ sinks.VersionCounter = (*Store)(nil)
)

// Open opens (creating if needed) the store in dir and applies pending
// migrations. It fails with an error wrapping sinks.ErrSchemaTooNew when
// the file was migrated by a newer build.
func Open(ctx context.Context, dir string, o Options) (*Store, error) {
	if o.Log == "" {
		o.Log = sinks.DefaultLogName()
	}
	if err := sinks.ValidLogName(o.Log); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if o.Synchronous == "" {
		o.Synchronous = "FULL"
	}
	switch strings.ToUpper(o.Synchronous) {
	case "FULL", "NORMAL", "EXTRA":
	default:
		return nil, fmt.Errorf("sqlite: synchronous %q: want FULL, NORMAL or EXTRA", o.Synchronous)
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 10 * time.Second
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// The ledger is for its readers only: create the file 0600 before
	// SQLite would (0644 under the usual umask); its -wal and -shm files
	// take the same mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		_ = f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("sqlite %s: create: %w", path, err)
	}
	// wal_autocheckpoint(0): the store's own checkpointer copies the log
	// into the database on another goroutine, not inside the commits.
	// temp_store(MEMORY): a statement that inserts several rows inside a
	// transaction keeps a statement journal, which SQLite otherwise spills
	// to a temporary file past 64 KiB; in memory it is bounded by the pages
	// one statement touches. (Sorts spill to files either way.)
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_pragma=busy_timeout(%d)"+
		"&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(0)&_pragma=temp_store(MEMORY)&_txlock=immediate",
		path, o.Synchronous, o.BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: open: %w", path, err)
	}
	s := &Store{path: path, log: o.Log, db: db, sync: strings.ToUpper(o.Synchronous), fewEntries: fewEntries}
	if err := s.start(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// start migrates the schema, prepares the inserts and starts the
// checkpointer.
func (s *Store) start(ctx context.Context) error {
	ms, err := loadMigrations(schema.Migrations)
	if err == nil {
		err = migrate(ctx, s.db, s.path, ms)
	}
	if err != nil {
		return err
	}
	if s.w, err = openWriter(ctx, s.db, s.log, s.sync); err != nil {
		return fmt.Errorf("%s: prepare insert: %w", s, err)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		s.w.close()
		return fmt.Errorf("%s: checkpoint connection: %w", s, err)
	}
	s.ckpt = startCheckpointer(s.db, conn, checkpointBytes, restartFrames, behindBytes)
	return nil
}

// String names the store in errors.
func (s *Store) String() string { return "sqlite " + s.path }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Dir is the data directory holding the file.
func (s *Store) Dir() string { return filepath.Dir(s.path) }

// Log is the log the store appends entries to.
func (s *Store) Log() string { return s.log }

// Close waits for an Append in progress to commit, stops the checkpointer
// and closes the database; closing the last connection copies the log into
// the file.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.ckpt.stop()
	if s.w != nil {
		s.w.close()
	}
	return s.db.Close()
}

// Package sqlite is the embedded audit store, the zero-setup default: one
// SQLite file (pure Go, no cgo) in WAL mode under the data directory,
// idempotent on (source, id) and indexed for time and type queries.
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
	"unicode/utf8"

	schema "github.com/auditbus/auditbus/schemas/sqlite"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the database file's name inside the data directory.
const FileName = "audit.db"

// Options tune the store; zero fields take the defaults.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: "FULL" (default: a
	// commit survives power loss) or "NORMAL" (faster; in WAL mode the
	// last commits may be lost on power loss, never on a process crash).
	Synchronous string
	// BusyTimeout is how long a statement waits for a lock (default 10s).
	BusyTimeout time.Duration
}

// Store is the SQLite audit store.
type Store struct {
	path   string
	db     *sql.DB
	wmu    sync.Mutex // SQLite has one writer; queueing here beats lock retries
	closed atomic.Bool
}

var _ sinks.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir and applies pending
// migrations. It fails with an error wrapping sinks.ErrSchemaTooNew when
// the file was migrated by a newer build.
func Open(ctx context.Context, dir string, o Options) (*Store, error) {
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
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_pragma=busy_timeout(%d)&_pragma=cache_size(-65536)&_txlock=immediate",
		path, o.Synchronous, o.BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: open: %w", path, err)
	}
	ms, err := loadMigrations(schema.Migrations)
	if err == nil {
		err = migrate(ctx, db, path, ms)
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Store{path: path, db: db}, nil
}

// String names the store in errors.
func (s *Store) String() string { return "sqlite " + s.path }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Dir is the data directory holding the file.
func (s *Store) Dir() string { return filepath.Dir(s.path) }

// Append stores recs in one transaction, skipping identities already stored.
func (s *Store) Append(ctx context.Context, recs []sinks.Record) error {
	if s.closed.Load() {
		return sinks.ErrClosed
	}
	if len(recs) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", s, err)
	}
	defer func() { _ = tx.Rollback() }()
	// Many rows per statement: the per-statement cost of database/sql and
	// the driver, not SQLite's, dominates single-row inserts.
	var full *sql.Stmt
	args := make([]any, 0, rowsPerInsert*insertCols)
	for start := 0; start < len(recs); start += rowsPerInsert {
		chunk := recs[start:min(start+rowsPerInsert, len(recs))]
		args = args[:0]
		for i := range chunk {
			if args, err = appendRow(args, &chunk[i]); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		st := full
		if st == nil || len(chunk) < rowsPerInsert {
			if st, err = tx.PrepareContext(ctx, insertSQL(len(chunk))); err != nil {
				return fmt.Errorf("%s: prepare: %w", s, err)
			}
			if len(chunk) == rowsPerInsert {
				full = st
				defer func() { _ = full.Close() }()
			} else {
				defer func() { _ = st.Close() }()
			}
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("%s: insert %d records: %w", s, len(chunk), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit %d records: %w", s, len(recs), err)
	}
	return nil
}

const (
	rowsPerInsert = 16
	insertCols    = 14
)

// insertSQL is an INSERT OR IGNORE of n rows.
func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR IGNORE INTO events (source, id, time_ns, type, subject, attrs, data, data_base64,
		transport, topic, partition, "offset", route, received_ns) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	return b.String()
}

// appendRow appends r's insertCols column values to args.
func appendRow(args []any, r *sinks.Record) ([]any, error) {
	// The data goes in its own column so its bytes never pass through a
	// JSON re-encoding; a shallow copy keeps the caller's event intact.
	e := r.Event
	e.DataEncoded, e.DataBase64 = nil, false
	attrs, err := e.MarshalJSON()
	if err != nil {
		return args, fmt.Errorf("encode event %q from %q: %w", e.ID(), e.Source(), err)
	}
	var recv int64
	if !r.Received.IsZero() {
		recv = r.Received.UnixNano()
	}
	return append(args, e.Source(), e.ID(), r.Time().UnixNano(), e.Type(), e.Subject(), attrs,
		r.Event.DataEncoded, r.Event.DataBase64, r.Transport, r.Topic, r.Partition, r.Offset, r.Route, recv), nil
}

const columns = `attrs, data, data_base64, transport, topic, partition, "offset", route, received_ns`

func scanRecord(sc interface{ Scan(...any) error }) (sinks.Record, error) {
	var (
		r     sinks.Record
		attrs []byte
		data  []byte
		b64   bool
		recv  int64
	)
	if err := sc.Scan(&attrs, &data, &b64, &r.Transport, &r.Topic, &r.Partition, &r.Offset, &r.Route, &recv); err != nil {
		return r, err
	}
	r.Event = event.New()
	if err := r.Event.UnmarshalJSON(attrs); err != nil {
		return r, fmt.Errorf("decode stored event: %w", err)
	}
	r.Event.DataEncoded, r.Event.DataBase64 = data, b64
	if recv != 0 {
		r.Received = time.Unix(0, recv).UTC()
	}
	return r, nil
}

// where builds the filter shared by Query and Counts, with bound
// parameters only.
func where(from, to time.Time, typ string, prefix bool) ([]string, []any) {
	var conds []string
	var args []any
	if !from.IsZero() {
		conds, args = append(conds, "time_ns >= ?"), append(args, from.UnixNano())
	}
	if !to.IsZero() {
		conds, args = append(conds, "time_ns < ?"), append(args, to.UnixNano())
	}
	if typ != "" {
		if prefix {
			// The range lets the type index narrow the scan; substr decides.
			conds = append(conds, "type >= ?", "substr(type, 1, ?) = ?")
			args = append(args, typ, utf8.RuneCountInString(typ), typ)
		} else {
			conds, args = append(conds, "type = ?"), append(args, typ)
		}
	}
	return conds, args
}

// Query returns one page of records matching q.
func (s *Store) Query(ctx context.Context, q sinks.Query) (sinks.Page, error) {
	if s.closed.Load() {
		return sinks.Page{}, sinks.ErrClosed
	}
	if err := q.Validate(); err != nil {
		return sinks.Page{}, err
	}
	conds, args := where(q.From, q.To, q.Type, q.TypePrefix)
	for _, f := range []struct{ col, v string }{{"source", q.Source}, {"subject", q.Subject}, {"id", q.ID}} {
		if f.v != "" {
			conds, args = append(conds, f.col+" = ?"), append(args, f.v)
		}
	}
	dir, cmp := "ASC", ">"
	if q.Desc {
		dir, cmp = "DESC", "<"
	}
	if q.Cursor != "" {
		c, _ := sinks.DecodeCursor(q.Cursor, q.Desc) // checked by Validate
		conds = append(conds, "(time_ns, source, id) "+cmp+" (?, ?, ?)")
		args = append(args, c.TimeNs, c.Source, c.ID)
	}
	stmt := "SELECT " + columns + " FROM events"
	if len(conds) > 0 {
		stmt += " WHERE " + strings.Join(conds, " AND ")
	}
	limit := q.PageSize()
	stmt += fmt.Sprintf(" ORDER BY time_ns %[1]s, source %[1]s, id %[1]s LIMIT %d", dir, limit+1)
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return sinks.Page{}, fmt.Errorf("%s: query: %w", s, err)
	}
	defer func() { _ = rows.Close() }()
	var p sinks.Page
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s, err)
		}
		p.Records = append(p.Records, r)
	}
	if err := rows.Err(); err != nil {
		return sinks.Page{}, fmt.Errorf("%s: query: %w", s, err)
	}
	if len(p.Records) > limit {
		p.Records = p.Records[:limit]
		p.Next = sinks.CursorAfter(&p.Records[limit-1], q.Desc)
	}
	return p, nil
}

// Get returns the record with this identity.
func (s *Store) Get(ctx context.Context, source, id string) (sinks.Record, error) {
	if s.closed.Load() {
		return sinks.Record{}, sinks.ErrClosed
	}
	row := s.db.QueryRowContext(ctx, "SELECT "+columns+" FROM events WHERE source = ? AND id = ?", source, id)
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%s: event %q from %q: %w", s, id, source, sinks.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("%s: get event %q from %q: %w", s, id, source, err)
	}
	return r, nil
}

// Counts returns record counts per bucket and type.
func (s *Store) Counts(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	if s.closed.Load() {
		return nil, sinks.ErrClosed
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	conds, args := where(q.From, q.To, q.Type, q.TypePrefix)
	from, width := q.From.UnixNano(), int64(q.Bucket)
	stmt := `SELECT (time_ns - ?) / ? AS b, type, COUNT(*) FROM events WHERE ` +
		strings.Join(conds, " AND ") + ` GROUP BY b, type ORDER BY b, type`
	rows, err := s.db.QueryContext(ctx, stmt, append([]any{from, width}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: counts: %w", s, err)
	}
	defer func() { _ = rows.Close() }()
	var out []sinks.Count
	for rows.Next() {
		var b int64
		var c sinks.Count
		if err := rows.Scan(&b, &c.Type, &c.N); err != nil {
			return nil, fmt.Errorf("%s: counts: %w", s, err)
		}
		c.Start = time.Unix(0, from+b*width).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: counts: %w", s, err)
	}
	return out, nil
}

// Close closes the database; the file and its WAL stay for the next Open.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.wmu.Lock() // let an Append in progress finish its commit
	defer s.wmu.Unlock()
	return s.db.Close()
}

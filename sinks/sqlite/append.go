package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/auditbus/auditbus/sinks"
)

const (
	// insertCols is the number of values one row of upsertSQL binds.
	insertCols = 16
	// rowsPerStmt is how many records one prepared upsert stores. Several
	// rows per statement save the per-statement cost of the driver; few,
	// because the driver matches each parameter to its argument by a
	// linear search, so binding grows with the square of the parameter
	// count.
	rowsPerStmt = 8
	// chunkRows is how many records are encoded ahead as one unit; a
	// multiple of rowsPerStmt.
	chunkRows = 16 * rowsPerStmt
)

// upsertSQL stores n records. For an identity already stored it replaces
// the row only when the new record was received later, so retries and
// older duplicates leave the stored record alone. SQLite applies the rows
// in order, so duplicates within one statement resolve the same way.
func upsertSQL(n int) string {
	return `INSERT INTO events (source, id, replay, time_ns, type, subject, attrs, data, data_base64,
	transport, topic, partition, "offset", route, outcome, received_ns) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?),", n), ",") + `
	ON CONFLICT (source, id, replay) DO UPDATE SET
	time_ns = excluded.time_ns, type = excluded.type, subject = excluded.subject,
	attrs = excluded.attrs, data = excluded.data, data_base64 = excluded.data_base64,
	transport = excluded.transport, topic = excluded.topic, partition = excluded.partition,
	"offset" = excluded."offset", route = excluded.route, outcome = excluded.outcome,
	received_ns = excluded.received_ns
	WHERE excluded.received_ns > events.received_ns`
}

// writer is the store's one writing connection with its prepared upserts,
// used through the driver directly: database/sql would convert and copy
// every argument of every statement again, and the store already holds
// them as driver values.
type writer struct {
	conn      *sql.Conn
	many, one driver.Stmt // of rowsPerStmt records and of one
}

func openWriter(ctx context.Context, db *sql.DB) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{conn: conn}
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return errors.New("driver cannot prepare with a context")
		}
		var err error
		if w.many, err = c.PrepareContext(ctx, upsertSQL(rowsPerStmt)); err != nil {
			return err
		}
		w.one, err = c.PrepareContext(ctx, upsertSQL(1))
		return err
	})
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *writer) close() {
	_ = w.conn.Raw(func(any) error {
		for _, st := range []driver.Stmt{w.many, w.one} {
			if st != nil {
				_ = st.Close()
			}
		}
		return nil
	})
	_ = w.conn.Close()
}

// chunk is a run of encoded records, insertCols values each, numbered for
// the statement that will store them.
type chunk struct {
	first int // index of the first record in the Append call
	args  []driver.NamedValue
	bytes int // about what the rows add to the database
	err   error
}

// Append stores recs in one transaction. For an identity already stored,
// the record with the later Received wins; of equal ones the stored stays.
// Duplicates within recs resolve as if appended one after the other.
func (s *Store) Append(ctx context.Context, recs []sinks.Record) error {
	if s.closed.Load() {
		return sinks.ErrClosed
	}
	if len(recs) == 0 {
		return nil
	}
	// Records are encoded on another goroutine, a chunk or two ahead of the
	// inserts, so the JSON and argument work runs beside SQLite's.
	chunks := make(chan chunk, 2)
	quit := make(chan struct{})
	defer close(quit)
	go encodeChunks(recs, chunks, quit)

	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return sinks.ErrClosed
	}
	if err := s.ckpt.keepUp(ctx); err != nil {
		return fmt.Errorf("%s: append %d records: %w", s, len(recs), err)
	}
	if s.w == nil { // the last one broke
		w, err := openWriter(ctx, s.db)
		if err != nil {
			return fmt.Errorf("%s: writing connection: %w", s, err)
		}
		s.w = w
	}
	written := 0
	err := s.w.conn.Raw(func(dc any) error {
		c, ok := dc.(driver.ConnBeginTx)
		if !ok {
			return errors.New("driver cannot begin with a context")
		}
		// The statements run without ctx's cancellation: given a
		// cancellable context, the driver starts a goroutine per statement
		// to interrupt it. ctx is checked once per chunk instead.
		run := context.WithoutCancel(ctx)
		tx, err := c.BeginTx(run, driver.TxOptions{})
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		if err := s.w.insert(ctx, run, recs, chunks, &written); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit %d records: %w", len(recs), err)
		}
		return nil
	})
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		s.w.close()
		s.w = nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	s.ckpt.appended(written)
	return nil
}

// insert runs the upserts of every chunk.
func (w *writer) insert(ctx, run context.Context, recs []sinks.Record, chunks <-chan chunk, written *int) error {
	many, one := w.many.(driver.StmtExecContext), w.one.(driver.StmtExecContext)
	for c := range chunks {
		if c.err != nil {
			return c.err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("append %d records: %w", len(recs), err)
		}
		for i := 0; i < len(c.args); {
			st, n := many, rowsPerStmt*insertCols
			if len(c.args)-i < n {
				st, n = one, insertCols
			}
			if _, err := st.ExecContext(run, c.args[i:i+n]); err != nil {
				first := c.first + i/insertCols
				return fmt.Errorf("insert records %d to %d of %d, from event %q of %q: %w",
					first+1, first+n/insertCols, len(recs), recs[first].Event.ID(), recs[first].Event.Source(), err)
			}
			i += n
		}
		*written += c.bytes
	}
	return nil
}

// encodeChunks encodes recs into chunks of chunkRows on out, until done or
// until quit closes.
func encodeChunks(recs []sinks.Record, out chan<- chunk, quit <-chan struct{}) {
	defer close(out)
	for start := 0; start < len(recs); start += chunkRows {
		end := min(start+chunkRows, len(recs))
		c := chunk{first: start, args: make([]driver.NamedValue, 0, (end-start)*insertCols)}
		// Rows past the last full statement's worth go one per statement.
		full := start + (end-start)/rowsPerStmt*rowsPerStmt
		for i := start; i < end && c.err == nil; i++ {
			base := 0
			if i < full {
				base = (i - start) % rowsPerStmt * insertCols
			}
			var n int
			var err error
			c.args, n, err = appendRow(c.args, base, &recs[i])
			if err != nil {
				c.err = fmt.Errorf("record %d of %d: %w", i+1, len(recs), err)
			}
			c.bytes += n
		}
		select {
		case out <- c:
		case <-quit:
			return
		}
		if c.err != nil {
			return
		}
	}
}

// appendRow appends r's insertCols column values to args, in upsertSQL's
// order and numbered from base+1, and returns about how many bytes the row
// takes.
func appendRow(args []driver.NamedValue, base int, r *sinks.Record) ([]driver.NamedValue, int, error) {
	// The data goes in its own column so its bytes never pass through a
	// JSON re-encoding; a shallow copy keeps the caller's event intact.
	e := r.Event
	e.DataEncoded, e.DataBase64 = nil, false
	attrs, err := e.MarshalJSON()
	if err != nil {
		return args, 0, fmt.Errorf("encode event %q from %q: %w", e.ID(), e.Source(), err)
	}
	var recv int64
	if !r.Received.IsZero() {
		recv = r.Received.UnixNano()
	}
	source, id, typ, subject := e.Source(), e.ID(), e.Type(), e.Subject()
	var data any // NULL for no data, not an empty blob
	if r.Event.DataEncoded != nil {
		data = r.Event.DataEncoded
	}
	for i, v := range [insertCols]any{source, id, r.Replay, r.Time().UnixNano(), typ, subject, attrs,
		data, r.Event.DataBase64, r.Transport, r.Topic, int64(r.Partition), r.Offset,
		r.Route, r.Outcome, recv} {
		args = append(args, driver.NamedValue{Ordinal: base + i + 1, Value: v})
	}
	// The identity is in the table and two indexes.
	n := len(attrs) + len(r.Event.DataEncoded) + 3*(len(source)+len(id)+len(r.Replay)) + 2*len(typ) + len(subject) +
		len(r.Transport) + len(r.Topic) + len(r.Route) + len(r.Outcome) + 64
	return args, n, nil
}

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/auditbus/auditbus/sinks"
)

const (
	// insertCols is the number of values one row of upsertSQL binds.
	insertCols = 16
	// rowsPerStmt is how many records one prepared upsert stores. Several
	// rows per statement save the per-statement cost of database/sql and
	// the driver; few, because the driver matches each parameter to its
	// argument by a linear search, so binding grows with the square of
	// the parameter count.
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

// inserts holds the prepared upserts: of rowsPerStmt records and of one.
type inserts struct{ many, one *sql.Stmt }

func prepareInserts(ctx context.Context, db *sql.DB) (inserts, error) {
	var ins inserts
	var err error
	if ins.many, err = db.PrepareContext(ctx, upsertSQL(rowsPerStmt)); err != nil {
		return ins, err
	}
	if ins.one, err = db.PrepareContext(ctx, upsertSQL(1)); err != nil {
		_ = ins.many.Close()
		return ins, err
	}
	return ins, nil
}

func (ins inserts) close() {
	_ = ins.many.Close()
	_ = ins.one.Close()
}

// chunk is a run of encoded records, insertCols values each.
type chunk struct {
	first int // index of the first record in the Append call
	args  []any
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
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", s, err)
	}
	defer func() { _ = tx.Rollback() }()
	many, one := tx.StmtContext(ctx, s.ins.many), tx.StmtContext(ctx, s.ins.one)
	written := 0
	for c := range chunks {
		if c.err != nil {
			return fmt.Errorf("%s: %w", s, c.err)
		}
		for i := 0; i < len(c.args); {
			st, n := many, rowsPerStmt*insertCols
			if len(c.args)-i < n {
				st, n = one, insertCols
			}
			if _, err := st.ExecContext(ctx, c.args[i:i+n]...); err != nil {
				first := c.first + i/insertCols
				return fmt.Errorf("%s: insert records %d to %d of %d, from event %q of %q: %w",
					s, first+1, first+n/insertCols, len(recs), recs[first].Event.ID(), recs[first].Event.Source(), err)
			}
			i += n
		}
		written += c.bytes
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit %d records: %w", s, len(recs), err)
	}
	s.ckpt.appended(written)
	return nil
}

// encodeChunks encodes recs into chunks of chunkRows on out, until done or
// until quit closes.
func encodeChunks(recs []sinks.Record, out chan<- chunk, quit <-chan struct{}) {
	defer close(out)
	for start := 0; start < len(recs); start += chunkRows {
		end := min(start+chunkRows, len(recs))
		c := chunk{first: start, args: make([]any, 0, (end-start)*insertCols)}
		for i := start; i < end && c.err == nil; i++ {
			var n int
			var err error
			c.args, n, err = appendRow(c.args, &recs[i])
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
// order, and returns about how many bytes the row takes.
func appendRow(args []any, r *sinks.Record) ([]any, int, error) {
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
	// Every value has a driver type already (int64, not int), so
	// database/sql passes them on without reflection.
	args = append(args, source, id, r.Replay, r.Time().UnixNano(), typ, subject, attrs,
		r.Event.DataEncoded, r.Event.DataBase64, r.Transport, r.Topic, int64(r.Partition), r.Offset,
		r.Route, r.Outcome, recv)
	// The identity is in the table and two indexes.
	n := len(attrs) + len(r.Event.DataEncoded) + 3*(len(source)+len(id)+len(r.Replay)) + 2*len(typ) + len(subject) +
		len(r.Transport) + len(r.Topic) + len(r.Route) + len(r.Outcome) + 64
	return args, n, nil
}

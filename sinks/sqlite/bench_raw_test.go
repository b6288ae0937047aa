package sqlite_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
)

// rawRowsPerStmt is how many rows one of the raw side's prepared inserts
// stores: of 4, 8, 16, 32 and 64, 8 ran the fewest instructions
// (callgrind); the driver finds each parameter's argument by a linear
// search, so longer statements cost more per row past a point.
const rawRowsPerStmt = 8

var benchEvents = flag.Int("events", 100_000, "events BenchmarkWriterVsRaw writes per round and side")

// BenchmarkWriterVsRaw measures, in one run, events/s and entries/s of
// the BenchmarkWriterSQLite workload (1 KiB events, each a new version
// with four entries: received and three deliveries; 16 callers writing
// batches of 100) through sinks.Writer into the store, and through raw
// modernc.org/sqlite (database/sql) inserting the same rows: the same
// version and entry rows, each entry with its key and the next position
// of one log, and the log's size, into tables the store created (the same
// schema and indexes), in WAL mode with synchronous=FULL, one transaction
// per batch of the sizes the writer's Appends had in the same round, in
// order. The raw side runs two goroutines, as the writer has two
// flushers: each builds the rows of the next batch (digest, the event as
// JSON, the entry keys) and then inserts them with prepared statements of
// rawRowsPerStmt rows under a mutex, on one connection; it looks nothing
// up first and checkpoints the way SQLite does by default (in the commit
// that fills 1,000 pages), with the store's page cache size and statement
// journal in memory. So the ratio is what the store does beyond inserting
// the rows: its lookups of stored versions and entry keys, the log's size
// read, the writer's batching. Every iteration is one round of both
// sides, each into a fresh file (-benchtime 5x for five rounds): the
// writer first in odd rounds, raw first in even ones (with the batch
// sizes of the writer's round before), so that neither side always runs
// on the machine the other left. Each side writes -events events per
// round (default 100,000, rounded up to whole calls of every caller; go
// test ... -args -events 30000). It reports auditbus-events/s and
// raw-events/s (medians of the rounds), the same in entries/s, ratio (the
// median of the rounds' auditbus ÷ raw), ratio-min, ratio-max and
// records/commit (the writer's mean batch, median of the rounds).
func BenchmarkWriterVsRaw(b *testing.B) {
	perCaller := (*benchEvents + benchCallers*benchBatch - 1) / (benchCallers * benchBatch)
	events := perCaller * benchCallers * benchBatch
	entries := 4 * events
	now := time.Now()
	var ours, theirs, ratios, batches []float64
	var sizes []int // the sizes of the writer's Appends in its last round
	writer := func() error {
		var took time.Duration
		var err error
		if sizes, took, err = writerRound(b.TempDir(), benchWork(perCaller, now, false)); err != nil {
			return err
		}
		ours = append(ours, float64(events)/took.Seconds())
		batches = append(batches, float64(events)/float64(len(sizes)))
		return nil
	}
	raw := func() error {
		took, err := rawRound(b.TempDir(), inWriteOrder(benchWork(perCaller, now, false)), sizes)
		theirs = append(theirs, float64(events)/took.Seconds())
		return err
	}
	for round := 0; b.Loop(); round++ {
		steps := []func() error{writer, raw}
		if round%2 == 1 {
			steps[0], steps[1] = raw, writer
		}
		for _, step := range steps {
			if err := step(); err != nil {
				b.Fatal(err)
			}
		}
		ratios = append(ratios, ours[round]/theirs[round])
		b.Logf("round %d: auditbus %.0f events/s (%.0f entries/s), raw %.0f events/s (%.0f entries/s), ratio %.2f, %d commits",
			round+1, ours[round], 4*ours[round], theirs[round], 4*theirs[round], ratios[round], len(sizes))
	}
	lo, hi := slices.Min(ratios), slices.Max(ratios)
	a, r := median(ours), median(theirs)
	b.ReportMetric(a, "auditbus-events/s")
	b.ReportMetric(r, "raw-events/s")
	b.ReportMetric(a*float64(entries)/float64(events), "auditbus-entries/s")
	b.ReportMetric(r*float64(entries)/float64(events), "raw-entries/s")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(lo, "ratio-min")
	b.ReportMetric(hi, "ratio-max")
	b.ReportMetric(median(batches), "records/commit")
	b.ReportMetric(float64(events), "events/round")
}

// median is the middle of xs, which it sorts.
func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// inWriteOrder lists the records of work in the order of their times.
func inWriteOrder(work [][][]sinks.Record) []sinks.Record {
	var recs []sinks.Record
	for n := range work[0] {
		for c := range work {
			recs = append(recs, work[c][n]...)
		}
	}
	return recs
}

// batchSizes is a sinks.Metrics that keeps the size of every successful
// Append, in order.
type batchSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (m *batchSizes) Flushed(rows int, _ time.Duration, err error) {
	if err == nil {
		m.mu.Lock()
		m.sizes = append(m.sizes, rows)
		m.mu.Unlock()
	}
}
func (m *batchSizes) Queued(int)                  {}
func (m *batchSizes) Appended(sinks.AppendResult) {}

// writerRound writes work through a Writer with default options into a
// new store in dir, and returns the sizes of its Appends and how long
// writing took until every record was durable.
func writerRound(dir string, work [][][]sinks.Record) ([]int, time.Duration, error) {
	s, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		return nil, 0, err
	}
	defer s.Close()
	var m batchSizes
	w := sinks.NewWriter(s, sinks.WriterOptions{Metrics: &m})
	start := time.Now()
	err = writeWork(w, work)
	took := time.Since(start)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return m.sizes, took, err
}

// rawRound inserts the rows of recs, in batches of sizes, into a new file
// in dir with the store's schema (see BenchmarkWriterVsRaw) and returns
// how long that took.
func rawRound(dir string, recs []sinks.Record, sizes []int) (time.Duration, error) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		return 0, err
	}
	if err := s.Close(); err != nil {
		return 0, err
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName)+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"+
		"&_pragma=busy_timeout(10000)&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)&_txlock=immediate")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ins, err := prepareRaw(ctx, db)
	if err != nil {
		return 0, err
	}
	starts := make([]int, len(sizes)+1)
	for i, n := range sizes {
		starts[i+1] = starts[i] + n
	}
	if starts[len(sizes)] != len(recs) {
		return 0, fmt.Errorf("the writer's batches hold %d records, not %d", starts[len(sizes)], len(recs))
	}
	var (
		mu    sync.Mutex // the one writer; held from begin to commit
		next  int        // the next batch to take, under mu
		seq   int64      // the log's size, under mu
		wg    sync.WaitGroup
		errs  = make(chan error, 2)
		start = time.Now()
	)
	for range 2 {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(sizes) {
					return
				}
				rows, err := rawRows(recs[starts[i]:starts[i+1]])
				if err == nil {
					mu.Lock()
					err = ins.batch(ctx, db, rows, &seq)
					mu.Unlock()
				}
				if err != nil {
					errs <- fmt.Errorf("batch %d: %w", i+1, err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	return took, <-errs
}

// rawBatch is the rows of one batch but for the entries' positions.
type rawBatch struct {
	versions [][]any
	entries  [][]any // the seq column is left nil
}

// rawRows builds the version and entry rows of recs as the store lays
// them out.
func rawRows(recs []sinks.Record) (rawBatch, error) {
	log := sinks.DefaultLogName()
	var rb rawBatch
	for i := range recs {
		r := &recs[i]
		d, err := sinks.DigestEvent(&r.Event)
		if err != nil {
			return rb, err
		}
		e := r.Event
		e.DataEncoded, e.DataBase64 = nil, false
		attrs, err := e.MarshalJSON()
		if err != nil {
			return rb, err
		}
		var data any
		if r.Event.DataEncoded != nil {
			data = r.Event.DataEncoded
		}
		rb.versions = append(rb.versions, []any{e.Source(), e.ID(), d[:], r.Event.Time().UnixNano(), r.Entries[0].Time.UnixNano(),
			e.Type(), e.Subject(), attrs, data, r.Event.DataBase64, false})
		for _, en := range r.Entries {
			en.Source, en.ID, en.Digest = e.Source(), e.ID(), d
			k := en.Key()
			rb.entries = append(rb.entries, []any{log, nil, k[:], en.Time.UnixNano(), en.Kind, en.Source, en.ID, d[:],
				en.Transport, en.Topic, int64(en.Partition), en.Offset, en.Request, en.Principal, en.Route, en.Destination,
				int64(en.Attempts), en.Error, en.Replay})
		}
	}
	return rb, nil
}

// rawInserts are the raw side's prepared statements: many of
// rawRowsPerStmt rows and one of a row, for each table, and the log's
// size.
type rawInserts struct {
	versionsMany, versionsOne, entriesMany, entriesOne, size *sql.Stmt
}

func prepareRaw(ctx context.Context, db *sql.DB) (*rawInserts, error) {
	values := func(n, cols int) string {
		row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + "),"
		return strings.TrimSuffix(strings.Repeat(row, n), ",")
	}
	const versions = `INSERT INTO versions (source, id, digest, time_ns, stored_ns, type, subject, attrs, data, data_base64, conflict) VALUES `
	const entries = `INSERT INTO entries (log, seq, key, time_ns, kind, source, id, digest, transport, topic, partition, "offset",
	request, principal, route, destination, attempts, error, replay) VALUES `
	var ins rawInserts
	for _, p := range []struct {
		st   **sql.Stmt
		text string
	}{
		{&ins.versionsMany, versions + values(rawRowsPerStmt, 11)}, {&ins.versionsOne, versions + values(1, 11)},
		{&ins.entriesMany, entries + values(rawRowsPerStmt, 19)}, {&ins.entriesOne, entries + values(1, 19)},
		{&ins.size, `INSERT INTO logs (name, size) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET size = excluded.size`},
	} {
		var err error
		if *p.st, err = db.PrepareContext(ctx, p.text); err != nil {
			return nil, fmt.Errorf("prepare %.40q: %w", p.text, err)
		}
	}
	return &ins, nil
}

// batch inserts rb in one transaction, giving its entries the positions
// after *seq, and moves *seq on.
func (ins *rawInserts) batch(ctx context.Context, db *sql.DB, rb rawBatch, seq *int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	n := *seq
	for _, row := range rb.entries {
		n++
		row[1] = n
	}
	if err := insertRows(ctx, tx, ins.versionsMany, ins.versionsOne, rb.versions); err != nil {
		return err
	}
	if err := insertRows(ctx, tx, ins.entriesMany, ins.entriesOne, rb.entries); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, ins.size).ExecContext(ctx, sinks.DefaultLogName(), n); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	*seq = n
	return nil
}

// insertRows inserts rows with many, rawRowsPerStmt at a time, and the
// rest with one.
func insertRows(ctx context.Context, tx *sql.Tx, many, one *sql.Stmt, rows [][]any) error {
	txMany, txOne := tx.StmtContext(ctx, many), tx.StmtContext(ctx, one)
	args := make([]any, 0, rawRowsPerStmt*len(rows[0]))
	for i := 0; i < len(rows); {
		st, n := txMany, rawRowsPerStmt
		if len(rows)-i < n {
			st, n = txOne, 1
		}
		args = args[:0]
		for _, row := range rows[i : i+n] {
			args = append(args, row...)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
		i += n
	}
	return nil
}

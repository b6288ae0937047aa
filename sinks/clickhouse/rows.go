package clickhouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/auditbus/auditbus/sinks"
)

// versionColumns are the columns of the versions table a read scans, in
// rowReader's order.
const versionColumns = "source, id, digest, added_ns, conflict, time_ns, attrs, data, data_flags"

// data_flags bits.
const (
	flagHasData = 1 << 0
	flagBase64  = 1 << 1
)

// vkey names a version.
type vkey struct {
	source, id string
	digest     sinks.Digest
}

// rawRow is a row of versionColumns as scanned, its event not yet decoded.
type rawRow struct {
	k        vkey
	added    int64
	conflict uint8
	timeNs   int64
	attrs    string
	data     string
	flags    uint8
}

// rowReader scans rows of versionColumns through one set of destinations.
type rowReader struct {
	rr     rawRow
	digest []byte
	dest   []any
}

func newRowReader() *rowReader {
	r := &rowReader{}
	rr := &r.rr
	r.dest = []any{&rr.k.source, &rr.k.id, &r.digest, &rr.added, &rr.conflict, &rr.timeNs, &rr.attrs, &rr.data, &rr.flags}
	return r
}

// scan returns the current row.
func (r *rowReader) scan(rows driver.Rows) (rawRow, error) {
	if err := rows.Scan(r.dest...); err != nil {
		return rawRow{}, err
	}
	rr := r.rr
	copy(rr.k.digest[:], r.digest)
	return rr, nil
}

// readRows appends every row of rows (of versionColumns) to raws and
// closes rows.
func readRows(rows driver.Rows, raws []rawRow) ([]rawRow, error) {
	return readAll(rows, raws, newRowReader().scan)
}

// readAll appends every row of rows, read by scan, to out and closes
// rows.
func readAll[T any](rows driver.Rows, out []T, scan func(driver.Rows) (T, error)) ([]T, error) {
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// compareRows orders rows as Query's ascending order does, and the rows
// of one version as they were added, the first first.
func compareRows(a, b *rawRow) int {
	if c := cmp.Compare(a.timeNs, b.timeNs); c != 0 {
		return c
	}
	if c := compareKeys(&a.k, &b.k); c != 0 {
		return c
	}
	return cmp.Compare(a.added, b.added)
}

// compareKeys orders versions by source, id and digest.
func compareKeys(a, b *vkey) int {
	if c := cmp.Compare(a.source, b.source); c != 0 {
		return c
	}
	if c := cmp.Compare(a.id, b.id); c != 0 {
		return c
	}
	return cmp.Compare(string(a.digest[:]), string(b.digest[:]))
}

// decodeChunk is the fewest items a decoding goroutine takes.
const decodeChunk = 512

// decodeAll decodes raws into out (of the same length), in parallel when
// there are many. With pick, out[i] is decoded from raws[pick[i]] instead.
func decodeAll(raws []rawRow, pick []int32, out []sinks.Item) error {
	row := func(i int) *rawRow {
		if pick != nil {
			return &raws[pick[i]]
		}
		return &raws[i]
	}
	n := len(out)
	workers := min(runtime.GOMAXPROCS(0), (n+decodeChunk-1)/decodeChunk)
	if workers <= 1 {
		var d attrDecoder
		for i := range n {
			if err := row(i).decode(&out[i], &d); err != nil {
				return err
			}
		}
		return nil
	}
	per := (n + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, n)
		wg.Go(func() {
			var d attrDecoder
			for i := lo; i < hi; i++ {
				if err := row(i).decode(&out[i], &d); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// decode sets *out to the item of the row, its event decoded by d and no
// trail.
func (rr *rawRow) decode(out *sinks.Item, d *attrDecoder) error {
	*out = sinks.Item{Digest: rr.k.digest, Conflict: rr.conflict != 0, Time: time.Unix(0, rr.timeNs).UTC()}
	var err error
	if out.Event, err = d.decode(rr.attrs); err != nil {
		return fmt.Errorf("decode stored event %q from %q: %w", rr.k.id, rr.k.source, err)
	}
	if rr.flags&flagHasData != 0 {
		// The string the driver made for this row has no other holder, so
		// its bytes become the event's data without another copy.
		out.Event.DataEncoded = []byte{} // empty, which is not none
		if rr.data != "" {
			out.Event.DataEncoded = unsafe.Slice(unsafe.StringData(rr.data), len(rr.data))
		}
	}
	out.Event.DataBase64 = rr.flags&flagBase64 != 0
	return nil
}

// entryColumns are the columns of an entries row a read scans, in
// entryReader's order.
const entryColumns = "log, seq, time_ns, kind, source, id, digest, transport, topic, `partition`, `offset`, " +
	"request, principal, route, destination, attempts, error, replay"

// fullEntryColumns adds the columns of migrations 0005 and 0006: what
// every read but the ledger migration's scans.
const fullEntryColumns = entryColumns + ", trace_id, span_id, signature"

// entryReader scans rows of entryColumns through one set of destinations.
type entryReader struct {
	en        sinks.Entry
	timeNs    int64
	digest    []byte
	partition int64
	attempts  uint32
	dest      []any
}

func newEntryReader(full bool) *entryReader {
	r := &entryReader{}
	e := &r.en
	r.dest = []any{&e.Log, &e.Seq, &r.timeNs, &e.Kind, &e.Source, &e.ID, &r.digest, &e.Transport, &e.Topic, &r.partition, &e.Offset,
		&e.Request, &e.Principal, &e.Route, &e.Destination, &r.attempts, &e.Error, &e.Replay}
	if full {
		r.dest = append(r.dest, &e.TraceID, &e.SpanID, &e.Signature)
	}
	return r
}

// scan returns the current row's entry.
func (r *entryReader) scan(rows driver.Rows) (sinks.Entry, error) {
	if err := rows.Scan(r.dest...); err != nil {
		return sinks.Entry{}, err
	}
	en := r.en
	copy(en.Digest[:], r.digest)
	en.Time = time.Unix(0, r.timeNs).UTC()
	en.Partition, en.Attempts = int(r.partition), int(r.attempts)
	return en, nil
}

// readEntries returns the entries of rows (of fullEntryColumns) and
// closes rows.
func readEntries(rows driver.Rows) ([]sinks.Entry, error) {
	return readAll(rows, nil, newEntryReader(true).scan)
}

// versionsTable is an external table of version keys, sent with a
// statement that reads it as the table named name.
func versionsTable(name string, n int, key func(i int) vkey) (*ext.Table, error) {
	t, err := ext.NewTable(name, ext.Column("source", "String"), ext.Column("id", "String"), ext.Column("digest", "FixedString(32)"))
	if err != nil {
		return nil, err
	}
	for i := range n {
		k := key(i)
		if err := t.Append(k.source, k.id, string(k.digest[:])); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// loadTrails sets the Trail of every item from the trails table, in one
// statement.
func (s *Store) loadTrails(ctx context.Context, items []sinks.Item) error {
	if len(items) == 0 {
		return nil
	}
	t, err := versionsTable("page", len(items), func(i int) vkey {
		return vkey{items[i].Event.Source(), items[i].Event.ID(), items[i].Digest}
	})
	if err != nil {
		return fmt.Errorf("trails: %w", err)
	}
	rows, err := s.conn.Query(ch.Context(ctx, ch.WithExternalTable(t)), "SELECT "+fullEntryColumns+" FROM "+s.n.trails+
		" WHERE (source, id, digest) IN (SELECT source, id, digest FROM page) ORDER BY source, id, digest, time_ns, log, seq")
	if err != nil {
		return fmt.Errorf("trails: %w", err)
	}
	ens, err := readEntries(rows)
	if err != nil {
		return fmt.Errorf("trails: %w", err)
	}
	attachTrails(items, ens)
	return nil
}

// attachTrails appends each of ens, in order, to the trail of the item
// of its version, if any.
func attachTrails(items []sinks.Item, ens []sinks.Entry) {
	at := make(map[vkey]int, len(items))
	for i := range items {
		it := &items[i]
		at[vkey{it.Event.Source(), it.Event.ID(), it.Digest}] = i
	}
	for _, en := range ens {
		if i, ok := at[vkey{en.Source, en.ID, en.Digest}]; ok {
			items[i].Trail = append(items[i].Trail, en)
		}
	}
}

// completeTrails reads the trails of the items whose trail is empty.
func (s *Store) completeTrails(ctx context.Context, items []sinks.Item) error {
	var at []int
	for i := range items {
		if len(items[i].Trail) == 0 {
			at = append(at, i)
		}
	}
	if len(at) == 0 {
		return nil
	}
	missing := make([]sinks.Item, len(at))
	for j, i := range at {
		missing[j] = items[i]
	}
	if err := s.loadTrails(ctx, missing); err != nil {
		return err
	}
	for j, i := range at {
		items[i].Trail = missing[j].Trail
	}
	return nil
}

// trailsCall is a read of trails running beside other statements.
type trailsCall struct {
	done chan struct{} // closed when ens and err are set
	ens  []sinks.Entry
	err  error
}

// trailsOf starts reading the trails of the versions the statement
// versions (bound with args) selects, in trail order, the source, id and
// digest of each.
func (s *Store) trailsOf(ctx context.Context, versions string, args []any) *trailsCall {
	c := &trailsCall{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		rows, err := s.conn.Query(ctx, "SELECT "+fullEntryColumns+" FROM "+s.n.trails+" WHERE (source, id, digest) IN ("+versions+
			") ORDER BY source, id, digest, time_ns, log, seq", args...)
		if err == nil {
			c.ens, err = readEntries(rows)
		}
		c.err = err
	}()
	return c
}

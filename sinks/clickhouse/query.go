package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/auditbus/auditbus/sinks"
)

// Every statement is bound with the driver's "?" placeholders (never user
// input in the SQL text). A page is read in rounds of two statements (see
// Query): the time bound of the next want matching rows, then the rows up
// to it that are their identity's winner, which a subquery on the identity
// table decides over all of the identity's rows. A row that is not (a
// later record of the identity sits elsewhere, with another time or type,
// or does not match the filters) is left out, and another round reads on
// if the page came up short. So queries see exactly one record per
// identity, the winner, whatever the state of background merges.

// filter accumulates WHERE conditions and their bound arguments.
type filter struct {
	conds []string
	args  []any
}

func (f *filter) add(cond string, args ...any) {
	f.conds = append(f.conds, cond)
	f.args = append(f.args, args...)
}

// and is a new filter with the conditions of f, then of g.
func (f filter) and(g filter) filter {
	return filter{append(append([]string(nil), f.conds...), g.conds...), append(append([]any(nil), f.args...), g.args...)}
}

func (f *filter) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}

// window adds the time window and type conditions shared by Query and
// Counts. Bounds on hour repeat those on time_ns for the primary index.
func (f *filter) window(from, to time.Time, typ string, prefix bool) {
	if !from.IsZero() {
		ns := from.UnixNano()
		f.add("hour >= ?", hourOf(ns))
		f.add("time_ns >= ?", ns)
	}
	if !to.IsZero() {
		ns := to.UnixNano()
		f.add("hour <= ?", hourOf(ns-1))
		f.add("time_ns < ?", ns)
	}
	switch {
	case typ == "":
	case !prefix:
		f.add("type = ?", typ)
	default:
		// Strings compare byte-wise, so the prefix's range is exact and the
		// primary index can use it.
		f.add("type >= ?", typ)
		if hi, ok := prefixEnd(typ); ok {
			f.add("type < ?", hi)
		}
	}
}

// prefixEnd is the least string greater than every string with prefix p,
// or false when there is none (p is all 0xff bytes).
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// queryFilter is the WHERE of q's filters, without its cursor.
func queryFilter(q sinks.Query) filter {
	f := positionFilter(q)
	for _, c := range []struct{ col, v string }{{"subject", q.Subject}, {"route", q.Route}, {"outcome", q.Outcome}} {
		if c.v != "" {
			f.add(c.col+" = ?", c.v)
		}
	}
	return f
}

// positionFilter is the WHERE of those of q's filters that every row of
// an identity at one position (type and time) matches alike: the time
// window, the type, the source and the id. Subject, route and outcome are
// a record's own.
func positionFilter(q sinks.Query) filter {
	var f filter
	f.window(q.From, q.To, q.Type, q.TypePrefix)
	for _, c := range []struct{ col, v string }{{"source", q.Source}, {"id", q.ID}} {
		if c.v != "" {
			f.add(c.col+" = ?", c.v)
		}
	}
	return f
}

// Query returns one page of records matching q.
func (s *Store) Query(ctx context.Context, q sinks.Query) (sinks.Page, error) {
	if err := q.Validate(); err != nil {
		return sinks.Page{}, err
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return sinks.Page{}, err
	}
	defer done()
	base := queryFilter(q)
	dir, cmp, hourCmp, boundCmp := "ASC", ">", ">=", "<="
	if q.Desc {
		dir, cmp, hourCmp, boundCmp = "DESC", "<", "<=", ">="
	}
	// Each round reads up to want winners after the position reached:
	//  1. bound: the time of the want-th matching row, a top-N of one
	//     column (no row: fewer than want remain, and this round is the
	//     last);
	//  2. the rows up to the bound that are their identity's winner, judged
	//     over all of the identity's rows by the identity table, sorted and
	//     cut to want. The sort (18.16 sorts in full for LIMIT BY) and the
	//     winner check cover about a page, not the rest of the window.
	// Several rows of one position, or losers, can leave a round short of
	// want; the next round starts past the bound.
	var pos filter // where the round starts
	var at *int64  // the time it starts at, when known
	switch {
	case q.Cursor != "":
		c, _ := sinks.DecodeCursor(q.Cursor, q.Desc) // checked by Validate
		at = &c.TimeNs
		// The time alone lets the primary index skip what lies before; the
		// tuple decides within the cursor's instant.
		pos.add("hour "+hourCmp+" ?", hourOf(c.TimeNs))
		pos.add("time_ns "+cmp+"= ?", c.TimeNs)
		pos.add("(time_ns, source, id, replay) "+cmp+" (?, ?, ?, ?)", c.TimeNs, c.Source, c.ID, c.Replay)
	case !q.Desc && !q.From.IsZero():
		ns := q.From.UnixNano()
		at = &ns
	case q.Desc && !q.To.IsZero():
		ns := q.To.UnixNano() - 1
		at = &ns
	}
	limit := q.PageSize()
	// The records and, beside them, their times, for the cursor.
	page, times := make([]sinks.Record, 0, limit+1), make([]int64, 0, limit+1)
	for len(page) <= limit {
		want := limit + 1 - len(page)
		f := base.and(pos)
		bound, bounded, err := s.pageBound(ctx, f, q, at, want)
		if err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s.name, err)
		}
		if bounded {
			f.add("hour "+boundCmp+" ?", hourOf(bound))
			f.add("time_ns "+boundCmp+" ?", bound)
		}
		w := f.and(filter{}) // a copy, with the winner check
		w.add("(source, id, replay, received_ns, version) IN (SELECT source, id, replay, received_ns, version FROM "+s.n.ids+
			" WHERE (source, id, replay) IN (SELECT source, id, replay FROM "+s.n.table+f.where()+")"+
			" ORDER BY received_ns DESC, version DESC LIMIT 1 BY source, id, replay)", f.args...)
		st := "SELECT " + recordColumns + ", time_ns FROM " + s.n.table + w.where() +
			fmt.Sprintf(" ORDER BY time_ns %[1]s, source %[1]s, id %[1]s, replay %[1]s LIMIT 1 BY time_ns, source, id, replay LIMIT %d", dir, want)
		rows, err := s.conn.Query(ctx, st, w.args...)
		if err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s.name, err)
		}
		if page, times, err = appendPage(rows, page, times); err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s.name, err)
		}
		if !bounded {
			break
		}
		pos = filter{}
		pos.add("hour "+hourCmp+" ?", hourOf(bound))
		pos.add("time_ns "+cmp+" ?", bound)
		at = &bound
	}
	p := sinks.Page{Records: page}
	if len(page) > limit {
		p.Records = page[:limit]
		last := &page[limit-1]
		p.Next = sinks.Cursor{TimeNs: times[limit-1], Source: last.Event.Source(), ID: last.Event.ID(), Replay: last.Replay, Desc: q.Desc}.Encode()
	}
	return p, nil
}

// boundProbes are the hours a page's time bound is first looked for in,
// from the hour the round starts at: a top-N over those hours reads their
// rows only, where one over the rest of the window would read every
// remaining row's time (18.16 cannot read in key order). When fewer than
// want rows lie there, the rest of the window is searched.
var boundProbes = []uint32{1, 8}

// pageBound returns the time of the want-th row f matches in q's order
// after the round's start (at, when known), or false when fewer remain.
func (s *Store) pageBound(ctx context.Context, f filter, q sinks.Query, at *int64, want int) (int64, bool, error) {
	dir := "ASC"
	if q.Desc {
		dir = "DESC"
	}
	var bound int64
	found := false
	err := probeHours(q, at, func(extra filter) (bool, error) {
		g := f.and(extra)
		err := s.conn.QueryRow(ctx, fmt.Sprintf("SELECT time_ns FROM %s%s ORDER BY time_ns %s LIMIT 1 OFFSET %d",
			s.n.table, g.where(), dir, want-1), g.args...).Scan(&bound)
		if isNoRows(err) {
			return false, nil
		}
		found = err == nil
		return found, err
	})
	return bound, found, err
}

// probeHours calls probe with a condition limiting a round's search to
// the hours of boundProbes from the hour the round starts at (at, when
// known) in q's order, one after the other until probe says it found
// what it looks for, and then, if it did not, with none: the rest of the
// window.
func probeHours(q sinks.Query, at *int64, probe func(extra filter) (bool, error)) error {
	// The window's last hour in q's order, when it has one.
	var edge *uint32
	if !q.Desc && !q.To.IsZero() {
		h := hourOf(q.To.UnixNano() - 1)
		edge = &h
	} else if q.Desc && !q.From.IsZero() {
		h := hourOf(q.From.UnixNano())
		edge = &h
	}
	if at != nil {
		start := hourOf(*at)
		for _, n := range boundProbes {
			var lim filter
			if !q.Desc {
				hi := start + n - 1
				if hi < start || (edge != nil && hi >= *edge) {
					break // the probe would cover the rest of the window
				}
				lim.add("hour <= ?", hi)
			} else {
				if n-1 > start || (edge != nil && start-(n-1) <= *edge) {
					break
				}
				lim.add("hour >= ?", start-(n-1))
			}
			if found, err := probe(lim); err != nil || found {
				return err
			}
		}
	}
	_, err := probe(filter{})
	return err
}

// appendPage appends the records of rows of recordColumns and time_ns to
// page, and their times to times. A large page's events are decoded from
// their stored JSON by several goroutines once the rows are read.
func appendPage(rows driver.Rows, page []sinks.Record, times []int64) ([]sinks.Record, []int64, error) {
	raws, times, err := readRows(rows, newRowReader(true, false), nil, times)
	if err != nil {
		return page, times, err
	}
	first := len(page)
	page = append(page, make([]sinks.Record, len(raws))...)
	return page, times, decodeAll(raws, nil, page[first:])
}

// readRows appends every row of rows, read through rd (which reads
// time_ns), to raws and its time to times, and closes rows.
func readRows(rows driver.Rows, rd *rowReader, raws []rawRow, times []int64) ([]rawRow, []int64, error) {
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		rr, err := rd.scan(rows)
		if err != nil {
			return raws, times, err
		}
		raws, times = append(raws, rr), append(times, rd.time)
	}
	return raws, times, rows.Err()
}

// decodeChunk is the fewest records a decoding goroutine takes.
const decodeChunk = 512

// decodeAll decodes raws into out (of the same length), in parallel when
// there are many. With pick, out[i] is decoded from raws[pick[i]] instead.
func decodeAll(raws []rawRow, pick []int32, out []sinks.Record) error {
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

const (
	recordColumns = eventColumns + ", transport, topic, `partition`, `offset`, route, outcome"
	// eventColumns are the leading columns of recordColumns that hold the
	// identity, Received, version and the event.
	eventColumns = "source, id, replay, received_ns, version, attrs, data, data_flags"
)

// rowKey tells one row of an identity from the others.
type rowKey struct {
	id       identity
	received int64
	version  uint64
}

// rawRow is a row of recordColumns as scanned, its event not yet decoded.
type rawRow struct {
	k     rowKey
	r     sinks.Record // all but the event
	attrs string
	data  string
	flags uint8
}

// rowReader scans rows of recordColumns (or eventColumns), and then
// time_ns if asked to, through one set of destinations.
type rowReader struct {
	rr         rawRow
	part, time int64
	dest       []any
}

func newRowReader(withTime, eventsOnly bool) *rowReader {
	r := &rowReader{}
	k, rec := &r.rr.k, &r.rr.r
	r.dest = []any{&k.id.source, &k.id.id, &k.id.replay, &k.received, &k.version, &r.rr.attrs, &r.rr.data, &r.rr.flags}
	if !eventsOnly {
		r.dest = append(r.dest, &rec.Transport, &rec.Topic, &r.part, &rec.Offset, &rec.Route, &rec.Outcome)
	}
	if withTime {
		r.dest = append(r.dest, &r.time)
	}
	return r
}

// scan returns the current row.
func (r *rowReader) scan(rows driver.Rows) (rawRow, error) {
	if err := rows.Scan(r.dest...); err != nil {
		return rawRow{}, err
	}
	rr := r.rr
	rr.r.Partition, rr.r.Replay = int(r.part), rr.k.id.replay
	if rr.k.received != 0 {
		rr.r.Received = time.Unix(0, rr.k.received).UTC()
	}
	return rr, nil
}

// decode sets *out to the record with its event decoded by d.
func (rr *rawRow) decode(out *sinks.Record, d *attrDecoder) error {
	*out = rr.r
	var err error
	if out.Event, err = d.decode(rr.attrs); err != nil {
		return fmt.Errorf("decode stored event %q from %q: %w", rr.k.id.id, rr.k.id.source, err)
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

// Get returns the original (not replayed) record with this source and id.
func (s *Store) Get(ctx context.Context, source, id string) (sinks.Record, error) {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return sinks.Record{}, err
	}
	defer done()
	// The winner's position from the identity table, then its row, found by
	// the events table's primary index.
	var (
		hour     uint32
		typ      string
		timeNs   int64
		received int64
		version  uint64
	)
	err = s.conn.QueryRow(ctx, "SELECT hour, type, time_ns, received_ns, version FROM "+s.n.ids+
		" WHERE source = ? AND id = ? AND replay = '' ORDER BY received_ns DESC, version DESC LIMIT 1", source, id).
		Scan(&hour, &typ, &timeNs, &received, &version)
	if err == nil {
		var rows driver.Rows
		rows, err = s.conn.Query(ctx, "SELECT "+recordColumns+" FROM "+s.n.table+
			" WHERE hour = ? AND type = ? AND time_ns = ? AND source = ? AND id = ? AND replay = '' AND received_ns = ? AND version = ? LIMIT 1",
			hour, typ, timeNs, source, id, received, version)
		if err == nil {
			defer func() { _ = rows.Close() }()
			if rows.Next() {
				var r sinks.Record
				rr, err := newRowReader(false, false).scan(rows)
				if err == nil {
					err = rr.decode(&r, &attrDecoder{})
				}
				if err != nil {
					return sinks.Record{}, fmt.Errorf("%s: get event %q from %q: %w", s.name, id, source, err)
				}
				return r, nil
			}
			// The row was dropped since (retention): not found.
			err = rows.Err()
		}
	}
	if err == nil || isNoRows(err) {
		return sinks.Record{}, fmt.Errorf("%s: event %q from %q: %w", s.name, id, source, sinks.ErrNotFound)
	}
	return sinks.Record{}, fmt.Errorf("%s: get event %q from %q: %w", s.name, id, source, err)
}

// Counts returns the non-zero counts of winning records per bucket and type.
func (s *Store) Counts(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var w filter
	w.window(q.From, q.To, q.Type, q.TypePrefix)
	from, width := q.From.UnixNano(), int64(q.Bucket)
	// Rows of the window that are their identity's winner, judged over all
	// of the identity's rows, in or out of the window.
	st := "SELECT intDiv(time_ns - ?, ?) AS b, type, count() FROM " + s.n.table + w.where() +
		" AND (source, id, replay, received_ns, version) IN (SELECT source, id, replay, received_ns, version FROM " + s.n.ids +
		" WHERE (source, id, replay) IN (SELECT source, id, replay FROM " + s.n.table + w.where() + ")" +
		" ORDER BY received_ns DESC, version DESC LIMIT 1 BY source, id, replay)" +
		" GROUP BY b, type ORDER BY b, type"
	args := append(append([]any{from, width}, w.args...), w.args...)
	rows, err := s.conn.Query(ctx, st, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: counts: %w", s.name, err)
	}
	defer func() { _ = rows.Close() }()
	var out []sinks.Count
	for rows.Next() {
		var b int64
		var n uint64
		var c sinks.Count
		if err := rows.Scan(&b, &c.Type, &n); err != nil {
			return nil, fmt.Errorf("%s: counts: %w", s.name, err)
		}
		c.Start, c.N = time.Unix(0, from+b*width).UTC(), int64(n)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: counts: %w", s.name, err)
	}
	return out, nil
}

// CountOriginals returns how many original records (Replay "") match q's
// filters, one per identity as Query pages them; q's cursor, limit and
// order are ignored. Replays count with it what they will publish.
func (s *Store) CountOriginals(ctx context.Context, q sinks.Query) (int64, error) {
	q.Cursor, q.Limit = "", 0
	if err := q.Validate(); err != nil {
		return 0, err
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	// A count runs beside the reads it counts for (a replay's pages): at a
	// lower priority the server gives those the cores first, and on one
	// thread it spends less in all (its hash sets of identities are not
	// built twice and merged).
	ctx = ch.Context(ctx, ch.WithSettings(ch.Settings{"priority": 10, "max_threads": 1}))
	if q.Subject == "" && q.Route == "" && q.Outcome == "" {
		return s.countByPosition(ctx, q)
	}
	f := queryFilter(q)
	f.add("replay = ''")
	// Rows that match and are their identity's winner, judged over all of
	// the identity's rows; an unmerged copy of a row counts once.
	st := "SELECT uniqExact(source, id) FROM " + s.n.table + f.where() +
		" AND (source, id, replay, received_ns, version) IN (SELECT source, id, replay, received_ns, version FROM " + s.n.ids +
		" WHERE (source, id, replay) IN (SELECT source, id, replay FROM " + s.n.table + f.where() + ")" +
		" ORDER BY received_ns DESC, version DESC LIMIT 1 BY source, id, replay)"
	var n uint64
	if err := s.conn.QueryRow(ctx, st, append(append([]any(nil), f.args...), f.args...)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: count: %w", s.name, err)
	}
	return int64(n), nil
}

// countByPosition is CountOriginals for a q whose filters are all on an
// identity's position (time, type) or on the identity itself: every row of
// an identity at one position matches alike. It counts the identities with
// a matching row, then takes away those recorded at more than one position
// (as Scan finds them) whose winner does not match.
func (s *Store) countByPosition(ctx context.Context, q sinks.Query) (int64, error) {
	f := positionFilter(q)
	f.add("replay = ''")
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT uniqExact(source, id) FROM "+s.n.table+f.where(), f.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: count: %w", s.name, err)
	}
	rows, err := s.positionRows(ctx, f, q.Type != "")
	if err != nil {
		return 0, fmt.Errorf("%s: count: %w", s.name, err)
	}
	type state struct {
		matched bool // a row matches: the identity was counted
		winner  positionRow
	}
	ids := make(map[identity]*state)
	for _, r := range rows {
		if r.k.id.replay != "" {
			continue // brought in by a hash it shares
		}
		st := ids[r.k.id]
		if st == nil {
			st = &state{winner: r}
			ids[r.k.id] = st
		} else if later(r.k, st.winner.k) {
			st.winner = r
		}
		st.matched = st.matched || matchesPosition(q, r)
	}
	for _, st := range ids {
		if st.matched && !matchesPosition(q, st.winner) {
			n--
		}
	}
	return int64(n), nil
}

// positionRow is a row of the identity table: an identity's record and
// its position.
type positionRow struct {
	k      rowKey
	typ    string
	timeNs int64
}

// matchesPosition reports whether a record at r's position matches q's
// time window, type, source and id.
func matchesPosition(q sinks.Query, r positionRow) bool {
	switch {
	case !q.From.IsZero() && r.timeNs < q.From.UnixNano(),
		!q.To.IsZero() && r.timeNs >= q.To.UnixNano(),
		q.Source != "" && r.k.id.source != q.Source,
		q.ID != "" && r.k.id.id != q.ID,
		q.Type != "" && !q.TypePrefix && r.typ != q.Type,
		q.Type != "" && q.TypePrefix && !strings.HasPrefix(r.typ, q.Type):
		return false
	}
	return true
}

// isNoRows reports the driver's "no rows" from QueryRow's Scan.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

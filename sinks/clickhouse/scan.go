package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// A scan reads in rounds of up to scanPages pages. Each round costs three
// kinds of statement:
//
//  1. the times of the round's rows, sorted (one Int64 column, a top-N),
//     which cut the round into pages at instants, never inside one;
//  2. the identities of the round's rows recorded at more than one time
//     (or, under a type filter, position: type and time), with all their
//     rows, from the identity table: only for those is the winner decided
//     away from the row, and they are rare (a redrive, a route's verdict
//     after the ingest's record, a duplicate delivery all keep the time);
//  3. per page, the page's rows, unsorted: the server reads them by the
//     primary index and the client sorts them and keeps, of each
//     identity's rows at one instant, the one with the latest (received,
//     version), which is the identity's winner unless (2) says otherwise.
//     When a filter is on a record's own field (subject, route, outcome),
//     the rows that do not match it are not read, so the page's statement
//     keeps only rows that are the winner among all of the identity's rows
//     at the instant, matching or not.
//
// Against Query's rounds (a top-N bound, then a page statement that sorts
// and checks every row against the identity table) this moves the sort to
// the client and the identity table lookup to once a round, for the few
// identities that need it.
const scanPages = 10

// roundPages is how many pages round (from 0) plans: the first only one,
// so that the first records come soon, then scanPages.
func roundPages(round int) int {
	if round == 0 {
		return 1
	}
	return scanPages
}

// Scan implements sinks.Scanner.
func (s *Store) Scan(ctx context.Context, q sinks.Query, o sinks.ScanOptions, fn func(recs []sinks.Record) error) error {
	if q.Desc {
		return sinks.Scan(ctx, s, q, o, fn) // refused there
	}
	if err := q.Validate(); err != nil {
		return err
	}
	at, where := positionFilter(q), queryFilter(q)
	own := q.Subject != "" || q.Route != "" || q.Outcome != ""
	// pos is where the round starts; start its time, when known; after the
	// time the scan is past, once it is past one.
	var pos filter
	var start, after *int64
	switch {
	case q.Cursor != "":
		c, _ := sinks.DecodeCursor(q.Cursor, false) // checked by Validate
		start = &c.TimeNs
		pos.add("hour >= ?", hourOf(c.TimeNs))
		pos.add("time_ns >= ?", c.TimeNs)
		pos.add("(time_ns, source, id, replay) > (?, ?, ?, ?)", c.TimeNs, c.Source, c.ID, c.Replay)
	case !q.From.IsZero():
		ns := q.From.UnixNano()
		start = &ns
	}
	limit := q.PageSize()
	for round := 0; ; round++ {
		var (
			times   []int64
			multi   map[identity]rowKey
			full    bool  // the round read as many times as it asked for
			instant int64 // then, the last one
		)
		n := limit * roundPages(round)
		err := s.call(ctx, func(ctx context.Context) (err error) {
			if times, err = s.scanTimes(ctx, where.and(pos), q, start, n, limit); err != nil || len(times) == 0 {
				return err
			}
			if full = len(times) == n; full {
				// The last instant may go on past what was read: it starts
				// the next round, unless it is all there is.
				instant = times[len(times)-1]
				times = times[:sort.Search(len(times), func(i int) bool { return times[i] >= instant })]
				if len(times) == 0 {
					return nil
				}
			}
			var upTo filter
			upTo.add("hour <= ?", hourOf(times[len(times)-1]))
			upTo.add("time_ns <= ?", times[len(times)-1])
			multi, err = s.multiPosition(ctx, where.and(pos).and(upTo), q.Type != "")
			return err
		})
		if err != nil {
			return err
		}
		if len(times) == 0 {
			if !full {
				return nil
			}
			// One instant fills the round: Query pages through it.
			if err := s.scanByQuery(ctx, q, after, instant, limit, fn); err != nil {
				return err
			}
			after = &instant
			pos = filter{}
			pos.add("hour >= ?", hourOf(instant))
			pos.add("time_ns > ?", instant)
			start = &instant
			continue
		}
		from, first := pos, 0
		for _, end := range pageEnds(times, limit) {
			b := times[end]
			if end+1-first > 2*limit {
				// An instant holds more rows than a page (and maybe more than
				// the round saw): Query pages through it within the instant,
				// so no read holds more than a page.
				if err := s.scanByQuery(ctx, q, after, b, limit, fn); err != nil {
					return err
				}
			} else {
				var to filter
				to.add("hour <= ?", hourOf(b))
				to.add("time_ns <= ?", b)
				var recs []sinks.Record
				err := s.call(ctx, func(ctx context.Context) (err error) {
					recs, err = s.scanPage(ctx, where.and(from).and(to), at.and(from).and(to), own, o.EventsOnly, multi, end+1-first)
					return err
				})
				if err != nil {
					return err
				}
				if len(recs) > 0 {
					if err := fn(recs); err != nil {
						return err
					}
				}
			}
			after = &times[end]
			from, first = filter{}, end+1
			from.add("hour >= ?", hourOf(b))
			from.add("time_ns > ?", b)
		}
		// The next round starts after this one's last instant; after a
		// short round it finds what was stored since, usually nothing.
		pos, start = from, &times[len(times)-1]
	}
}

// scanByQuery hands over q's records after the time after (or, when after
// is nil, from q's cursor or start) up to and including the instant b,
// paging through Query in pages of limit.
func (s *Store) scanByQuery(ctx context.Context, q sinks.Query, after *int64, b int64, limit int, fn func(recs []sinks.Record) error) error {
	q.Limit = limit
	if to := time.Unix(0, b+1).UTC(); q.To.IsZero() || q.To.After(to) {
		q.To = to
	}
	if after != nil {
		q.Cursor = ""
		if from := time.Unix(0, *after+1).UTC(); q.From.Before(from) {
			q.From = from
		}
	}
	return sinks.PageAll(ctx, s, q, fn)
}

// call runs one step of a scan as a call of its own: within the store's
// timeout, and not in the way of Close while the scan's caller works on
// what it read.
func (s *Store) call(ctx context.Context, step func(ctx context.Context) error) error {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := step(ctx); err != nil {
		return fmt.Errorf("%s: scan: %w", s.name, err)
	}
	return nil
}

// scanTimes returns the times of the first n rows f matches, ascending,
// looked for in the hours after start first. When those hours hold at
// least a page (limit) of rows, the round keeps to them even if they hold
// fewer than n, rather than reading the time of every row in the rest of
// the window to find the others.
func (s *Store) scanTimes(ctx context.Context, f filter, q sinks.Query, start *int64, n, limit int) ([]int64, error) {
	var times []int64
	err := probeHours(q, start, func(extra filter) (bool, error) {
		g := f.and(extra)
		rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT time_ns FROM %s%s ORDER BY time_ns LIMIT %d", s.n.table, g.where(), n), g.args...)
		if err != nil {
			return false, err
		}
		defer func() { _ = rows.Close() }()
		times = times[:0]
		for rows.Next() {
			var t int64
			if err := rows.Scan(&t); err != nil {
				return false, err
			}
			times = append(times, t)
		}
		return len(times) >= limit, rows.Err()
	})
	return times, err
}

// pageEnds cuts sorted times into pages of about limit rows and returns
// the index of each page's last row. A page ends at an instant's last
// row, so an instant with more rows than limit makes a longer page.
func pageEnds(times []int64, limit int) []int {
	var ends []int
	for i := 0; i < len(times); {
		j := min(i+limit, len(times)) - 1
		for j+1 < len(times) && times[j+1] == times[j] {
			j++
		}
		ends = append(ends, j)
		i = j + 1
	}
	return ends
}

// multiPosition returns, for the identities of the rows f matches that are
// recorded at more than one position, the key of their winner: the row
// with the latest (received, version) of all of the identity's rows.
// typed says whether f filters on the type (see positionRows).
func (s *Store) multiPosition(ctx context.Context, f filter, typed bool) (map[identity]rowKey, error) {
	rows, err := s.positionRows(ctx, f, typed)
	if err != nil {
		return nil, err
	}
	var multi map[identity]rowKey
	for _, r := range rows {
		if multi == nil {
			multi = make(map[identity]rowKey)
		}
		if w, ok := multi[r.k.id]; !ok || later(r.k, w) {
			multi[r.k.id] = r.k
		}
	}
	return multi, nil
}

// positionRows returns every identity table row of the identities of the
// rows f matches that are recorded at more than one time, or, when typed
// (f filters on the type), at more than one position (type and time). A
// filter without a type condition reads all of an identity's rows at one
// time alike, so the rows of other types at that time are read with it and
// judged beside it; telling the types apart costs more than the rest of
// the statement on a server without LowCardinality. The identity table is
// searched by a 64-bit hash of the identity, so a hash two identities
// share brings in the other's rows too: callers tell identities apart
// exactly.
func (s *Store) positionRows(ctx context.Context, f filter, typed bool) ([]positionRow, error) {
	const h = "cityHash64(source, id, replay)"
	cols, having := "time_ns", "min(time_ns) != max(time_ns)"
	if typed {
		cols, having = "type, time_ns", having+" OR min(type) != max(type)"
	}
	st := "SELECT source, id, replay, received_ns, version, type, time_ns FROM " + s.n.ids + " WHERE " + h + " IN (" +
		"SELECT h FROM (SELECT " + h + " AS h, " + cols + " FROM " + s.n.ids +
		" WHERE h IN (SELECT " + h + " FROM " + s.n.table + f.where() + "))" +
		" GROUP BY h HAVING " + having + ")"
	rows, err := s.conn.Query(ctx, st, f.args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []positionRow
	for rows.Next() {
		var r positionRow
		if err := rows.Scan(&r.k.id.source, &r.k.id.id, &r.k.id.replay, &r.k.received, &r.k.version, &r.typ, &r.timeNs); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// later reports whether a wins over b: a later Received, then a higher
// version.
func later(a, b rowKey) bool {
	return a.received > b.received || a.received == b.received && a.version > b.version
}

// scanPage reads the rows where matches, about expect of them, sorts them
// in Query's ascending order and keeps each identity's winner. at is where
// without the filters on a record's own fields; own says there are such
// filters. eventsOnly reads only the columns of the events (and the
// identity, Received and version).
func (s *Store) scanPage(ctx context.Context, where, at filter, own, eventsOnly bool, multi map[identity]rowKey, expect int) ([]sinks.Record, error) {
	w := where
	if own {
		w = where.and(filter{})
		w.add("(source, id, replay, received_ns, version) IN (SELECT source, id, replay, received_ns, version FROM "+s.n.table+at.where()+
			" ORDER BY received_ns DESC, version DESC LIMIT 1 BY time_ns, source, id, replay)", at.args...)
	}
	cols := recordColumns
	if eventsOnly {
		cols = eventColumns
	}
	rows, err := s.conn.Query(ctx, "SELECT "+cols+", time_ns FROM "+s.n.table+w.where(), w.args...)
	if err != nil {
		return nil, err
	}
	raws, times, err := readRows(rows, newRowReader(true, eventsOnly), make([]rawRow, 0, expect), make([]int64, 0, expect))
	if err != nil {
		return nil, err
	}
	order := make([]int32, len(raws))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		x, y := &raws[a].k, &raws[b].k
		if c := cmp.Compare(times[a], times[b]); c != 0 {
			return c
		}
		if c := cmp.Compare(x.id.source, y.id.source); c != 0 {
			return c
		}
		if c := cmp.Compare(x.id.id, y.id.id); c != 0 {
			return c
		}
		if c := cmp.Compare(x.id.replay, y.id.replay); c != 0 {
			return c
		}
		// The winner first: the latest Received, then the highest version.
		if c := cmp.Compare(y.received, x.received); c != 0 {
			return c
		}
		return cmp.Compare(y.version, x.version)
	})
	keep := order[:0] // the winners, in order, written over the order read
	prev := int32(-1)
	for _, i := range order {
		p := prev
		prev = i
		k := raws[i].k
		if p >= 0 && times[p] == times[i] && raws[p].k.id == k.id {
			continue // a losing row of the same identity and instant, or a copy
		}
		if w, ok := multi[k.id]; ok && (w.received != k.received || w.version != k.version) {
			continue // the winner is a row at another position
		}
		keep = append(keep, i)
	}
	recs := make([]sinks.Record, len(keep))
	return recs, decodeAll(raws, keep, recs)
}

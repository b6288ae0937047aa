package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// A scan reads in rounds of up to scanPages pages. Each round costs:
//
//  1. the times of the round's rows, sorted (one Int64 column, a top-N),
//     which cut the round into pages at instants, never inside one;
//  2. per page, the page's rows, unsorted: the server reads them by the
//     primary index and the client sorts them and keeps each version's
//     first stored row;
//  3. per page, unless the caller reads events only, the page's trails.
//
// Against Query's rounds (a top-N bound, then a page statement that sorts
// on the server) this moves the sort to the client and plans ten pages
// with one statement.
const scanPages = 10

// roundPages is how many pages round (from 0) plans: the first only one,
// so that the first items come soon, then scanPages.
func roundPages(round int) int {
	if round == 0 {
		return 1
	}
	return scanPages
}

// Scan implements sinks.Scanner.
func (s *Store) Scan(ctx context.Context, q sinks.Query, o sinks.ScanOptions, fn func(items []sinks.Item) error) error {
	if q.Desc {
		return sinks.Scan(ctx, s, q, o, fn) // refused there
	}
	if err := q.Validate(); err != nil {
		return err
	}
	q.NoTrail = q.NoTrail || o.EventsOnly
	where := versionFilter(q)
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
		pos.add("(time_ns, source, id, digest) > (?, ?, ?, ?)", c.TimeNs, c.Source, c.ID, string(c.Digest[:]))
	case !q.From.IsZero():
		ns := q.From.UnixNano()
		start = &ns
	}
	limit := q.PageSize()
	for round := 0; ; round++ {
		var (
			times   []int64
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
			}
			return nil
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
				var items []sinks.Item
				err := s.call(ctx, func(ctx context.Context) (err error) {
					items, err = s.scanPage(ctx, q, where.and(from).and(to), end+1-first)
					return err
				})
				if err != nil {
					return err
				}
				if len(items) > 0 {
					if err := fn(items); err != nil {
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

// scanByQuery hands over q's items after the time after (or, when after
// is nil, from q's cursor or start) up to and including the instant b,
// paging through Query in pages of limit.
func (s *Store) scanByQuery(ctx context.Context, q sinks.Query, after *int64, b int64, limit int, fn func(items []sinks.Item) error) error {
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

// scanTimes returns the times of the first n rows f (and q's entry
// filters) match, ascending, looked for in the hours after start first.
// When those hours hold at least a page (limit) of rows, the round keeps
// to them even if they hold fewer than n, rather than reading the time of
// every row in the rest of the window to find the others.
func (s *Store) scanTimes(ctx context.Context, f filter, q sinks.Query, start *int64, n, limit int) ([]int64, error) {
	var times []int64
	err := probeHours(q, start, func(extra filter) (bool, error) {
		g := s.withEntries(q, f.and(extra))
		rows, err := s.conn.Query(ctx, "SELECT time_ns FROM "+s.n.vers+g.where()+" ORDER BY time_ns LIMIT ?", append(g.args, n)...)
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

// scanPage reads the rows f (and q's entry filters) match, about expect
// of them, sorts them in Query's ascending order, keeps each version's
// first stored row and, unless q.NoTrail, reads the items' trails.
func (s *Store) scanPage(ctx context.Context, q sinks.Query, f filter, expect int) ([]sinks.Item, error) {
	w := s.withEntries(q, f)
	rows, err := s.conn.Query(ctx, "SELECT "+versionColumns+" FROM "+s.n.vers+w.where(), w.args...)
	if err != nil {
		return nil, err
	}
	raws, err := readRows(rows, make([]rawRow, 0, expect))
	if err != nil {
		return nil, err
	}
	order := make([]int32, len(raws))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return compareRows(&raws[a], &raws[b]) })
	keep := order[:0] // the first row of each version, in order, written over the order read
	prev := int32(-1)
	for _, j := range order {
		p := prev
		prev = j
		if p >= 0 && raws[p].k == raws[j].k && raws[p].timeNs == raws[j].timeNs {
			continue // a later stored copy
		}
		keep = append(keep, j)
	}
	items := make([]sinks.Item, len(keep))
	if err := decodeAll(raws, keep, items); err != nil {
		return nil, err
	}
	if q.NoTrail {
		return items, nil
	}
	return items, s.loadTrails(ctx, items)
}

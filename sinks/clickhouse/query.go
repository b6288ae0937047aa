package clickhouse

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/auditbus/auditbus/sinks"
)

// Every statement is bound with the driver's "?" placeholders or sends
// its lists as external tables (never user input in the SQL text). A page
// is read in rounds of two statements (see Query): the time bound of the
// next want matching versions, a top-N of one column, then the rows up to
// it. A version stored twice (two writers racing to store it) has two
// rows of one sorting key until a merge keeps the first stored; reads keep
// that one too (LIMIT 1 BY, or in the client), so they see each version
// once whatever the state of merges.

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
	f.timeRange("hour", "time_ns", from, to)
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

// timeRange adds from <= time < to, on the nanoseconds column ns and again
// on the hours column hour, for the primary index or the partitions' hour
// ranges; a zero bound leaves its side open.
func (f *filter) timeRange(hour, ns string, from, to time.Time) {
	if !from.IsZero() {
		t := from.UnixNano()
		f.add(hour+" >= ?", hourOf(t))
		f.add(ns+" >= ?", t)
	}
	if !to.IsZero() {
		t := to.UnixNano()
		f.add(hour+" <= ?", hourOf(t-1))
		f.add(ns+" < ?", t)
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

// within adds w's narrowing: the source and the type each start with one
// of their prefixes, as byte ranges (18.16 has no startsWith).
func (f *filter) within(w sinks.Within) {
	conds, args := w.SQL("source", "type", func(col, p string) (string, []any) {
		if hi, ok := prefixEnd(p); ok {
			return "(" + col + " >= ? AND " + col + " < ?)", []any{p, hi}
		}
		return col + " >= ?", []any{p}
	})
	f.conds = append(f.conds, conds...)
	f.args = append(f.args, args...)
}

// versionFilter is the WHERE of q's filters on the versions themselves.
func versionFilter(q sinks.Query) filter {
	var f filter
	f.window(q.From, q.To, q.Type, q.TypePrefix)
	f.within(q.Within)
	for _, c := range []struct{ col, v string }{{"source", q.Source}, {"id", q.ID}, {"subject", q.Subject}} {
		if c.v != "" {
			f.add(c.col+" = ?", c.v)
		}
	}
	return f
}

// hasEntryFilter reports whether q selects versions by their entries.
func hasEntryFilter(q sinks.Query) bool {
	return q.Route != "" || q.Destination != "" || q.Kind != "" || !q.ReceivedFrom.IsZero() || !q.ReceivedTo.IsZero()
}

// withEntries is f (on the versions table) and, when q has entry
// filters, the condition that the version has an entry matching all of
// them: a subquery on the trails table, which is read by version for the
// versions f matches when f says anything, so that a query's time window
// bounds the entries it reads.
func (s *Store) withEntries(q sinks.Query, f filter) filter {
	if !hasEntryFilter(q) {
		return f
	}
	var w filter // conditions on an entry
	for _, c := range []struct{ col, v string }{{"route", q.Route}, {"destination", q.Destination}} {
		if c.v != "" {
			w.add(c.col+" = ?", c.v)
		}
	}
	var at filter // the entry's time
	at.timeRange("hour", "time_ns", q.ReceivedFrom, q.ReceivedTo)
	if !q.Redrivable {
		if q.Kind != "" {
			w.add("kind = ?", q.Kind)
		}
		w = w.and(at)
	} else {
		w.add("kind IN (?, ?)", sinks.KindDeadLettered, sinks.KindDelivered)
	}
	if len(f.conds) > 0 {
		w.add("(source, id, digest) IN (SELECT source, id, digest FROM "+s.n.vers+f.where()+")", f.args...)
	}
	sub := "SELECT source, id, digest FROM " + s.n.trails + w.where()
	if q.Redrivable {
		// A dead letter no delivered entry of its route and destination
		// follows in the trail's order: the last dead letter in the entry
		// time range comes after the last delivery.
		pos := "(time_ns, log, seq)"
		dead := "kind = ?"
		args := []any{sinks.KindDeadLettered}
		if len(at.conds) > 0 {
			dead += " AND " + strings.Join(at.conds, " AND ")
			args = append(args, at.args...)
		}
		sub += " GROUP BY source, id, digest, route, destination HAVING countIf(" + dead + ") > 0 AND maxIf(" + pos + ", " + dead +
			") > maxIf(" + pos + ", kind = ?)"
		w.args = append(append(append(w.args, args...), args...), sinks.KindDelivered)
	}
	g := f.and(filter{})
	g.add("(source, id, digest) IN ("+sub+")", w.args...)
	return g
}

// Query returns one page of versions matching q.
func (s *Store) Query(ctx context.Context, q sinks.Query) (sinks.Page, error) {
	if err := q.Validate(); err != nil {
		return sinks.Page{}, err
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return sinks.Page{}, err
	}
	defer done()
	base := versionFilter(q)
	dir, op, hourOp, boundOp := "ASC", ">", ">=", "<="
	if q.Desc {
		dir, op, hourOp, boundOp = "DESC", "<", "<=", ">="
	}
	// Each round reads up to want versions after the position reached:
	//  1. bound: the time of the want-th matching row, a top-N of one
	//     column (no row: fewer than want remain, and this round is the
	//     last);
	//  2. the rows up to the bound, sorted and cut to want: the sort (18.16
	//     sorts in full for LIMIT BY) covers about a page, not the rest of
	//     the window.
	// Repeated rows of a version can leave a round short of want; the
	// next round starts past the bound.
	var pos filter // where the round starts
	var at *int64  // the time it starts at, when known
	switch {
	case q.Cursor != "":
		c, _ := sinks.DecodeCursor(q.Cursor, q.Desc) // checked by Validate
		at = &c.TimeNs
		// The time alone lets the primary index skip what lies before; the
		// tuple decides within the cursor's instant.
		pos.add("hour "+hourOp+" ?", hourOf(c.TimeNs))
		pos.add("time_ns "+op+"= ?", c.TimeNs)
		pos.add("(time_ns, source, id, digest) "+op+" (?, ?, ?, ?)", c.TimeNs, c.Source, c.ID, string(c.Digest[:]))
	case !q.Desc && !q.From.IsZero():
		ns := q.From.UnixNano()
		at = &ns
	case q.Desc && !q.To.IsZero():
		ns := q.To.UnixNano() - 1
		at = &ns
	}
	limit := q.PageSize()
	var raws []rawRow
	// Without entry filters, selecting a round's versions is cheap: the
	// trails are read beside the page, by a statement that selects the
	// page's versions again, rather than after it.
	alongside := !q.NoTrail && !hasEntryFilter(q)
	var calls []*trailsCall
	defer func() {
		for _, c := range calls {
			<-c.done
		}
	}()
	for len(raws) <= limit {
		want := limit + 1 - len(raws)
		f := base.and(pos)
		bound, bounded, err := s.pageBound(ctx, f, q, at, want)
		if err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s.name, err)
		}
		if bounded {
			f.add("hour "+boundOp+" ?", hourOf(bound))
			f.add("time_ns "+boundOp+" ?", bound)
		}
		w := s.withEntries(q, f)
		sel := " FROM " + s.n.vers + w.where() + " ORDER BY time_ns " + dir + ", source " + dir + ", id " + dir +
			", digest " + dir + ", added_ns LIMIT 1 BY time_ns, source, id, digest LIMIT ?"
		args := append(w.args, want)
		if alongside {
			calls = append(calls, s.trailsOf(ctx, "SELECT source, id, digest"+sel, args))
		}
		rows, err := s.conn.Query(ctx, "SELECT "+versionColumns+sel, args...)
		if err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s.name, err)
		}
		if raws, err = readRows(rows, raws); err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s.name, err)
		}
		if !bounded {
			break
		}
		pos = filter{}
		pos.add("hour "+hourOp+" ?", hourOf(bound))
		pos.add("time_ns "+op+" ?", bound)
		at = &bound
	}
	var p sinks.Page
	if len(raws) > limit {
		raws = raws[:limit]
		last := &raws[limit-1]
		p.Next = sinks.Cursor{TimeNs: last.timeNs, Source: last.k.source, ID: last.k.id, Digest: last.k.digest, Desc: q.Desc}.Encode()
	}
	p.Items = make([]sinks.Item, len(raws))
	if err := decodeAll(raws, nil, p.Items); err != nil {
		return sinks.Page{}, fmt.Errorf("%s: query: %w", s.name, err)
	}
	switch {
	case alongside:
		var ens []sinks.Entry
		for _, c := range calls {
			<-c.done
			if c.err != nil {
				return sinks.Page{}, fmt.Errorf("%s: query: trails: %w", s.name, c.err)
			}
			ens = append(ens, c.ens...)
		}
		attachTrails(p.Items, ens)
		// A version appended between the two statements can push one of the
		// page's out of the second's selection: those are read again.
		if err := s.completeTrails(ctx, p.Items); err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s.name, err)
		}
	case !q.NoTrail:
		if err := s.loadTrails(ctx, p.Items); err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s.name, err)
		}
	}
	return p, nil
}

// boundProbes are the hours a page's time bound is first looked for in,
// from the hour the round starts at: a top-N over those hours reads their
// rows only, where one over the rest of the window would read every
// remaining row's time (18.16 cannot read in key order). When fewer than
// want rows lie there, the rest of the window is searched.
var boundProbes = []uint32{1, 8}

// pageBound returns the time of the want-th row f (and q's entry
// filters) match in q's order after the round's start (at, when known),
// or false when fewer remain.
func (s *Store) pageBound(ctx context.Context, f filter, q sinks.Query, at *int64, want int) (int64, bool, error) {
	dir := "ASC"
	if q.Desc {
		dir = "DESC"
	}
	var bound int64
	found := false
	err := probeHours(q, at, func(extra filter) (bool, error) {
		g := s.withEntries(q, f.and(extra))
		err := s.conn.QueryRow(ctx, "SELECT time_ns FROM "+s.n.vers+g.where()+" ORDER BY time_ns "+dir+" LIMIT 1 OFFSET ?",
			append(g.args, want-1)...).Scan(&bound)
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

// Get returns every version of the event (source, id), in the order they
// were first stored, each with its trail.
func (s *Store) Get(ctx context.Context, source, id string) ([]sinks.Item, error) {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	items, err := s.get(ctx, source, id)
	if err != nil {
		return nil, fmt.Errorf("%s: get event %q from %q: %w", s.name, id, source, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: event %q from %q: %w", s.name, id, source, sinks.ErrNotFound)
	}
	return items, nil
}

func (s *Store) get(ctx context.Context, source, id string) ([]sinks.Item, error) {
	// The versions' positions from the identity table, then their rows,
	// found by the versions table's primary index.
	rows, err := s.conn.Query(ctx, "SELECT digest, argMin(hour, added_ns), argMin(type, added_ns), argMin(time_ns, added_ns) FROM "+
		s.n.idents+" WHERE source = ? AND id = ? GROUP BY digest", source, id)
	if err != nil {
		return nil, err
	}
	var at []ch.GroupSet
	for rows.Next() {
		var (
			digest string
			hour   uint32
			typ    string
			timeNs int64
		)
		if err := rows.Scan(&digest, &hour, &typ, &timeNs); err != nil {
			_ = rows.Close()
			return nil, err
		}
		at = append(at, ch.GroupSet{Value: []any{hour, typ, timeNs, source, id, digest}})
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil || len(at) == 0 {
		return nil, err
	}
	rows, err = s.conn.Query(ctx, "SELECT "+versionColumns+" FROM "+s.n.vers+
		" WHERE (hour, type, time_ns, source, id, digest) IN (?)", at)
	if err != nil {
		return nil, err
	}
	raws, err := readRows(rows, nil)
	if err != nil {
		return nil, err
	}
	// Each version's first added row, in the order they were added.
	slices.SortFunc(raws, func(a, b rawRow) int {
		if c := compareKeys(&a.k, &b.k); c != 0 {
			return c
		}
		return cmp.Compare(a.added, b.added)
	})
	raws = slices.CompactFunc(raws, func(a, b rawRow) bool { return a.k == b.k })
	slices.SortStableFunc(raws, func(a, b rawRow) int { return cmp.Compare(a.added, b.added) })
	items := make([]sinks.Item, len(raws))
	if err := decodeAll(raws, nil, items); err != nil {
		return nil, err
	}
	return items, s.loadTrails(ctx, items)
}

// CountVersions returns how many versions match q's filters; q's cursor,
// limit and order are ignored. Replays count with it what they will
// publish.
func (s *Store) CountVersions(ctx context.Context, q sinks.Query) (int64, error) {
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
	// thread it spends less in all (its hash sets are not built twice and
	// merged).
	ctx = ch.Context(ctx, ch.WithSettings(ch.Settings{"priority": 10, "max_threads": 1}))
	f := s.withEntries(q, versionFilter(q))
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT uniqExact(source, id, digest) FROM "+s.n.vers+f.where(), f.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: count: %w", s.name, err)
	}
	return int64(n), nil
}

// isNoRows reports the driver's "no rows" from QueryRow's Scan.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

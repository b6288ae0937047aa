package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditbus/auditbus/sinks"
)

// fewEntries is how many entries of a route an entry filter may select
// for a query to start from them (through entries_route), sorting the
// versions they name, instead of walking the versions in order and
// checking each one's entries.
const fewEntries = 2000

// selection is the FROM and WHERE of a query of versions, aliased v, with
// its bound parameters.
type selection struct {
	from  string
	conds []string
	args  []any
}

func (sel *selection) add(cond string, args ...any) {
	sel.conds = append(sel.conds, cond)
	sel.args = append(sel.args, args...)
}

func (sel *selection) where() string {
	if len(sel.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(sel.conds, " AND ")
}

// timeAndType adds the filters shared by Query and Counts.
func (sel *selection) timeAndType(from, to time.Time, typ string, prefix bool) {
	if !from.IsZero() {
		sel.add("v.time_ns >= ?", from.UnixNano())
	}
	if !to.IsZero() {
		sel.add("v.time_ns < ?", to.UnixNano())
	}
	if typ != "" {
		if prefix {
			// The range lets the type index narrow the scan; substr decides.
			sel.add("v.type >= ?", typ)
			sel.add("substr(v.type, 1, ?) = ?", utf8.RuneCountInString(typ), typ)
		} else {
			sel.add("v.type = ?", typ)
		}
	}
}

// within adds w's narrowing: the source and the type each start with one
// of their prefixes.
func (sel *selection) within(w sinks.Within) {
	conds, args := w.SQL("v.source", "v.type", func(col, p string) (string, []any) {
		return "substr(" + col + ", 1, ?) = ?", []any{utf8.RuneCountInString(p), p}
	})
	sel.conds = append(sel.conds, conds...)
	sel.args = append(sel.args, args...)
}

// selectVersions is the selection of q's filters, without its cursor.
// Entry filters keep the versions with an entry matching all of them;
// when they name a route with few entries, the query starts from those.
func (s *Store) selectVersions(ctx context.Context, q sinks.Query) (selection, error) {
	sel := selection{from: "versions v"}
	sel.timeAndType(q.From, q.To, q.Type, q.TypePrefix)
	sel.within(q.Within)
	for _, f := range []struct{ col, v string }{{"v.source", q.Source}, {"v.subject", q.Subject}, {"v.id", q.ID}} {
		if f.v != "" {
			sel.add(f.col+" = ?", f.v)
		}
	}
	var en selection
	for _, f := range []struct{ col, v string }{{"e.route", q.Route}, {"e.destination", q.Destination}, {"e.kind", q.Kind}} {
		if f.v != "" {
			en.add(f.col+" = ?", f.v)
		}
	}
	if !q.ReceivedFrom.IsZero() {
		en.add("e.time_ns >= ?", q.ReceivedFrom.UnixNano())
	}
	if !q.ReceivedTo.IsZero() {
		en.add("e.time_ns < ?", q.ReceivedTo.UnixNano())
	}
	if len(en.conds) == 0 {
		return sel, nil
	}
	if q.Redrivable {
		// A delivery to the same route and destination after the dead
		// letter, in trail order, redrove it.
		en.add(`NOT EXISTS (SELECT 1 FROM entries d WHERE d.source = e.source AND d.id = e.id AND d.digest = e.digest
		AND d.kind = ? AND d.route = e.route AND d.destination = e.destination
		AND (d.time_ns, d.log, d.seq) > (e.time_ns, e.log, e.seq))`, sinks.KindDelivered)
	}
	few := false
	if q.Route != "" {
		// Implied by the route's filter; named so that SQLite may use
		// entries_route, which holds only entries with a route.
		en.add("e.route <> ''")
		var n int
		err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM entries e INDEXED BY entries_route`+
			en.where()+` LIMIT ?)`, append(en.args, s.fewEntries+1)...).Scan(&n)
		if err != nil {
			return sel, fmt.Errorf("count the entries of route %q: %w", q.Route, err)
		}
		few = n <= s.fewEntries
	}
	if few {
		sel.from = `(SELECT DISTINCT e.source, e.id, e.digest FROM entries e INDEXED BY entries_route` + en.where() +
			`) c CROSS JOIN versions v ON v.source = c.source AND v.id = c.id AND v.digest = c.digest`
		sel.args = append(en.args, sel.args...)
		return sel, nil
	}
	en.conds = append([]string{"e.source = v.source AND e.id = v.id AND e.digest = v.digest"}, en.conds...)
	sel.add("EXISTS (SELECT 1 FROM entries e"+en.where()+")", en.args...)
	return sel, nil
}

// CountVersions returns how many versions match q's filters; q's cursor,
// limit and order are ignored. Replays count with it what they will
// publish.
func (s *Store) CountVersions(ctx context.Context, q sinks.Query) (int64, error) {
	if s.closed.Load() {
		return 0, sinks.ErrClosed
	}
	q.Cursor, q.Limit = "", 0
	if err := q.Validate(); err != nil {
		return 0, err
	}
	sel, err := s.selectVersions(ctx, q)
	var n int64
	if err == nil {
		err = s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+sel.from+sel.where(), sel.args...).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: count versions: %w", s, err)
	}
	return n, nil
}

// pageStmt is the statement of one page of q (a valid query) and its
// arguments, but for the last, the page size plus one.
func (s *Store) pageStmt(ctx context.Context, q sinks.Query) (string, []any, error) {
	sel, err := s.selectVersions(ctx, q)
	if err != nil {
		return "", nil, err
	}
	dir, cmp := "ASC", ">"
	if q.Desc {
		dir, cmp = "DESC", "<"
	}
	if q.Cursor != "" {
		c, _ := sinks.DecodeCursor(q.Cursor, q.Desc) // checked by Validate
		if q.ID != "" && c.ID == q.ID {
			// The id is fixed: without it the cursor is a range of
			// versions_id, (id, time_ns, source, digest).
			sel.add("(v.time_ns, v.source, v.digest) "+cmp+" (?, ?, ?)", c.TimeNs, c.Source, c.Digest[:])
		} else {
			sel.add("(v.time_ns, v.source, v.id, v.digest) "+cmp+" (?, ?, ?, ?)", c.TimeNs, c.Source, c.ID, c.Digest[:])
		}
	}
	return "SELECT " + versionColumns + " FROM " + sel.from + sel.where() +
		fmt.Sprintf(" ORDER BY v.time_ns %[1]s, v.source %[1]s, v.id %[1]s, v.digest %[1]s LIMIT ?", dir), sel.args, nil
}

// Query returns one page of versions matching q, with their trails
// unless q.NoTrail.
func (s *Store) Query(ctx context.Context, q sinks.Query) (sinks.Page, error) {
	if s.closed.Load() {
		return sinks.Page{}, sinks.ErrClosed
	}
	if err := q.Validate(); err != nil {
		return sinks.Page{}, err
	}
	limit := q.PageSize()
	stmt, args, err := s.pageStmt(ctx, q)
	if err != nil {
		return sinks.Page{}, fmt.Errorf("%s: query: %w", s, err)
	}
	items, vids, err := s.versions(ctx, stmt, append(args, limit+1)...)
	if err != nil {
		return sinks.Page{}, fmt.Errorf("%s: query: %w", s, err)
	}
	var p sinks.Page
	if len(items) > limit {
		items, vids = items[:limit], vids[:limit]
		p.Next = sinks.CursorAfter(&items[limit-1], q.Desc)
	}
	if !q.NoTrail {
		if err := s.trails(ctx, items, vids); err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s, err)
		}
	}
	p.Items = items
	return p, nil
}

// Get returns every version of source and id, in the order first stored,
// with their trails.
func (s *Store) Get(ctx context.Context, source, id string) ([]sinks.Item, error) {
	if s.closed.Load() {
		return nil, sinks.ErrClosed
	}
	items, vids, err := s.versions(ctx, "SELECT "+versionColumns+" FROM versions v WHERE v.source = ? AND v.id = ? ORDER BY v.vid", source, id)
	if err == nil && len(items) > 0 {
		err = s.trails(ctx, items, vids)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get event %q from %q: %w", s, id, source, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: event %q from %q: %w", s, id, source, sinks.ErrNotFound)
	}
	return items, nil
}

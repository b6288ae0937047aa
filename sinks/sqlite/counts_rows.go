package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// maxIndexCounts bounds the COUNT(*) queries countsByIndex runs: the types
// with versions in the range times the buckets. Beyond it Counts reads the
// range's rows once instead.
const maxIndexCounts = 20000

// countsByIndex counts the versions of q per bucket and type from the
// index on (type, time_ns) alone: it finds the types by seeking from one
// to the next, and counts each bucket of each type with a range count,
// which SQLite answers from the index without reading a row. That is ten
// times faster than grouping the rows of a busy hour, which reads each
// row for its type. ok is false when there are too many types and buckets
// for it to pay, and the caller groups the rows instead.
func (s *Store) countsByIndex(ctx context.Context, q sinks.CountQuery) (out []sinks.Count, ok bool, err error) {
	from, to, width := q.From.UnixNano(), q.To.UnixNano(), int64(q.Bucket)
	buckets := (to - from + width - 1) / width
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = conn.Close() }()
	count, err := conn.PrepareContext(ctx, `SELECT COUNT(*) FROM versions INDEXED BY versions_type_time WHERE type = ? AND time_ns >= ? AND time_ns < ?`)
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = count.Close() }()
	var types []string
	if q.Type != "" && !q.TypePrefix {
		types = []string{q.Type}
	} else {
		// Each step is one seek in the index: the least type at or after
		// the prefix ("" for every type), then the next after each.
		first, err := conn.PrepareContext(ctx, `SELECT MIN(type) FROM versions WHERE type >= ?`)
		if err != nil {
			return nil, false, err
		}
		defer func() { _ = first.Close() }()
		next, err := conn.PrepareContext(ctx, `SELECT MIN(type) FROM versions WHERE type > ?`)
		if err != nil {
			return nil, false, err
		}
		defer func() { _ = next.Close() }()
		exists, err := conn.PrepareContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM versions INDEXED BY versions_type_time WHERE type = ? AND time_ns >= ? AND time_ns < ? LIMIT 1)`)
		if err != nil {
			return nil, false, err
		}
		defer func() { _ = exists.Close() }()
		var t sql.NullString
		err = first.QueryRowContext(ctx, q.Type).Scan(&t)
		for err == nil && t.Valid && strings.HasPrefix(t.String, q.Type) {
			// Only the types with a version in the range get bucket counts.
			var n int64
			if err = exists.QueryRowContext(ctx, t.String, from, to).Scan(&n); err != nil {
				break
			}
			if n > 0 {
				types = append(types, t.String)
				if int64(len(types))*buckets > maxIndexCounts {
					return nil, false, nil
				}
			}
			err = next.QueryRowContext(ctx, t.String).Scan(&t)
		}
		if err != nil {
			return nil, false, err
		}
	}
	if buckets*int64(len(types)) > maxIndexCounts {
		return nil, false, nil
	}
	for _, t := range types {
		for b := int64(0); b < buckets; b++ {
			start := from + b*width
			var n int64
			if err := count.QueryRowContext(ctx, t, start, min(start+width, to)).Scan(&n); err != nil {
				return nil, false, err
			}
			if n > 0 {
				out = append(out, sinks.Count{Start: time.Unix(0, start).UTC(), Type: t, N: n})
			}
		}
	}
	sortCounts(out)
	return out, true, nil
}

// countOutcomes counts the entries with a route per bucket of their
// time and per kind, from entries_route alone: it steps from one (route,
// destination, kind) of the index to the next and counts each bucket of
// each with a range COUNT(*). With more than maxIndexCounts counts to
// make, it groups the index's entries of the range instead.
func (s *Store) countOutcomes(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	from, to, width := q.From.UnixNano(), q.To.UnixNano(), int64(q.Bucket)
	buckets := (to - from + width - 1) / width
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	next, err := conn.PrepareContext(ctx, `SELECT route, destination, kind FROM entries INDEXED BY entries_route
		WHERE route <> '' AND (route, destination, kind) > (?, ?, ?) ORDER BY route, destination, kind LIMIT 1`)
	if err != nil {
		return nil, err
	}
	defer func() { _ = next.Close() }()
	count, err := conn.PrepareContext(ctx, `SELECT COUNT(*) FROM entries INDEXED BY entries_route
		WHERE route <> '' AND route = ? AND destination = ? AND kind = ? AND time_ns >= ? AND time_ns < ?`)
	if err != nil {
		return nil, err
	}
	defer func() { _ = count.Close() }()
	type key struct{ route, dest, kind string }
	var keys []key
	k := key{}
	for {
		err := next.QueryRowContext(ctx, k.route, k.dest, k.kind).Scan(&k.route, &k.dest, &k.kind)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		if int64(len(keys))*buckets > maxIndexCounts {
			return s.groupOutcomes(ctx, conn, from, to, width)
		}
	}
	sums := map[int64]map[string]int64{}
	for _, k := range keys {
		for b := int64(0); b < buckets; b++ {
			start := from + b*width
			var n int64
			if err := count.QueryRowContext(ctx, k.route, k.dest, k.kind, start, min(start+width, to)).Scan(&n); err != nil {
				return nil, err
			}
			if n > 0 {
				if sums[b] == nil {
					sums[b] = map[string]int64{}
				}
				sums[b][k.kind] += n
			}
		}
	}
	var out []sinks.Count
	for b, kinds := range sums {
		for kind, n := range kinds {
			out = append(out, sinks.Count{Start: time.Unix(0, from+b*width).UTC(), Type: kind, N: n})
		}
	}
	sortCounts(out)
	return out, nil
}

// groupOutcomes counts the entries with a route per bucket and kind in
// one pass over the range.
func (s *Store) groupOutcomes(ctx context.Context, conn *sql.Conn, from, to, width int64) ([]sinks.Count, error) {
	rows, err := conn.QueryContext(ctx, `SELECT (time_ns - ?) / ? AS b, kind, COUNT(*) FROM entries INDEXED BY entries_route
		WHERE route <> '' AND time_ns >= ? AND time_ns < ? GROUP BY b, kind ORDER BY b, kind`, from, width, from, to)
	return scanBuckets(rows, err, from, width)
}

// countsFromRows counts the versions of q per bucket and type from the
// versions table: from the type index when that pays (countsByIndex) and
// q is not narrowed, else by grouping the range's rows.
func (s *Store) countsFromRows(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	if !q.Within.Narrows() {
		// The index counts by type alone; a narrowing by source needs the rows.
		if out, ok, err := s.countsByIndex(ctx, q); err != nil || ok {
			return out, err
		}
	}
	var sel selection
	sel.timeAndType(q.From, q.To, q.Type, q.TypePrefix)
	sel.within(q.Within)
	from, width := q.From.UnixNano(), int64(q.Bucket)
	stmt := `SELECT (v.time_ns - ?) / ? AS b, v.type, COUNT(*) FROM versions v` + sel.where() + ` GROUP BY b, v.type ORDER BY b, v.type`
	rows, err := s.db.QueryContext(ctx, stmt, append([]any{from, width}, sel.args...)...)
	return scanBuckets(rows, err, from, width)
}

// scanBuckets reads the rows (bucket, type or kind, count) of a grouped
// count, err being the query's, into counts starting at from+bucket*width.
func scanBuckets(rows *sql.Rows, err error, from, width int64) ([]sinks.Count, error) {
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []sinks.Count
	for rows.Next() {
		var b int64
		var c sinks.Count
		if err := rows.Scan(&b, &c.Type, &c.N); err != nil {
			return nil, err
		}
		c.Start = time.Unix(0, from+b*width).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// sortCounts orders counts by bucket start, then type.
func sortCounts(out []sinks.Count) {
	slices.SortFunc(out, func(a, b sinks.Count) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
}

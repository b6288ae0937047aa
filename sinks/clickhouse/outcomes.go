package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// CountOutcomes counts the entries with a route per bucket of their time
// and per kind. Entries are stored once each (their keys are checked
// before they are inserted), so a plain count is exact.
func (s *Store) CountOutcomes(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var w filter
	w.timeRange("hour", "time_ns", q.From, q.To)
	w.add("route != ''")
	from, width := q.From.UnixNano(), int64(q.Bucket)
	st := "SELECT intDiv(time_ns - ?, ?) AS b, toString(kind), count() FROM " + s.n.entries + w.where() +
		" GROUP BY b, kind ORDER BY b, kind"
	return s.bucketCounts(ctx, "count outcomes", st, from, width, w.args)
}

// bucketCounts runs st, a grouped count of rows (bucket, type or kind,
// count) with from and width as its first parameters, into counts starting
// at from+bucket*width.
func (s *Store) bucketCounts(ctx context.Context, op, st string, from, width int64, args []any) ([]sinks.Count, error) {
	rows, err := s.conn.Query(ctx, st, append([]any{from, width}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s.name, op, err)
	}
	defer func() { _ = rows.Close() }()
	var out []sinks.Count
	for rows.Next() {
		var b int64
		var n uint64
		var c sinks.Count
		if err := rows.Scan(&b, &c.Type, &n); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", s.name, op, err)
		}
		c.Start, c.N = time.Unix(0, from+b*width).UTC(), int64(n)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s.name, op, err)
	}
	return out, nil
}

package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// Counts, CountOutcomes and CountTotals read the per-minute counts of
// migration 0007 for the whole minutes of a range whose buckets are whole
// minutes (sinks.PlanCounts), and the versions and entries themselves for
// the rest. The counts are summed over a GROUP BY: parts the server has
// not merged yet hold several rows of one key.

var _ sinks.TotalCounter = (*Store)(nil)

// bucketOf is the bucket of a per-minute count's row: its minute's start
// less From (the first parameter), divided by Bucket (the second).
const bucketOf = "intDiv(minute * toInt64(60000000000) - ?, ?)"

// Counts returns the non-zero version counts per bucket and type; those
// narrowed by q.Within count the versions.
func (s *Store) Counts(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	var types filter
	types.window(time.Time{}, time.Time{}, q.Type, q.TypePrefix)
	st := "SELECT " + bucketOf + " AS b, toString(type), toUInt64(sum(n)) FROM " + s.n.vcounts +
		" WHERE minute >= ? AND minute < ?" + and(types) + " GROUP BY b, type HAVING sum(n) > 0 ORDER BY b, type"
	return s.countBy(ctx, q, s.rolledBuckets("counts", st, types.args), s.countsFromRows)
}

// countBy checks q and counts it from the per-minute counts by rolled
// and from the rows by rows (see sinks.CountsFromRollup).
func (s *Store) countBy(ctx context.Context, q sinks.CountQuery,
	rolled func(context.Context, sinks.CountQuery, int64, int64) ([]sinks.Count, error),
	rows func(context.Context, sinks.CountQuery) ([]sinks.Count, error)) ([]sinks.Count, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if q.Within.Narrows() {
		// The per-minute counts know no sources.
		return rows(ctx, q)
	}
	return sinks.CountsFromRollup(ctx, q, rolled, rows)
}

// countsFromRows counts the versions of q per bucket and type.
func (s *Store) countsFromRows(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	var w filter
	w.window(q.From, q.To, q.Type, q.TypePrefix)
	w.within(q.Within)
	from, width := q.From.UnixNano(), int64(q.Bucket)
	// A version's repeated rows share its time and type, so a bucket
	// counts them once by counting distinct versions.
	st := "SELECT intDiv(time_ns - ?, ?) AS b, type, uniqExact(source, id, digest) FROM " + s.n.vers + w.where() +
		" GROUP BY b, type ORDER BY b, type"
	return s.bucketCounts(ctx, "counts", st, from, width, w.args)
}

// CountOutcomes counts the entries with a route per bucket of their time
// and per kind. Entries are stored once each (their keys are checked
// before they are inserted), so a plain count is exact.
func (s *Store) CountOutcomes(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	st := "SELECT " + bucketOf + " AS b, toString(kind), toUInt64(sum(routed)) FROM " + s.n.ecounts +
		" WHERE minute >= ? AND minute < ? GROUP BY b, kind HAVING sum(routed) > 0 ORDER BY b, kind"
	return s.countBy(ctx, q, s.rolledBuckets("count outcomes", st, nil), s.outcomesFromRows)
}

// outcomesFromRows counts the entries with a route of q per bucket and
// kind.
func (s *Store) outcomesFromRows(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	var w filter
	w.timeRange("hour", "time_ns", q.From, q.To)
	w.add("route != ''")
	from, width := q.From.UnixNano(), int64(q.Bucket)
	st := "SELECT intDiv(time_ns - ?, ?) AS b, toString(kind), count() FROM " + s.n.entries + w.where() +
		" GROUP BY b, kind ORDER BY b, kind"
	return s.bucketCounts(ctx, "count outcomes", st, from, width, w.args)
}

// rolledBuckets is a count of the per-minute counts by st, which binds
// From, Bucket, the minutes' bounds and then args.
func (s *Store) rolledBuckets(op, st string, args []any) func(context.Context, sinks.CountQuery, int64, int64) ([]sinks.Count, error) {
	return func(ctx context.Context, q sinks.CountQuery, lo, hi int64) ([]sinks.Count, error) {
		return s.bucketCounts(ctx, op, st, q.From.UnixNano(), int64(q.Bucket), append([]any{lo, hi}, args...))
	}
}

// and is f's conditions after an AND, or "" when it has none.
func and(f filter) string {
	w := f.where()
	if w == "" {
		return ""
	}
	return " AND" + w[len(" WHERE"):]
}

// CountTotals sums q's range: versions and conflicts from the per-minute
// counts by type, entries per kind from those by kind, and the parts of
// the range inside a minute from the rows. With a type, the entries are
// those of the type's versions, which the per-minute counts do not tell:
// they are counted from the range's entries. Narrowed (q.Within),
// everything is counted from the rows, as the per-minute counts know no
// sources.
func (s *Store) CountTotals(ctx context.Context, q sinks.CountQuery) (sinks.Totals, error) {
	if err := q.ValidateRange(); err != nil {
		return sinks.Totals{}, err
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return sinks.Totals{}, err
	}
	defer done()
	t, err := s.totals(ctx, q)
	if err != nil {
		return sinks.Totals{}, fmt.Errorf("%s: totals: %w", s.name, err)
	}
	return t, nil
}

func (s *Store) totals(ctx context.Context, q sinks.CountQuery) (sinks.Totals, error) {
	p := sinks.PlanRange(q.From, q.To)
	if q.Within.Narrows() {
		// The per-minute counts know no sources.
		p = sinks.RollupPlan{Raw: []sinks.Span{{From: q.From.UnixNano(), To: q.To.UnixNano()}}}
	}
	t := sinks.Totals{Entries: map[string]int64{}}
	var types filter
	types.window(time.Time{}, time.Time{}, q.Type, q.TypePrefix)
	add := func(st string, args ...any) error {
		var n, c int64
		if err := s.conn.QueryRow(ctx, st, args...).Scan(&n, &c); err != nil {
			return err
		}
		t.Versions, t.Conflicts = t.Versions+n, t.Conflicts+c
		return nil
	}
	if p.Lo < p.Hi {
		if err := add("SELECT toInt64(sum(n)), toInt64(sum(conflicts)) FROM "+s.n.vcounts+" WHERE minute >= ? AND minute < ?"+and(types),
			append([]any{p.Lo, p.Hi}, types.args...)...); err != nil {
			return t, err
		}
	}
	for _, r := range p.Raw {
		var w filter
		w.window(time.Unix(0, r.From), time.Unix(0, r.To), q.Type, q.TypePrefix)
		w.within(q.Within)
		if err := add("SELECT toInt64(uniqExact(source, id, digest)), toInt64(uniqExactIf(source, id, digest, conflict = 1)) FROM "+s.n.vers+w.where(),
			w.args...); err != nil {
			return t, err
		}
	}
	if q.Type != "" || q.Within.Narrows() {
		types.within(q.Within)
		var w filter
		w.timeRange("hour", "time_ns", q.From, q.To)
		w.add("(source, id, digest) IN (SELECT source, id, digest FROM "+s.n.vers+types.where()+")", types.args...)
		return t, t.AddEntryRows(s.conn.Query(ctx, "SELECT toString(kind), toInt64(count()) FROM "+s.n.entries+w.where()+" GROUP BY kind", w.args...))
	}
	if p.Lo < p.Hi {
		if err := t.AddEntryRows(s.conn.Query(ctx, "SELECT toString(kind), toInt64(sum(n)) FROM "+s.n.ecounts+" WHERE minute >= ? AND minute < ? GROUP BY kind",
			p.Lo, p.Hi)); err != nil {
			return t, err
		}
	}
	for _, r := range p.Raw {
		var w filter
		w.timeRange("hour", "time_ns", time.Unix(0, r.From), time.Unix(0, r.To))
		if err := t.AddEntryRows(s.conn.Query(ctx, "SELECT toString(kind), toInt64(count()) FROM "+s.n.entries+w.where()+" GROUP BY kind", w.args...)); err != nil {
			return t, err
		}
	}
	return t, nil
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

package sqlite

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/auditbus/auditbus/sinks"
)

var _ sinks.TotalCounter = (*Store)(nil)

// Counts returns the version counts per bucket and type. When q's buckets
// are whole minutes (sinks.PlanCounts) they come from the per-minute
// counts of migration 0008, a row per minute and type, and only a To
// inside a minute counts that minute's versions from the type index;
// other buckets, and counts narrowed by q.Within, count the versions.
func (s *Store) Counts(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	return s.countBy(ctx, q, "counts", s.counts)
}

// countBy checks q and runs count, naming op in its errors.
func (s *Store) countBy(ctx context.Context, q sinks.CountQuery, op string, count func(context.Context, sinks.CountQuery) ([]sinks.Count, error)) ([]sinks.Count, error) {
	if s.closed.Load() {
		return nil, sinks.ErrClosed
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	out, err := count(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s, op, err)
	}
	return out, nil
}

func (s *Store) counts(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	if q.Within.Narrows() {
		// The per-minute counts know no sources.
		return s.countsFromRows(ctx, q)
	}
	cond, args := typeCond(q.Type, q.TypePrefix)
	return sinks.CountsFromRollup(ctx, q, s.rolledBuckets(`SELECT (minute * 60000000000 - ?) / ? AS b, type, SUM(n) FROM count_versions
		WHERE minute >= ? AND minute < ?`+cond+` GROUP BY b, type HAVING SUM(n) <> 0 ORDER BY b, type`, args), s.countsFromRows)
}

// CountOutcomes counts the entries with a route per bucket of their time
// and per kind: from the per-minute counts when q's buckets are whole
// minutes (as Counts), else from the entries.
func (s *Store) CountOutcomes(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	return s.countBy(ctx, q, "count outcomes", func(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
		return sinks.CountsFromRollup(ctx, q, s.rolledBuckets(`SELECT (minute * 60000000000 - ?) / ? AS b, kind, SUM(routed) FROM count_entries
		WHERE minute >= ? AND minute < ? GROUP BY b, kind HAVING SUM(routed) <> 0 ORDER BY b, kind`, nil), s.countOutcomes)
	})
}

// rolledBuckets is a count of the per-minute counts by st, a grouped sum
// into rows (bucket, type or kind, sum) that binds From, Bucket, the
// minutes' bounds and then args.
func (s *Store) rolledBuckets(st string, args []any) func(context.Context, sinks.CountQuery, int64, int64) ([]sinks.Count, error) {
	return func(ctx context.Context, q sinks.CountQuery, lo, hi int64) ([]sinks.Count, error) {
		from, width := q.From.UnixNano(), int64(q.Bucket)
		rows, err := s.db.QueryContext(ctx, st, append([]any{from, width, lo, hi}, args...)...)
		return scanBuckets(rows, err, from, width)
	}
}

// typeCond is the condition, with its arguments, that selects the type
// column's rows of typ (a prefix with prefix), or "" for every type.
func typeCond(typ string, prefix bool) (string, []any) {
	switch {
	case typ == "":
		return "", nil
	case !prefix:
		return " AND type = ?", []any{typ}
	default:
		return " AND type >= ? AND substr(type, 1, ?) = ?", []any{typ, utf8.RuneCountInString(typ), typ}
	}
}

// CountTotals sums q's range: versions and conflicts from the per-minute
// counts by type, entries per kind from those by kind, and the parts of
// the range inside a minute from the rows. With a type, the entries are
// those of the type's versions, which the per-minute counts do not tell:
// they are counted from the range's entries and their versions. Narrowed
// (q.Within), everything is counted from the rows, as the per-minute
// counts know no sources.
func (s *Store) CountTotals(ctx context.Context, q sinks.CountQuery) (sinks.Totals, error) {
	if s.closed.Load() {
		return sinks.Totals{}, sinks.ErrClosed
	}
	if err := q.ValidateRange(); err != nil {
		return sinks.Totals{}, err
	}
	t, err := s.totals(ctx, q)
	if err != nil {
		return sinks.Totals{}, fmt.Errorf("%s: totals: %w", s, err)
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
	cond, args := typeCond(q.Type, q.TypePrefix)
	if p.Lo < p.Hi {
		err := s.db.QueryRowContext(ctx, `SELECT coalesce(SUM(n), 0), coalesce(SUM(conflicts), 0) FROM count_versions
			WHERE minute >= ? AND minute < ?`+cond, append([]any{p.Lo, p.Hi}, args...)...).Scan(&t.Versions, &t.Conflicts)
		if err != nil {
			return t, err
		}
	}
	for _, r := range p.Raw {
		var sel selection
		sel.timeAndType(time.Unix(0, r.From), time.Unix(0, r.To), q.Type, q.TypePrefix)
		sel.within(q.Within)
		var n, c int64
		err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), coalesce(SUM(v.conflict), 0) FROM versions v`+sel.where(), sel.args...).Scan(&n, &c)
		if err != nil {
			return t, err
		}
		t.Versions, t.Conflicts = t.Versions+n, t.Conflicts+c
	}
	if q.Type != "" || q.Within.Narrows() {
		var sel selection
		sel.add("e.time_ns >= ?", q.From.UnixNano())
		sel.add("e.time_ns < ?", q.To.UnixNano())
		sel.timeAndType(time.Time{}, time.Time{}, q.Type, q.TypePrefix)
		sel.within(q.Within)
		err := t.AddEntryRows(s.db.QueryContext(ctx, `SELECT e.kind, COUNT(*) FROM entries e INDEXED BY entries_time
			CROSS JOIN versions v ON v.source = e.source AND v.id = e.id AND v.digest = e.digest`+sel.where()+`
			GROUP BY e.kind`, sel.args...))
		return t, err
	}
	if p.Lo < p.Hi {
		if err := t.AddEntryRows(s.db.QueryContext(ctx, `SELECT kind, SUM(n) FROM count_entries WHERE minute >= ? AND minute < ? GROUP BY kind`, p.Lo, p.Hi)); err != nil {
			return t, err
		}
	}
	for _, r := range p.Raw {
		if err := t.AddEntryRows(s.db.QueryContext(ctx, `SELECT kind, COUNT(*) FROM entries INDEXED BY entries_time
			WHERE time_ns >= ? AND time_ns < ? GROUP BY kind`, r.From, r.To)); err != nil {
			return t, err
		}
	}
	return t, nil
}

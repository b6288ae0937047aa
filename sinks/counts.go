package sinks

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Totals are the sums of a time range [From, To) that the explorer's
// overview shows.
type Totals struct {
	// Versions is how many event versions have their indexed time
	// (Item.Time) in the range, and Conflicts how many of those were
	// stored beside an earlier version of their (source, id).
	Versions, Conflicts int64
	// Entries is how many entries of each kind were recorded (Entry.Time)
	// in the range: a version delivered to three destinations counts
	// three deliveries. A kind with none may be absent.
	Entries map[string]int64
}

// TotalCounter is a Store that sums a range's versions, conflicts and
// entries per kind. CountQuery.Bucket does not apply; CountQuery.Type
// selects the versions of a type and the entries of those versions. Both
// stores of this module implement it from their per-minute rollup (see
// RollupGrain), so that the sums of a range read a row per minute, type
// and kind rather than one per event.
type TotalCounter interface {
	CountTotals(ctx context.Context, q CountQuery) (Totals, error)
}

// ValidateRange reports the first bad parameter of a range without
// buckets (CountTotals), wrapping ErrBadQuery.
func (q CountQuery) ValidateRange() error {
	q.Bucket = max(q.Bucket, time.Nanosecond)
	return q.Validate()
}

// RollupGrain is the width of the rows the stores roll their counts up
// into as they append: one row per minute and type of the versions'
// indexed time, one per minute and kind of the entries' time.
const RollupGrain = time.Minute

// MinuteOf is the rollup minute of the instant ns (nanoseconds since
// 1970): ns divided by a minute, rounded down, also before 1970.
func MinuteOf(ns int64) int64 {
	const g = int64(RollupGrain)
	m := ns / g
	if ns%g < 0 {
		m--
	}
	return m
}

// Span is the half-open range [From, To) in nanoseconds since 1970.
type Span struct{ From, To int64 }

// RollupPlan is how a count over a range splits between a store's
// rollup and its rows.
type RollupPlan struct {
	// Lo and Hi bound the whole minutes [Lo, Hi) the rollup answers for.
	Lo, Hi int64
	// Raw are the parts of the range, each shorter than a minute, that
	// the rows answer for: at most one before Lo and one after Hi, or the
	// whole range when it holds no whole minute.
	Raw []Span
}

// PlanRange splits [from, to) into the whole minutes inside it and the
// parts before and after them.
func PlanRange(from, to time.Time) RollupPlan {
	const g = int64(RollupGrain)
	f, t := from.UnixNano(), to.UnixNano()
	lo, hi := MinuteOf(f), MinuteOf(t)
	if lo*g < f {
		lo++
	}
	if lo >= hi {
		return RollupPlan{Raw: []Span{{f, t}}}
	}
	p := RollupPlan{Lo: lo, Hi: hi}
	if f < lo*g {
		p.Raw = append(p.Raw, Span{f, lo * g})
	}
	if hi*g < t {
		p.Raw = append(p.Raw, Span{hi * g, t})
	}
	return p
}

// PlanCounts splits q for a per-minute rollup when each of its buckets
// is whole minutes: From on a minute and Bucket a multiple of one. Then
// only a To inside a minute leaves a part to the rows. ok is false
// otherwise: bucket edges inside minutes need every row's time.
func PlanCounts(q CountQuery) (p RollupPlan, ok bool) {
	const g = int64(RollupGrain)
	if q.From.UnixNano()%g != 0 || int64(q.Bucket)%g != 0 {
		return RollupPlan{}, false
	}
	return PlanRange(q.From, q.To), true
}

// CountsFromRollup answers q (a count per bucket, as Store.Counts) from
// a per-minute rollup and the rows: rolled counts the whole minutes
// [lo, hi) into q's buckets, rows counts a range of q's own (the part
// of q past the last whole minute, in one bucket, or all of q when its
// buckets are not whole minutes, see PlanCounts). The result is merged
// and ordered.
func CountsFromRollup(ctx context.Context, q CountQuery,
	rolled func(ctx context.Context, q CountQuery, lo, hi int64) ([]Count, error),
	rows func(ctx context.Context, q CountQuery) ([]Count, error)) ([]Count, error) {
	p, ok := PlanCounts(q)
	if !ok {
		return rows(ctx, q)
	}
	var out []Count
	if p.Lo < p.Hi {
		var err error
		if out, err = rolled(ctx, q, p.Lo, p.Hi); err != nil {
			return nil, err
		}
	}
	for _, r := range p.Raw {
		sub := q
		sub.From, sub.To, sub.Bucket = time.Unix(0, r.From), time.Unix(0, r.To), time.Duration(r.To-r.From)
		cs, err := rows(ctx, sub)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			c.Start = q.BucketStart(c.Start.UnixNano())
			out = append(out, c)
		}
	}
	return MergeCounts(out), nil
}

// BucketStart is the start of q's bucket that holds the instant ns.
func (q CountQuery) BucketStart(ns int64) time.Time {
	from, w := q.From.UnixNano(), int64(q.Bucket)
	return time.Unix(0, from+(ns-from)/w*w).UTC()
}

// MergeCounts adds up the counts of the same bucket and type, drops
// those that sum to zero, and orders the rest by bucket start, then
// type, as Store.Counts answers.
func MergeCounts(cs []Count) []Count {
	slices.SortFunc(cs, func(a, b Count) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
	out := cs[:0]
	for _, c := range cs {
		if n := len(out); n > 0 && out[n-1].Start.Equal(c.Start) && out[n-1].Type == c.Type {
			out[n-1].N += c.N
			continue
		}
		out = append(out, c)
	}
	return slices.DeleteFunc(out, func(c Count) bool { return c.N == 0 })
}

// Rows are the rows of a query, as database/sql's and ClickHouse's
// drivers hand them.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// AddEntryRows adds to t.Entries the rows (kind, n) of rows, whose query
// failed with err if it is not nil, and closes rows.
func (t *Totals) AddEntryRows(rows Rows, err error) error {
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var kind string
		var n int64
		if err := rows.Scan(&kind, &n); err != nil {
			return err
		}
		if n != 0 {
			if t.Entries == nil {
				t.Entries = map[string]int64{}
			}
			t.Entries[kind] += n
		}
	}
	return rows.Err()
}

// Add adds o's sums to t's.
func (t *Totals) Add(o Totals) {
	t.Versions += o.Versions
	t.Conflicts += o.Conflicts
	for k, n := range o.Entries {
		if t.Entries == nil {
			t.Entries = map[string]int64{}
		}
		t.Entries[k] += n
	}
}

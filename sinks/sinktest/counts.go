package sinktest

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// CountsData appends to s, through the suite's model-free path, records
// that exercise the per-minute counts: several types, times on and off
// whole minutes and before 1970, a version without a time, conflicts,
// entries with and without a route, repeated versions and entries, over
// the three days before at's. Store tests use it to fill a store before a
// migration and compare with CheckCounts after.
func CountsData(t testing.TB, ctx context.Context, s sinks.Store, at time.Time) {
	t.Helper()
	for _, recs := range countsRecords(at) {
		if _, err := s.Append(ctx, recs); err != nil {
			t.Fatalf("Append(%d records): %v", len(recs), err)
		}
	}
}

// countsRecords are CountsData's Appends.
func countsRecords(at time.Time) [][]sinks.Record {
	day := at.UTC().Truncate(24 * time.Hour)
	types := []string{"com.n.a", "com.n.b", "com.n.b.x", "org.other"}
	var first, second []sinks.Record
	for i := range 60 {
		t := day.AddDate(0, 0, -(i % 3)).Add(time.Duration(i)*17*time.Second + time.Duration(i%7)*time.Millisecond)
		r := sinks.Record{Event: ev("urn:n", fmt.Sprintf("n%02d", i), types[i%len(types)], "", 0)}
		r.Event.SetTime(t)
		r.Entries = []sinks.Entry{{Kind: sinks.KindReceived, Time: t.Add(time.Second), Transport: "mem", Topic: "n", Offset: int64(i)}}
		switch i % 5 {
		case 0:
			r.Entries = append(r.Entries, sinks.Entry{Kind: sinks.KindDelivered, Time: t.Add(50 * time.Second), Route: "r", Destination: "d1"},
				sinks.Entry{Kind: sinks.KindDelivered, Time: t.Add(70 * time.Second), Route: "r", Destination: "d2"})
		case 1:
			r.Entries = append(r.Entries, sinks.Entry{Kind: sinks.KindFiltered, Time: t.Add(2 * time.Second), Route: "f"})
		case 2:
			r.Entries = append(r.Entries, sinks.Entry{Kind: sinks.KindDeadLettered, Time: t.Add(3 * time.Minute), Route: "r", Destination: "d3", Error: "x"})
		}
		first = append(first, r)
		if i%4 == 0 {
			// Later hops of a version stored by an earlier Append.
			second = append(second, with(r, sinks.Entry{Kind: sinks.KindReplayed, Time: t.Add(time.Hour), Route: "r", Destination: "d1", Replay: "j"}))
		}
	}
	// A version without a time is indexed at its first entry's; one
	// before 1970 on its own minute.
	untimed := sinks.Record{Event: ev("urn:n", "untimed", "com.n.a", "", 0),
		Entries: []sinks.Entry{{Kind: sinks.KindPoison, Time: day.Add(-90 * time.Second), Route: "p", Error: "bad"}}}
	untimed.Event.SetTime(time.Time{})
	old := sinks.Record{Event: ev("urn:n", "old", "com.n.a", "", 0), Entries: []sinks.Entry{{Kind: sinks.KindReceived, Time: day.Add(-time.Minute)}}}
	old.Event.SetTime(time.Unix(-61, 5))
	// Another version of n00, a conflict; and n01 again with its entries,
	// which adds nothing.
	conflict := with(first[0], sinks.Entry{Kind: sinks.KindReceived, Time: day.Add(30 * time.Second), Transport: "mem", Topic: "n", Offset: 1000})
	conflict.Event.SetData("application/json", []byte(`{"other":true}`))
	again := first[1]
	again.Entries = append(again.Entries[:len(again.Entries):len(again.Entries)], again.Entries...)
	third := []sinks.Record{untimed, old, conflict, again, first[2]}
	return [][]sinks.Record{first, second, third, first}
}

// testCountsMatchLedger: counts, outcome counts and totals equal what
// the stored versions and entries give, for buckets on whole minutes and
// off them, after repeated Appends and after retention.
func testCountsMatchLedger(t *testing.T, e *env) {
	at := base.AddDate(0, 0, 5)
	for _, recs := range countsRecords(at) {
		e.append(t, recs)
	}
	CheckCounts(t, e.ctx, e.s, at)
	n, err := e.s.Retain(e.ctx, at.Truncate(24*time.Hour).AddDate(0, 0, -1))
	if want := e.m.retain(at.Truncate(24*time.Hour).AddDate(0, 0, -1)); err != nil || n != want {
		t.Fatalf("Retain: %d days, %v; want %d", n, err, want)
	}
	CheckCounts(t, e.ctx, e.s, at)
	var more []sinks.Record
	for i := range 10 {
		r := with(rec("urn:n2", fmt.Sprintf("m%d", i), "com.n.a", "", 0), hop(sinks.KindDelivered, "r", "d", 0))
		r.Event.SetTime(at.Truncate(24 * time.Hour).Add(time.Duration(i) * 41 * time.Second))
		r.Entries[0].Time = r.Event.Time()
		more = append(more, r)
	}
	e.append(t, more)
	CheckCounts(t, e.ctx, e.s, at)
}

// ledgerCounts is what a store holds, read back through its queries.
type ledgerCounts struct {
	versions []sinks.Item
	entries  []sinks.Entry
	types    map[[3]string]string // the type of each version by (source, id, digest)
}

func readLedger(t testing.TB, ctx context.Context, s sinks.Store) ledgerCounts {
	t.Helper()
	l := ledgerCounts{types: map[[3]string]string{}}
	q := sinks.Query{NoTrail: true, Limit: sinks.MaxLimit}
	for {
		p, err := s.Query(ctx, q)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		for _, it := range p.Items {
			l.versions = append(l.versions, it)
			l.types[[3]string{it.Event.Source(), it.Event.ID(), it.Digest.String()}] = it.Event.Type()
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	logs, err := s.Logs(ctx)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	for _, lg := range logs {
		for after := uint64(0); ; {
			ens, err := s.Entries(ctx, lg.Name, after, sinks.MaxLimit)
			if err != nil {
				t.Fatalf("Entries(%q): %v", lg.Name, err)
			}
			if len(ens) == 0 {
				break
			}
			l.entries = append(l.entries, ens...)
			after = ens[len(ens)-1].Seq
		}
	}
	return l
}

func typeMatches(typ string, q sinks.CountQuery) bool {
	return q.Type == "" || typ == q.Type || q.TypePrefix && strings.HasPrefix(typ, q.Type)
}

// selects reports whether q counts a version of source and typ.
func selects(q sinks.CountQuery, source, typ string) bool {
	return typeMatches(typ, q) && q.Within.Allows(source, typ)
}

func inRange(at time.Time, from, to time.Time) bool { return !at.Before(from) && at.Before(to) }

func (l *ledgerCounts) counts(q sinks.CountQuery) []sinks.Count {
	var out []sinks.Count
	for _, it := range l.versions {
		if inRange(it.Time, q.From, q.To) && selects(q, it.Event.Source(), it.Event.Type()) {
			out = append(out, sinks.Count{Start: q.BucketStart(it.Time.UnixNano()), Type: it.Event.Type(), N: 1})
		}
	}
	return sinks.MergeCounts(out)
}

func (l *ledgerCounts) outcomes(q sinks.CountQuery) []sinks.Count {
	var out []sinks.Count
	for _, en := range l.entries {
		if en.Route != "" && inRange(en.Time, q.From, q.To) {
			out = append(out, sinks.Count{Start: q.BucketStart(en.Time.UnixNano()), Type: en.Kind, N: 1})
		}
	}
	return sinks.MergeCounts(out)
}

func (l *ledgerCounts) totals(q sinks.CountQuery) sinks.Totals {
	t := sinks.Totals{Entries: map[string]int64{}}
	for _, it := range l.versions {
		if inRange(it.Time, q.From, q.To) && selects(q, it.Event.Source(), it.Event.Type()) {
			t.Versions++
			if it.Conflict {
				t.Conflicts++
			}
		}
	}
	for _, en := range l.entries {
		typ, ok := l.types[[3]string{en.Source, en.ID, en.Digest.String()}]
		whole := q.Type == "" && !q.Within.Narrows()
		if inRange(en.Time, q.From, q.To) && (whole || ok && selects(q, en.Source, typ)) {
			t.Entries[en.Kind]++
		}
	}
	return t
}

// CheckCounts fails unless s's Counts, and its CountOutcomes and
// CountTotals where it has them, equal what its versions and entries
// give, over ranges around the three days before at's: buckets of whole
// minutes from a whole minute, and buckets with edges inside minutes,
// ranges that end inside a minute, with and without a type.
func CheckCounts(t testing.TB, ctx context.Context, s sinks.Store, at time.Time) {
	t.Helper()
	l := readLedger(t, ctx, s)
	day := at.UTC().Truncate(24 * time.Hour)
	from, to := day.AddDate(0, 0, -3), day.AddDate(0, 0, 1)
	qs := []sinks.CountQuery{
		{From: from, To: to, Bucket: time.Hour},
		{From: day, To: day.Add(30 * time.Minute), Bucket: time.Minute},
		{From: day.Add(-time.Hour), To: day.Add(20*time.Minute + 17*time.Second), Bucket: 5 * time.Minute},
		{From: day.Add(-3 * time.Second), To: day.Add(20 * time.Minute), Bucket: time.Minute},
		{From: day, To: day.Add(20 * time.Minute), Bucket: 90 * time.Second},
		{From: day.Add(2 * time.Second), To: day.Add(50 * time.Second), Bucket: 10 * time.Second},
		{From: time.Unix(-3600, 0), To: time.Unix(3600, 0), Bucket: time.Minute},
		{From: day, To: day.Add(time.Hour), Bucket: time.Minute, Type: "com.n.b"},
		{From: from, To: to, Bucket: 24 * time.Hour, Type: "com.n.", TypePrefix: true},
		{From: from, To: to, Bucket: time.Hour, Within: sinks.Within{SourcePrefixes: []string{"urn:n"}, TypePrefixes: []string{"com.n.b", "org"}}},
		{From: day, To: day.Add(time.Hour), Bucket: time.Minute, Within: sinks.Within{SourcePrefixes: []string{"urn:n2"}}},
	}
	for _, q := range qs {
		got, err := s.Counts(ctx, q)
		if want := l.counts(q); err != nil || !countsEqual(got, want) {
			t.Errorf("Counts(%s):\n got %v, %v\nwant %v", describeCounts(q), got, err, want)
		}
		if oc, ok := s.(sinks.OutcomeCounter); ok && q.Type == "" && !q.Within.Narrows() {
			got, err := oc.CountOutcomes(ctx, q)
			if want := l.outcomes(q); err != nil || !countsEqual(got, want) {
				t.Errorf("CountOutcomes(%s):\n got %v, %v\nwant %v", describeCounts(q), got, err, want)
			}
		}
		if tc, ok := s.(sinks.TotalCounter); ok {
			got, err := tc.CountTotals(ctx, q)
			want := l.totals(q)
			maps.DeleteFunc(got.Entries, func(_ string, n int64) bool { return n == 0 })
			maps.DeleteFunc(want.Entries, func(_ string, n int64) bool { return n == 0 })
			if err != nil || got.Versions != want.Versions || got.Conflicts != want.Conflicts || !maps.Equal(got.Entries, want.Entries) {
				t.Errorf("CountTotals(%s):\n got %+v, %v\nwant %+v", describeCounts(q), got, err, want)
			}
		}
	}
}

func describeCounts(q sinks.CountQuery) string {
	s := fmt.Sprintf("%s to %s by %s", q.From.UTC().Format(time.RFC3339Nano), q.To.UTC().Format(time.RFC3339Nano), q.Bucket)
	if q.Type != "" {
		s += fmt.Sprintf(" type %q prefix %v", q.Type, q.TypePrefix)
	}
	if q.Within.Narrows() {
		s += " within " + q.Within.String()
	}
	return s
}

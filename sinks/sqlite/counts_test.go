package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Counts answers the same from the type index (few types and buckets) as
// from the rows (too many buckets for the index to pay): the second, in
// one-second buckets, adds up to the first's minutes.
func TestCountsFromTheIndexMatchTheRows(t *testing.T) {
	s := open(t, t.TempDir())
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	var recs []sinks.Record
	for i := range 300 {
		e := event.New()
		e.SetID(fmt.Sprint(i))
		e.SetSource("/counts")
		e.SetType([]string{"a.x", "a.y", "b.z", "a"}[i%4])
		e.SetTime(base.Add(time.Duration(i*i) * time.Second / 10))
		recs = append(recs, sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Time: base}}})
	}
	if _, err := s.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		typ    string
		prefix bool
	}{{"", false}, {"a.", true}, {"a", true}, {"a", false}, {"b.z", false}, {"c", true}} {
		q := sinks.CountQuery{From: base.Add(time.Minute), To: base.Add(2*time.Hour + 30*time.Second), Bucket: time.Minute, Type: c.typ, TypePrefix: c.prefix}
		byIndex, err := s.Counts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		q.Bucket = time.Second
		byRows, err := s.Counts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		sum := map[string]int64{}
		for _, r := range byRows {
			sum[r.Start.Truncate(time.Minute).Format("15:04")+" "+r.Type] += r.N
		}
		var total int64
		for _, r := range byIndex {
			k := r.Start.Format("15:04") + " " + r.Type
			if sum[k] != r.N {
				t.Errorf("type %q prefix %v: %s has %d by the index, %d by the rows", c.typ, c.prefix, k, r.N, sum[k])
			}
			delete(sum, k)
			total += r.N
		}
		if len(sum) != 0 || (total == 0 && c.typ != "c") {
			t.Errorf("type %q prefix %v: the rows have %v beyond the index's %d versions", c.typ, c.prefix, sum, total)
		}
	}
}

// CountOutcomes answers the same from each route, destination and kind's
// range counts as from one pass over the index (too many buckets for the
// counts to pay).
func TestCountOutcomesFromTheIndexMatchOnePass(t *testing.T) {
	s := open(t, t.TempDir())
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	var recs []sinks.Record
	for i := range 200 {
		e := event.New()
		e.SetID(fmt.Sprint(i))
		e.SetSource("/outcomes")
		e.SetType("t")
		at := base.Add(time.Duration(i*i) * time.Second / 10)
		recs = append(recs, sinks.Record{Event: e, Entries: []sinks.Entry{
			{Kind: sinks.KindReceived, Time: at},
			{Kind: []string{sinks.KindDelivered, sinks.KindDeadLettered, sinks.KindFiltered}[i%3], Route: []string{"r", "s"}[i%2], Destination: "d", Time: at},
		}})
	}
	if _, err := s.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	q := sinks.CountQuery{From: base, To: base.Add(75 * time.Minute), Bucket: time.Minute}
	byIndex, err := s.CountOutcomes(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	q.Bucket = time.Second
	onePass, err := s.CountOutcomes(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	sum := map[string]int64{}
	for _, c := range onePass {
		sum[c.Start.Truncate(time.Minute).Format("15:04")+" "+c.Type] += c.N
	}
	var total int64
	for _, c := range byIndex {
		k := c.Start.Format("15:04") + " " + c.Type
		if sum[k] != c.N {
			t.Errorf("%s: %d from the range counts, %d from one pass", k, c.N, sum[k])
		}
		delete(sum, k)
		total += c.N
	}
	if len(sum) != 0 || total != 200 {
		t.Errorf("%d entries counted, want 200; one pass has %v beyond", total, sum)
	}
}

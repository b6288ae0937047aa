package sqlite

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// TestEntryFiltersBothPlans: a query that filters on a route starts from
// that route's entries when they are few, and otherwise walks the
// versions in order; both plans answer alike, page by page.
func TestEntryFiltersBothPlans(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{Log: "plans"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	routes, dests := []string{"orders", "billing", "audit"}, []string{"ledger", "mail"}
	kinds := []string{sinks.KindDelivered, sinks.KindDeadLettered, sinks.KindFiltered}
	var recs []sinks.Record
	for i := range 150 {
		e := event.New()
		e.SetID(fmt.Sprintf("p-%03d", i%125)) // the last 25 are other versions of the first
		e.SetSource("urn:plans")
		e.SetType("com.example.plans")
		e.SetTime(at.Add(time.Duration(i%20) * time.Second))
		e.DataEncoded = fmt.Appendf(nil, "%d", i)
		r := sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Time: at, Transport: "mem", Offset: int64(i)}}}
		for j := range i % 4 {
			en := sinks.Entry{Kind: kinds[(i+j)%3], Time: at.Add(time.Duration(i*j) * time.Millisecond),
				Route: routes[(i/5+j)%3], Destination: dests[(i/3+j)%2]}
			if en.Kind == sinks.KindFiltered {
				en.Destination = ""
			}
			r.Entries = append(r.Entries, en)
		}
		recs = append(recs, r)
	}
	if _, err := s.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	read := func(q sinks.Query, few int) ([]string, int64) {
		t.Helper()
		s.fewEntries = few
		var got []string
		for {
			p, err := s.Query(ctx, q)
			if err != nil {
				t.Fatalf("Query(%+v): %v", q, err)
			}
			for _, it := range p.Items {
				got = append(got, fmt.Sprintf("%s %s %d", it.Event.ID(), it.Digest, len(it.Trail)))
			}
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
		n, err := s.CountVersions(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return got, n
	}
	for _, q := range []sinks.Query{
		{Route: "orders"},
		{Route: "billing", Destination: "mail"},
		{Route: "audit", Kind: sinks.KindFiltered},
		{Route: "orders", Kind: sinks.KindDeadLettered, Redrivable: true},
		{Route: "orders", Destination: "ledger", Kind: sinks.KindDeadLettered, Redrivable: true},
		{Route: "billing", ReceivedFrom: at.Add(100 * time.Millisecond), ReceivedTo: at.Add(400 * time.Millisecond)},
		{Route: "orders", From: at.Add(5 * time.Second), To: at.Add(15 * time.Second), Type: "com.example.", TypePrefix: true},
		{Route: "nope"},
	} {
		for _, desc := range []bool{false, true} {
			q.Desc, q.Limit = desc, 13
			few, nFew := read(q, fewEntries)
			walk, nWalk := read(q, -1)
			if !slices.Equal(few, walk) || nFew != nWalk || nFew != int64(len(few)) {
				t.Errorf("%+v: from the route's entries %d (count %d), walking the versions %d (count %d):\n%v\n%v",
					q, len(few), nFew, len(walk), nWalk, few, walk)
			}
			if len(few) == 0 && q.Route != "nope" {
				t.Errorf("%+v: nothing matches; the case proves nothing", q)
			}
		}
	}
}

package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// TestEntryFiltersBothPlans: a query that filters on a route starts from
// that route's entries when they are few, and otherwise walks the
// versions in order; both plans answer alike, page by page.
func TestEntryFiltersBothPlans(t *testing.T) {
	ctx, s, at := openPlans(t)
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

// openPlans opens a store in a temporary directory, closed at the end of
// the test, and gives the time the tests' events start at.
func openPlans(t *testing.T) (context.Context, *Store, time.Time) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{Log: "plans"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return ctx, s, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
}

// TestLookupByIDPlan: a query by id alone, as GET /v1/events/{id} without
// ?source= pages it, searches versions_id for the id, in the query's
// order and from the cursor on, instead of scanning versions_time through
// the whole store; its pages answer what the query selects.
func TestLookupByIDPlan(t *testing.T) {
	ctx, s, at := openPlans(t)
	var recs []sinks.Record
	for i := range 300 {
		e := event.New()
		e.SetID(fmt.Sprintf("id-%d", i%3))
		e.SetSource(fmt.Sprintf("urn:s%d", i%7))
		e.SetType("com.example.plans")
		e.SetTime(at.Add(time.Duration(i%11) * time.Second))
		e.DataEncoded = fmt.Appendf(nil, "%d", i)
		recs = append(recs, sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Time: at, Transport: "mem", Offset: int64(i)}}})
	}
	if _, err := s.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, desc := range []bool{false, true} {
		q := sinks.Query{ID: "id-1", NoTrail: true, Limit: 7, Desc: desc}
		if desc {
			q.Within = sinks.Within{SourcePrefixes: []string{"urn:s"}}
		}
		seen := 0
		for {
			stmt, args, err := s.pageStmt(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			plan := explain(t, s, stmt, append(args, q.PageSize()+1)...)
			cursor := ""
			if q.Cursor != "" {
				cursor = " AND (time_ns,source,digest)" // the cursor bounds the search
			}
			if !strings.Contains(plan, "SEARCH v USING INDEX versions_id (id=?"+cursor) || strings.Contains(plan, "TEMP B-TREE") {
				t.Fatalf("%+v: plan\n%s\nwant a search of versions_id by id%s, in order", q, plan, cursor)
			}
			p, err := s.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range p.Items {
				if it.Event.ID() != q.ID {
					t.Fatalf("%+v: version of %q", q, it.Event.ID())
				}
			}
			seen += len(p.Items)
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
		if seen != 100 {
			t.Errorf("desc %v: %d versions of id-1, want 100", desc, seen)
		}
	}
}

// explain returns the EXPLAIN QUERY PLAN of stmt, a line per step.
func explain(t *testing.T, s *Store, stmt string, args ...any) string {
	t.Helper()
	rows, err := s.db.Query("EXPLAIN QUERY PLAN "+stmt, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var b strings.Builder
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

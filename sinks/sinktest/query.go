package sinktest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// Cases on queries: filters, order, cursors and paging while appends go
// on.

func testFilters(t *testing.T, e *env) {
	sources := []string{"urn:s1", "urn:s2"}
	types := []string{"com.a.created", "com.a.deleted", "com.b.created"}
	subjects := []string{"", "x", "y"}
	routes := []string{"orders", "billing", "audit"}
	dests := []string{"kafka:out", "http:hook"}
	kinds := []string{sinks.KindDelivered, sinks.KindDeadLettered, sinks.KindFiltered, sinks.KindReplayed}
	var recs []sinks.Record
	for i := range 60 {
		at := time.Duration(i) * time.Minute
		r := rec(sources[i%2], fmt.Sprintf("f%02d", i), types[i%3], subjects[i%5%3], at)
		// Every version was received; most went somewhere after, some
		// twice.
		for j := range i % 3 {
			k := kinds[(i+j)%4]
			dest := dests[(i/4+j)%2]
			if k == sinks.KindFiltered {
				dest = ""
			}
			r.Entries = append(r.Entries, hop(k, routes[(i+j)%7%3], dest, at+time.Duration(j+2)*time.Second))
		}
		recs = append(recs, r)
	}
	e.append(t, recs[:30])
	e.append(t, recs[30:])
	from, to := base.Add(10*time.Minute), base.Add(50*time.Minute)
	cases := []struct {
		name          string
		q             sinks.Query
		nothing, some bool // the case is meant to match nothing, or to match some but not all
	}{
		{"none", sinks.Query{}, false, false},
		{"from", sinks.Query{From: from}, false, true},
		{"to", sinks.Query{To: to}, false, true},
		{"type", sinks.Query{Type: "com.a.created"}, false, true},
		{"type exact is not a prefix", sinks.Query{Type: "com.a"}, true, false},
		{"type prefix", sinks.Query{Type: "com.a.", TypePrefix: true}, false, true},
		{"source", sinks.Query{Source: "urn:s2"}, false, true},
		{"subject", sinks.Query{Subject: "x"}, false, true},
		{"id", sinks.Query{ID: "f07"}, false, true},
		{"combined", sinks.Query{From: from, To: to, Type: "com.", TypePrefix: true, Source: "urn:s1", Subject: "y"}, false, true},
		{"combined, nothing matches", sinks.Query{Type: "com.b.created", ID: "f01"}, true, false},
		{"route", sinks.Query{Route: "orders"}, false, true},
		{"route unknown", sinks.Query{Route: "nope"}, true, false},
		{"destination", sinks.Query{Destination: "http:hook"}, false, true},
		{"kind received", sinks.Query{Kind: sinks.KindReceived}, false, false},
		{"kind", sinks.Query{Kind: sinks.KindDeadLettered}, false, true},
		{"kind poison", sinks.Query{Kind: sinks.KindPoison}, true, false},
		{"route and kind", sinks.Query{Route: "billing", Kind: sinks.KindDelivered}, false, true},
		{"route, destination and kind", sinks.Query{Route: "orders", Destination: "kafka:out", Kind: sinks.KindReplayed}, false, true},
		{"received from", sinks.Query{ReceivedFrom: base.Add(30 * time.Minute)}, false, true},
		{"received to", sinks.Query{ReceivedTo: base.Add(30 * time.Minute)}, false, true},
		{"received window and route", sinks.Query{ReceivedFrom: base.Add(20 * time.Minute), ReceivedTo: base.Add(40 * time.Minute), Route: "audit"}, false, true},
		{"received window, between entries", sinks.Query{ReceivedFrom: base.Add(5*time.Second + time.Millisecond), ReceivedTo: base.Add(time.Minute)}, true, false},
		{"redrivable", sinks.Query{Kind: sinks.KindDeadLettered, Redrivable: true}, false, true},
		{"combined with entries", sinks.Query{From: from, To: to, Type: "com.a.", TypePrefix: true, Source: "urn:s2", Route: "orders"}, false, true},
		{"combined type, subject and kind", sinks.Query{Type: "com.a.deleted", Subject: "x", Kind: sinks.KindFiltered}, false, true},
		{"id and kind, nothing matches", sinks.Query{ID: "f00", Kind: sinks.KindDelivered}, true, false},
		{"within sources", sinks.Query{Within: sinks.Within{SourcePrefixes: []string{"urn:s2", "urn:none"}}}, false, true},
		{"within types", sinks.Query{Within: sinks.Within{TypePrefixes: []string{"com.b.", "com.a.d"}}}, false, true},
		{"within both, and a route", sinks.Query{Route: "orders", Within: sinks.Within{SourcePrefixes: []string{"urn:s"}, TypePrefixes: []string{"com.a."}}}, false, true},
		{"within nothing", sinks.Query{Within: sinks.Within{SourcePrefixes: []string{}}}, true, false},
		{"within, a source outside", sinks.Query{Source: "urn:s1", Within: sinks.Within{SourcePrefixes: []string{"urn:s2"}}}, true, false},
	}
	for _, c := range cases {
		want := e.m.query(c.q)
		switch {
		case c.nothing && len(want) > 0, !c.nothing && len(want) == 0, c.some && len(want) == len(recs):
			t.Fatalf("%s: the test records match %d versions; the case would prove nothing", c.name, len(want))
		}
		for _, desc := range []bool{false, true} {
			q := c.q
			q.Desc, q.Limit = desc, 7 // several pages, so filters and cursors combine
			e.all(t, q)
		}
	}
	e.all(t, sinks.Query{Route: "orders", NoTrail: true, Limit: 5})
}

func testRedrivable(t *testing.T, e *env) {
	const src = "urn:test:redrive"
	dead := func(route, dest string, at time.Duration) sinks.Entry {
		d := hop(sinks.KindDeadLettered, route, dest, at)
		d.Error = "503"
		return d
	}
	deliv := func(route, dest string, at time.Duration) sinks.Entry {
		return hop(sinks.KindDelivered, route, dest, at)
	}
	mk := func(id string, entries ...sinks.Entry) sinks.Record {
		return with(rec(src, id, "com.example.redrive", "", 0), entries...)
	}
	// A hop is recorded once: a later dead letter of the same route and
	// destination is another entry only as a redrive job's.
	again := dead("orders", "billing", time.Hour)
	again.Replay = "redrive-1"
	e.append(t, []sinks.Record{
		mk("redriven", dead("orders", "billing", time.Second), deliv("orders", "billing", time.Minute)),
		mk("other-destination", dead("orders", "billing", time.Second), deliv("orders", "ledger", time.Minute)),
		mk("other-route", dead("orders", "billing", time.Second), deliv("audit", "billing", time.Minute)),
		mk("delivered-before", deliv("orders", "billing", time.Second), dead("orders", "billing", time.Minute)),
		mk("dead-again", dead("orders", "billing", time.Second), deliv("orders", "billing", time.Minute), again),
		mk("audit", dead("audit", "billing", time.Second)),
		mk("delivered", deliv("orders", "billing", time.Second)),
		mk("late-append", dead("orders", "billing", time.Second)),
	})
	// The delivery is appended after the dead letter but happened first:
	// order is by entry time, not by position.
	e.append(t, []sinks.Record{mk("late-append", deliv("orders", "billing", time.Millisecond))})
	// A delivery appended later, of an earlier dead letter: redriven.
	e.append(t, []sinks.Record{mk("late-delivery", dead("orders", "billing", time.Second))})
	e.append(t, []sinks.Record{mk("late-delivery", deliv("orders", "billing", 2*time.Hour))})
	k := func(ids ...string) []string { return e.keysOf(src, ids...) }
	red := sinks.Query{Kind: sinks.KindDeadLettered, Redrivable: true}
	for _, c := range []struct {
		q    sinks.Query
		want []string
	}{
		{red, k("audit", "dead-again", "delivered-before", "late-append", "other-destination", "other-route")},
		{sinks.Query{Kind: sinks.KindDeadLettered, Redrivable: true, Route: "orders"}, k("dead-again", "delivered-before", "late-append", "other-destination", "other-route")},
		{sinks.Query{Kind: sinks.KindDeadLettered, Redrivable: true, Route: "audit", Destination: "billing"}, k("audit")},
		{sinks.Query{Kind: sinks.KindDeadLettered, Redrivable: true, Destination: "ledger"}, nil},
		{sinks.Query{Kind: sinks.KindDeadLettered, Redrivable: true, ReceivedFrom: base.Add(time.Minute)}, k("dead-again", "delivered-before")},
		{sinks.Query{Kind: sinks.KindDeadLettered}, k("audit", "dead-again", "delivered-before", "late-append", "late-delivery", "other-destination", "other-route", "redriven")},
	} {
		c.q.Source = src
		if got := e.all(t, c.q); !slices.Equal(got, c.want) {
			t.Errorf("Query(%s):\n got %v\nwant %v", describe(c.q), got, c.want)
		}
	}
}

func testTimeBoundaries(t *testing.T, e *env) {
	from, to := base, base.Add(time.Hour)
	at := func(id string, offset time.Duration) sinks.Record {
		r := rec("urn:b", id, "t", "", offset)
		r.Entries[0].Time = base.Add(offset)
		return r
	}
	e.append(t, []sinks.Record{at("before", -time.Nanosecond), at("at-from", 0), at("last", time.Hour-time.Nanosecond), at("at-to", time.Hour)})
	if got, want := e.all(t, sinks.Query{From: from, To: to}), e.keysOf("urn:b", "at-from", "last"); !slices.Equal(got, want) {
		t.Errorf("[from, to): got %v, want %v", got, want)
	}
	if got, want := e.all(t, sinks.Query{ReceivedFrom: from, ReceivedTo: to}), e.keysOf("urn:b", "at-from", "last"); !slices.Equal(got, want) {
		t.Errorf("[received_from, received_to): got %v, want %v", got, want)
	}
	e.all(t, sinks.Query{From: from, To: to, Desc: true, Limit: 1})
	cs, err := e.s.Counts(e.ctx, sinks.CountQuery{From: from, To: to, Bucket: time.Hour})
	if err != nil || len(cs) != 1 || cs[0].N != 2 {
		t.Errorf("Counts over [from, to): %+v, %v; want one bucket of 2", cs, err)
	}
}

func testOrderAndPaging(t *testing.T, e *env) {
	// Five versions share each instant, so order falls back on (source,
	// id) for ties, and four versions of one identity at one instant on
	// the digest; the cursor must lose none of them.
	var recs []sinks.Record
	for i := range 25 {
		recs = append(recs, rec(fmt.Sprintf("urn:o%d", 4-i%5), fmt.Sprintf("o%02d", i), "t", "", time.Duration(i/5)*time.Millisecond))
	}
	for v := range 3 {
		r := rec("urn:o2", "o07", "t", "", time.Millisecond)
		r.Event.DataEncoded = fmt.Appendf(nil, `{"v":%d}`, v)
		recs = append(recs, r)
	}
	e.append(t, recs)
	for _, limit := range []int{1, 2, 7, 27, 28, 100} {
		for _, desc := range []bool{false, true} {
			if got := e.all(t, sinks.Query{Limit: limit, Desc: desc}); len(got) != 28 {
				t.Errorf("limit %d, desc %v: %d items", limit, desc, len(got))
			}
		}
	}
	p, err := e.s.Query(e.ctx, sinks.Query{})
	if err != nil || len(p.Items) != 28 || p.Next != "" {
		t.Errorf("default limit: %d items, next %q, %v", len(p.Items), p.Next, err)
	}
	e.all(t, sinks.Query{Limit: 3, NoTrail: true})
	e.all(t, sinks.Query{ID: "o07", Limit: 1})
}

func testPagingWhileAppending(t *testing.T, e *env) {
	stored, late := 4_000, 2_000
	if raceEnabled {
		stored, late = 2_000, 1_000
	}
	recs := many("urn:page", stored, "com.example.page")
	for i := 0; i < stored; i += 1_000 {
		e.append(t, recs[i:i+1_000])
	}
	want := e.m.query(sinks.Query{})
	// Late records land all over the paged range, before and after the
	// cursor, while the pages are read: a third are new events between
	// the stored ones, a third new entries of stored versions, a third
	// other versions of stored events (same time, source and id).
	var wg sync.WaitGroup
	appendErr := make(chan error, 1)
	wg.Go(func() {
		for i := 0; i < late; i += 100 {
			batch := make([]sinks.Record, 0, 100)
			for j := i; j < i+100; j++ {
				old := recs[j*2%stored]
				switch j % 3 {
				case 0:
					batch = append(batch, rec("urn:late", fmt.Sprintf("l-%05d", j), "com.example.page", "",
						time.Duration(j*2)*time.Millisecond+500*time.Microsecond))
				case 1:
					batch = append(batch, with(old, hop(sinks.KindDelivered, "r", "d", time.Hour)))
				default:
					r := with(old, received(int64(j), time.Hour))
					r.Event.DataEncoded = fmt.Appendf(nil, `{"late":%d}`, j)
					batch = append(batch, r)
				}
			}
			if _, err := e.s.Append(e.ctx, batch); err != nil {
				appendErr <- err
				return
			}
		}
	})
	q := sinks.Query{Limit: 300, Type: "com.example.page"}
	reads := []struct {
		name  string
		items func() []sinks.Item
	}{
		{"asc", func() []sinks.Item { return e.pageAll(t, q) }},
		{"desc", func() []sinks.Item { d := q; d.Desc = true; return e.pageAll(t, d) }},
		{"asc without trails", func() []sinks.Item { d := q; d.NoTrail = true; return e.pageAll(t, d) }},
	}
	if sc, ok := e.s.(sinks.Scanner); ok {
		for _, o := range []sinks.ScanOptions{{}, {EventsOnly: true}} {
			reads = append(reads, struct {
				name  string
				items func() []sinks.Item
			}{fmt.Sprintf("scan %+v", o), func() []sinks.Item {
				var its []sinks.Item
				if err := sc.Scan(e.ctx, q, o, func(items []sinks.Item) error { its = append(its, items...); return nil }); err != nil {
					t.Fatalf("Scan: %v", err)
				}
				return its
			}})
		}
	}
	for _, r := range reads {
		seen := make(map[string]bool, stored+late)
		for _, it := range r.items() {
			k := itemKey(&it)
			if seen[k] {
				t.Fatalf("%s: %s returned twice", r.name, k)
			}
			seen[k] = true
		}
		for i := range want {
			if !seen[itemKey(&want[i])] {
				t.Fatalf("%s: %s missing", r.name, itemKey(&want[i]))
			}
		}
	}
	wg.Wait()
	select {
	case err := <-appendErr:
		t.Fatalf("concurrent Append: %v", err)
	default:
	}
	e.mustCount(t, stored+late-(late+1)/3) // all but the new entries, j%3 == 1
}

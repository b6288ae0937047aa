package sinktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// roundTripRecords cover binary data, JSON data whose exact bytes (spacing,
// key order) must survive, and every extension type CloudEvents has.
func roundTripRecords() []sinks.Record {
	bin := make([]byte, 512)
	for i := range bin {
		bin[i] = byte(i)
	}
	b := rec("urn:test:rt", "bin", "com.example.binary", "subj/1", 0)
	b.Event.SetDataContentType("application/octet-stream")
	b.Event.DataEncoded = bin
	b.Event.SetDataSchema("https://example.com/schema/1")

	j := rec("urn:test:rt", "json", "com.example.json", "", time.Second)
	j.Event.SetDataContentType(event.ApplicationJSON)
	j.Event.DataEncoded = []byte("{ \"z\": 1,\n  \"a\" : [1.50, \"\\u00e9\"] }")

	x := rec("urn:test:rt", "ext", "com.example.ext", "", 2*time.Second)
	x.Event.SetExtension("str", "text with ünïcode")
	x.Event.SetExtension("num", int32(-42))
	x.Event.SetExtension("flag", true)
	x.Event.SetExtension("bin", []byte{0, 1, 254, 255})
	x.Event.SetExtension("uri", types.URI{URL: url.URL{Scheme: "https", Host: "example.com", Path: "/x"}})
	x.Event.SetExtension("when", time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC))
	x.Event.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	x.Partition, x.Offset, x.Topic, x.Transport, x.Route = 7, 1<<40, "orders.v1", "kafka", "orders-to-billing"
	x.Outcome = sinks.OutcomeDeadLettered
	b.Outcome, j.Outcome = sinks.OutcomeDelivered, sinks.OutcomeAccepted

	nodata := rec("urn:test:rt", "nodata", "com.example.empty", "", 3*time.Second)
	nodata.Event.DataEncoded = nil
	nodata.Event.SetDataContentType("")
	// Data that is there but empty is not the same as none.
	empty := rec("urn:test:rt", "emptydata", "com.example.empty", "", 4*time.Second)
	empty.Event.SetDataContentType("application/octet-stream")
	empty.Event.DataEncoded = []byte{}
	return []sinks.Record{b, j, x, nodata, empty}
}

// sameRecord fails unless got holds exactly what want holds.
func sameRecord(t *testing.T, want, got *sinks.Record) {
	t.Helper()
	if !bytes.Equal(want.Event.Data(), got.Event.Data()) || (want.Event.Data() == nil) != (got.Event.Data() == nil) {
		t.Errorf("%s: data\n got %q (nil %v)\nwant %q (nil %v)", key(want), got.Event.Data(), got.Event.Data() == nil, want.Event.Data(), want.Event.Data() == nil)
	}
	// Extension maps marshal in no fixed order, so compare decoded JSON.
	var wm, gm map[string]any
	wb, err1 := json.Marshal(want.Event)
	gb, err2 := json.Marshal(got.Event)
	if err1 != nil || err2 != nil || json.Unmarshal(wb, &wm) != nil || json.Unmarshal(gb, &gm) != nil {
		t.Fatalf("%s: marshal: %v %v", key(want), err1, err2)
	}
	if !reflect.DeepEqual(wm, gm) {
		t.Errorf("%s: event\n got %s\nwant %s", key(want), gb, wb)
	}
	if got.Transport != want.Transport || got.Topic != want.Topic || got.Partition != want.Partition ||
		got.Offset != want.Offset || got.Route != want.Route || !got.Received.Equal(want.Received) ||
		got.Outcome != want.Outcome || got.Replay != want.Replay {
		t.Errorf("%s: where seen: got %s/%s/%d/%d/%s/%v/%q/%q, want %s/%s/%d/%d/%s/%v/%q/%q", key(want),
			got.Transport, got.Topic, got.Partition, got.Offset, got.Route, got.Received, got.Outcome, got.Replay,
			want.Transport, want.Topic, want.Partition, want.Offset, want.Route, want.Received, want.Outcome, want.Replay)
	}
}

func testRoundTrip(t *testing.T, e *env) {
	want := roundTripRecords()
	e.append(t, want)
	for i := range want {
		got, err := e.s.Get(e.ctx, want[i].Event.Source(), want[i].Event.ID())
		if err != nil {
			t.Fatalf("Get %s: %v", key(&want[i]), err)
		}
		sameRecord(t, &want[i], &got)
	}
	p, err := e.s.Query(e.ctx, sinks.Query{Source: "urn:test:rt"})
	if err != nil || len(p.Records) != len(want) {
		t.Fatalf("Query: %d records, %v; want %d", len(p.Records), err, len(want))
	}
	for i := range want {
		sameRecord(t, &want[i], &p.Records[i])
	}
}

func testDuplicates(t *testing.T, e *env) {
	first := rec("urn:test:dup", "1", "com.example.a", "", 0)
	first.Outcome = sinks.OutcomeAccepted
	e.append(t, []sinks.Record{first, first})
	e.append(t, []sinks.Record{first, rec("urn:test:dup", "2", "com.example.a", "", 0)}) // a retried Append
	// The same id from another source is another event.
	e.append(t, []sinks.Record{rec("urn:test:other", "1", "com.example.a", "", 0)})
	if n := e.total(t); n != 3 {
		t.Fatalf("stored %d records, want 3", n)
	}
	got := e.get(t, "urn:test:dup", "1")
	sameRecord(t, &first, &got)

	// A later record of the identity replaces the whole record, its indexed
	// fields (time, type) included: the old values find nothing.
	again := rec("urn:test:dup", "1", "com.example.changed", "sub", time.Hour)
	again.Outcome = sinks.OutcomeDelivered
	e.append(t, []sinks.Record{again})
	got = e.get(t, "urn:test:dup", "1")
	sameRecord(t, &again, &got)
	if ks := e.all(t, sinks.Query{Type: "com.example.a", Source: "urn:test:dup"}); !slices.Equal(ks, []string{"urn:test:dup/2"}) {
		t.Errorf("old type still finds the replaced record: %v", ks)
	}
	if ks := e.all(t, sinks.Query{From: base.Add(time.Hour), Source: "urn:test:dup"}); !slices.Equal(ks, []string{"urn:test:dup/1"}) {
		t.Errorf("new time window: got %v, want the replaced record", ks)
	}
	if n := e.total(t); n != 3 {
		t.Fatalf("after the later record: stored %d records, want 3", n)
	}
}

func testFilters(t *testing.T, e *env) {
	sources := []string{"urn:s1", "urn:s2"}
	types := []string{"com.a.created", "com.a.deleted", "com.b.created"}
	subjects := []string{"", "x", "y"}
	routes := []string{"", "orders", "billing"}
	outcomes := []string{sinks.OutcomeDelivered, sinks.OutcomeDeadLettered, "", sinks.OutcomeFiltered}
	var recs []sinks.Record
	for i := range 60 {
		r := rec(sources[i%2], fmt.Sprintf("f%02d", i), types[i%3], subjects[i%5%3], time.Duration(i)*time.Minute)
		r.Route, r.Outcome = routes[i%7%3], outcomes[i%4]
		recs = append(recs, r)
	}
	e.append(t, recs)
	from, to := base.Add(10*time.Minute), base.Add(50*time.Minute)
	cases := []struct {
		name string
		q    sinks.Query
		keep func(r *sinks.Record) bool
	}{
		{"none", sinks.Query{}, func(*sinks.Record) bool { return true }},
		{"from", sinks.Query{From: from}, func(r *sinks.Record) bool { return !r.Time().Before(from) }},
		{"to", sinks.Query{To: to}, func(r *sinks.Record) bool { return r.Time().Before(to) }},
		{"type", sinks.Query{Type: "com.a.created"}, func(r *sinks.Record) bool { return r.Event.Type() == "com.a.created" }},
		{"type exact is not prefix, nothing matches", sinks.Query{Type: "com.a"}, func(*sinks.Record) bool { return false }},
		{"type prefix", sinks.Query{Type: "com.a.", TypePrefix: true}, func(r *sinks.Record) bool { return strings.HasPrefix(r.Event.Type(), "com.a.") }},
		{"source", sinks.Query{Source: "urn:s2"}, func(r *sinks.Record) bool { return r.Event.Source() == "urn:s2" }},
		{"subject", sinks.Query{Subject: "x"}, func(r *sinks.Record) bool { return r.Event.Subject() == "x" }},
		{"id", sinks.Query{ID: "f07"}, func(r *sinks.Record) bool { return r.Event.ID() == "f07" }},
		{"combined", sinks.Query{From: from, To: to, Type: "com.", TypePrefix: true, Source: "urn:s1", Subject: "y"},
			func(r *sinks.Record) bool {
				return !r.Time().Before(from) && r.Time().Before(to) && r.Event.Source() == "urn:s1" && r.Event.Subject() == "y"
			}},
		{"combined type and id", sinks.Query{Type: "com.b.created", ID: "f02"}, func(r *sinks.Record) bool { return r.Event.ID() == "f02" }},
		{"combined, nothing matches", sinks.Query{Type: "com.b.created", ID: "f01"}, func(*sinks.Record) bool { return false }},
		{"route", sinks.Query{Route: "orders"}, func(r *sinks.Record) bool { return r.Route == "orders" }},
		{"route unknown, nothing matches", sinks.Query{Route: "nope"}, func(*sinks.Record) bool { return false }},
		{"outcome", sinks.Query{Outcome: sinks.OutcomeDeadLettered}, func(r *sinks.Record) bool { return r.Outcome == sinks.OutcomeDeadLettered }},
		{"route and outcome", sinks.Query{Route: "billing", Outcome: sinks.OutcomeDelivered},
			func(r *sinks.Record) bool { return r.Route == "billing" && r.Outcome == sinks.OutcomeDelivered }},
		{"combined with route and outcome", sinks.Query{From: from, To: to, Type: "com.a.", TypePrefix: true, Source: "urn:s2", Route: "orders", Outcome: sinks.OutcomeFiltered},
			func(r *sinks.Record) bool {
				return !r.Time().Before(from) && r.Time().Before(to) && strings.HasPrefix(r.Event.Type(), "com.a.") &&
					r.Event.Source() == "urn:s2" && r.Route == "orders" && r.Outcome == sinks.OutcomeFiltered
			}},
		{"combined type, subject and outcome", sinks.Query{Type: "com.a.deleted", Subject: "x", Outcome: sinks.OutcomeDeadLettered},
			func(r *sinks.Record) bool {
				return r.Event.Type() == "com.a.deleted" && r.Event.Subject() == "x" && r.Outcome == sinks.OutcomeDeadLettered
			}},
		{"combined route and outcome, nothing matches", sinks.Query{ID: "f01", Outcome: sinks.OutcomeDelivered}, func(*sinks.Record) bool { return false }},
	}
	for _, c := range cases {
		var want []string
		for i := range recs {
			if c.keep(&recs[i]) {
				want = append(want, key(&recs[i]))
			}
		}
		if len(want) == 0 && !strings.Contains(c.name, "nothing matches") {
			t.Fatalf("%s: the test records match nothing; the case would prove nothing", c.name)
		}
		c.q.Limit = 7 // several pages, so filters and cursors combine
		if got := e.all(t, c.q); !slices.Equal(got, want) {
			t.Errorf("%s: got %v\nwant %v", c.name, got, want)
		}
	}
}

func testTimeBoundaries(t *testing.T, e *env) {
	from, to := base, base.Add(time.Hour)
	e.append(t, []sinks.Record{
		rec("urn:b", "before", "t", "", -time.Nanosecond),
		rec("urn:b", "at-from", "t", "", 0),
		rec("urn:b", "last", "t", "", time.Hour-time.Nanosecond),
		rec("urn:b", "at-to", "t", "", time.Hour),
	})
	got := e.all(t, sinks.Query{From: from, To: to})
	if want := []string{"urn:b/at-from", "urn:b/last"}; !slices.Equal(got, want) {
		t.Errorf("[from, to): got %v, want %v", got, want)
	}
	cs, err := e.s.Counts(e.ctx, sinks.CountQuery{From: from, To: to, Bucket: time.Hour})
	if err != nil || len(cs) != 1 || cs[0].N != 2 {
		t.Errorf("Counts over [from, to): %+v, %v; want one bucket of 2", cs, err)
	}
}

func testOrderAndPaging(t *testing.T, e *env) {
	// Five records share each instant, so order must fall back on
	// (source, id) for ties and the cursor must not lose any of them.
	var recs []sinks.Record
	for i := range 25 {
		recs = append(recs, rec(fmt.Sprintf("urn:o%d", 4-i%5), fmt.Sprintf("o%02d", i), "t", "", time.Duration(i/5)*time.Millisecond))
	}
	e.append(t, recs)
	// Sort key is (time, source, id, replay); sources count down within an
	// instant.
	sortRecords(recs)
	want := keys(recs)
	for _, limit := range []int{1, 7, 25, 100} {
		if got := e.all(t, sinks.Query{Limit: limit}); !slices.Equal(got, want) {
			t.Errorf("ascending, limit %d: got %v\nwant %v", limit, got, want)
		}
		rev := slices.Clone(want)
		slices.Reverse(rev)
		if got := e.all(t, sinks.Query{Limit: limit, Desc: true}); !slices.Equal(got, rev) {
			t.Errorf("descending, limit %d: got %v\nwant %v", limit, got, rev)
		}
	}
	p, err := e.s.Query(e.ctx, sinks.Query{})
	if err != nil || len(p.Records) != 25 || p.Next != "" {
		t.Errorf("default limit: %d records, next %q, %v", len(p.Records), p.Next, err)
	}
}

func testPagingWhileAppending(t *testing.T, e *env) {
	const stored, late = 10_000, 5_000
	recs := many("urn:page", stored, "com.example.page")
	for i := 0; i < stored; i += 2_000 {
		e.append(t, recs[i:i+2_000])
	}
	// Late records land all over the paged range, before and after the
	// cursor, while the pages are read: half are new events between the
	// stored ones, half replayed copies of stored events, which share their
	// time, source and id and differ only in replay.
	var wg sync.WaitGroup
	appendErr := make(chan error, 1)
	wg.Go(func() {
		for i := 0; i < late; i += 250 {
			batch := make([]sinks.Record, 0, 250)
			for j := i; j < i+250; j++ {
				if j%2 == 1 {
					r := variant(recs[j*2], time.Hour, sinks.OutcomeDelivered)
					r.Replay = "late"
					batch = append(batch, r)
					continue
				}
				batch = append(batch, rec("urn:late", fmt.Sprintf("l-%05d", j), "com.example.page", "", time.Duration(j*2)*time.Millisecond+500*time.Microsecond))
			}
			if err := e.s.Append(e.ctx, batch); err != nil {
				appendErr <- err
				return
			}
		}
	})
	// Every way of reading the whole query runs while the late records
	// land.
	type read struct {
		name string
		keys func() []string
	}
	q := sinks.Query{Limit: 500, Type: "com.example.page"}
	reads := []read{
		{"asc", func() []string { return e.pageAll(t, q) }},
		{"desc", func() []string { d := q; d.Desc = true; return e.pageAll(t, d) }},
	}
	if sc, ok := e.s.(sinks.Scanner); ok {
		for _, o := range []sinks.ScanOptions{{}, {EventsOnly: true}} {
			reads = append(reads, read{fmt.Sprintf("scan %+v", o), func() []string {
				var ks []string
				err := sc.Scan(e.ctx, q, o, func(recs []sinks.Record) error {
					ks = append(ks, keys(recs)...)
					return nil
				})
				if err != nil {
					t.Fatalf("Scan: %v", err)
				}
				return ks
			}})
		}
	}
	for _, r := range reads {
		seen := make(map[string]bool, stored+late)
		for _, k := range r.keys() {
			if seen[k] {
				t.Fatalf("%s: %s returned twice", r.name, k)
			}
			seen[k] = true
		}
		for i := range recs {
			if !seen[key(&recs[i])] {
				t.Fatalf("%s: %s missing", r.name, key(&recs[i]))
			}
		}
	}
	wg.Wait()
	select {
	case err := <-appendErr:
		t.Fatalf("concurrent Append: %v", err)
	default:
	}
	if n := e.total(t); n != stored+late {
		t.Errorf("stored %d, want %d", n, stored+late)
	}
}

// testManyAtOneInstant: an instant with many more records than a page
// (one superseded by a later record) pages in order, with every page
// size, between records before and after it.
func testManyAtOneInstant(t *testing.T, e *env) {
	const src, typ = "urn:test:instant", "com.example.instant"
	var recs []sinks.Record
	var want []string
	for i := range 3 {
		recs = append(recs, rec(src, fmt.Sprintf("a-%d", i), typ, "", time.Duration(i)*time.Millisecond))
	}
	for i := range 40 {
		recs = append(recs, rec(src, fmt.Sprintf("b-%02d", i), typ, "", 5*time.Millisecond))
	}
	for i := range 3 {
		recs = append(recs, rec(src, fmt.Sprintf("c-%d", i), typ, "", time.Duration(10+i)*time.Millisecond))
	}
	for i := range recs {
		want = append(want, key(&recs[i]))
	}
	e.append(t, recs)
	e.append(t, []sinks.Record{variant(recs[10], time.Minute, sinks.OutcomeDelivered)})
	for _, limit := range []int{0, 7} { // and 2, as every e.all scans
		if got := e.all(t, sinks.Query{Source: src, Limit: limit}); !slices.Equal(got, want) {
			t.Errorf("limit %d: got %v, want %v", limit, got, want)
		}
	}
	if got := e.all(t, sinks.Query{Source: src, Outcome: sinks.OutcomeDelivered}); !slices.Equal(got, want[10:11]) {
		t.Errorf("outcome delivered: got %v, want %v", got, want[10:11])
	}
}

func testGet(t *testing.T, e *env) {
	recs := many("urn:get", 20, "t")
	e.append(t, recs)
	got, err := e.s.Get(e.ctx, "urn:get", "e-0000013")
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, &recs[13], &got)
	for _, id := range [][2]string{{"urn:get", "nope"}, {"urn:nope", "e-0000013"}} {
		if _, err := e.s.Get(e.ctx, id[0], id[1]); !errors.Is(err, sinks.ErrNotFound) {
			t.Errorf("Get(%q, %q): %v, want ErrNotFound", id[0], id[1], err)
		}
	}
}

func testCounts(t *testing.T, e *env) {
	var recs []sinks.Record
	for i := range 10 {
		recs = append(recs, rec("urn:c", fmt.Sprintf("a%d", i), "com.c.a", "", time.Duration(i)*time.Minute))
		if i%2 == 0 {
			recs = append(recs, rec("urn:c", fmt.Sprintf("b%d", i), "com.c.b", "", time.Duration(i)*time.Minute))
		}
	}
	recs = append(recs, rec("urn:c", "outside", "com.c.a", "", 10*time.Minute))
	e.append(t, recs)
	q := sinks.CountQuery{From: base, To: base.Add(10 * time.Minute), Bucket: 5 * time.Minute}
	got, err := e.s.Counts(e.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	b1 := base.Add(5 * time.Minute)
	want := []sinks.Count{
		{Start: base, Type: "com.c.a", N: 5}, {Start: base, Type: "com.c.b", N: 3},
		{Start: b1, Type: "com.c.a", N: 5}, {Start: b1, Type: "com.c.b", N: 2},
	}
	if !countsEqual(got, want) {
		t.Errorf("Counts: got %+v, want %+v", got, want)
	}
	q.Type = "com.c.b"
	if got, err = e.s.Counts(e.ctx, q); err != nil || !countsEqual(got, []sinks.Count{want[1], want[3]}) {
		t.Errorf("Counts of one type: got %+v, %v", got, err)
	}
	q.Type, q.TypePrefix = "com.c.", true
	if got, err = e.s.Counts(e.ctx, q); err != nil || !countsEqual(got, want) {
		t.Errorf("Counts of a type prefix: got %+v, %v", got, err)
	}
}

func countsEqual(a, b []sinks.Count) bool {
	return slices.EqualFunc(a, b, func(x, y sinks.Count) bool { return x.Start.Equal(y.Start) && x.Type == y.Type && x.N == y.N })
}

func testBadQueries(t *testing.T, e *env) {
	for _, q := range []sinks.Query{
		{Limit: -1},
		{Limit: sinks.MaxLimit + 1},
		{Cursor: "not a cursor"},
		{From: base, To: base},
	} {
		if _, err := e.s.Query(e.ctx, q); !errors.Is(err, sinks.ErrBadQuery) {
			t.Errorf("Query(%+v): %v, want ErrBadQuery", q, err)
		}
	}
	if _, err := e.s.Counts(e.ctx, sinks.CountQuery{From: base, To: base.Add(time.Hour)}); !errors.Is(err, sinks.ErrBadQuery) {
		t.Errorf("Counts without a bucket: %v, want ErrBadQuery", err)
	}
}

func testReopen(t *testing.T, e *env) {
	if e.f.Reopen == nil {
		t.Skip("store has no Reopen hook")
	}
	want := roundTripRecords()
	e.append(t, want)
	e.s = e.f.Reopen(t, e.s)
	for i := range want {
		got, err := e.s.Get(e.ctx, want[i].Event.Source(), want[i].Event.ID())
		if err != nil {
			t.Fatalf("after reopen: %v", err)
		}
		sameRecord(t, &want[i], &got)
	}
	e.append(t, want) // still idempotent after reopening
	if n := e.total(t); n != int64(len(want)) {
		t.Errorf("after reopen: %d records, want %d", n, len(want))
	}
}

func testLargeBatch(t *testing.T, e *env) {
	const n = 50_000
	recs := many("urn:large", n, "com.example.large")
	e.append(t, recs)
	if got := e.total(t); got != n {
		t.Fatalf("stored %d, want %d", got, n)
	}
	got, err := e.s.Get(e.ctx, "urn:large", fmt.Sprintf("e-%07d", n-1))
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, &recs[n-1], &got)
}

func testUseAfterClose(t *testing.T, e *env) {
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Append(e.ctx, many("urn:closed", 1, "t")); !errors.Is(err, sinks.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := e.s.Query(e.ctx, sinks.Query{}); !errors.Is(err, sinks.ErrClosed) {
		t.Errorf("Query after Close: %v, want ErrClosed", err)
	}
}

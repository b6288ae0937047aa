package sinktest

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Cases on versions: what a store keeps of an event, once per content,
// and every version of an identity.

// roundTripRecords cover binary data, JSON data whose exact bytes (spacing,
// key order) must survive, every extension type CloudEvents has, no data
// apart from empty data, base64 JSON data, an event without a time, one
// of spec version 0.3, and entries with every field set.
func roundTripRecords() []sinks.Record {
	const src = "urn:test:rt"
	bin := make([]byte, 512)
	for i := range bin {
		bin[i] = byte(i)
	}
	b := rec(src, "bin", "com.example.binary", "subj/1", 0)
	b.Event.SetDataContentType("application/octet-stream")
	b.Event.DataEncoded = bin
	b.Event.SetDataSchema("https://example.com/schema/1")
	b.Entries[0] = sinks.Entry{Kind: sinks.KindReceived, Time: base.Add(time.Millisecond + 7), Transport: "http",
		Request: "req-7f3a", Principal: "svc-orders"}

	j := rec(src, "json", "com.example.json", "", time.Second)
	j.Event.DataEncoded = []byte("{ \"z\": 1,\n  \"a\" : [1.50, \"\\u00e9\"] }")

	x := rec(src, "ext", "com.example.ext", "", 2*time.Second)
	x.Event.SetExtension("str", "text with ünïcode")
	x.Event.SetExtension("num", int32(-42))
	x.Event.SetExtension("flag", true)
	x.Event.SetExtension("bin", []byte{0, 1, 254, 255})
	x.Event.SetExtension("uri", types.URI{URL: url.URL{Scheme: "https", Host: "example.com", Path: "/x"}})
	x.Event.SetExtension("when", time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC))
	x.Event.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	x.Entries = append(x.Entries,
		sinks.Entry{Kind: sinks.KindReceived, Time: base.Add(2*time.Second + 2*time.Millisecond), Transport: "kafka",
			Topic: "orders.v1", Partition: 7, Offset: 1 << 40, Principal: "kafka:orders.v1", Route: "orders-to-billing",
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", Signature: "verified: shop-2026"},
		sinks.Entry{Kind: sinks.KindDeadLettered, Time: base.Add(2*time.Second + 3*time.Millisecond), Route: "orders-to-billing",
			Destination: "billing", Attempts: 5, Error: "billing: 503 Service Unavailable",
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "b7ad6b7169203331"},
		sinks.Entry{Kind: sinks.KindReplayed, Time: base.Add(2*time.Second + 4*time.Millisecond), Route: "orders-to-billing",
			Destination: "billing", Replay: "01a20238-03fb-78e4-93b6-995ebb237fb0"},
		sinks.Entry{Kind: sinks.KindDelivered, Time: base.Add(2*time.Second + 4*time.Millisecond), Route: "orders-to-billing",
			Destination: "billing", Attempts: 1, Replay: "01a20238-03fb-78e4-93b6-995ebb237fb0"},
	)

	nodata := rec(src, "nodata", "com.example.empty", "", 3*time.Second)
	nodata.Event.DataEncoded = nil
	nodata.Event.SetDataContentType("")
	// Data that is there but empty is not the same as none.
	empty := rec(src, "emptydata", "com.example.empty", "", 4*time.Second)
	empty.Event.SetDataContentType("application/octet-stream")
	empty.Event.DataEncoded = []byte{}

	b64 := rec(src, "base64", "com.example.json", "", 5*time.Second)
	b64.Event.DataBase64 = true

	// Without a time attribute the version is indexed at its first entry.
	untimed := rec(src, "untimed", "com.example.untimed", "", 6*time.Second)
	untimed.Event.SetTime(time.Time{})

	v03 := rec(src, "v03", "com.example.v03", "s", 7*time.Second)
	v03.Event.SetSpecVersion(event.CloudEventsVersionV03)
	v03.Event.SetExtension("partitionkey", "k-1")

	poison := rec(src, "poison", "auditbus.poison", "", 8*time.Second)
	poison.Event.SetDataContentType("application/octet-stream")
	poison.Event.DataEncoded = []byte("\xff\xfenot an event")
	poison.Entries[0] = sinks.Entry{Kind: sinks.KindPoison, Time: base.Add(8*time.Second + 1), Transport: "amqp",
		Topic: "orders", Offset: 12, Principal: "amqp:orders", Route: "orders", Error: "no ce-specversion header"}
	return []sinks.Record{b, j, x, nodata, empty, b64, untimed, v03, poison}
}

func testRoundTrip(t *testing.T, e *env) {
	recs := roundTripRecords()
	e.append(t, recs)
	for _, r := range recs {
		e.checkGet(t, r.Event.Source(), r.Event.ID())
	}
	if ks := e.all(t, sinks.Query{Source: "urn:test:rt"}); len(ks) != len(recs) {
		t.Errorf("Query: %d items, want %d", len(ks), len(recs))
	}
	e.all(t, sinks.Query{Source: "urn:test:rt", NoTrail: true, Limit: 4})
	untimed := e.get(t, "urn:test:rt", "untimed")
	if want := base.Add(6*time.Second + time.Millisecond); !untimed[0].Time.Equal(want) {
		t.Errorf("an event without time is indexed at %v, want its first entry's time %v", untimed[0].Time, want)
	}
	// Whether JSON data was carried as base64 is not part of the version:
	// the other form is the same version, which keeps its first form.
	for _, id := range []string{"json", "base64"} {
		i := slices.IndexFunc(recs, func(r sinks.Record) bool { return r.Event.ID() == id })
		again := with(recs[i], hop(sinks.KindDelivered, "r", "d", 9*time.Second))
		again.Event.DataBase64 = !again.Event.DataBase64
		if res := e.append(t, []sinks.Record{again}); res.Versions != 0 {
			t.Errorf("%s with the other base64 flag stored as a new version", id)
		}
		e.checkGet(t, "urn:test:rt", id)
	}
	e.mustCount(t, len(recs))
}

func testVersionStoredOnce(t *testing.T, e *env) {
	const src = "urn:test:once"
	first := rec(src, "1", "com.example.a", "", 0)
	first.Event.SetExtension("a", "1")
	first.Event.SetExtension("b", int32(2))
	e.append(t, []sinks.Record{first})

	// The same content, with extensions set in the other order and the
	// time in another zone: the same version, with one more entry.
	same := ev(src, "1", "com.example.a", "", 0)
	same.SetTime(base.In(time.FixedZone("X", -5*3600)))
	same.SetExtension("b", int32(2))
	same.SetExtension("a", "1")
	res := e.append(t, []sinks.Record{{Event: same, Entries: []sinks.Entry{hop(sinks.KindDelivered, "r", "d", time.Second)}}})
	if res.Versions != 0 || res.Entries != 1 || len(res.Conflicts) != 0 {
		t.Errorf("the same content again: %+v, want no version, one entry", res)
	}
	// The same id from another source is another event.
	e.append(t, []sinks.Record{rec("urn:test:other", "1", "com.example.a", "", 0)})
	e.mustCount(t, 2)
	e.checkGet(t, src, "1")
	if its := e.get(t, src, "1"); len(its) != 1 || len(its[0].Trail) != 2 {
		t.Errorf("Get: %d versions, want one with two entries", len(its))
	}
	e.all(t, sinks.Query{ID: "1"})
}

func testConflict(t *testing.T, e *env) {
	const src = "urn:test:conflict"
	orig := rec(src, "1", "com.example.a", "", 0)
	e.append(t, []sinks.Record{orig, rec(src, "2", "com.example.a", "", 0)})

	// Other content under the same identity, its time backdated by an
	// hour: kept beside the first, flagged, and indexed at its own time.
	later := with(orig, received(99, time.Minute))
	later.Event.DataEncoded = []byte(`{"id":"1","amount":1000000}`)
	later.Event.SetTime(base.Add(-time.Hour))
	res := e.append(t, []sinks.Record{later})
	d0, _ := sinks.DigestEvent(&orig.Event)
	d1, _ := sinks.DigestEvent(&later.Event)
	if len(res.Conflicts) != 1 || res.Conflicts[0].Digest != d1 || res.Conflicts[0].Earlier != d0 ||
		res.Conflicts[0].Source != src || res.Conflicts[0].ID != "1" {
		t.Errorf("Append result conflicts %+v; want %s/1 %s after %s", res.Conflicts, src, d1, d0)
	}
	its := e.get(t, src, "1")
	if len(its) != 2 || its[0].Digest != d0 || its[1].Digest != d1 || its[0].Conflict || !its[1].Conflict {
		t.Fatalf("Get: %d versions; want the first, then the conflicting one flagged", len(its))
	}
	e.checkGet(t, src, "1")

	// The first content again is no conflict: it is stored already.
	if res := e.append(t, []sinks.Record{with(orig, hop(sinks.KindDelivered, "r", "d", 2*time.Minute))}); res.Versions != 0 || len(res.Conflicts) != 0 {
		t.Errorf("the first content again: %+v", res)
	}
	// A third content conflicts with both; it names one of them.
	third := with(orig, received(100, 3*time.Minute))
	third.Event.SetSubject("changed")
	e.append(t, []sinks.Record{third})
	e.checkGet(t, src, "1")
	e.mustCount(t, 4)
	if ks := e.all(t, sinks.Query{Source: src, ID: "1"}); len(ks) != 3 {
		t.Errorf("Query by id: %v, want three versions", ks)
	}
	e.all(t, sinks.Query{Source: src, Desc: true, Limit: 1})
	e.all(t, sinks.Query{Source: src, Subject: "changed"})
	e.all(t, sinks.Query{Source: src, To: base})
}

func testDuplicatesInOneAppend(t *testing.T, e *env) {
	const src = "urn:test:dup1"
	a := rec(src, "a", "t", "", 0)
	b := rec(src, "b", "t", "", time.Millisecond)
	bDelivered := with(b, hop(sinks.KindDelivered, "r", "d", time.Second))
	c := rec(src, "c", "t", "", 2*time.Millisecond)
	c.Entries = append(c.Entries, c.Entries[0], hop(sinks.KindFiltered, "f", "", time.Second), hop(sinks.KindFiltered, "f", "", 2*time.Second))
	d1 := rec(src, "d", "t", "", 3*time.Millisecond)
	d2 := with(d1, received(77, time.Minute))
	d2.Event.DataEncoded = []byte(`{"id":"d","v":2}`)
	batch := []sinks.Record{a, a, b, bDelivered, b, c, d1, d2, d1}
	res := e.append(t, batch)
	if res.Versions != 5 || res.Entries != 7 || res.Duplicates != 5 || len(res.Conflicts) != 1 {
		t.Errorf("Append: %+v; want 5 versions, 7 entries, 5 duplicates, 1 conflict", res)
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		e.checkGet(t, src, id)
	}
	e.checkLog(t, e.log, 100)
	// The whole batch again stores nothing: a retried Append.
	res = e.append(t, batch)
	if res.Versions != 0 || res.Entries != 0 || res.Duplicates != 12 || len(res.Conflicts) != 0 {
		t.Errorf("the batch again: %+v; want 12 duplicates and nothing else", res)
	}
	e.checkLog(t, e.log, 3)
	e.all(t, sinks.Query{Source: src, Limit: 2})
}

func testGet(t *testing.T, e *env) {
	recs := many("urn:get", 20, "t")
	e.append(t, recs)
	other := with(recs[13], received(1, time.Hour))
	other.Event.SetType("t2")
	e.append(t, []sinks.Record{other, with(recs[5], hop(sinks.KindFiltered, "r", "", time.Hour))})
	for _, id := range []string{"e-0000013", "e-0000005", "e-0000000"} {
		e.checkGet(t, "urn:get", id)
	}
	if its := e.get(t, "urn:get", "e-0000013"); len(its) != 2 {
		t.Errorf("Get of an event with two versions: %d", len(its))
	}
	for _, id := range [][2]string{{"urn:get", "nope"}, {"urn:nope", "e-0000013"}, {"", ""}} {
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
	// More entries change no count; another version counts at its time.
	conflict := with(recs[0], received(5, 6*time.Minute))
	conflict.Event.SetTime(base.Add(6 * time.Minute))
	e.append(t, []sinks.Record{with(recs[1], hop(sinks.KindDelivered, "r", "d", time.Hour)), conflict})
	q := sinks.CountQuery{From: base, To: base.Add(10 * time.Minute), Bucket: 5 * time.Minute}
	got, err := e.s.Counts(e.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	b1 := base.Add(5 * time.Minute)
	want := []sinks.Count{
		{Start: base, Type: "com.c.a", N: 5}, {Start: base, Type: "com.c.b", N: 3},
		{Start: b1, Type: "com.c.a", N: 6}, {Start: b1, Type: "com.c.b", N: 2},
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
	q.Type, q.TypePrefix = "", false
	q.Within = sinks.Within{SourcePrefixes: []string{"urn:"}, TypePrefixes: []string{"com.c.b"}}
	if got, err = e.s.Counts(e.ctx, q); err != nil || !countsEqual(got, []sinks.Count{want[1], want[3]}) {
		t.Errorf("Counts within a type prefix: got %+v, %v", got, err)
	}
	q.Within = sinks.Within{SourcePrefixes: []string{"urn:other"}}
	if got, err = e.s.Counts(e.ctx, q); err != nil || len(got) != 0 {
		t.Errorf("Counts within another source: got %+v, %v", got, err)
	}
}

// testCountOutcomes: a store that counts outcomes counts the entries
// with a route per bucket of their time and per kind, each stored once.
func testCountOutcomes(t *testing.T, e *env) {
	oc, ok := e.s.(sinks.OutcomeCounter)
	if !ok {
		t.Skip("the store does not count outcomes")
	}
	a := rec("urn:o", "a", "com.o", "", 0)
	b := rec("urn:o", "b", "com.o", "", 0)
	e.append(t, []sinks.Record{
		with(a, received(1, time.Minute), hop(sinks.KindDelivered, "r", "d1", time.Minute), hop(sinks.KindDelivered, "r", "d2", time.Minute),
			hop(sinks.KindDeadLettered, "r", "d3", 2*time.Minute)),
		with(b, hop(sinks.KindFiltered, "s", "", 6*time.Minute), hop(sinks.KindDelivered, "r", "d1", 11*time.Minute)),
	})
	// The same entries again are stored once.
	e.append(t, []sinks.Record{with(a, hop(sinks.KindDelivered, "r", "d1", time.Minute))})
	q := sinks.CountQuery{From: base, To: base.Add(10 * time.Minute), Bucket: 5 * time.Minute}
	got, err := oc.CountOutcomes(e.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	want := []sinks.Count{
		{Start: base, Type: sinks.KindDeadLettered, N: 1}, {Start: base, Type: sinks.KindDelivered, N: 2},
		{Start: base.Add(5 * time.Minute), Type: sinks.KindFiltered, N: 1},
	}
	if !countsEqual(got, want) {
		t.Errorf("CountOutcomes: got %+v, want %+v", got, want)
	}
}

func countsEqual(a, b []sinks.Count) bool {
	return slices.EqualFunc(a, b, func(x, y sinks.Count) bool { return x.Start.Equal(y.Start) && x.Type == y.Type && x.N == y.N })
}

func testBadQueries(t *testing.T, e *env) {
	for _, c := range []struct {
		q     sinks.Query
		param string
	}{
		{sinks.Query{Limit: -1}, "limit"},
		{sinks.Query{Limit: sinks.MaxLimit + 1}, "limit"},
		{sinks.Query{Cursor: "not a cursor"}, "cursor"},
		{sinks.Query{From: base, To: base}, "to"},
		{sinks.Query{Kind: "bounced"}, "outcome"},
		{sinks.Query{Redrivable: true}, "outcome"},
		{sinks.Query{Kind: sinks.KindDelivered, Redrivable: true}, "outcome"},
		{sinks.Query{ReceivedFrom: base, ReceivedTo: base.Add(-time.Second)}, "received_to"},
	} {
		_, err := e.s.Query(e.ctx, c.q)
		if !errors.Is(err, sinks.ErrBadQuery) || !strings.Contains(err.Error(), `"`+c.param+`"`) {
			t.Errorf("Query(%+v): %v, want ErrBadQuery naming %q", c.q, err, c.param)
		}
		if vc, ok := e.s.(sinks.VersionCounter); ok {
			if _, err := vc.CountVersions(e.ctx, c.q); !errors.Is(err, sinks.ErrBadQuery) && c.param != "cursor" && c.param != "limit" {
				t.Errorf("CountVersions(%+v): %v, want ErrBadQuery", c.q, err)
			}
		}
	}
	if _, err := e.s.Counts(e.ctx, sinks.CountQuery{From: base, To: base.Add(time.Hour)}); !errors.Is(err, sinks.ErrBadQuery) {
		t.Errorf("Counts without a bucket: %v, want ErrBadQuery", err)
	}
	if _, err := e.s.Entries(e.ctx, "no-such-log", 0, 10); !errors.Is(err, sinks.ErrNoLog) {
		t.Errorf("Entries of a log never written: %v, want ErrNoLog", err)
	}
	// An entry that is not valid fails the whole Append: nothing of it is
	// stored.
	bad := rec("urn:bad", "2", "t", "", 0)
	bad.Entries[0].Kind = "bounced"
	if _, err := e.s.Append(e.ctx, []sinks.Record{rec("urn:bad", "1", "t", "", 0), bad}); err == nil {
		t.Error("Append of an entry of unknown kind succeeded")
	}
	e.mustCount(t, 0)
	if ls, err := e.s.Logs(e.ctx); err != nil || len(ls) != 0 {
		t.Errorf("Logs after a failed Append: %+v, %v; want none", ls, err)
	}
	e.append(t, many("urn:bad", 3, "t"))
	for _, limit := range []int{-1, sinks.MaxLimit + 1} {
		if _, err := e.s.Entries(e.ctx, e.log, 0, limit); !errors.Is(err, sinks.ErrBadQuery) {
			t.Errorf("Entries with limit %d: %v, want ErrBadQuery", limit, err)
		}
	}
}

func testReopen(t *testing.T, e *env) {
	if e.f.Reopen == nil {
		t.Skip("store has no Reopen hook")
	}
	recs := roundTripRecords()
	e.append(t, recs)
	e.s = e.f.Reopen(t, e.s)
	for _, r := range recs {
		e.checkGet(t, r.Event.Source(), r.Event.ID())
	}
	e.checkLog(t, e.log, 5)
	// Still idempotent after reopening, and the log goes on without a gap.
	if res := e.append(t, recs); res.Entries != 0 || res.Versions != 0 {
		t.Errorf("the records again after reopening: %+v", res)
	}
	e.append(t, many("urn:reopen", 3, "t"))
	e.checkLog(t, e.log, 100)
	e.mustCount(t, len(recs)+3)
}

func testUseAfterClose(t *testing.T, e *env) {
	e.append(t, many("urn:closed", 1, "t"))
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, sinks.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	_, err := e.s.Append(e.ctx, many("urn:closed", 1, "t"))
	check("Append", err)
	_, err = e.s.Query(e.ctx, sinks.Query{})
	check("Query", err)
	_, err = e.s.Get(e.ctx, "urn:closed", "e-0000000")
	check("Get", err)
	_, err = e.s.Counts(e.ctx, sinks.CountQuery{From: base, To: base.Add(time.Hour), Bucket: time.Hour})
	check("Counts", err)
	_, err = e.s.Logs(e.ctx)
	check("Logs", err)
	_, err = e.s.Entries(e.ctx, e.log, 0, 10)
	check("Entries", err)
	_, err = e.s.Retain(e.ctx, base)
	check("Retain", err)
	if vc, ok := e.s.(sinks.VersionCounter); ok {
		_, err = vc.CountVersions(e.ctx, sinks.Query{})
		check("CountVersions", err)
	}
}

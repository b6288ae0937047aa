package sinktest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// Cases on record identity (source, id, replay): which record of an
// identity a store keeps, and replayed copies beside their originals.

// testSupersede: for an identity already stored, a record received later
// replaces it (a redrive's "delivered" after "deadlettered"); one received
// earlier or at the same instant does not.
func testSupersede(t *testing.T, e *env) {
	const src = "urn:test:sup"
	dead := rec(src, "1", "com.example.a", "", 0)
	dead.Route, dead.Outcome = "orders", sinks.OutcomeDeadLettered
	other := rec(src, "2", "com.example.a", "", time.Second)
	other.Outcome = sinks.OutcomeDeadLettered
	e.append(t, []sinks.Record{dead, other})

	redrive := variant(dead, time.Minute, sinks.OutcomeDelivered)
	redrive.Topic, redrive.Offset = "orders.redrive", 99
	e.append(t, []sinks.Record{redrive})
	got := e.get(t, src, "1")
	sameRecord(t, &redrive, &got)

	stale := variant(dead, -time.Minute, sinks.OutcomeAccepted)
	tie := variant(redrive, 0, sinks.OutcomeFiltered)
	tie.Topic = "orders.tie"
	for _, r := range []sinks.Record{stale, dead, tie} {
		e.append(t, []sinks.Record{r})
		got = e.get(t, src, "1")
		if got.Outcome != sinks.OutcomeDelivered || got.Topic != redrive.Topic {
			t.Fatalf("a record received at %v (outcome %q) replaced the one received at %v: now outcome %q, topic %q",
				r.Received, r.Outcome, redrive.Received, got.Outcome, got.Topic)
		}
	}
	sameRecord(t, &redrive, &got)

	if n := e.total(t); n != 2 {
		t.Errorf("stored %d records, want 2", n)
	}
	if ks := e.all(t, sinks.Query{Outcome: sinks.OutcomeDeadLettered}); !slices.Equal(ks, []string{src + "/2"}) {
		t.Errorf("outcome deadlettered: got %v, want only the record never redriven", ks)
	}
	if ks := e.all(t, sinks.Query{Outcome: sinks.OutcomeDelivered, Route: "orders"}); !slices.Equal(ks, []string{src + "/1"}) {
		t.Errorf("outcome delivered on route orders: got %v, want the redriven record", ks)
	}
}

// testLaterRecordMoves: a later record of an identity at another type, at
// another time, or at both and then back, is found where the winner is and
// nowhere else, by every filter and in pages of any size; an earlier one
// elsewhere changes nothing.
func testLaterRecordMoves(t *testing.T, e *env) {
	const src = "urn:test:move"
	const a, b = "com.example.move.a", "com.example.move.b"
	at := func(id, typ string, offset, received time.Duration, outcome string) sinks.Record {
		r := rec(src, id, typ, "", offset)
		r.Received, r.Outcome = base.Add(received), outcome
		return r
	}
	for _, r := range []sinks.Record{
		at("still", a, 0, time.Millisecond, sinks.OutcomeAccepted),
		at("type", a, 0, time.Millisecond, sinks.OutcomeAccepted),
		at("type", b, 0, time.Minute, sinks.OutcomeDelivered), // same time, another type
		at("time", a, 0, time.Millisecond, sinks.OutcomeAccepted),
		at("time", a, time.Second, time.Minute, sinks.OutcomeDelivered), // same type, another time
		at("back", a, 2*time.Second, time.Millisecond, sinks.OutcomeAccepted),
		at("back", b, 2*time.Second, time.Minute, sinks.OutcomeFiltered),
		at("back", a, 2*time.Second, 2*time.Minute, sinks.OutcomeDelivered), // and back again
		at("stale", a, 3*time.Second, time.Minute, sinks.OutcomeDelivered),
		at("stale", b, 0, -time.Minute, sinks.OutcomeAccepted), // earlier, elsewhere: loses
	} {
		e.append(t, []sinks.Record{r})
	}
	k := func(ids ...string) []string {
		out := []string{}
		for _, id := range ids {
			out = append(out, src+"/"+id)
		}
		return out
	}
	for _, c := range []struct {
		q    sinks.Query
		want []string
	}{
		{sinks.Query{Source: src, Limit: 2}, k("still", "type", "time", "back", "stale")},
		{sinks.Query{Source: src, Type: a}, k("still", "time", "back", "stale")},
		{sinks.Query{Source: src, Type: b}, k("type")},
		{sinks.Query{Source: src, Type: "com.example.move.", TypePrefix: true, Limit: 1}, k("still", "type", "time", "back", "stale")},
		{sinks.Query{Source: src, From: base.Add(time.Second)}, k("time", "back", "stale")},
		{sinks.Query{Source: src, To: base.Add(time.Second)}, k("still", "type")},
		{sinks.Query{Source: src, Outcome: sinks.OutcomeDelivered}, k("type", "time", "back", "stale")},
		{sinks.Query{Source: src, Type: a, Outcome: sinks.OutcomeAccepted}, k("still")},
		{sinks.Query{Source: src, Type: b, Outcome: sinks.OutcomeAccepted}, k()},
	} {
		if got := e.all(t, c.q); !slices.Equal(got, c.want) {
			t.Errorf("%+v: got %v, want %v", c.q, got, c.want)
		}
	}
}

// testDuplicatesInOneAppend: within one Append, duplicates of an identity
// resolve as if appended one after the other: the latest Received wins,
// and of equal Received the first in the call (or the stored one) stays.
func testDuplicatesInOneAppend(t *testing.T, e *env) {
	const src = "urn:test:dup1"
	a := rec(src, "latest-wins", "t", "", 0)
	stored := rec(src, "stored", "t", "", 0)
	e.append(t, []sinks.Record{stored})
	tie := rec(src, "tie", "t", "", 0)
	var (
		aLate  = variant(a, 2*time.Second, sinks.OutcomeDelivered)
		sLater = variant(stored, time.Second, sinks.OutcomeDeadLettered)
		sLate  = variant(stored, 2*time.Second, sinks.OutcomeDelivered)
		tie2   = variant(tie, 0, sinks.OutcomeDelivered)
	)
	tie.Outcome = sinks.OutcomeAccepted
	batch := []sinks.Record{
		variant(a, time.Second, sinks.OutcomeAccepted), aLate, variant(a, 0, sinks.OutcomeDeadLettered),
		sLater, variant(stored, -time.Second, sinks.OutcomePoison), sLate, variant(stored, time.Second, sinks.OutcomeFiltered),
		tie, tie2,
	}
	e.append(t, batch)
	for _, want := range []sinks.Record{aLate, sLate, tie} {
		got := e.get(t, src, want.Event.ID())
		sameRecord(t, &want, &got)
	}
	if n := e.total(t); n != 3 {
		t.Errorf("stored %d records, want 3", n)
	}
	// The whole batch again changes nothing: a retried Append is idempotent.
	e.append(t, batch)
	if ks := e.all(t, sinks.Query{Source: src}); !slices.Equal(ks, []string{src + "/latest-wins", src + "/stored", src + "/tie"}) {
		t.Errorf("after the retried batch: %v", ks)
	}
	got := e.get(t, src, "tie")
	sameRecord(t, &tie, &got)
}

// testReplay: a replayed copy (same source and id, Replay set) is a record
// of its own beside the original; Get returns the original, Query both.
func testReplay(t *testing.T, e *env) {
	const src = "urn:test:replay"
	orig := rec(src, "1", "com.example.a", "", 0)
	orig.Route, orig.Outcome = "orders", sinks.OutcomeDeadLettered
	r1 := variant(orig, time.Hour, sinks.OutcomeDelivered)
	r1.Replay = "r1"
	r1.Event.SetExtension("replay", "r1")
	r2 := variant(orig, 2*time.Hour, sinks.OutcomeDeadLettered)
	r2.Replay = "r2"
	r2.Event.SetExtension("replay", "r2")
	// Only a replayed copy of this one is stored: it has no original.
	orphan := rec(src, "2", "com.example.a", "", time.Second)
	orphan.Replay = "r1"

	// The copy arrives before the original: neither hides the other.
	e.append(t, []sinks.Record{r1, orphan})
	e.append(t, []sinks.Record{orig})
	e.append(t, []sinks.Record{r2})

	got := e.get(t, src, "1")
	sameRecord(t, &orig, &got)
	if _, err := e.s.Get(e.ctx, src, "2"); !errors.Is(err, sinks.ErrNotFound) {
		t.Errorf("Get of an event stored only as a replayed copy: %v, want ErrNotFound", err)
	}
	want := []sinks.Record{orig, r1, r2, orphan}
	p, err := e.s.Query(e.ctx, sinks.Query{Source: src})
	if err != nil || len(p.Records) != len(want) {
		t.Fatalf("Query: %v, %v; want %v", keys(p.Records), err, keys(want))
	}
	for i := range want {
		sameRecord(t, &want[i], &p.Records[i])
	}
	if n := e.total(t); n != 4 {
		t.Errorf("stored %d records, want 4", n)
	}
	for _, c := range []struct {
		q    sinks.Query
		want []string
	}{
		{sinks.Query{ID: "1"}, []string{src + "/1", src + "/1@r1", src + "/1@r2"}},
		{sinks.Query{ID: "1", Outcome: sinks.OutcomeDelivered}, []string{src + "/1@r1"}},
		{sinks.Query{Outcome: sinks.OutcomeDeadLettered, Desc: true, Limit: 1}, []string{src + "/1@r2", src + "/1"}},
	} {
		if ks := e.all(t, c.q); !slices.Equal(ks, c.want) {
			t.Errorf("Query(%+v): got %v, want %v", c.q, ks, c.want)
		}
	}

	// Identity includes replay: a later record of r1 supersedes r1 only.
	r1b := variant(r1, time.Minute, sinks.OutcomeFiltered)
	e.append(t, []sinks.Record{r1b, variant(orig, -time.Minute, sinks.OutcomeAccepted)})
	p, err = e.s.Query(e.ctx, sinks.Query{ID: "1"})
	if err != nil || len(p.Records) != 3 {
		t.Fatalf("Query after superseding r1: %v, %v", keys(p.Records), err)
	}
	for i, w := range []sinks.Record{orig, r1b, r2} {
		sameRecord(t, &w, &p.Records[i])
	}
}

// testPagingOverReplays pages over records whose sort keys differ only in
// replay, with every page size cutting between them.
func testPagingOverReplays(t *testing.T, e *env) {
	var recs []sinks.Record
	for inst := range 3 {
		for _, id := range []string{"b", "a"} {
			for _, replay := range []string{"r9", "", "r10", "r1", "r2"} {
				r := rec("urn:test:rp", fmt.Sprintf("%s%d", id, inst), "com.example.rp", "", time.Duration(inst)*time.Millisecond)
				r.Replay = replay
				recs = append(recs, r)
			}
		}
	}
	e.append(t, recs)
	sortRecords(recs)
	want := keys(recs)
	rev := slices.Clone(want)
	slices.Reverse(rev)
	for _, limit := range []int{1, 2, 3, 4, 7, 100} {
		if got := e.all(t, sinks.Query{Limit: limit}); !slices.Equal(got, want) {
			t.Errorf("ascending, limit %d: got %v\nwant %v", limit, got, want)
		}
		if got := e.all(t, sinks.Query{Limit: limit, Desc: true}); !slices.Equal(got, rev) {
			t.Errorf("descending, limit %d: got %v\nwant %v", limit, got, rev)
		}
	}
	var onlyA1 []string
	for _, k := range want {
		if strings.HasPrefix(k, "urn:test:rp/a1") {
			onlyA1 = append(onlyA1, k)
		}
	}
	if got := e.all(t, sinks.Query{ID: "a1", Limit: 2}); !slices.Equal(got, onlyA1) || len(got) != 5 {
		t.Errorf("id a1, limit 2: got %v\nwant %v", got, onlyA1)
	}
}

package sinktest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// Cases on entries: the log's order and positions, idempotent retries,
// trails across routes and logs, retention.

func testEntriesInOrder(t *testing.T, e *env) {
	const src = "urn:test:log"
	var recs []sinks.Record
	for i := range 12 {
		r := rec(src, fmt.Sprintf("l%02d", i), "com.example.log", "", time.Duration(i)*time.Second)
		r.Entries[0].Request = fmt.Sprintf("req-%d", i)
		switch i % 4 {
		case 1:
			r.Entries = append(r.Entries, hop(sinks.KindFiltered, "audit", "", time.Duration(i)*time.Second+2*time.Millisecond))
		case 2:
			d := hop(sinks.KindDeadLettered, "orders", "billing", time.Duration(i)*time.Second+3*time.Millisecond)
			d.Attempts, d.Error = 7, "billing: connection refused"
			r.Entries = append(r.Entries, d, hop(sinks.KindDelivered, "orders", "ledger", time.Duration(i)*time.Second+time.Millisecond))
		case 3:
			p := hop(sinks.KindReplayed, "orders", "billing", time.Hour+time.Duration(i))
			p.Replay = fmt.Sprintf("job-%d", i)
			r.Entries = append(r.Entries, p)
		}
		recs = append(recs, r)
	}
	// Several Appends: positions continue from one to the next.
	e.append(t, recs[:5])
	e.append(t, recs[5:6])
	e.append(t, recs[6:])
	for _, limit := range []int{1, 3, 1000} {
		e.checkLog(t, e.log, limit)
	}
	got := e.entries(t, e.s, e.log, 100)
	if !slices.Equal(seqs(got), upTo(len(got))) {
		t.Errorf("seqs %v, want 1..%d", seqs(got), len(got))
	}
	if page, err := e.s.Entries(e.ctx, e.log, 4, 3); err != nil || !slices.Equal(seqs(page), []uint64{5, 6, 7}) {
		t.Errorf("Entries(after 4, limit 3): %v, %v; want 5, 6, 7", seqs(page), err)
	}
	if page, err := e.s.Entries(e.ctx, e.log, uint64(len(got)), 3); err != nil || len(page) != 0 {
		t.Errorf("Entries after the last: %v, %v; want none", seqs(page), err)
	}
	e.all(t, sinks.Query{Source: src, Limit: 5})

	// An entry without a time is recorded at the store's now, and a
	// version without one is indexed at that entry's time.
	before := time.Now()
	r := rec(src, "now", "com.example.log", "", 0)
	r.Event.SetTime(time.Time{})
	r.Entries[0].Time = time.Time{}
	if _, err := e.s.Append(e.ctx, []sinks.Record{r}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	page, err := e.s.Entries(e.ctx, e.log, uint64(len(got)), 10)
	if err != nil || len(page) != 1 {
		t.Fatalf("Entries after the entry without a time: %d, %v", len(page), err)
	}
	// The store's clock may be another process's: allow it a minute.
	if at := page[0].Time; at.Before(before.Add(-time.Minute)) || at.After(after.Add(time.Minute)) {
		t.Errorf("an entry without a time was recorded at %v; the Append ran from %v to %v", at, before, after)
	}
	its := e.get(t, src, "now")
	if len(its) != 1 || !its[0].Time.Equal(page[0].Time) || len(its[0].Trail) != 1 || !its[0].Trail[0].Time.Equal(page[0].Time) {
		t.Errorf("the version without a time: %+v; want it at its entry's time %v", its, page[0].Time)
	}
}

func testIdempotentRetry(t *testing.T, e *env) {
	recs := many("urn:test:retry", 50, "t")
	for i := range recs {
		recs[i].Entries = append(recs[i].Entries, hop(sinks.KindDelivered, "r", "d", time.Hour+time.Duration(i)))
	}
	first := e.append(t, recs)
	if first.Versions != 50 || first.Entries != 100 {
		t.Fatalf("first Append: %+v", first)
	}
	again := e.append(t, recs)
	if again.Versions != 0 || again.Entries != 0 || again.Duplicates != 100 || len(again.Conflicts) != 0 {
		t.Errorf("the same Append again: %+v; want 100 duplicates and nothing else", again)
	}
	// A repeat of a hop may see another time, attempts or error: it is the
	// same entry, and the first one recorded stays.
	seen := cloneRecords(recs[:10])
	for i := range seen {
		for j := range seen[i].Entries {
			en := &seen[i].Entries[j]
			en.Time, en.Attempts, en.Error = en.Time.Add(time.Minute), 9, "seen again"
		}
	}
	if res := e.append(t, seen); res.Entries != 0 || res.Duplicates != 20 {
		t.Errorf("the hops seen again: %+v; want 20 duplicates", res)
	}
	// After a failure that stored part of a batch, the retry stores the
	// rest and the log has no hole.
	more := append(recs[25:], many("urn:test:retry2", 10, "t")...)
	if res := e.append(t, more); res.Versions != 10 || res.Entries != 10 || res.Duplicates != 50 {
		t.Errorf("a partly stored batch: %+v; want 10 versions, 10 entries, 50 duplicates", res)
	}
	e.checkLog(t, e.log, 17)
	e.mustCount(t, 60)
	e.checkGet(t, "urn:test:retry", "e-0000003")
}

func testTrailAcrossRoutes(t *testing.T, e *env) {
	const src = "urn:test:trail"
	r := rec(src, "1", "com.example.trail", "", 0)
	e.append(t, []sinks.Record{r, rec(src, "other", "com.example.trail", "", 0)})
	// Each route records its own hops, in Appends of its own; entries of
	// one Append are not in time order.
	e.append(t, []sinks.Record{with(r, hop(sinks.KindDelivered, "orders", "billing", 3*time.Millisecond),
		hop(sinks.KindDelivered, "orders", "ledger", 2*time.Millisecond))})
	e.append(t, []sinks.Record{with(r, hop(sinks.KindFiltered, "audit", "", 4*time.Millisecond))})
	dead := hop(sinks.KindDeadLettered, "orders", "archive", 5*time.Millisecond)
	dead.Error = "archive: 413"
	e.append(t, []sinks.Record{with(r, dead)})
	its := e.get(t, src, "1")
	if len(its) != 1 || len(its[0].Trail) != 5 {
		t.Fatalf("Get: %+v; want one version with five entries", its)
	}
	e.checkGet(t, src, "1")
	one := e.keysOf(src, "1")
	for _, c := range []struct {
		q    sinks.Query
		want []string
	}{
		{sinks.Query{Route: "orders"}, one},
		{sinks.Query{Route: "audit"}, one},
		{sinks.Query{Destination: "ledger"}, one},
		{sinks.Query{Kind: sinks.KindFiltered}, one},
		{sinks.Query{Route: "audit", Kind: sinks.KindFiltered}, one},
		{sinks.Query{Route: "orders", Destination: "archive", Kind: sinks.KindDeadLettered}, one},
		{sinks.Query{ReceivedFrom: base.Add(4 * time.Millisecond)}, one},
		{sinks.Query{ReceivedFrom: base.Add(2 * time.Millisecond), ReceivedTo: base.Add(3 * time.Millisecond), Destination: "ledger"}, one},
		// No single entry matches these, though entries match each part.
		{sinks.Query{Route: "audit", Destination: "billing"}, nil},
		{sinks.Query{Kind: sinks.KindDelivered, Destination: "archive"}, nil},
		{sinks.Query{ReceivedFrom: base.Add(4 * time.Millisecond), Destination: "ledger"}, nil},
		{sinks.Query{ReceivedFrom: base.Add(6 * time.Millisecond)}, nil},
	} {
		if got := e.all(t, c.q); !slices.Equal(got, c.want) {
			t.Errorf("Query(%s): got %v, want %v", describe(c.q), got, c.want)
		}
	}
	e.checkLog(t, e.log, 2)
}

func testTrailAcrossLogs(t *testing.T, e *env) {
	if e.f.OpenLog == nil {
		t.Skip("store has no OpenLog hook")
	}
	const src, other = "urn:test:logs", "sinktest-other"
	r := rec(src, "1", "com.example.logs", "", 0)
	e.append(t, []sinks.Record{r})
	s2 := e.f.OpenLog(t, e.s, other)
	defer s2.Close()
	// The other writer records a hop of its own, and the reception again:
	// the same hop is one entry, whichever log holds it.
	res := e.appendTo(t, s2, other, []sinks.Record{with(r, r.Entries[0], hop(sinks.KindDelivered, "orders", "billing", time.Millisecond))})
	if res.Entries != 1 || res.Duplicates != 1 {
		t.Errorf("Append to the other log: %+v; want one entry, one duplicate", res)
	}
	// Entries of both logs at one instant are ordered by log name.
	e.append(t, []sinks.Record{with(r, hop(sinks.KindFiltered, "audit", "", time.Millisecond))})
	e.appendTo(t, s2, other, []sinks.Record{with(r, hop(sinks.KindDelivered, "orders", "ledger", time.Millisecond/2))})
	e.checkGet(t, src, "1")
	if its, err := s2.Get(e.ctx, src, "1"); err != nil || len(its) != 1 || len(its[0].Trail) != 4 {
		t.Errorf("Get through the other store: %+v, %v", its, err)
	}
	e.checkLog(t, e.log, 10)
	e.checkLog(t, other, 1)
	ls, err := e.s.Logs(e.ctx)
	if err != nil || len(ls) != 2 {
		t.Errorf("Logs: %+v, %v; want two", ls, err)
	}
	e.all(t, sinks.Query{Route: "orders", Destination: "ledger"})
}

func testSeqPagingWhileAppending(t *testing.T, e *env) {
	e.append(t, many("urn:test:seq0", 1, "t"))
	const writers, per = 4, 20
	batches := 25
	if raceEnabled {
		batches = 10
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				recs := many(fmt.Sprintf("urn:test:seq%d-%d", w, b), per, "t")
				for i := range recs {
					recs[i].Entries = append(recs[i].Entries, hop(sinks.KindDelivered, "r", "d", time.Second))
				}
				if _, err := e.s.Append(e.ctx, recs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// Read the log while it grows, in small pages from the last Seq read:
	// every page continues exactly where the last one ended.
	total := uint64(1 + writers*batches*per*2)
	var read []sinks.Entry
	for uint64(len(read)) < total {
		if err := e.ctx.Err(); err != nil {
			t.Fatalf("read %d of %d entries: %v", len(read), total, err)
		}
		select {
		case err := <-errs:
			t.Fatalf("concurrent Append: %v", err)
		default:
		}
		after := uint64(len(read))
		page, err := e.s.Entries(e.ctx, e.log, after, 37)
		if err != nil {
			t.Fatalf("Entries(after %d): %v", after, err)
		}
		for i := range page {
			if page[i].Seq != after+uint64(i)+1 {
				t.Fatalf("Entries(after %d): seqs %v; a hole or a repeat", after, seqs(page))
			}
		}
		read = append(read, page...)
		if len(page) == 0 {
			time.Sleep(time.Millisecond) // polling: the writers are behind
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Append: %v", err)
	}
	seen := map[[16]byte]bool{}
	for i := range read {
		if k := read[i].Key(); seen[k] {
			t.Fatalf("entry %d is there twice: %+v", read[i].Seq, read[i])
		} else {
			seen[k] = true
		}
	}
	if ls, err := e.s.Logs(e.ctx); err != nil || len(ls) != 1 || ls[0].Size != total {
		t.Errorf("Logs: %+v, %v; want one of %d entries", ls, err, total)
	}
}

// testConcurrentOverlap: appends that run at once and carry the same
// versions and some of the same entries (a record written again while
// its first write is still in flight, a receipt and its delivery in two
// batches) store each version once and each entry once, numbered without
// a hole, and their results add up to what was stored.
func testConcurrentOverlap(t *testing.T, e *env) {
	e.append(t, many("urn:test:overlap0", 1, "t"))
	const writers, events, per = 4, 200, 50
	rounds := 3
	if raceEnabled {
		rounds = 2
	}
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		versions, stored int
		conflicts        int
		errs             = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			recs := many("urn:test:overlap", events, "t")
			if w%2 == 1 { // odd writers deliver too
				for i := range recs {
					recs[i].Entries = append(recs[i].Entries, hop(sinks.KindDelivered, "r", "d", time.Second))
				}
			}
			for range rounds {
				for lo := 0; lo < events; lo += per {
					res, err := e.s.Append(e.ctx, cloneRecords(recs[lo:lo+per]))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					versions, stored, conflicts = versions+res.Versions, stored+res.Entries, conflicts+len(res.Conflicts)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Append: %v", err)
	}
	if versions != events || stored != 2*events || conflicts != 0 {
		t.Errorf("Appends stored %d versions, %d entries, %d conflicts; want %d, %d, none", versions, stored, conflicts, events, 2*events)
	}
	got := e.entries(t, e.s, e.log, 97)
	if len(got) != 1+2*events {
		t.Fatalf("log %q holds %d entries, want %d", e.log, len(got), 1+2*events)
	}
	seen := map[[16]byte]bool{}
	for i := range got {
		if got[i].Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d: a hole or a repeat", i+1, got[i].Seq)
		}
		if k := got[i].Key(); seen[k] {
			t.Fatalf("entry %d is there twice: %+v", got[i].Seq, got[i])
		} else {
			seen[k] = true
		}
	}
	for _, id := range []string{"e-0000000", "e-0000123", "e-0000199"} {
		items, err := e.s.Get(e.ctx, "urn:test:overlap", id)
		if err != nil || len(items) != 1 || items[0].Conflict || len(items[0].Trail) != 2 {
			t.Errorf("Get(%s): %d versions, %v; want one, no conflict, received and delivered", id, len(items), err)
		}
	}
}

func testRetention(t *testing.T, e *env) {
	const src = "urn:test:retain"
	day := base.Truncate(24 * time.Hour)
	at := func(id string, eventTime, recorded time.Time) sinks.Record {
		r := rec(src, id, "com.example.retain", "", 0)
		r.Event.SetTime(eventTime)
		r.Entries[0].Time = recorded
		return r
	}
	d3, d2 := day.AddDate(0, 0, -3), day.AddDate(0, 0, -2)
	old1 := at("old1", d3.Add(10*time.Hour), d3.Add(10*time.Hour+time.Second))
	old1.Entries = append(old1.Entries, sinks.Entry{Kind: sinks.KindDelivered, Time: d3.Add(23 * time.Hour), Route: "r", Destination: "d"})
	e.append(t, []sinks.Record{old1})
	e.append(t, []sinks.Record{at("old2", d2.Add(time.Hour), d2.Add(time.Hour))})
	// A producer's backdated time does not make a version old: it was
	// stored today.
	e.append(t, []sinks.Record{at("backdated", day.AddDate(0, 0, -10), day.Add(time.Hour))})
	e.append(t, []sinks.Record{at("recent", day.Add(2*time.Hour), day.Add(2*time.Hour+time.Second))})

	if n, err := e.s.Retain(e.ctx, d3.Add(5*time.Hour)); err != nil || n != 0 {
		t.Errorf("Retain before the oldest day: %d days, %v; want 0", n, err)
	}
	n, err := e.s.Retain(e.ctx, day.Add(5*time.Hour))
	if want := e.m.retain(day.Add(5 * time.Hour)); err != nil || n != want {
		t.Errorf("Retain: %d days, %v; want %d", n, err, want)
	}
	for _, id := range []string{"old1", "old2"} {
		if _, err := e.s.Get(e.ctx, src, id); !errors.Is(err, sinks.ErrNotFound) {
			t.Errorf("Get of %s after retention: %v, want ErrNotFound", id, err)
		}
	}
	for _, id := range []string{"backdated", "recent"} {
		e.checkGet(t, src, id)
	}
	if got, want := e.all(t, sinks.Query{}), e.keysOf(src, "backdated", "recent"); !slices.Equal(got, want) {
		t.Errorf("after retention: %v, want %v", got, want)
	}
	e.mustCount(t, 2)
	// The kept entries keep their positions, and the log goes on.
	e.checkLog(t, e.log, 1)
	e.append(t, []sinks.Record{at("later", day.Add(3*time.Hour), day.Add(3*time.Hour))})
	e.checkLog(t, e.log, 10)
	if n, err := e.s.Retain(e.ctx, day.Add(5*time.Hour)); err != nil || n != 0 {
		t.Errorf("Retain again: %d days, %v; want 0", n, err)
	}
	e.mustCount(t, 3)
}

func testLargeBatch(t *testing.T, e *env) {
	n := 20_000
	if raceEnabled {
		n = 2_000
	}
	recs := many("urn:large", n, "com.example.large")
	for i := range recs {
		at := time.Duration(i) * time.Millisecond
		recs[i].Entries = append(recs[i].Entries, hop(sinks.KindDelivered, "orders", "billing", at+2*time.Millisecond),
			hop(sinks.KindDelivered, "orders", "ledger", at+3*time.Millisecond), hop(sinks.KindFiltered, "audit", "", at+4*time.Millisecond))
	}
	res := e.append(t, recs)
	if res.Versions != n || res.Entries != 4*n {
		t.Fatalf("Append: %+v", res)
	}
	e.mustCount(t, n)
	e.checkGet(t, "urn:large", fmt.Sprintf("e-%07d", n-1))
	e.checkGet(t, "urn:large", fmt.Sprintf("e-%07d", n/2))
	tail, err := e.s.Entries(e.ctx, e.log, uint64(4*n-10), 100)
	if err != nil || !slices.Equal(seqs(tail), upTo(4 * n)[4*n-10:]) {
		t.Errorf("the log's tail: %v, %v", seqs(tail), err)
	}
	if res := e.append(t, recs); res.Duplicates != 4*n {
		t.Errorf("the batch again: %+v", res)
	}
	if ks := e.all(t, sinks.Query{Source: "urn:large", From: base.Add(time.Duration(n-10) * time.Millisecond), Destination: "ledger"}); len(ks) != 10 {
		t.Errorf("the last ten by destination: %v", ks)
	}
}

// Package sinktest is the conformance suite every sinks.Store runs. A store
// is done when TestStore passes against it; Features says what the store
// can do for the suite, and cases it cannot run are skipped with the reason.
//
// The suite checks the ledger contract of package sinks: versions stored
// once and bit-exact, conflicts kept beside each other, entries appended
// once per Key with Seq 1, 2, 3... and no hole, trails, every query filter,
// cursor paging under concurrent appends, counts, retention and
// persistence. It keeps a model of what the store should hold (model.go)
// and compares every answer with it.
//
// Retention: a version belongs to the UTC day of the Time of the first
// entry of the record that first stored it (the store's now when that
// record had no entry), an entry to the day of its Time. Both are set by
// the caller, so the suite writes old days without any hook.
package sinktest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Features says what a store offers the suite.
type Features struct {
	// Reopen closes s and opens the same store again; the persistence case
	// needs it and is skipped without it.
	Reopen func(t *testing.T, s sinks.Store) sinks.Store
	// OpenLog opens a second store on the same storage as s that appends
	// to the log named log; the case on several logs needs it and is
	// skipped without it. The suite closes what it returns.
	OpenLog func(t *testing.T, s sinks.Store, log string) sinks.Store
	// Timeout bounds every case. Default 120s.
	Timeout time.Duration
}

// Constructor returns a new, empty store for one case. The suite closes it.
type Constructor func(t *testing.T) sinks.Store

// TestStore runs the whole suite.
func TestStore(t *testing.T, f Features, newStore Constructor) {
	if f.Timeout <= 0 {
		f.Timeout = 120 * time.Second
	}
	cases := []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"RoundTripBitExact", testRoundTrip},
		{"VersionStoredOnce", testVersionStoredOnce},
		{"ConflictKeepsBoth", testConflict},
		{"EntriesAppendInOrder", testEntriesInOrder},
		{"IdempotentRetry", testIdempotentRetry},
		{"DuplicatesInOneAppend", testDuplicatesInOneAppend},
		{"TrailAcrossRoutes", testTrailAcrossRoutes},
		{"TrailAcrossLogs", testTrailAcrossLogs},
		{"Filters", testFilters},
		{"Redrivable", testRedrivable},
		{"TimeBoundaries", testTimeBoundaries},
		{"OrderAndPaging", testOrderAndPaging},
		{"PagingWhileAppending", testPagingWhileAppending},
		{"SeqPagingWhileAppending", testSeqPagingWhileAppending},
		{"ConcurrentOverlappingAppends", testConcurrentOverlap},
		{"GetByID", testGet},
		{"CountsPerBucket", testCounts},
		{"CountOutcomesPerBucket", testCountOutcomes},
		{"CountsMatchLedger", testCountsMatchLedger},
		{"BadQueries", testBadQueries},
		{"PersistsAcrossReopen", testReopen},
		{"Retention", testRetention},
		{"LargeBatch", testLargeBatch},
		{"UseAfterClose", testUseAfterClose},
		{"TreeHashes", testTreeHashes},
		{"TreeBuild", testTreeBuild},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
			defer cancel()
			e := &env{f: f, ctx: ctx, s: newStore(t), m: newModel()}
			t.Cleanup(func() { _ = e.s.Close() })
			c.run(t, e)
		})
	}
}

// env is one case's store, with the model of what it should hold.
type env struct {
	f   Features
	ctx context.Context
	s   sinks.Store
	m   *model
	// log is the store's log, learnt from Logs after the first Append.
	log string
}

// base is a fixed instant so expected bucket and window arithmetic is exact.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ev builds an event with a JSON payload at base+offset.
func ev(source, id, typ, subject string, offset time.Duration) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType(typ)
	if subject != "" {
		e.SetSubject(subject)
	}
	e.SetTime(base.Add(offset))
	e.SetDataContentType(event.ApplicationJSON)
	e.DataEncoded = []byte(`{"id":"` + id + `"}`)
	return e
}

// received is the entry of a version taken from topic "audit" of the mem
// transport at position offset, recorded at base+at.
func received(offset int64, at time.Duration) sinks.Entry {
	return sinks.Entry{Kind: sinks.KindReceived, Time: base.Add(at), Transport: "mem", Topic: "audit",
		Partition: 1, Offset: offset, Principal: "mem:audit"}
}

// hop is an entry of kind on route and destination, recorded at base+at.
func hop(kind, route, dest string, at time.Duration) sinks.Entry {
	return sinks.Entry{Kind: kind, Time: base.Add(at), Route: route, Destination: dest, Attempts: 1}
}

// rec builds a record of a new event at base+offset with its received
// entry a millisecond later.
func rec(source, id, typ, subject string, offset time.Duration) sinks.Record {
	return sinks.Record{Event: ev(source, id, typ, subject, offset),
		Entries: []sinks.Entry{received(int64(offset), offset+time.Millisecond)}}
}

// with returns a copy of r, its event its own and its digest unset (so
// that changes to the event count), carrying entries instead of r's.
func with(r sinks.Record, entries ...sinks.Entry) sinks.Record {
	r.Event = r.Event.Clone()
	r.Digest = sinks.Digest{}
	r.Entries = entries
	return r
}

// many builds n records from one source, one per millisecond from base.
func many(source string, n int, typ string) []sinks.Record {
	recs := make([]sinks.Record, n)
	for i := range recs {
		recs[i] = rec(source, fmt.Sprintf("e-%07d", i), typ, "", time.Duration(i)*time.Millisecond)
	}
	return recs
}

// append appends recs to the store and the model, and fails unless the
// store reports what the model expects.
func (e *env) append(t *testing.T, recs []sinks.Record) sinks.AppendResult {
	t.Helper()
	return e.appendTo(t, e.s, "", recs)
}

// appendTo appends recs through s, which writes log ("" for the case's
// own store, whose log is learnt after its first Append).
func (e *env) appendTo(t *testing.T, s sinks.Store, log string, recs []sinks.Record) sinks.AppendResult {
	t.Helper()
	// The model reads a copy: a store may fill in what Append computes
	// (digests, the entries' version) in the records it is given, as the
	// Writer's retries hand the same records over again.
	cp := cloneRecords(recs)
	got, err := s.Append(e.ctx, recs)
	if err != nil {
		t.Fatalf("Append(%d records): %v", len(recs), err)
	}
	if log == "" {
		log = e.ownLog(t)
	}
	sameResult(t, e.m.add(log, cp), got)
	return got
}

// cloneRecords copies recs deeply enough that changes to the copies'
// events and entries leave recs alone.
func cloneRecords(recs []sinks.Record) []sinks.Record {
	cp := make([]sinks.Record, len(recs))
	for i, r := range recs {
		r.Event = r.Event.Clone()
		r.Entries = slices.Clone(r.Entries)
		cp[i] = r
	}
	return cp
}

// ownLog is the log the case's store appends to: the only one it holds
// before any other log is written.
func (e *env) ownLog(t *testing.T) string {
	t.Helper()
	if e.log != "" {
		return e.log
	}
	ls, err := e.s.Logs(e.ctx)
	if err != nil || len(ls) != 1 {
		t.Fatalf("Logs after the first Append: %+v, %v; want one log", ls, err)
	}
	e.log = ls[0].Name
	if err := sinks.ValidLogName(e.log); err != nil {
		t.Fatalf("the store's log: %v", err)
	}
	return e.log
}

// total sums every count in a window wide enough for every version.
func (e *env) total(t *testing.T) int64 {
	t.Helper()
	cs, err := e.s.Counts(e.ctx, sinks.CountQuery{From: base.Add(-400 * 24 * time.Hour), To: base.Add(400 * 24 * time.Hour), Bucket: 800 * 24 * time.Hour})
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	var n int64
	for _, c := range cs {
		n += c.N
	}
	return n
}

// get returns every version of source and id, failing the test on an
// error.
func (e *env) get(t *testing.T, source, id string) []sinks.Item {
	t.Helper()
	its, err := e.s.Get(e.ctx, source, id)
	if err != nil {
		t.Fatalf("Get(%q, %q): %v", source, id, err)
	}
	return its
}

// checkGet fails unless Get of source and id returns what the model holds.
func (e *env) checkGet(t *testing.T, source, id string) {
	t.Helper()
	want := e.m.get(source, id)
	got := e.get(t, source, id)
	if len(got) != len(want) {
		t.Fatalf("Get(%q, %q): %d versions, want %d", source, id, len(got), len(want))
	}
	for i := range want {
		e.sameItem(t, &want[i], &got[i], false)
	}
}

// entries reads the whole of log in pages of limit.
func (e *env) entries(t *testing.T, s sinks.Store, log string, limit int) []sinks.Entry {
	t.Helper()
	var all []sinks.Entry
	var after uint64
	for {
		page, err := s.Entries(e.ctx, log, after, limit)
		if err != nil {
			t.Fatalf("Entries(%q, %d, %d): %v", log, after, limit, err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
}

// checkLog fails unless log holds exactly the model's entries of it, in
// Seq order, read in pages of limit, and Logs gives its size.
func (e *env) checkLog(t *testing.T, log string, limit int) {
	t.Helper()
	want := e.m.log(log)
	got := e.entries(t, e.s, log, limit)
	if len(got) != len(want) {
		t.Fatalf("log %q: %d entries, want %d", log, len(got), len(want))
	}
	for i := range want {
		sameEntry(t, fmt.Sprintf("log %q entry %d", log, i), &want[i], &got[i])
	}
	ls, err := e.s.Logs(e.ctx)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	i := slices.IndexFunc(ls, func(l sinks.LogInfo) bool { return l.Name == log })
	if i < 0 || ls[i].Size != e.m.size(log) {
		t.Errorf("Logs: %+v; want %q of size %d", ls, log, e.m.size(log))
	}
	if !slices.IsSortedFunc(ls, func(a, b sinks.LogInfo) int { return cmp.Compare(a.Name, b.Name) }) {
		t.Errorf("Logs not ordered by name: %+v", ls)
	}
}

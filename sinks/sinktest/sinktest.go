// Package sinktest is the conformance suite every sinks.Store runs. A store
// is done when TestStore passes against it; Features says what the store
// can do for the suite, and cases it cannot run are skipped with the reason.
package sinktest

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

// Features says what a store offers the suite.
type Features struct {
	// Reopen closes s and opens the same store again; the persistence case
	// needs it and is skipped without it.
	Reopen func(t *testing.T, s sinks.Store) sinks.Store
	// Timeout bounds every case. Default 60s.
	Timeout time.Duration
}

// Constructor returns a new, empty store for one case. The suite closes it.
type Constructor func(t *testing.T) sinks.Store

// TestStore runs the whole suite.
func TestStore(t *testing.T, f Features, newStore Constructor) {
	if f.Timeout <= 0 {
		f.Timeout = 60 * time.Second
	}
	cases := []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"RoundTripBitExact", testRoundTrip},
		{"DuplicateStoredOnce", testDuplicates},
		{"LaterReceivedSupersedes", testSupersede},
		{"LaterRecordMoves", testLaterRecordMoves},
		{"ManyAtOneInstant", testManyAtOneInstant},
		{"DuplicatesInOneAppend", testDuplicatesInOneAppend},
		{"ReplayBesideOriginal", testReplay},
		{"Filters", testFilters},
		{"TimeBoundaries", testTimeBoundaries},
		{"OrderAndPaging", testOrderAndPaging},
		{"PagingOverReplays", testPagingOverReplays},
		{"PagingWhileAppending", testPagingWhileAppending},
		{"GetByID", testGet},
		{"CountsPerBucket", testCounts},
		{"BadQueries", testBadQueries},
		{"PersistsAcrossReopen", testReopen},
		{"LargeBatch", testLargeBatch},
		{"UseAfterClose", testUseAfterClose},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
			defer cancel()
			e := &env{f: f, ctx: ctx, s: newStore(t)}
			t.Cleanup(func() { _ = e.s.Close() })
			c.run(t, e)
		})
	}
}

type env struct {
	f   Features
	ctx context.Context
	s   sinks.Store
}

// base is a fixed instant so expected bucket and window arithmetic is exact.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rec builds a record with a JSON payload at base+offset.
func rec(source, id, typ, subject string, offset time.Duration) sinks.Record {
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
	return sinks.Record{
		Event: e, Transport: "mem", Topic: "audit", Partition: 1,
		Offset: int64(offset), Route: "r", Received: base.Add(offset + time.Millisecond),
	}
}

// many builds n records from one source, one per millisecond from base.
func many(source string, n int, typ string) []sinks.Record {
	recs := make([]sinks.Record, n)
	for i := range recs {
		recs[i] = rec(source, fmt.Sprintf("e-%07d", i), typ, "", time.Duration(i)*time.Millisecond)
	}
	return recs
}

func (e *env) append(t *testing.T, recs []sinks.Record) {
	t.Helper()
	if err := e.s.Append(e.ctx, recs); err != nil {
		t.Fatalf("Append(%d records): %v", len(recs), err)
	}
}

// all pages through q and returns every record's key. For a store that is
// a sinks.OriginalsCounter it also checks CountOriginals against the
// originals paged, and for a sinks.Scanner, Scan against the records
// paged, in pages of q's size and of two records.
func (e *env) all(t *testing.T, q sinks.Query) []string {
	t.Helper()
	keys := e.pageAll(t, q)
	if sc, ok := e.s.(sinks.Scanner); ok && !q.Desc && q.Cursor == "" {
		var paged, pagedEvents, cursors []string
		e.page(t, q, func(r *sinks.Record) {
			paged, pagedEvents = append(paged, fingerprint(r, false)), append(pagedEvents, fingerprint(r, true))
			cursors = append(cursors, sinks.CursorAfter(r, false))
		})
		// From the start, and from after the first and the middle record
		// (where a replay resumes from its checkpoint).
		from := map[int]bool{-1: true}
		if len(paged) > 1 {
			from[0], from[len(paged)/2] = true, true
		}
		for after := range from {
			for _, limit := range []int{q.Limit, 2} {
				for _, o := range []sinks.ScanOptions{{}, {EventsOnly: true}} {
					sq := q
					sq.Limit = limit
					want := paged
					if o.EventsOnly {
						want = pagedEvents
					}
					if after >= 0 {
						sq.Cursor, want = cursors[after], want[after+1:]
					}
					e.scanMatches(t, sc, sq, o, want)
				}
			}
		}
	}
	c, ok := e.s.(sinks.OriginalsCounter)
	if !ok {
		return keys
	}
	originals := 0
	for _, k := range keys {
		if !strings.Contains(k, "@") {
			originals++
		}
	}
	n, err := c.CountOriginals(e.ctx, q)
	if err != nil || n != int64(originals) {
		t.Errorf("CountOriginals(%+v) = %d, %v; paging found %d originals", q, n, err, originals)
	}
	return keys
}

// scanMatches fails unless sc's Scan of q hands over want, as
// fingerprints.
func (e *env) scanMatches(t *testing.T, sc sinks.Scanner, q sinks.Query, o sinks.ScanOptions, want []string) {
	t.Helper()
	var scanned []string
	err := sc.Scan(e.ctx, q, o, func(recs []sinks.Record) error {
		for i := range recs {
			scanned = append(scanned, fingerprint(&recs[i], o.EventsOnly))
		}
		return nil
	})
	if err != nil || !slices.Equal(scanned, want) {
		t.Errorf("Scan(%+v, %+v): %v\n%q\npaging found\n%q", q, o, err, scanned, want)
	}
}

// pageAll pages through q and returns every record's key.
func (e *env) pageAll(t *testing.T, q sinks.Query) []string {
	t.Helper()
	var keys []string
	e.page(t, q, func(r *sinks.Record) { keys = append(keys, key(r)) })
	return keys
}

// page pages through q and hands every record to use.
func (e *env) page(t *testing.T, q sinks.Query, use func(*sinks.Record)) {
	t.Helper()
	for pages := 0; ; pages++ {
		if pages > 1_000_000 {
			t.Fatal("paging does not end")
		}
		p, err := e.s.Query(e.ctx, q)
		if err != nil {
			t.Fatalf("Query(%+v): %v", q, err)
		}
		for i := range p.Records {
			use(&p.Records[i])
		}
		if p.Next == "" {
			return
		}
		q.Cursor = p.Next
	}
}

// fingerprint is a record's key with the fields that tell which of an
// identity's records it is, and its payload; with events, only those a
// scan for the events keeps.
func fingerprint(r *sinks.Record, events bool) string {
	f := fmt.Sprintf("%s %s %d %q", key(r), r.Event.Subject(), r.Received.UnixNano(), r.Event.Data())
	if events {
		return f
	}
	return fmt.Sprintf("%s %s %s %s %d %d", f, r.Outcome, r.Route, r.Topic, r.Partition, r.Offset)
}

// key is "source/id", with "@replay" after it for a replayed copy.
func key(r *sinks.Record) string {
	k := r.Event.Source() + "/" + r.Event.ID()
	if r.Replay != "" {
		k += "@" + r.Replay
	}
	return k
}

// keys returns the keys of recs in order.
func keys(recs []sinks.Record) []string {
	ks := make([]string, len(recs))
	for i := range recs {
		ks[i] = key(&recs[i])
	}
	return ks
}

// sortRecords orders recs by the query sort key (time, source, id, replay),
// ascending.
func sortRecords(recs []sinks.Record) {
	slices.SortFunc(recs, func(a, b sinks.Record) int {
		if c := a.Time().Compare(b.Time()); c != 0 {
			return c
		}
		if c := strings.Compare(a.Event.Source(), b.Event.Source()); c != 0 {
			return c
		}
		if c := strings.Compare(a.Event.ID(), b.Event.ID()); c != 0 {
			return c
		}
		return strings.Compare(a.Replay, b.Replay)
	})
}

// variant copies r with its own event, so changes to the copy leave r
// alone, and receives it d later with the given outcome.
func variant(r sinks.Record, d time.Duration, outcome string) sinks.Record {
	r.Event = r.Event.Clone()
	r.Received = r.Received.Add(d)
	r.Outcome = outcome
	return r
}

// get fetches the original record of source and id, failing the test if
// it is missing.
func (e *env) get(t *testing.T, source, id string) sinks.Record {
	t.Helper()
	r, err := e.s.Get(e.ctx, source, id)
	if err != nil {
		t.Fatalf("Get(%q, %q): %v", source, id, err)
	}
	return r
}

// total sums every count in a window wide enough for every record.
func (e *env) total(t *testing.T) int64 {
	t.Helper()
	cs, err := e.s.Counts(e.ctx, sinks.CountQuery{From: base.Add(-24 * time.Hour), To: base.Add(24 * time.Hour), Bucket: 48 * time.Hour})
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	var n int64
	for _, c := range cs {
		n += c.N
	}
	return n
}

package sinktest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/auditbus/auditbus/sinks"
)

// all pages through q, checks every item against the model (and q's
// NoTrail), and returns the items' keys. For a store that is a
// sinks.VersionCounter it also checks CountVersions against the items
// paged, and for a sinks.Scanner, Scan against the items paged: from the
// start and from after the first and the middle item (where a replay
// resumes), in pages of q's size and of two items, with both ScanOptions.
func (e *env) all(t *testing.T, q sinks.Query) []string {
	t.Helper()
	want := e.m.query(q)
	got := e.pageAll(t, q)
	if !slices.Equal(itemKeys(got), itemKeys(want)) {
		t.Errorf("Query(%+v):\n got %v\nwant %v", q, itemKeys(got), itemKeys(want))
	} else {
		for i := range want {
			if q.NoTrail && len(got[i].Trail) > 0 {
				t.Errorf("Query(%+v): %s has a trail", q, itemKey(&got[i]))
			}
			e.sameItem(t, &want[i], &got[i], q.NoTrail)
		}
	}
	if c, ok := e.s.(sinks.VersionCounter); ok {
		n, err := c.CountVersions(e.ctx, q)
		if err != nil || n != int64(len(want)) {
			t.Errorf("CountVersions(%+v) = %d, %v; want %d", q, n, err, len(want))
		}
	}
	if sc, ok := e.s.(sinks.Scanner); ok && !q.Desc && q.Cursor == "" {
		e.scanLikePaging(t, sc, q, got)
	}
	return itemKeys(got)
}

// scanLikePaging fails unless sc's Scan of q hands over the items that
// paging found.
func (e *env) scanLikePaging(t *testing.T, sc sinks.Scanner, q sinks.Query, paged []sinks.Item) {
	t.Helper()
	var full, events, cursors []string
	for i := range paged {
		full = append(full, fingerprint(&paged[i], q.NoTrail))
		events = append(events, fingerprint(&paged[i], true))
		cursors = append(cursors, sinks.CursorAfter(&paged[i], false))
	}
	from := map[int]bool{-1: true}
	if len(paged) > 1 {
		from[0], from[len(paged)/2] = true, true
	}
	for after := range from {
		for _, limit := range []int{q.Limit, 2} {
			for _, o := range []sinks.ScanOptions{{}, {EventsOnly: true}} {
				sq := q
				sq.Limit = limit
				want := full
				if o.EventsOnly {
					want = events
				}
				if after >= 0 {
					sq.Cursor, want = cursors[after], want[after+1:]
				}
				e.scanMatches(t, sc, sq, o, want)
			}
		}
	}
}

// scanMatches fails unless sc's Scan of q hands over want, as
// fingerprints.
func (e *env) scanMatches(t *testing.T, sc sinks.Scanner, q sinks.Query, o sinks.ScanOptions, want []string) {
	t.Helper()
	var scanned []string
	err := sc.Scan(e.ctx, q, o, func(items []sinks.Item) error {
		for i := range items {
			scanned = append(scanned, fingerprint(&items[i], o.EventsOnly || q.NoTrail))
		}
		return nil
	})
	if err != nil || !slices.Equal(scanned, want) {
		t.Errorf("Scan(%+v, %+v): %v\n%q\npaging found\n%q", q, o, err, scanned, want)
	}
}

// pageAll pages through q and returns every item.
func (e *env) pageAll(t *testing.T, q sinks.Query) []sinks.Item {
	t.Helper()
	var items []sinks.Item
	e.page(t, q, func(it *sinks.Item) { items = append(items, *it) })
	return items
}

// page pages through q and hands every item to use.
func (e *env) page(t *testing.T, q sinks.Query, use func(*sinks.Item)) {
	t.Helper()
	for pages := 0; ; pages++ {
		if pages > 1_000_000 {
			t.Fatal("paging does not end")
		}
		p, err := e.s.Query(e.ctx, q)
		if err != nil {
			t.Fatalf("Query(%+v): %v", q, err)
		}
		if len(p.Items) > q.PageSize() {
			t.Fatalf("Query(%+v): %d items, more than the limit", q, len(p.Items))
		}
		for i := range p.Items {
			use(&p.Items[i])
		}
		if p.Next == "" {
			return
		}
		q.Cursor = p.Next
	}
}

// keysOf is the keys of the model's items of source and the given ids,
// in the order given.
func (e *env) keysOf(source string, ids ...string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, itemKeys(e.m.get(source, id))...)
	}
	return out
}

// mustCount fails unless the store holds n versions.
func (e *env) mustCount(t *testing.T, n int) {
	t.Helper()
	if got := e.total(t); got != int64(n) {
		t.Fatalf("stored %d versions, want %d", got, n)
	}
}

// seqs returns the Seq of each entry.
func seqs(es []sinks.Entry) []uint64 {
	out := make([]uint64, len(es))
	for i := range es {
		out[i] = es[i].Seq
	}
	return out
}

// upTo returns 1..n.
func upTo(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// describe names a query in failure messages.
func describe(q sinks.Query) string { return fmt.Sprintf("%+v", q) }

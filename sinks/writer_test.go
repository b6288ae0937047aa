package sinks_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// memStore is a Store kept in a map, with a switch that makes Append fail
// and a gate that holds Append, to drive the writer's retry and bound. It
// keeps one version per (source, id) and counts entries by Key.
type memStore struct {
	mu      sync.Mutex
	recs    map[string]sinks.Record
	keys    map[[16]byte]bool
	fail    bool
	appends int
	gate    chan struct{} // when non-nil, Append waits for a value
	waiting int           // Appends waiting at the gate
	sizes   []int         // records per Append, in the order they passed the gate
}

func newMemStore() *memStore {
	return &memStore{recs: map[string]sinks.Record{}, keys: map[[16]byte]bool{}}
}

func (m *memStore) String() string { return "mem store" }

func (m *memStore) Append(ctx context.Context, recs []sinks.Record) (sinks.AppendResult, error) {
	m.mu.Lock()
	gate := m.gate
	if gate != nil {
		m.waiting++
	}
	m.mu.Unlock()
	if gate != nil {
		<-gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if gate != nil {
		m.waiting--
	}
	m.appends++
	m.sizes = append(m.sizes, len(recs))
	if m.fail {
		return sinks.AppendResult{}, errors.New("disk on fire")
	}
	var res sinks.AppendResult
	for _, r := range recs {
		if err := r.Prepare(); err != nil {
			return sinks.AppendResult{}, err
		}
		k := r.Event.Source() + "/" + r.Event.ID()
		if _, ok := m.recs[k]; !ok {
			m.recs[k] = r
			res.Versions++
		}
		for i := range r.Entries {
			if key := r.Entries[i].Key(); m.keys[key] {
				res.Duplicates++
			} else {
				m.keys[key] = true
				res.Entries++
			}
		}
	}
	return res, nil
}

func (m *memStore) Query(context.Context, sinks.Query) (sinks.Page, error) { return sinks.Page{}, nil }
func (m *memStore) Get(context.Context, string, string) ([]sinks.Item, error) {
	return nil, sinks.ErrNotFound
}
func (m *memStore) Counts(context.Context, sinks.CountQuery) ([]sinks.Count, error) { return nil, nil }
func (m *memStore) Logs(context.Context) ([]sinks.LogInfo, error)                   { return nil, nil }
func (m *memStore) Entries(context.Context, string, uint64, int) ([]sinks.Entry, error) {
	return nil, sinks.ErrNoLog
}
func (m *memStore) Retain(context.Context, time.Time) (int, error) { return 0, nil }
func (m *memStore) Close() error                                   { return nil }

func (m *memStore) waitingNow() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.waiting
}

func (m *memStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}

func records(prefix string, n int) []sinks.Record {
	recs := make([]sinks.Record, n)
	for i := range recs {
		e := event.New()
		e.SetID(fmt.Sprintf("%s-%d", prefix, i))
		e.SetSource("urn:w")
		e.SetType("t")
		recs[i] = sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Transport: "mem", Offset: int64(i)}}}
	}
	return recs
}

func TestWriterDurableOnReturn(t *testing.T) {
	m := newMemStore()
	w := sinks.NewWriter(m, sinks.WriterOptions{MaxBatch: 64})
	defer w.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				recs := records(fmt.Sprintf("g%d-%d", g, i), 37)
				if err := w.Write(context.Background(), recs); err != nil {
					t.Error(err)
					return
				}
				// Durable on return: every record is already in the store.
				m.mu.Lock()
				for _, r := range recs {
					if _, ok := m.recs["urn:w/"+r.Event.ID()]; !ok {
						t.Errorf("%s not stored when Write returned", r.Event.ID())
					}
				}
				m.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if n := m.len(); n != 8*20*37 {
		t.Fatalf("stored %d", n)
	}
}

func TestWriterRetriesThenFailsNamingStore(t *testing.T) {
	m := newMemStore()
	m.fail = true
	w := sinks.NewWriter(m, sinks.WriterOptions{Retries: 2, Backoff: time.Millisecond})
	defer w.Close()
	err := w.Write(context.Background(), records("x", 3))
	if !errors.Is(err, sinks.ErrUnavailable) || !strings.Contains(err.Error(), "mem store") || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("got %v", err)
	}
	if m.appends != 3 {
		t.Errorf("%d attempts, want 3", m.appends)
	}
	// A store that recovers mid-retry loses nothing.
	m.mu.Lock()
	m.fail = false
	m.mu.Unlock()
	if err := w.Write(context.Background(), records("y", 3)); err != nil {
		t.Fatal(err)
	}
}

func TestWriterRetriesZeroIsDefaultNegativeIsNone(t *testing.T) {
	for _, c := range []struct {
		retries, attempts int
	}{{-1, 1}, {0, 6}, {1, 2}} {
		m := newMemStore()
		m.fail = true
		w := sinks.NewWriter(m, sinks.WriterOptions{Retries: c.retries, Backoff: time.Millisecond, MaxBackoff: time.Millisecond})
		err := w.Write(context.Background(), records("x", 1))
		_ = w.Close()
		if !errors.Is(err, sinks.ErrUnavailable) || !strings.Contains(err.Error(), fmt.Sprintf("after %d attempts", c.attempts)) {
			t.Errorf("Retries %d: %v, want ErrUnavailable after %d attempts", c.retries, err, c.attempts)
		}
		m.mu.Lock()
		if m.appends != c.attempts {
			t.Errorf("Retries %d: %d Append calls, want %d", c.retries, m.appends, c.attempts)
		}
		m.mu.Unlock()
	}
}

func TestWriterBlocksWhenFull(t *testing.T) {
	m := newMemStore()
	gate := make(chan struct{})
	m.gate = gate
	w := sinks.NewWriter(m, sinks.WriterOptions{MaxBatch: 10, MaxQueued: 20, MaxAge: time.Microsecond})
	var held sync.WaitGroup
	for i := range 4 {
		held.Go(func() {
			if err := w.Write(context.Background(), records(fmt.Sprint("b", i), 10)); err != nil {
				t.Error(err)
			}
		})
	}
	// With the store stuck, only MaxQueued records may be taken: a fifth
	// writer with a deadline must give up instead of queueing more.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Write(ctx, records("late", 30)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write on a full writer: %v", err)
	}
	m.mu.Lock()
	m.gate = nil
	m.mu.Unlock()
	close(gate)
	held.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.len(); n < 40 {
		t.Fatalf("stored %d of the 40 records written", n)
	}
	if err := w.Write(context.Background(), records("after", 1)); !errors.Is(err, sinks.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
}

type countMetrics struct {
	mu          sync.Mutex
	rows, fails int
	maxQueued   int
	appended    sinks.AppendResult
}

func (c *countMetrics) Appended(r sinks.AppendResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.appended.Add(r)
}

func (c *countMetrics) Flushed(rows int, _ time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.fails++
		return
	}
	c.rows += rows
}

func (c *countMetrics) Queued(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxQueued = max(c.maxQueued, n)
}

func TestWriterMetrics(t *testing.T) {
	m := newMemStore()
	cm := &countMetrics{}
	w := sinks.NewWriter(m, sinks.WriterOptions{MaxBatch: 100, Metrics: cm})
	if err := w.Write(context.Background(), records("m", 250)); err != nil {
		t.Fatal(err)
	}
	// The same hops again: duplicates, no new version.
	if err := w.Write(context.Background(), records("m", 50)); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if cm.rows != 300 || cm.fails != 0 || cm.maxQueued == 0 || cm.maxQueued > 400 {
		t.Errorf("metrics: %+v", cm)
	}
	if a := cm.appended; a.Versions != 250 || a.Entries != 250 || a.Duplicates != 50 || len(a.Conflicts) != 0 {
		t.Errorf("Appended reported %+v; want 250 versions, 250 entries, 50 duplicates", a)
	}
}

// TestWriterFlushesFullBatchesAtOnce: two full batches are appended side by
// side by the two default flushers, while a batch that is due for its age
// waits until no other flush runs.
func TestWriterFlushesFullBatchesAtOnce(t *testing.T) {
	m := newMemStore()
	gate := make(chan struct{})
	m.gate = gate
	w := sinks.NewWriter(m, sinks.WriterOptions{MaxBatch: 10, MaxAge: time.Microsecond})
	var writers sync.WaitGroup
	write := func(name string, n int) {
		writers.Go(func() {
			if err := w.Write(context.Background(), records(name, n)); err != nil {
				t.Error(err)
			}
		})
	}
	// until polls count (under m.mu) until it says want.
	until := func(what string, count func() int, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			m.mu.Lock()
			n := count()
			m.mu.Unlock()
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d Appends %s, want %d", n, what, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waiting := func(want int) { t.Helper(); until("at the gate", func() int { return m.waiting }, want) }
	passed := func(want int) { t.Helper(); until("past the gate", func() int { return len(m.sizes) }, want) }
	write("full", 20) // two full batches, side by side
	waiting(2)
	write("small", 3) // aged at once, but flushes run
	time.Sleep(20 * time.Millisecond)
	waiting(2)
	gate <- struct{}{}
	passed(1)
	time.Sleep(20 * time.Millisecond)
	waiting(1) // the other full batch still runs, so the small one waits
	gate <- struct{}{}
	passed(2)
	waiting(1) // no flush runs: the small one goes
	close(gate)
	writers.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Equal(m.sizes, []int{10, 10, 3}) {
		t.Errorf("Append sizes %v, want two batches of 10, then one of 3", m.sizes)
	}
}

// TestWriterTailJoinsAgedBatch: a batch that came due while a flush ran
// waits, once the flush ends, for the records of the callers that flush
// released, so a burst's last records do not make an append of their own.
func TestWriterTailJoinsAgedBatch(t *testing.T) {
	m := newMemStore()
	gate := make(chan struct{})
	m.gate = gate
	const maxAge = time.Second // a quiet period of 50ms, at most 200ms
	w := sinks.NewWriter(m, sinks.WriterOptions{MaxBatch: 10, MaxAge: maxAge, Flushers: 1})
	var writers sync.WaitGroup
	writers.Go(func() { // a caller that writes again as soon as its first write is durable
		if err := w.Write(context.Background(), records("first", 10)); err != nil {
			t.Error(err)
			return
		}
		if err := w.Write(context.Background(), records("again", 5)); err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for m.waitingNow() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first batch never reached the store")
		}
		time.Sleep(time.Millisecond)
	}
	writers.Go(func() {
		if err := w.Write(context.Background(), records("other", 5)); err != nil {
			t.Error(err)
		}
	})
	time.Sleep(maxAge + 50*time.Millisecond) // the other caller's batch is due
	close(gate)
	writers.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Equal(m.sizes, []int{10, 10}) {
		t.Errorf("Append sizes %v, want two of 10: the released caller's 5 join the due batch", m.sizes)
	}
}

// TestWriterHoldsAtMostMaxQueued: with the store stuck, the writer takes
// no more than MaxQueued records from its callers, whatever they write:
// the callers that found it full give up on their context without having
// handed anything over, so once the store recovers only MaxQueued records
// reach it.
func TestWriterHoldsAtMostMaxQueued(t *testing.T) {
	const maxQueued, writers, each = 20, 10, 10
	m := newMemStore()
	gate := make(chan struct{})
	m.gate = gate
	cm := &countMetrics{}
	w := sinks.NewWriter(m, sinks.WriterOptions{MaxBatch: 10, MaxQueued: maxQueued, MaxAge: time.Microsecond, Metrics: cm})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { _ = w.Write(ctx, records(fmt.Sprint("q", i), each)) })
	}
	queued := func() int { cm.mu.Lock(); defer cm.mu.Unlock(); return cm.maxQueued }
	for deadline := time.Now().Add(10 * time.Second); queued() < maxQueued; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the writer took %d records, want it to fill up to %d", queued(), maxQueued)
		}
	}
	// Give writers that would wrongly be let in the time to be let in.
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end) && queued() <= maxQueued; {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	m.mu.Lock()
	m.gate = nil
	m.mu.Unlock()
	close(gate)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if q := queued(); q > maxQueued {
		t.Errorf("the writer held %d records at once; MaxQueued is %d", q, maxQueued)
	}
	if n := m.len(); n > maxQueued {
		t.Errorf("%d of the %d records written reached the store; while it was stuck the writer may take only MaxQueued = %d", n, writers*each, maxQueued)
	}
}

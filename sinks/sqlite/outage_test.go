package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
)

// waitFor polls cond until it holds, failing the test at the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOutageLosesNothingReportedDurable makes the database unwritable for
// the store while writers flow (another connection holds SQLite's exclusive
// lock, which is what a stuck or foreign writer looks like), releases it,
// and checks that every record a Write reported durable is in the file
// after reopening it.
func TestOutageLosesNothingReportedDurable(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlite.Open(context.Background(), dir, sqlite.Options{BusyTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := sinks.NewWriter(s, sinks.WriterOptions{MaxBatch: 200, Retries: 2, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})

	var (
		mu      sync.Mutex
		durable []string
		failed  atomic.Int64
		errText atomic.Value
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	for g := range 4 {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				recs := make([]sinks.Record, 50)
				ids := make([]string, len(recs))
				for i := range recs {
					e := event.New()
					ids[i] = fmt.Sprintf("g%d-%d-%d", g, n, i)
					e.SetID(ids[i])
					e.SetSource("urn:outage")
					e.SetType("com.example.outage")
					e.SetTime(time.Now())
					recs[i] = sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Transport: "mem", Topic: "outage"}}}
				}
				if err := w.Write(context.Background(), recs); err != nil {
					failed.Add(1)
					errText.Store(err.Error())
					if !errors.Is(err, sinks.ErrUnavailable) {
						t.Errorf("Write: %v, want ErrUnavailable", err)
					}
					continue
				}
				mu.Lock()
				durable = append(durable, ids...)
				mu.Unlock()
			}
		})
	}
	acked := func() int { mu.Lock(); defer mu.Unlock(); return len(durable) }
	waitFor(t, "writes before the outage", func() bool { return acked() >= 2000 })

	locker, err := sql.Open("sqlite", "file:"+s.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	conn, err := locker.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// SQLite can answer BUSY at once, without waiting out busy_timeout (for
	// example while the store checkpoints its WAL), so keep asking.
	waitFor(t, "the exclusive lock", func() bool {
		_, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE")
		return err == nil
	})
	waitFor(t, "writes failing during the outage", func() bool { return failed.Load() >= 2 })
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	before := acked()
	waitFor(t, "writes after the outage", func() bool { return acked() >= before+2000 })
	stop.Store(true)
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if msg, _ := errText.Load().(string); !strings.Contains(msg, s.String()) {
		t.Errorf("failed Write does not name the store %q: %s", s.String(), msg)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, dir)
	defer s2.Close()
	stored := map[string]bool{}
	q := sinks.Query{Source: "urn:outage", Limit: sinks.MaxLimit}
	for {
		p, err := s2.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for i := range p.Items {
			if len(p.Items[i].Trail) != 1 {
				t.Fatalf("%s: trail of %d entries, want its reception", p.Items[i].Event.ID(), len(p.Items[i].Trail))
			}
			stored[p.Items[i].Event.ID()] = true
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range durable {
		if !stored[id] {
			t.Fatalf("%s was reported durable but is missing after the outage", id)
		}
	}
	t.Logf("%d records reported durable, all present; %d writes failed during the outage; %d stored", len(durable), failed.Load(), len(stored))
}

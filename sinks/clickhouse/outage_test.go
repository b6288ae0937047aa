package clickhouse_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/auditbus/auditbus/deploy/testservices"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
	"github.com/cloudevents/sdk-go/v2/event"
)

// waitFor polls cond until it holds, failing the test at the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serverPID finds the local clickhouse-server: the pid file
// deploy/test-services.sh starts it with, else a scan of /proc.
func serverPID() (int, error) {
	isServer := func(pid int) bool {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return err == nil && strings.HasPrefix(string(comm), "clickhouse-serv")
	}
	if b, err := os.ReadFile("/tmp/clickhouse-server.pid"); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && isServer(pid) {
			return pid, nil
		}
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil && isServer(pid) {
			return pid, nil
		}
	}
	return 0, errors.New("no clickhouse-server process found")
}

// TestOutageLosesNothingReportedDurable stops the ClickHouse server process
// (SIGSTOP) while writers flow through a sinks.Writer, until their writes
// fail, resumes it (SIGCONT), and checks that every record a Write reported
// durable is in the store afterwards, and that the log has neither a hole
// nor an entry twice: appends cut off by the outage may have landed
// although they failed, and their retries must find what did.
//
// It pauses the shared server: its state and files are untouched, no
// start-up has to be awaited or can fail and leave the server down for
// other tests, and the cleanup resumes it even if the test fails. To its
// clients a stopped server looks like a hung one: connections and queries
// hang until the store's Timeout fails them. TestRestartLosesNothingReportedDurable
// is the same test with a real stop and restart, on a private server.
func TestOutageLosesNothingReportedDurable(t *testing.T) {
	cfg := testConfig(t)
	pid, err := serverPID()
	if err == nil {
		err = syscall.Kill(pid, 0) // may we signal it?
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot stop the ClickHouse server for the outage: %v", err)
		}
		t.Skipf("cannot stop the ClickHouse server for the outage (%v); run `make test` as root", err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Errorf("resume the ClickHouse server (pid %d): %v", pid, err)
			}
		}
	}
	t.Cleanup(resume)
	outage(t, cfg, func() {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("stop the ClickHouse server (pid %d): %v", pid, err)
		}
	}, resume)
}

// TestRestartLosesNothingReportedDurable is the outage of
// TestOutageLosesNothingReportedDurable as a real stop and restart: a
// private ClickHouse server (deploy/testservices), never the shared one,
// is stopped with SIGTERM, so that connections are refused rather than
// hung, while writers flow, then started again on the same data.
func TestRestartLosesNothingReportedDurable(t *testing.T) {
	c := testservices.StartClickHouse(t)
	outage(t, clickhouse.Config{Addrs: []string{c.Addr()}, Database: "auditbus_outage", Log: "test"}, c.Stop, c.Start)
}

// outage runs four writers through a sinks.Writer on the store of cfg,
// calls down once they have made 2,000 records durable, up once writes
// fail, and checks, after 2,000 more, that every record reported durable
// is stored, once, in a log without holes.
func outage(t *testing.T, cfg clickhouse.Config, down, up func()) {
	cfg.Timeout = time.Second
	s := open(t, cfg)
	w := sinks.NewWriter(s, sinks.WriterOptions{MaxBatch: 500, Retries: 1, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})

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
					recs[i] = sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Transport: "mem", Topic: "outage", Offset: int64(n*len(recs) + i), Partition: g}}}
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

	down()
	waitFor(t, "writes failing during the outage", func() bool { return failed.Load() >= 2 })
	up()
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

	cfg.Timeout = 0
	s2 := open(t, cfg)
	defer s2.Close()
	stored := map[string]bool{}
	err := sinks.PageAll(context.Background(), s2, sinks.Query{Source: "urn:outage", Limit: sinks.MaxLimit}, func(items []sinks.Item) error {
		for i := range items {
			if len(items[i].Trail) != 1 {
				t.Errorf("%s has %d entries, want 1", items[i].Event.ID(), len(items[i].Trail))
			}
			stored[items[i].Event.ID()] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var after uint64
	for {
		ens, err := s2.Entries(context.Background(), cfg.Log, after, sinks.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(ens) == 0 {
			break
		}
		for _, en := range ens {
			if after++; en.Seq != after {
				t.Fatalf("entry of %s has seq %d, want %d: a hole or a repeat", en.ID, en.Seq, after)
			}
		}
	}
	if after != uint64(len(stored)) {
		t.Errorf("the log holds %d entries for %d versions", after, len(stored))
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

package replay_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
)

// clickhouseAddr is where deploy/test-services.sh starts ClickHouse.
const clickhouseAddr = "127.0.0.1:9000"

// clickhouseStore opens a ClickHouse audit store in a database of the
// test's own, dropped when the test ends. It skips the test when no server
// answers, or fails it under CI=true.
func clickhouseStore(t *testing.T) *clickhouse.Store {
	t.Helper()
	c, err := net.DialTimeout("tcp", clickhouseAddr, 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ClickHouse at %s is unreachable (CI=true: deploy/test-services.sh should have started it): %v", clickhouseAddr, err)
		}
		t.Skipf("ClickHouse at %s is unreachable (%v); run `make test`, which starts it", clickhouseAddr, err)
	}
	_ = c.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	db := "auditbus_test_" + hex.EncodeToString(b)
	s, err := clickhouse.Open(context.Background(), clickhouse.Config{Addrs: []string{clickhouseAddr}, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
			t.Errorf("drop database %s: %v", db, err)
		}
		_ = s.Close()
	})
	return s
}

// TestReplayFromClickHouse replays a filtered subset of 50,000 events from
// the ClickHouse store, which reads through its sinks.Scanner, to a Kafka
// topic (kfake), where some events have later records: more entries of the
// same version (replayed once, as stored) and a second version at a time
// outside the window (not replayed: it does not match, while the first
// version does), and checks that each replayed version has one replayed
// entry of the job.
func TestReplayFromClickHouse(t *testing.T) {
	t.Parallel()
	store := clickhouseStore(t)
	if err := fill(store, historyEvents, historyKeys); err != nil {
		t.Fatal(err)
	}
	filter := sinks.Query{From: base.Add(100 * time.Second), To: base.Add(250 * time.Second),
		Type: "com.example.order.", TypePrefix: true}
	want := make(map[string]sinks.Record)
	var later []sinks.Record
	for i := 10000; i < 25000; i++ {
		r := gen(i, historyKeys)
		if !strings.HasPrefix(r.Event.Type(), "com.example.order.") {
			continue
		}
		switch i % 1000 {
		case 1, 2:
			again := r
			at := r.Entries[0].Time.Add(time.Hour)
			again.Entries = []sinks.Entry{{Time: at, Kind: sinks.KindDeadLettered, Route: "orders", Destination: "hook", Attempts: 3, Error: "down"}}
			later = append(later, again)
		case 3, 4:
			moved := r
			moved.Event = r.Event.Clone()
			moved.Event.SetTime(base.Add(400 * time.Second))
			moved.Entries = []sinks.Entry{{Time: r.Entries[0].Time.Add(time.Hour), Kind: sinks.KindReceived, Transport: "kafka", Topic: "orders", Offset: int64(i) + 1e6}}
			later = append(later, moved)
		}
		want[r.Event.ID()] = r
	}
	if len(later) == 0 {
		t.Fatal("no later records generated")
	}
	if _, err := store.Append(context.Background(), later); err != nil {
		t.Fatal(err)
	}
	if n, err := replay.Count(context.Background(), store, filter); err != nil || n != int64(len(want)) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(want))
	}

	replayToKafka(t, store, replay.Options{BatchSize: 500}, filter, want)
}

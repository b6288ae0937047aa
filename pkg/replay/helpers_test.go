package replay_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/deploy/testservices"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/twmb/franz-go/pkg/kfake"
)

// base is the time of the first generated event.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Event types the generated events rotate through.
var types3 = []string{"com.example.order.created", "com.example.order.paid", "com.example.user.signup"}

// gen is event number i of a generated history: key i%keys, one event every
// 10ms, types rotating, and every seventh event with random binary data.
func gen(i, keys int) sinks.Record {
	e := event.New()
	e.SetID(fmt.Sprintf("ev-%06d", i))
	e.SetSource("/test/shop")
	e.SetType(types3[i%len(types3)])
	e.SetSubject(fmt.Sprintf("order-%d", i/7))
	e.SetTime(base.Add(time.Duration(i) * 10 * time.Millisecond))
	e.SetExtension(bus.ExtPartitionKey, fmt.Sprintf("key-%03d", i%keys))
	e.SetExtension("tenant", "t1")
	if i%7 == 0 {
		b := make([]byte, 64+i%200)
		r := rand.New(rand.NewPCG(uint64(i), 7))
		for k := range b {
			b[k] = byte(r.Uint32())
		}
		_ = e.SetData("application/octet-stream", b)
	} else {
		_ = e.SetData("application/json", []byte(fmt.Sprintf(`{"n":%d,"note":"héllo \u00e9 %d"}`, i, i*31)))
	}
	at := base.Add(time.Duration(i)*10*time.Millisecond + time.Second)
	from := sinks.Entry{Time: at, Transport: "kafka", Topic: "orders", Partition: i % 4, Offset: int64(i)}
	received, delivered := from, from
	received.Kind, received.Principal = sinks.KindReceived, "kafka:orders"
	delivered.Kind, delivered.Route, delivered.Destination, delivered.Attempts = sinks.KindDelivered, "orders", "kafka:orders-out", 1
	return sinks.Record{Event: e, Entries: []sinks.Entry{received, delivered}}
}

// seq is the number of a generated event, from its id.
func seq(t testing.TB, id string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(id, "ev-%06d", &n); err != nil {
		t.Fatalf("event id %q is not a generated one", id)
	}
	return n
}

// openStore opens the SQLite audit store in dir.
func openStore(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), dir, sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fill stores n generated events over keys partition keys.
func fill(s sinks.Store, n, keys int) error {
	const chunk = 5000
	recs := make([]sinks.Record, 0, chunk)
	for i := 0; i < n; i++ {
		recs = append(recs, gen(i, keys))
		if len(recs) == chunk || i == n-1 {
			if _, err := s.Append(context.Background(), recs); err != nil {
				return err
			}
			recs = recs[:0]
		}
	}
	return nil
}

// The history every test reads: historyEvents generated events over
// historyKeys keys, stored once per test binary (SQLite inserts are slow
// under the race detector).
const (
	historyEvents = 50000
	historyKeys   = 100
)

var fixture struct {
	once  sync.Once
	dir   string
	store *sqlite.Store
	err   error
}

// history returns the shared store and its directory.
func history(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	fixture.once.Do(func() {
		start := time.Now()
		if fixture.dir, fixture.err = os.MkdirTemp("", "auditbus-replay-test-"); fixture.err != nil {
			return
		}
		fixture.store, fixture.err = sqlite.Open(context.Background(), fixture.dir, sqlite.Options{Synchronous: "NORMAL"})
		if fixture.err == nil {
			fixture.err = fill(fixture.store, historyEvents, historyKeys)
		}
		t.Logf("stored %d events in %v", historyEvents, time.Since(start))
	})
	if fixture.err != nil {
		t.Fatalf("history store: %v", fixture.err)
	}
	return fixture.store, fixture.dir
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(crashChild())
	}
	code := m.Run()
	if fixture.store != nil {
		_ = fixture.store.Close()
	}
	if fixture.dir != "" {
		_ = os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// quiet is a logger that drops everything below errors.
func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// newCluster starts an in-process Kafka wire-protocol broker for one test.
func newCluster(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func kafkaConfig(brokers []string) kafka.Config {
	return kafka.Config{
		Brokers: brokers, Linger: time.Millisecond, Partitions: 4,
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 2 * time.Second,
		FetchMaxWait: 100 * time.Millisecond, AutoCreateTopics: true, Logger: quiet(),
	}
}

func newKafka(t testing.TB, brokers []string) *kafka.Transport {
	t.Helper()
	tr, err := kafka.New(kafkaConfig(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// consumeKafka subscribes to topic in a group of its own, which reads it
// from its start, until n distinct events arrived or the deadline passed,
// and returns every event it received, duplicates included. Each partition
// is handed over in order, and a key stays in one partition, so per-key
// order is as published. The decoder is bus/kafka's own; that it reads
// what other CloudEvents Kafka clients write, and they what it writes, is
// pkg/e2e/kafka's interop test.
func consumeKafka(t testing.TB, brokers []string, topic string, n int, within time.Duration) []bus.Event {
	t.Helper()
	c := subscribe(t, newKafka(t, brokers), topic)
	distinct(t, c, n, within)
	return c.all()
}

// amqpURL returns the test broker's URL. When it cannot be reached the
// test fails under CI=true and is skipped otherwise.
func amqpURL(t testing.TB) string { return testservices.SharedRabbitMQ(t) }

func newAMQP(t testing.TB) *amqp.Transport {
	t.Helper()
	tr, err := amqp.New(amqp.Config{URL: amqpURL(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// collector keeps what a subscription received, in arrival order.
type collector struct {
	mu     sync.Mutex
	events []bus.Event
}

func (c *collector) handle(_ context.Context, msgs []bus.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range msgs {
		c.events = append(c.events, msgs[i].Event.Clone())
	}
	return nil
}

// byID is the extensions of the last event received with id, or nil.
func (c *collector) byID(id string) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.events) - 1; i >= 0; i-- {
		if c.events[i].ID() == id {
			return c.events[i].Extensions()
		}
	}
	return nil
}

func (c *collector) all() []bus.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.Event(nil), c.events...)
}

// subscribe collects topic on t in a group of its own.
func subscribe(t testing.TB, tr bus.Transport, topic string) *collector {
	t.Helper()
	c := &collector{}
	sub, err := tr.Subscribe(context.Background(), topic, "replay-test", c.handle, bus.SubscribeConfig{MaxBatch: 500}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return c
}

// distinct waits until c has received at least n distinct event ids, or
// fails after the deadline.
func distinct(t testing.TB, c *collector, n int, within time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		seen := make(map[string]int)
		for _, e := range c.all() {
			seen[e.ID()]++
		}
		if len(seen) >= n {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d distinct events after %v, want %d", len(seen), within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newManager makes a Manager over store with a fresh job directory and,
// unless o has one, a Writer on store for its ledger records.
func newManager(t testing.TB, store sinks.Store, o replay.Options) *replay.Manager {
	t.Helper()
	o.Store = store
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Audit == nil {
		w := sinks.NewWriter(store, sinks.WriterOptions{})
		t.Cleanup(func() { _ = w.Close() })
		o.Audit = w
	}
	if o.Logger == nil {
		o.Logger = quiet()
	}
	m, err := replay.NewManager(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// wait waits for the job to stop.
func wait(t testing.TB, m *replay.Manager, id string, within time.Duration) replay.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	j, err := m.Wait(ctx, id)
	if err != nil {
		t.Fatalf("job %s: %v (progress %+v)", id, err, j.Progress)
	}
	return j
}

// versions lists the versions q selects, with their trails.
func versions(t testing.TB, s sinks.Store, q sinks.Query) []sinks.Item {
	t.Helper()
	var out []sinks.Item
	q.Limit = sinks.MaxLimit
	if err := sinks.PageAll(context.Background(), s, q, func(items []sinks.Item) error {
		out = append(out, items...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// entriesOf are the entries of the trail of kind made by replay job id.
func entriesOf(trail []sinks.Entry, kind, id string) []sinks.Entry {
	var out []sinks.Entry
	for _, en := range trail {
		if en.Kind == kind && en.Replay == id {
			out = append(out, en)
		}
	}
	return out
}

// extString formats an extension value as a string, whatever its type.
func extString(v any) string {
	s, err := types.Format(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}

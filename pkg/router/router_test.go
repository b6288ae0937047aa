package router_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
)

// collector subscribes to a mem topic and keeps what arrives.
type collector struct {
	mu     sync.Mutex
	events []bus.Event
}

func (c *collector) handle(_ context.Context, msgs []bus.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.events = append(c.events, m.Event)
	}
	return nil
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

func (c *collector) snapshot() []bus.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.Event(nil), c.events...)
}

func collect(t *testing.T, tr bus.Transport, topic string) *collector {
	t.Helper()
	c := &collector{}
	sub, err := tr.Subscribe(context.Background(), topic, "test-"+topic, c.handle, bus.SubscribeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return c
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newEvent(i int, typ string) bus.Event {
	e := event.New()
	e.SetID(fmt.Sprintf("ev-%05d", i))
	e.SetSource("/router/test")
	e.SetType(typ)
	e.SetTime(time.Date(2026, 11, 22, 10, 0, 0, i*1000, time.UTC))
	e.SetExtension(bus.ExtPartitionKey, fmt.Sprintf("key-%d", i%7))
	_ = e.SetData("application/json", []byte(fmt.Sprintf(`{"n":%d}`, i)))
	return e
}

type harness struct {
	mem    *mem.Transport
	store  *sqlite.Store
	writer *sinks.Writer
	reg    *prometheus.Registry
	r      *router.Router
}

func start(t *testing.T, routesYAML string) *harness {
	t.Helper()
	h := &harness{mem: mem.New(), reg: prometheus.NewRegistry()}
	t.Cleanup(func() { _ = h.mem.Close() })
	var err error
	h.store, err = sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.writer = sinks.NewWriter(h.store, sinks.WriterOptions{})
	t.Cleanup(func() { _ = h.writer.Close(); _ = h.store.Close() })
	routes, err := router.ParseRoutes("routes.yaml", []byte(routesYAML))
	if err != nil {
		t.Fatal(err)
	}
	h.r, err = router.New(routes, router.Options{
		Transports: map[string]bus.Transport{"mem": h.mem},
		Audit:      h.writer,
		Metrics:    router.NewMetrics(h.reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) run(t *testing.T) {
	t.Helper()
	if err := h.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.r.Close() })
}

func (h *harness) count(t *testing.T, q sinks.Query) int {
	t.Helper()
	n := 0
	for {
		q.Limit = sinks.MaxLimit
		p, err := h.store.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Records)
		if p.Next == "" {
			return n
		}
		q.Cursor = p.Next
	}
}

// webhook is an HTTP destination that records event ids, or fails with
// status while failing is set.
type webhook struct {
	srv     *httptest.Server
	failing atomic.Bool
	mu      sync.Mutex
	ids     []string
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if w.failing.Load() {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.mu.Lock()
		w.ids = append(w.ids, r.Header.Get("ce-id"))
		w.mu.Unlock()
		rw.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ids)
}

func TestFanOutFilterAndAudit(t *testing.T) {
	hook := newWebhook(t)
	h := start(t, `
routes:
  - name: orders
    source: {transport: mem, topic: in}
    filter:
      prefix: {type: com.example.order.}
    destinations:
      - {transport: mem, topic: out-a}
      - {transport: mem, topic: out-b}
      - name: hook
        webhook: {url: "`+hook.srv.URL+`"}
    dead_letter: {transport: mem, topic: dlq}
`)
	a, b, dlq := collect(t, h.mem, "out-a"), collect(t, h.mem, "out-b"), collect(t, h.mem, "dlq")
	h.run(t)

	const n = 1000
	events := make([]bus.Event, n)
	for i := range events {
		typ := "com.example.order.created"
		if i%10 == 0 {
			typ = "com.example.user.created"
		}
		events[i] = newEvent(i, typ)
	}
	for i := 0; i < n; i += 100 {
		if err := h.mem.Publish(context.Background(), "in", events[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	const matching = n - n/10
	eventually(t, "every destination has every matching event", func() bool {
		return a.len() >= matching && b.len() >= matching && hook.len() >= matching
	})
	eventually(t, "every event audited", func() bool { return h.count(t, sinks.Query{Route: "orders"}) == n })
	if got := h.count(t, sinks.Query{Outcome: sinks.OutcomeFiltered}); got != n/10 {
		t.Errorf("filtered records: %d, want %d", got, n/10)
	}
	if got := h.count(t, sinks.Query{Outcome: sinks.OutcomeDelivered}); got != matching {
		t.Errorf("delivered records: %d, want %d", got, matching)
	}
	if dlq.len() != 0 {
		t.Errorf("dead letter got %d events, want none", dlq.len())
	}
	// Each destination has its own copy, bit-exact.
	for _, e := range a.snapshot() {
		if !strings.HasPrefix(e.Type(), "com.example.order.") {
			t.Fatalf("filtered-out event %s delivered", e.ID())
		}
	}
	rec, err := h.store.Get(context.Background(), "/router/test", "ev-00001")
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Event.Data()) != `{"n":1}` || rec.Transport != "mem" || rec.Topic != "in" || rec.Route != "orders" {
		t.Errorf("audit record: %+v", rec)
	}
}

func TestFailingDestinationDeadLetters(t *testing.T) {
	hook := newWebhook(t)
	hook.failing.Store(true)
	h := start(t, `
routes:
  - name: r
    source: {transport: mem, topic: in}
    destinations:
      - {transport: mem, topic: ok}
      - name: down
        webhook: {url: "`+hook.srv.URL+`", timeout: 1s}
    retry: {max_attempts: 2, initial_backoff: 1ms, max_backoff: 2ms}
    circuit_breaker: {failures: 3, open_for: 50ms}
    dead_letter: {transport: mem, topic: dlq}
`)
	ok, dlq := collect(t, h.mem, "ok"), collect(t, h.mem, "dlq")
	h.run(t)
	const n = 40
	events := make([]bus.Event, n)
	for i := range events {
		events[i] = newEvent(i, "t")
	}
	if err := h.mem.Publish(context.Background(), "in", events); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all events in the dead letter", func() bool { return dlq.len() >= n })
	eventually(t, "the healthy destination has all events", func() bool { return ok.len() >= n })
	for _, e := range dlq.snapshot() {
		ext := e.Extensions()
		if ext[router.ExtDeadLetterDestination] != "down" || ext[router.ExtDeadLetterRoute] != "r" ||
			!strings.Contains(fmt.Sprint(ext[router.ExtDeadLetterReason]), "503") && !strings.Contains(fmt.Sprint(ext[router.ExtDeadLetterReason]), "circuit") {
			t.Fatalf("dead-lettered event extensions: %v", ext)
		}
		if _, ok := ext[router.ExtDeadLetterAttempts]; !ok {
			t.Fatalf("no attempt count: %v", ext)
		}
	}
	eventually(t, "every event audited as dead-lettered", func() bool {
		return h.count(t, sinks.Query{Outcome: sinks.OutcomeDeadLettered}) == n
	})
	if trips := metricSum(t, h.reg, "auditbus_destination_circuit_trips_total"); trips < 1 {
		t.Errorf("circuit breaker trips: %v, want at least 1", trips)
	}
}

// metricSum adds up every series of the named counter or gauge.
func metricSum(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

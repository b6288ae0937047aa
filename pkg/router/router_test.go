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
		n += len(p.Items)
		if p.Next == "" {
			return n
		}
		q.Cursor = p.Next
	}
}

// versions returns every version of (source, id) with its trail.
func (h *harness) versions(t *testing.T, source, id string) []sinks.Item {
	t.Helper()
	items, err := h.store.Get(context.Background(), source, id)
	if err != nil {
		t.Fatalf("get %s %s: %v", source, id, err)
	}
	return items
}

// trail is the trail of the one version of (source, id).
func (h *harness) trail(t *testing.T, source, id string) []sinks.Entry {
	t.Helper()
	items := h.versions(t, source, id)
	if len(items) != 1 {
		t.Fatalf("%s %s: %d versions, want 1", source, id, len(items))
	}
	return items[0].Trail
}

// want is an entry a trail must hold: the fields a test sets are compared,
// the others (time, position in the log, version) are not.
type want struct {
	kind, transport, topic, request, principal, route, dest string
	attempts                                                int
	errHas                                                  string
}

// matches reports whether e is the entry w describes; errHas must occur in
// e.Error, and an empty errHas wants no error.
func (w want) matches(e sinks.Entry) bool {
	return e.Kind == w.kind && e.Transport == w.transport && e.Topic == w.topic && e.Request == w.request &&
		e.Principal == w.principal && e.Route == w.route && e.Destination == w.dest && e.Attempts == w.attempts &&
		(w.errHas == "" && e.Error == "" || w.errHas != "" && strings.Contains(e.Error, w.errHas))
}

// checkTrail wants trail to hold exactly the entries of ws, in any order,
// each stamped with a time, a log and a sequence number.
func checkTrail(t *testing.T, trail []sinks.Entry, ws ...want) {
	t.Helper()
	used := make([]bool, len(trail))
next:
	for _, w := range ws {
		for i, e := range trail {
			if !used[i] && w.matches(e) {
				used[i] = true
				continue next
			}
		}
		t.Errorf("no entry %+v in the trail", w)
	}
	for i, e := range trail {
		if e.Time.IsZero() || e.Log == "" || e.Seq == 0 {
			t.Errorf("entry %d has no time or position: %+v", i, e)
		}
		if !used[i] {
			t.Errorf("unexpected entry %+v", e)
		}
	}
	if t.Failed() {
		for _, e := range trail {
			t.Logf("trail: %+v", e)
		}
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
	if got := h.count(t, sinks.Query{Kind: sinks.KindFiltered}); got != n/10 {
		t.Errorf("filtered versions: %d, want %d", got, n/10)
	}
	if got := h.count(t, sinks.Query{Kind: sinks.KindDelivered}); got != matching {
		t.Errorf("delivered versions: %d, want %d", got, matching)
	}
	if got := h.count(t, sinks.Query{Kind: sinks.KindDelivered, Destination: "hook"}); got != matching {
		t.Errorf("versions delivered to the webhook: %d, want %d", got, matching)
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
	items := h.versions(t, "/router/test", "ev-00001")
	if len(items) != 1 || string(items[0].Event.Data()) != `{"n":1}` {
		t.Fatalf("versions of ev-00001: %+v", items)
	}
	at := want{transport: "mem", topic: "in", route: "orders"}
	received, filtered := at, at
	received.kind, received.principal = sinks.KindReceived, "mem:in"
	filtered.kind = sinks.KindFiltered
	delivered := func(dest string) want {
		w := at
		w.kind, w.dest, w.attempts = sinks.KindDelivered, dest, 1
		return w
	}
	checkTrail(t, items[0].Trail, received, delivered("mem:out-a"), delivered("mem:out-b"), delivered("hook"))
	checkTrail(t, h.trail(t, "/router/test", "ev-00010"), received, filtered)
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
		return h.count(t, sinks.Query{Kind: sinks.KindDeadLettered}) == n
	})
	if got := h.count(t, sinks.Query{Kind: sinks.KindDeadLettered, Destination: "down", Redrivable: true}); got != n {
		t.Errorf("redrivable versions: %d, want %d", got, n)
	}
	// Each dead-letter entry has the attempts that reached the webhook (an
	// attempt the open breaker turned away does not count) and the last
	// error.
	for i := range n {
		trail := h.trail(t, "/router/test", fmt.Sprintf("ev-%05d", i))
		kinds := map[string]int{}
		for _, e := range trail {
			kinds[e.Kind]++
			if e.Kind == sinks.KindDeadLettered && (e.Destination != "down" || e.Attempts > 2 ||
				!strings.Contains(e.Error, "503") && !strings.Contains(e.Error, "circuit")) {
				t.Errorf("ev-%05d: dead-letter entry %+v", i, e)
			}
		}
		if len(trail) != 3 || kinds[sinks.KindReceived] != 1 || kinds[sinks.KindDelivered] != 1 || kinds[sinks.KindDeadLettered] != 1 {
			t.Fatalf("ev-%05d: trail %+v, want received, delivered and dead-lettered", i, trail)
		}
	}
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

// A webhook that fails its first request and then accepts: the event is
// delivered, and its entry says it took two attempts.
func TestDeliveredEntryCountsAttempts(t *testing.T) {
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	h := start(t, `
routes:
  - name: flaky
    source: {transport: mem, topic: in}
    destinations:
      - {name: hook, webhook: {url: "`+hook.URL+`"}}
    retry: {max_attempts: 3, initial_backoff: 1ms, max_backoff: 2ms}
    dead_letter: {transport: mem, topic: dlq}
`)
	collect(t, h.mem, "dlq")
	h.run(t)
	if err := h.mem.Publish(context.Background(), "in", []bus.Event{newEvent(1, "t")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the event audited", func() bool { return h.count(t, sinks.Query{Route: "flaky"}) == 1 })
	checkTrail(t, h.trail(t, "/router/test", "ev-00001"),
		want{kind: sinks.KindReceived, transport: "mem", topic: "in", principal: "mem:in", route: "flaky"},
		want{kind: sinks.KindDelivered, transport: "mem", topic: "in", route: "flaky", dest: "hook", attempts: 2})
}

// Ingest records each event as received over HTTP by the request and the
// principal it was given, at its position in the request. The same event
// ingested by another request is received again, and delivered again; an
// event carrying the replay extension is an ordinary version.
func TestIngestRecordsTheRequest(t *testing.T) {
	h := start(t, `
routes:
  - name: web
    source: {http: true}
    filter: {exact: {type: keep}}
    destinations: [{transport: mem, topic: out}]
    dead_letter: none
`)
	out := collect(t, h.mem, "out")
	kept, dropped := newEvent(1, "keep"), newEvent(2, "drop")
	replayed := newEvent(3, "keep")
	replayed.SetExtension(router.ExtReplay, "forged")
	ctx := context.Background()
	if err := h.r.Ingest(ctx, "web", []bus.Event{kept, dropped, replayed}, router.IngestOptions{Request: "req-1", Principal: "svc-a"}); err != nil {
		t.Fatal(err)
	}
	if err := h.r.Ingest(ctx, "web", []bus.Event{kept}, router.IngestOptions{Request: "req-2", Principal: "svc-b"}); err != nil {
		t.Fatal(err)
	}
	// Without a request id, each call is a request of its own.
	for range 2 {
		if err := h.r.Ingest(ctx, "web", []bus.Event{dropped}, router.IngestOptions{Principal: "svc-c"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the kept events delivered", func() bool { return out.len() >= 3 })

	viaHTTP := func(kind, request, principal string) want {
		return want{kind: kind, transport: "http", request: request, principal: principal, route: "web"}
	}
	delivered := func(request string) want {
		w := viaHTTP(sinks.KindDelivered, request, "")
		w.dest, w.attempts = "mem:out", 1
		return w
	}
	checkTrail(t, h.trail(t, "/router/test", "ev-00001"),
		viaHTTP(sinks.KindReceived, "req-1", "svc-a"), delivered("req-1"),
		viaHTTP(sinks.KindReceived, "req-2", "svc-b"), delivered("req-2"))
	trail := h.trail(t, "/router/test", "ev-00002")
	if len(trail) != 6 {
		t.Fatalf("ev-00002: %d entries, want the received and filtered entries of three requests: %+v", len(trail), trail)
	}
	requests := map[string]int{}
	for _, e := range trail {
		requests[e.Request]++
		if e.Kind == sinks.KindReceived && e.Request == "req-1" && (e.Offset != 1 || e.Principal != "svc-a") {
			t.Errorf("ev-00002 in req-1: %+v, want offset 1 (its position in the request) and principal svc-a", e)
		}
	}
	if len(requests) != 3 || requests["req-1"] != 2 {
		t.Errorf("ev-00002's entries by request: %v, want two from req-1 and two from each made-up request", requests)
	}

	items := h.versions(t, "/router/test", "ev-00003")
	if len(items) != 1 || items[0].Event.Extensions()[router.ExtReplay] != "forged" || items[0].Conflict {
		t.Fatalf("ev-00003 with the replay extension: %+v", items)
	}
	checkTrail(t, items[0].Trail, viaHTTP(sinks.KindReceived, "req-1", "svc-a"), delivered("req-1"))
	for _, e := range items[0].Trail {
		if e.Replay != "" || e.Offset != 2 {
			t.Errorf("ev-00003: entry %+v, want no replay and offset 2", e)
		}
	}
}

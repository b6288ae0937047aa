package replay_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
)

// hookServer is a webhook that is down (503) until up is set, then fails
// the first flaky requests with 503 before it accepts every event,
// counting what it accepted by id and the replay job each carried.
type hookServer struct {
	up    atomic.Bool
	flaky atomic.Int32
	mu    sync.Mutex
	got   map[string]int
	jobs  map[string]int
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.up.Load() || h.flaky.Add(-1) >= 0 {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	h.mu.Lock()
	h.got[r.Header.Get("Ce-Id")]++
	h.jobs[r.Header.Get("Ce-"+replay.ExtReplay)]++
	h.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// count is how many versions q selects.
func count(t *testing.T, s sinks.Store, q sinks.Query) int {
	t.Helper()
	n, err := replay.Count(context.Background(), s, q)
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// TestRedrive: a route's webhook is down, so the router dead-letters its
// events and records them as dead-lettered there; the webhook is fixed
// (and still fails a few requests); a redrive delivers every dead-lettered
// version once more and records a delivered entry on each, so that a
// second redrive finds nothing to deliver.
func TestRedrive(t *testing.T) {
	const n = 200
	store := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = store.Close() })
	writer := sinks.NewWriter(store, sinks.WriterOptions{})
	t.Cleanup(func() { _ = writer.Close() })

	hook := &hookServer{got: map[string]int{}, jobs: map[string]int{}}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)

	tr := mem.New()
	t.Cleanup(func() { _ = tr.Close() })
	dead := subscribe(t, tr, "dead")
	r, err := router.New([]router.RouteConfig{{
		Name:         "orders",
		Source:       router.SourceConfig{HTTP: true},
		Destinations: []router.DestinationConfig{{Name: "hook", Webhook: &router.WebhookConfig{URL: u, Timeout: 5 * time.Second}}},
		Retry:        router.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond},
		DeadLetter:   &router.DestinationConfig{Name: "mem:dead", Transport: "mem", Topic: "dead"},
	}}, router.Options{Transports: map[string]bus.Transport{"mem": tr}, Audit: writer, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	events := make([]bus.Event, n)
	for i := range events {
		events[i] = gen(i, 10).Event
	}
	if err := r.Ingest(context.Background(), "orders", events, router.IngestOptions{Principal: "test"}); err != nil {
		t.Fatal(err)
	}
	distinct(t, dead, n, 20*time.Second)
	redrivable := sinks.Query{Route: "orders", Destination: "hook", Kind: sinks.KindDeadLettered, Redrivable: true}
	if got := count(t, store, redrivable); got != n {
		t.Fatalf("%d versions redrivable, want %d", got, n)
	}

	hook.flaky.Store(3)
	hook.up.Store(true)
	wh, err := cehttp.NewWebhook(cehttp.WebhookConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, store, replay.Options{Audit: writer,
		Retry: router.RetryPolicy{MaxAttempts: 5, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Jitter: 0.2}})
	j, err := m.Redrive(context.Background(), replay.RedriveRequest{Route: "orders", Destination: "hook"},
		replay.Named("hook", replay.WebhookTarget(wh)))
	if err != nil {
		t.Fatal(err)
	}
	j = wait(t, m, j.ID, time.Minute)
	if j.State != replay.Done || j.Progress.Done != n || j.Progress.Failed != 0 {
		t.Fatalf("redrive ended %s with %+v (error %q); want done with %d", j.State, j.Progress, j.Error, n)
	}
	hook.mu.Lock()
	for i := range events {
		if c := hook.got[events[i].ID()]; c != 1 {
			t.Errorf("event %s delivered %d times by the redrive, want 1", events[i].ID(), c)
		}
	}
	if hook.jobs[j.ID] != n {
		t.Errorf("%d deliveries carried %s=%s, want %d", hook.jobs[j.ID], replay.ExtReplay, j.ID, n)
	}
	hook.mu.Unlock()

	if got := count(t, store, redrivable); got != 0 {
		t.Errorf("%d versions still redrivable after the redrive", got)
	}
	if got := count(t, store, sinks.Query{Route: "orders", Destination: "hook", Kind: sinks.KindDelivered}); got != n {
		t.Errorf("%d versions delivered to the hook after the redrive, want %d", got, n)
	}
	items, err := store.Get(context.Background(), events[0].Source(), events[0].ID())
	if err != nil || len(items) != 1 || string(items[0].Event.Data()) != string(events[0].Data()) {
		t.Fatalf("the original after the redrive: %+v, %v", items, err)
	}
	trail := items[0].Trail
	last := trail[len(trail)-1]
	if len(trail) != 3 || trail[1].Kind != sinks.KindDeadLettered || last.Kind != sinks.KindDelivered || last.Route != "orders" ||
		last.Destination != "hook" || last.Replay != j.ID || last.Attempts < 1 {
		t.Errorf("the original's trail after the redrive: %+v", trail)
	}
	if _, ok := items[0].Event.Extensions()[replay.ExtReplay]; ok {
		t.Errorf("the original carries %s", replay.ExtReplay)
	}

	// A second redrive finds nothing left to deliver.
	j2, err := m.Redrive(context.Background(), replay.RedriveRequest{Route: "orders", Destination: "hook"},
		replay.Named("hook", replay.WebhookTarget(wh)))
	if err != nil {
		t.Fatal(err)
	}
	if j2 = wait(t, m, j2.ID, time.Minute); j2.State != replay.Done || j2.Progress.Done != 0 || j2.Progress.Total != 0 {
		t.Fatalf("second redrive ended %s with %+v", j2.State, j2.Progress)
	}
}

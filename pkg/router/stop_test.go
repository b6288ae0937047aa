package router_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/sinks"
)

// TestCloseCutsRetriesShort: Close, while a batch waits to retry a
// failing destination, returns without waiting out the retry policy; the
// batch is neither dead-lettered nor audited, but left to its source to
// deliver again.
func TestCloseCutsRetriesShort(t *testing.T) {
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(hook.Close)
	h := start(t, `
routes:
  - name: r
    source: {transport: mem, topic: in}
    destinations:
      - {name: down, webhook: {url: "`+hook.URL+`", timeout: 1s}}
    retry: {max_attempts: 5, initial_backoff: 1h, max_backoff: 1h, max_elapsed: 5h}
    circuit_breaker: {failures: 100}
    dead_letter: {transport: mem, topic: dlq}
`)
	dlq := collect(t, h.mem, "dlq")
	if err := h.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.mem.Publish(context.Background(), "in", []bus.Event{newEvent(1, "t")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first attempt", func() bool { return calls.Load() >= 1 })
	closed := make(chan error, 1)
	go func() { closed <- h.r.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close still waits a minute later: the batch waits out its retry backoff of an hour")
	}
	if err := h.writer.Close(); err != nil {
		t.Fatal(err)
	}
	if n := dlq.len(); n != 0 {
		t.Errorf("%d events dead-lettered, want none: the batch is left to its source", n)
	}
	_, err := h.store.Get(context.Background(), "/router/test", "ev-00001")
	if !errors.Is(err, sinks.ErrNotFound) {
		t.Errorf("the event's ledger: %v, want nothing recorded", err)
	}
}

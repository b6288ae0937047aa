package router_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/cloudevents/sdk-go/v2/event"
)

// TestRouteLookup finds a route's configuration by name, and builds a
// working client from a webhook destination's configuration.
func TestRouteLookup(t *testing.T) {
	got := make(chan string, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("ce-id") + " " + r.Header.Get("X-Key")
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	routes, err := router.ParseRoutes("routes.yaml", []byte(`
routes:
  - name: orders
    source: {transport: mem, topic: in}
    destinations:
      - {name: billing, webhook: {url: "`+hook.URL+`/in", headers: {X-Key: k1}}}
      - {transport: mem, topic: copy}
    dead_letter: {transport: mem, topic: dead}
`))
	if err != nil {
		t.Fatal(err)
	}
	tr := mem.New()
	t.Cleanup(func() { _ = tr.Close() })
	rt, err := router.New(routes, router.Options{Transports: map[string]bus.Transport{"mem": tr}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rt.Route("nope"); ok {
		t.Error("Route found a route that does not exist")
	}
	cfg, ok := rt.Route("orders")
	if !ok || len(cfg.Destinations) != 2 || cfg.Destinations[0].Name != "billing" || cfg.Destinations[1].Name != "mem:copy" ||
		cfg.DeadLetter == nil || cfg.DeadLetter.Topic != "dead" {
		t.Fatalf("Route(orders) = %+v, %v", cfg, ok)
	}
	wh, err := cfg.Destinations[0].Webhook.NewWebhook(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := event.New()
	e.SetID("1")
	e.SetSource("/s")
	e.SetType("t")
	if err := wh.Send(context.Background(), &e); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "1 k1" {
		t.Errorf("the webhook got %q, want the event id and the configured header", s)
	}
}

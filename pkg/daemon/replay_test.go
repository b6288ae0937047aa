package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/envconf"
	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/cloudevents/sdk-go/v2/event"
)

// hookServer records the id and the X-Key header of each event posted.
func hookServer(t *testing.T) (*httptest.Server, chan string) {
	t.Helper()
	got := make(chan string, 10)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("ce-id") + " " + r.Header.Get("X-Key")
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.Close)
	return s, got
}

func testEvent(id string) bus.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/test")
	e.SetType("com.example.test")
	return e
}

// newTestDestinations resolves over a mem transport and a route "billing"
// with a webhook destination "hook" and a mem destination.
func newTestDestinations(t *testing.T, hookURL, dir string) (*destinations, bus.Transport) {
	t.Helper()
	routes, err := router.ParseRoutes("routes.yaml", []byte(`
routes:
  - name: billing
    source: {http: true}
    destinations:
      - {name: hook, webhook: {url: "`+hookURL+`", headers: {X-Key: route}}}
      - {transport: mem, topic: ledger}
    dead_letter: none
`))
	if err != nil {
		t.Fatal(err)
	}
	tr := mem.New()
	t.Cleanup(func() { _ = tr.Close() })
	trs := map[string]bus.Transport{"mem": tr}
	rt, err := router.New(routes, router.Options{Transports: trs})
	if err != nil {
		t.Fatal(err)
	}
	return newDestinations(trs, rt, dir, nil, nil), tr
}

// TestReplayDestinations resolves each form of destination from a request
// and again from its recorded name, as a restarted daemon does.
func TestReplayDestinations(t *testing.T) {
	hook, got := hookServer(t)
	dir := t.TempDir()
	d, tr := newTestDestinations(t, hook.URL, dir)
	ctx := context.Background()

	// A transport topic.
	sub, err := tr.Subscribe(ctx, "out", "test", func(context.Context, []bus.Message) error { return nil }, bus.SubscribeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	target, err := d.Target(httpapi.ReplayDestination{Transport: "mem", Topic: "out"})
	if err != nil || target.String() != "mem:out" {
		t.Fatalf("topic target %v, %v", target, err)
	}
	again, err := d.Resolve("mem:out")
	if err != nil || again.String() != "mem:out" || again.Publish(ctx, []bus.Event{testEvent("t1")}) != nil {
		t.Fatalf("resolve mem:out: %v, %v", again, err)
	}

	// A route's webhook destination, with the route's headers.
	target, err = d.Target(httpapi.ReplayDestination{Route: "billing", Destination: "hook"})
	if err != nil || target.String() != "route:billing/hook" {
		t.Fatalf("route target %v, %v", target, err)
	}
	if again, err = d.Resolve("route:billing/hook"); err != nil {
		t.Fatal(err)
	}
	if err := again.Publish(ctx, []bus.Event{testEvent("r1")}); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "r1 route" {
		t.Errorf("route webhook got %q", s)
	}
	if names, err := d.RouteDestinations("billing"); err != nil || strings.Join(names, ",") != "hook,mem:ledger" {
		t.Errorf("RouteDestinations(billing) = %v, %v", names, err)
	}

	// A webhook of the request: its settings survive a restart, in a file
	// only the daemon's user reads.
	spec := &httpapi.ReplayWebhook{URL: hook.URL + "/in", Timeout: "3s", Headers: map[string]string{"X-Key": "secret"}}
	target, err = d.Target(httpapi.ReplayDestination{Webhook: spec})
	if err != nil || !strings.HasPrefix(target.String(), "webhook:"+hook.URL+"/in#") || strings.Contains(target.String(), "secret") {
		t.Fatalf("webhook target %v, %v", target, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "webhooks", "*.json"))
	if len(files) != 1 {
		t.Fatalf("webhook settings files: %v", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("settings file mode %v (%v), want 0600", fi.Mode(), err)
	}
	restarted, _ := newTestDestinations(t, hook.URL, dir)
	if again, err = restarted.Resolve(target.String()); err != nil {
		t.Fatal(err)
	}
	if err := again.Publish(ctx, []bus.Event{testEvent("w1")}); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "w1 secret" {
		t.Errorf("resumed webhook got %q, want its headers back", s)
	}
}

func TestReplayDestinationErrors(t *testing.T) {
	hook, _ := hookServer(t)
	d, _ := newTestDestinations(t, hook.URL, t.TempDir())
	for _, c := range []struct {
		dest  httpapi.ReplayDestination
		field string
	}{
		{httpapi.ReplayDestination{Transport: "kafka", Topic: "x"}, "destination.transport"},
		{httpapi.ReplayDestination{Transport: "mem", Topic: "a\nb"}, "destination.topic"},
		{httpapi.ReplayDestination{Route: "nope", Destination: "hook"}, "destination.route"},
		{httpapi.ReplayDestination{Route: "billing", Destination: "nope"}, "destination.destination"},
		{httpapi.ReplayDestination{Webhook: &httpapi.ReplayWebhook{URL: "ftp://x"}}, "destination.webhook"},
		{httpapi.ReplayDestination{Webhook: &httpapi.ReplayWebhook{URL: "http://x", Headers: map[string]string{"Bad Name": "v"}}}, "destination.webhook"},
	} {
		_, err := d.Target(c.dest)
		fe, ok := errors.AsType[*replay.FieldError](err)
		if !ok || fe.Field != c.field {
			t.Errorf("Target(%+v) = %v, want a field error on %s", c.dest, err, c.field)
		}
	}
	if _, err := d.RouteDestinations("nope"); err == nil || !strings.Contains(err.Error(), `"route"`) {
		t.Errorf("RouteDestinations(nope) = %v", err)
	}
	for _, name := range []string{"nothing", "kafka:x", "route:billing", "route:billing/nope", "webhook:http://x", "webhook:http://x#0123456789abcdef"} {
		if _, err := d.Resolve(name); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Resolve(%q) = %v, want an error naming it", name, err)
		}
	}
}

func TestReplayConfig(t *testing.T) {
	c, err := configFrom(envconf.WithLookup("AUDITBUS_", lookup(map[string]string{"AUDITBUS_DATA_DIR": "/var/lib/auditbus"})))
	if err != nil || c.ReplayDir != "/var/lib/auditbus/replays" || c.ReplayBatchSize != 1000 {
		t.Fatalf("defaults: dir %q, batch %d, %v", c.ReplayDir, c.ReplayBatchSize, err)
	}
	c, err = configFrom(envconf.WithLookup("AUDITBUS_", lookup(map[string]string{"AUDITBUS_REPLAY_DIR": "/r", "AUDITBUS_REPLAY_BATCH_SIZE": "10000"})))
	if err != nil || c.ReplayDir != "/r" || c.ReplayBatchSize != 10000 {
		t.Fatalf("set: dir %q, batch %d, %v", c.ReplayDir, c.ReplayBatchSize, err)
	}
	for _, v := range []string{"0", "10001", "many"} {
		_, err := configFrom(envconf.WithLookup("AUDITBUS_", lookup(map[string]string{"AUDITBUS_REPLAY_BATCH_SIZE": v})))
		if err == nil || !strings.Contains(err.Error(), "AUDITBUS_REPLAY_BATCH_SIZE") {
			t.Errorf("AUDITBUS_REPLAY_BATCH_SIZE=%s: %v", v, err)
		}
	}
}

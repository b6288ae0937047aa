package daemon_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/daemon"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/golang-jwt/jwt/v5"
)

// TestStopFinishesBatchInFlight stops `auditbus serve` as SIGTERM does
// (Main's context ends) while a route's webhook call is in flight: the
// drain lets the call finish, and when Main returns the event's delivery
// is in the ledger. Cutting the batch short instead would leave an event
// the webhook has without its ledger entries until a restart handles it
// again.
func TestStopFinishesBatchInFlight(t *testing.T) {
	called, release := make(chan struct{}, 1), make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case called <- struct{}{}:
		default:
		}
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routes, []byte(`
routes:
  - name: drain
    source: {transport: mem, topic: drain-in}
    destinations:
      - {name: hook, webhook: {url: "`+hook.URL+`"}}
    dead_letter: {transport: mem, topic: drain-dlq}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	liveConfig(t, dir, routes, "AUDITBUS_LISTEN="+addr) // sets the environment Main reads
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	logs := &lockedBuffer{}
	exited := make(chan int, 1)
	go func() { exited <- daemon.Main(ctx, nil, logs, logs) }()
	defer func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", logs.String())
		}
	}()
	waitUntil(t, "the daemon to serve", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "svc-orders", "scope": "events:write", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(liveSecret))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/events?topic=drain-in", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"Authorization": "Bearer " + token, "ce-specversion": "1.0", "ce-id": "drain-1",
		"ce-source": "/drain", "ce-type": "com.example.drain", "Content-Type": "application/json"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %d, want 202", resp.StatusCode)
	}
	<-called // the route's batch is in flight
	stop()
	waitUntil(t, "the daemon to begin its drain", 30*time.Second, func() bool {
		return strings.Contains(logs.String(), "stopping: draining in-flight events")
	})
	close(release)
	if code := <-exited; code != 0 {
		t.Fatalf("auditbus serve exited with %d after its drain, want 0", code)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "data"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	items, err := store.Get(context.Background(), "/drain", "drain-1")
	if err != nil {
		t.Fatal(err)
	}
	var hops []string
	for _, it := range items {
		for _, e := range it.Trail {
			hops = append(hops, hop(e))
		}
	}
	want := "delivered mem/drain-in route=drain dest=hook attempts=1"
	found := false
	for _, h := range hops {
		found = found || h == want
	}
	if !found {
		t.Errorf("the ledger holds %q, want %q: the batch in flight at the stop was cut short", hops, want)
	}
}

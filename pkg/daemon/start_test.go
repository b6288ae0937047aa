package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestStartRefusesOpenListenerWithoutKeys(t *testing.T) {
	for _, k := range []string{"AUDITBUS_AUTH_HS256_SECRET", "AUDITBUS_AUTH_PUBLIC_KEYS", "AUDITBUS_AUTH_JWKS_FILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	cfg := Config{Listen: "0.0.0.0:0", DataDir: t.TempDir(), Transports: []string{"mem"}, DefaultTransport: "mem", DefaultTopic: "events", Store: "sqlite"}
	_, err := Start(context.Background(), cfg, quietLog())
	if err == nil {
		t.Fatal("started on 0.0.0.0 without auth keys")
	}
	for _, want := range []string{"0.0.0.0", "AUDITBUS_AUTH_HS256_SECRET", "AUDITBUS_INSECURE=true", "127.0.0.1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestStartNamesTheBadRoutesFile(t *testing.T) {
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte("routes:\n  - name: orders\n    source: {transport: mem, topic: o}\n    destinations: [{transport: mem, topic: b}]\n    retry: {max_backoff: later}\n    dead_letter: none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Transports: []string{"mem"}, DefaultTransport: "mem", DefaultTopic: "events", Store: "sqlite", Routes: routes}
	_, err := Start(context.Background(), cfg, quietLog())
	if err == nil {
		t.Fatal("started with a bad routes file")
	}
	for _, want := range []string{routes, `route "orders"`, "retry.max_backoff"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestStartRefusesUnknownTransportInRoutes(t *testing.T) {
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte("routes:\n  - name: r\n    source: {transport: kafka, topic: o}\n    destinations: [{transport: mem, topic: b}]\n    dead_letter: none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Transports: []string{"mem"}, DefaultTransport: "mem", DefaultTopic: "events", Store: "sqlite", Routes: routes}
	_, err := Start(context.Background(), cfg, quietLog())
	if err == nil || !strings.Contains(err.Error(), `route "r": source.transport: transport "kafka" is not enabled`) {
		t.Fatalf("error %v, want it to name the route, the field and the transport", err)
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// hsSecret is the HS256 key of the test daemon.
const hsSecret = "0123456789abcdef0123456789abcdef"

// mintToken returns an HS256 token with scope, valid for an hour.
func mintToken(t *testing.T, scope string) string {
	t.Helper()
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "cli-test", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": scope,
	}).SignedString([]byte(hsSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startDaemon runs `auditbus serve` from bin on a free loopback port with
// the embedded store in a temporary directory and HS256 auth, and returns
// its base URL. The daemon is stopped with SIGTERM at cleanup and must exit 0.
func startDaemon(t *testing.T, bin string, env ...string) string {
	t.Helper()
	addr := freeAddr(t)
	routes := routesFile(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), append([]string{
		"AUDITBUS_LISTEN=" + addr, "AUDITBUS_DATA_DIR=" + t.TempDir(), "AUDITBUS_LOG_LEVEL=warn",
		"AUDITBUS_AUTH_HS256_SECRET=" + hsSecret, "AUDITBUS_ROUTES=" + routes,
	}, env...)...)
	var errOut syncBuffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			t.Errorf("auditbus serve after SIGTERM: %v\n%s", err, errOut.String())
		}
	})
	base := "http://" + addr
	waitFor(t, "auditbus serve to be ready", 30*time.Second, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("auditbus serve exited: %v\n%s", err, errOut.String())
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// TestAgainstDaemon publishes with the CLI to a real auditbus serve and
// finds the events again with auditbus query.
func TestAgainstDaemon(t *testing.T) {
	clearClientEnv(t)
	bin := buildBinary(t)
	base := startDaemon(t, bin)
	t.Setenv(envURL, base)

	// Without a token: 401, shown as the daemon sent it.
	_, stderr, code := runCLI(t, "", "publish", "--source", "/shop", "--type", "com.example.order.created")
	if code != 1 || !strings.Contains(stderr, "HTTP 401 Unauthorized") || !strings.Contains(stderr, `"code":"unauthorized"`) {
		t.Fatalf("no token: exit %d: %s", code, stderr)
	}
	// A token without events:write: 403.
	t.Setenv(envToken, mintToken(t, "audit:read"))
	if _, stderr, code = runCLI(t, "", "publish", "--source", "/shop", "--type", "t"); code != 1 || !strings.Contains(stderr, "HTTP 403 Forbidden") {
		t.Fatalf("no scope: exit %d: %s", code, stderr)
	}

	t.Setenv(envToken, mintToken(t, "events:write audit:read"))
	stdout, stderr, code := runCLI(t, "", "publish", "--source", "/shop", "--type", "com.example.order.created",
		"--subject", "7", "--ext", "region=eu", "--data", `{"total": 3}`, "--time", "2026-05-01T10:00:00Z")
	if code != 0 {
		t.Fatalf("publish: exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	lines, want := jsonLines(250)
	if stdout, stderr, code = runCLI(t, lines, "publish", "--route", "web", "-"); code != 0 || len(strings.Fields(stdout)) != 250 {
		t.Fatalf("publish 250 to route web: exit %d, %d ids: %s", code, len(strings.Fields(stdout)), stderr)
	}
	if _, stderr, code = runCLI(t, "", "publish", "--route", "nope", "--source", "/s", "--type", "t"); code != 1 || !strings.Contains(stderr, "HTTP 404 Not Found: {\"error\":{\"code\":\"unknown_route\"") {
		t.Errorf("unknown route: exit %d: %s", code, stderr)
	}

	// One event, every attribute, and its trail.
	stdout, stderr, code = runCLI(t, "", "query", "get", id)
	if code != 0 {
		t.Fatalf("query get: exit %d: %s", code, stderr)
	}
	var got struct {
		Event  map[string]any `json:"event"`
		Digest string         `json:"digest"`
		Trail  []struct {
			Kind, Transport, Topic, Principal string
		} `json:"trail"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("query get printed %q: %v", stdout, err)
	}
	e := got.Event
	if e["id"] != id || e["source"] != "/shop" || e["type"] != "com.example.order.created" || e["subject"] != "7" ||
		e["region"] != "eu" || e["time"] != "2026-05-01T10:00:00Z" || e["datacontenttype"] != "application/json" ||
		len(got.Trail) != 1 || got.Trail[0].Kind != "received" || got.Trail[0].Transport != "http" || got.Trail[0].Principal != "cli-test" {
		t.Errorf("query get: %s", stdout)
	}
	if _, stderr, code = runCLI(t, "", "query", "get", "no-such-id"); code != 3 || !strings.Contains(stderr, `"code":"not_found"`) {
		t.Errorf("query get missing: exit %d: %s", code, stderr)
	}

	// Every page of the batch's events, through the route.
	stdout, stderr, code = runCLI(t, "", "query", "--source", "/batch", "--route", "web", "--from", "-1h", "--limit", "40", "--all", "--output", "json")
	if code != 0 {
		t.Fatalf("query --all: exit %d: %s", code, stderr)
	}
	if n := strings.Count(stdout, "\n"); n != 250 {
		t.Errorf("query --all printed %d items, want 250: %s", n, stderr)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var it struct {
			Event struct{ ID string } `json:"event"`
			Trail []struct{ Kind, Route string }
		}
		_ = json.Unmarshal([]byte(l), &it)
		if len(it.Trail) != 2 || it.Trail[0].Kind != "received" || it.Trail[1].Kind != "delivered" || it.Trail[1].Route != "web" {
			t.Errorf("item %s: trail %+v, want received, then delivered by web", it.Event.ID, it.Trail)
			break
		}
		seen[it.Event.ID] = true
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("query --all misses %s", w)
			break
		}
	}
	// The table, newest first.
	stdout, _, code = runCLI(t, "", "query", "--type", "com.example.order.*", "--order", "desc")
	if rows := strings.Split(strings.TrimSpace(stdout), "\n"); code != 0 || len(rows) != 2 || !strings.HasPrefix(rows[0], "TIME") ||
		!strings.Contains(rows[1], "2026-05-01T10:00:00.000Z  com.example.order.created  /shop   "+id+"  "+got.Digest[7:19]+"  received") {
		t.Errorf("table: exit %d:\n%s", code, stdout)
	}
}

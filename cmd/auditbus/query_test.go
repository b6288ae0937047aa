package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// seed publishes n events through the CLI to d: ids q-0.., alternating
// types com.example.a and com.example.b.
func seed(t *testing.T, d *fakeDaemon, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"specversion":"1.0","id":"q-%d","source":"/src","type":"com.example.%c","time":"2026-05-01T10:00:%02dZ"}`+"\n", i, 'a'+i%2, i)
	}
	if _, stderr, code := runCLI(t, b.String(), "publish", "--url", d.URL, "-"); code != 0 {
		t.Fatalf("seed: exit %d: %s", code, stderr)
	}
}

func TestQueryTable(t *testing.T) {
	clearClientEnv(t)
	d := newFakeDaemon(t)
	seed(t, d, 3)
	stdout, stderr, code := runCLI(t, "", "query", "--url", d.URL, "--type", "com.example.*")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "" +
		"TIME                      TYPE           SOURCE  ID   DIGEST        TRAIL\n" +
		"2026-05-01T10:00:00.000Z  com.example.a  /src    q-0  0123456789ab  received, delivered\n" +
		"2026-05-01T10:00:01.000Z  com.example.b  /src    q-1  0123456789ab  received, delivered\n" +
		"2026-05-01T10:00:02.000Z  com.example.a  /src    q-2  0123456789ab  received, delivered\n"
	if stdout != want {
		t.Errorf("table:\n%s\nwant:\n%s", stdout, want)
	}
	if q := d.lastRequest().URL.Query(); q.Get("type") != "com.example.*" || len(q) != 1 {
		t.Errorf("query %v, want only type", q)
	}
	// Nothing matches: the header alone, and a note on stderr.
	stdout, stderr, code = runCLI(t, "", "query", "--url", d.URL, "--source", "/none")
	if code != 0 || stdout != "" || !strings.Contains(stderr, "no events match") {
		t.Errorf("no match: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
}

func TestQueryPages(t *testing.T) {
	clearClientEnv(t)
	d := newFakeDaemon(t)
	seed(t, d, 5)
	stdout, stderr, code := runCLI(t, "", "query", "--url", d.URL, "--limit", "2", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 2 || !strings.Contains(stderr, "--cursor 2") {
		t.Errorf("one page: %d lines, stderr %q; want 2 and the next cursor", len(lines), stderr)
	}
	stdout, stderr, code = runCLI(t, "", "query", "--url", d.URL, "--limit", "2", "--all", "--output", "json")
	if code != 0 {
		t.Fatalf("--all: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 5 {
		t.Fatalf("--all printed %d lines, want 5:\n%s", len(lines), stdout)
	}
	for i, l := range lines {
		var it struct {
			Event map[string]any   `json:"event"`
			Trail []map[string]any `json:"trail"`
		}
		if err := json.Unmarshal([]byte(l), &it); err != nil || it.Event["id"] != fmt.Sprintf("q-%d", i) || len(it.Trail) != 2 {
			t.Errorf("line %d: %s (%v)", i, l, err)
		}
	}
}

func TestQueryGet(t *testing.T) {
	clearClientEnv(t)
	d := newFakeDaemon(t)
	seed(t, d, 2)
	stdout, stderr, code := runCLI(t, "", "query", "get", "q-1", "--url", d.URL, "--source", "/src")
	if code != 0 || !strings.Contains(stdout, `"id":"q-1"`) || strings.Count(stdout, "\n") != 1 {
		t.Errorf("get: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if q := d.lastRequest(); q.URL.Path != "/v1/events/q-1" || q.URL.Query().Get("source") != "/src" {
		t.Errorf("get asked %s", q.URL)
	}
	stdout, _, code = runCLI(t, "", "query", "--url", d.URL, "get", "q-0", "--output", "table")
	if code != 0 || !strings.Contains(stdout, "q-0  0123456789ab  received, delivered\n") {
		t.Errorf("get --output table: exit %d stdout %q", code, stdout)
	}
	_, stderr, code = runCLI(t, "", "query", "get", "q-9", "--url", d.URL)
	if code != 3 || !strings.Contains(stderr, "HTTP 404 Not Found") || !strings.Contains(stderr, `"code":"not_found"`) {
		t.Errorf("missing: exit %d stderr %q; want 3 and the server's error", code, stderr)
	}
	for _, args := range [][]string{{"get"}, {"get", "a", "b"}, {"get", "a", "--type", "t"}, {"list"}, {"--trail", "--output", "json"}} {
		if _, stderr, code := runCLI(t, "", append([]string{"query", "--url", d.URL}, args...)...); code != 2 {
			t.Errorf("query %v: exit %d, want 2: %s", args, code, stderr)
		}
	}
}

// --trail prints each version's trail under it, an entry a line with the
// trace id it happened under and its signature result, and a conflicting version is marked.
func TestQueryTrail(t *testing.T) {
	clearClientEnv(t)
	d := newFakeDaemon(t)
	var b strings.Builder
	b.WriteString(`{"specversion":"1.0","id":"t-1","source":"/src","type":"com.example.t","time":"2026-05-01T10:00:00Z"}` + "\n")
	b.WriteString(`{"specversion":"1.0","id":"t-2c","source":"/src","type":"com.example.t"}` + "\n")
	if _, stderr, code := runCLI(t, b.String(), "publish", "--url", d.URL, "-"); code != 0 {
		t.Fatalf("seed: exit %d: %s", code, stderr)
	}
	stdout, stderr, code := runCLI(t, "", "query", "--url", d.URL, "--trail", "--outcome", "deadlettered", "--destination", "out",
		"--received-from", "2026-05-01T09:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "" +
		"TIME                      TYPE           SOURCE  ID   DIGEST        TRAIL\n" +
		"2026-05-01T10:00:00.000Z  com.example.t  /src    t-1  0123456789ab  received, delivered\n" +
		"  2026-05-01T10:00:00.000Z  received   -   -    -  -                                 unsigned  -\n" +
		"  2026-05-01T10:00:00.001Z  delivered  r1  out  1  4bf92f3577b34da6a3ce929d0e0e4736  -         -\n" +
		"2026-05-01T10:00:00.000Z  com.example.t  /src  t-2c  0123456789ab conflict  received, deadlettered, delivered\n" +
		"  2026-05-01T10:00:00.000Z  received      -   -    -  -                                 unsigned  -\n" +
		"  2026-05-01T10:00:00.001Z  deadlettered  r1  out  3  4bf92f3577b34da6a3ce929d0e0e4736  -         HTTP 503\n" +
		"  2026-05-01T10:00:00.002Z  delivered     r1  out  1  -                                 -         -\n"
	if stdout != want {
		t.Errorf("table:\n%s\nwant:\n%s", stdout, want)
	}
	if q := d.lastRequest().URL.Query(); q.Get("outcome") != "deadlettered" || q.Get("destination") != "out" ||
		q.Get("received_from") != "2026-05-01T09:00:00Z" {
		t.Errorf("query %v", q)
	}
}

func TestQueryParams(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f := queryFlags{filterFlags: filterFlags{from: "-1h30m", to: "now", typ: "a.*", source: "/s", subject: "42", id: "i", route: "r",
		destination: "d", outcome: "delivered", receivedFrom: "2026-05-01", receivedTo: "-1h"}, order: "desc", cursor: "c", limit: 10}
	q, err := f.params(now)
	if err != nil {
		t.Fatal(err)
	}
	want := "cursor=c&destination=d&from=2026-05-01T10%3A30%3A00Z&id=i&limit=10&order=desc&outcome=delivered&received_from=2026-05-01T00%3A00%3A00Z" +
		"&received_to=2026-05-01T11%3A00%3A00Z&route=r&source=%2Fs&subject=42&to=2026-05-01T12%3A00%3A00Z&type=a.%2A"
	if got := q.Encode(); got != want {
		t.Errorf("params %s\nwant %s", got, want)
	}
	for _, bad := range []queryFlags{{order: "up"}, {limit: -1}, {filterFlags: filterFlags{from: "-1x"}}, {filterFlags: filterFlags{to: "-ad"}},
		{filterFlags: filterFlags{from: "2026-13-01"}}, {filterFlags: filterFlags{receivedTo: "later"}}} {
		if _, err := bad.params(now); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Time{
		"now":                          now,
		"-1h":                          now.Add(-time.Hour),
		"+30m":                         now.Add(30 * time.Minute),
		"-7d":                          time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC),
		"2026-05-01":                   time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
		"2026-05-01T10:00:00.25+02:00": time.Date(2026, 5, 1, 8, 0, 0, 25e7, time.UTC),
	}
	for in, want := range cases {
		got, err := parseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestQueryServerError(t *testing.T) {
	clearClientEnv(t)
	d := newFakeDaemon(t)
	d.requireToken("right")
	_, stderr, code := runCLI(t, "", "query", "--url", d.URL, "--token", "wrong")
	if code != 1 || !strings.Contains(stderr, `HTTP 401 Unauthorized: {"error":{"code":"unauthorized"`) || !strings.Contains(stderr, "--token or AUDITBUS_TOKEN") {
		t.Errorf("exit %d stderr %q", code, stderr)
	}
	t.Setenv(envToken, "right")
	if _, stderr, code := runCLI(t, "", "query", "--url", d.URL); code != 0 {
		t.Errorf("token from %s: exit %d: %s", envToken, code, stderr)
	}
}

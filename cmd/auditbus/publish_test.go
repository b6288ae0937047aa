package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestPublishOneEventFromFlags(t *testing.T) {
	clearClientEnv(t)
	d := newFakeDaemon(t)
	stdout, stderr, code := runCLI(t, "", "publish", "--url", d.URL, "--topic", "orders",
		"--source", "/orders", "--type", "com.example.order.created", "--subject", "42",
		"--data", `{"total": 9.5}`, "--ext", "partitionkey=42", "--ext", "tenant=acme",
		"--time", "2026-05-01T10:00:00.5Z", "--dataschema", "https://example.com/order.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		t.Fatalf("printed %q, want a UUIDv7 (%v)", stdout, err)
	}
	got := d.received()
	if len(got) != 1 {
		t.Fatalf("daemon received %d events, want 1", len(got))
	}
	e := got[0]
	if e.ID() != id || e.Source() != "/orders" || e.Type() != "com.example.order.created" || e.Subject() != "42" ||
		e.DataContentType() != "application/json" || string(e.Data()) != `{"total": 9.5}` ||
		!e.Time().Equal(time.Date(2026, 5, 1, 10, 0, 0, 5e8, time.UTC)) || e.DataSchema() != "https://example.com/order.json" ||
		e.Extensions()["partitionkey"] != "42" || e.Extensions()["tenant"] != "acme" {
		t.Errorf("daemon received %v", e)
	}
	req := d.lastRequest()
	if req.Header.Get("Ce-Id") != id || req.URL.Query().Get("topic") != "orders" || req.Header.Get("Authorization") != "" {
		t.Errorf("request: headers %v, query %q; want binary mode with ce-id %s and topic=orders, no token", req.Header, req.URL.RawQuery, id)
	}
}

func TestPublishDataContentType(t *testing.T) {
	clearClientEnv(t)
	d := newFakeDaemon(t)
	bin := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(bin, []byte{0, 1, 2, 0xff}, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		ct   string
		data string
	}{
		{[]string{"--data", "hello"}, "text/plain; charset=utf-8", "hello"},
		{[]string{"--data", "[1,2]"}, "application/json", "[1,2]"},
		{[]string{"--data-file", bin}, "application/octet-stream", "\x00\x01\x02\xff"},
		{[]string{"--data", "a,b", "--datacontenttype", "text/csv"}, "text/csv", "a,b"},
		{nil, "", ""},
	}
	for i, c := range cases {
		args := append([]string{"publish", "--url", d.URL, "--source", "/s", "--type", "t", "--id", fmt.Sprint(i)}, c.args...)
		if _, stderr, code := runCLI(t, "", args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, stderr)
		}
		e := d.received()[i]
		if e.DataContentType() != c.ct || string(e.Data()) != c.data {
			t.Errorf("%v: datacontenttype %q data %q, want %q %q", c.args, e.DataContentType(), e.Data(), c.ct, c.data)
		}
	}
	// --data-file - reads stdin.
	if _, stderr, code := runCLI(t, "from stdin", "publish", "--url", d.URL, "--source", "/s", "--type", "t", "--data-file", "-"); code != 0 {
		t.Fatalf("--data-file -: exit %d: %s", code, stderr)
	}
	if got := d.received(); string(got[len(got)-1].Data()) != "from stdin" {
		t.Errorf("--data-file -: data %q", got[len(got)-1].Data())
	}
}

// jsonLines returns n structured events, one a line.
func jsonLines(n int) (string, []string) {
	var b strings.Builder
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("ev-%03d", i)
		fmt.Fprintf(&b, `{"specversion":"1.0","id":%q,"source":"/batch","type":"com.example.n","data":{"n":%d}}`+"\n", ids[i], i)
	}
	return b.String(), ids
}

func TestPublishFileInBatches(t *testing.T) {
	clearClientEnv(t)
	d := newFakeDaemon(t)
	d.requireToken("tok")
	t.Setenv(envToken, "tok")
	lines, ids := jsonLines(250)
	file := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(file, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "", "publish", "--url", d.URL, "--route", "billing", "--file", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := strings.Fields(stdout); strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("printed %d ids, want the 250 in order", len(got))
	}
	if !strings.Contains(stderr, "250 events accepted") {
		t.Errorf("stderr %q, want the count", stderr)
	}
	got := d.received()
	if len(got) != 250 || got[249].ID() != "ev-249" || string(got[7].Data()) != `{"n":7}` {
		t.Fatalf("daemon received %d events", len(got))
	}
	d.mu.Lock()
	posts := d.posts
	ct := d.requests[len(d.requests)-1].Header.Get("Content-Type")
	route := d.requests[len(d.requests)-1].URL.Query().Get("route")
	d.mu.Unlock()
	if posts != 3 || ct != "application/cloudevents-batch+json" || route != "billing" {
		t.Errorf("%d requests, last Content-Type %q route %q; want 3 batches of at most 100 to route billing", posts, ct, route)
	}
}

func TestPublishStdinArray(t *testing.T) {
	clearClientEnv(t)
	d := newFakeDaemon(t)
	in := ` [ {"specversion":"1.0","id":"a","source":"/x","type":"t"},
	{"specversion":"1.0","source":"/x","type":"t","datacontenttype":"text/plain","data":"no id"} ]`
	stdout, stderr, code := runCLI(t, in, "publish", "--url", d.URL, "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ids := strings.Fields(stdout)
	if len(ids) != 2 || ids[0] != "a" {
		t.Fatalf("printed %q", stdout)
	}
	if u, err := uuid.Parse(ids[1]); err != nil || u.Version() != 7 {
		t.Errorf("the event without an id got %q, want a UUIDv7", ids[1])
	}
	if got := d.received(); len(got) != 2 || string(got[1].Data()) != "no id" {
		t.Errorf("daemon received %v", got)
	}
}

func TestPublishRefusedMidway(t *testing.T) {
	clearClientEnv(t)
	d := newFakeDaemon(t)
	d.refusePost(2, "test_refusal")
	lines, ids := jsonLines(30)
	stdout, stderr, code := runCLI(t, lines, "publish", "--url", d.URL, "--batch", "10", "-")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	if got := strings.Fields(stdout); strings.Join(got, ",") != strings.Join(ids[:10], ",") {
		t.Errorf("printed %v, want the 10 ids of the first request", got)
	}
	for _, want := range []string{"HTTP 400 Bad Request", `{"error":{"code":"test_refusal","message":"refused by the test"}}`, "10 events were accepted before"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q, want %q", stderr, want)
		}
	}
}

func TestPublishBadInput(t *testing.T) {
	clearClientEnv(t)
	d := newFakeDaemon(t)
	cases := []struct{ name, in, want string }{
		{"missing type", `{"specversion":"1.0","id":"1","source":"/x","type":"t"}` + "\n" + `{"specversion":"1.0","id":"2","source":"/x"}`, "stdin: event 2: check"},
		{"not JSON", `{"specversion":"1.0","id":"1","source":"/x","type":"t"} nope`, "stdin: event 2: read JSON"},
		{"not an object", `[1]`, "stdin: event 1: decode: want a JSON object"},
		{"open array", `[{"specversion":"1.0","id":"1","source":"/x","type":"t"}`, "the JSON array is not closed"},
		{"old specversion", `{"specversion":"0.3","id":"1","source":"/x","type":"t"}`, "event 1"},
		{"empty", "  \n", "the input holds no events"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, c.in, "publish", "--url", d.URL, "-")
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, c.want)
			}
		})
	}
	if n := len(d.received()); n != 0 {
		t.Errorf("the daemon received %d events from bad input, want 0 (the batch holding a bad event is not sent)", n)
	}
}

func TestPublishUsageErrors(t *testing.T) {
	clearClientEnv(t)
	one := []string{"--source", "/a", "--type", "t"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--data", "x", "--data-file", "f"}, "--data and --data-file"},
		{[]string{"--topic", "a", "--route", "b"}, "--topic and --route"},
		{[]string{"--ext", "novalue"}, `--ext "novalue": want name=value`},
		{[]string{"--ext", "Upper=x"}, "lower-case"},
		{[]string{"--ext", "id=x"}, `--ext "id=x"`},
		{[]string{"--time", "May 1st"}, "--time"},
		{[]string{"--dataschema", "relative/path"}, "--dataschema"},
		{[]string{"--batch", "0"}, "--batch 0"},
		{[]string{"--transport", "kafka"}, "--topic is required with --transport kafka"},
		{[]string{"--transport", "kafka", "--topic", "t", "--route", "r"}, "--route names a route of the daemon"},
		{[]string{"--transport", "amqp", "--topic", "t", "--url", "http://x"}, "--url is for the daemon"},
		{[]string{"--transport", "nats", "--topic", "t"}, `--transport "nats": want kafka or amqp`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		_, stderr, code := runCLI(t, "", append(append([]string{"publish"}, one...), c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("publish %v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	if _, stderr, code := runCLI(t, "", "publish", "--file", "-", "--type", "t"); code != 2 || !strings.Contains(stderr, "--type describes one event") {
		t.Errorf("--file with --type: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := runCLI(t, "", "publish", "--file", filepath.Join(t.TempDir(), "missing")); code != 2 || !strings.Contains(stderr, "--file") {
		t.Errorf("missing --file: exit %d, stderr %q", code, stderr)
	}
}

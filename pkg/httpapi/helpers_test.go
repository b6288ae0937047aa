package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/auth"
	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// secret is the HS256 key of the test servers; otherSecret signs tokens
// they must refuse.
var (
	secret      = []byte("0123456789abcdef0123456789abcdef")
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
)

// token mints an HS256 token for subject svc-test with scope, valid for
// ttl (negative: expired).
func token(t testing.TB, key []byte, scope string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"sub": "svc-test", "iat": now.Add(-time.Hour).Unix(), "exp": now.Add(ttl).Unix(), "scope": scope}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return s
}

// collector keeps what a mem subscription receives.
type collector struct {
	mu     sync.Mutex
	events []bus.Event
	traces []bus.TraceContext // each event's hop context
}

func (c *collector) handle(_ context.Context, msgs []bus.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.events = append(c.events, m.Event.Clone())
		c.traces = append(c.traces, m.Trace)
	}
	return nil
}

// trace is the hop context of the i-th event received.
func (c *collector) trace(i int) bus.TraceContext {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.traces[i]
}

func (c *collector) snapshot() []bus.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.Event(nil), c.events...)
}

// waitFor polls until c holds n events.
func (c *collector) waitFor(t *testing.T, n int) []bus.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := c.snapshot()
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscriber has %d events, want %d", len(evs), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func subscribe(t testing.TB, tr bus.Transport, topic string) *collector {
	t.Helper()
	c := &collector{}
	sub, err := tr.Subscribe(context.Background(), topic, "test-"+topic, c.handle, bus.SubscribeConfig{})
	if err != nil {
		t.Fatalf("subscribe to %q: %v", topic, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return c
}

// env is a server on real parts: a SQLite store in a temporary directory,
// a sinks.Writer, the mem transport with a subscriber on "events", HS256
// auth and a registry of its own.
type env struct {
	api    *httpapi.Server
	srv    *httptest.Server
	store  *sqlite.Store
	writer *sinks.Writer
	mem    *mem.Transport
	events *collector // what reached the topic "events"
	reg    *prometheus.Registry
	logs   *syncBuffer

	write, read string // tokens with events:write and audit:read
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts an env; edit changes the options before New.
func newEnv(t testing.TB, edit ...func(*httpapi.Options)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	e := &env{store: store, mem: mem.New(), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	e.writer = sinks.NewWriter(store, sinks.WriterOptions{MaxAge: time.Millisecond})
	t.Cleanup(func() {
		_ = e.mem.Close()
		_ = e.writer.Close()
		_ = e.store.Close()
	})
	e.events = subscribe(t, e.mem, "events")
	v, err := auth.New(auth.Config{Keys: []auth.Key{{Material: secret, Origin: "test"}}})
	if err != nil {
		t.Fatal(err)
	}
	o := httpapi.Options{
		Verifier: v, Store: store, Audit: e.writer, Transport: e.mem, TransportName: "mem",
		MaxBodyBytes: 64 << 10, Gatherer: e.reg, Registerer: e.reg,
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)),
	}
	for _, f := range edit {
		f(&o)
	}
	if e.api, err = httpapi.New(o); err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(e.srv.Close)
	e.write = token(t, secret, auth.ScopeEventsWrite, time.Hour)
	e.read = token(t, secret, auth.ScopeAuditRead, time.Hour)
	return e
}

// req is one request to an env.
type req struct {
	method, path string
	token        string
	header       map[string]string
	body         string
}

// resp is an answer, body read.
type resp struct {
	status int
	header http.Header
	body   []byte
	close  bool // the server closes the connection
}

func (e *env) do(t *testing.T, r req) resp {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	if r.path == "" {
		r.path = "/v1/events"
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	res, err := e.srv.Client().Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b, close: res.Close}
}

// apiError is the JSON error body.
type apiError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Attribute string `json:"attribute"`
		Index     *int   `json:"index"`
	} `json:"error"`
}

// wantError checks an error answer's status and code and returns its body.
func wantError(t *testing.T, r resp, status int, code string) apiError {
	t.Helper()
	var b apiError
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("status %d, body %q is not the JSON error shape: %v", r.status, r.body, err)
	}
	if r.status != status || b.Error.Code != code {
		t.Fatalf("got %d %q (%s), want %d %q", r.status, b.Error.Code, b.Error.Message, status, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if b.Error.Message == "" {
		t.Error("the error has no message")
	}
	return b
}

// post sends events as binary, structured or batch and wants 202.
func (e *env) post(t *testing.T, r req, n int) {
	t.Helper()
	r.method = http.MethodPost
	if r.token == "" {
		r.token = e.write
	}
	got := e.do(t, r)
	var body struct {
		Accepted int `json:"accepted"`
	}
	if got.status != http.StatusAccepted || json.Unmarshal(got.body, &body) != nil || body.Accepted != n {
		t.Fatalf("POST %s: %d %s, want 202 {\"accepted\":%d}", r.path, got.status, got.body, n)
	}
}

// item is one event version of a query answer, the event kept raw.
type item struct {
	Event    json.RawMessage     `json:"event"`
	Digest   string              `json:"digest"`
	Conflict bool                `json:"conflict"`
	Trail    []httpapi.JSONEntry `json:"trail"`
}

type page struct {
	Items []item `json:"items"`
	Next  string `json:"next"`
}

// query GETs path and decodes the page.
func (e *env) query(t *testing.T, path string) page {
	t.Helper()
	r := e.do(t, req{path: path, token: e.read})
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	var p page
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, r.body)
	}
	return p
}

// decodeEvent reads an item's event with the CloudEvents SDK.
func decodeEvent(t *testing.T, raw json.RawMessage) event.Event {
	t.Helper()
	e := event.New()
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("the SDK cannot read the event %s: %v", raw, err)
	}
	return e
}

// storedCount is how many versions the store holds.
func (e *env) storedCount(t *testing.T) int {
	t.Helper()
	n := 0
	err := sinks.PageAll(context.Background(), e.store, sinks.Query{Limit: sinks.MaxLimit, NoTrail: true}, func(items []sinks.Item) error {
		n += len(items)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/apierror"
	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/cloudevents/sdk-go/v2/event"
)

// fakeDaemon answers the daemon's documented HTTP contract, minimally, for
// the unit tests of parsing and printing: POST /v1/events decodes with the
// real pkg/cehttp and keeps the events in memory; GET /v1/events pages
// through them with an offset cursor; GET /v1/events/{id} finds every
// event of that id.
type fakeDaemon struct {
	*httptest.Server

	mu       sync.Mutex
	token    string // required bearer token, if set
	events   []event.Event
	requests []*http.Request // every request, with its body consumed
	refuse   map[int]string  // POST number (1-based) -> error code to answer 400 with
	posts    int
}

func newFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{refuse: map[int]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", d.ingest)
	mux.HandleFunc("GET /v1/events", d.query)
	mux.HandleFunc("GET /v1/events/{id}", d.get)
	d.Server = httptest.NewServer(d.auth(mux))
	t.Cleanup(d.Close)
	return d
}

func (d *fakeDaemon) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.requests = append(d.requests, r)
		token := d.token
		d.mu.Unlock()
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", "Bearer")
			apierror.Write(w, http.StatusUnauthorized, "unauthorized", "no valid bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (d *fakeDaemon) ingest(w http.ResponseWriter, r *http.Request) {
	events, err := cehttp.Decode(r, 4<<20)
	if err != nil {
		ce := err.(*cehttp.Error)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ce.Status)
		b, _ := json.Marshal(map[string]any{"error": ce})
		_, _ = w.Write(b)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.posts++
	if code, ok := d.refuse[d.posts]; ok {
		apierror.Write(w, http.StatusBadRequest, code, "refused by the test")
		return
	}
	d.events = append(d.events, events...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"accepted":` + strconv.Itoa(len(events)) + `}`))
}

// item is one event version of the contract: the events whose id ends
// in "c" stand for a conflicting version, their trail holds a dead-lettered
// entry.
func item(e event.Event) map[string]any {
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	trail := []map[string]any{
		{"log": "fake", "seq": 1, "time": at, "kind": "received", "transport": "http", "principal": "svc", "signature": "unsigned"},
		{"log": "fake", "seq": 2, "time": at.Add(time.Millisecond), "kind": "delivered", "route": "r1", "destination": "out", "attempts": 1,
			"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"},
	}
	conflict := strings.HasSuffix(e.ID(), "c")
	if conflict {
		trail[1]["kind"], trail[1]["attempts"], trail[1]["error"] = "deadlettered", 3, "HTTP 503"
		trail = append(trail, map[string]any{"log": "fake", "seq": 3, "time": at.Add(2 * time.Millisecond), "kind": "delivered",
			"route": "r1", "destination": "out", "attempts": 1, "replay": "job-1"})
	}
	return map[string]any{"event": e, "digest": "sha256:" + strings.Repeat("0123456789abcdef", 4), "conflict": conflict, "trail": trail}
}

func (d *fakeDaemon) query(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "from", "to", "type", "source", "subject", "id", "route", "destination", "outcome", "received_from", "received_to",
			"limit", "order", "cursor":
		default:
			apierror.Write(w, http.StatusBadRequest, "unknown_parameter", "unknown query parameter "+strconv.Quote(k))
			return
		}
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	start, _ := strconv.Atoi(q.Get("cursor"))
	d.mu.Lock()
	var match []event.Event
	for _, e := range d.events {
		typ := q.Get("type")
		if p, ok := strings.CutSuffix(typ, "*"); ok && !strings.HasPrefix(e.Type(), p) || !ok && typ != "" && e.Type() != typ {
			continue
		}
		if s := q.Get("source"); s != "" && e.Source() != s {
			continue
		}
		match = append(match, e)
	}
	d.mu.Unlock()
	page := map[string]any{}
	items := []any{}
	end := min(start+limit, len(match))
	for _, e := range match[min(start, end):end] {
		items = append(items, item(e))
	}
	page["items"] = items
	if end < len(match) {
		page["next"] = strconv.Itoa(end)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(page)
}

func (d *fakeDaemon) get(w http.ResponseWriter, r *http.Request) {
	id, source := r.PathValue("id"), r.URL.Query().Get("source")
	d.mu.Lock()
	defer d.mu.Unlock()
	items := []any{}
	for _, e := range d.events {
		if e.ID() == id && (source == "" || e.Source() == source) {
			items = append(items, item(e))
		}
	}
	if len(items) == 0 {
		apierror.Write(w, http.StatusNotFound, "not_found", "no event with id "+strconv.Quote(id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
}

// received returns a copy of the events the daemon took in.
func (d *fakeDaemon) received() []event.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]event.Event(nil), d.events...)
}

// lastRequest is the last request the daemon answered.
func (d *fakeDaemon) lastRequest() *http.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests[len(d.requests)-1]
}

// requireToken makes the daemon refuse requests without this bearer token.
func (d *fakeDaemon) requireToken(token string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.token = token
}

// refusePost makes the daemon refuse its n-th POST (1-based) with code.
func (d *fakeDaemon) refusePost(n int, code string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refuse[n] = code
}

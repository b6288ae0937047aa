package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/sinks"
)

// version is the one version the store holds of (source, id).
func (e *env) version(t *testing.T, source, id string) sinks.Item {
	t.Helper()
	items, err := e.store.Get(context.Background(), source, id)
	if err != nil {
		t.Fatalf("get %s %s: %v", source, id, err)
	}
	if len(items) != 1 {
		t.Fatalf("%s %s: %d versions, want 1", source, id, len(items))
	}
	return items[0]
}

// checkReceived wants trail to be one received entry of POST
// /v1/events?topic=topic by principal, and returns it.
func checkReceived(t *testing.T, trail []sinks.Entry, topic, principal string) sinks.Entry {
	t.Helper()
	if len(trail) != 1 {
		t.Fatalf("trail %+v, want one received entry", trail)
	}
	en := trail[0]
	if en.Kind != sinks.KindReceived || en.Transport != httpapi.TransportHTTP || en.Topic != topic || en.Principal != principal ||
		en.Route != "" || en.Destination != "" || len(en.Request) != 32 || strings.Trim(en.Request, "0123456789abcdef") != "" {
		t.Errorf("entry %+v, want received over http for topic %q by %q with a 128-bit hex request id", en, topic, principal)
	}
	if en.Time.IsZero() || en.Log == "" || en.Seq == 0 {
		t.Errorf("entry %+v has no time or position", en)
	}
	return en
}

// Every event of one request is received by that request, at its position
// in it; the same event in another request is received again.
func TestIngestRecordsTheRequest(t *testing.T) {
	e := newEnv(t)
	batch := req{path: "/v1/events?topic=events", header: map[string]string{"Content-Type": "application/cloudevents-batch+json"},
		body: `[{"specversion":"1.0","id":"r-1","source":"/req","type":"t"},{"specversion":"1.0","id":"r-2","source":"/req","type":"t"}]`}
	before := time.Now()
	e.post(t, batch, 2)
	first := checkReceived(t, e.version(t, "/req", "r-1").Trail, "events", "svc-test")
	second := checkReceived(t, e.version(t, "/req", "r-2").Trail, "events", "svc-test")
	if first.Request != second.Request || first.Offset != 0 || second.Offset != 1 {
		t.Errorf("entries %+v and %+v, want one request, offsets 0 and 1", first, second)
	}
	if first.Time.Before(before.Add(-time.Second)) {
		t.Errorf("received at %s, before the request was sent (%s)", first.Time, before)
	}

	e.post(t, batch, 2)
	trail := e.version(t, "/req", "r-1").Trail
	if len(trail) != 2 || trail[0].Request == trail[1].Request || trail[0].Key() == trail[1].Key() {
		t.Fatalf("after a second request, r-1's trail is %+v, want two receptions", trail)
	}
}

// With authentication off, the principal is "anonymous".
func TestIngestWithoutAuthIsAnonymous(t *testing.T) {
	e := newEnv(t, func(o *httpapi.Options) { o.Verifier = nil })
	r := e.do(t, req{method: http.MethodPost, header: structured, body: `{"specversion":"1.0","id":"a-1","source":"/anon","type":"t"}`})
	if r.status != http.StatusAccepted {
		t.Fatalf("POST without a token and without auth: %d %s", r.status, r.body)
	}
	checkReceived(t, e.version(t, "/anon", "a-1").Trail, "events", httpapi.Anonymous)
}

// The same source and id with other content is accepted: both versions are
// kept, the later one flagged as a conflict, each with its reception.
func TestIngestConflictIsAccepted(t *testing.T) {
	e := newEnv(t)
	post := func(data, at string) {
		h := map[string]string{"ce-specversion": "1.0", "ce-id": "p-1", "ce-source": "/bank", "ce-type": "com.example.transfer",
			"Content-Type": "application/json"}
		if at != "" {
			h["ce-time"] = at
		}
		e.post(t, req{header: h, body: data}, 1)
	}
	post(`{"amount":100,"to":"alice"}`, "")
	post(`{"amount":999999,"to":"mallory"}`, "2020-01-01T00:00:00Z")
	items, err := e.store.Get(context.Background(), "/bank", "p-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Conflict || !items[1].Conflict || items[0].Digest == items[1].Digest {
		t.Fatalf("versions %+v, want the first kept and the second beside it, flagged", items)
	}
	if string(items[1].Event.Data()) != `{"amount":999999,"to":"mallory"}` || items[1].Time.Year() != 2020 {
		t.Errorf("second version: %s at %s", items[1].Event.Data(), items[1].Time)
	}
	for _, it := range items {
		en := checkReceived(t, it.Trail, "events", "svc-test")
		if time.Since(en.Time) > time.Hour {
			t.Errorf("received at %s: the entry's time is the server's, not the event's", en.Time)
		}
	}
}

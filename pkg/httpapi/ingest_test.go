package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// binaryData is not UTF-8, so only data_base64 can carry it in JSON.
var binaryData = []byte{0x00, 0xff, 0xfe, 0x80, 'a', '"', 0x7f, 0xc3}

// sent is an event as a test sent it, to compare with what comes back.
type sent struct {
	id, source, typ, subject, ct, schema, time string
	ext                                        map[string]string
	data                                       []byte
}

// check compares an event read back with what was sent: every attribute,
// every extension, and the data bit for bit.
func (s sent) check(t *testing.T, got event.Event) {
	t.Helper()
	attrs := []struct{ name, got, want string }{
		{"specversion", got.SpecVersion(), "1.0"}, {"id", got.ID(), s.id}, {"source", got.Source(), s.source},
		{"type", got.Type(), s.typ}, {"subject", got.Subject(), s.subject}, {"datacontenttype", got.DataContentType(), s.ct},
		{"dataschema", got.DataSchema(), s.schema},
	}
	for _, a := range attrs {
		if a.got != a.want {
			t.Errorf("event %q: %s %q, want %q", s.id, a.name, a.got, a.want)
		}
	}
	if s.time != "" {
		want, _ := time.Parse(time.RFC3339Nano, s.time)
		if !got.Time().Equal(want) {
			t.Errorf("event %q: time %s, want %s", s.id, got.Time(), want)
		}
	}
	ext := got.Extensions()
	if len(ext) != len(s.ext) {
		t.Errorf("event %q: extensions %v, want %v", s.id, ext, s.ext)
	}
	for k, v := range s.ext {
		if g := fmt.Sprint(ext[k]); g != v {
			t.Errorf("event %q: extension %s %q, want %q", s.id, k, g, v)
		}
	}
	if !bytes.Equal(got.Data(), s.data) {
		t.Errorf("event %q: data %q, want %q", s.id, got.Data(), s.data)
	}
}

// Binary, structured and batch POSTs answer 202; the events reach the
// topic and come back from GET /v1/events with every attribute and their
// data bit for bit.
func TestIngestAndQuery(t *testing.T) {
	e := newEnv(t)
	const typ = "com.example.test.roundtrip"
	want := map[string]sent{}

	// Binary mode, every attribute, data that is not UTF-8.
	b := sent{id: "bin-1", source: "/tests/binary", typ: typ, subject: "orders/42", ct: "application/octet-stream",
		schema: "https://schemas.example.com/bin", time: "2025-03-04T05:06:07.123456789Z",
		ext: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "region": "eu"}, data: binaryData}
	want[b.id] = b
	e.post(t, req{header: map[string]string{
		"ce-specversion": "1.0", "ce-id": b.id, "ce-source": b.source, "ce-type": b.typ, "ce-subject": b.subject,
		"ce-dataschema": b.schema, "ce-time": b.time, "ce-traceparent": b.ext["traceparent"], "ce-region": "eu",
		"Content-Type": b.ct,
	}, body: string(b.data)}, 1)

	// Binary mode, JSON data with whitespace and characters HTML escaping
	// would change: it must come back exactly.
	j := sent{id: "bin-2", source: "/tests/binary", typ: typ, ct: "application/json", data: []byte(`{"total": 12, "note": "<a & b>"}`)}
	want[j.id] = j
	e.post(t, req{header: map[string]string{"ce-specversion": "1.0", "ce-id": j.id, "ce-source": j.source, "ce-type": j.typ,
		"Content-Type": j.ct}, body: string(j.data)}, 1)

	// Structured mode, text data and a numeric extension.
	s := sent{id: "str-1", source: "/tests/structured", typ: typ, subject: "s", ct: "text/plain; charset=utf-8",
		time: "2025-03-04T05:06:08Z", ext: map[string]string{"seq": "7"}, data: []byte("héllo\n\t\"world\" \u2028<>")}
	want[s.id] = s
	body, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": s.id, "source": s.source, "type": s.typ,
		"subject": s.subject, "datacontenttype": s.ct, "time": s.time, "seq": 7, "data": string(s.data)})
	e.post(t, req{header: structured, body: string(body)}, 1)

	// A batch: JSON data, base64 data, no data.
	batch := []sent{
		{id: "bat-1", source: "/tests/batch", typ: typ, ct: "application/json", data: []byte(`[1,2,{"a":null}]`)},
		{id: "bat-2", source: "/tests/batch", typ: typ, ct: "image/png", data: []byte{0x89, 'P', 'N', 'G', 0, 1, 2}},
		{id: "bat-3", source: "/tests/batch", typ: typ},
	}
	var elems []string
	for _, x := range batch {
		want[x.id] = x
		m := map[string]any{"specversion": "1.0", "id": x.id, "source": x.source, "type": x.typ}
		switch x.ct {
		case "application/json":
			m["datacontenttype"], m["data"] = x.ct, json.RawMessage(x.data)
		case "image/png":
			m["datacontenttype"], m["data_base64"] = x.ct, base64.StdEncoding.EncodeToString(x.data)
		}
		el, _ := json.Marshal(m)
		elems = append(elems, string(el))
	}
	e.post(t, req{header: map[string]string{"Content-Type": "application/cloudevents-batch+json"}, body: "[" + strings.Join(elems, ",") + "]"}, 3)

	// An empty batch is accepted and changes nothing.
	e.post(t, req{header: map[string]string{"Content-Type": "application/cloudevents-batch+json"}, body: "[]"}, 0)

	// Every event reached the topic, unchanged.
	for _, ev := range e.events.waitFor(t, len(want)) {
		want[ev.ID()].check(t, ev)
	}

	// And comes back from the audit query.
	p := e.query(t, "/v1/events?type="+typ)
	if len(p.Items) != len(want) || p.Next != "" {
		t.Fatalf("query: %d items (next %q), want %d and no next", len(p.Items), p.Next, len(want))
	}
	for _, it := range p.Items {
		ev := decodeEvent(t, it.Event)
		w, ok := want[ev.ID()]
		if !ok {
			t.Fatalf("query returned an unknown event %s", it.Event)
		}
		w.check(t, ev)
		stored := e.version(t, ev.Source(), ev.ID())
		checkReceived(t, stored.Trail, "events", "svc-test")
		// The event is written the way the SDK writes it: the same bytes
		// as json.Marshal of the stored event (which also compacts and
		// escapes HTML), except that data that is not UTF-8 goes in
		// data_base64.
		if w.id == b.id {
			if !bytes.Contains(it.Event, []byte(`"data_base64":"`+base64.StdEncoding.EncodeToString(binaryData)+`"`)) {
				t.Errorf("binary data not in data_base64: %s", it.Event)
			}
			continue
		}
		sdk, err := json.Marshal(stored.Event)
		if err != nil {
			t.Fatal(err)
		}
		var ours bytes.Buffer
		if err := json.Compact(&ours, it.Event); err != nil {
			t.Fatal(err)
		}
		var escaped bytes.Buffer
		json.HTMLEscape(&escaped, ours.Bytes())
		if !bytes.Equal(escaped.Bytes(), sdk) {
			t.Errorf("event %q:\n ours %s\n sdk  %s", w.id, it.Event, sdk)
		}
	}

	// The accepted writes are logged with the token's subject.
	if logs := e.logs.String(); strings.Count(logs, `"msg":"events accepted"`) != 5 || !strings.Contains(logs, `"subject":"svc-test"`) {
		t.Errorf("logs lack the accepted writes with their subject:\n%s", logs)
	}
}

// ?route= runs the events through an HTTP-fed route: the route delivers
// them and audits them with its name and outcome.
func TestIngestRoute(t *testing.T) {
	routes, err := router.ParseRoutes("routes.yaml", []byte(`
routes:
  - name: web
    source: {http: true}
    filter: {prefix: {type: com.example.keep}}
    destinations: [{transport: mem, topic: out}]
    dead_letter: none
`))
	if err != nil {
		t.Fatal(err)
	}
	var rt *router.Router
	e := newEnv(t, func(o *httpapi.Options) {
		var err error
		rt, err = router.New(routes, router.Options{Transports: map[string]bus.Transport{"mem": o.Transport}, Audit: o.Audit})
		if err != nil {
			t.Fatal(err)
		}
		o.Router = rt
	})
	out := subscribe(t, e.mem, "out")
	e.post(t, req{path: "/v1/events?route=web", header: map[string]string{"Content-Type": "application/cloudevents-batch+json"},
		body: `[{"specversion":"1.0","id":"k","source":"/r","type":"com.example.keep"},{"specversion":"1.0","id":"d","source":"/r","type":"com.example.drop"}]`}, 2)
	if got := out.waitFor(t, 1); len(got) != 1 || got[0].ID() != "k" {
		t.Fatalf("destination got %v", got)
	}
	// The route records the reception (over HTTP, by the request and its
	// subject) and what it did.
	for id, outcome := range map[string]string{"k": sinks.KindDelivered, "d": sinks.KindFiltered} {
		trail := e.version(t, "/r", id).Trail
		if len(trail) != 2 {
			t.Fatalf("%s: trail %+v, want received and %s", id, trail, outcome)
		}
		for _, en := range trail {
			if en.Route != "web" || en.Transport != "http" || en.Topic != "" || len(en.Request) != 32 || en.Request != trail[0].Request {
				t.Errorf("%s: entry %+v", id, en)
			}
		}
		if trail[0].Kind != sinks.KindReceived || trail[0].Principal != "svc-test" || trail[1].Kind != outcome {
			t.Errorf("%s: trail %+v, want received by svc-test, then %s", id, trail, outcome)
		}
	}
	b := wantError(t, e.do(t, req{method: "POST", path: "/v1/events?route=nope", token: e.write, header: structured,
		body: `{"specversion":"1.0","id":"x","source":"/r","type":"t"}`}), http.StatusNotFound, "unknown_route")
	if !strings.Contains(b.Error.Message, `"web"`) {
		t.Errorf("unknown_route does not list the HTTP-fed routes: %s", b.Error.Message)
	}
	if len(e.events.snapshot()) != 0 {
		t.Error("route ingest published to the default topic")
	}
}

// A transport or audit store that fails gets 503 unavailable with
// Retry-After, never a 202.
func TestIngestUnavailable(t *testing.T) {
	ev := `{"specversion":"1.0","id":"u","source":"/u","type":"com.example.u"}`

	t.Run("audit store down", func(t *testing.T) {
		e := newEnv(t, func(o *httpapi.Options) {
			// A writer without retries on a store that is closed.
			o.Audit = sinks.NewWriter(o.Store, sinks.WriterOptions{Retries: -1})
		})
		if err := e.store.Close(); err != nil {
			t.Fatal(err)
		}
		r := e.do(t, req{method: "POST", token: e.write, header: structured, body: ev})
		b := wantError(t, r, http.StatusServiceUnavailable, "unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if !strings.Contains(b.Error.Message, "audit") {
			t.Errorf("message %q does not say the audit failed", b.Error.Message)
		}
		wantError(t, e.do(t, req{path: "/v1/events", token: e.read}), http.StatusServiceUnavailable, "unavailable")
	})

	t.Run("transport closed", func(t *testing.T) {
		e := newEnv(t)
		if err := e.mem.Close(); err != nil {
			t.Fatal(err)
		}
		r := e.do(t, req{method: "POST", token: e.write, header: structured, body: ev})
		wantError(t, r, http.StatusServiceUnavailable, "unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if n := e.storedCount(t); n != 0 {
			t.Errorf("an event the transport refused has %d audit records", n)
		}
	})
}

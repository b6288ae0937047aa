package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/httpapi"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// malformedCount reads auditbus_trace_context_malformed_total{binding}.
func malformedCount(t *testing.T, e *env, binding string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "auditbus_trace_context_malformed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "binding" && l.GetValue() == binding {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func binaryEvent(id string) req {
	return req{path: "/v1/events?topic=traced", header: map[string]string{
		"ce-specversion": "1.0", "ce-id": id, "ce-source": "/test", "ce-type": "t", "Content-Type": "text/plain",
	}, body: "x"}
}

// TestIngestTraceparentPassesOn: with tracing off, the traceparent an
// ingest request carries travels on in the headers of the messages it
// publishes, the event itself is untouched, and the audit query shows the
// trace on the event's received entry.
func TestIngestTraceparentPassesOn(t *testing.T) {
	e := newEnv(t)
	m := subscribe(t, e.mem, "traced")
	r := binaryEvent("tp-1")
	r.header["traceparent"] = incoming
	r.header["tracestate"] = "k=v"
	e.post(t, r, 1)
	got := m.waitFor(t, 1)[0]
	if tc := m.trace(0); tc.Parent != incoming || tc.State != "k=v" {
		t.Errorf("Message.Trace = %+v, want the request's traceparent and tracestate", tc)
	}
	if ext := got.Extensions(); ext[bus.TraceParent] != nil {
		t.Errorf("the event gained a traceparent extension %v", ext[bus.TraceParent])
	}
	// The audit query shows the trace the received entry happened under.
	var p page
	deadline := time.Now().Add(30 * time.Second)
	for len(p.Items) == 0 || len(p.Items[0].Trail) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the audit query has no item for tp-1")
		}
		p = e.query(t, "/v1/events?source=/test")
	}
	if en := p.Items[0].Trail[0]; en.TraceID != incoming[3:35] || en.SpanID != incoming[36:52] {
		t.Errorf("received entry: trace_id %q span_id %q, want the request's %s and %s", en.TraceID, en.SpanID, incoming[3:35], incoming[36:52])
	}
}

// TestIngestMalformedTraceparent: a malformed traceparent header is
// counted and ignored; the request is accepted and the event delivered
// and recorded as posted.
func TestIngestMalformedTraceparent(t *testing.T) {
	e := newEnv(t)
	m := subscribe(t, e.mem, "traced")
	bad := []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",    // wrong length
		"00-4bf92f3577b34da6a3ce929d0e0eZZZZ-00f067aa0ba902b7-01", // bad hex
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // all-zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // all-zero parent id
	}
	for i, tp := range bad {
		r := binaryEvent("bad-" + string(rune('a'+i)))
		r.header["traceparent"] = tp
		e.post(t, r, 1)
	}
	for i, got := range m.waitFor(t, len(bad)) {
		if tc := m.trace(i); !tc.IsZero() {
			t.Errorf("event %s: a malformed traceparent travelled on as %+v", got.ID(), tc)
		}
		if len(got.Extensions()) != 0 || string(got.Data()) != "x" {
			t.Errorf("event %s changed: extensions %v, data %q", got.ID(), got.Extensions(), got.Data())
		}
	}
	if n := malformedCount(t, e, "http"); n != float64(len(bad)) {
		t.Errorf("auditbus_trace_context_malformed_total{binding=\"http\"} = %v, want %d", n, len(bad))
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.storedCount(t) < len(bad) {
		if time.Now().After(deadline) {
			t.Fatalf("the store has %d versions, want %d", e.storedCount(t), len(bad))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIngestSpans: with a Tracer, an ingest request has a server span,
// child of the request's traceparent, and its publish a producer span,
// whose context the published messages carry.
func TestIngestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := newEnv(t, func(o *httpapi.Options) { o.Tracer = tp.Tracer("test") })
	m := subscribe(t, e.mem, "traced")
	r := binaryEvent("span-1")
	r.header["traceparent"] = incoming
	e.post(t, r, 1)
	m.waitFor(t, 1)
	got := bus.Message{Trace: m.trace(0)}
	var server, producer sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindServer:
			server = s
		case trace.SpanKindProducer:
			producer = s
		}
	}
	if server == nil || producer == nil {
		t.Fatalf("spans ended: %d; want a server and a producer span", len(rec.Ended()))
	}
	in, _ := bus.ParseTraceContext(incoming, "")
	if server.Parent().SpanID() != in.SpanID() || server.SpanContext().TraceID() != in.TraceID() {
		t.Errorf("server span's parent = %v, want the request's %v", server.Parent(), in)
	}
	if producer.Parent().SpanID() != server.SpanContext().SpanID() {
		t.Errorf("producer span's parent = %v, want the server span", producer.Parent())
	}
	if got.Trace.Parent != bus.FormatTraceParent(producer.SpanContext()) {
		t.Errorf("message traceparent %q, want the producer span's %q", got.Trace.Parent, bus.FormatTraceParent(producer.SpanContext()))
	}
	for _, a := range server.Attributes() {
		if a.Key == "http.response.status_code" && a.Value.AsInt64() != http.StatusAccepted {
			t.Errorf("server span status %d, want 202", a.Value.AsInt64())
		}
	}
}

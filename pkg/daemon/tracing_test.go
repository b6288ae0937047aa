package daemon_test

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/daemon"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes every export
// with the OTLP protobuf types and keeps the spans and their service.
type otlpReceiver struct {
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
	srv      *httptest.Server
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("OTLP export to %s with Content-Type %q; want /v1/traces, application/x-protobuf", r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		b, err := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(b, &req)
		}
		if err != nil {
			t.Errorf("decode an OTLP export: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					rc.services = append(rc.services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				rc.spans = append(rc.spans, ss.GetSpans()...)
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// trace returns the spans of trace id received so far, by name.
func (rc *otlpReceiver) trace(id []byte) map[string]*tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range rc.spans {
		if string(s.GetTraceId()) == string(id) {
			out[s.GetName()] = s
		}
	}
	return out
}

// attrOf is the string attribute key of s.
func attrOf(s *tracepb.Span, key string) string {
	for _, a := range s.GetAttributes() {
		if a.GetKey() == key {
			return a.GetValue().GetStringValue()
		}
	}
	return ""
}

// linking returns a span called name that links to span id.
func (rc *otlpReceiver) linking(name string, id []byte) *tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, s := range rc.spans {
		if s.GetName() != name {
			continue
		}
		for _, l := range s.GetLinks() {
			if string(l.GetSpanId()) == string(id) {
				return s
			}
		}
	}
	return nil
}

// TestDaemonExportsSpansOverOTLP starts the daemon with
// OTEL_EXPORTER_OTLP_ENDPOINT naming a receiver served here, posts an
// event with a traceparent to an HTTP-fed route with a webhook and a mem
// destination, and finds the trace's spans at the receiver, decoded with
// the OTLP protobuf types: the ingest server span child of the request's
// context, the route's span, the filter, both deliveries and the webhook
// call, with the messaging attributes, and an audit flush linked to the
// route's span; the webhook got a traceparent of the same trace, and the
// audit entries record the trace and the route's span.
func TestDaemonExportsSpansOverOTLP(t *testing.T) {
	rc := newOTLPReceiver(t)
	var hookMu sync.Mutex
	var hookTraceparent string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		hookTraceparent = r.Header.Get("traceparent")
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	l := startLive(t, `
routes:
  - name: orders
    source: {http: true}
    destinations:
      - {name: hook, webhook: {url: "`+hook.URL+`/in"}}
      - {transport: mem, topic: billing}
    dead_letter: none
`, "OTEL_EXPORTER_OTLP_ENDPOINT="+rc.srv.URL, "OTEL_SERVICE_NAME=auditbus-test",
		"OTEL_BSP_SCHEDULE_DELAY=20", "OTEL_TRACES_SAMPLER=parentbased_always_on",
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=test")
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	in, _ := bus.ParseTraceContext(incoming, "")
	tid := in.TraceID()
	l.post(t, "route=orders", map[string]string{"ce-id": "tr-1", "ce-source": "/shop", "ce-type": "com.example.order.created",
		"Content-Type": "application/json", "traceparent": incoming}, `{"order":1}`)

	want := []string{"POST /v1/events", "route orders", "filter orders", "deliver hook", "POST", "send billing"}
	var spans map[string]*tracepb.Span
	waitUntil(t, "the trace's spans at the OTLP receiver", 30*time.Second, func() bool {
		spans = rc.trace(tid[:])
		for _, n := range want {
			if spans[n] == nil {
				return false
			}
		}
		return true
	})
	server, route := spans["POST /v1/events"], spans["route orders"]
	if parent := in.SpanID(); string(server.GetParentSpanId()) != string(parent[:]) {
		t.Errorf("ingest span's parent %x, want the request's %s", server.GetParentSpanId(), in.SpanID())
	}
	if server.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("ingest span kind %v, want server", server.GetKind())
	}
	if string(route.GetParentSpanId()) != string(server.GetSpanId()) {
		t.Errorf("route span's parent %x, want the ingest span %x", route.GetParentSpanId(), server.GetSpanId())
	}
	for _, n := range []string{"filter orders", "deliver hook", "send billing"} {
		if string(spans[n].GetParentSpanId()) != string(route.GetSpanId()) {
			t.Errorf("span %q's parent %x, want the route span %x", n, spans[n].GetParentSpanId(), route.GetSpanId())
		}
	}
	send := spans["send billing"]
	if send.GetKind() != tracepb.Span_SPAN_KIND_PRODUCER || attrOf(send, "messaging.system") != "auditbus" ||
		attrOf(send, "messaging.destination.name") != "billing" || attrOf(send, "messaging.operation.type") != "send" ||
		attrOf(send, "auditbus.outcome") != "delivered" {
		t.Errorf("send span: kind %v, attributes %v", send.GetKind(), send.GetAttributes())
	}
	call := spans["POST"]
	if call.GetKind() != tracepb.Span_SPAN_KIND_CLIENT || string(call.GetParentSpanId()) != string(spans["deliver hook"].GetSpanId()) {
		t.Errorf("webhook call span: kind %v, parent %x", call.GetKind(), call.GetParentSpanId())
	}
	// The ledger records the hops under the trace: the route's entries
	// name its span, whose trace is the request's.
	for _, it := range l.versions(t, "/shop", "tr-1", 3) {
		for _, en := range it.Trail {
			if en.TraceID != tid.String() || en.SpanID != hex.EncodeToString(route.GetSpanId()) {
				t.Errorf("entry %s: trace %q span %q, want the route span %x of trace %s", hop(en), en.TraceID, en.SpanID, route.GetSpanId(), tid)
			}
		}
	}
	waitUntil(t, "an audit flush span linked to the route's span", 30*time.Second, func() bool {
		return rc.linking("audit flush", route.GetSpanId()) != nil
	})
	hookMu.Lock()
	got := hookTraceparent
	hookMu.Unlock()
	if sc, err := bus.ParseTraceContext(got, ""); err != nil || sc.TraceID() != tid {
		t.Errorf("the webhook got traceparent %q, want one of trace %s", got, tid)
	}
	rc.mu.Lock()
	services := rc.services
	rc.mu.Unlock()
	if len(services) == 0 || services[0] != "auditbus-test" {
		t.Errorf("service.name %v, want auditbus-test", services)
	}
}

// A bad OTEL_* value stops start-up, naming the variable.
func TestTracingConfigErrorsNameTheVariable(t *testing.T) {
	for name, v := range map[string]string{
		"OTEL_TRACES_SAMPLER":         "sometimes",
		"OTEL_TRACES_SAMPLER_ARG":     "2",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318",
		"OTEL_BSP_MAX_QUEUE_SIZE":     "-1",
		"OTEL_RESOURCE_ATTRIBUTES":    "novalue",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_SAMPLER", "traceidratio")
			t.Setenv(name, v)
			_, err := daemon.ConfigFromEnv()
			if err == nil || !strings.Contains(err.Error(), name+"=") {
				t.Fatalf("%s=%q: error %v, want one naming the variable", name, v, err)
			}
		})
	}
}

// GET /metrics has the build, the replay jobs and, for the mem transport,
// no broker series.
func TestMetricsBuildAndReplays(t *testing.T) {
	l := startLive(t, "")
	resp, err := http.Get(l.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`auditbus_build_info{goversion="go`, `auditbus_replay_jobs{state="running"} 0`,
		`auditbus_replay_events_total{outcome="replayed"} 0`, "auditbus_replay_events_per_second 0"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("GET /metrics has no %s", want)
		}
	}
	if strings.Contains(string(b), "auditbus_kafka_consumer_lag") {
		t.Error("GET /metrics has Kafka lag with only the mem transport")
	}
}

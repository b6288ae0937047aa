package router_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTraceHTTPToKafkaToAMQPToWebhook follows one event posted with a
// traceparent header through an HTTP-fed route to a Kafka topic (kfake),
// a route from that topic to a RabbitMQ queue, and a route from the queue
// to a webhook, with the SDK's in-memory recorder: every span is in the
// request's trace, each hop is the child of the one before (a consumer
// span of its producer, which it also links to), the messaging attributes
// are set, and the webhook receives a traceparent of the same trace,
// naming its call's span.
func TestTraceHTTPToKafkaToAMQPToWebhook(t *testing.T) {
	url := amqpURL(t)
	_, kcfg := newKfake(t, 2)
	kt, err := kafka.New(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kt.Close() })
	at, err := amqp.New(amqp.Config{URL: url, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = at.Close() })

	var mu sync.Mutex
	var hookTraceparent string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		hookTraceparent = r.Header.Get("traceparent")
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)

	store, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := tp.Tracer("test")
	writer := sinks.NewWriter(store, sinks.WriterOptions{Tracer: tr})
	t.Cleanup(func() { _ = writer.Close(); _ = store.Close() })

	suffix := fmt.Sprint(time.Now().UnixNano())
	topic, queue := "trace-in-"+suffix, "auditbus-trace."+suffix
	routes, err := router.ParseRoutes("trace.yaml", []byte(fmt.Sprintf(`
routes:
  - name: ingest
    source: {http: true}
    destinations: [{name: kafka, transport: kafka, topic: %s}]
    dead_letter: none
  - name: bridge
    source: {transport: kafka, topic: %s, group: bridge}
    destinations: [{name: rabbit, transport: amqp, topic: %q}]
    dead_letter: none
  - name: out
    source: {transport: amqp, topic: %q, group: out}
    destinations: [{name: hook, webhook: {url: %q}}]
    dead_letter: none
`, topic, topic, queue, queue, hook.URL)))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := router.New(routes, router.Options{
		Transports: map[string]bus.Transport{"kafka": kt, "amqp": at}, Audit: writer, Logger: quiet(), Tracer: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = rt.Close()
		cleanupAMQP(url, queue, amqp.QueueName(queue, "out"))
	})
	api, err := httpapi.New(httpapi.Options{
		Store: store, Audit: writer, Router: rt, Transport: kt, TransportName: "kafka", Tracer: tr, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	in, _ := bus.ParseTraceContext(incoming, "")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/events?route=ingest", strings.NewReader(`{"n":1}`))
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "trace-1", "ce-source": "/shop", "ce-type": "com.example.order",
		"Content-Type": "application/json", "traceparent": incoming} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d, want 202", resp.StatusCode)
	}

	names := []string{"POST /v1/events", "route ingest", "send " + topic, "process " + topic, "send " + queue, "process " + queue, "deliver hook", "POST"}
	spans := map[string]sdktrace.ReadOnlySpan{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() == in.TraceID() {
				spans[s.Name()] = s
			}
		}
		missing := false
		for _, n := range names {
			missing = missing || spans[n] == nil
		}
		if !missing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s the trace has spans %v, want %v", keys(spans), names)
		}
		time.Sleep(10 * time.Millisecond)
	}
	parents := map[string]string{ // span -> its parent
		"route ingest":     "POST /v1/events",
		"send " + topic:    "route ingest",
		"process " + topic: "send " + topic,
		"send " + queue:    "process " + topic,
		"process " + queue: "send " + queue,
		"deliver hook":     "process " + queue,
		"POST":             "deliver hook",
	}
	if s := spans["POST /v1/events"]; s.Parent().SpanID() != in.SpanID() || s.SpanKind() != trace.SpanKindServer {
		t.Errorf("ingest span: parent %v kind %v, want the request's %v, server", s.Parent().SpanID(), s.SpanKind(), in.SpanID())
	}
	for child, parent := range parents {
		c, p := spans[child], spans[parent]
		if c == nil || p == nil {
			t.Errorf("span %q or %q missing", child, parent)
			continue
		}
		if c.Parent().SpanID() != p.SpanContext().SpanID() {
			t.Errorf("span %q: parent %v, want %q (%v)", child, c.Parent().SpanID(), parent, p.SpanContext().SpanID())
		}
	}
	for _, hop := range []struct {
		consumer, producer, system, dest, group string
	}{
		{"process " + topic, "send " + topic, "kafka", topic, "bridge"},
		{"process " + queue, "send " + queue, "rabbitmq", queue, "out"},
	} {
		c, p := spans[hop.consumer], spans[hop.producer]
		if c.SpanKind() != trace.SpanKindConsumer || p.SpanKind() != trace.SpanKindProducer {
			t.Errorf("%s/%s: kinds %v/%v, want consumer/producer", hop.consumer, hop.producer, c.SpanKind(), p.SpanKind())
		}
		if l := c.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != p.SpanContext().SpanID() {
			t.Errorf("%s: links %v, want one to %s", hop.consumer, l, hop.producer)
		}
		wantAttrs(t, p, bus.AttrMessagingSystem.String(hop.system), bus.AttrDestinationName.String(hop.dest),
			bus.AttrOperationType.String("send"), bus.AttrMessageID.String("trace-1"))
		wantAttrs(t, c, bus.AttrMessagingSystem.String(hop.system), bus.AttrDestinationName.String(hop.dest),
			bus.AttrOperationType.String("process"), bus.AttrConsumerGroup.String(hop.group),
			bus.AttrBatchCount.Int(1), bus.AttrMessageID.String("trace-1"))
	}
	wantAttrs(t, spans["deliver hook"], attribute.String("auditbus.outcome", "delivered"), attribute.String("auditbus.route", "out"))
	wantAttrs(t, spans["POST"], attribute.Int("http.response.status_code", http.StatusNoContent))
	if _, ok := attrValue(spans["process "+topic], bus.AttrPartitionID); !ok {
		t.Errorf("the Kafka consumer span has no %s", bus.AttrPartitionID)
	}
	mu.Lock()
	got := hookTraceparent
	mu.Unlock()
	if got != bus.FormatTraceParent(spans["POST"].SpanContext()) {
		t.Errorf("the webhook got traceparent %q, want the call span's %q (trace %s)", got, bus.FormatTraceParent(spans["POST"].SpanContext()), in.TraceID())
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func attrValue(s sdktrace.ReadOnlySpan, k attribute.Key) (attribute.Value, bool) {
	for _, a := range s.Attributes() {
		if a.Key == k {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

// wantAttrs checks that span s has the attributes want.
func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want ...attribute.KeyValue) {
	t.Helper()
	for _, w := range want {
		if v, ok := attrValue(s, w.Key); !ok || v.String() != w.Value.String() {
			t.Errorf("span %q: %s = %q, want %q", s.Name(), w.Key, v.String(), w.Value.String())
		}
	}
}

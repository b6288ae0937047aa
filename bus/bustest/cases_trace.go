package bustest

import (
	"context"
	"testing"

	"github.com/auditbus/auditbus/bus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Trace contexts the trace cases use.
const (
	hopParent    = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	hopState     = "vendor=opaque,other=1"
	originParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
)

// testTraceContextHeaders: the trace context of the publisher's span
// travels in the message's own headers (Message.Trace), beside the event's
// distributed-tracing extension, which arrives unchanged; an event without
// the extension does not gain one on the way, and a publish without a span
// writes no header.
func testTraceContextHeaders(t *testing.T, e *env) {
	c := newCollector()
	e.subscribe(t, context.Background(), e.group(t), c.handler)

	sc, err := bus.ParseTraceContext(hopParent, hopState)
	if err != nil {
		t.Fatal(err)
	}
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	withOrigin, without := newEvent(1, ""), newEvent(2, "")
	withOrigin.SetExtension(bus.TraceParent, originParent)
	if err := e.b.Publish(ctx, e.topic, withOrigin, without); err != nil {
		t.Fatalf("publish: %v", err)
	}
	untraced := newEvent(3, "")
	if err := e.b.Publish(context.Background(), e.topic, untraced); err != nil {
		t.Fatalf("publish: %v", err)
	}
	e.expectAll(t, c, []bus.Event{withOrigin, without, untraced})
	for _, id := range []string{withOrigin.ID(), without.ID()} {
		m := c.message(id)
		if m.Trace.Parent != hopParent || m.Trace.State != hopState {
			t.Errorf("event %s: Message.Trace = %+v, want traceparent %q and tracestate %q", id, m.Trace, hopParent, hopState)
		}
		msc, malformed := m.SpanContext()
		if malformed || msc.TraceID() != sc.TraceID() || msc.SpanID() != sc.SpanID() || !msc.IsRemote() {
			t.Errorf("event %s: SpanContext() = %v (malformed %v), want the publisher's, remote", id, msc, malformed)
		}
	}
	if v := c.message(withOrigin.ID()).Event.Extensions()[bus.TraceParent]; v != originParent {
		t.Errorf("traceparent extension = %v, want the origin's %q unchanged", v, originParent)
	}
	if v, ok := c.message(without.ID()).Event.Extensions()[bus.TraceParent]; ok {
		t.Errorf("an event published without a traceparent extension arrived with %v", v)
	}
	if m := c.message(untraced.ID()); !m.Trace.IsZero() {
		t.Errorf("a publish without a span wrote trace headers %+v", m.Trace)
	}
}

// testTraceContextMalformed: an event whose traceparent extension is
// malformed is delivered unchanged, and its span context is ignored and
// reported as malformed.
func testTraceContextMalformed(t *testing.T, e *env) {
	c := newCollector()
	e.subscribe(t, context.Background(), e.group(t), c.handler)
	bad := map[string]string{
		"short":      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"badhex":     "00-4bf92f3577b34da6a3ce929d0e0eXXXX-00f067aa0ba902b7-01",
		"versionff":  "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"zerotrace":  "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"zeroparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
	}
	var evs []bus.Event
	want := map[string]string{}
	for name, v := range bad {
		ev := newEvent(len(evs), "")
		ev.SetID("malformed-" + name)
		ev.SetExtension(bus.TraceParent, v)
		evs = append(evs, ev)
		want[ev.ID()] = v
	}
	e.publish(t, evs, len(evs))
	e.expectAll(t, c, evs)
	for id := range want {
		m := c.message(id)
		if v := m.Event.Extensions()[bus.TraceParent]; v != want[id] {
			t.Errorf("event %s: traceparent extension = %v, want %q unchanged", id, v, want[id])
		}
		sc, malformed := m.SpanContext()
		if sc.IsValid() || !malformed {
			t.Errorf("event %s: SpanContext() = %v, malformed %v; want invalid and malformed", id, sc, malformed)
		}
	}
}

// testTracedBus: a Bus with a TracerProvider starts a trace on a publish
// with no incoming context, puts the producer span's context in the event's
// extension, and handles the batch in a consumer span that is the producer
// span's child and links to it, with the messaging attributes.
func testTracedBus(t *testing.T, e *env) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b := bus.New(e.tr, bus.WithTracerProvider(tp))
	group := e.group(t)
	c := newCollector()
	sub, err := b.Subscribe(context.Background(), e.topic, group, c.handler)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	ev := newEvent(1, "")
	if err := b.Publish(context.Background(), e.topic, ev); err != nil {
		t.Fatalf("publish: %v", err)
	}
	e.expectAll(t, c, []bus.Event{ev})
	var producer, consumer sdktrace.ReadOnlySpan
	e.waitFor(t, "a consumer span", func() bool {
		for _, s := range rec.Ended() {
			switch s.SpanKind() {
			case trace.SpanKindProducer:
				producer = s
			case trace.SpanKindConsumer:
				consumer = s
			}
		}
		return producer != nil && consumer != nil
	})
	if producer.Parent().IsValid() {
		t.Errorf("producer span has parent %v; a publish with no incoming context starts a trace", producer.Parent())
	}
	if got := c.message(ev.ID()).Event.Extensions()[bus.TraceParent]; got != bus.FormatTraceParent(producer.SpanContext()) {
		t.Errorf("traceparent extension = %v, want the producer span's %q", got, bus.FormatTraceParent(producer.SpanContext()))
	}
	if consumer.Parent().SpanID() != producer.SpanContext().SpanID() || consumer.SpanContext().TraceID() != producer.SpanContext().TraceID() {
		t.Errorf("consumer span's parent = %v, want the producer span %v", consumer.Parent(), producer.SpanContext())
	}
	if l := consumer.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != producer.SpanContext().SpanID() {
		t.Errorf("consumer span links = %v, want one to the producer span", l)
	}
	system := bus.MessagingSystemOf(e.tr)
	wantAttrs := func(s sdktrace.ReadOnlySpan, want ...attribute.KeyValue) {
		t.Helper()
		have := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes() {
			have[a.Key] = a.Value
		}
		for _, w := range want {
			if v, ok := have[w.Key]; !ok || v.String() != w.Value.String() {
				t.Errorf("span %q: %s = %q, want %q", s.Name(), w.Key, v.String(), w.Value.String())
			}
		}
	}
	wantAttrs(producer, bus.AttrMessagingSystem.String(system), bus.AttrDestinationName.String(e.topic),
		bus.AttrOperationType.String("send"), bus.AttrMessageID.String(ev.ID()))
	wantAttrs(consumer, bus.AttrMessagingSystem.String(system), bus.AttrDestinationName.String(e.topic),
		bus.AttrOperationType.String("process"), bus.AttrConsumerGroup.String(group), bus.AttrBatchCount.Int(1),
		bus.AttrMessageID.String(ev.ID()))
}

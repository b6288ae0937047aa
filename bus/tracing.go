package bus

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans auditbus starts.
const ScopeName = "github.com/auditbus/auditbus"

// Attribute keys of the OpenTelemetry messaging semantic conventions that
// auditbus's spans carry.
const (
	AttrMessagingSystem       = attribute.Key("messaging.system")
	AttrDestinationName       = attribute.Key("messaging.destination.name")
	AttrOperationType         = attribute.Key("messaging.operation.type")
	AttrOperationName         = attribute.Key("messaging.operation.name")
	AttrMessageID             = attribute.Key("messaging.message.id")
	AttrConsumerGroup         = attribute.Key("messaging.consumer.group.name")
	AttrPartitionID           = attribute.Key("messaging.destination.partition.id")
	AttrBatchCount            = attribute.Key("messaging.batch.message_count")
	AttrTraceContextMalformed = attribute.Key("auditbus.trace_context.malformed")
)

// MaxLinks bounds the links of a consumer span: one per distinct publisher
// of the batch, up to this many.
const MaxLinks = 128

// MessagingSystem is implemented by transports that name their broker the
// way the messaging.system attribute does ("kafka", "rabbitmq").
type MessagingSystem interface {
	MessagingSystem() string
}

// MessagingSystemOf is t's messaging.system value, "auditbus" for a
// transport that does not name one.
func MessagingSystemOf(t Transport) string {
	if m, ok := t.(MessagingSystem); ok {
		return m.MessagingSystem()
	}
	return "auditbus"
}

// WithTracerProvider traces the bus with tp: a producer span around every
// Publish, a consumer span around every batch a handler receives, and the
// W3C trace context in the headers of every message published. An event
// published without a distributed-tracing extension gets the publish
// span's context in it, so that it starts a trace its consumers join.
// Nothing global is set; a nil tp leaves tracing off.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(b *Bus) {
		if tp != nil {
			b.tracer = tp.Tracer(ScopeName)
		}
	}
}

// tracePublish is the publish middleware WithTracerProvider adds.
func (b *Bus) tracePublish(next PublishFunc) PublishFunc {
	system := MessagingSystemOf(b.t)
	return func(ctx context.Context, topic string, events []Event) error {
		ctx, span := StartPublishSpan(ctx, b.tracer, system, topic, events)
		var origin string
		for i := range events {
			if _, ok := events[i].Extensions()[TraceParent]; !ok {
				if origin == "" {
					origin = FormatTraceParent(span.SpanContext())
				}
				events[i].SetExtension(TraceParent, origin)
			}
		}
		err := next(ctx, topic, events)
		EndSpan(span, err)
		return err
	}
}

// traceHandler wraps h in the consumer span of each batch.
func (b *Bus) traceHandler(topic, group string, h Handler) Handler {
	system := MessagingSystemOf(b.t)
	return func(ctx context.Context, msgs []Message) error {
		ctx, span, _ := StartConsumeSpan(ctx, b.tracer, system, topic, group, msgs)
		err := h(ctx, msgs)
		EndSpan(span, err)
		return err
	}
}

// StartPublishSpan starts the producer span of publishing events to topic
// over system: a "send" operation, child of ctx's span.
func StartPublishSpan(ctx context.Context, tr trace.Tracer, system, topic string, events []Event) (context.Context, trace.Span) {
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs,
		AttrMessagingSystem.String(system),
		AttrDestinationName.String(topic),
		AttrOperationType.String("send"),
		AttrOperationName.String("send"),
	)
	if len(events) == 1 {
		attrs = append(attrs, AttrMessageID.String(events[0].ID()))
	} else {
		attrs = append(attrs, AttrBatchCount.Int(len(events)))
	}
	return tr.Start(ctx, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
}

// StartConsumeSpan starts the consumer span of handling a batch of msgs
// read from topic by group: a "process" operation. A batch has many
// parents, so the span links to the context of every distinct publisher
// (up to MaxLinks); it is the child of the first one, so that a chain of
// single events reads as one trace. With no publisher context it is the
// child of ctx's span, or a new trace. It returns how many malformed trace
// contexts it ignored.
func StartConsumeSpan(ctx context.Context, tr trace.Tracer, system, topic, group string, msgs []Message) (context.Context, trace.Span, int) {
	malformed := 0
	var parent trace.SpanContext
	var links []trace.Link
	for i := range msgs {
		sc, bad := msgs[i].SpanContext()
		if bad {
			malformed++
		}
		if !sc.IsValid() || len(links) == MaxLinks || linked(links, sc) {
			continue
		}
		if !parent.IsValid() {
			parent = sc
		}
		links = append(links, trace.Link{SpanContext: sc})
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		AttrMessagingSystem.String(system),
		AttrDestinationName.String(topic),
		AttrOperationType.String("process"),
		AttrOperationName.String("process"),
		AttrBatchCount.Int(len(msgs)),
	)
	if group != "" {
		attrs = append(attrs, AttrConsumerGroup.String(group))
	}
	if len(msgs) > 0 && msgs[0].Partition == msgs[len(msgs)-1].Partition && topic != "" {
		attrs = append(attrs, AttrPartitionID.String(strconv.Itoa(msgs[0].Partition)))
	}
	if len(msgs) == 1 {
		attrs = append(attrs, AttrMessageID.String(msgs[0].Event.ID()))
	}
	if malformed > 0 {
		attrs = append(attrs, AttrTraceContextMalformed.Int(malformed))
	}
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	ctx, span := tr.Start(ctx, "process "+topic, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attrs...), trace.WithLinks(links...))
	return ctx, span, malformed
}

func linked(links []trace.Link, sc trace.SpanContext) bool {
	for i := range links {
		if links[i].SpanContext.SpanID() == sc.SpanID() && links[i].SpanContext.TraceID() == sc.TraceID() {
			return true
		}
	}
	return false
}

// EndSpan records err, if any, as span's status and ends it.
func EndSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

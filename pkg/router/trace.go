package router

import (
	"context"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/sinks"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Attributes of the router's spans beside the messaging conventions'.
const (
	attrRoute       = attribute.Key("auditbus.route")
	attrDestination = attribute.Key("auditbus.destination")
	attrOutcome     = attribute.Key("auditbus.outcome")
	attrMatched     = attribute.Key("auditbus.events.matched")
	attrDelivered   = attribute.Key("auditbus.events.delivered")
	attrGivenUp     = attribute.Key("auditbus.events.deadlettered")
	attrAttempt     = attribute.Key("auditbus.attempt")
)

// startRun starts the span of a batch the route handles. A batch from a
// transport gets a consumer span linked to its publishers (see
// bus.StartConsumeSpan); a batch from HTTP runs under the request's span,
// so its span is that one's child, linked to the events' own
// distributed-tracing contexts. Malformed trace contexts are counted and
// otherwise ignored. With tracing off it returns ctx and a span that
// records nothing.
func (rt *route) startRun(ctx context.Context, msgs []bus.Message, from reception) (context.Context, trace.Span) {
	tr := rt.r.o.Tracer
	if tr == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	if from.transport != TransportHTTP {
		src := rt.cfg.Source
		t, _ := rt.r.transport(src.Transport)
		ctx, span, malformed := bus.StartConsumeSpan(ctx, tr, bus.MessagingSystemOf(t), src.Topic, src.Group, msgs)
		rt.r.o.Metrics.traceMalformed(src.Transport, malformed)
		span.SetAttributes(attrRoute.String(rt.cfg.Name))
		return ctx, span
	}
	var links []trace.Link
	malformed := 0
	for i := range msgs {
		sc, bad := bus.EventSpanContext(&msgs[i].Event)
		if bad {
			malformed++
		}
		if sc.IsValid() && len(links) < bus.MaxLinks {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	rt.r.o.Metrics.traceMalformed(TransportHTTP, malformed)
	return tr.Start(ctx, "route "+rt.cfg.Name, trace.WithLinks(links...), trace.WithAttributes(
		attrRoute.String(rt.cfg.Name), bus.AttrBatchCount.Int(len(msgs))))
}

// startFilter starts the span of the route's filter over n events.
func (rt *route) startFilter(ctx context.Context, n int) trace.Span {
	if rt.r.o.Tracer == nil {
		return trace.SpanFromContext(context.Background())
	}
	_, span := rt.r.o.Tracer.Start(ctx, "filter "+rt.cfg.Name, trace.WithAttributes(
		attrRoute.String(rt.cfg.Name), bus.AttrBatchCount.Int(n)))
	return span
}

// startDeliver starts the span of delivering events to d: a producer span
// with the messaging attributes for a topic, an internal one for a
// webhook, whose calls have client spans of their own.
func (d *destination) startDeliver(ctx context.Context, tr trace.Tracer, events []bus.Event) (context.Context, trace.Span) {
	if tr == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	attrs := []attribute.KeyValue{attrRoute.String(d.route), attrDestination.String(d.name)}
	if d.hook != nil {
		return tr.Start(ctx, "deliver "+d.name, trace.WithAttributes(append(attrs, bus.AttrBatchCount.Int(len(events)))...))
	}
	ctx, span := bus.StartPublishSpan(ctx, tr, bus.MessagingSystemOf(d.transport), d.topic, events)
	span.SetAttributes(attrs...)
	return ctx, span
}

// endDeliver sets the outcome of a delivery on its span and ends it:
// delivered, deadlettered (every event given up on) or partial.
func endDeliver(span trace.Span, res []result, err error) {
	if !span.IsRecording() {
		return
	}
	failed := 0
	for _, r := range res {
		if r.err != nil {
			failed++
		}
	}
	outcome := sinks.KindDelivered
	switch {
	case err != nil:
		outcome = "interrupted"
	case failed == len(res):
		outcome = sinks.KindDeadLettered
	case failed > 0:
		outcome = "partial"
	}
	span.SetAttributes(attrOutcome.String(outcome), attrDelivered.Int(len(res)-failed), attrGivenUp.Int(failed))
	bus.EndSpan(span, err)
}

// retryEvent marks a failed attempt on the delivery span in ctx.
func retryEvent(ctx context.Context, attempt int, err error) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("retry", trace.WithAttributes(attrAttempt.Int(attempt), attribute.String("exception.message", err.Error())))
	}
}

package replay

import (
	"context"

	"github.com/auditbus/auditbus/bus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// traceRun starts the span of one run of job id, when tracing; end sets
// the run's counts and error on it and ends it.
func (m *Manager) traceRun(ctx context.Context, js *jobState, id, dest string, resumed bool) (context.Context, func(error)) {
	if m.o.Tracer == nil {
		return ctx, func(error) {}
	}
	ctx, span := m.o.Tracer.Start(ctx, "replay "+dest, trace.WithAttributes(
		attribute.String("auditbus.replay.job", id),
		attribute.String("auditbus.destination", dest),
		attribute.Bool("auditbus.replay.resumed", resumed),
	))
	return ctx, func(err error) {
		js.mu.Lock()
		p := js.job.Progress
		js.mu.Unlock()
		span.SetAttributes(attribute.Int64("auditbus.replay.events.done", p.Done), attribute.Int64("auditbus.replay.events.failed", p.Failed))
		bus.EndSpan(span, err)
	}
}

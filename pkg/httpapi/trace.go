package httpapi

import (
	"context"
	"net/http"

	"github.com/auditbus/auditbus/bus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// traceIngest reads the W3C trace context of an ingest request and, with
// a Tracer, starts its server span. A malformed traceparent is counted and
// ignored: it never refuses the request or changes its events. Without a
// Tracer, a valid incoming context still travels on in the headers of the
// messages the request publishes. end records the answer's status.
func (s *Server) traceIngest(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, context.Context, func()) {
	ctx := r.Context()
	if tp := r.Header.Get(bus.TraceParent); tp != "" {
		sc, err := bus.ParseTraceContext(tp, r.Header.Get(bus.TraceState))
		if err != nil {
			s.m.malformed.WithLabelValues("http").Inc()
		} else {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	if s.o.Tracer == nil {
		return w, ctx, func() {}
	}
	ctx, span := s.o.Tracer.Start(ctx, "POST /v1/events", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("http.route", "/v1/events"),
		attribute.String("url.path", r.URL.Path),
	))
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	return sw, ctx, func() {
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
		span.End()
	}
}

// statusWriter remembers the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// startPublish starts the producer span of publishing an ingest request's
// events to topic; with tracing off it returns ctx and a span that records
// nothing.
func (s *Server) startPublish(ctx context.Context, topic string, evs []bus.Event) (context.Context, trace.Span) {
	if s.o.Tracer == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return bus.StartPublishSpan(ctx, s.o.Tracer, bus.MessagingSystemOf(s.o.Transport), topic, evs)
}

package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Provider is the daemon's tracer provider: an OTLP exporter behind a
// batch span processor, or nothing when tracing is off.
type Provider struct {
	tp *sdktrace.TracerProvider // nil: off
}

// New builds the provider c describes, for auditbus version. It connects
// lazily: an unreachable collector is logged, never an error here, and
// never slows delivery (spans beyond the batch processor's queue are
// dropped).
func New(ctx context.Context, c Config, version string) (*Provider, error) {
	if !c.Enabled() {
		return &Provider{}, nil
	}
	var exp sdktrace.SpanExporter
	var err error
	if c.Protocol == ProtocolGRPC {
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(c.Endpoint),
			otlptracegrpc.WithHeaders(c.Headers), otlptracegrpc.WithTimeout(c.Timeout))
	} else {
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(c.Endpoint),
			otlptracehttp.WithHeaders(c.Headers), otlptracehttp.WithTimeout(c.Timeout))
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter for %s (%s): %w", c.Endpoint, c.Protocol, err)
	}
	attrs := append([]attribute.KeyValue{
		attribute.String("service.name", c.ServiceName),
		attribute.String("service.version", version),
	}, c.Resource...)
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		res = resource.NewSchemaless(attrs...)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(c.Sampler),
		sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp,
			sdktrace.WithBatchTimeout(c.ScheduleDelay),
			sdktrace.WithExportTimeout(c.ExportTimeout),
			sdktrace.WithMaxQueueSize(c.MaxQueueSize),
			sdktrace.WithMaxExportBatchSize(c.MaxExportBatchSize),
		),
	)
	return &Provider{tp: tp}, nil
}

// Tracer is the tracer of auditbus's spans, nil when tracing is off.
func (p *Provider) Tracer() trace.Tracer {
	if p == nil || p.tp == nil {
		return nil
	}
	return p.tp.Tracer(bus.ScopeName)
}

// Shutdown exports the spans still queued, within ctx, and stops.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil || p.tp == nil {
		return nil
	}
	if err := p.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush the spans still queued: %w", err)
	}
	return nil
}

// LogErrors sends the OpenTelemetry SDK's errors (exporter down, queue
// full) to log, at most one line per every, with the count of those left
// out. It sets the process-wide OpenTelemetry error handler: the daemon
// calls it, a library never does.
func LogErrors(log *slog.Logger, every time.Duration) {
	otel.SetErrorHandler(&throttled{log: log, every: every})
}

// throttled logs the first error of each interval.
type throttled struct {
	log     *slog.Logger
	every   time.Duration
	mu      sync.Mutex
	last    time.Time
	dropped int
}

func (t *throttled) Handle(err error) {
	t.mu.Lock()
	now := time.Now()
	if !t.last.IsZero() && now.Sub(t.last) < t.every {
		t.dropped++
		t.mu.Unlock()
		return
	}
	dropped := t.dropped
	t.last, t.dropped = now, 0
	t.mu.Unlock()
	t.log.Warn("tracing: spans not exported; delivery goes on", "error", err, "errors_not_logged", dropped, "interval", t.every.String())
}

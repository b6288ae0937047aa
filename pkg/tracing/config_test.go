package tracing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/tracing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestConfigFrom(t *testing.T) {
	for _, c := range []struct {
		name               string
		env                map[string]string
		endpoint, protocol string
		sampler            string
	}{
		{name: "nothing set: off", env: nil, protocol: tracing.ProtocolHTTP, sampler: "parentbased_always_on"},
		{name: "base endpoint gets /v1/traces", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/"},
			endpoint: "http://127.0.0.1:4318/v1/traces", protocol: tracing.ProtocolHTTP, sampler: "parentbased_always_on"},
		{name: "traces endpoint as given", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/custom"},
			endpoint: "https://b/custom", protocol: tracing.ProtocolHTTP, sampler: "parentbased_always_on"},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
			endpoint: "http://127.0.0.1:4317", protocol: tracing.ProtocolGRPC, sampler: "traceidratio"},
		{name: "exporter none", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_TRACES_EXPORTER": "none"},
			protocol: tracing.ProtocolHTTP, sampler: "parentbased_always_on"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := tracing.ConfigFrom(env(c.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Endpoint != c.endpoint || cfg.Protocol != c.protocol || cfg.SamplerName != c.sampler || cfg.Enabled() != (c.endpoint != "") {
				t.Errorf("got endpoint %q protocol %q sampler %q enabled %v", cfg.Endpoint, cfg.Protocol, cfg.SamplerName, cfg.Enabled())
			}
		})
	}
}

// Shutdown flushes what the batch processor holds; with tracing off the
// provider hands out no tracer.
func TestProviderOff(t *testing.T) {
	p, err := tracing.New(context.Background(), tracing.Config{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if p.Tracer() != nil {
		t.Error("tracing off handed out a tracer")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}

func ExampleConfigFrom() {
	cfg, err := tracing.ConfigFrom(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
		"OTEL_SERVICE_NAME":           "auditbus-eu",
		"OTEL_BSP_MAX_QUEUE_SIZE":     "4096",
	}))
	fmt.Println(cfg.Endpoint, cfg.Protocol, cfg.ServiceName, cfg.MaxQueueSize, err)
	_, err = tracing.ConfigFrom(env(map[string]string{"OTEL_TRACES_SAMPLER_ARG": "1.5", "OTEL_TRACES_SAMPLER": "traceidratio"}))
	fmt.Println(err)
	// Output:
	// http://127.0.0.1:4318/v1/traces http/protobuf auditbus-eu 4096 <nil>
	// OTEL_TRACES_SAMPLER_ARG="1.5": want the sampled fraction, a number from 0 to 1
}

// Package tracing sets up the daemon's OpenTelemetry tracing from the
// standard OTEL_* variables: an OTLP exporter (HTTP/protobuf or gRPC)
// behind a bounded batch span processor, the sampler and the resource.
// With no endpoint set it exports nothing and hands out no tracer, so that
// tracing off costs a nil check.
package tracing

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/auditbus/auditbus/pkg/envconf"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Protocols of OTEL_EXPORTER_OTLP_PROTOCOL the daemon speaks.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Config is the tracing setup the OTEL_* variables describe.
type Config struct {
	// Endpoint is where spans go: the full traces URL for http/protobuf
	// (".../v1/traces"), the collector's URL for grpc. Empty: tracing off.
	Endpoint string
	Protocol string            // ProtocolHTTP (default) or ProtocolGRPC
	Headers  map[string]string // sent with every export
	Timeout  time.Duration     // of one export
	// ServiceName is the service.name resource attribute (default
	// "auditbus"); Resource holds the OTEL_RESOURCE_ATTRIBUTES.
	ServiceName string
	Resource    []attribute.KeyValue
	// Sampler is the OTEL_TRACES_SAMPLER with its argument; its name is
	// SamplerName.
	Sampler     sdktrace.Sampler
	SamplerName string
	// The batch span processor: how long spans wait, how long one export
	// may take, how many spans wait at most (more are dropped, never
	// waited for) and how many go in one export.
	ScheduleDelay, ExportTimeout     time.Duration
	MaxQueueSize, MaxExportBatchSize int
}

// Enabled reports whether spans are exported.
func (c Config) Enabled() bool { return c.Endpoint != "" }

// ConfigFromEnv reads Config from the process environment. The error
// names every bad variable, its value and what it accepts.
func ConfigFromEnv() (Config, error) { return ConfigFrom(os.LookupEnv) }

// ConfigFrom reads Config through lookup.
func ConfigFrom(lookup func(string) (string, bool)) (Config, error) {
	r := reader{lookup: lookup}
	ints := envconf.WithLookup("OTEL_", lookup)
	c := Config{
		Protocol:           r.firstEnum([]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"}, ProtocolHTTP, ProtocolHTTP, ProtocolGRPC),
		Timeout:            r.millis("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", r.millis("OTEL_EXPORTER_OTLP_TIMEOUT", 10*time.Second)),
		ServiceName:        r.get("OTEL_SERVICE_NAME"),
		ScheduleDelay:      r.millis("OTEL_BSP_SCHEDULE_DELAY", 5*time.Second),
		ExportTimeout:      r.millis("OTEL_BSP_EXPORT_TIMEOUT", 30*time.Second),
		MaxQueueSize:       ints.Int("BSP_MAX_QUEUE_SIZE", 2048, 1),
		MaxExportBatchSize: ints.Int("BSP_MAX_EXPORT_BATCH_SIZE", 512, 1),
	}
	if c.MaxExportBatchSize > c.MaxQueueSize {
		r.fail("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", strconv.Itoa(c.MaxExportBatchSize),
			fmt.Sprintf("want at most OTEL_BSP_MAX_QUEUE_SIZE (%d)", c.MaxQueueSize))
	}
	for _, p := range r.pairs("OTEL_RESOURCE_ATTRIBUTES") {
		c.Resource = append(c.Resource, attribute.String(p[0], p[1]))
		if p[0] == "service.name" && c.ServiceName == "" {
			c.ServiceName = p[1]
		}
	}
	if c.ServiceName == "" {
		c.ServiceName = "auditbus"
	}
	c.Headers = map[string]string{}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		for _, p := range r.pairs(name) {
			c.Headers[p[0]] = p[1]
		}
	}
	c.Sampler, c.SamplerName = r.sampler()
	c.Endpoint = r.endpoint(c.Protocol)
	switch v := strings.ToLower(r.get("OTEL_TRACES_EXPORTER")); v {
	case "", "otlp":
	case "none":
		c.Endpoint = ""
	default:
		r.fail("OTEL_TRACES_EXPORTER", v, "accepted values: otlp, none")
	}
	if sdk := strings.ToLower(r.get("OTEL_SDK_DISABLED")); sdk == "true" {
		c.Endpoint = ""
	} else if sdk != "" && sdk != "false" {
		r.fail("OTEL_SDK_DISABLED", sdk, "accepted values: true, false")
	}
	return c, errors.Join(append([]error{ints.Err()}, r.errs...)...)
}

// reader reads OTEL_* variables and collects errors.
type reader struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (r *reader) get(name string) string {
	v, _ := r.lookup(name)
	return strings.TrimSpace(v)
}

func (r *reader) fail(name, v, rule string) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: %s", name, v, rule))
}

// firstEnum reads the first of names that is set, which must be one of
// allowed.
func (r *reader) firstEnum(names []string, def string, allowed ...string) string {
	for _, name := range names {
		v := r.get(name)
		if v == "" {
			continue
		}
		for _, a := range allowed {
			if strings.EqualFold(v, a) {
				return a
			}
		}
		r.fail(name, v, "accepted values: "+strings.Join(allowed, ", ")+" (http/json is not supported)")
		return def
	}
	return def
}

// millis reads a whole number of milliseconds, as the OTel variables give
// durations.
func (r *reader) millis(name string, def time.Duration) time.Duration {
	v := r.get(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		r.fail(name, v, "want a whole number of milliseconds >= 0")
		return def
	}
	return time.Duration(n) * time.Millisecond
}

// pairs reads a comma-separated list of key=value pairs whose values are
// percent-encoded, as OTEL_RESOURCE_ATTRIBUTES and the headers are.
func (r *reader) pairs(name string) [][2]string {
	v := r.get(name)
	if v == "" {
		return nil
	}
	var out [][2]string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		k, val, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		dec, err := url.PathUnescape(strings.TrimSpace(val))
		if !ok || k == "" || err != nil {
			r.fail(name, v, fmt.Sprintf("%q is not key=value (values percent-encoded); give a comma-separated list such as deployment.environment=prod,team=payments", p))
			return nil
		}
		out = append(out, [2]string{k, dec})
	}
	return out
}

// sampler reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
func (r *reader) sampler() (sdktrace.Sampler, string) {
	name := strings.ToLower(r.get("OTEL_TRACES_SAMPLER"))
	if name == "" {
		name = "parentbased_always_on"
	}
	ratio := 1.0
	arg := r.get("OTEL_TRACES_SAMPLER_ARG")
	if arg != "" && strings.HasSuffix(name, "traceidratio") {
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || f < 0 || f > 1 {
			r.fail("OTEL_TRACES_SAMPLER_ARG", arg, "want the sampled fraction, a number from 0 to 1")
		} else {
			ratio = f
		}
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), name
	case "always_off":
		return sdktrace.NeverSample(), name
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), name
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), name
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), name
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), name
	}
	r.fail("OTEL_TRACES_SAMPLER", name, "accepted values: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio")
	return sdktrace.ParentBased(sdktrace.AlwaysSample()), "parentbased_always_on"
}

// endpoint reads the traces endpoint: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// as given, else OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces added for
// http/protobuf.
func (r *reader) endpoint(protocol string) string {
	name, v := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", r.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	perSignal := v != ""
	if !perSignal {
		name, v = "OTEL_EXPORTER_OTLP_ENDPOINT", r.get("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, v, "want an http:// or https:// URL such as http://127.0.0.1:4318")
		return ""
	}
	if protocol == ProtocolHTTP && !perSignal {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u.String()
}

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/tracing"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is an OTLP/HTTP trace receiver on 127.0.0.1 that counts the
// spans it is sent.
type receiver struct {
	spans atomic.Int64
	url   string
	srv   *http.Server
}

func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rc := &receiver{url: "http://" + ln.Addr().String()}
	rc.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(b, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n := 0
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				n += len(ss.GetSpans())
			}
		}
		rc.spans.Add(int64(n))
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})}
	go func() { _ = rc.srv.Serve(ln) }()
	return rc, nil
}

// tracedRun is routeRun with audit on and tracing on: a provider as the
// daemon builds it from OTEL_* variables, sampling every trace, exporting
// to rc. It returns events/s and the spans rc received once the provider
// was shut down (flushed).
func tracedRun(evs []bus.Event, batch int, rc *receiver) (float64, int64, error) {
	cfg, err := tracing.ConfigFrom(func(k string) (string, bool) {
		v, ok := map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": rc.url,
			"OTEL_TRACES_SAMPLER":         "always_on",
		}[k]
		return v, ok
	})
	if err != nil {
		return 0, 0, err
	}
	p, err := tracing.New(context.Background(), cfg, "bench")
	if err != nil {
		return 0, 0, err
	}
	before := rc.spans.Load()
	rate, err := routeRun(evs, batch, true, p.Tracer())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if serr := p.Shutdown(ctx); err == nil {
		err = serr
	}
	return rate, rc.spans.Load() - before, err
}

// runTracing compares the audited route with tracing off and on.
func runTracing(n, size, batch, rounds int) error {
	evs := makeEvents(n, size)
	rc, err := newReceiver()
	if err != nil {
		return err
	}
	defer rc.srv.Close()
	fmt.Printf("bench-router -tracing: %d events of %d bytes, publish batches of %d, route to 3 mem destinations, SQLite audit store; tracing on = every span sampled, OTLP/HTTP to %s (default batch processor: queue 2048, batches of 512); %d rounds; GOMAXPROCS=%d %s/%s %s\n",
		n, size, batch, rc.url, rounds, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if _, _, err := tracedRun(evs[:min(n, 10000)], batch, rc); err != nil {
		return err
	}
	var off, on []float64
	var spans int64
	for r := 1; r <= rounds; r++ {
		// Alternate which goes first, so that neither always meets a
		// warmer machine.
		var roff, ron float64
		var s int64
		var err error
		if r%2 == 1 {
			if roff, err = routeRun(evs, batch, true, nil); err == nil {
				ron, s, err = tracedRun(evs, batch, rc)
			}
		} else {
			if ron, s, err = tracedRun(evs, batch, rc); err == nil {
				roff, err = routeRun(evs, batch, true, nil)
			}
		}
		if err != nil {
			return err
		}
		fmt.Printf("round %d: (c) tracing off %.0f events/s; (d) tracing on %.0f events/s, %d spans exported (%.3f per event)\n",
			r, roff, ron, s, float64(s)/float64(n))
		off, on, spans = append(off, roff), append(on, ron), spans+s
	}
	mo, mn := median(off), median(on)
	fmt.Printf("(c) route, audit on, tracing off: %.0f events/s (median of %d)\n", mo, rounds)
	fmt.Printf("(d) route, audit on, tracing on: %.0f events/s (median of %d)\n", mn, rounds)
	fmt.Printf("spans per event: %.3f\n", float64(spans)/float64(n*rounds))
	fmt.Printf("ratio: %.2f\n", mn/mo)
	return nil
}

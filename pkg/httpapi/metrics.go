package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/auditbus/auditbus/pkg/router"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's own: requests by handler and status code, and
// their duration by handler.
type metrics struct {
	requests  *prometheus.CounterVec
	seconds   *prometheus.HistogramVec
	malformed *prometheus.CounterVec // trace contexts ignored, by binding
}

// newMetrics registers the metrics on reg, or takes over the ones a
// previous server registered there.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auditbus_http_requests_total",
		Help: "HTTP requests answered, by handler (route pattern) and status code.",
	}, []string{"handler", "code"})
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "auditbus_http_request_seconds",
		Help:    "Time to answer an HTTP request, by handler (route pattern).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"handler"})
	var err error
	if requests, err = register(reg, requests); err != nil {
		return nil, err
	}
	if seconds, err = register(reg, seconds); err != nil {
		return nil, err
	}
	malformed, err := router.TraceMalformedCounter(reg)
	if err != nil {
		return nil, fmt.Errorf("httpapi: register HTTP metrics on Options.Registerer: %w", err)
	}
	return &metrics{requests: requests, seconds: seconds, malformed: malformed}, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if prev, ok := are.ExistingCollector.(C); ok {
			return prev, nil
		}
	}
	return c, fmt.Errorf("httpapi: register HTTP metrics on Options.Registerer: %w", err)
}

// instrument counts and times the requests h answers under the label
// handler.
func (m *metrics) instrument(handler string, h http.Handler) http.Handler {
	l := prometheus.Labels{"handler": handler}
	return promhttp.InstrumentHandlerDuration(m.seconds.MustCurryWith(l),
		promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(l), h))
}

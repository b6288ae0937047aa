package router

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the router's Prometheus metrics. Labels are bounded: route
// and destination names come from the routes file, outcome from a fixed
// set. A nil *Metrics records nothing.
type Metrics struct {
	in           *prometheus.CounterVec
	destEvents   *prometheus.CounterVec
	retriedC     *prometheus.CounterVec
	outcomes     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	circuitOpen  *prometheus.GaugeVec
	circuitTrips *prometheus.CounterVec
	malformed    *prometheus.CounterVec
}

// NewMetrics registers the router's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditbus_route_events_in_total", Help: "Events a route took from its source.",
		}, []string{"route"}),
		destEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditbus_destination_events_total",
			Help: "Events a destination finished with, by outcome: delivered (it accepted them) or deadlettered (given up on and parked in the route's dead letter).",
		}, []string{"route", "destination", "outcome"}),
		retriedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditbus_destination_retries_total", Help: "Delivery attempts retried after a failure.",
		}, []string{"route", "destination"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditbus_route_events_total", Help: "Events a route finished with, by outcome (delivered, deadlettered, filtered, poison).",
		}, []string{"route", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "auditbus_route_delivery_seconds",
			Help:    "From taking a batch from the source to every destination and the audit store having it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		circuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditbus_destination_circuit_open", Help: "1 while the destination's circuit breaker is open.",
		}, []string{"route", "destination"}),
		circuitTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditbus_destination_circuit_trips_total", Help: "Times the destination's circuit breaker opened.",
		}, []string{"route", "destination"}),
	}
	var err error
	if m.malformed, err = TraceMalformedCounter(reg); err != nil {
		panic(err)
	}
	reg.MustRegister(m.in, m.destEvents, m.retriedC, m.outcomes, m.latency, m.circuitOpen, m.circuitTrips)
	return m
}

// took counts the n events a route took from its source; the filtered
// ones are in auditbus_route_events_total{outcome="filtered"}.
func (m *Metrics) took(route string, n int) {
	if m != nil {
		m.in.WithLabelValues(route).Add(float64(n))
	}
}

func (m *Metrics) delivered(route, dest string, n int) {
	if m != nil {
		m.destEvents.WithLabelValues(route, dest, "delivered").Add(float64(n))
	}
}

func (m *Metrics) retried(route, dest string) {
	if m != nil {
		m.retriedC.WithLabelValues(route, dest).Inc()
	}
}

func (m *Metrics) deadLetteredN(route, dest string, n int) {
	if m != nil {
		m.destEvents.WithLabelValues(route, dest, "deadlettered").Add(float64(n))
	}
}

func (m *Metrics) finished(route string, outcomes map[string]int, since time.Time) {
	if m != nil {
		for o, n := range outcomes {
			m.outcomes.WithLabelValues(route, o).Add(float64(n))
		}
		m.latency.WithLabelValues(route).Observe(time.Since(since).Seconds())
	}
}

func (m *Metrics) circuit(route, dest string, open bool) {
	if m != nil {
		v := 0.0
		if open {
			v = 1
			m.circuitTrips.WithLabelValues(route, dest).Inc()
		}
		m.circuitOpen.WithLabelValues(route, dest).Set(v)
	}
}

// TraceMalformedCounter registers auditbus_trace_context_malformed_total
// on reg, or returns the one registered there already: the router counts
// what it reads from transports, the HTTP server what requests carry.
func TraceMalformedCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auditbus_trace_context_malformed_total",
		Help: "Malformed W3C trace contexts (traceparent header or extension) ignored for tracing, by binding (http, mem, kafka, amqp). The events carrying them are handled unchanged.",
	}, []string{"binding"})
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if prev, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return prev, nil
		}
	}
	return c, err
}

func (m *Metrics) traceMalformed(binding string, n int) {
	if m != nil && n > 0 {
		m.malformed.WithLabelValues(binding).Add(float64(n))
	}
}

package replay

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the replay jobs' Prometheus metrics: the events they
// handled by outcome, the jobs by state and the running jobs' rate. A nil
// *Metrics records nothing.
type Metrics struct {
	events *prometheus.CounterVec
	mgr    atomic.Pointer[Manager] // the jobs and rate are read at scrape
}

// NewMetrics registers the replay metrics on reg; give the result to one
// Manager through Options.Metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auditbus_replay_events_total",
		Help: "Events replay jobs handled, by outcome: replayed (the destination accepted it), failed (given up on), skipped (a replay's own copy).",
	}, []string{"outcome"})}
	jobs := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "auditbus_replay_jobs", Help: "Replay jobs the daemon knows, by state (running, done, failed, cancelled).",
	}, []string{"state"})
	rate := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "auditbus_replay_events_per_second", Help: "Events per second the running replay jobs handle, summed.",
	})
	reg.MustRegister(m.events, &scraped{m: m, jobs: jobs, rate: rate})
	for _, o := range []string{"replayed", "failed", "skipped"} {
		m.events.WithLabelValues(o)
	}
	return m
}

func (m *Metrics) handled(res batchResult) {
	if m == nil {
		return
	}
	if res.done > 0 {
		m.events.WithLabelValues("replayed").Add(float64(res.done))
	}
	if res.failed > 0 {
		m.events.WithLabelValues("failed").Add(float64(res.failed))
	}
	if res.skipped > 0 {
		m.events.WithLabelValues("skipped").Add(float64(res.skipped))
	}
}

// scraped computes the job gauges from the Manager's jobs at each scrape.
type scraped struct {
	m    *Metrics
	jobs *prometheus.GaugeVec
	rate prometheus.Gauge
}

func (s *scraped) Describe(ch chan<- *prometheus.Desc) {
	s.jobs.Describe(ch)
	s.rate.Describe(ch)
}

func (s *scraped) Collect(ch chan<- prometheus.Metric) {
	mgr := s.m.mgr.Load()
	if mgr == nil {
		return
	}
	counts := map[State]int{Running: 0, Done: 0, Failed: 0, Cancelled: 0}
	rate := 0.0
	for _, j := range mgr.List() {
		counts[j.State]++
		if j.State == Running {
			rate += j.Progress.Rate
		}
	}
	for st, n := range counts {
		s.jobs.WithLabelValues(string(st)).Set(float64(n))
	}
	s.rate.Set(rate)
	s.jobs.Collect(ch)
	s.rate.Collect(ch)
}

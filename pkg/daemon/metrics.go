package daemon

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// writerMetrics reports the audit writer's flushes to Prometheus; it is
// the sinks.Metrics of the daemon's writer.
type writerMetrics struct {
	rows    prometheus.Counter
	errors  prometheus.Counter
	size    prometheus.Histogram
	latency prometheus.Histogram
	queued  prometheus.Gauge
}

func newWriterMetrics(reg prometheus.Registerer) *writerMetrics {
	m := &writerMetrics{
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditbus_audit_rows_total", Help: "Audit records made durable.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditbus_audit_flush_errors_total", Help: "Audit store appends that failed (each is retried).",
		}),
		size: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "auditbus_audit_flush_rows", Help: "Records per audit store append.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "auditbus_audit_flush_seconds", Help: "Time of one audit store append.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "auditbus_audit_queue_depth", Help: "Records held by the audit writer, waiting or being flushed.",
		}),
	}
	reg.MustRegister(m.rows, m.errors, m.size, m.latency, m.queued)
	return m
}

// Flushed implements sinks.Metrics.
func (m *writerMetrics) Flushed(rows int, took time.Duration, err error) {
	m.latency.Observe(took.Seconds())
	if err != nil {
		m.errors.Inc()
		return
	}
	m.rows.Add(float64(rows))
	m.size.Observe(float64(rows))
}

// Queued implements sinks.Metrics.
func (m *writerMetrics) Queued(n int) { m.queued.Set(float64(n)) }

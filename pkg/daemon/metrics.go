package daemon

import (
	"log/slog"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/prometheus/client_golang/prometheus"
)

// writerMetrics reports the audit writer's flushes and what they added to
// the ledger to Prometheus, and logs each conflicting version; it is the
// sinks.Metrics of the daemon's writer.
type writerMetrics struct {
	rows    prometheus.Counter
	errors  prometheus.Counter
	size    prometheus.Histogram
	latency prometheus.Histogram
	queued  prometheus.Gauge

	versions   prometheus.Counter
	entries    prometheus.Counter
	duplicates prometheus.Counter
	conflicts  prometheus.Counter
	log        *slog.Logger
}

func newWriterMetrics(reg prometheus.Registerer, log *slog.Logger) *writerMetrics {
	m := &writerMetrics{
		log: log,
		versions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditbus_audit_versions_total", Help: "Event versions new to the audit store.",
		}),
		entries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditbus_audit_entries_total", Help: "Ledger entries appended to the audit store.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditbus_audit_duplicate_entries_total",
			Help: "Ledger entries not appended because the store already had them (a retried write or a redelivered message).",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditbus_audit_conflicts_total",
			Help: "Event versions stored beside an earlier version of the same source and id with other content.",
		}),
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
	reg.MustRegister(m.rows, m.errors, m.size, m.latency, m.queued, m.versions, m.entries, m.duplicates, m.conflicts)
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

// Appended implements sinks.Metrics. A conflict is logged at warn level:
// someone sent other content under an identity already recorded.
func (m *writerMetrics) Appended(r sinks.AppendResult) {
	m.versions.Add(float64(r.Versions))
	m.entries.Add(float64(r.Entries))
	m.duplicates.Add(float64(r.Duplicates))
	m.conflicts.Add(float64(len(r.Conflicts)))
	for _, c := range r.Conflicts {
		m.log.Warn("conflicting event version recorded: the same source and id with other content",
			"source", c.Source, "id", c.ID, "digest", c.Digest.String(), "earlier_digest", c.Earlier.String())
	}
}

package daemon

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/prometheus/client_golang/prometheus"
)

// brokerMetrics reports, at each scrape, the Kafka consumer lag of every
// group and partition the daemon reads and the depth of every AMQP group
// queue it consumes.
type brokerMetrics struct {
	kafka *kafka.Transport // nil when not enabled
	amqp  *amqp.Transport  // nil when not enabled
	log   *slog.Logger
	lag   *prometheus.GaugeVec
	depth *prometheus.GaugeVec
}

func registerBrokerMetrics(reg prometheus.Registerer, k *kafka.Transport, a *amqp.Transport, log *slog.Logger) {
	reg.MustRegister(&brokerMetrics{
		kafka: k, amqp: a, log: log,
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditbus_kafka_consumer_lag",
			Help: "Messages in a Kafka partition after the last one a route's consumer group fetched, by topic, group and partition.",
		}, []string{"topic", "group", "partition"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditbus_amqp_queue_messages",
			Help: "Messages ready in a route's AMQP group queue, by topic, group and queue (asked of the broker at each scrape).",
		}, []string{"topic", "group", "queue"}),
	})
}

func (m *brokerMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.lag.Describe(ch)
	m.depth.Describe(ch)
}

func (m *brokerMetrics) Collect(ch chan<- prometheus.Metric) {
	if m.kafka != nil {
		m.lag.Reset()
		for _, l := range m.kafka.Lags() {
			m.lag.WithLabelValues(l.Topic, l.Group, strconv.Itoa(l.Partition)).Set(float64(l.Messages))
		}
		m.lag.Collect(ch)
	}
	if m.amqp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		depths, err := m.amqp.QueueDepths(ctx)
		if err != nil {
			m.log.Warn("AMQP queue depths not read for /metrics", "error", err)
		}
		m.depth.Reset()
		for _, d := range depths {
			m.depth.WithLabelValues(d.Topic, d.Group, d.Queue).Set(float64(d.Messages))
		}
		m.depth.Collect(ch)
	}
}

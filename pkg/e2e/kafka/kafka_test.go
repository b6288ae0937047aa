package kafka_test

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/bustest"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
)

// newCluster starts an in-process Kafka wire-protocol broker for one test.
func newCluster(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// testConfig is Config tuned for quick group changes on a local broker.
func testConfig(brokers []string) kafka.Config {
	return kafka.Config{
		Brokers:           brokers,
		Linger:            time.Millisecond,
		Partitions:        4,
		HeartbeatInterval: 100 * time.Millisecond,
		SessionTimeout:    6 * time.Second, // kfake's minimum
		RebalanceTimeout:  2 * time.Second,
		FetchMaxWait:      100 * time.Millisecond,
		AutoCreateTopics:  true,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
}

func newTransport(t testing.TB, brokers []string) *kafka.Transport {
	t.Helper()
	tr, err := kafka.New(testConfig(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func TestConformance(t *testing.T) {
	brokers := newCluster(t)
	// Two cases of the suite do not apply to Kafka and say so when they
	// skip: NoRouteWithoutGroup, because a topic keeps what is published
	// to it before any group reads it (a group that joins later reads
	// from its start); and BufferBound, because the broker, not the
	// transport, holds what a group has not read yet, bounded by the
	// topic's retention.
	bustest.TestTransport(t, bustest.Features{
		OrderedPerKey: true,
		DurableGroups: true,
	}, func(t *testing.T) bus.Transport { return newTransport(t, brokers) })
}

package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/kafka"
	kafkago "github.com/segmentio/kafka-go"
)

// Kafka is the setting shared by every system measured on Kafka, so that
// they differ only in the client.
type Kafka struct {
	Brokers    []string
	Partitions int // of every trial's topic
}

// The producer settings of both kafka-go sides: bus/kafka's defaults,
// spelled out so that the raw writer is sure to batch alike.
const (
	kafkaBatchSize    = 1000
	kafkaBatchBytes   = 1 << 20
	kafkaLinger       = 200 * time.Microsecond
	kafkaFetchMaxWait = 250 * time.Millisecond
)

var kafkaTrials atomic.Int64

// kafkaTopic creates the topic (and names the group) of one trial: new for
// every trial, so that no trial reads what an earlier one wrote or finds a
// group with offsets. It is created here, before timing, for every system
// alike; the returned function deletes it, so the in-process broker does
// not keep every trial's events in memory.
func kafkaTopic(k Kafka, system string) (topic string, drop func() error, err error) {
	topic = fmt.Sprintf("auditbus-bench.%s.%d", system, kafkaTrials.Add(1))
	tr := &kafkago.Transport{}
	c := &kafkago.Client{Addr: kafkago.TCP(k.Brokers...), Transport: tr, Timeout: 10 * time.Second}
	ctx := context.Background()
	resp, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: topic, NumPartitions: k.Partitions, ReplicationFactor: 1,
	}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		tr.CloseIdleConnections()
		return "", nil, fmt.Errorf("create topic %q: %w", topic, err)
	}
	return topic, func() error {
		defer tr.CloseIdleConnections()
		resp, err := c.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
		if err == nil {
			err = resp.Errors[topic]
		}
		if err != nil {
			return fmt.Errorf("delete topic %q: %w", topic, err)
		}
		return nil
	}, nil
}

// lockedTally is a tally for consumers that handle partitions in parallel,
// one goroutine each: every side takes the lock once per batch it is
// handed.
type lockedTally struct {
	mu sync.Mutex
	*tally
}

// AuditbusKafka is auditbus over bus/kafka in binary mode: Bus.Publish
// (validation included) of the workload's batches, and one subscription
// (one member of a new consumer group) at the default MaxBatch, whose
// handler acknowledges every batch.
func AuditbusKafka(k Kafka) Paced {
	return Paced{System: System{Name: "auditbus kafka", setup: func(w *Workload) (*Trial, error) { return setupAuditbusKafka(k, w) }}}
}

func setupAuditbusKafka(k Kafka, w *Workload) (*Trial, error) {
	now := time.Now()
	events := make([]bus.Event, w.Events)
	for i := range events {
		e, err := benchEvent(w, i, now)
		if err != nil {
			return nil, err
		}
		events[i] = e
	}
	topic, drop, err := kafkaTopic(k, "auditbus")
	if err != nil {
		return nil, err
	}
	tr, err := kafka.New(kafka.Config{
		Brokers:      k.Brokers,
		Mode:         kafka.Binary,
		BatchSize:    kafkaBatchSize,
		BatchBytes:   kafkaBatchBytes,
		Linger:       kafkaLinger,
		RequiredAcks: kafkago.RequireAll,
		FetchMaxWait: kafkaFetchMaxWait,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, errors.Join(err, drop())
	}
	b := bus.New(tr)
	t := &lockedTally{tally: newTally(w)}
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := b.Subscribe(ctx, topic, topic, func(_ context.Context, msgs []bus.Message) error {
		t.mu.Lock()
		defer t.mu.Unlock()
		for i := range msgs {
			e := &msgs[i].Event
			t.record(e.ID(), len(e.DataEncoded))
		}
		return nil
	})
	if err != nil {
		cancel()
		return nil, errors.Join(err, b.Close(), drop())
	}
	return &Trial{
		w:     w,
		tally: t.tally,
		publish: func(ctx context.Context, lo, hi int) error {
			return b.Publish(ctx, topic, events[lo:hi]...)
		},
		stopped: sub.Done(),
		close: func() error {
			cancel()
			return errors.Join(b.Close(), drop())
		},
	}, nil
}

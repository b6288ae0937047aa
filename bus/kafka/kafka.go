// Package kafka is the bus.Transport on Apache Kafka, through
// github.com/segmentio/kafka-go, speaking the CloudEvents Kafka protocol
// binding.
//
// Events are written in binary mode (ce_ headers, content-type, data as the
// value) or structured mode (application/cloudevents+json), and read in
// either. The "partitionkey" extension is the message key, so events with the
// same key share a partition and keep their order.
//
// A bus consumer group is a Kafka consumer group. Each assigned partition is
// read by its own goroutine, so partitions are handled in parallel and each
// in order. A batch's offsets are committed only after its handler returned
// nil; a failed batch is retried in place, so nothing after it is committed.
// Messages that are not CloudEvents go to Config.Poison and are committed.
//
// kafka-go is known to work with Apache Kafka 0.10.1 and later (its own
// documentation lists the 2.x and 3.x series as tested); this package's tests
// against a broker run against kfake, an in-process Kafka wire-protocol
// broker, and live in pkg/e2e/kafka, a module of its own, so that kfake and
// the other clients they check against stay out of this module's go.mod.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditbus/auditbus/bus"
	kafkago "github.com/segmentio/kafka-go"
)

// Transport is the Kafka bus.Transport. Create it with New.
type Transport struct {
	cfg    Config
	tr     *kafkago.Transport
	w      *kafkago.Writer
	client *kafkago.Client
	dialer *kafkago.Dialer

	topics sync.Map  // topics known to exist
	bufs   sync.Pool // *publishBuf of earlier calls, for the next
	closed atomic.Bool

	mu   sync.Mutex
	subs map[*subscription]struct{}
	wg   sync.WaitGroup
}

var _ bus.Transport = (*Transport)(nil)

// New returns a transport for cfg. It does not connect until first used.
func New(cfg Config) (*Transport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tr := &kafkago.Transport{ClientID: cfg.ClientID, TLS: cfg.TLS, SASL: cfg.SASL, DialTimeout: 5 * time.Second}
	t := &Transport{
		cfg: cfg,
		tr:  tr,
		w: &kafkago.Writer{
			Addr:         kafkago.TCP(cfg.Brokers...),
			Balancer:     &kafkago.Murmur2Balancer{}, // the Java client's partitioner: same key, same partition
			BatchSize:    cfg.BatchSize,
			BatchBytes:   cfg.BatchBytes,
			BatchTimeout: cfg.Linger,
			RequiredAcks: cfg.RequiredAcks,
			Compression:  cfg.Compression,
			Transport:    tr,
			MaxAttempts:  3,
		},
		client: &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: tr, Timeout: 10 * time.Second},
		dialer: &kafkago.Dialer{ClientID: cfg.ClientID, TLS: cfg.TLS, SASLMechanism: cfg.SASL, Timeout: 10 * time.Second, DualStack: true},
		subs:   make(map[*subscription]struct{}),
	}
	return t, nil
}

// Publish writes events to topic and returns once Kafka acknowledged all of
// them (with Config.RequiredAcks).
func (t *Transport) Publish(ctx context.Context, topic string, events []bus.Event) error {
	if t.closed.Load() {
		return fmt.Errorf("auditbus: kafka publish to %q: %w", topic, bus.ErrClosed)
	}
	if len(events) == 0 {
		return nil
	}
	if err := t.ensureTopic(ctx, topic); err != nil {
		return fmt.Errorf("auditbus: kafka publish to %q: %w", topic, err)
	}
	b, _ := t.bufs.Get().(*publishBuf)
	if b == nil {
		b = &publishBuf{}
	}
	msgs := b.messages(len(events))
	en := &b.en
	en.mode = t.cfg.Mode
	en.trace = bus.TraceContextOf(ctx)
	for i := range events {
		msgs[i].Topic = topic
		if err := en.encode(&events[i], &msgs[i]); err != nil {
			return fmt.Errorf("auditbus: kafka publish to %q: event #%d (id %q): %w", topic, i, events[i].ID(), err)
		}
	}
	if err := t.w.WriteMessages(ctx, msgs...); err != nil {
		// kafka-go may still hold the messages of a call it gave up on
		// (a cancelled context), so they are not reused.
		return t.publishError(topic, events, msgs, err)
	}
	b.reset()
	t.bufs.Put(b)
	return nil
}

// publishBuf holds what a Publish call encodes into: its messages, and in
// its encoder their headers and formatted times. kafka-go is done with them
// once a synchronous WriteMessages returned without error, so the next
// call reuses them.
type publishBuf struct {
	msgs []kafkago.Message
	en   encoder
}

// messages returns n empty messages, and makes room for their headers
// and times as most events need.
func (b *publishBuf) messages(n int) []kafkago.Message {
	if cap(b.msgs) < n {
		b.msgs = make([]kafkago.Message, n)
	}
	if want := 36 * n; cap(b.en.arena) < want {
		b.en.arena = make([]byte, 0, want)
	}
	if want := 11 * n; cap(b.en.headers) < want {
		b.en.headers = make([]kafkago.Header, 0, want)
	}
	return b.msgs[:n]
}

// reset drops what the last call's messages referred to (the events' data
// and strings), so a pooled buffer keeps nothing of them alive.
func (b *publishBuf) reset() {
	clear(b.msgs)
	clear(b.en.headers[:cap(b.en.headers)])
	b.en.headers, b.en.arena = b.en.headers[:0], b.en.arena[:0]
	b.en.src, b.en.srcURL = "", url.URL{}
	b.en.trace = bus.TraceContext{}
}

// publishError names the first event Kafka refused and why.
func (t *Transport) publishError(topic string, events []bus.Event, msgs []kafkago.Message, err error) error {
	var tooLarge kafkago.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		id, _ := headerValue(&tooLarge.Message, "ce_id")
		return fmt.Errorf("auditbus: kafka publish to %q: event id %q: %w: the message is over the producer's batch limit of %d bytes (AUDITBUS_KAFKA_BATCH_BYTES)",
			topic, id, bus.ErrTooLarge, t.cfg.BatchBytes)
	}
	var werrs kafkago.WriteErrors
	if errors.As(err, &werrs) {
		for i, e := range werrs {
			if e == nil || i >= len(events) {
				continue
			}
			if errors.Is(e, kafkago.MessageSizeTooLarge) {
				return fmt.Errorf("auditbus: kafka publish to %q: event #%d (id %q): %w: the broker refused it as over its message.max.bytes (%d of %d events failed): %v",
					topic, i, events[i].ID(), bus.ErrTooLarge, werrs.Count(), len(events), e)
			}
			return fmt.Errorf("auditbus: kafka publish to %q: event #%d (id %q) and %d more of %d not acknowledged: %w",
				topic, i, events[i].ID(), werrs.Count()-1, len(events), e)
		}
	}
	if errors.Is(err, kafkago.MessageSizeTooLarge) {
		return fmt.Errorf("auditbus: kafka publish to %q: %w: the broker refused a message as over its message.max.bytes: %v", topic, bus.ErrTooLarge, err)
	}
	return fmt.Errorf("auditbus: kafka publish to %q (brokers %v): %w", topic, t.cfg.Brokers, err)
}

func headerValue(m *kafkago.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// ensureTopic creates topic once if Config.AutoCreateTopics is on.
func (t *Transport) ensureTopic(ctx context.Context, topic string) error {
	if !t.cfg.AutoCreateTopics {
		return nil
	}
	if _, ok := t.topics.Load(topic); ok {
		return nil
	}
	resp, err := t.client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: topic, NumPartitions: t.cfg.Partitions, ReplicationFactor: t.cfg.ReplicationFactor,
	}}})
	if err != nil {
		return fmt.Errorf("create topic on brokers %v: %w", t.cfg.Brokers, err)
	}
	if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
		return fmt.Errorf("create topic with %d partitions, replication factor %d: %w", t.cfg.Partitions, t.cfg.ReplicationFactor, err)
	}
	t.topics.Store(topic, struct{}{})
	return nil
}

// MessagingSystem is "kafka", the messaging.system of the broker.
func (t *Transport) MessagingSystem() string { return "kafka" }

// Close stops every subscription (each finishes its batch in flight and
// commits), flushes the producer and closes connections.
func (t *Transport) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	t.mu.Lock()
	subs := make([]*subscription, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	for _, s := range subs {
		_ = s.Close()
	}
	t.wg.Wait()
	err := t.w.Close()
	t.tr.CloseIdleConnections()
	return err
}

// Lag is how far one consumer group's member is behind on a partition:
// the messages after the last one it fetched, as of that fetch.
type Lag struct {
	Topic, Group string
	Partition    int
	Messages     int64
}

// Lags reports the lag of every partition this transport's subscriptions
// read, for monitoring.
func (t *Transport) Lags() []Lag {
	t.mu.Lock()
	subs := make([]*subscription, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	var out []Lag
	for _, s := range subs {
		s.lagMu.Lock()
		for p, n := range s.lag {
			out = append(out, Lag{Topic: s.topic, Group: s.group, Partition: p, Messages: n})
		}
		s.lagMu.Unlock()
	}
	return out
}

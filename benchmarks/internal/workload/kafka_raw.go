package workload

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/types"
	kafkago "github.com/segmentio/kafka-go"
)

// RawKafka is kafka-go used directly the way bus/kafka uses it, without
// anything auditbus adds. The producer is a kafka.Writer with the same
// batching, acknowledgements and partitioner, writing messages built before
// timing with exactly the bytes auditbus writes: the CloudEvents binary-mode
// headers and the payload as the value. The consumer is the same pattern
// as bus/kafka's: a consumer group whose generation starts a reader per
// assigned partition, each fetching batches of up to bus.DefaultMaxBatch
// and marking every batch for one committer goroutine once handled, but it decodes no CloudEvent
// (it only finds the ce_id header for the tally) and has no retry loop,
// middleware or poison handling.
func RawKafka(k Kafka) Paced {
	return Paced{System: System{Name: "raw kafka-go", setup: func(w *Workload) (*Trial, error) { return setupRawKafka(k, w) }}}
}

func setupRawKafka(k Kafka, w *Workload) (*Trial, error) {
	topic, drop, err := kafkaTopic(k, "raw")
	if err != nil {
		return nil, err
	}
	msgs := rawKafkaMessages(w, topic)
	tr := &kafkago.Transport{ClientID: "auditbus", DialTimeout: 5 * time.Second}
	writer := &kafkago.Writer{
		Addr:         kafkago.TCP(k.Brokers...),
		Balancer:     &kafkago.Murmur2Balancer{},
		BatchSize:    kafkaBatchSize,
		BatchBytes:   kafkaBatchBytes,
		BatchTimeout: kafkaLinger,
		RequiredAcks: kafkago.RequireAll,
		Transport:    tr,
		MaxAttempts:  3,
	}
	dialer := &kafkago.Dialer{ClientID: "auditbus", Timeout: 10 * time.Second, DualStack: true}
	cg, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                topic,
		Brokers:           k.Brokers,
		Dialer:            dialer,
		Topics:            []string{topic},
		HeartbeatInterval: 3 * time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  200 * time.Millisecond,
		StartOffset:       kafkago.FirstOffset,
	})
	if err != nil {
		return nil, errors.Join(err, writer.Close(), drop())
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Joined before timing, as auditbus's Subscribe is.
	gen, err := cg.Next(ctx)
	if err != nil {
		cancel()
		return nil, errors.Join(err, cg.Close(), writer.Close(), drop())
	}
	t := &lockedTally{tally: newTally(w)}
	c := &rawCommitter{gen: gen, topic: topic, pending: map[int]int64{}, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	var wg sync.WaitGroup
	for _, pa := range gen.Assignments[topic] {
		wg.Add(1)
		gen.Start(func(genCtx context.Context) {
			defer wg.Done()
			rawKafkaPartition(ctx, genCtx, k, dialer, c, topic, pa, t)
		})
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(c.quit); <-c.done; close(stopped) }()
	return &Trial{
		w:     w,
		tally: t.tally,
		publish: func(ctx context.Context, lo, hi int) error {
			return writer.WriteMessages(ctx, msgs[lo:hi]...)
		},
		stopped: stopped,
		close: func() error {
			cancel()
			err := cg.Close()
			<-stopped
			err = errors.Join(err, writer.Close())
			tr.CloseIdleConnections()
			return errors.Join(err, drop())
		},
	}, nil
}

// rawKafkaPartition reads one partition in batches and commits each batch
// after recording it, until the trial or the generation ends.
func rawKafkaPartition(ctx, genCtx context.Context, k Kafka, dialer *kafkago.Dialer, c *rawCommitter, topic string, pa kafkago.PartitionAssignment, t *lockedTally) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(genCtx, cancel)()
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:        k.Brokers,
		Dialer:         dialer,
		Topic:          topic,
		Partition:      pa.ID,
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        kafkaFetchMaxWait,
		QueueCapacity:  bus.DefaultMaxBatch,
		ReadBackoffMin: 10 * time.Millisecond,
		ReadBackoffMax: 500 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(pa.Offset); err != nil {
		return
	}
	batch := make([]kafkago.Message, 0, bus.DefaultMaxBatch)
	for {
		batch = rawKafkaFetch(ctx, r, batch[:0])
		if len(batch) == 0 {
			return
		}
		t.mu.Lock()
		for i := range batch {
			t.record(rawKafkaID(&batch[i]), len(batch[i].Value))
		}
		t.mu.Unlock()
		c.mark(pa.ID, batch[len(batch)-1].Offset+1)
	}
}

// rawCommitter is the plain way to commit a generation's offsets from
// several partition readers with kafka-go: one goroutine sends whatever
// the readers marked since its last OffsetCommit, as bus/kafka does.
type rawCommitter struct {
	gen              *kafkago.Generation
	topic            string
	mu               sync.Mutex
	pending          map[int]int64
	kick, quit, done chan struct{}
}

func (c *rawCommitter) mark(partition int, next int64) {
	c.mu.Lock()
	c.pending[partition] = next
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *rawCommitter) run() {
	defer close(c.done)
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			c.flush()
			return
		}
		c.flush()
	}
}

func (c *rawCommitter) flush() {
	c.mu.Lock()
	offsets := c.pending
	c.pending = make(map[int]int64, len(offsets))
	c.mu.Unlock()
	if len(offsets) > 0 {
		_ = c.gen.CommitOffsets(map[string]map[int]int64{c.topic: offsets})
	}
}

// rawKafkaFetch reads a batch as bus/kafka does with MaxWait zero: one
// message, then more while the partition has them (by its high-water mark),
// up to bus.DefaultMaxBatch, for at most one fetch wait.
func rawKafkaFetch(ctx context.Context, r *kafkago.Reader, batch []kafkago.Message) []kafkago.Message {
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return batch
	}
	batch = append(batch, m)
	if m.HighWaterMark <= m.Offset+1 {
		return batch
	}
	bctx, cancel := context.WithTimeout(ctx, kafkaFetchMaxWait)
	defer cancel()
	for len(batch) < bus.DefaultMaxBatch && m.HighWaterMark > m.Offset+1 {
		if m, err = r.FetchMessage(bctx); err != nil {
			break
		}
		batch = append(batch, m)
	}
	return batch
}

// rawKafkaID is the event id the tally needs: the ce_id header's value.
func rawKafkaID(m *kafkago.Message) string {
	for _, h := range m.Headers {
		if h.Key == "ce_id" {
			return string(h.Value)
		}
	}
	return ""
}

// rawKafkaMessages builds, for every event, the message bus/kafka writes
// for it in binary mode: the same headers in the same order, and the
// payload as the value.
func rawKafkaMessages(w *Workload, topic string) []kafkago.Message {
	at := types.FormatTime(time.Now())
	out := make([]kafkago.Message, w.Events)
	for i := range out {
		out[i] = kafkago.Message{
			Topic: topic,
			Headers: []kafkago.Header{
				{Key: "ce_specversion", Value: []byte("1.0")},
				{Key: "ce_id", Value: []byte(w.ID(i))},
				{Key: "ce_source", Value: []byte(source)},
				{Key: "ce_type", Value: []byte(eventType)},
				{Key: "ce_time", Value: []byte(at)},
				{Key: "content-type", Value: []byte("application/octet-stream")},
			},
			Value: w.Payload(i),
		}
	}
	return out
}

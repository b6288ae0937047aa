package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
	kafkago "github.com/segmentio/kafka-go"
)

// Subscribe joins the Kafka consumer group and returns once this member has
// its first partition assignment, so that events published afterwards reach
// the group. A new group starts at the beginning of the topic (see
// Config.StartFromLatest). Message.Attempt counts retries within this
// member; Kafka keeps no delivery count across members.
func (t *Transport) Subscribe(ctx context.Context, topic, group string, h bus.Handler, cfg bus.SubscribeConfig) (bus.Subscription, error) {
	if t.closed.Load() {
		return nil, fmt.Errorf("auditbus: kafka subscribe to %q: %w", topic, bus.ErrClosed)
	}
	if err := t.ensureTopic(ctx, topic); err != nil {
		return nil, fmt.Errorf("auditbus: kafka subscribe to %q: %w", topic, err)
	}
	start := kafkago.FirstOffset
	if t.cfg.StartFromLatest {
		start = kafkago.LastOffset
	}
	cg, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                group,
		Brokers:           t.cfg.Brokers,
		Dialer:            t.dialer,
		Topics:            []string{topic},
		HeartbeatInterval: t.cfg.HeartbeatInterval,
		SessionTimeout:    t.cfg.SessionTimeout,
		RebalanceTimeout:  t.cfg.RebalanceTimeout,
		JoinGroupBackoff:  200 * time.Millisecond,
		StartOffset:       start,
	})
	if err != nil {
		return nil, fmt.Errorf("auditbus: kafka subscribe to %q (group %q): %w", topic, group, err)
	}
	// Bound the first join, so that unreachable brokers are an error rather
	// than a Subscribe that never returns.
	joinCtx, cancelJoin := context.WithTimeout(ctx, t.cfg.SessionTimeout+t.cfg.RebalanceTimeout)
	gen, err := cg.Next(joinCtx)
	cancelJoin()
	if err != nil {
		_ = cg.Close()
		return nil, fmt.Errorf("auditbus: kafka subscribe to %q (group %q): join the group on brokers %v: %w", topic, group, t.cfg.Brokers, err)
	}
	stopCtx, stop := context.WithCancel(context.Background())
	s := &subscription{
		t: t, topic: topic, group: group, h: h, cfg: cfg.WithDefaults(), ctx: ctx, cg: cg,
		stopCtx: stopCtx, stop: stop, done: make(chan struct{}),
	}
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		stop()
		_ = cg.Close()
		return nil, fmt.Errorf("auditbus: kafka subscribe to %q: %w", topic, bus.ErrClosed)
	}
	t.subs[s] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	go s.run(gen)
	return s, nil
}

// subscription is one member of a consumer group.
type subscription struct {
	t            *Transport
	topic, group string
	h            bus.Handler
	cfg          bus.SubscribeConfig
	ctx          context.Context // the caller's; handlers run under it
	cg           *kafkago.ConsumerGroup

	stopCtx context.Context // cancelled by Close
	stop    context.CancelFunc
	done    chan struct{}

	mu  sync.Mutex
	err error // why it stopped; final once done is closed

	lagMu sync.Mutex
	lag   map[int]int64 // per partition this member reads: messages after the last fetched
}

// setLag records partition's lag after a fetch; a negative lag drops the
// partition (it was revoked).
func (s *subscription) setLag(partition int, lag int64) {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	if lag < 0 {
		delete(s.lag, partition)
		return
	}
	if s.lag == nil {
		s.lag = map[int]int64{}
	}
	s.lag[partition] = lag
}

func (s *subscription) Close() error {
	s.stop()
	<-s.done
	return nil
}

func (s *subscription) Done() <-chan struct{} { return s.done }

func (s *subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// fail records the first error that stops the subscription and stops it.
func (s *subscription) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.stop()
}

func (s *subscription) stopped() bool { return s.stopCtx.Err() != nil || s.ctx.Err() != nil }

// run handles one generation after another until the subscription stops.
func (s *subscription) run(gen *kafkago.Generation) {
	defer func() {
		_ = s.cg.Close() // leaves the group, so the others take our partitions now
		if s.err == nil {
			s.err = s.ctx.Err() // nil after Close
		}
		s.t.mu.Lock()
		delete(s.t.subs, s)
		s.t.mu.Unlock()
		close(s.done)
		s.t.wg.Done()
	}()
	// Ending the caller's context stops the subscription too.
	unwatch := context.AfterFunc(s.ctx, s.stop)
	defer unwatch()
	for {
		s.runGeneration(gen)
		if s.stopped() {
			return
		}
		var err error
		for gen, err = s.cg.Next(s.stopCtx); err != nil; gen, err = s.cg.Next(s.stopCtx) {
			if s.stopped() || errors.Is(err, kafkago.ErrGroupClosed) {
				return
			}
			// Rebalances in progress and brief broker outages: rejoin.
			s.t.cfg.Logger.Warn("kafka consumer group rejoin", "topic", s.topic, "group", s.group, "error", err)
		}
	}
}

// runGeneration reads every assigned partition in parallel until the
// generation ends (a rebalance) or the subscription stops.
func (s *subscription) runGeneration(gen *kafkago.Generation) {
	parts := gen.Assignments[s.topic]
	if len(parts) == 0 {
		// More members than partitions: idle until the next rebalance.
		var wg sync.WaitGroup
		wg.Add(1)
		gen.Start(func(ctx context.Context) {
			defer wg.Done()
			select {
			case <-ctx.Done():
			case <-s.stopCtx.Done():
			}
		})
		wg.Wait()
		return
	}
	c := newCommitter(s, gen)
	var wg sync.WaitGroup
	for _, pa := range parts {
		wg.Add(1)
		gen.Start(func(ctx context.Context) {
			defer wg.Done()
			s.consumePartition(ctx, pa, c)
		})
	}
	wg.Wait()
	c.close()
}

// consumePartition reads one partition in order, in batches, marking each
// batch for commit after its handler succeeded.
func (s *subscription) consumePartition(genCtx context.Context, pa kafkago.PartitionAssignment, c *committer) {
	// Fetching stops when the generation ends or Close is called; a handler
	// in flight runs on under the caller's context and finishes its batch.
	ctx, cancel := context.WithCancel(genCtx)
	defer cancel()
	defer context.AfterFunc(s.stopCtx, cancel)()

	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:        s.t.cfg.Brokers,
		Dialer:         s.t.dialer,
		Topic:          s.topic,
		Partition:      pa.ID,
		MinBytes:       1,
		MaxBytes:       int(max(s.t.cfg.BatchBytes, 10<<20)),
		MaxWait:        s.t.cfg.FetchMaxWait,
		QueueCapacity:  s.cfg.MaxBatch,
		ReadBackoffMin: 10 * time.Millisecond,
		ReadBackoffMax: 500 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(pa.Offset); err != nil {
		s.fail(fmt.Errorf("auditbus: kafka consume %q partition %d: seek to %d: %w", s.topic, pa.ID, pa.Offset, err))
		return
	}
	var dec decoder
	raw := make([]kafkago.Message, 0, s.cfg.MaxBatch)
	msgs := make([]bus.Message, 0, s.cfg.MaxBatch)
	for {
		raw = s.fetch(ctx, r, raw[:0])
		if len(raw) == 0 {
			s.setLag(pa.ID, -1)
			return // generation over or stopping
		}
		last := &raw[len(raw)-1]
		s.setLag(pa.ID, max(last.HighWaterMark-last.Offset-1, 0))
		msgs = msgs[:0]
		for i := range raw {
			e, err := dec.decode(&raw[i])
			if err != nil {
				if !s.poison(raw[i], err) {
					return
				}
				continue
			}
			msgs = append(msgs, bus.Message{Event: e, Topic: s.topic, Partition: pa.ID, Offset: raw[i].Offset, Attempt: 1, Trace: traceOf(&raw[i])})
		}
		if len(msgs) > 0 {
			outcome, _, err := bus.Deliver(s.ctx, s.stopCtx.Done(), s.cfg, s.h, msgs)
			switch outcome {
			case bus.Exhausted:
				s.fail(err)
				return
			case bus.Stopped:
				return
			}
		}
		c.mark(pa.ID, raw[len(raw)-1].Offset+1)
		clear(msgs)
	}
}

// fetch reads a batch: it waits for one message, then goes on reading while
// the partition has more (by its high-water mark), up to MaxBatch, waiting
// at most MaxWait (or one fetch wait) for them.
func (s *subscription) fetch(ctx context.Context, r *kafkago.Reader, raw []kafkago.Message) []kafkago.Message {
	m, err := r.FetchMessage(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.t.cfg.Logger.Warn("kafka fetch failed", "topic", s.topic, "group", s.group, "partition", r.Config().Partition, "error", err)
		}
		return raw
	}
	raw = append(raw, m)
	if len(raw) == s.cfg.MaxBatch || (s.cfg.MaxWait == 0 && m.HighWaterMark <= m.Offset+1) {
		return raw
	}
	wait := s.cfg.MaxWait
	if wait == 0 {
		wait = s.t.cfg.FetchMaxWait
	}
	bctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for len(raw) < s.cfg.MaxBatch && (s.cfg.MaxWait > 0 || m.HighWaterMark > m.Offset+1) {
		if m, err = r.FetchMessage(bctx); err != nil {
			break
		}
		raw = append(raw, m)
	}
	return raw
}

// poison hands a message that is not a CloudEvent to Config.Poison, retrying
// while it fails. It returns false if the subscription stopped meanwhile.
func (s *subscription) poison(m kafkago.Message, reason error) bool {
	p := Poison{Group: s.group, Message: m, Reason: reason}
	if s.t.cfg.Poison == nil {
		s.t.cfg.Logger.Error("kafka message is not a CloudEvent; skipped", "topic", m.Topic, "group", s.group,
			"partition", m.Partition, "offset", m.Offset, "reason", reason)
		return true
	}
	for attempt := 1; ; attempt++ {
		err := s.t.cfg.Poison(s.ctx, p)
		if err == nil {
			return true
		}
		s.t.cfg.Logger.Warn("kafka poison callback failed; retrying", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "error", err)
		select {
		case <-time.After(s.cfg.Backoff(attempt)):
		case <-s.stopCtx.Done():
			return false
		}
	}
}

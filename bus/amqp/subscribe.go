package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/backoff"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// subscription is one consumer of a group's queue, on its own channel of
// the consume connection.
type subscription struct {
	t                   *Transport
	topic, group, queue string
	ctx                 context.Context
	h                   bus.Handler
	cfg                 bus.SubscribeConfig
	prefetch            int

	stop     chan struct{} // closed by Close or Transport.Close
	stopOnce sync.Once
	done     chan struct{}
	err      error // written before done is closed

	// deadLetter is set by the OnExhausted wrapper when the callback asked
	// for the batch to go to the dead-letter exchange. Only the consuming
	// goroutine touches it.
	deadLetter bool
	// poisonTags are the delivery tags of the poison in the current batch.
	poisonTags []uint64
}

// How a run of consume ended.
type ending int

const (
	endStopped   ending = iota // Close, Transport.Close or the context
	endExhausted               // a batch failed every attempt; s.err says which
	endLost                    // the channel closed under the consumer
)

func (s *subscription) signalStop() { s.stopOnce.Do(func() { close(s.stop) }) }

// Close stops the consumer and waits for its handler in flight. It must not
// be called from the handler itself.
func (s *subscription) Close() error {
	s.signalStop()
	<-s.done
	return nil
}

// Done is closed once the subscription has stopped.
func (s *subscription) Done() <-chan struct{} { return s.done }

// Err says why the subscription stopped; see bus.Subscription.
func (s *subscription) Err() error {
	if isClosed(s.done) {
		return s.err
	}
	return nil
}

// wrapExhausted returns cfg with OnExhausted wrapped so that a callback
// returning ErrDeadLetter has the batch rejected to the dead-letter
// exchange.
func (s *subscription) wrapExhausted(cfg bus.SubscribeConfig) bus.SubscribeConfig {
	user := cfg.OnExhausted
	if user == nil {
		return cfg
	}
	cfg.OnExhausted = func(ctx context.Context, msgs []bus.Message, err error) error {
		res := user(ctx, msgs, err)
		if res == nil || !errors.Is(res, ErrDeadLetter) {
			return res
		}
		if s.t.cfg.DeadLetterExchange == "" {
			s.t.cfg.Logger.Warn("auditbus amqp: OnExhausted asked to dead-letter a batch, but Config.DeadLetterExchange is not set; leaving it unacknowledged",
				"topic", s.topic, "queue", s.queue)
			return res
		}
		s.deadLetter = true
		return nil
	}
	return cfg
}

// open opens a channel, declares the exchange, the queue and its binding,
// and starts consuming. Errors name the topic and the queue.
func (s *subscription) open(ctx context.Context) (*amqp091.Channel, <-chan amqp091.Delivery, error) {
	fail := func(err error) error {
		return fmt.Errorf("auditbus: amqp subscribe to %q (queue %q): %w", s.topic, s.queue, err)
	}
	l, err := s.t.subConn.get(ctx, s.stop)
	if err != nil {
		return nil, nil, fail(err)
	}
	ch, err := l.conn.Channel()
	if err != nil {
		return nil, nil, fail(fmt.Errorf("open channel: %w", err))
	}
	deliveries, err := s.declareAndConsume(ch)
	if err != nil {
		_ = ch.Close()
		return nil, nil, fail(err)
	}
	return ch, deliveries, nil
}

func (s *subscription) declareAndConsume(ch *amqp091.Channel) (<-chan amqp091.Delivery, error) {
	if err := ch.Qos(s.prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("set prefetch %d: %w", s.prefetch, err)
	}
	if err := exchangeDeclare(ch, s.topic); err != nil {
		return nil, err
	}
	if _, err := ch.QueueDeclare(s.queue, true, false, false, false, s.t.cfg.queueArgs()); err != nil {
		return nil, fmt.Errorf("declare queue (durable, %s): %w", s.t.cfg.QueueType, err)
	}
	if err := ch.QueueBind(s.queue, "#", s.topic, false, nil); err != nil {
		return nil, fmt.Errorf("bind queue to exchange %q: %w", s.topic, err)
	}
	deliveries, err := ch.Consume(s.queue, "", false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	return ahead(deliveries, s.prefetch), nil
}

// ahead moves deliveries, as amqp091 hands them over, into a channel with
// room for the whole prefetch, and closes it when deliveries closes.
// amqp091 hands its deliveries over one at a time on an unbuffered
// channel, so a batch taking "what is ready" would find only the one the
// library's goroutine had offered before the handler took the last batch:
// batches of one or two, whatever the prefetch. Moved here while the
// handler works, everything the broker sent is ready for the next batch.
// The send never blocks: the broker sends at most prefetch unacknowledged
// deliveries, and every delivery in the channel is unacknowledged.
func ahead(deliveries <-chan amqp091.Delivery, prefetch int) <-chan amqp091.Delivery {
	out := make(chan amqp091.Delivery, prefetch)
	go func() {
		defer close(out)
		for d := range deliveries {
			out <- d
		}
	}()
	return out
}

func (s *subscription) run(ch *amqp091.Channel, deliveries <-chan amqp091.Delivery) {
	defer func() {
		s.t.mu.Lock()
		delete(s.t.subs, s)
		s.t.mu.Unlock()
		close(s.done)
		s.t.wg.Done()
	}()
	batch := make([]Delivery, 0, s.cfg.MaxBatch)
	msgs := make([]bus.Message, 0, s.cfg.MaxBatch)
	for {
		end := s.consume(ch, deliveries, &batch, &msgs)
		// Closing the channel hands whatever it did not acknowledge back to
		// the queue, for the group's other consumers.
		_ = ch.Close()
		switch end {
		case endStopped:
			s.stopped()
			return
		case endExhausted:
			return
		}
		if ch, deliveries = s.reopen(); ch == nil {
			s.stopped()
			return
		}
	}
}

// stopped records why the consumer stopped: its context's error, or nil
// after Close.
func (s *subscription) stopped() {
	select {
	case <-s.stop:
	default:
		if err := s.ctx.Err(); err != nil {
			s.err = err
		}
	}
}

// reopen opens the subscription again after its channel closed, with
// backoff, until it succeeds or the subscription stops (nil).
func (s *subscription) reopen() (*amqp091.Channel, <-chan amqp091.Delivery) {
	log := s.t.cfg.Logger.With("topic", s.topic, "queue", s.queue)
	log.Warn("auditbus amqp: consumer channel closed; reopening")
	wait := backoff.Policy{Initial: s.t.cfg.ReconnectBackoff, Max: s.t.cfg.MaxReconnectBackoff, Jitter: backoff.DefaultJitter}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for attempt := 1; ; attempt++ {
		select {
		case <-timer.C:
		case <-s.stop:
			return nil, nil
		case <-s.ctx.Done():
			return nil, nil
		}
		ch, deliveries, err := s.open(s.ctx)
		if err == nil {
			log.Info("auditbus amqp: consumer resumed")
			return ch, deliveries
		}
		if errors.Is(err, bus.ErrClosed) || s.ctx.Err() != nil {
			return nil, nil
		}
		log.Warn("auditbus amqp: reopening consumer failed", "error", err.Error())
		timer.Reset(wait.Delay(attempt))
	}
}

// consume hands batches of deliveries to the handler until the subscription
// stops, a batch is exhausted or the channel closes.
func (s *subscription) consume(ch *amqp091.Channel, deliveries <-chan amqp091.Delivery, batch *[]Delivery, msgs *[]bus.Message) ending {
	for {
		b, end, ok := s.collect(deliveries, (*batch)[:0])
		*batch = b
		if !ok {
			clear(b)
			return end
		}
		if ch.IsClosed() {
			// Read ahead before the channel closed: the broker delivers
			// these again, so handling them now would only duplicate them.
			clear(b)
			return endLost
		}
		out := (*msgs)[:0]
		s.poisonTags = s.poisonTags[:0]
		for i := range b {
			d := &b[i]
			ev, err := decode(d)
			if err != nil {
				s.poison(d, err)
				s.poisonTags = append(s.poisonTags, d.DeliveryTag)
				continue
			}
			out = append(out, bus.Message{Event: ev, Topic: s.topic, Offset: int64(d.DeliveryTag), Attempt: deliveryCount(d) + 1, Trace: traceOf(d)})
		}
		*msgs = out
		last := b[len(b)-1].DeliveryTag
		outcome, err := bus.Acked, error(nil)
		if len(out) > 0 {
			outcome, _, err = bus.Deliver(s.ctx, s.stop, s.cfg, s.h, out)
		}
		clear(out)
		switch outcome {
		case bus.Acked:
			// One acknowledgement covers the whole batch, poison included.
			if s.deadLetter {
				s.deadLetter = false
				err = ch.Nack(last, true, false)
			} else {
				err = ch.Ack(last, true)
			}
		default:
			// The batch stays unacknowledged; the poison in it was handled.
			for _, tag := range s.poisonTags {
				_ = ch.Ack(tag, false)
			}
		}
		clear(b)
		switch outcome {
		case bus.Stopped:
			return endStopped
		case bus.Exhausted:
			s.err = err
			return endExhausted
		}
		if err != nil {
			// The channel is gone: the broker delivers the batch again.
			s.t.cfg.Logger.Debug("auditbus amqp: acknowledgement failed", "queue", s.queue, "error", err.Error())
		}
	}
}

// collect waits for a delivery, then takes whatever else is ready, up to
// MaxBatch, waiting up to MaxWait for a full batch. ok is false, with the
// reason, when the consumer must stop or the channel closed.
func (s *subscription) collect(deliveries <-chan amqp091.Delivery, b []Delivery) (_ []Delivery, _ ending, ok bool) {
	var timer *time.Timer
	var expired <-chan time.Time // nil, so never ready, until the batch has begun
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(b) < s.cfg.MaxBatch {
		if len(b) > 0 {
			select {
			case d, ok := <-deliveries:
				if !ok {
					return b, endLost, false
				}
				b = append(b, d)
				continue
			default:
			}
			if s.cfg.MaxWait <= 0 {
				break
			}
			if timer == nil {
				timer = time.NewTimer(s.cfg.MaxWait)
				expired = timer.C
			}
		}
		select {
		case d, ok := <-deliveries:
			if !ok {
				return b, endLost, false
			}
			b = append(b, d)
		case <-expired:
			return b, 0, true
		case <-s.stop:
			return b, endStopped, false
		case <-s.ctx.Done():
			return b, endStopped, false
		}
	}
	return b, 0, true
}

// poison hands a message that is not a valid CloudEvent to Config.Poison,
// or logs it.
func (s *subscription) poison(d *Delivery, err error) {
	s.t.poisoned.Add(1)
	raw := *d
	raw.Acknowledger = nil
	m := PoisonMessage{Topic: s.topic, Group: s.group, Queue: s.queue, Delivery: raw, Err: err}
	if s.t.cfg.Poison != nil {
		s.t.cfg.Poison(s.ctx, m)
		return
	}
	s.t.cfg.Logger.Warn("auditbus amqp: dropping a message that is not a valid CloudEvent",
		"topic", s.topic, "queue", s.queue, "routing_key", d.RoutingKey, "message_id", d.MessageId, "reason", err.Error())
}

package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/auditbus/auditbus/bus"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Transport is the RabbitMQ bus.Transport. Create it with New.
type Transport struct {
	cfg     Config
	pubConn *connection
	subConn *connection
	pub     *publisher
	closed  chan struct{} // closed once subscriptions have stopped, to close the connections

	declared sync.Map // topic -> struct{}: exchanges known to exist

	mu       sync.Mutex // guards subs and closing
	subs     map[*subscription]struct{}
	closing  bool
	wg       sync.WaitGroup
	poisoned atomic.Int64
}

var _ bus.Transport = (*Transport)(nil)

// New connects to the broker: one connection for publishing and one for
// consuming, as RabbitMQ advises, so that flow control on publishers does
// not hold back consumers. It fails if the broker cannot be reached now;
// from then on both connections reconnect by themselves.
func New(cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Transport{cfg: cfg, closed: make(chan struct{}), subs: make(map[*subscription]struct{})}
	if t.pubConn, err = dialConnection("publish", &t.cfg, t.closed); err != nil {
		return nil, err
	}
	if t.subConn, err = dialConnection("consume", &t.cfg, t.closed); err != nil {
		close(t.closed)
		t.pubConn.wait()
		return nil, err
	}
	t.pub = &publisher{t: t, conn: t.pubConn, window: cfg.ConfirmWindow}
	return t, nil
}

// Publish publishes events to the topic's exchange, routed by their type,
// and returns once the broker has confirmed every one. An event no queue
// takes is an error wrapping bus.ErrNoRoute; one the broker refuses, an
// error wrapping ErrNacked; both name the event. If the connection drops,
// Publish publishes what was not confirmed again once it is back, until
// ctx ends.
func (t *Transport) Publish(ctx context.Context, topic string, events []bus.Event) error {
	if t.isClosing() {
		return fmt.Errorf("auditbus: amqp publish to %q: %w", topic, bus.ErrClosed)
	}
	if len(events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("auditbus: amqp publish to %q: %w", topic, err)
	}
	return t.pub.publish(ctx, topic, events)
}

// Subscribe declares the group's queue (see QueueName), binds it to the
// topic's exchange for every routing key, and starts consuming it. It
// returns once the queue is bound, so that every event published afterwards
// reaches the group.
func (t *Transport) Subscribe(ctx context.Context, topic, group string, h bus.Handler, cfg bus.SubscribeConfig) (bus.Subscription, error) {
	if t.isClosing() {
		return nil, fmt.Errorf("auditbus: amqp subscribe to %q: %w", topic, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("auditbus: amqp subscribe to %q: %w", topic, err)
	}
	cfg = cfg.WithDefaults()
	s := &subscription{
		t: t, topic: topic, group: group, queue: QueueName(topic, group),
		ctx: ctx, h: h, prefetch: t.cfg.prefetch(cfg.MaxBatch),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.cfg = s.wrapExhausted(cfg)
	ch, deliveries, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		_ = ch.Close()
		return nil, fmt.Errorf("auditbus: amqp subscribe to %q: %w", topic, bus.ErrClosed)
	}
	t.subs[s] = struct{}{}
	t.wg.Add(1)
	go s.run(ch, deliveries)
	return s, nil
}

// MessagingSystem is "rabbitmq", the messaging.system of the broker.
func (t *Transport) MessagingSystem() string { return "rabbitmq" }

// Close stops every subscription, waiting for the handlers in flight and
// acknowledging what they finished, then closes both connections.
// Unacknowledged messages stay in their queues. Publishes still waiting for
// confirms fail with bus.ErrClosed.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return nil
	}
	t.closing = true
	for s := range t.subs {
		s.signalStop()
	}
	t.mu.Unlock()
	t.wg.Wait()
	close(t.closed)
	t.pubConn.wait()
	t.subConn.wait()
	return nil
}

func (t *Transport) isClosing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closing
}

// Stats are the transport's counters since New.
type Stats struct {
	Published   int64 // messages sent, counting those sent again
	Republished int64 // messages sent again after a channel or connection dropped
	Nacked      int64 // negative publisher confirms
	Returned    int64 // messages returned as unroutable
	Poison      int64 // delivered messages that were not valid CloudEvents
	// Reconnects of the publishing and the consuming connection.
	PublishReconnects, ConsumeReconnects int64
}

// Stats returns the transport's counters.
func (t *Transport) Stats() Stats {
	return Stats{
		Published:         t.pub.published.Load(),
		Republished:       t.pub.republished.Load(),
		Nacked:            t.pub.nacked.Load(),
		Returned:          t.pub.returned.Load(),
		Poison:            t.poisoned.Load(),
		PublishReconnects: t.pubConn.reconnects.Load(),
		ConsumeReconnects: t.subConn.reconnects.Load(),
	}
}

// QueueName is the name of the queue that holds a consumer group's events
// of topic: "<topic>.<group>". Plain AMQP consumers may read it, or bind
// queues of their own to the topic's exchange.
func QueueName(topic, group string) string { return topic + "." + group }

// declareExchange makes sure topic's exchange exists, once per topic. It
// returns errChannelGone if the connection dropped meanwhile.
func (t *Transport) declareExchange(ctx context.Context, l *link, topic string) error {
	if _, ok := t.declared.Load(topic); ok {
		return nil
	}
	ch, err := l.conn.Channel()
	if err == nil {
		err = exchangeDeclare(ch, topic)
		_ = ch.Close()
	}
	if errors.Is(err, amqp091.ErrClosed) {
		select {
		case <-l.dead:
			return errChannelGone
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	t.declared.Store(topic, struct{}{})
	return nil
}

// exchangeDeclare declares topic's durable topic exchange.
func exchangeDeclare(ch *amqp091.Channel, topic string) error {
	if err := ch.ExchangeDeclare(topic, amqp091.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %q (durable, type topic): %w", topic, err)
	}
	return nil
}

// queueArgs are the arguments of the queues made for consumer groups.
func (c *Config) queueArgs() amqp091.Table {
	args := amqp091.Table{}
	if c.QueueType == Quorum {
		// Classic is the broker's default: saying so explicitly would make
		// queues declared by other tools without the argument mismatch.
		args[amqp091.QueueTypeArg] = amqp091.QueueTypeQuorum
	}
	if c.DeadLetterExchange != "" {
		args["x-dead-letter-exchange"] = c.DeadLetterExchange
		if c.DeadLetterRoutingKey != "" {
			args["x-dead-letter-routing-key"] = c.DeadLetterRoutingKey
		}
	}
	if c.DeliveryLimit > 0 {
		args["x-delivery-limit"] = int64(c.DeliveryLimit)
	}
	return args
}

// QueueDepth is the number of messages ready in the queue of one consumer
// group.
type QueueDepth struct {
	Topic, Group, Queue string
	Messages            int
}

// QueueDepths asks the broker, on a channel of its own, how many messages
// wait in the queue of every subscription's group (a passive declare per
// queue), for monitoring. Queues shared by several subscriptions are asked
// once.
func (t *Transport) QueueDepths(ctx context.Context) ([]QueueDepth, error) {
	t.mu.Lock()
	seen := map[string]bool{}
	var out []QueueDepth
	for s := range t.subs {
		if !seen[s.queue] {
			seen[s.queue] = true
			out = append(out, QueueDepth{Topic: s.topic, Group: s.group, Queue: s.queue})
		}
	}
	t.mu.Unlock()
	if len(out) == 0 {
		return nil, nil
	}
	l, err := t.subConn.get(ctx, t.closed)
	if err != nil {
		return nil, err
	}
	ch, err := l.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("auditbus: amqp queue depths: open a channel: %w", err)
	}
	defer ch.Close()
	for i := range out {
		q, err := ch.QueueDeclarePassive(out[i].Queue, true, false, false, false, nil)
		if err != nil {
			// A failed passive declare closes the channel: stop here.
			return out[:i], fmt.Errorf("auditbus: amqp queue depth of %q: %w", out[i].Queue, err)
		}
		out[i].Messages = q.Messages
	}
	return out, nil
}

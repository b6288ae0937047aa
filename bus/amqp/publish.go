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

// errChannelGone means the publishing channel closed under a publish; what
// it did not confirm is published again on the next channel.
var errChannelGone = errors.New("publishing channel closed")

// maxChannelErrors bounds how often one publish call retries after the
// broker closed the channel over an error (not a lost connection), such as
// an exchange deleted under it.
const maxChannelErrors = 3

// Event states within a publish call.
const (
	stUnsent uint8 = iota
	stInflight
	stAcked
	stNacked
	stReturned
)

// pubCall is one Publish call: its events and what became of each.
type pubCall struct {
	topic  string
	events []bus.Event
	trace  bus.TraceContext // the publishing hop's, written on every message
	state  []uint8          // guarded by publisher.mu
	left   int              // events not yet confirmed; guarded by publisher.mu
	done   chan struct{}    // closed when left reaches 0
}

// pending is a published message awaiting its confirm.
type pending struct {
	call *pubCall
	i    int
}

// pubChannel is one channel in confirm mode and the messages awaiting its
// confirms, oldest first. The broker numbers a channel's messages from 1
// and amqp091 hands confirms over in that order, so the ring's head is
// always the message the next confirm is for.
type pubChannel struct {
	ch   *amqp091.Channel
	link *link
	dead chan struct{}  // closed by the confirm loop once the channel is gone
	err  *amqp091.Error // why it closed; written before dead is closed

	// Guarded by publisher.mu.
	ring     []pending
	head, n  int
	returned map[string]int // returned (unroutable) messages not yet matched to their confirm
	space    chan struct{}  // closed when the ring has room, if a sender waits
}

func (pc *pubChannel) isDead() bool { return isClosed(pc.dead) }

// publisher publishes over one channel of the publish connection, with up
// to Config.ConfirmWindow messages awaiting confirms.
type publisher struct {
	t      *Transport
	conn   *connection
	window int

	openMu  sync.Mutex // one goroutine opens the next channel
	sendMu  sync.Mutex // publishes in ring order; guards headers
	headers amqp091.Table
	mu      sync.Mutex // guards cur, the rings and the calls' states
	cur     *pubChannel

	published, republished, nacked, returned atomic.Int64
}

// publish publishes events to topic and waits for the broker's confirm of
// every one. When the channel or connection drops it publishes what was not
// confirmed again on the next one, until ctx ends.
func (p *publisher) publish(ctx context.Context, topic string, events []bus.Event) error {
	call := &pubCall{topic: topic, events: events, trace: bus.TraceContextOf(ctx), state: make([]uint8, len(events)), left: len(events), done: make(chan struct{})}
	channelErrors := 0
	for {
		pc, err := p.channel(ctx)
		if err != nil {
			return p.fail(topic, call, err)
		}
		if err := p.t.declareExchange(ctx, pc.link, topic); err != nil {
			if errors.Is(err, errChannelGone) {
				// The connection is gone; its channel follows at once.
				select {
				case <-pc.dead:
				case <-ctx.Done():
					return p.fail(topic, call, ctx.Err())
				}
				continue
			}
			return fmt.Errorf("auditbus: amqp publish to %q: %w", topic, err)
		}
		err = p.send(ctx, pc, call)
		if err == nil {
			select {
			case <-call.done:
				return call.result()
			case <-pc.dead:
			case <-ctx.Done():
				return p.fail(topic, call, ctx.Err())
			case <-p.t.closed:
				return p.fail(topic, call, bus.ErrClosed)
			}
		} else if !errors.Is(err, errChannelGone) {
			return err
		}
		// The channel is gone: what it did not confirm goes out again on the
		// next one. The broker may have taken some of it, so consumers may
		// see duplicates; nothing is lost.
		p.mu.Lock()
		if call.left == 0 {
			p.mu.Unlock()
			return call.result()
		}
		again := 0
		for i, s := range call.state {
			if s == stInflight {
				call.state[i] = stUnsent
				again++
			}
		}
		p.mu.Unlock()
		p.republished.Add(int64(again))
		if pc.err != nil && channelLevel(pc.err.Code) {
			// The broker closed the channel over an error, e.g. the exchange
			// was deleted: declare it again, but give up if it persists.
			p.t.declared.Delete(topic)
			if channelErrors++; channelErrors >= maxChannelErrors {
				return fmt.Errorf("auditbus: amqp publish to %q: the broker closed the channel %d times: %w", topic, channelErrors, pc.err)
			}
		}
	}
}

// channelLevel reports whether code is a channel-level error the broker
// raised over something this channel did (a connection going away uses
// connection-level codes).
func channelLevel(code int) bool {
	switch code {
	case amqp091.AccessRefused, amqp091.NotFound, amqp091.ResourceLocked, amqp091.PreconditionFailed:
		return true
	}
	return false
}

// fail reports a publish that stopped before every event was confirmed.
func (p *publisher) fail(topic string, call *pubCall, err error) error {
	p.mu.Lock()
	left := call.left
	p.mu.Unlock()
	return fmt.Errorf("auditbus: amqp publish to %q: %d of %d events not confirmed (some may have reached the broker; publishing again may duplicate them): %w",
		topic, left, len(call.events), err)
}

// send publishes every unsent event of call on pc, waiting for room in the
// confirm window. It returns errChannelGone if pc closes.
func (p *publisher) send(ctx context.Context, pc *pubChannel, call *pubCall) error {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if p.headers == nil {
		p.headers = make(amqp091.Table, 16)
	}
	mode := p.t.cfg.Mode
	for i := range call.events {
		p.mu.Lock()
		if call.state[i] != stUnsent {
			p.mu.Unlock()
			continue
		}
		for pc.n == len(pc.ring) && !pc.isDead() {
			space := wait(&pc.space)
			p.mu.Unlock()
			select {
			case <-space:
			case <-ctx.Done():
				return p.fail(call.topic, call, ctx.Err())
			case <-p.t.closed:
				return p.fail(call.topic, call, bus.ErrClosed)
			}
			p.mu.Lock()
		}
		if pc.isDead() {
			p.mu.Unlock()
			return errChannelGone
		}
		pc.ring[(pc.head+pc.n)%len(pc.ring)] = pending{call: call, i: i}
		pc.n++
		call.state[i] = stInflight
		p.mu.Unlock()

		e := &call.events[i]
		clear(p.headers)
		msg, err := encode(e, mode, p.headers)
		if err == nil && call.trace.Parent != "" {
			msg.Headers = withTrace(msg.Headers, p.headers, call.trace)
		}
		if err == nil {
			_, err = pc.ch.PublishWithDeferredConfirm(call.topic, e.Type(), true, false, msg)
		}
		if err != nil {
			// Take back the entry: no confirm will come for it.
			p.mu.Lock()
			if !pc.isDead() {
				pc.n--
				pc.ring[(pc.head+pc.n)%len(pc.ring)] = pending{}
				call.state[i] = stUnsent
			}
			p.mu.Unlock()
			if errors.Is(err, amqp091.ErrClosed) || pc.ch.IsClosed() {
				select {
				case <-pc.dead:
					return errChannelGone
				case <-ctx.Done():
					return p.fail(call.topic, call, ctx.Err())
				}
			}
			return fmt.Errorf("auditbus: amqp publish to %q: event #%d (id %q): %w", call.topic, i, e.ID(), err)
		}
		p.published.Add(1)
	}
	return nil
}

// result is the outcome of a call whose every event was confirmed.
func (c *pubCall) result() error {
	var nacked, returned []int
	for i, s := range c.state {
		switch s {
		case stNacked:
			nacked = append(nacked, i)
		case stReturned:
			returned = append(returned, i)
		}
	}
	var errs []error
	if len(returned) > 0 {
		e := &c.events[returned[0]]
		errs = append(errs, fmt.Errorf("auditbus: amqp publish to %q: %w: %d of %d events unroutable, the first #%d (id %q, type %q): no queue is bound to exchange %q for routing key %q; subscribe a consumer group first",
			c.topic, bus.ErrNoRoute, len(returned), len(c.events), returned[0], e.ID(), e.Type(), c.topic, e.Type()))
	}
	if len(nacked) > 0 {
		e := &c.events[nacked[0]]
		errs = append(errs, fmt.Errorf("auditbus: amqp publish to %q: %w: %d of %d events nacked, the first #%d (id %q, type %q); publishing them again may succeed",
			c.topic, ErrNacked, len(nacked), len(c.events), nacked[0], e.ID(), e.Type()))
	}
	return errors.Join(errs...)
}

// channel returns the live publishing channel, opening one (and waiting
// for a connection) if there is none.
func (p *publisher) channel(ctx context.Context) (*pubChannel, error) {
	p.mu.Lock()
	pc := p.cur
	p.mu.Unlock()
	if pc != nil && !pc.isDead() {
		return pc, nil
	}
	p.openMu.Lock()
	defer p.openMu.Unlock()
	for {
		p.mu.Lock()
		pc := p.cur
		p.mu.Unlock()
		if pc != nil && !pc.isDead() {
			return pc, nil
		}
		l, err := p.conn.get(ctx, nil)
		if err != nil {
			return nil, err
		}
		pc, err = p.open(l)
		if err == nil {
			p.mu.Lock()
			p.cur = pc
			p.mu.Unlock()
			return pc, nil
		}
		if !errors.Is(err, amqp091.ErrClosed) {
			return nil, fmt.Errorf("open channel: %w", err)
		}
		// The connection died under us: wait for the next one.
		select {
		case <-l.dead:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.t.closed:
			return nil, bus.ErrClosed
		}
	}
}

// open opens a channel in confirm mode on l and starts its confirm loop.
func (p *publisher) open(l *link) (*pubChannel, error) {
	ch, err := l.conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, err
	}
	pc := &pubChannel{ch: ch, link: l, dead: make(chan struct{}), ring: make([]pending, p.window)}
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, p.window))
	// Unbuffered on purpose: amqp091's reader hands a return over before it
	// reads the confirm of the same message, so the loop below always sees
	// a return before the confirm it belongs to.
	returns := ch.NotifyReturn(make(chan amqp091.Return))
	closes := ch.NotifyClose(make(chan *amqp091.Error, 1))
	go p.confirmLoop(pc, confirms, returns, closes)
	return pc, nil
}

// confirmLoop resolves pc's messages as their confirms and returns arrive,
// until the channel closes. amqp091 sends each confirm on a channel; the
// loop takes every one that is ready under one lock and wakes each waiting
// publisher once per call, not per message.
func (p *publisher) confirmLoop(pc *pubChannel, confirms <-chan amqp091.Confirmation, returns <-chan amqp091.Return, closes <-chan *amqp091.Error) {
	for confirms != nil {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			p.returned.Add(1)
			p.mu.Lock()
			if pc.returned == nil {
				pc.returned = make(map[string]int)
			}
			pc.returned[returnKey(r.Exchange, r.RoutingKey, r.MessageId)]++
			p.mu.Unlock()
		case c, ok := <-confirms:
			if !ok {
				confirms = nil
				continue
			}
			p.mu.Lock()
			p.resolve(pc, c)
		drain:
			for {
				select {
				case c, ok := <-confirms:
					if !ok {
						confirms = nil
						break drain
					}
					p.resolve(pc, c)
				default:
					break drain
				}
			}
			signal(&pc.space)
			p.mu.Unlock()
		}
	}
	err := <-closes
	p.mu.Lock()
	pc.err = err
	close(pc.dead)
	signal(&pc.space)
	if p.cur == pc {
		p.cur = nil
	}
	p.mu.Unlock()
	_ = pc.ch.Close()
}

// resolve records confirm c for the oldest message of pc. The caller holds
// p.mu.
func (p *publisher) resolve(pc *pubChannel, c amqp091.Confirmation) {
	if pc.n == 0 {
		p.t.cfg.Logger.Error("auditbus amqp: publisher confirm with no message awaiting one", "delivery_tag", c.DeliveryTag)
		return
	}
	e := pc.ring[pc.head]
	pc.ring[pc.head] = pending{}
	pc.head = (pc.head + 1) % len(pc.ring)
	pc.n--
	call := e.call
	if call.state[e.i] != stInflight {
		return
	}
	switch {
	case !c.Ack:
		call.state[e.i] = stNacked
		p.nacked.Add(1)
	case len(pc.returned) > 0 && takeReturn(pc.returned, call.topic, &call.events[e.i]):
		call.state[e.i] = stReturned
	default:
		call.state[e.i] = stAcked
	}
	if call.left--; call.left == 0 {
		close(call.done)
	}
}

// takeReturn reports whether a return is waiting for the event, and
// consumes it. Returns carry no delivery tag, so they are matched by
// exchange, routing key and message id.
func takeReturn(returned map[string]int, topic string, e *bus.Event) bool {
	k := returnKey(topic, e.Type(), e.ID())
	n := returned[k]
	if n == 0 {
		return false
	}
	if n == 1 {
		delete(returned, k)
	} else {
		returned[k] = n - 1
	}
	return true
}

func returnKey(exchange, routingKey, id string) string {
	return exchange + "\x00" + routingKey + "\x00" + id
}

// wait returns a channel closed at the next signal, creating it if needed.
// The caller holds the lock that guards ch.
func wait(ch *chan struct{}) <-chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *ch
}

// signal wakes everyone waiting on ch. The caller holds the lock that
// guards ch.
func signal(ch *chan struct{}) {
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
}

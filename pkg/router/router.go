package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Extensions the router adds to the events it parks in a dead letter, and
// reads from replayed events. Names follow the CloudEvents rules for
// extension names (a-z and 0-9, at most 20 characters).
const (
	// ExtDeadLetterReason is why the event was given up on.
	ExtDeadLetterReason = "deadletterreason"
	// ExtDeadLetterRoute is the route that gave up on it.
	ExtDeadLetterRoute = "deadletterroute"
	// ExtDeadLetterDestination is the destination that gave up on it.
	ExtDeadLetterDestination = "deadletterdest"
	// ExtDeadLetterAttempts is how many delivery attempts were made.
	ExtDeadLetterAttempts = "deadletterattempts"
	// ExtReplay marks an event published again by a replay job; its value
	// is the job's id. The audit record of such an event carries the id as
	// its Replay, so it does not overwrite the original's record.
	ExtReplay = "auditbusreplay"
	// PoisonType is the type of the event that stands for a message that
	// was not a valid CloudEvent; its data is the raw message.
	PoisonType = "io.auditbus.poison"
)

// Auditor makes records durable; *sinks.Writer is one. Write returns once
// the records are durable.
type Auditor interface {
	Write(ctx context.Context, recs []sinks.Record) error
}

// Options are what a Router needs from the daemon.
type Options struct {
	// Transports are the enabled transports by name ("mem", "kafka",
	// "amqp"). Sources and destinations may only name these.
	Transports map[string]bus.Transport
	// Audit receives a record of every event a route finishes with. Nil
	// turns auditing off (benchmarks only: the delivery contract needs it).
	Audit Auditor
	// Metrics, if set, records deliveries, retries and outcomes.
	Metrics *Metrics
	// Logger receives failures and circuit breaker changes; nil discards.
	Logger *slog.Logger
	// MaxBatch is the most events a route handles at once (default
	// bus.DefaultMaxBatch).
	MaxBatch int
	// MemConcurrency is how many batches a route reading a mem topic
	// handles at once (default 8): it holds that many subscriptions in its
	// group, which share the topic's partitions, so per-key order holds
	// while the audit writes of several batches share one flush. Kafka
	// routes already handle every partition at once; AMQP routes keep one
	// consumer so that the queue's order holds.
	MemConcurrency int
}

// Router runs routes: it subscribes each transport-fed route to its source
// and takes events for HTTP-fed routes from Ingest. For every batch it
// filters, delivers a duplicate to each destination, parks what a
// destination gives up on in the route's dead letter, writes an audit
// record of every event with its outcome, and only then lets the source
// acknowledge the batch.
type Router struct {
	o      Options
	routes []*route
	byName map[string]*route

	mu   sync.Mutex
	subs []bus.Subscription
}

// route is one running route.
type route struct {
	r     *Router
	cfg   RouteConfig
	dests []*destination
	dead  *destination // nil when the route has none
}

// New checks routes against the enabled transports and builds their
// destinations. Errors name the route and the field.
func New(routes []RouteConfig, o Options) (*Router, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Router{o: o, byName: make(map[string]*route, len(routes))}
	var errs []error
	for _, cfg := range routes {
		rt := &route{r: r, cfg: cfg}
		fail := func(field string, err error) {
			errs = append(errs, fmt.Errorf("route %q: %s: %w", cfg.Name, field, err))
		}
		if !cfg.Source.HTTP {
			if _, err := r.transport(cfg.Source.Transport); err != nil {
				fail("source.transport", err)
			}
		}
		for i, dc := range cfg.Destinations {
			d, err := r.destination(cfg, dc)
			if err != nil {
				fail(fmt.Sprintf("destinations[%d]", i), err)
				continue
			}
			rt.dests = append(rt.dests, d)
		}
		if cfg.DeadLetter != nil {
			d, err := r.destination(cfg, *cfg.DeadLetter)
			if err != nil {
				fail("dead_letter", err)
			}
			rt.dead = d
		}
		r.routes = append(r.routes, rt)
		r.byName[cfg.Name] = rt
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

func (r *Router) transport(name string) (bus.Transport, error) {
	if t, ok := r.o.Transports[name]; ok {
		return t, nil
	}
	enabled := make([]string, 0, len(r.o.Transports))
	for n := range r.o.Transports {
		enabled = append(enabled, n)
	}
	sort.Strings(enabled)
	return nil, fmt.Errorf("transport %q is not enabled (enabled: %s; see AUDITBUS_TRANSPORTS)", name, strings.Join(enabled, ", "))
}

func (r *Router) destination(cfg RouteConfig, dc DestinationConfig) (*destination, error) {
	d := &destination{name: dc.Name, route: cfg.Name, retry: cfg.Retry, m: r.o.Metrics}
	d.breaker = &breaker{policy: cfg.CircuitBreaker, now: time.Now, onChange: func(open bool) {
		r.o.Metrics.circuit(cfg.Name, dc.Name, open)
		if open {
			r.o.Logger.Warn("circuit breaker opened", "route", cfg.Name, "destination", dc.Name, "open_for", cfg.CircuitBreaker.OpenFor)
		} else {
			r.o.Logger.Info("circuit breaker closed", "route", cfg.Name, "destination", dc.Name)
		}
	}}
	if dc.Webhook != nil {
		hook, err := dc.Webhook.NewWebhook()
		if err != nil {
			return nil, err
		}
		d.hook = hook
		return d, nil
	}
	t, err := r.transport(dc.Transport)
	if err != nil {
		return nil, err
	}
	d.transport, d.topic = t, dc.Topic
	return d, nil
}

// Start subscribes every transport-fed route to its source. Events flow
// until Close. Subscriptions end with ctx too.
func (r *Router) Start(ctx context.Context) error {
	for _, rt := range r.routes {
		if rt.cfg.Source.HTTP {
			continue
		}
		src := rt.cfg.Source
		t, _ := r.transport(src.Transport)
		n := 1
		if src.Transport == "mem" {
			n = cmp.Or(r.o.MemConcurrency, 8)
		}
		for range n {
			sub, err := t.Subscribe(ctx, src.Topic, src.Group, rt.handle, bus.SubscribeConfig{
				MaxBatch: r.o.MaxBatch,
				// A batch is only refused when the audit store or the dead
				// letter is unreachable: retry until they are back, never drop.
				MaxAttempts: math.MaxInt32,
			})
			if err != nil {
				return errors.Join(fmt.Errorf("route %q: subscribe to %s topic %q (group %q): %w", rt.cfg.Name, src.Transport, src.Topic, src.Group, err), r.Close())
			}
			r.mu.Lock()
			r.subs = append(r.subs, sub)
			r.mu.Unlock()
		}
	}
	return nil
}

// Close stops every subscription; each finishes the batch it holds, so
// its events are delivered, audited and acknowledged, or left to the source
// to deliver again.
func (r *Router) Close() error {
	r.mu.Lock()
	subs := r.subs
	r.subs = nil
	r.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// Err reports the first subscription that stopped on its own, or nil while
// every route runs.
func (r *Router) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.subs {
		select {
		case <-s.Done():
			if err := s.Err(); err != nil {
				return err
			}
			return errors.New("a route's subscription ended")
		default:
		}
	}
	return nil
}

// ErrUnknownRoute is returned by Ingest for a route that does not exist or
// is not fed by HTTP.
var ErrUnknownRoute = errors.New("no such HTTP-fed route")

// Ingest runs events through the HTTP-fed route name and returns once they
// are delivered (or dead-lettered) and audited.
func (r *Router) Ingest(ctx context.Context, name, topic string, events []bus.Event) error {
	rt, ok := r.byName[name]
	if !ok || !rt.cfg.Source.HTTP {
		return fmt.Errorf("route %q: %w", name, ErrUnknownRoute)
	}
	msgs := make([]bus.Message, len(events))
	for i := range events {
		msgs[i] = bus.Message{Event: events[i], Topic: topic, Attempt: 1}
	}
	return rt.handle(ctx, msgs)
}

// Route returns the configuration of the route called name, as the routes
// file gave it, and whether there is one. Replays look up a route's
// destinations with it.
func (r *Router) Route(name string) (RouteConfig, bool) {
	rt, ok := r.byName[name]
	if !ok {
		return RouteConfig{}, false
	}
	return rt.cfg, true
}

// HTTPRoutes lists the names of the routes Ingest accepts.
func (r *Router) HTTPRoutes() []string {
	var names []string
	for _, rt := range r.routes {
		if rt.cfg.Source.HTTP {
			names = append(names, rt.cfg.Name)
		}
	}
	return names
}

// handle is a route's bus.Handler: it returns nil only once every event of
// msgs has its outcome and its audit record is durable.
func (rt *route) handle(ctx context.Context, msgs []bus.Message) error {
	start := time.Now()
	outcome := make([]string, len(msgs))
	matched := make([]bus.Event, 0, len(msgs))
	index := make([]int, 0, len(msgs))
	for i := range msgs {
		if rt.cfg.Filter.Match(&msgs[i].Event) {
			outcome[i] = sinks.OutcomeDelivered
			matched = append(matched, msgs[i].Event)
			index = append(index, i)
		} else {
			outcome[i] = sinks.OutcomeFiltered
		}
	}
	rt.r.o.Metrics.took(rt.cfg.Name, len(msgs), len(msgs)-len(matched))
	if len(matched) > 0 {
		if err := rt.fanOut(ctx, matched, index, outcome); err != nil {
			return err
		}
	}
	if err := rt.audit(ctx, msgs, outcome, start); err != nil {
		return err
	}
	if rt.r.o.Metrics != nil {
		counts := make(map[string]int, 2)
		for _, o := range outcome {
			counts[o]++
		}
		rt.r.o.Metrics.finished(rt.cfg.Name, counts, start)
	}
	return nil
}

// fanOut delivers events to every destination at once and dead-letters
// what each gives up on, marking those events' outcome.
func (rt *route) fanOut(ctx context.Context, events []bus.Event, index []int, outcome []string) error {
	failed := make([][]failure, len(rt.dests))
	errs := make([]error, len(rt.dests))
	if len(rt.dests) == 1 {
		failed[0], errs[0] = rt.dests[0].deliver(ctx, events)
	} else {
		var wg sync.WaitGroup
		for k, d := range rt.dests {
			wg.Go(func() { failed[k], errs[k] = d.deliver(ctx, events) })
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("route %q: delivery interrupted: %w", rt.cfg.Name, err)
	}
	for k, d := range rt.dests {
		if len(failed[k]) == 0 {
			continue
		}
		if err := rt.deadLetter(ctx, d, events, failed[k]); err != nil {
			return err
		}
		for _, f := range failed[k] {
			outcome[index[f.index]] = sinks.OutcomeDeadLettered
		}
	}
	return nil
}

// deadLetter parks the events d gave up on in the route's dead letter,
// each with the reason, the destination and the attempt count.
func (rt *route) deadLetter(ctx context.Context, d *destination, events []bus.Event, failed []failure) error {
	if rt.dead == nil {
		return fmt.Errorf("route %q: destination %q gave up on %d events (first: %v) and the route has no dead letter; they stay unacknowledged at the source",
			rt.cfg.Name, d.name, len(failed), failed[0].err)
	}
	parked := make([]bus.Event, len(failed))
	for j, f := range failed {
		e := events[f.index].Clone()
		e.SetExtension(ExtDeadLetterReason, f.err.Error())
		e.SetExtension(ExtDeadLetterRoute, rt.cfg.Name)
		e.SetExtension(ExtDeadLetterDestination, d.name)
		e.SetExtension(ExtDeadLetterAttempts, int32(f.attempts))
		parked[j] = e
	}
	if err := rt.park(ctx, parked); err != nil {
		return fmt.Errorf("route %q: dead-letter %d events given up by destination %q: %w", rt.cfg.Name, len(parked), d.name, err)
	}
	rt.r.o.Metrics.deadLetteredN(rt.cfg.Name, d.name, len(parked))
	rt.r.o.Logger.Warn("events dead-lettered", "route", rt.cfg.Name, "destination", d.name, "events", len(parked), "reason", failed[0].err)
	return nil
}

// park delivers events to the dead letter; an event the dead letter itself
// gives up on is an error, so the source keeps the batch.
func (rt *route) park(ctx context.Context, events []bus.Event) error {
	lost, err := rt.dead.deliver(ctx, events)
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return fmt.Errorf("dead letter %s refused %d events: %w", rt.dead.describe(), len(lost), lost[0].err)
	}
	return nil
}

// audit writes a record of every event of the batch with its outcome.
func (rt *route) audit(ctx context.Context, msgs []bus.Message, outcome []string, received time.Time) error {
	if rt.r.o.Audit == nil {
		return nil
	}
	transport := rt.cfg.Source.Transport
	if rt.cfg.Source.HTTP {
		transport = "http"
	}
	recs := make([]sinks.Record, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		recs[i] = sinks.Record{
			Event: m.Event, Transport: transport, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
			Route: rt.cfg.Name, Outcome: outcome[i], Replay: replayOf(&m.Event), Received: received,
		}
	}
	if err := rt.r.o.Audit.Write(ctx, recs); err != nil {
		return fmt.Errorf("route %q: audit %d events: %w", rt.cfg.Name, len(recs), err)
	}
	return nil
}

// replayOf is the replay job id an event carries, or "".
func replayOf(e *event.Event) string {
	if ec, ok := e.Context.(*event.EventContextV1); ok && ec.Extensions != nil {
		if v, ok := ec.Extensions[ExtReplay].(string); ok {
			return v
		}
	}
	return ""
}

// Poison is a message a transport could not read as a CloudEvent.
type Poison struct {
	// Transport, Topic and Group say where it was read; they pick the route.
	Transport, Topic, Group string
	// Partition and Offset locate it, where the transport has them.
	Partition int
	Offset    int64
	// ID identifies the message stably across redeliveries (e.g. topic,
	// partition and offset, or a digest of the body), so the record of a
	// redelivered poison message replaces the first.
	ID string
	// Payload is the message body as read.
	Payload []byte
	// Reason says why it is not a CloudEvent.
	Reason error
}

// Poison parks a message that is not a CloudEvent in the dead letter of
// the route reading it, as an event of type PoisonType whose data is the
// raw payload and whose deadletterreason says why, and audits it with the
// outcome "poison". It returns an error (so the transport keeps the
// message) when no route reads that source, the route has no dead letter,
// or the dead letter or audit store is unreachable.
func (r *Router) Poison(ctx context.Context, p Poison) error {
	var rt *route
	for _, c := range r.routes {
		s := c.cfg.Source
		if !s.HTTP && s.Transport == p.Transport && s.Topic == p.Topic && (p.Group == "" || s.Group == p.Group) {
			rt = c
			break
		}
	}
	if rt == nil {
		return fmt.Errorf("poison message from %s topic %q (group %q): no route reads it", p.Transport, p.Topic, p.Group)
	}
	e := event.New()
	e.SetID(p.ID)
	e.SetSource("/auditbus/poison/" + p.Transport + "/" + p.Topic)
	e.SetType(PoisonType)
	e.SetTime(time.Now())
	_ = e.SetData("application/octet-stream", p.Payload)
	reason := "not a CloudEvent"
	if p.Reason != nil {
		reason = p.Reason.Error()
	}
	e.SetExtension(ExtDeadLetterReason, reason)
	e.SetExtension(ExtDeadLetterRoute, rt.cfg.Name)
	if rt.dead == nil {
		return fmt.Errorf("route %q: poison message %s: the route has no dead letter; it stays unacknowledged", rt.cfg.Name, p.ID)
	}
	if err := rt.park(ctx, []bus.Event{e}); err != nil {
		return fmt.Errorf("route %q: dead-letter poison message %s: %w", rt.cfg.Name, p.ID, err)
	}
	msgs := []bus.Message{{Event: e, Topic: p.Topic, Partition: p.Partition, Offset: p.Offset, Attempt: 1}}
	if err := rt.audit(ctx, msgs, []string{sinks.OutcomePoison}, time.Now()); err != nil {
		return err
	}
	rt.r.o.Metrics.finished(rt.cfg.Name, map[string]int{sinks.OutcomePoison: 1}, time.Now())
	r.o.Logger.Warn("poison message dead-lettered", "route", rt.cfg.Name, "transport", p.Transport, "topic", p.Topic, "id", p.ID, "reason", reason)
	return nil
}

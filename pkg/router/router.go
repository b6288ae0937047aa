package router

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/egress"
	"github.com/auditbus/auditbus/pkg/refusal"
	"github.com/auditbus/auditbus/sinks"
	"go.opentelemetry.io/otel/trace"
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
	// ExtReplay marks an event published again by the daemon's replay
	// jobs; its value is the job's id. A route that reads such an event
	// records it like any other: the extension is part of the version.
	ExtReplay = "auditbusreplay"
	// PoisonType is the type of the event that stands for a message that
	// was not a valid CloudEvent; its data is the raw message.
	PoisonType = "io.auditbus.poison"
)

// TransportHTTP is the Transport of the entries of events a route took
// from an HTTP request (Ingest).
const TransportHTTP = "http"

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
	// Audit receives a ledger record of every event a route finishes
	// with: its received entry and what became of it. Nil turns auditing
	// off (benchmarks only: the delivery contract needs it).
	Audit Auditor
	// Metrics, if set, records deliveries, retries and outcomes.
	Metrics *Metrics
	// Tracer, if set, traces every batch: its consumer span, the filter,
	// each destination's delivery (retries as events, the outcome as an
	// attribute) and each webhook call. Nil turns tracing off at the cost
	// of a nil check per batch.
	Tracer trace.Tracer
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
	// Egress is where the routes' webhooks may connect (nil: anywhere);
	// the daemon's trusted policy, since the operator wrote the routes.
	Egress *egress.Policy
	// Signatures, if set, checks every event a route takes in against the
	// signer registry, once per event: its received entry records the
	// result, and a route with signatures: required refuses what fails.
	// Nil (no registry) checks nothing and costs nothing; a route that
	// requires signatures then fails New.
	Signatures SignatureChecker
	// Refusals, if set, counts the events routes refuse.
	Refusals *refusal.Metrics
}

// Router runs routes: it subscribes each transport-fed route to its source
// and takes events for HTTP-fed routes from Ingest. For every batch it
// filters, delivers a duplicate to each destination, parks what a
// destination gives up on in the route's dead letter, writes a ledger
// record of every event (received, then filtered or one delivered or
// dead-lettered entry per destination), and only once that is durable lets
// the source acknowledge the batch.
type Router struct {
	o      Options
	routes []*route
	byName map[string]*route

	mu   sync.Mutex
	subs []bus.Subscription

	// stopping is closed by Close: a batch in flight finishes what it is
	// sending, but waits for no retry (see destination.wait).
	stopping chan struct{}
	stopOnce sync.Once
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
	r := &Router{o: o, byName: make(map[string]*route, len(routes)), stopping: make(chan struct{})}
	var errs []error
	for _, cfg := range routes {
		rt := &route{r: r, cfg: cfg}
		fail := func(field string, err error) {
			errs = append(errs, fmt.Errorf("route %q: %s: %w", cfg.Name, field, err))
		}
		if cfg.RequireSignatures && o.Signatures == nil {
			fail("signatures", errors.New("required, but the daemon has no signer registry: set AUDITBUS_SIGNERS_FILE, or make the route's signatures optional"))
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
	d := &destination{name: dc.Name, route: cfg.Name, retry: cfg.Retry, m: r.o.Metrics, tracer: r.o.Tracer, stopping: r.stopping}
	d.breaker = &breaker{policy: cfg.CircuitBreaker, now: time.Now, onChange: func(open bool) {
		r.o.Metrics.circuit(cfg.Name, dc.Name, open)
		if open {
			r.o.Logger.Warn("circuit breaker opened", "route", cfg.Name, "destination", dc.Name, "open_for", cfg.CircuitBreaker.OpenFor)
		} else {
			r.o.Logger.Info("circuit breaker closed", "route", cfg.Name, "destination", dc.Name)
		}
	}}
	if dc.Webhook != nil {
		hook, err := dc.Webhook.newWebhook(r.o.Tracer, r.o.Egress)
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
// to deliver again: a batch whose destination fails is not retried.
func (r *Router) Close() error {
	r.stopOnce.Do(func() { close(r.stopping) })
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

// IngestOptions say who handed Ingest its events.
type IngestOptions struct {
	// Request identifies the HTTP request that carried the events: the
	// same for every event of the request, and for every retry of their
	// audit write, so that a retried write records nothing twice while
	// two requests carrying the same event are two receptions. Empty
	// makes one up for the call.
	Request string
	// Principal is who sent the request: the JWT subject, or "anonymous"
	// when authentication is off.
	Principal string
}

// Ingest runs events through the HTTP-fed route name and returns once they
// are delivered (or dead-lettered) and audited. Each event's received
// entry has the transport "http", o's request and principal, and the
// event's position in the request as its offset.
func (r *Router) Ingest(ctx context.Context, name string, events []bus.Event, o IngestOptions) error {
	rt, ok := r.byName[name]
	if !ok || !rt.cfg.Source.HTTP {
		return fmt.Errorf("route %q: %w", name, ErrUnknownRoute)
	}
	if o.Request == "" {
		o.Request = rand.Text()
	}
	msgs := make([]bus.Message, len(events))
	for i := range events {
		msgs[i] = bus.Message{Event: events[i], Offset: int64(i), Attempt: 1}
	}
	return rt.run(ctx, msgs, reception{transport: TransportHTTP, request: o.Request, principal: o.Principal})
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

// reception says how a batch reached its route.
type reception struct {
	transport string
	// request and principal are those of an HTTP request; a broker's
	// principal is "transport:topic".
	request, principal string
}

// handle is the bus.Handler of a route fed by a transport.
func (rt *route) handle(ctx context.Context, msgs []bus.Message) error {
	return rt.run(ctx, msgs, reception{transport: rt.cfg.Source.Transport})
}

// run returns nil only once every event of msgs has its outcome and its
// audit record is durable.
func (rt *route) run(ctx context.Context, msgs []bus.Message, from reception) (err error) {
	ctx, span := rt.startRun(ctx, msgs, from)
	defer func() { bus.EndSpan(span, err) }()
	start := time.Now().UTC()
	sigs := rt.check(msgs)
	if sigs.n > 0 {
		if from.transport == TransportHTTP {
			return rt.refuseRequest(ctx, msgs, from, &sigs, start)
		}
		if err := rt.parkRefused(ctx, msgs, &sigs); err != nil {
			return err
		}
	}
	fspan := rt.startFilter(ctx, len(msgs))
	keep := make([]bool, len(msgs))
	matched := make([]bus.Event, 0, len(msgs))
	for i := range msgs {
		if sigs.refusal(i) != nil {
			continue
		}
		if keep[i] = rt.cfg.Filter.Match(&msgs[i].Event); keep[i] {
			matched = append(matched, msgs[i].Event)
		}
	}
	judged := time.Now().UTC()
	fspan.SetAttributes(attrMatched.Int(len(matched)))
	fspan.End()
	rt.r.o.Metrics.took(rt.cfg.Name, len(msgs))
	var res [][]result
	if len(matched) > 0 {
		var err error
		if res, err = rt.fanOut(ctx, matched); err != nil {
			return err
		}
	}
	if err := rt.write(ctx, rt.records(msgs, from, &sigs, keep, res, start, judged, trace.SpanContextFromContext(ctx))); err != nil {
		return err
	}
	counts := make(map[string]int, 3)
	if n := len(msgs) - len(matched) - sigs.n; n > 0 {
		counts[sinks.KindFiltered] = n
	}
	if sigs.n > 0 {
		counts[sinks.KindRefused] = sigs.n
		rt.countRefused(from.transport, &sigs)
	}
	for j := range matched {
		outcome := sinks.KindDelivered
		for k := range res {
			if res[k][j].err != nil {
				outcome = sinks.KindDeadLettered
			}
		}
		counts[outcome]++
	}
	rt.r.o.Metrics.finished(rt.cfg.Name, counts, start)
	return nil
}

// records are the ledger records of a batch a route finished with: for
// each message its received entry (at start, with what checking its
// signature found in sigs), then a filtered entry (at
// judged) or, for the kept ones, one delivered or dead-lettered entry per
// destination with the results res of fanOut. Every entry names the
// route and where the message came from, so that the same event received
// again is recorded again while a redelivered message adds nothing, and
// the trace and span of sc, the batch's, where it is valid. A message the
// route refused has one refused entry instead, naming the dead letter it
// was parked in. It returns nil when auditing is off.
func (rt *route) records(msgs []bus.Message, from reception, sigs *checked, keep []bool, res [][]result, start, judged time.Time, sc trace.SpanContext) []sinks.Record {
	if rt.r.o.Audit == nil {
		return nil
	}
	traceID, spanID := sinks.TraceIDs(sc)
	recs := make([]sinks.Record, len(msgs))
	b := newEntries(len(msgs), len(rt.dests))
	j := 0 // index of the next kept message in res
	// A broker's principal is "transport:topic", built once per topic a
	// batch holds (one, as a rule), not once per message.
	principal, principalOf := from.principal, ""
	for i := range msgs {
		m := &msgs[i]
		at := sinks.Entry{Transport: from.transport, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Request: from.request, Route: rt.cfg.Name,
			TraceID: traceID, SpanID: spanID}
		if from.transport != TransportHTTP && (principal == "" || principalOf != m.Topic) {
			principal, principalOf = from.transport+":"+m.Topic, m.Topic
		}
		if sigs.refusal(i) != nil {
			b.add(rt.refusedEntry(at, sigs, i, start, principal, rt.dead.name))
			recs[i] = sinks.Record{Event: m.Event, Entries: b.take()}
			continue
		}
		received := at
		received.Kind, received.Time, received.Principal, received.Signature = sinks.KindReceived, start, principal, sigs.entry(i)
		b.add(received)
		if !keep[i] {
			e := at
			e.Kind, e.Time = sinks.KindFiltered, judged
			b.add(e)
		} else {
			for k, d := range rt.dests {
				r := res[k][j]
				e := at
				e.Kind, e.Time, e.Destination, e.Attempts = sinks.KindDelivered, r.at, d.name, r.attempts
				if r.err != nil {
					e.Kind, e.Error = sinks.KindDeadLettered, r.err.Error()
				}
				b.add(e)
			}
			j++
		}
		recs[i] = sinks.Record{Event: m.Event, Entries: b.take()}
	}
	return recs
}

// entries hands out the entries of a batch's records from one allocation.
type entries struct {
	all  []sinks.Entry
	from int
}

// newEntries has room for the entries of n events routed to dests
// destinations.
func newEntries(n, dests int) *entries {
	return &entries{all: make([]sinks.Entry, 0, n*(1+max(dests, 1)))}
}

func (b *entries) add(e sinks.Entry) { b.all = append(b.all, e) }

// take returns the entries added since the last take.
func (b *entries) take() []sinks.Entry {
	s := b.all[b.from:len(b.all):len(b.all)]
	b.from = len(b.all)
	return s
}

// fanOut delivers events to every destination at once and dead-letters
// what each gives up on. It returns each destination's results, in the
// order of rt.dests.
func (rt *route) fanOut(ctx context.Context, events []bus.Event) ([][]result, error) {
	res := make([][]result, len(rt.dests))
	errs := make([]error, len(rt.dests))
	if len(rt.dests) == 1 {
		res[0], errs[0] = rt.dests[0].deliver(ctx, events)
	} else {
		var wg sync.WaitGroup
		for k, d := range rt.dests {
			wg.Go(func() { res[k], errs[k] = d.deliver(ctx, events) })
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("route %q: delivery interrupted: %w", rt.cfg.Name, err)
	}
	for k, d := range rt.dests {
		if err := rt.deadLetter(ctx, d, events, res[k]); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// deadLetter parks the events d gave up on in the route's dead letter,
// each with the reason, the destination and the attempt count.
func (rt *route) deadLetter(ctx context.Context, d *destination, events []bus.Event, res []result) error {
	var parked []bus.Event
	var first error
	for i, r := range res {
		if r.err == nil {
			continue
		}
		if first == nil {
			first = r.err
		}
		if rt.dead == nil {
			continue
		}
		e := events[i].Clone()
		e.SetExtension(ExtDeadLetterReason, r.err.Error())
		e.SetExtension(ExtDeadLetterRoute, rt.cfg.Name)
		e.SetExtension(ExtDeadLetterDestination, d.name)
		e.SetExtension(ExtDeadLetterAttempts, int32(r.attempts))
		parked = append(parked, e)
	}
	switch {
	case first == nil:
		return nil
	case rt.dead == nil:
		return fmt.Errorf("route %q: destination %q gave up on events (first: %v) and the route has no dead letter; they stay unacknowledged at the source",
			rt.cfg.Name, d.name, first)
	}
	if err := rt.park(ctx, parked); err != nil {
		return fmt.Errorf("route %q: dead-letter %d events given up by destination %q: %w", rt.cfg.Name, len(parked), d.name, err)
	}
	rt.r.o.Metrics.deadLetteredN(rt.cfg.Name, d.name, len(parked))
	rt.r.o.Logger.Warn("events dead-lettered", "route", rt.cfg.Name, "destination", d.name, "events", len(parked), "reason", first)
	return nil
}

// park delivers events to the dead letter; an event the dead letter itself
// gives up on is an error, so the source keeps the batch.
func (rt *route) park(ctx context.Context, events []bus.Event) error {
	res, err := rt.dead.deliver(ctx, events)
	if err != nil {
		return err
	}
	lost := 0
	var first error
	for _, r := range res {
		if r.err != nil {
			if lost == 0 {
				first = r.err
			}
			lost++
		}
	}
	if lost > 0 {
		return fmt.Errorf("dead letter %s refused %d events: %w", rt.dead.describe(), lost, first)
	}
	return nil
}

// write makes recs durable in the audit store.
func (rt *route) write(ctx context.Context, recs []sinks.Record) error {
	if rt.r.o.Audit == nil {
		return nil
	}
	if err := rt.r.o.Audit.Write(ctx, recs); err != nil {
		return fmt.Errorf("route %q: audit %d events: %w", rt.cfg.Name, len(recs), err)
	}
	return nil
}

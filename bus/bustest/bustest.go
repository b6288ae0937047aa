// Package bustest is the conformance suite every bus.Transport runs. A
// driver is done when TestTransport passes against it; Features says what
// the transport promises, and cases that test a promise it does not make
// are skipped with the reason.
package bustest

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Features says what a transport guarantees.
type Features struct {
	// OrderedPerKey: events with the same partition key are handled in
	// publish order, also with competing consumers.
	OrderedPerKey bool
	// DurableGroups: a group keeps its unacknowledged events when all its
	// consumers stop, and gives them to the next consumer.
	DurableGroups bool
	// NoRouteWithoutGroup: publishing to a topic no group consumes fails
	// with bus.ErrNoRoute (transports that retain events accept it).
	NoRouteWithoutGroup bool
	// BufferBound > 0: a group holds at most this many unacknowledged
	// events; publishers block beyond it. Buffered must then be set.
	BufferBound int
	// Buffered reports a group's current and highest-ever buffered event
	// count, for the backpressure case.
	Buffered func(t bus.Transport, topic, group string) (now, most int)
	// Timeout bounds every wait in the suite. Default 30s.
	Timeout time.Duration
}

// Constructor returns a new transport for one test case. Cases use unique
// topic and group names, so transports may share a broker.
type Constructor func(t *testing.T) bus.Transport

// TestTransport runs the whole suite.
func TestTransport(t *testing.T, f Features, newTransport Constructor) {
	if f.Timeout <= 0 {
		f.Timeout = 30 * time.Second
	}
	cases := []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"RoundTripAttributes", testRoundTripAttributes},
		{"StructuredJSONData", testStructuredJSONData},
		{"DefaultsFilled", testDefaultsFilled},
		{"FanOutToGroups", testFanOut},
		{"CompetingConsumers", testCompetingConsumers},
		{"RedeliveryAfterHandlerError", testRedelivery},
		{"AttemptsExhausted", testAttemptsExhausted},
		{"AtLeastOnceAcrossConsumerRestart", testConsumerRestart},
		{"OrderPerPartitionKey", testOrderPerKey},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"LargeBatches", testLargeBatches},
		{"BatchMaxWait", testBatchMaxWait},
		{"PublisherBackpressure", testBackpressure},
		{"ContextCancellation", testContextCancellation},
		{"CloseWaitsForHandler", testCloseWaitsForHandler},
		{"PublishAfterClose", testPublishAfterClose},
		{"InvalidEventRejected", testInvalidEvent},
		{"OversizeEventRejected", testOversizeEvent},
		{"NoConsumerGroup", testNoGroup},
		{"TraceContextHeaders", testTraceContextHeaders},
		{"TraceContextMalformed", testTraceContextMalformed},
		{"TracedBus", testTracedBus},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTransport(t)
			e := &env{f: f, tr: tr, b: bus.New(tr), topic: uniqueName(t, "topic")}
			t.Cleanup(func() { _ = e.b.Close() })
			c.run(t, e)
		})
	}
}

// env is one case's transport, bus and topic.
type env struct {
	f     Features
	tr    bus.Transport
	b     *bus.Bus
	topic string
}

var seq atomic.Int64

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9]+`)

// uniqueName makes a name unique across runs against a shared broker.
func uniqueName(t *testing.T, kind string) string {
	return fmt.Sprintf("bustest.%s.%s.%d.%d", unsafeChars.ReplaceAllString(t.Name(), "-"), kind,
		time.Now().UnixNano()%1e9, seq.Add(1))
}

// group returns a unique group name.
func (e *env) group(t *testing.T) string { return uniqueName(t, "group") }

// newEvent makes a valid event whose id carries n.
func newEvent(n int, key string) bus.Event {
	ev := event.New()
	ev.SetID(fmt.Sprintf("ev-%07d", n))
	ev.SetSource("/bustest")
	ev.SetType("com.auditbus.bustest")
	_ = ev.SetData("application/octet-stream", []byte(fmt.Sprintf("payload %d", n)))
	if key != "" {
		ev.SetExtension(bus.ExtPartitionKey, key)
	}
	return ev
}

// events makes n events, keyed round-robin over keys (none if keys is 0).
func events(from, n, keys int) []bus.Event {
	out := make([]bus.Event, n)
	for i := range out {
		key := ""
		if keys > 0 {
			key = fmt.Sprintf("key-%d", (from+i)%keys)
		}
		out[i] = newEvent(from+i, key)
	}
	return out
}

// publish publishes evs in batches of size batch.
func (e *env) publish(t *testing.T, evs []bus.Event, batch int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	for i := 0; i < len(evs); i += batch {
		if err := e.b.Publish(ctx, e.topic, evs[i:min(i+batch, len(evs))]...); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// subscribe subscribes h and stops the subscription at cleanup.
func (e *env) subscribe(t *testing.T, ctx context.Context, group string, h bus.Handler, opts ...bus.SubscribeOption) bus.Subscription {
	t.Helper()
	sub, err := e.b.Subscribe(ctx, e.topic, group, h, opts...)
	if err != nil {
		t.Fatalf("subscribe %q: %v", group, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// waitFor polls cond until it holds or the suite's timeout passes.
func (e *env) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(e.f.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", e.f.Timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// collector records what a handler received.
type collector struct {
	mu      sync.Mutex
	count   map[string]int // deliveries per event id
	events  map[string]bus.Event
	traces  map[string]bus.TraceContext // the hop context of each event's last delivery
	byKey   map[string][]int            // event numbers per partition key, in handling order
	batches []int                       // batch sizes
	total   int
}

func newCollector() *collector {
	return &collector{count: map[string]int{}, events: map[string]bus.Event{}, traces: map[string]bus.TraceContext{}, byKey: map[string][]int{}}
}

// handler records every message and acknowledges it.
func (c *collector) handler(_ context.Context, msgs []bus.Message) error {
	c.add(msgs)
	return nil
}

func (c *collector) add(msgs []bus.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches = append(c.batches, len(msgs))
	for _, m := range msgs {
		id := m.Event.ID()
		c.count[id]++
		c.total++
		c.events[id] = m.Event.Clone()
		c.traces[id] = m.Trace
		var n int
		fmt.Sscanf(id, "ev-%d", &n)
		k := bus.PartitionKey(&m.Event)
		c.byKey[k] = append(c.byKey[k], n)
	}
}

// distinct is the number of different events received.
func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.count)
}

// message is the last delivery of event id, as the handler saw it.
func (c *collector) message(id string) bus.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bus.Message{Event: c.events[id], Trace: c.traces[id]}
}

// received returns the total deliveries and the duplicates among them.
func (c *collector) received() (total, dups int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total, c.total - len(c.count)
}

// expectAll waits for every event in evs and fails on a missing one.
func (e *env) expectAll(t *testing.T, c *collector, evs []bus.Event) {
	t.Helper()
	missing := func() string {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ev := range evs {
			if c.count[ev.ID()] == 0 {
				return ev.ID()
			}
		}
		return ""
	}
	deadline := time.Now().Add(e.f.Timeout)
	for id := missing(); id != ""; id = missing() {
		if time.Now().After(deadline) {
			total, _ := c.received()
			t.Fatalf("timed out after %v waiting for %d events: %s never arrived (%d deliveries in all)", e.f.Timeout, len(evs), id, total)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// expectOnce is expectAll, plus no event delivered twice.
func (e *env) expectOnce(t *testing.T, c *collector, evs []bus.Event) {
	t.Helper()
	e.expectAll(t, c, evs)
	if total, dups := c.received(); dups != 0 {
		t.Fatalf("%d deliveries of %d events: %d duplicates with healthy consumers", total, len(evs), dups)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

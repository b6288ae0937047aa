// Package mem is the embedded in-process transport: the zero-setup default
// for the auditbus daemon and a real transport for users' tests.
//
// Each topic fans out to its consumer groups; each group holds its own copy
// of every event in a bounded buffer split into partitions by the
// "partitionkey" extension. A partition is handled by one consumer at a
// time, so events with the same key are handled in publish order even with
// competing consumers. When a group's buffer is full, Publish blocks until
// its consumers make room or the publisher's context ends: memory stays
// bounded and a fast publisher is slowed to the pace of the slowest group.
//
// A group lives as long as the transport: its unacknowledged events survive
// the restart of its consumers (they are delivered to the next consumer of
// the group), but not the process. Publishing to a topic that has no group
// yet fails with bus.ErrNoRoute rather than dropping the events.
package mem

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/auditbus/auditbus/bus"
)

// Defaults for the transport's options.
const (
	DefaultBufferSize = 4096
	DefaultPartitions = 8
)

// Option configures a Transport.
type Option func(*Transport)

// WithBufferSize bounds how many events each consumer group holds, counting
// events being handled and not yet acknowledged. Default DefaultBufferSize.
func WithBufferSize(n int) Option {
	return func(t *Transport) {
		if n > 0 {
			t.bufferSize = n
		}
	}
}

// WithPartitions sets how many partitions each group's buffer has: the most
// consumers of one group that can work in parallel. Default
// DefaultPartitions.
func WithPartitions(n int) Option {
	return func(t *Transport) {
		if n > 0 {
			t.partitions = n
		}
	}
}

// Transport is the in-process bus.Transport. Create it with New.
type Transport struct {
	bufferSize int
	partitions int

	topics sync.Map // string -> *topic
	closed atomic.Bool
	done   chan struct{} // closed by Close

	mu   sync.Mutex // guards subs and topic creation
	subs map[*subscription]struct{}
	wg   sync.WaitGroup
}

var _ bus.Transport = (*Transport)(nil)

// New returns an in-process transport.
func New(opts ...Option) *Transport {
	t := &Transport{
		bufferSize: DefaultBufferSize,
		partitions: DefaultPartitions,
		done:       make(chan struct{}),
		subs:       make(map[*subscription]struct{}),
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

type topic struct {
	name   string
	groups atomic.Pointer[[]*group] // copy-on-write; replaced under Transport.mu
	rr     atomic.Uint32            // partition for the next batch of unkeyed events
}

// Publish puts a copy of every event into every group of topic, blocking
// while a group's buffer is full. It fails with bus.ErrNoRoute if topic has
// no consumer group. On error, groups earlier in line may have received the
// events.
func (t *Transport) Publish(ctx context.Context, topicName string, events []bus.Event) error {
	if t.closed.Load() {
		return fmt.Errorf("auditbus: mem publish to %q: %w", topicName, bus.ErrClosed)
	}
	if len(events) == 0 {
		return nil
	}
	v, ok := t.topics.Load(topicName)
	var groups []*group
	if ok {
		groups = *v.(*topic).groups.Load()
	}
	if len(groups) == 0 {
		return fmt.Errorf("auditbus: mem publish to %q: %w: the topic has no consumer group; subscribe before publishing", topicName, bus.ErrNoRoute)
	}
	tp := v.(*topic)

	// Events without a key stay together in one partition per call.
	var partsBuf [128]int32
	parts := partsBuf[:0]
	if len(events) > len(partsBuf) {
		parts = make([]int32, 0, len(events))
	}
	unkeyed := int32(tp.rr.Add(1) % uint32(t.partitions))
	for i := range events {
		p := unkeyed
		if k := bus.PartitionKey(&events[i]); k != "" {
			p = partitionOf(k, t.partitions)
		}
		parts = append(parts, p)
	}

	// Clone outside the group locks: each group gets its own duplicate, and
	// none shares memory with the caller's events.
	clones := make([]bus.Event, len(events)*len(groups))
	for i := range clones {
		clones[i] = duplicate(&events[i%len(events)])
	}
	var tc *bus.TraceContext
	if c := bus.TraceContextOf(ctx); !c.IsZero() {
		tc = &c
	}
	for gi, g := range groups {
		if err := g.put(ctx, t.done, clones[gi*len(events):(gi+1)*len(events)], parts, tc); err != nil {
			return fmt.Errorf("auditbus: mem publish to %q (group %q): %w", topicName, g.name, err)
		}
	}
	return nil
}

// partitionOf hashes key with 32-bit FNV-1a.
func partitionOf(key string, n int) int32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int32(h % uint32(n))
}

// Subscribe joins group on topic, creating either if needed, and starts one
// consumer. Events published after it returns reach the group.
func (t *Transport) Subscribe(ctx context.Context, topicName, groupName string, h bus.Handler, cfg bus.SubscribeConfig) (bus.Subscription, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return nil, fmt.Errorf("auditbus: mem subscribe to %q: %w", topicName, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("auditbus: mem subscribe to %q: %w", topicName, err)
	}
	v, ok := t.topics.Load(topicName)
	if !ok {
		tp := &topic{name: topicName}
		tp.groups.Store(&[]*group{})
		t.topics.Store(topicName, tp)
		v = tp
	}
	tp := v.(*topic)
	var g *group
	groups := *tp.groups.Load()
	for _, x := range groups {
		if x.name == groupName {
			g = x
		}
	}
	if g == nil {
		g = newGroup(topicName, groupName, t.bufferSize, t.partitions)
		next := append(groups[:len(groups):len(groups)], g)
		tp.groups.Store(&next)
	}
	s := &subscription{
		t: t, g: g, ctx: ctx, h: h, cfg: cfg.WithDefaults(),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	t.subs[s] = struct{}{}
	t.wg.Add(1)
	go s.run()
	return s, nil
}

// MessagingSystem is "auditbus", the messaging.system of in-process topics.
func (t *Transport) MessagingSystem() string { return "auditbus" }

// Close stops every subscription, waiting for the handlers in flight, and
// wakes blocked publishers with bus.ErrClosed. Events not yet acknowledged
// are discarded with the transport.
func (t *Transport) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	close(t.done)
	t.mu.Lock()
	for s := range t.subs {
		s.signalStop()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// GroupStats describes one consumer group's buffer.
type GroupStats struct {
	Buffered    int // events held now, including those being handled
	MaxBuffered int // the most events ever held at once
	Capacity    int // the bound set by WithBufferSize
}

// Stats reports the buffer of group on topic; ok is false if there is no
// such group.
func (t *Transport) Stats(topicName, groupName string) (st GroupStats, ok bool) {
	v, found := t.topics.Load(topicName)
	if !found {
		return st, false
	}
	for _, g := range *v.(*topic).groups.Load() {
		if g.name == groupName {
			g.mu.Lock()
			defer g.mu.Unlock()
			return GroupStats{Buffered: g.buffered, MaxBuffered: g.maxBuffered, Capacity: g.capacity}, true
		}
	}
	return st, false
}

package mem

import (
	"context"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
)

// group is one consumer group's bounded buffer.
type group struct {
	topic, name string
	capacity    int

	mu          sync.Mutex
	parts       []partition
	buffered    int // events in all partitions, handled or not
	maxBuffered int
	next        int           // partition a consumer looks at first
	spaceCh     chan struct{} // closed when room is made, if publishers wait
	dataCh      chan struct{} // closed when events or partitions free up, if consumers wait
}

func newGroup(topic, name string, capacity, partitions int) *group {
	return &group{topic: topic, name: name, capacity: capacity, parts: make([]partition, partitions)}
}

// partition is a ring of events in publish order. The head batch stays in
// the ring until acknowledged, so a failed batch is retried in place.
type partition struct {
	ring     []slot
	head, n  int
	seq      int64 // offset of ring[head]
	claimed  bool  // a consumer is handling the head batch
	attempts int   // failed attempts on the head batch so far
	retryN   int   // size of the head batch if it failed; redelivered as is
}

// slot is an event in a partition with the trace context of the hop that
// published it, shared by the events of a publish call (nil when the
// publisher did not trace).
type slot struct {
	e     bus.Event
	trace *bus.TraceContext
}

func (p *partition) push(e slot, limit int) {
	if p.n == len(p.ring) {
		size := min(max(2*len(p.ring), 16), limit)
		ring := make([]slot, size)
		for i := 0; i < p.n; i++ {
			ring[i] = p.ring[(p.head+i)%len(p.ring)]
		}
		p.ring, p.head = ring, 0
	}
	p.ring[(p.head+p.n)%len(p.ring)] = e
	p.n++
}

func (p *partition) at(i int) *slot { return &p.ring[(p.head+i)%len(p.ring)] }

// pop drops the first k events, clearing their slots so that acknowledged
// events can be collected.
func (p *partition) pop(k int) {
	for i := 0; i < k; i++ {
		p.ring[(p.head+i)%len(p.ring)] = slot{}
	}
	p.head = (p.head + k) % len(p.ring)
	p.n -= k
	p.seq += int64(k)
}

// wait returns a channel closed at the next signal, creating it if needed.
// The caller holds g.mu.
func wait(ch *chan struct{}) <-chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *ch
}

// signal wakes everyone waiting on ch. The caller holds g.mu.
func signal(ch *chan struct{}) {
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
}

// put appends evs (already this group's copies) to their partitions,
// blocking while the buffer is full.
func (g *group) put(ctx context.Context, closed <-chan struct{}, evs []bus.Event, parts []int32, tc *bus.TraceContext) error {
	g.mu.Lock()
	for i := 0; i < len(evs); {
		free := g.capacity - g.buffered
		if free == 0 {
			room := wait(&g.spaceCh)
			g.mu.Unlock()
			select {
			case <-room:
			case <-ctx.Done():
				return ctx.Err()
			case <-closed:
				return bus.ErrClosed
			}
			g.mu.Lock()
			continue
		}
		k := min(free, len(evs)-i)
		for j := i; j < i+k; j++ {
			g.parts[parts[j]].push(slot{evs[j], tc}, g.capacity)
		}
		i += k
		g.buffered += k
		g.maxBuffered = max(g.maxBuffered, g.buffered)
		signal(&g.dataCh)
	}
	g.mu.Unlock()
	return nil
}

// subscription is one consumer of a group.
type subscription struct {
	t   *Transport
	g   *group
	ctx context.Context
	h   bus.Handler
	cfg bus.SubscribeConfig

	stop     chan struct{} // closed by Close or Transport.Close
	stopOnce sync.Once
	done     chan struct{}
	err      error // written before done is closed
}

func (s *subscription) signalStop() { s.stopOnce.Do(func() { close(s.stop) }) }

// Close stops the consumer and waits for its handler in flight. It must not
// be called from the handler itself.
func (s *subscription) Close() error {
	s.signalStop()
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

func (s *subscription) run() {
	defer func() {
		s.t.mu.Lock()
		delete(s.t.subs, s)
		s.t.mu.Unlock()
		close(s.done)
		s.t.wg.Done()
	}()
	msgs := make([]bus.Message, 0, s.cfg.MaxBatch)
	for {
		pi, ok := s.claim(&msgs)
		if !ok {
			s.stopped()
			return
		}
		outcome, failed, err := bus.Deliver(s.ctx, s.stop, s.cfg, s.h, msgs)
		s.release(pi, len(msgs), outcome == bus.Acked, failed)
		clear(msgs)
		switch outcome {
		case bus.Exhausted:
			s.err = err
			return
		case bus.Stopped:
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

// claim waits for an unclaimed partition with events, claims it and fills
// msgs with its head batch. It returns false when the consumer must stop.
func (s *subscription) claim(msgs *[]bus.Message) (int, bool) {
	g := s.g
	g.mu.Lock()
	for {
		select {
		case <-s.stop:
			g.mu.Unlock()
			return 0, false
		case <-s.ctx.Done():
			g.mu.Unlock()
			return 0, false
		default:
		}
		pi := -1
		for k := range g.parts {
			i := (g.next + k) % len(g.parts)
			if p := &g.parts[i]; !p.claimed && p.n > 0 {
				pi = i
				break
			}
		}
		if pi < 0 {
			data := wait(&g.dataCh)
			g.mu.Unlock()
			select {
			case <-data:
			case <-s.stop:
			case <-s.ctx.Done():
			}
			g.mu.Lock()
			continue
		}
		g.next = pi + 1
		p := &g.parts[pi]
		p.claimed = true
		if p.retryN == 0 && p.n < s.cfg.MaxBatch && s.cfg.MaxWait > 0 {
			s.fillWait(p)
		}
		n := min(p.n, s.cfg.MaxBatch)
		if p.retryN > 0 {
			n = p.retryN
		}
		out := (*msgs)[:0]
		for i := 0; i < n; i++ {
			sl := p.at(i)
			m := bus.Message{
				Event: sl.e, Topic: g.topic, Partition: pi,
				Offset: p.seq + int64(i), Attempt: p.attempts + 1,
			}
			if sl.trace != nil {
				m.Trace = *sl.trace
			}
			out = append(out, m)
		}
		*msgs = out
		g.mu.Unlock()
		return pi, true
	}
}

// fillWait waits, holding the claim on p, until p has a full batch, MaxWait
// has passed or the consumer stops. The caller holds g.mu.
func (s *subscription) fillWait(p *partition) {
	g := s.g
	timer := time.NewTimer(s.cfg.MaxWait)
	defer timer.Stop()
	for p.n < s.cfg.MaxBatch {
		data := wait(&g.dataCh)
		g.mu.Unlock()
		select {
		case <-data:
			g.mu.Lock()
		case <-timer.C:
			g.mu.Lock()
			return
		case <-s.stop:
			g.mu.Lock()
			return
		case <-s.ctx.Done():
			g.mu.Lock()
			return
		}
	}
}

// release gives the partition back: without its head batch if acked, or
// with the batch and its failed attempts kept for the next consumer.
func (s *subscription) release(pi, n int, acked bool, failed int) {
	g := s.g
	g.mu.Lock()
	p := &g.parts[pi]
	if acked {
		p.pop(n)
		p.attempts, p.retryN = 0, 0
		g.buffered -= n
		signal(&g.spaceCh)
	} else {
		p.attempts += failed
		p.retryN = n
	}
	p.claimed = false
	if p.n > 0 {
		signal(&g.dataCh)
	}
	g.mu.Unlock()
}

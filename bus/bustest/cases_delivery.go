package bustest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
)

// fastRetry keeps retry cases quick.
var fastRetry = bus.RetryBackoff(time.Millisecond, 5*time.Millisecond)

// testFanOut: every group gets every event once.
func testFanOut(t *testing.T, e *env) {
	cs := []*collector{newCollector(), newCollector(), newCollector()}
	for _, c := range cs {
		e.subscribe(t, context.Background(), e.group(t), c.handler)
	}
	evs := events(0, 500, 7)
	e.publish(t, evs, 50)
	for _, c := range cs {
		e.expectOnce(t, c, evs)
	}
}

// testCompetingConsumers: consumers of one group share its events, each
// event handled once by the group.
func testCompetingConsumers(t *testing.T, e *env) {
	group := e.group(t)
	c := newCollector()
	var busy [3]atomic.Int64
	for i := range busy {
		e.subscribe(t, context.Background(), group, func(ctx context.Context, msgs []bus.Message) error {
			busy[i].Add(int64(len(msgs)))
			c.add(msgs)
			time.Sleep(time.Millisecond) // some work, so that the others get a share
			return nil
		}, bus.MaxBatch(10))
	}
	evs := events(0, 2000, 16)
	e.publish(t, evs, 100)
	e.expectOnce(t, c, evs)
	working := 0
	for i := range busy {
		if busy[i].Load() > 0 {
			working++
		}
	}
	if working < 2 {
		t.Fatalf("only %d of 3 consumers handled events; the group should share them", working)
	}
}

// testRedelivery: a failed batch comes back with a higher attempt number
// until it succeeds; nothing is lost.
func testRedelivery(t *testing.T, e *env) {
	c := newCollector()
	var mu sync.Mutex
	attempts := map[string][]int{}
	e.subscribe(t, context.Background(), e.group(t), func(ctx context.Context, msgs []bus.Message) error {
		mu.Lock()
		fail := false
		for _, m := range msgs {
			id := m.Event.ID()
			attempts[id] = append(attempts[id], m.Attempt)
			if id == "ev-0000007" && m.Attempt < 3 {
				fail = true
			}
		}
		mu.Unlock()
		if fail {
			return errors.New("handler failure on purpose")
		}
		c.add(msgs)
		return nil
	}, fastRetry, bus.MaxAttempts(5))
	evs := events(0, 20, 0)
	e.publish(t, evs, 20)
	e.expectAll(t, c, evs)
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(attempts["ev-0000007"]); got != "[1 2 3]" {
		t.Fatalf("attempts of the failing event: %s, want [1 2 3]", got)
	}
}

// testAttemptsExhausted: after MaxAttempts failures the batch goes to
// OnExhausted and consumption goes on; without OnExhausted the subscription
// stops with ErrMaxAttempts and the batch stays in the group.
func testAttemptsExhausted(t *testing.T, e *env) {
	group := e.group(t)
	c := newCollector()
	poison := func(msgs []bus.Message) bool {
		for _, m := range msgs {
			if m.Event.ID() == "ev-0000003" {
				return true
			}
		}
		return false
	}
	var exhausted atomic.Int64
	var lastAttempt atomic.Int64
	sub := e.subscribe(t, context.Background(), group, func(ctx context.Context, msgs []bus.Message) error {
		if poison(msgs) {
			lastAttempt.Store(int64(msgs[0].Attempt))
			return errors.New("cannot handle event 3")
		}
		c.add(msgs)
		return nil
	}, bus.MaxBatch(1), bus.MaxAttempts(3), fastRetry, bus.OnExhausted(func(ctx context.Context, msgs []bus.Message, err error) error {
		if !poison(msgs) || err == nil {
			t.Errorf("OnExhausted got %d messages, err %v", len(msgs), err)
		}
		exhausted.Add(1)
		return nil
	}))
	evs := events(0, 10, 0)
	e.publish(t, evs, 10)
	e.expectAll(t, c, append(evs[:3:3], evs[4:]...))
	e.waitFor(t, "OnExhausted", func() bool { return exhausted.Load() == 1 })
	if a := lastAttempt.Load(); a != 3 {
		t.Fatalf("last attempt %d, want 3", a)
	}
	_ = sub.Close()

	// Without OnExhausted the consumer stops and says why.
	group2 := e.group(t)
	stopping := e.subscribe(t, context.Background(), group2, func(ctx context.Context, msgs []bus.Message) error {
		if poison(msgs) {
			return errors.New("cannot handle event 3")
		}
		return nil
	}, bus.MaxBatch(1), bus.MaxAttempts(2), fastRetry)
	e.publish(t, events(0, 5, 0), 5)
	select {
	case <-stopping.Done():
	case <-time.After(e.f.Timeout):
		t.Fatal("subscription did not stop after its attempts ran out")
	}
	err := stopping.Err()
	if !errors.Is(err, bus.ErrMaxAttempts) {
		t.Fatalf("Err() = %v, want ErrMaxAttempts", err)
	}
	for _, part := range []string{"ev-0000003", "cannot handle event 3", e.topic} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
	if !e.f.DurableGroups {
		return
	}
	// The batch was not acknowledged: the group's next consumer gets it.
	c2 := newCollector()
	e.subscribe(t, context.Background(), group2, c2.handler)
	e.expectAll(t, c2, []bus.Event{evs[3]})
}

// testConsumerRestart: a consumer stopped in the middle of a batch loses
// nothing; its group's next consumer gets what was not acknowledged.
func testConsumerRestart(t *testing.T, e *env) {
	if !e.f.DurableGroups {
		t.Skip("transport does not keep a group's events across consumer restarts")
	}
	group := e.group(t)
	c := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	var handled atomic.Int64
	sub := e.subscribe(t, ctx, group, func(ctx context.Context, msgs []bus.Message) error {
		if handled.Load() >= 300 {
			<-ctx.Done() // stopped mid-batch, before acknowledging
			return ctx.Err()
		}
		c.add(msgs)
		handled.Add(int64(len(msgs)))
		return nil
	}, bus.MaxBatch(50))
	evs := events(0, 1000, 10)
	// Publish fills time into the events it is given; publish copies, so
	// that this goroutine can read evs meanwhile.
	pub := make([]bus.Event, len(evs))
	for i := range evs {
		pub[i] = evs[i].Clone()
	}
	go func() {
		pctx, pcancel := context.WithTimeout(context.Background(), e.f.Timeout)
		defer pcancel()
		for i := 0; i < len(evs); i += 100 {
			if err := e.b.Publish(pctx, e.topic, pub[i:i+100]...); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	e.waitFor(t, "300 events handled", func() bool { return handled.Load() >= 300 })
	cancel()
	<-sub.Done()
	if !errors.Is(sub.Err(), context.Canceled) {
		t.Fatalf("Err() after cancel = %v, want context.Canceled", sub.Err())
	}
	e.subscribe(t, context.Background(), group, c.handler, bus.MaxBatch(50))
	e.expectAll(t, c, evs)
	total, dups := c.received()
	t.Logf("%d deliveries of %d events, %d duplicates", total, len(evs), dups)
}

// testOrderPerKey: events with one partition key are handled in publish
// order, with competing consumers in the group.
func testOrderPerKey(t *testing.T, e *env) {
	if !e.f.OrderedPerKey {
		t.Skip("transport does not keep order per partition key")
	}
	group := e.group(t)
	c := newCollector()
	for range 3 {
		e.subscribe(t, context.Background(), group, c.handler, bus.MaxBatch(7))
	}
	evs := events(0, 3000, 13)
	e.publish(t, evs, 64)
	e.expectOnce(t, c, evs)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, ns := range c.byKey {
		for i := 1; i < len(ns); i++ {
			if ns[i] <= ns[i-1] {
				t.Fatalf("key %s: event %d handled after %d", k, ns[i], ns[i-1])
			}
		}
	}
}

// testConcurrentPublishers: many goroutines publishing at once lose nothing.
func testConcurrentPublishers(t *testing.T, e *env) {
	c := newCollector()
	e.subscribe(t, context.Background(), e.group(t), c.handler)
	const publishers, each = 16, 250
	var all []bus.Event
	var wg sync.WaitGroup
	for p := range publishers {
		evs := events(p*each, each, 5)
		all = append(all, evs...)
		wg.Go(func() {
			for i := 0; i < each; i += 10 {
				if err := e.b.Publish(context.Background(), e.topic, evs[i:i+10]...); err != nil {
					t.Errorf("publisher %d: %v", p, err)
					return
				}
			}
		})
	}
	wg.Wait()
	e.expectOnce(t, c, all)
}

// testLargeBatches: a publish of many events, larger than any buffer, goes
// through; handler batches respect MaxBatch.
func testLargeBatches(t *testing.T, e *env) {
	c := newCollector()
	e.subscribe(t, context.Background(), e.group(t), c.handler, bus.MaxBatch(1000))
	evs := events(0, 20000, 0)
	e.publish(t, evs, len(evs))
	e.expectOnce(t, c, evs)
	c.mu.Lock()
	defer c.mu.Unlock()
	most := 0
	for _, n := range c.batches {
		most = max(most, n)
	}
	if most > 1000 || most < 2 {
		t.Fatalf("largest batch %d, want 2..1000", most)
	}
}

// testBatchMaxWait: a batch smaller than MaxBatch is still delivered once
// MaxWait has passed, and never more than MaxBatch at once.
func testBatchMaxWait(t *testing.T, e *env) {
	c := newCollector()
	e.subscribe(t, context.Background(), e.group(t), c.handler, bus.MaxBatch(50), bus.MaxWait(20*time.Millisecond))
	evs := events(0, 7, 0)
	e.publish(t, evs, 1)
	e.expectOnce(t, c, evs)
	more := events(100, 500, 0)
	e.publish(t, more, 500)
	e.expectAll(t, c, more)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.batches {
		if n > 50 {
			t.Fatalf("batch of %d over MaxBatch 50", n)
		}
	}
}

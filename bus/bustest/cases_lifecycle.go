package bustest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
)

// testBackpressure: a publisher outpacing a slow consumer blocks, and the
// group never holds more than its bound.
func testBackpressure(t *testing.T, e *env) {
	bound := e.f.BufferBound
	if bound <= 0 {
		t.Skip("transport has no bounded group buffer (the broker stores what consumers have not read)")
	}
	group := e.group(t)
	release := make(chan struct{})
	c := newCollector()
	e.subscribe(t, context.Background(), group, func(ctx context.Context, msgs []bus.Message) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.add(msgs)
		return nil
	}, bus.MaxBatch(10))
	evs := events(0, 3*bound, 0)
	var published atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range evs {
			if err := e.b.Publish(context.Background(), e.topic, evs[i]); err != nil {
				done <- err
				return
			}
			published.Add(1)
		}
		done <- nil
	}()
	// The publisher fills the buffer, then must block.
	e.waitFor(t, "the buffer to fill", func() bool {
		now, _ := e.f.Buffered(e.tr, e.topic, group)
		return now == bound
	})
	stalled := published.Load()
	for range 20 {
		select {
		case err := <-done:
			t.Fatalf("publisher finished (%v) while the consumer was stalled", err)
		default:
		}
		time.Sleep(5 * time.Millisecond)
	}
	if p := published.Load(); p != stalled || p > int64(bound) {
		t.Fatalf("publisher went on from %d to %d events with a stalled consumer and a bound of %d", stalled, p, bound)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.expectOnce(t, c, evs)
	if _, most := e.f.Buffered(e.tr, e.topic, group); most > bound {
		t.Fatalf("group held %d events, over its bound of %d", most, bound)
	}

	// A blocked publisher gives up when its context ends.
	block := make(chan struct{})
	defer close(block)
	group2 := e.group(t)
	e.subscribe(t, context.Background(), group2, func(ctx context.Context, msgs []bus.Message) error {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := e.b.Publish(ctx, e.topic, events(0, bound+1, 0)...)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked publish: got %v, want context.DeadlineExceeded", err)
	}
}

// testContextCancellation: a cancelled context stops a publish before it
// starts and stops a subscription.
func testContextCancellation(t *testing.T, e *env) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	c := newCollector()
	ctx, stop := context.WithCancel(context.Background())
	sub := e.subscribe(t, ctx, e.group(t), c.handler)
	if err := e.b.Publish(cancelled, e.topic, newEvent(1, "")); !errors.Is(err, context.Canceled) {
		t.Fatalf("publish with a cancelled context: got %v, want context.Canceled", err)
	}
	evs := events(10, 5, 0)
	e.publish(t, evs, 5)
	e.expectOnce(t, c, evs)
	stop()
	select {
	case <-sub.Done():
	case <-time.After(e.f.Timeout):
		t.Fatal("subscription still running after its context was cancelled")
	}
	if !errors.Is(sub.Err(), context.Canceled) {
		t.Fatalf("Err() = %v, want context.Canceled", sub.Err())
	}
	if _, err := e.b.Subscribe(cancelled, e.topic, e.group(t), c.handler); !errors.Is(err, context.Canceled) {
		t.Fatalf("subscribe with a cancelled context: got %v, want context.Canceled", err)
	}
}

// testCloseWaitsForHandler: closing the bus lets the handler in flight
// finish, and its batch is acknowledged.
func testCloseWaitsForHandler(t *testing.T, e *env) {
	entered := make(chan struct{}, 1)
	var finished atomic.Bool
	sub := e.subscribe(t, context.Background(), e.group(t), func(ctx context.Context, msgs []bus.Message) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		time.Sleep(50 * time.Millisecond) // work in flight while Close is called
		finished.Store(true)
		return nil
	})
	e.publish(t, events(0, 1, 0), 1)
	<-entered
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Close returned before the handler in flight finished")
	}
	select {
	case <-sub.Done():
	default:
		t.Fatal("subscription still running after Close")
	}
	if err := sub.Err(); err != nil {
		t.Fatalf("Err() after Close = %v, want nil", err)
	}
}

// testPublishAfterClose: a closed bus refuses work with ErrClosed.
func testPublishAfterClose(t *testing.T, e *env) {
	e.subscribe(t, context.Background(), e.group(t), newCollector().handler)
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Publish(context.Background(), e.topic, newEvent(1, "")); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("publish after close: got %v, want ErrClosed", err)
	}
	if _, err := e.b.Subscribe(context.Background(), e.topic, e.group(t), newCollector().handler); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("subscribe after close: got %v, want ErrClosed", err)
	}
	// The transport itself refuses too, for callers that bypass the Bus.
	if err := e.tr.Publish(context.Background(), e.topic, events(0, 1, 0)); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("transport publish after close: got %v, want ErrClosed", err)
	}
	if err := e.b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

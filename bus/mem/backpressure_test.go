package mem_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/cloudevents/sdk-go/v2/event"
)

func testEvents(n int) []bus.Event {
	out := make([]bus.Event, n)
	for i := range out {
		e := event.New()
		e.SetID(fmt.Sprint(i))
		e.SetSource("/mem-test")
		e.SetType("com.example.test")
		_ = e.SetData("application/octet-stream", make([]byte, 1024))
		out[i] = e
	}
	return out
}

// waitFor polls cond with a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSlowConsumerBlocksPublisher shows a publisher held back by a slow
// consumer while the group's buffer, sampled throughout and tracked by the
// transport's high-water mark, never exceeds its bound.
func TestSlowConsumerBlocksPublisher(t *testing.T) {
	const bound, total = 100, 2000
	tr := mem.New(mem.WithBufferSize(bound))
	b := bus.New(tr)
	defer b.Close()

	var handled atomic.Int64
	gate := make(chan struct{}) // closed to let the consumer go
	_, err := b.Subscribe(context.Background(), "orders", "slow", func(ctx context.Context, msgs []bus.Message) error {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		handled.Add(int64(len(msgs)))
		return nil
	}, bus.MaxBatch(25))
	if err != nil {
		t.Fatal(err)
	}

	var published atomic.Int64
	pubDone := make(chan error, 1)
	go func() {
		evs := testEvents(total)
		for i := 0; i < total; i += 10 {
			if err := b.Publish(context.Background(), "orders", evs[i:i+10]...); err != nil {
				pubDone <- err
				return
			}
			published.Add(10)
		}
		pubDone <- nil
	}()

	// Sample the buffer the whole time the publisher runs.
	stopSampling := make(chan struct{})
	var sampled atomic.Int64
	var samplerWG sync.WaitGroup
	samplerWG.Go(func() {
		for {
			select {
			case <-stopSampling:
				return
			default:
			}
			st, _ := tr.Stats("orders", "slow")
			if int64(st.Buffered) > sampled.Load() {
				sampled.Store(int64(st.Buffered))
			}
		}
	})

	// With the consumer stalled the publisher stops at the bound.
	waitFor(t, "a full buffer", func() bool { st, _ := tr.Stats("orders", "slow"); return st.Buffered == bound })
	if p := published.Load(); p > bound {
		t.Fatalf("%d events published past a stalled consumer with a bound of %d", p, bound)
	}
	blockedAt := published.Load()
	for range 10 {
		time.Sleep(5 * time.Millisecond)
		if published.Load() != blockedAt {
			t.Fatalf("publisher moved from %d to %d with the consumer stalled", blockedAt, published.Load())
		}
	}
	select {
	case err := <-pubDone:
		t.Fatalf("publisher returned (%v) while the consumer was stalled", err)
	default:
	}

	// Releasing the consumer lets the publisher finish, still within the bound.
	close(gate)
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every event handled and acknowledged", func() bool {
		st, _ := tr.Stats("orders", "slow")
		return handled.Load() == total && st.Buffered == 0
	})
	close(stopSampling)
	samplerWG.Wait()
	st, _ := tr.Stats("orders", "slow")
	t.Logf("bound %d: published %d, blocked at %d, most buffered %d (sampled %d)", bound, total, blockedAt, st.MaxBuffered, sampled.Load())
	if st.MaxBuffered > bound || sampled.Load() > bound {
		t.Fatalf("buffer reached %d (sampled %d), over its bound of %d", st.MaxBuffered, sampled.Load(), bound)
	}
}

// TestSlowestGroupPacesPublisher: a fast group does not let the publisher
// run ahead of a slow one.
func TestSlowestGroupPacesPublisher(t *testing.T) {
	const bound = 50
	tr := mem.New(mem.WithBufferSize(bound))
	b := bus.New(tr)
	defer b.Close()
	var fast atomic.Int64
	ack := func(ctx context.Context, msgs []bus.Message) error { fast.Add(int64(len(msgs))); return nil }
	block := make(chan struct{})
	defer close(block)
	for _, g := range []struct {
		name string
		h    bus.Handler
	}{{"fast", ack}, {"stalled", func(ctx context.Context, _ []bus.Message) error {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil
	}}} {
		if _, err := b.Subscribe(context.Background(), "t", g.name, g.h); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := b.Publish(ctx, "t", testEvents(bound+10)...)
	if err == nil {
		t.Fatal("publish of more than the bound went through with a stalled group")
	}
	st, _ := tr.Stats("t", "stalled")
	if st.Buffered != bound {
		t.Fatalf("stalled group holds %d, want its bound %d", st.Buffered, bound)
	}
}

// TestGroupsGetIndependentCopies: a handler that changes its event does not
// change another group's copy or the publisher's.
func TestGroupsGetIndependentCopies(t *testing.T) {
	b := bus.New(mem.New())
	defer b.Close()
	got := make(chan bus.Event, 2)
	for _, g := range []string{"a", "b"} {
		_, err := b.Subscribe(context.Background(), "t", g, func(ctx context.Context, msgs []bus.Message) error {
			e := msgs[0].Event
			if g == "a" {
				e.SetSubject("changed by a")
				e.DataEncoded[0] = 'X'
			}
			got <- e
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	e := testEvents(1)[0]
	if err := b.Publish(context.Background(), "t", e); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		x := <-got
		if x.Subject() == "changed by a" {
			continue
		}
		if x.Subject() != "" || x.DataEncoded[0] != 0 {
			t.Fatalf("group b saw group a's change: subject %q data[0] %q", x.Subject(), x.DataEncoded[0])
		}
	}
	if e.Subject() != "" || e.DataEncoded[0] != 0 {
		t.Fatal("publisher's event changed by a consumer")
	}
}

// TestDuplicateIsDeep: every mutable part of a published event is copied.
func TestDuplicateIsDeep(t *testing.T) {
	b := bus.New(mem.New())
	defer b.Close()
	got := make(chan bus.Event, 1)
	if _, err := b.Subscribe(context.Background(), "t", "g", func(ctx context.Context, msgs []bus.Message) error {
		got <- msgs[0].Event
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e := testEvents(1)[0]
	e.SetSubject("s")
	e.SetExtension("bin", []byte{1, 2, 3})
	e.SetExtension("str", "x")
	if err := b.Publish(context.Background(), "t", e); err != nil {
		t.Fatal(err)
	}
	// The publisher changes its event after Publish returned.
	e.SetSubject("changed")
	e.SetTime(time.Unix(0, 0))
	e.SetExtension("str", "changed")
	e.Extensions()["bin"].([]byte)[0] = 9
	e.DataEncoded[0] = 9
	x := <-got
	if x.Subject() != "s" || x.Time().Equal(time.Unix(0, 0)) || x.Extensions()["str"] != "x" ||
		x.Extensions()["bin"].([]byte)[0] != 1 || x.DataEncoded[0] != 0 {
		t.Fatalf("delivered event changed with the publisher's: %v", x)
	}
}

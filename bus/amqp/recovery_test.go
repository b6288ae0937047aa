package amqp_test

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/cloudevents/sdk-go/v2/event"
)

// TestRecoveryCloseAllConnections closes every broker connection with
// rabbitmqctl while events are being published and consumed. Publishers and
// the subscriber reconnect by themselves; every event published arrives at
// least once. Duplicates are allowed and reported.
func TestRecoveryCloseAllConnections(t *testing.T) {
	const minEvents, batch = 10000, 100
	rabbitmqctl := needTool(t, "rabbitmqctl")
	var disconnects [2]atomic.Int64 // publish, consume
	cfg := testConfig(t)
	cfg.ReconnectBackoff = 20 * time.Millisecond
	cfg.OnState = func(s amqp.StateChange) {
		if s.State == amqp.Disconnected {
			disconnects[map[string]int{"publish": 0, "consume": 1}[s.Role]].Add(1)
		}
	}
	tr := newTransport(t, cfg)
	b := bus.New(tr)
	topic := uniqueName("recovery")

	var mu sync.Mutex
	seen := map[string]int{}
	deliveries := 0
	if _, err := b.Subscribe(context.Background(), topic, "g", func(_ context.Context, msgs []bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			seen[m.Event.ID()]++
			deliveries++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	handled := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }

	// The publisher goes on until the connections were closed and it has
	// published 2,000 more events since, and at least minEvents in all.
	var published atomic.Int64
	var closedAt atomic.Int64 // events published when rabbitmqctl returned; 0 before
	pubErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for n := 0; ; n += batch {
			c := closedAt.Load()
			if n >= minEvents && c > 0 && int64(n) >= c+2000 {
				pubErr <- nil
				return
			}
			evs := make([]bus.Event, batch)
			for i := range evs {
				e := event.New()
				e.SetID(fmt.Sprintf("rec-%07d", n+i))
				e.SetSource("/recovery")
				e.SetType("com.example.recovery")
				_ = e.SetData("application/octet-stream", make([]byte, 256))
				evs[i] = e
			}
			if err := b.Publish(ctx, topic, evs...); err != nil {
				pubErr <- fmt.Errorf("publish of events %d..: %w", n, err)
				return
			}
			published.Add(batch)
		}
	}()

	waitFor(t, "publishing and consuming to be under way", func() bool { return published.Load() >= 3000 && handled() >= 1000 })
	out, err := exec.Command(rabbitmqctl, "close_all_connections", "test").CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl close_all_connections: %v: %s", err, out)
	}
	closedAt.Store(max(published.Load(), 1))
	t.Logf("connections closed with %d events published and %d handled", closedAt.Load(), handled())

	var total int
	select {
	case err := <-pubErr:
		if err != nil {
			t.Fatal(err)
		}
		total = int(published.Load())
	case <-time.After(3 * time.Minute):
		t.Fatalf("publisher stuck at %d events", published.Load())
	}
	waitFor(t, fmt.Sprintf("all %d events", total), func() bool { return handled() >= total })
	mu.Lock()
	defer mu.Unlock()
	for i := range total {
		if id := fmt.Sprintf("rec-%07d", i); seen[id] == 0 {
			t.Fatalf("event %s lost", id)
		}
	}
	st := tr.Stats()
	t.Logf("%d events, 0 lost, %d deliveries, %d duplicates; %d messages published again after the drop; reconnects: publish %d, consume %d",
		total, deliveries, deliveries-len(seen), st.Republished, st.PublishReconnects, st.ConsumeReconnects)
	if disconnects[0].Load() == 0 || disconnects[1].Load() == 0 || st.PublishReconnects == 0 || st.ConsumeReconnects == 0 {
		t.Fatalf("both connections should have dropped and come back: disconnects %d/%d, reconnects %d/%d",
			disconnects[0].Load(), disconnects[1].Load(), st.PublishReconnects, st.ConsumeReconnects)
	}
}

package kafka_test

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
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/cloudevents/sdk-go/v2/event"
	kafkago "github.com/segmentio/kafka-go"
)

// waitFor polls cond until it holds, failing after two minutes: under
// -race on two busy cores a consumer group's rebalance after a cancelled
// member can take most of a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConsumerCancelledMidBatch cancels the consumer three times in the
// middle of a batch, before its offsets are committed, while 10,000 events
// flow; each restart is a new transport (as a new process would be). Every
// event must arrive at least once; duplicates are counted and reported.
// It runs in one process: the daemon's crash test (pkg/daemon,
// TestCrashLosesNothing) SIGKILLs a real consumer process.
func TestConsumerCancelledMidBatch(t *testing.T) {
	const total, kills = 10000, 3
	brokers := newCluster(t)
	pub := bus.New(newTransport(t, brokers))
	topic, group := "orders-kill", "billing"

	var mu sync.Mutex
	seen := make(map[string]int, total)
	deliveries, unacked := 0, 0
	distinct := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }

	// consume runs one consumer until it has handled stopAfter more events,
	// then holds its next batch without acknowledging it and is cancelled.
	consume := func(stopAfter int) {
		tr := newTransport(t, brokers)
		b := bus.New(tr)
		ctx, cancel := context.WithCancel(context.Background())
		var handled, inBatch atomic.Int64
		sub, err := b.Subscribe(ctx, topic, group, func(ctx context.Context, msgs []bus.Message) error {
			if stopAfter > 0 && handled.Load() >= int64(stopAfter) {
				// Delivered, never acknowledged: expect these again.
				mu.Lock()
				unacked += len(msgs)
				mu.Unlock()
				inBatch.Store(1)
				<-ctx.Done() // killed while holding this batch
				return ctx.Err()
			}
			mu.Lock()
			for _, m := range msgs {
				seen[m.Event.ID()]++
				deliveries++
			}
			mu.Unlock()
			handled.Add(int64(len(msgs)))
			return nil
		}, bus.MaxBatch(200))
		if err != nil {
			t.Fatal(err)
		}
		if stopAfter == 0 {
			waitFor(t, "every event", func() bool { return distinct() == total })
			cancel()
			<-sub.Done()
			_ = b.Close()
			return
		}
		waitFor(t, "the consumer to be mid-batch", func() bool { return inBatch.Load() == 1 })
		cancel()
		<-sub.Done()
		if !errors.Is(sub.Err(), context.Canceled) {
			t.Errorf("killed consumer: Err() = %v", sub.Err())
		}
		_ = b.Close()
	}

	// Publish while consumers die; a new group starts at the earliest offset.
	published := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += 100 {
			batch := make([]bus.Event, 100)
			for j := range batch {
				e := event.New()
				e.SetID(fmt.Sprintf("ev-%05d", i+j))
				e.SetSource("/kill-test")
				e.SetType("com.example.order")
				e.SetExtension(bus.ExtPartitionKey, fmt.Sprintf("cust-%d", (i+j)%17))
				_ = e.SetData("application/octet-stream", make([]byte, 1024))
				batch[j] = e
			}
			if err := pub.Publish(context.Background(), topic, batch...); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	for k := 0; k < kills; k++ {
		consume(1500)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	consume(0)

	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < total; i++ {
		if seen[fmt.Sprintf("ev-%05d", i)] == 0 {
			t.Fatalf("event %d lost", i)
		}
	}
	dups := deliveries + unacked - total
	t.Logf("%d events, %d consumers killed mid-batch, a last one finished: 0 lost; %d deliveries (%d handled, %d held unacknowledged when killed), %d duplicates",
		total, kills, deliveries+unacked, deliveries, unacked, dups)
	if unacked == 0 {
		t.Fatal("no consumer was killed while holding a batch")
	}
}

// TestPoisonMessage: a Kafka message that is not a CloudEvent reaches the
// poison callback with a reason, is committed, and consumption goes on.
func TestPoisonMessage(t *testing.T) {
	brokers := newCluster(t)
	cfg := testConfig(brokers)
	poisoned := make(chan kafka.Poison, 4)
	cfg.Poison = func(ctx context.Context, p kafka.Poison) error { poisoned <- p; return nil }
	tr, err := kafka.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := bus.New(tr)
	defer b.Close()
	got := make(chan bus.Event, 4)
	if _, err := b.Subscribe(context.Background(), "mixed", "g", func(ctx context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			got <- m.Event
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), BatchTimeout: time.Millisecond, Balancer: &kafkago.Murmur2Balancer{}}
	defer w.Close()
	err = w.WriteMessages(context.Background(),
		kafkago.Message{Topic: "mixed", Key: []byte("k"), Value: []byte("plain text, no ce_ headers")},
		kafkago.Message{Topic: "mixed", Key: []byte("k"), Value: []byte("{oops"), Headers: []kafkago.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	e := event.New()
	e.SetSource("/s")
	e.SetType("t")
	e.SetExtension(bus.ExtPartitionKey, "k") // the same partition, after the poison
	if err := b.Publish(context.Background(), "mixed", e); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for range 2 {
		select {
		case p := <-poisoned:
			if p.Reason == nil || p.Group != "g" || p.Message.Topic != "mixed" {
				t.Fatalf("poison %+v", p)
			}
			for _, want := range []string{"not a CloudEvent", "structured mode"} {
				if strings.Contains(p.Reason.Error(), want) {
					reasons[want] = true
				}
			}
		case <-time.After(30 * time.Second):
			t.Fatal("poison callback not called")
		}
	}
	if len(reasons) != 2 {
		t.Fatalf("poison reasons seen: %v", reasons)
	}
	select {
	case x := <-got:
		if x.ID() != e.ID() {
			t.Fatalf("got %s, want %s", x.ID(), e.ID())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consumption stopped after the poison messages")
	}
}

// TestUnreachableBrokers: publishing and subscribing fail with an error
// naming the brokers instead of hanging.
func TestUnreachableBrokers(t *testing.T) {
	for _, autoCreate := range []bool{true, false} {
		cfg := testConfig([]string{"127.0.0.1:1"})
		cfg.AutoCreateTopics = autoCreate
		cfg.SessionTimeout, cfg.RebalanceTimeout = time.Second, time.Second
		tr, err := kafka.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b := bus.New(tr)
		e := event.New()
		e.SetSource("/s")
		e.SetType("t")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = b.Publish(ctx, "t", e)
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") && !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("auto-create %v: publish: %v, want an error naming the broker", autoCreate, err)
		}
		t.Logf("auto-create %v: publish: %v", autoCreate, err)
		_, err = b.Subscribe(ctx, "t", "g", func(context.Context, []bus.Message) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("auto-create %v: subscribe: %v, want an error naming the broker", autoCreate, err)
		}
		t.Logf("auto-create %v: subscribe: %v", autoCreate, err)
		if ctx.Err() != nil {
			t.Errorf("auto-create %v: gave up only when the test's context ended", autoCreate)
		}
		cancel()
		_ = b.Close()
	}
}

package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
)

// TestLags: while a handler holds the first batch of a partition, Lags
// reports the messages after it, for the group and partition.
func TestLags(t *testing.T) {
	brokers := newCluster(t)
	tr := newTransport(t, brokers)
	const topic, group, n = "lag-topic", "lag-group", 50
	evs := make([]bus.Event, n)
	for i := range evs {
		e := event.New()
		e.SetID(fmt.Sprint(i))
		e.SetSource("/lag")
		e.SetType("t")
		e.SetExtension(bus.ExtPartitionKey, "one-key")
		evs[i] = e
	}
	if err := tr.Publish(context.Background(), topic, evs); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	sub, err := tr.Subscribe(context.Background(), topic, group, func(ctx context.Context, msgs []bus.Message) error {
		<-release
		return nil
	}, bus.SubscribeConfig{MaxBatch: 10}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	t.Cleanup(func() { close(release) }) // before Close, which waits for the handler
	deadline := time.Now().Add(30 * time.Second)
	for {
		lags := tr.Lags()
		if len(lags) == 1 && lags[0].Messages == n-10 {
			if l := lags[0]; l.Topic != topic || l.Group != group {
				t.Fatalf("lag %+v, want topic %q group %q", l, topic, group)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lags() = %+v, want one partition %d behind", lags, n-10)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

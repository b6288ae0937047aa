package amqp_test

import (
	"context"
	"testing"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
)

// TestQueueDepths: while a handler holds its first batch, the group's queue
// reports the messages still ready in it, asked of the broker.
func TestQueueDepths(t *testing.T) {
	tr := newTransport(t, testConfig(t))
	topic, group := uniqueName("depth"), "depth-group"
	release := make(chan struct{})
	sub, err := tr.Subscribe(context.Background(), topic, group, func(context.Context, []bus.Message) error {
		<-release
		return nil
	}, bus.SubscribeConfig{MaxBatch: 5}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	t.Cleanup(func() { close(release) }) // before Close, which waits for the handler
	const n = 200
	if err := tr.Publish(context.Background(), topic, testEvents("depth", n)); err != nil {
		t.Fatal(err)
	}
	var depths []amqp.QueueDepth
	waitFor(t, "a queue depth below what was published", func() bool {
		depths, err = tr.QueueDepths(context.Background())
		return err == nil && len(depths) == 1 && depths[0].Messages > 0 && depths[0].Messages < n
	})
	if d := depths[0]; d.Topic != topic || d.Group != group || d.Queue != amqp.QueueName(topic, group) {
		t.Errorf("QueueDepths() = %+v, want topic %q group %q", d, topic, group)
	}
}

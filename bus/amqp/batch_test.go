package amqp_test

import (
	"context"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
)

// TestBatchesFillFromPrefetch: what the broker has sent ahead of the
// handler (the prefetch) makes up the next batch, so a queue with a
// backlog is handled in full batches, not one delivery at a time. The
// handler holds each batch until the broker reports that it has sent all
// it may (the prefetch, less the batch in hand), then lets it go.
func TestBatchesFillFromPrefetch(t *testing.T) {
	tr := newTransport(t, testConfig(t))
	topic, group := uniqueName("batches"), "batches-group"
	const n, maxBatch, prefetch = 100, 10, 20 // prefetch: twice MaxBatch by default
	var sizes []int
	acked := 0 // events of the batches handled before, acknowledged
	all := make(chan struct{})
	sub, err := tr.Subscribe(context.Background(), topic, group, func(ctx context.Context, msgs []bus.Message) error {
		want := max(0, n-acked-prefetch)
		// Not waitFor: this is the subscription's goroutine, not the test's.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
			if d, err := tr.QueueDepths(ctx); err == nil && len(d) == 1 && d[0].Messages == want {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("the queue never came down to %d ready messages", want)
				break
			}
		}
		sizes = append(sizes, len(msgs))
		if acked += len(msgs); acked == n {
			close(all)
		}
		return nil
	}, bus.SubscribeConfig{MaxBatch: maxBatch}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	if err := tr.Publish(context.Background(), topic, testEvents("batches", n)); err != nil {
		t.Fatal(err)
	}
	<-all
	t.Logf("batch sizes: %v", sizes)
	// Full batches take n/maxBatch, and the first may be short; one or two
	// deliveries at a time take 50 to 100.
	if len(sizes) > 2*n/maxBatch {
		t.Errorf("%d events came in %d batches (sizes %v), want at most %d: the prefetched deliveries were not ready for the next batch",
			n, len(sizes), sizes, 2*n/maxBatch)
	}
}

package replay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/sinks"
)

// BenchmarkReplayToKafka replays 20,000 stored events (SQLite) to a Kafka
// topic on an in-process kfake broker with no rate limit, recording a
// replayed entry for each in the store, and in the same
// iteration publishes the same 20,000 events, already in memory, straight
// through the Kafka transport in batches of the same size: the raw
// publish rate. It reports both rates and their ratio.
func BenchmarkReplayToKafka(b *testing.B) {
	const n = 20000
	store, _ := history(b)
	brokers := newCluster(b)
	tr := newKafka(b, brokers)
	m := newManager(b, store, replay.Options{})
	filter := sinks.Query{To: base.Add(n * 10 * time.Millisecond)}

	var events []bus.Event
	q := filter
	q.Limit, q.NoTrail = sinks.MaxLimit, true
	if err := sinks.PageAll(context.Background(), store, q, func(items []sinks.Item) error {
		for i := range items {
			events = append(events, items[i].Event)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if len(events) != n {
		b.Fatalf("%d events selected, want %d", len(events), n)
	}
	// Create both topics before timing anything.
	if err := tr.Publish(context.Background(), "bench-replay", events[:1]); err != nil {
		b.Fatal(err)
	}
	if err := tr.Publish(context.Background(), "bench-raw", events[:1]); err != nil {
		b.Fatal(err)
	}

	var replayTook, rawTook time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		j, err := m.Start(context.Background(), replay.Request{Filter: filter,
			Destination: replay.TopicTarget("kafka", tr, "bench-replay")})
		if err != nil {
			b.Fatal(err)
		}
		if j = wait(b, m, j.ID, 5*time.Minute); j.State != replay.Done || j.Progress.Done != n {
			b.Fatalf("job ended %s with %+v (%s)", j.State, j.Progress, j.Error)
		}
		replayTook += time.Since(start)

		start = time.Now()
		for k := 0; k < n; k += 1000 {
			if err := tr.Publish(context.Background(), "bench-raw", events[k:min(k+1000, n)]); err != nil {
				b.Fatal(err)
			}
		}
		rawTook += time.Since(start)
	}
	replayRate := float64(n*b.N) / replayTook.Seconds()
	rawRate := float64(n*b.N) / rawTook.Seconds()
	b.ReportMetric(replayRate, "replay-events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(replayRate/rawRate, "ratio")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("replay: %.0f events/s, raw publish: %.0f events/s, ratio: %.2f\n", replayRate, rawRate, replayRate/rawRate)
}

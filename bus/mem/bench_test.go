package mem_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
)

// BenchmarkPublishConsume measures 1 KiB events end to end through a Bus on
// the mem transport: published in batches of 100 while one consumer group
// handles them. Compare it with the peers in the benchmarks module.
func BenchmarkPublishConsume(b *testing.B) {
	for _, groups := range []int{1, 3} {
		b.Run(map[int]string{1: "1group", 3: "3groups"}[groups], func(b *testing.B) {
			evs := testEvents(b.N)
			bs := bus.New(mem.New())
			defer bs.Close()
			var handled atomic.Int64
			done := make(chan struct{})
			want := int64(b.N * groups)
			for g := range groups {
				_, err := bs.Subscribe(context.Background(), "bench", string(rune('a'+g)), func(_ context.Context, msgs []bus.Message) error {
					if handled.Add(int64(len(msgs))) == want {
						close(done)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(1024)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 100 {
				if err := bs.Publish(context.Background(), "bench", evs[i:min(i+100, b.N)]...); err != nil {
					b.Fatal(err)
				}
			}
			<-done
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

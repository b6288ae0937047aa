package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/auditbus/auditbus/benchmarks/internal/workload"
)

// Both benchmarks run b.N events end to end; pass -benchtime=200000x to
// match the bench-mem harness's default run.
func BenchmarkAuditbusMem(b *testing.B) { benchmark(b, workload.Auditbus) }

func BenchmarkWatermillGoChannel(b *testing.B) { benchmark(b, workload.Watermill) }

const (
	benchSize  = 1024
	benchBatch = 100
)

func benchmark(b *testing.B, s workload.System) {
	w, err := workload.New(workload.Config{Events: b.N, Size: benchSize, Batch: benchBatch})
	if err != nil {
		b.Fatal(err)
	}
	tr, err := s.Setup(w)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	res, err := tr.Run(ctx)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Verify(); err != nil {
		b.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.PerSecond(), "events/s")
}

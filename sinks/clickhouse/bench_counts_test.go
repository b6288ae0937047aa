package clickhouse_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// BenchmarkCountsOverview stores AUDITBUS_BENCH_EVENTS events (default
// 1,000,000) over one hour, in 5 types, each received and delivered, and
// times what the explorer's overview asks for that hour: Counts and
// CountOutcomes in 1-minute buckets and CountTotals, from the per-minute
// counts (the range starts on a whole minute), and for comparison Counts
// over the same hour shifted by a second, which counts the versions
// themselves. Each metric is the median of the iterations, in ms.
func BenchmarkCountsOverview(b *testing.B) {
	ctx := context.Background()
	n := envInt(b, "AUDITBUS_BENCH_EVENTS", 1_000_000)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := open(b, testConfig(b))
	defer s.Close()
	loadRate := loadBench(b, s, n, start, time.Hour, 5)
	q := sinks.CountQuery{From: start, To: start.Add(time.Hour), Bucket: time.Minute}
	shifted := q
	shifted.From, shifted.To = q.From.Add(time.Second), q.To.Add(time.Second)
	var counts, outcomes, totals, rows []time.Duration
	timed := func(into *[]time.Duration, f func() (int64, error)) {
		t0 := time.Now()
		sum, err := f()
		*into = append(*into, time.Since(t0))
		if err != nil || sum == 0 {
			b.Fatalf("%d counted, %v", sum, err)
		}
	}
	sum := func(cs []sinks.Count, err error) (int64, error) {
		var n int64
		for _, c := range cs {
			n += c.N
		}
		return n, err
	}
	for b.Loop() {
		timed(&counts, func() (int64, error) { return sum(s.Counts(ctx, q)) })
		timed(&outcomes, func() (int64, error) { return sum(s.CountOutcomes(ctx, q)) })
		timed(&totals, func() (int64, error) {
			t, err := s.CountTotals(ctx, q)
			return t.Versions, err
		})
		timed(&rows, func() (int64, error) { return sum(s.Counts(ctx, shifted)) })
	}
	median := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(median(counts), "counts-ms")
	b.ReportMetric(median(outcomes), "outcomes-ms")
	b.ReportMetric(median(totals), "totals-ms")
	b.ReportMetric(median(rows), "counts-rows-ms")
	b.ReportMetric(loadRate, "load-events/s")
	b.ReportMetric(float64(n), "events")
}

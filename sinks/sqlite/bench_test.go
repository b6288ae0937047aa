package sqlite_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// BenchmarkWriterSQLite measures rows/s of 1 KiB events through the
// batching writer into the SQLite store with its default durability
// (WAL, synchronous=FULL), written by 16 callers in batches of 100.
func BenchmarkWriterSQLite(b *testing.B) {
	s := open(b, b.TempDir())
	defer s.Close()
	w := sinks.NewWriter(s, sinks.WriterOptions{})
	defer w.Close()
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	const callers, batch = 16, 100
	now := time.Now()
	mk := func(c, n int) []sinks.Record {
		recs := make([]sinks.Record, batch)
		for i := range recs {
			e := event.New()
			e.SetID(fmt.Sprintf("%d-%d-%d", c, n, i))
			e.SetSource("urn:bench")
			e.SetType("com.example.bench")
			e.SetTime(now)
			e.SetDataContentType("application/octet-stream")
			e.DataEncoded = payload
			recs[i] = sinks.Record{Event: e, Transport: "mem", Topic: "bench", Received: now}
		}
		return recs
	}
	perCaller := (b.N + callers*batch - 1) / (callers * batch)
	// Records are built before the clock starts: the writer and the store
	// are measured, not event construction.
	work := make([][][]sinks.Record, callers)
	for c := range work {
		for n := range perCaller {
			work[c] = append(work[c], mk(c, n))
		}
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for _, recs := range work[c] {
				if err := w.Write(context.Background(), recs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rows := callers * batch * perCaller
	b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
}

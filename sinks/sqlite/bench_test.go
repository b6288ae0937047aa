package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
)

// benchWorkload is what benchWriter writes.
type benchWorkload struct {
	opts sqlite.Options
	// randomIDs gives events random ids, as UUIDs would be, instead of ids
	// that grow with each caller's sequence.
	randomIDs bool
}

// BenchmarkWriterSQLite measures rows/s (records, each a new version of a
// 1 KiB event with four entries: its reception and three deliveries, as a
// route with three destinations writes them) through the batching writer
// into the SQLite store with its default durability (WAL,
// synchronous=FULL), written by 16 callers in batches of 100. Event times
// grow with the write order, 1µs apart, as a stream's do.
func BenchmarkWriterSQLite(b *testing.B) {
	benchWriter(b, benchWorkload{})
}

// BenchmarkWriterSQLiteVariants runs the same workload with
// synchronous=NORMAL (no fsync per commit) and with random event ids, for
// comparison with the default.
func BenchmarkWriterSQLiteVariants(b *testing.B) {
	b.Run("sync=NORMAL", func(b *testing.B) { benchWriter(b, benchWorkload{opts: sqlite.Options{Synchronous: "NORMAL"}}) })
	b.Run("random-ids", func(b *testing.B) { benchWriter(b, benchWorkload{randomIDs: true}) })
}

func benchWriter(b *testing.B, wl benchWorkload) {
	s, err := sqlite.Open(context.Background(), b.TempDir(), wl.opts)
	if err != nil {
		b.Fatal(err)
	}
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
			if wl.randomIDs {
				e.SetID(fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64()))
			} else {
				e.SetID(fmt.Sprintf("%d-%d-%d", c, n, i))
			}
			e.SetSource("urn:bench")
			e.SetType("com.example.bench")
			t := now.Add(time.Duration((n*callers+c)*batch+i) * time.Microsecond)
			e.SetTime(t)
			e.SetDataContentType("application/octet-stream")
			e.DataEncoded = payload
			off := int64((n*callers+c)*batch + i)
			recs[i] = sinks.Record{Event: e, Entries: []sinks.Entry{
				{Kind: sinks.KindReceived, Time: t, Transport: "mem", Topic: "bench", Offset: off, Principal: "mem:bench"},
				{Kind: sinks.KindDelivered, Time: t, Route: "r", Destination: "a", Attempts: 1},
				{Kind: sinks.KindDelivered, Time: t, Route: "r", Destination: "b", Attempts: 1},
				{Kind: sinks.KindDelivered, Time: t, Route: "r", Destination: "c", Attempts: 1},
			}}
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

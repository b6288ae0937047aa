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

// Every benchmark here writes its records from benchCallers goroutines in
// Write calls of benchBatch records.
const benchCallers, benchBatch = 16, 100

// benchWork is what benchmark callers write: work[c] holds caller c's
// Write calls, perCaller of benchBatch records each. Each record is a new
// version of a 1 KiB event with four entries (its reception and three
// deliveries, as a route with three destinations writes them). Event and
// entry times grow with the write order, 1µs apart, from now, as a
// stream's do; the same arguments build the same records.
func benchWork(perCaller int, now time.Time, randomIDs bool) [][][]sinks.Record {
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	mk := func(c, n int) []sinks.Record {
		recs := make([]sinks.Record, benchBatch)
		for i := range recs {
			e := event.New()
			if randomIDs {
				e.SetID(fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64()))
			} else {
				e.SetID(fmt.Sprintf("%d-%d-%d", c, n, i))
			}
			e.SetSource("urn:bench")
			e.SetType("com.example.bench")
			pos := (n*benchCallers+c)*benchBatch + i
			t := now.Add(time.Duration(pos) * time.Microsecond)
			e.SetTime(t)
			e.SetDataContentType("application/octet-stream")
			e.DataEncoded = payload
			recs[i] = sinks.Record{Event: e, Entries: []sinks.Entry{
				{Kind: sinks.KindReceived, Time: t, Transport: "mem", Topic: "bench", Offset: int64(pos), Principal: "mem:bench"},
				{Kind: sinks.KindDelivered, Time: t, Route: "r", Destination: "a", Attempts: 1},
				{Kind: sinks.KindDelivered, Time: t, Route: "r", Destination: "b", Attempts: 1},
				{Kind: sinks.KindDelivered, Time: t, Route: "r", Destination: "c", Attempts: 1},
			}}
		}
		return recs
	}
	work := make([][][]sinks.Record, benchCallers)
	for c := range work {
		for n := range perCaller {
			work[c] = append(work[c], mk(c, n))
		}
	}
	return work
}

// writeWork writes every caller's records through w, the callers at once,
// and returns the first error.
func writeWork(w *sinks.Writer, work [][][]sinks.Record) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(work))
	for _, calls := range work {
		wg.Go(func() {
			for _, recs := range calls {
				if err := w.Write(context.Background(), recs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// BenchmarkWriterSQLite measures rows/s (records, each a new version of a
// 1 KiB event with four entries, see benchWork) through the batching
// writer into the SQLite store with its default durability (WAL,
// synchronous=FULL), written by 16 callers in batches of 100.
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

// benchWorkload is what benchWriter writes.
type benchWorkload struct {
	opts sqlite.Options
	// randomIDs gives events random ids, as UUIDs would be, instead of ids
	// that grow with each caller's sequence.
	randomIDs bool
}

func benchWriter(b *testing.B, wl benchWorkload) {
	s, err := sqlite.Open(context.Background(), b.TempDir(), wl.opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	w := sinks.NewWriter(s, sinks.WriterOptions{})
	defer w.Close()
	perCaller := (b.N + benchCallers*benchBatch - 1) / (benchCallers * benchBatch)
	// Records are built before the clock starts: the writer and the store
	// are measured, not event construction.
	work := benchWork(perCaller, time.Now(), wl.randomIDs)
	b.ResetTimer()
	start := time.Now()
	if err := writeWork(w, work); err != nil {
		b.Fatal(err)
	}
	rows := benchCallers * benchBatch * perCaller
	b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
}

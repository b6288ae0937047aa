package e2e_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/ui"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/chromedp/chromedp"
	"github.com/cloudevents/sdk-go/v2/event"
)

// benchTypes are the event types of the load benchmark's store.
var benchTypes = []string{"com.example.order.created", "com.example.order.paid", "com.example.order.shipped", "com.example.user.signup", "com.example.payment.refunded"}

// BenchmarkExplorerLoad fills a SQLite store with AUDITBUS_UI_BENCH_EVENTS
// event versions (default 100,000; `make bench-ui` uses 1,000,000) spread
// over the last hour, each received and delivered or (one in a hundred)
// dead-lettered, starts a daemon on it and measures in Chromium how long
// the overview (last hour: its chart, then its totals) and a search page
// (one type, first page of 100) take from navigation until they are
// drawn.
func BenchmarkExplorerLoad(b *testing.B) {
	n := 100000
	if s := os.Getenv("AUDITBUS_UI_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("AUDITBUS_UI_BENCH_EVENTS=%q: want a positive number of events", s)
		}
	}
	dir := b.TempDir()
	start := time.Now()
	fillStore(b, dir, n)
	b.Logf("stored %d event versions in %s", n, time.Since(start).Round(time.Millisecond))
	_, base := startDaemon(b, "", "AUDITBUS_DATA_DIR="+dir, "AUDITBUS_AUTH_HS256_SECRET=", "AUDITBUS_LEDGER_LOG=bench")
	// Started after the daemon, the browser closes before it.
	ctx := browser(b)
	var overview, totals, search float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ms := pageReady(b, ctx, base+"/ui/", "auditbus:overview-ready", "auditbus:totals-ready")
		overview, totals = overview+ms[0], totals+ms[1]
		search += pageReady(b, ctx, base+"/ui/events?type=com.example.order.paid&order=desc", "auditbus:search-ready")[0]
	}
	b.StopTimer()
	b.ReportMetric(overview/float64(b.N), "overview-ms")
	b.ReportMetric(totals/float64(b.N), "totals-ms")
	b.ReportMetric(search/float64(b.N), "search-ms")
	b.ReportMetric(float64(n), "events")
	if size, err := ui.CompressedSize(); err == nil {
		b.ReportMetric(float64(size)/1024, "assets-KiB-gzip")
	}
}

// pageReady opens url and returns the milliseconds from navigation until
// the page set each of the performance marks.
func pageReady(b *testing.B, ctx context.Context, url string, marks ...string) []float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		b.Fatalf("open %s: %v", url, err)
	}
	out := make([]float64, len(marks))
	for i, mark := range marks {
		expr := fmt.Sprintf(`performance.getEntriesByName(%q).length > 0`, mark)
		if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(5*time.Minute))); err != nil {
			b.Fatalf("open %s, wait for %s: %v", url, mark, err)
		}
		ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](fmt.Sprintf(`performance.getEntriesByName(%q)[0].startTime`, mark)))
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: %s %.0f ms", url, mark, ms)
		out[i] = ms
	}
	return out
}

// fillStore appends n versions to a SQLite store in dir, with times over
// the last hour.
func fillStore(b *testing.B, dir string, n int) {
	b.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, dir, sqlite.Options{Log: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			b.Fatal(err)
		}
	}()
	now := time.Now().UTC()
	const batch = 2000
	recs := make([]sinks.Record, 0, batch)
	for i := 0; i < n; i++ {
		at := now.Add(-time.Hour + time.Duration(int64(i)*int64(time.Hour)/int64(n)))
		e := event.New()
		e.SetID("e-" + strconv.Itoa(i))
		e.SetSource("/bench/" + strconv.Itoa(i%50))
		e.SetType(benchTypes[i%len(benchTypes)])
		e.SetSubject("order " + strconv.Itoa(i))
		e.SetTime(at)
		_ = e.SetData("application/json", []byte(`{"order":`+strconv.Itoa(i)+`,"total":12.5,"currency":"EUR","items":["a","b","c"]}`))
		last := sinks.Entry{Time: at, Kind: sinks.KindDelivered, Route: "orders", Destination: "mem:billing", Attempts: 1, Transport: "mem", Topic: "orders"}
		if i%100 == 0 {
			last = sinks.Entry{Time: at, Kind: sinks.KindDeadLettered, Route: "orders", Destination: "hook", Attempts: 5, Error: "HTTP 503", Transport: "mem", Topic: "orders"}
		}
		recs = append(recs, sinks.Record{Event: e, Entries: []sinks.Entry{
			{Time: at, Kind: sinks.KindReceived, Transport: "http", Topic: "orders", Request: "r-" + strconv.Itoa(i), Principal: "bench"}, last}})
		if len(recs) == batch || i == n-1 {
			if _, err := store.Append(ctx, recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}

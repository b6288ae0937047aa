package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/httpapi"
)

// BenchmarkQueryHTTP is GET /v1/events?limit=1000 end to end: the SQLite
// store's query, the page streamed as JSON, read by an HTTP client. Each
// event carries 1 KiB of JSON data.
func BenchmarkQueryHTTP(b *testing.B) {
	e := newEnv(b)
	const n = 1000
	recs := httpapi.BenchRecords(n, time.Now().UTC())
	if _, err := e.store.Append(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	url := e.srv.URL + "/v1/events?limit=1000&type=com.example.order.created"
	get := func() int64 {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+e.read)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		m, err := io.Copy(io.Discard, res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("GET: %d %v", res.StatusCode, err)
		}
		return m
	}
	size := get()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		get()
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
}

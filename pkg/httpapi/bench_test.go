package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// BenchmarkQueryHTTP is GET /v1/events?limit=1000 end to end: the SQLite
// store's query, the page streamed as JSON, read by an HTTP client. Each
// event carries 1 KiB of JSON data.
func BenchmarkQueryHTTP(b *testing.B) {
	e := newEnv(b)
	const n = 1000
	data := []byte(`{"order":42,"items":[` + strings.Repeat(`{"sku":"ABC-123","qty":1},`, 38) + `{"sku":"END","qty":0}]}`)
	recs := make([]sinks.Record, n)
	now := time.Now().UTC()
	for i := range recs {
		ev := event.New()
		ev.SetID(fmt.Sprintf("id-%06d", i))
		ev.SetSource("/bench/orders")
		ev.SetType("com.example.order.created")
		ev.SetSubject("orders/42")
		ev.SetTime(now.Add(time.Duration(i)))
		ev.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		ev.SetDataContentType("application/json")
		ev.DataEncoded = data
		recs[i] = sinks.Record{Event: ev, Transport: "http", Topic: "events", Outcome: sinks.OutcomeAccepted, Received: now}
	}
	if err := e.store.Append(context.Background(), recs); err != nil {
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

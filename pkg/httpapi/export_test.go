package httpapi

import (
	"fmt"
	"strings"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// JSONEntry is a ledger entry as the API writes it, in a trail or a
// ledger page, for tests to decode.
type JSONEntry struct {
	Log         string `json:"log"`
	Seq         uint64 `json:"seq"`
	Time        string `json:"time"`
	Kind        string `json:"kind"`
	Source      string `json:"source,omitempty"`
	ID          string `json:"id,omitempty"`
	Digest      string `json:"digest,omitempty"`
	Transport   string `json:"transport,omitempty"`
	Topic       string `json:"topic,omitempty"`
	Partition   int    `json:"partition,omitempty"`
	Offset      int64  `json:"offset,omitempty"`
	Request     string `json:"request,omitempty"`
	Principal   string `json:"principal,omitempty"`
	Route       string `json:"route,omitempty"`
	Destination string `json:"destination,omitempty"`
	Attempts    int    `json:"attempts,omitempty"`
	Error       string `json:"error,omitempty"`
	Replay      string `json:"replay,omitempty"`
	TraceID     string `json:"trace_id,omitempty"`
	SpanID      string `json:"span_id,omitempty"`
}

// BenchRecords are the ledger records of n events with 1 KiB of JSON data
// each, a nanosecond apart from now, each received over HTTP and
// delivered by a route.
func BenchRecords(n int, now time.Time) []sinks.Record {
	data := []byte(`{"order":42,"items":[` + strings.Repeat(`{"sku":"ABC-123","qty":1},`, 38) + `{"sku":"END","qty":0}]}`)
	recs := make([]sinks.Record, n)
	for i := range recs {
		e := event.New()
		e.SetID(fmt.Sprintf("id-%06d", i))
		e.SetSource("/bench/orders")
		e.SetType("com.example.order.created")
		e.SetSubject("orders/42")
		e.SetTime(now.Add(time.Duration(i)))
		e.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		e.SetDataContentType("application/json")
		e.DataEncoded = data
		recs[i] = sinks.Record{Event: e, Entries: []sinks.Entry{
			{Time: now, Kind: sinks.KindReceived, Transport: "http", Topic: "events", Request: fmt.Sprintf("%032x", i/100),
				Offset: int64(i % 100), Principal: "svc-orders"},
			{Time: now.Add(time.Millisecond), Kind: sinks.KindDelivered, Transport: "http", Topic: "events",
				Request: fmt.Sprintf("%032x", i/100), Offset: int64(i % 100), Route: "orders", Destination: "kafka:orders", Attempts: 1},
		}}
	}
	return recs
}

// BenchItems are BenchRecords as a query returns them: versions with
// their trails, entries at positions 2i+1 and 2i+2 of the log "bench".
func BenchItems(n int, now time.Time) []sinks.Item {
	recs := BenchRecords(n, now)
	items := make([]sinks.Item, n)
	for i := range recs {
		r := &recs[i]
		if err := r.Prepare(); err != nil {
			panic(err)
		}
		for k := range r.Entries {
			r.Entries[k].Log, r.Entries[k].Seq = "bench", uint64(2*i+k+1)
		}
		items[i] = sinks.Item{Event: r.Event, Digest: r.Digest, Time: r.Time(), Trail: r.Entries}
	}
	return items
}

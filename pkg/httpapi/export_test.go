package httpapi

import (
	"fmt"
	"strings"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// ItemAudit is the "audit" member of a query item, for tests to decode.
type ItemAudit struct {
	Transport string `json:"transport"`
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Route     string `json:"route"`
	Outcome   string `json:"outcome"`
	Replay    string `json:"replay,omitempty"`
	Received  string `json:"received"`
}

// BenchRecords are n records of events with 1 KiB of JSON data each, a
// nanosecond apart from now, as a store returns them (data raw, not
// base64).
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
		recs[i] = sinks.Record{Event: e, Transport: "http", Topic: "events", Outcome: sinks.OutcomeAccepted, Received: now}
	}
	return recs
}

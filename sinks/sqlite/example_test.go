package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
)

// A store records an event's version once and every hop of it as an
// entry of its log; Get returns the version with its trail.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "auditbus-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := sqlite.Open(ctx, dir, sqlite.Options{Log: "router-1"})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	e := event.New()
	e.SetID("order-1")
	e.SetSource("https://shop.example/orders")
	e.SetType("com.example.order.created")
	e.SetTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	_ = e.SetData(event.ApplicationJSON, map[string]int{"total": 12})
	at := e.Time().Add(time.Millisecond)

	// The reception, then the route's deliveries; the reception recorded
	// again (a retried flush) is a duplicate, not a second entry.
	received := sinks.Entry{Kind: sinks.KindReceived, Time: at, Transport: "kafka", Topic: "orders", Offset: 7}
	res, err := s.Append(ctx, []sinks.Record{{Event: e, Entries: []sinks.Entry{received}}})
	fmt.Printf("%+v %v\n", res, err)
	res, err = s.Append(ctx, []sinks.Record{{Event: e, Entries: []sinks.Entry{received,
		{Kind: sinks.KindDelivered, Time: at.Add(time.Millisecond), Route: "billing", Destination: "ledger", Attempts: 1},
		{Kind: sinks.KindDeadLettered, Time: at.Add(2 * time.Millisecond), Route: "billing", Destination: "mail", Attempts: 5, Error: "503"},
	}}})
	fmt.Printf("%+v %v\n", res, err)

	items, err := s.Get(ctx, e.Source(), e.ID())
	if err != nil {
		panic(err)
	}
	for _, en := range items[0].Trail {
		fmt.Println(strings.TrimSpace(fmt.Sprintln(en.Log, en.Seq, en.Kind, en.Route, en.Destination)))
	}
	// Versions a redrive of billing's mail destination still has to deliver:
	p, _ := s.Query(ctx, sinks.Query{Route: "billing", Destination: "mail", Kind: sinks.KindDeadLettered, Redrivable: true})
	fmt.Println(len(p.Items), p.Items[0].Event.ID())
	// Output:
	// {Versions:1 Entries:1 Duplicates:0 Conflicts:[]} <nil>
	// {Versions:0 Entries:2 Duplicates:1 Conflicts:[]} <nil>
	// router-1 1 received
	// router-1 2 delivered billing ledger
	// router-1 3 deadlettered billing mail
	// 1 order-1
}

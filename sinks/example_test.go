package sinks_test

import (
	"fmt"
	"net/url"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// The digest names one version of an event: the same content has the
// same digest however it was built or carried, other content another.
func ExampleDigestEvent() {
	e := event.New()
	e.SetID("order-1")
	e.SetSource("https://shop.example/orders")
	e.SetType("com.example.order.created")
	e.SetTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	e.SetExtension("tenant", "acme")
	e.SetExtension("attempt", 1)
	_ = e.SetData(event.ApplicationJSON, map[string]int{"total": 12})

	d, _ := sinks.DigestEvent(&e)
	fmt.Println(d)

	// The same event as a binary binding reads it back (the extension a
	// header string) with its time in another zone is the same version.
	same := e.Clone()
	same.SetExtension("attempt", "1")
	same.SetTime(e.Time().In(time.FixedZone("CET", 3600)))
	s, _ := sinks.DigestEvent(&same)
	fmt.Println(s == d)

	// Other data is another version: stored beside the first, a conflict.
	other := e.Clone()
	_ = other.SetData(event.ApplicationJSON, map[string]int{"total": 13})
	o, _ := sinks.DigestEvent(&other)
	fmt.Println(o == d)
	// Output:
	// sha256:0ce7d4176ef4a22b8afd0824ae8656dbea2b2ce7b3b065d8c1827c732e914812
	// true
	// false
}

// An entry's Key is the hop it records: the same reception recorded again
// by a retry, at another time and after more attempts, is the same entry.
func ExampleEntry_Key() {
	received := sinks.Entry{Kind: sinks.KindReceived, Source: "urn:shop", ID: "order-1",
		Transport: "kafka", Topic: "orders", Partition: 3, Offset: 1042, Time: time.Unix(1, 0)}
	retried := received
	retried.Time = time.Unix(2, 0)
	redelivered := received
	redelivered.Offset = 1043
	fmt.Println(received.Key() == retried.Key(), received.Key() == redelivered.Key())
	// Output: true false
}

// The audit query endpoint's parameters become a Query; the entry filters
// select the versions that have one entry matching all of them.
func ExampleParseQuery() {
	q, err := sinks.ParseQuery(url.Values{
		"type":          {"com.example.order.*"},
		"route":         {"billing"},
		"destination":   {"ledger"},
		"outcome":       {"deadlettered"},
		"received_from": {"2026-03-01T00:00:00Z"},
	})
	fmt.Println(q.Type, q.TypePrefix, q.Route, q.Destination, q.Kind, q.ReceivedFrom.Format(time.DateOnly), err)

	_, err = sinks.ParseQuery(url.Values{"outcome": {"bounced"}})
	fmt.Println(err)
	// Output:
	// com.example.order. true billing ledger deadlettered 2026-03-01 <nil>
	// sinks: bad query: parameter "outcome": "bounced" is not one of received, refused, filtered, delivered, deadlettered, poison, replayed
}

package sinks_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
)

// richEvent has every attribute set and extensions of every type.
func richEvent() event.Event {
	e := event.New()
	e.SetID("order-1")
	e.SetSource("https://shop.example/orders")
	e.SetType("com.example.order.created")
	e.SetSubject("orders/1")
	e.SetDataSchema("https://shop.example/schemas/order")
	e.SetTime(time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC))
	e.SetExtension("attempt", int32(-3))
	e.SetExtension("urgent", true)
	e.SetExtension("deadline", time.Date(2026, 3, 2, 0, 0, 0, 500, time.UTC))
	e.SetExtension("tenant", "acme")
	e.SetExtension("callback", types.URI{URL: url.URL{Scheme: "https", Host: "shop.example", Path: "/cb"}})
	e.SetExtension("blob", []byte{0, 1, 2, 0xff})
	if err := e.SetData(event.ApplicationJSON, map[string]any{"total": 12.5, "items": []string{"a", "b"}}); err != nil {
		panic(err)
	}
	return e
}

func digest(t *testing.T, e *event.Event) sinks.Digest {
	t.Helper()
	d, err := sinks.DigestEvent(e)
	if err != nil {
		t.Fatalf("DigestEvent(%s): %v", e.ID(), err)
	}
	return d
}

// TestDigestIgnoresMapOrder: extensions live in a map, whose order Go
// changes from one range to the next; the digest never does, nor does it
// depend on the order the extensions were set in.
func TestDigestIgnoresMapOrder(t *testing.T) {
	e := richEvent()
	want := digest(t, &e)
	for range 50 {
		if got := digest(t, &e); got != want {
			t.Fatalf("digest changed from %s to %s", want, got)
		}
	}
	other := event.New()
	other.SetData(event.ApplicationJSON, e.Data())
	for _, name := range []string{"blob", "callback", "tenant", "deadline", "urgent", "attempt"} {
		other.SetExtension(name, e.Extensions()[name])
	}
	other.SetTime(e.Time().In(time.FixedZone("UTC-5", -5*3600)))
	other.SetDataSchema(e.DataSchema())
	other.SetSubject(e.Subject())
	other.SetType(e.Type())
	other.SetSource(e.Source())
	other.SetID(e.ID())
	if got := digest(t, &other); got != want {
		t.Errorf("the same event built in another order, its time in another zone: %s, want %s", got, want)
	}
}

// TestDigestAcrossHTTPModes carries one event over the CloudEvents HTTP
// binding of sdk-go, in binary mode (extensions become header strings)
// and in structured mode (a JSON document, data as JSON or base64), and
// finds one digest for all of them.
func TestDigestAcrossHTTPModes(t *testing.T) {
	binary := richEvent()
	binData := richEvent()
	binData.SetDataContentType("application/octet-stream")
	binData.DataEncoded = []byte{0, 0xfe, 'x', '\n'}
	for _, e := range []event.Event{binary, binData} {
		want := digest(t, &e)
		for _, mode := range []struct {
			name string
			ctx  context.Context
			// sent tells that the request was written in the mode.
			sent func(http.Header) bool
		}{
			{"binary", binding.WithForceBinary(context.Background()), func(h http.Header) bool { return h.Get("ce-attempt") == "-3" }},
			{"structured", binding.WithForceStructured(context.Background()), func(h http.Header) bool {
				return h.Get("Content-Type") == "application/cloudevents+json" && h.Get("ce-id") == ""
			}},
		} {
			got, h := overHTTP(t, mode.ctx, &e)
			if !mode.sent(h) {
				t.Fatalf("%s mode: the request has headers %v", mode.name, h)
			}
			if d := digest(t, got); d != want {
				t.Errorf("%s data, %s mode: digest %s, want %s\nsent %s\n got %s", e.DataContentType(), mode.name, d, want, e, got)
			}
		}
	}
}

// overHTTP writes e into an HTTP request as ctx says and reads it back,
// returning the request's headers too.
func overHTTP(t *testing.T, ctx context.Context, e *event.Event) (*event.Event, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(e), req); err != nil {
		t.Fatalf("write request: %v", err)
	}
	got, err := binding.ToEvent(context.Background(), cehttp.NewMessageFromHttpRequest(req))
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	return got, req.Header
}

// TestDigestTellsContentApart: other data, another attribute value or one
// more extension is another version; no data and empty data, and the
// base64 flag of structured JSON, are not.
func TestDigestTellsContentApart(t *testing.T) {
	e := richEvent()
	base := digest(t, &e)
	for _, c := range []struct {
		name   string
		change func(*event.Event)
	}{
		{"data", func(e *event.Event) { e.DataEncoded = []byte(`{"total":12.6}`) }},
		{"no data", func(e *event.Event) { e.DataEncoded = nil }},
		{"subject", func(e *event.Event) { e.SetSubject("orders/2") }},
		{"time by a nanosecond", func(e *event.Event) { e.SetTime(e.Time().Add(time.Nanosecond)) }},
		{"extension value", func(e *event.Event) { e.SetExtension("attempt", int32(4)) }},
		{"extension added", func(e *event.Event) { e.SetExtension("replay", "job-1") }},
		{"no time", func(e *event.Event) { e.SetTime(time.Time{}) }},
	} {
		changed := e.Clone()
		c.change(&changed)
		if digest(t, &changed) == base {
			t.Errorf("%s changed: same digest", c.name)
		}
	}
	b64 := e.Clone()
	b64.DataBase64 = true
	if digest(t, &b64) != base {
		t.Error("the base64 flag changed the digest")
	}
	none, empty := e.Clone(), e.Clone()
	none.DataEncoded, empty.DataEncoded = nil, []byte{}
	if digest(t, &none) != digest(t, &empty) {
		t.Error("no data and empty data have other digests")
	}
	if _, err := sinks.DigestEvent(&event.Event{}); err == nil {
		t.Error("an event without a context has a digest")
	}
}

func TestParseDigest(t *testing.T) {
	e := richEvent()
	d := digest(t, &e)
	got, err := sinks.ParseDigest(d.String())
	if err != nil || got != d {
		t.Fatalf("ParseDigest(%s) = %s, %v", d, got, err)
	}
	for _, s := range []string{"", "sha256:", d.String()[7:], "sha1:" + d.String()[7:], d.String() + "00", "sha256:" + string(make([]byte, 64))} {
		if _, err := sinks.ParseDigest(s); err == nil {
			t.Errorf("ParseDigest(%q) accepted", s)
		}
	}
}

package bustest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/uuid"
)

// testRoundTripAttributes: every attribute, every extension type and binary
// data arrive unchanged (extensions compared in canonical string form, as
// binary-mode bindings carry them).
func testRoundTripAttributes(t *testing.T, e *env) {
	c := newCollector()
	e.subscribe(t, context.Background(), e.group(t), c.handler)

	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i * 7) // every byte value, 0x00 and 0xff included
	}
	ev := event.New()
	ev.SetID("rt-1")
	ev.SetSource("https://example.com/orders/svc?x=1")
	ev.SetType("com.example.order.created")
	ev.SetSubject("order/42")
	ev.SetTime(time.Date(2026, 11, 22, 10, 30, 15, 123456789, time.UTC))
	ev.SetDataSchema("https://example.com/schemas/order.json")
	if err := ev.SetData("application/octet-stream", data); err != nil {
		t.Fatal(err)
	}
	ev.SetExtension("strext", "hello world: ünïcødé")
	ev.SetExtension("intext", int32(-42))
	ev.SetExtension("boolext", true)
	ev.SetExtension("binext", []byte{0, 1, 2, 0xfe, 0xff})
	ev.SetExtension("uriext", types.URI{URL: *mustURL(t, "https://example.com/a?b=c")})
	ev.SetExtension("timeext", time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	ev.SetExtension(bus.ExtPartitionKey, "customer-7")
	want := ev.Clone()
	e.publish(t, []bus.Event{ev}, 1)
	e.expectAll(t, c, []bus.Event{want})

	c.mu.Lock()
	got := c.events["rt-1"]
	c.mu.Unlock()
	checks := []struct{ attr, got, want string }{
		{"specversion", got.SpecVersion(), "1.0"},
		{"id", got.ID(), want.ID()},
		{"source", got.Source(), want.Source()},
		{"type", got.Type(), want.Type()},
		{"subject", got.Subject(), want.Subject()},
		{"time", got.Time().UTC().Format(time.RFC3339Nano), want.Time().UTC().Format(time.RFC3339Nano)},
		{"dataschema", got.DataSchema(), want.DataSchema()},
		{"datacontenttype", got.DataContentType(), want.DataContentType()},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("attribute %s: got %q, want %q", c.attr, c.got, c.want)
		}
	}
	if !bytes.Equal(got.Data(), data) {
		t.Errorf("data differs: got %d bytes, want %d bit-exact", len(got.Data()), len(data))
	}
	gotExt, wantExt := got.Extensions(), want.Extensions()
	if len(gotExt) != len(wantExt) {
		t.Errorf("extensions: got %v, want %v", gotExt, wantExt)
	}
	for k, wv := range wantExt {
		ws, _ := types.Format(wv)
		gs, err := types.Format(gotExt[k])
		if err != nil || gs != ws {
			t.Errorf("extension %s: got %q (%v), want %q", k, gs, err, ws)
		}
	}
}

// testStructuredJSONData: JSON data decodes to the same value.
func testStructuredJSONData(t *testing.T, e *env) {
	c := newCollector()
	e.subscribe(t, context.Background(), e.group(t), c.handler)
	type order struct {
		ID    int               `json:"id"`
		Items []string          `json:"items"`
		Price float64           `json:"price"`
		Meta  map[string]string `json:"meta"`
	}
	in := order{ID: 42, Items: []string{"a", "b"}, Price: 9.99, Meta: map[string]string{"k": "v\"\n"}}
	ev := event.New()
	ev.SetID("json-1")
	ev.SetSource("/orders")
	ev.SetType("com.example.order.created")
	if err := ev.SetData(event.ApplicationJSON, in); err != nil {
		t.Fatal(err)
	}
	e.publish(t, []bus.Event{ev}, 1)
	e.expectAll(t, c, []bus.Event{ev})
	c.mu.Lock()
	got := c.events["json-1"]
	c.mu.Unlock()
	if got.DataContentType() != event.ApplicationJSON {
		t.Errorf("datacontenttype %q, want %q", got.DataContentType(), event.ApplicationJSON)
	}
	var out order
	if err := got.DataAs(&out); err != nil {
		t.Fatalf("decode data: %v (data %q)", err, got.Data())
	}
	if out.ID != in.ID || out.Price != in.Price || strings.Join(out.Items, ",") != "a,b" || out.Meta["k"] != in.Meta["k"] {
		t.Errorf("data: got %+v, want %+v", out, in)
	}
}

// testDefaultsFilled: a missing id becomes a UUIDv7 and a missing time the
// publish time, visible to the caller and the consumer.
func testDefaultsFilled(t *testing.T, e *env) {
	c := newCollector()
	e.subscribe(t, context.Background(), e.group(t), c.handler)
	ev := event.New()
	ev.SetSource("/defaults")
	ev.SetType("com.example.defaults")
	before := time.Now().Add(-time.Second)
	if err := e.b.Publish(context.Background(), e.topic, ev); err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(ev.ID())
	if err != nil || id.Version() != 7 {
		t.Fatalf("caller's event id %q: want a UUIDv7 (err %v)", ev.ID(), err)
	}
	if ev.Time().Before(before) {
		t.Fatalf("caller's event time %v not filled", ev.Time())
	}
	e.expectAll(t, c, []bus.Event{ev})
	c.mu.Lock()
	got := c.events[ev.ID()]
	c.mu.Unlock()
	if !got.Time().Equal(ev.Time()) {
		t.Errorf("time: got %v, want %v", got.Time(), ev.Time())
	}
}

// testInvalidEvent: events missing a required attribute, or breaking the
// spec, are rejected with an error naming the attribute; nothing of the
// batch is published.
func testInvalidEvent(t *testing.T, e *env) {
	c := newCollector()
	e.subscribe(t, context.Background(), e.group(t), c.handler)
	cases := []struct {
		name, attr string
		mutate     func(*bus.Event)
	}{
		{"no type", "type", func(ev *bus.Event) { ev.SetType("") }},
		{"no source", "source", func(ev *bus.Event) { ev.SetSource("") }},
		{"bad datacontenttype", "datacontenttype", func(ev *bus.Event) { ev.SetDataContentType("not a/media/type;;") }},
		{"old specversion", "specversion", func(ev *bus.Event) { ev.SetSpecVersion("0.3") }},
		{"no context", "specversion", func(ev *bus.Event) { *ev = bus.Event{} }},
	}
	for _, tc := range cases {
		good, bad := newEvent(1, ""), newEvent(2, "")
		tc.mutate(&bad)
		err := e.b.Publish(context.Background(), e.topic, good, bad)
		if !errors.Is(err, bus.ErrInvalidEvent) {
			t.Fatalf("%s: got %v, want ErrInvalidEvent", tc.name, err)
		}
		var ee *bus.EventError
		if !errors.As(err, &ee) || ee.Attribute != tc.attr || ee.Index != 1 || ee.Topic != e.topic {
			t.Fatalf("%s: error %#v should name attribute %q, index 1, topic %q", tc.name, ee, tc.attr, e.topic)
		}
		for _, part := range []string{`"` + tc.attr + `"`, `"` + e.topic + `"`, "invalid event", "publish"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("%s: message %q does not mention %s", tc.name, err, part)
			}
		}
	}
	marker := newEvent(99, "")
	e.publish(t, []bus.Event{marker}, 1)
	e.expectAll(t, c, []bus.Event{marker})
	if n := c.distinct(); n != 1 {
		t.Fatalf("%d events arrived; only the valid marker was published", n)
	}
}

// testOversizeEvent: an event over the limit is rejected naming the limit.
func testOversizeEvent(t *testing.T, e *env) {
	c := newCollector()
	e.subscribe(t, context.Background(), e.group(t), c.handler)
	big := newEvent(1, "")
	_ = big.SetData("application/octet-stream", make([]byte, bus.DefaultMaxEventSize))
	err := e.b.Publish(context.Background(), e.topic, big)
	if !errors.Is(err, bus.ErrTooLarge) || !strings.Contains(err.Error(), "1048576") {
		t.Fatalf("1 MiB of data: got %v, want ErrTooLarge naming the 1048576-byte limit", err)
	}
	small := bus.New(e.tr, bus.WithMaxEventSize(2048))
	mid := newEvent(2, "")
	_ = mid.SetData("application/octet-stream", make([]byte, 4096))
	err = small.Publish(context.Background(), e.topic, mid)
	if !errors.Is(err, bus.ErrTooLarge) || !strings.Contains(err.Error(), "2048") || !strings.Contains(err.Error(), mid.ID()) {
		t.Fatalf("4 KiB over a 2 KiB limit: got %v, want ErrTooLarge naming the limit and the id", err)
	}
	ok := newEvent(3, "")
	_ = ok.SetData("application/octet-stream", make([]byte, 256<<10))
	e.publish(t, []bus.Event{ok}, 1)
	e.expectAll(t, c, []bus.Event{ok})
	if n := c.distinct(); n != 1 {
		t.Fatalf("%d events arrived; only the one under the limit was accepted", n)
	}
}

// testNoGroup: publishing where no group listens is an error, not a drop,
// on transports that do not retain events.
func testNoGroup(t *testing.T, e *env) {
	if !e.f.NoRouteWithoutGroup {
		t.Skip("transport retains events published before any group exists")
	}
	err := e.b.Publish(context.Background(), e.topic, newEvent(1, ""))
	if !errors.Is(err, bus.ErrNoRoute) || !strings.Contains(err.Error(), e.topic) {
		t.Fatalf("got %v, want ErrNoRoute naming the topic", err)
	}
}

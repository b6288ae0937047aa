package amqp

import (
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

func wireEvent() bus.Event {
	e := event.New()
	e.SetID("id-1")
	e.SetSource("/orders")
	e.SetType("com.example.order.created")
	e.SetSubject("order/1")
	e.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC))
	e.SetExtension("partitionkey", "c-1")
	e.SetExtension("count", int32(3))
	_ = e.SetData(event.ApplicationJSON, map[string]int{"n": 1})
	return e
}

// delivery turns a publishing into what a consumer receives.
func delivery(p amqp091.Publishing) Delivery {
	return Delivery{Headers: p.Headers, ContentType: p.ContentType, MessageId: p.MessageId, Body: p.Body}
}

func TestEncodeDecode(t *testing.T) {
	for _, mode := range []ContentMode{Binary, Structured} {
		t.Run(string(mode), func(t *testing.T) {
			in := wireEvent()
			p, err := encode(&in, mode, amqp091.Table{})
			if err != nil {
				t.Fatal(err)
			}
			if p.MessageId != "id-1" || p.DeliveryMode != amqp091.Persistent || p.Timestamp.Unix() != in.Time().Unix() {
				t.Errorf("properties: message-id %q, delivery mode %d, timestamp %v", p.MessageId, p.DeliveryMode, p.Timestamp)
			}
			d := delivery(p)
			out, err := decode(&d)
			if err != nil {
				t.Fatal(err)
			}
			if out.ID() != in.ID() || out.Source() != in.Source() || out.Type() != in.Type() || out.Subject() != in.Subject() ||
				!out.Time().Equal(in.Time()) || out.DataContentType() != in.DataContentType() || string(out.Data()) != string(in.Data()) {
				t.Errorf("decoded %v\nwant %v", out, in)
			}
			if got := bus.PartitionKey(&out); got != "c-1" {
				t.Errorf("partitionkey %q", got)
			}
		})
	}
}

func TestBinaryHeaders(t *testing.T) {
	in := wireEvent()
	p, err := encode(&in, Binary, amqp091.Table{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"cloudEvents:specversion": "1.0", "cloudEvents:id": "id-1", "cloudEvents:source": "/orders",
		"cloudEvents:type": "com.example.order.created", "cloudEvents:subject": "order/1",
		"cloudEvents:time": "2026-01-02T03:04:05.000000006Z", "cloudEvents:partitionkey": "c-1", "cloudEvents:count": "3",
	}
	if len(p.Headers) != len(want) {
		t.Errorf("headers %v, want %v", p.Headers, want)
	}
	for k, v := range want {
		if p.Headers[k] != v {
			t.Errorf("header %s = %v, want %q", k, p.Headers[k], v)
		}
	}
	if p.ContentType != "application/json" || string(p.Body) != `{"n":1}` {
		t.Errorf("content-type %q, body %q", p.ContentType, p.Body)
	}
}

// TestDecodeInput covers what other producers send: other prefixes, any
// case, typed values, and what makes a message poison.
func TestDecodeInput(t *testing.T) {
	base := func() amqp091.Table {
		return amqp091.Table{"ce_specversion": "1.0", "ce_id": "x", "ce_source": "/s", "ce_type": "t"}
	}
	with := func(k string, v any) amqp091.Table { h := base(); h[k] = v; return h }
	tests := []struct {
		name    string
		d       Delivery
		check   func(bus.Event) bool
		wantErr string
	}{
		{"ce_ prefix", Delivery{Headers: base()}, func(e bus.Event) bool { return e.ID() == "x" }, ""},
		{"ce- prefix in upper case", Delivery{Headers: amqp091.Table{"Ce-Specversion": "1.0", "Ce-Id": "y", "CE-SOURCE": "/s", "ce-type": "t"}},
			func(e bus.Event) bool { return e.ID() == "y" }, ""},
		{"cloudEvents_ prefix", Delivery{Headers: amqp091.Table{"cloudEvents_specversion": "1.0", "cloudEvents_id": "z", "cloudEvents_source": "/s", "cloudEvents_type": "t"}},
			func(e bus.Event) bool { return e.ID() == "z" }, ""},
		{"typed extension values", Delivery{Headers: with("ce_n", int32(7))}, func(e bus.Event) bool { return e.Extensions()["n"] == "7" }, ""},
		{"id from message-id", Delivery{Headers: amqp091.Table{"ce_specversion": "1.0", "ce_source": "/s", "ce_type": "t"}, MessageId: "m"},
			func(e bus.Event) bool { return e.ID() == "m" }, ""},
		{"datacontenttype header", Delivery{Headers: with("ce_datacontenttype", "text/plain")},
			func(e bus.Event) bool { return e.DataContentType() == "text/plain" }, ""},
		{"plain message", Delivery{Body: []byte("hello")}, nil, "no CloudEvents headers"},
		{"no type", Delivery{Headers: with("ce_type", "")}, nil, `"type"`},
		{"no source", Delivery{Headers: with("ce_source", "")}, nil, `"source"`},
		{"old specversion", Delivery{Headers: with("ce_specversion", "0.3")}, nil, "specversion"},
		{"bad time", Delivery{Headers: with("ce_time", "yesterday")}, nil, "RFC 3339"},
		{"bad extension name", Delivery{Headers: with("ce_my-ext", "v")}, nil, "extension name"},
		{"bad structured JSON", Delivery{ContentType: StructuredContentType, Body: []byte("{")}, nil, "structured event"},
		{"structured without type", Delivery{ContentType: StructuredContentType, Body: []byte(`{"specversion":"1.0","id":"1","source":"/s"}`)}, nil, "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := decode(&tt.d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decode = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(e) {
				t.Fatalf("decoded %v", e)
			}
		})
	}
}

func TestAttempt(t *testing.T) {
	for _, tt := range []struct {
		d    Delivery
		want int
	}{
		{Delivery{}, 0},
		{Delivery{Redelivered: true}, 1},
		{Delivery{Redelivered: true, Headers: amqp091.Table{"x-delivery-count": int64(4)}}, 4},
	} {
		if got := deliveryCount(&tt.d); got != tt.want {
			t.Errorf("deliveryCount(%+v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

package kafka

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	kafkago "github.com/segmentio/kafka-go"
)

func fullEvent() bus.Event {
	e := event.New()
	e.SetID("id-1")
	e.SetSource("https://example.com/svc")
	e.SetType("com.example.created")
	e.SetSubject("sub")
	e.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC))
	e.SetDataSchema("https://example.com/schema")
	_ = e.SetData("application/octet-stream", []byte{0, 1, 2, 0xff})
	e.SetExtension("strext", "v")
	e.SetExtension("intext", int32(7))
	e.SetExtension(bus.ExtPartitionKey, "k1")
	return e
}

func header(m *kafkago.Message, k string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == k {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestCodecRoundTrip(t *testing.T) {
	for _, mode := range []Mode{Binary, Structured} {
		t.Run(mode.String(), func(t *testing.T) {
			in := fullEvent()
			var msg kafkago.Message
			en := encoder{mode: mode}
			if err := en.encode(&in, &msg); err != nil {
				t.Fatal(err)
			}
			if string(msg.Key) != "k1" {
				t.Fatalf("key %q, want the partitionkey", msg.Key)
			}
			ct, _ := header(&msg, "content-type")
			if mode == Binary {
				for k, want := range map[string]string{"ce_specversion": "1.0", "ce_id": "id-1", "ce_type": "com.example.created",
					"ce_time": "2026-01-02T03:04:05.0000006Z", "ce_intext": "7", "ce_partitionkey": "k1", "content-type": "application/octet-stream"} {
					if got, _ := header(&msg, k); got != want {
						t.Errorf("header %s = %q, want %q", k, got, want)
					}
				}
			} else if ct != StructuredContentType {
				t.Fatalf("content-type %q", ct)
			}
			out, err := decode(&msg)
			if err != nil {
				t.Fatal(err)
			}
			if out.ID() != in.ID() || out.Source() != in.Source() || out.Type() != in.Type() || out.Subject() != in.Subject() ||
				!out.Time().Equal(in.Time()) || out.DataSchema() != in.DataSchema() || out.DataContentType() != in.DataContentType() ||
				!bytes.Equal(out.Data(), in.Data()) {
				t.Fatalf("round trip:\n in %v\nout %v", in, out)
			}
			if out.Extensions()["strext"] != "v" || bus.PartitionKey(&out) != "k1" {
				t.Fatalf("extensions %v", out.Extensions())
			}
		})
	}
}

func TestDecodeKeyBecomesPartitionKey(t *testing.T) {
	msg := kafkago.Message{Key: []byte("cust-9"), Value: []byte("x"), Headers: []kafkago.Header{
		{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "CE_ID", Value: []byte("1")},
		{Key: "ce_source", Value: []byte("/kcat")}, {Key: "ce_type", Value: []byte("t")}, {Key: "traceparent-other", Value: []byte("ignored")},
	}}
	e, err := decode(&msg)
	if err != nil {
		t.Fatal(err)
	}
	if bus.PartitionKey(&e) != "cust-9" || e.ID() != "1" || string(e.Data()) != "x" {
		t.Fatalf("decoded %v", e)
	}
}

func TestDecodePoison(t *testing.T) {
	ce := func(extra ...kafkago.Header) []kafkago.Header {
		return append([]kafkago.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("1")},
			{Key: "ce_source", Value: []byte("/s")}, {Key: "ce_type", Value: []byte("t")}}, extra...)
	}
	tests := []struct {
		name string
		msg  kafkago.Message
		want string
	}{
		{"plain message", kafkago.Message{Value: []byte("hello")}, "not a CloudEvent"},
		{"bad specversion", kafkago.Message{Headers: []kafkago.Header{{Key: "ce_specversion", Value: []byte("0.2")}}}, `ce_specversion is "0.2"`},
		{"missing type", kafkago.Message{Headers: ce()[:3]}, `attribute "type"`},
		{"bad time", kafkago.Message{Headers: ce(kafkago.Header{Key: "ce_time", Value: []byte("yesterday")})}, "ce_time"},
		{"bad extension name", kafkago.Message{Headers: ce(kafkago.Header{Key: "ce_my-ext", Value: []byte("v")})}, "extension name"},
		{"bad structured JSON", kafkago.Message{Value: []byte("{not json"), Headers: []kafkago.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}}, "structured mode"},
		{"structured without type", kafkago.Message{Value: []byte(`{"specversion":"1.0","id":"1","source":"/s"}`), Headers: []kafkago.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}}, `attribute "type"`},
		{"batch", kafkago.Message{Value: []byte("[]"), Headers: []kafkago.Header{{Key: "content-type", Value: []byte("application/cloudevents-batch+json")}}}, "batch mode"},
		{"bad content type", kafkago.Message{Headers: ce(kafkago.Header{Key: "content-type", Value: []byte("a/b/c;;")})}, `attribute "datacontenttype"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(&tt.msg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// benchEvent is a typical event: the required attributes, a time, a
// partition key and 1 KiB of data.
func benchEvent() bus.Event {
	e := event.New()
	e.SetID("0193a4b2-7c1d-7e00-8000-000000000001")
	e.SetSource("https://example.com/orders")
	e.SetType("com.example.order.created")
	e.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC))
	e.SetExtension(bus.ExtPartitionKey, "customer-42")
	_ = e.SetData("application/octet-stream", bytes.Repeat([]byte{'x'}, 1024))
	return e
}

func BenchmarkEncodeBinary(b *testing.B) {
	events := []bus.Event{benchEvent()}
	b.ReportAllocs()
	for b.Loop() {
		var msg kafkago.Message
		en := encoder{mode: Binary, arena: make([]byte, 0, 36)}
		if err := en.encode(&events[0], &msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBinary(b *testing.B) {
	e := benchEvent()
	var msg kafkago.Message
	en := encoder{mode: Binary}
	if err := en.encode(&e, &msg); err != nil {
		b.Fatal(err)
	}
	var d decoder
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.decode(&msg); err != nil {
			b.Fatal(err)
		}
	}
}

package cehttp

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttpsdk "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Interop with the CloudEvents Go SDK's own HTTP client and receiver, code
// nobody here wrote.

// sdkEvent has every attribute with values the SDK sends as they are: it
// does not percent-encode header values, so values that need encoding are
// kept to our own round-trip tests.
func sdkEvent(t *testing.T) event.Event {
	t.Helper()
	e := cloudevents.NewEvent()
	e.SetID("sdk-1")
	e.SetSource("https://example.com/sdk")
	e.SetType("com.example.sdk.sent")
	e.SetSubject("orders/42")
	e.SetTime(time.Date(2024, 5, 1, 12, 0, 0, 5000, time.UTC))
	e.SetDataSchema("https://example.com/schemas/o.json")
	e.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	e.SetExtension("comexampleothervalue", 5)
	if err := e.SetData("application/octet-stream", []byte{0, 1, 2, 3, 0xfe, 0xff}); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDecodeWhatTheSDKClientSends(t *testing.T) {
	got := make(chan []event.Event, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evs, err := Decode(r, maxBody)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- evs
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	in := sdkEvent(t)
	for _, m := range []struct {
		name string
		ctx  func(context.Context) context.Context
	}{
		{"binary", cloudevents.WithEncodingBinary},
		{"structured", cloudevents.WithEncodingStructured},
	} {
		t.Run(m.name, func(t *testing.T) {
			res := c.Send(m.ctx(context.Background()), in)
			if !cloudevents.IsACK(res) {
				t.Fatalf("SDK send: %v", res)
			}
			evs := <-got
			if len(evs) != 1 {
				t.Fatalf("%d events", len(evs))
			}
			out := evs[0]
			if !bytes.Equal(out.Data(), in.Data()) {
				t.Errorf("data %q, want %q", out.Data(), in.Data())
			}
			if a, b := stringAttrs(out), stringAttrs(in); !reflect.DeepEqual(a, b) {
				t.Errorf("attributes differ:\n got %v\nwant %v", a, b)
			}
		})
	}
}

func TestSDKReceiverDecodesNewRequest(t *testing.T) {
	p, err := cloudevents.NewHTTP()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan event.Event, 1)
	h, err := cloudevents.NewHTTPReceiveHandler(context.Background(), p, func(e event.Event) {
		got <- e
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	in := sdkEvent(t)
	jsonIn := cloudevents.NewEvent()
	jsonIn.SetID("sdk-2")
	jsonIn.SetSource("/sdk")
	jsonIn.SetType("t")
	_ = jsonIn.SetData(cloudevents.ApplicationJSON, map[string]int{"n": 1})
	for _, e := range []event.Event{in, jsonIn} {
		req, err := NewRequest(context.Background(), srv.URL, &e, nil)
		if err != nil {
			t.Fatal(err)
		}
		msg := cehttpsdk.NewMessage(req.Header, nil)
		if enc := msg.ReadEncoding(); enc.String() != "binary" {
			t.Fatalf("the SDK reads our request as %v, want binary", enc)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("SDK receiver answered %d", resp.StatusCode)
		}
		out := <-got
		if !bytes.Equal(out.Data(), e.Data()) {
			t.Errorf("data %q, want %q", out.Data(), e.Data())
		}
		if a, b := stringAttrs(out), stringAttrs(e); !reflect.DeepEqual(a, b) {
			t.Errorf("attributes differ:\n got %v\nwant %v", a, b)
		}
		if err := out.Validate(); err != nil {
			t.Errorf("the SDK finds the event invalid: %v", err)
		}
	}
}

package cehttp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttpsdk "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// benchRequest is a reusable request whose body rewinds to data.
type benchRequest struct {
	r    *http.Request
	body *bytes.Reader
	data []byte
}

func newBenchRequest(h http.Header, data []byte) *benchRequest {
	br := &benchRequest{body: bytes.NewReader(data), data: data}
	br.r = &http.Request{Method: http.MethodPost, Header: h, Body: io.NopCloser(br.body), ContentLength: int64(len(data))}
	return br
}

func (br *benchRequest) rewind() *http.Request {
	br.body.Reset(br.data)
	return br.r
}

// binary1KiB is a binary-mode request as a service sends it: the four
// required attributes, a time, a traceparent and 1 KiB of JSON data.
func binary1KiB() (http.Header, []byte) {
	h := http.Header{}
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", "0190a5f2-7c1e-7b3a-9f00-3c2d1e0f4a5b")
	h.Set("Ce-Source", "https://orders.example.com/eu")
	h.Set("Ce-Type", "com.example.order.created")
	h.Set("Ce-Time", "2024-05-01T12:00:00.123Z")
	h.Set("Ce-Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set("Content-Type", "application/json")
	data := []byte(`{"items":[`)
	for i := 0; len(data) < 1000; i++ {
		data = append(data, `{"sku":"SKU-`+strconv.Itoa(i)+`","qty":1},`...)
	}
	data = append(data[:len(data)-1], "]}"...)
	for len(data) < 1024 {
		data = append(data, ' ')
	}
	return h, data[:1024]
}

// BenchmarkDecodeBinary1KiB measures Decode on a binary-mode event with
// 1 KiB of data; "sdk" is the CloudEvents SDK's own HTTP decoding of the
// same request (without the validation Decode does), for reference.
func BenchmarkDecodeBinary1KiB(b *testing.B) {
	h, data := binary1KiB()
	b.Run("cehttp", func(b *testing.B) {
		br := newBenchRequest(h, data)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			evs, err := Decode(br.rewind(), maxBody)
			if err != nil || len(evs[0].Data()) != 1024 {
				b.Fatal(err)
			}
		}
	})
	b.Run("sdk", func(b *testing.B) {
		br := newBenchRequest(h, data)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			e, err := binding.ToEvent(context.Background(), cehttpsdk.NewMessageFromHttpRequest(br.rewind()))
			if err != nil || len(e.Data()) != 1024 {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeStructured1KiB: the same event in structured mode.
func BenchmarkDecodeStructured1KiB(b *testing.B) {
	h, data := binary1KiB()
	e := event.New()
	e.SetID(h.Get("Ce-Id"))
	e.SetSource(h.Get("Ce-Source"))
	e.SetType(h.Get("Ce-Type"))
	e.SetExtension("traceparent", h.Get("Ce-Traceparent"))
	e.SetDataContentType("application/json")
	e.DataEncoded = data
	body, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	br := newBenchRequest(http.Header{"Content-Type": {MediaTypeStructured}}, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(br.rewind(), maxBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode1KiB measures NewRequest for the same event.
func BenchmarkEncode1KiB(b *testing.B) {
	h, data := binary1KiB()
	evs, err := Decode(newBenchRequest(h, data).rewind(), maxBody)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewRequest(ctx, "http://127.0.0.1:9/hook", &evs[0], nil); err != nil {
			b.Fatal(err)
		}
	}
}

package cehttp

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/auditbus/auditbus/bus"
)

// FuzzDecodeJSON: whatever the body, Decode never panics and either
// refuses with an *Error or returns valid events that survive a trip
// through binary mode unchanged.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":[1,"x\"y"]}}`,
		`{"specversion":"1.0","id":"1","source":"https://x/a%20b?q#f","type":"t","ext":5,"b":true,"time":"2024-01-01T00:00:00+02:00"}`,
		`{"specversion":"1.0","id":"\u00e9","source":"/s","type":"t","datacontenttype":"text/plain","data":"\ud83d\ude00"}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AAEC"}`,
		`[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{}]`,
		`{"specversion":"0.3"}`, `[]`, `{}`, `[1,{"a":{}}]`, `"x"`, ``,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, body string, batch bool) {
		ct := MediaTypeStructured
		if batch {
			ct = MediaTypeBatch
		}
		evs, err := Decode(bodyReq(ct, body), maxBody)
		if err != nil {
			var de *Error
			if !errors.As(err, &de) || de.Status != http.StatusBadRequest || de.Code == "" || de.Message == "" {
				t.Fatalf("refusal %v (%T) is not a complete 400 *Error", err, err)
			}
			return
		}
		for i := range evs {
			in := evs[i]
			if err := bus.Validate(&in); err != nil {
				t.Fatalf("accepted an invalid event: %v", err)
			}
			req, err := NewRequest(context.Background(), "http://x/", &in, nil)
			if err != nil {
				t.Fatalf("cannot encode an accepted event: %v", err)
			}
			r := httptest.NewRequest(http.MethodPost, "/", req.Body)
			r.Header = req.Header
			out, err := Decode(r, maxBody)
			if err != nil {
				t.Fatalf("binary mode refused an accepted event: %v\nheaders %v", err, req.Header)
			}
			if !bytes.Equal(out[0].Data(), in.Data()) {
				t.Fatalf("data %q became %q", in.Data(), out[0].Data())
			}
			if a, b := stringAttrs(out[0]), stringAttrs(in); !reflect.DeepEqual(a, b) {
				t.Fatalf("attributes changed:\n got %v\nwant %v", a, b)
			}
		}
	})
}

// FuzzHeaderValue: encoding then decoding gives the value back, for every
// valid CloudEvents string; decoding any input never panics.
func FuzzHeaderValue(f *testing.F) {
	for _, s := range []string{"plain", "Euro € 😀", `"q\"x"`, "%41%zz%", "%C0%A0", "\x00\x7f\xc2\x85"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = decodeHeaderValue(s)
		if checkString(s) != nil {
			return
		}
		wire := encodeHeaderValue(s)
		for i := 0; i < len(wire); i++ {
			if mustEscape(wire[i]) && wire[i] != '%' {
				t.Fatalf("encoded %q as %q, which keeps byte %#x", s, wire, wire[i])
			}
		}
		got, err := decodeHeaderValue(wire)
		if err != nil || got != s {
			t.Fatalf("%q -> %q -> %q, %v", s, wire, got, err)
		}
	})
}

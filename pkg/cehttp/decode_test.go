package cehttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

const maxBody = 1 << 20

// binaryReq builds a binary-mode request with the given headers (name,
// value pairs) and body.
func binaryReq(t *testing.T, body []byte, kv ...string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
	for i := 0; i < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

func bodyReq(ct, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	return r
}

func decodeOne(t *testing.T, r *http.Request) event.Event {
	t.Helper()
	evs, err := Decode(r, maxBody)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(evs) != 1 {
		t.Fatalf("Decode returned %d events, want 1", len(evs))
	}
	return evs[0]
}

func TestDecodeBinary(t *testing.T) {
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(i) // every byte value, NULs and invalid UTF-8 included
	}
	r := binaryReq(t, data,
		"ce-specversion", "1.0",
		"ce-id", "A234-1234-1234",
		"ce-source", "https://example.com/orders?x=1",
		"ce-type", "com.example.order.created",
		"ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80",
		"ce-time", "2018-04-05T17:31:00.123456789Z",
		"ce-dataschema", "https://example.com/schemas/order.json",
		"CE-TraceParent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"ce-comexampleext", `"quoted \"value\" 100%"`,
		"Content-Type", "application/octet-stream",
		"X-Other", "ignored",
	)
	e := decodeOne(t, r)
	if !bytes.Equal(e.Data(), data) {
		t.Fatalf("data differs from the body")
	}
	checks := map[string][2]string{
		"id":              {e.ID(), "A234-1234-1234"},
		"source":          {e.Source(), "https://example.com/orders?x=1"},
		"type":            {e.Type(), "com.example.order.created"},
		"subject":         {e.Subject(), "Euro € 😀"},
		"time":            {e.Time().Format(time.RFC3339Nano), "2018-04-05T17:31:00.123456789Z"},
		"dataschema":      {e.DataSchema(), "https://example.com/schemas/order.json"},
		"datacontenttype": {e.DataContentType(), "application/octet-stream"},
		"traceparent":     {e.Extensions()["traceparent"].(string), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"comexampleext":   {e.Extensions()["comexampleext"].(string), `quoted "value" 100%`},
	}
	for attr, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", attr, c[0], c[1])
		}
	}
	if len(e.Extensions()) != 2 {
		t.Errorf("extensions = %v, want traceparent and comexampleext only", e.Extensions())
	}
}

func TestDecodeBinaryNoBody(t *testing.T) {
	r := binaryReq(t, nil, "ce-specversion", "1.0", "ce-id", "1", "ce-source", "/s", "ce-type", "t")
	e := decodeOne(t, r)
	if e.Data() != nil || e.DataContentType() != "" {
		t.Fatalf("data = %q, datacontenttype = %q; want none", e.Data(), e.DataContentType())
	}
}

func TestDecodeStructured(t *testing.T) {
	cases := []struct {
		name, body string
		wantData   string
		wantCT     string
		wantB64    bool
		wantExt    map[string]any
	}{
		{
			name: "JSON data kept byte for byte",
			body: `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json",
				"data" : { "b" : 1.50 , "a":[ "\u00e9" ] } }`,
			wantData: `{ "b" : 1.50 , "a":[ "\u00e9" ] }`, wantCT: "application/json",
		},
		{
			name:     "data before specversion and datacontenttype",
			body:     `{"data":"x\ny","datacontenttype":"text/plain","specversion":"1.0","id":"1","source":"/s","type":"t"}`,
			wantData: "x\ny", wantCT: "text/plain",
		},
		{
			name:     "no datacontenttype means JSON",
			body:     `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"I'm just a string"}`,
			wantData: `"I'm just a string"`, wantCT: "application/json",
		},
		{
			name:     "+json suffix is JSON",
			body:     `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/vnd.x+json; charset=utf-8","data":"s"}`,
			wantData: `"s"`, wantCT: "application/vnd.x+json; charset=utf-8",
		},
		{
			name:     "data_base64",
			body:     `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}`,
			wantData: "\x00\x01\x02\xff", wantCT: "application/octet-stream", wantB64: true,
		},
		{
			name: "extensions and nulls",
			body: `{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":null,"time":null,
				"comexampleextension1":"value","comexampleothervalue":5,"flag":true,"neg":-2147483648,"unsetextension":null}`,
			wantExt: map[string]any{"comexampleextension1": "value", "comexampleothervalue": int32(5), "flag": true, "neg": int32(-2147483648)},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := decodeOne(t, bodyReq("application/cloudevents+json; charset=UTF-8", c.body))
			if string(e.Data()) != c.wantData {
				t.Errorf("data = %q, want %q", e.Data(), c.wantData)
			}
			if e.DataContentType() != c.wantCT {
				t.Errorf("datacontenttype = %q, want %q", e.DataContentType(), c.wantCT)
			}
			if e.DataBase64 != c.wantB64 {
				t.Errorf("DataBase64 = %v, want %v", e.DataBase64, c.wantB64)
			}
			if c.wantExt != nil {
				got := e.Extensions()
				if len(got) != len(c.wantExt) {
					t.Errorf("extensions = %#v, want %#v", got, c.wantExt)
				}
				for k, v := range c.wantExt {
					if got[k] != v {
						t.Errorf("extension %s = %#v, want %#v", k, got[k], v)
					}
				}
			}
		})
	}
}

func TestDecodeBatch(t *testing.T) {
	body := `[
	  {"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"n":1}},
	  {"specversion":"1.0","id":"2","source":"/s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AQI="}
	]`
	evs, err := Decode(bodyReq("application/cloudevents-batch+json", body), maxBody)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].ID() != "1" || evs[1].ID() != "2" {
		t.Fatalf("got %d events %v", len(evs), evs)
	}
	if string(evs[0].Data()) != `{"n":1}` || !bytes.Equal(evs[1].Data(), []byte{1, 2}) {
		t.Fatalf("data = %q, %q", evs[0].Data(), evs[1].Data())
	}
	evs, err = Decode(bodyReq("application/cloudevents-batch+json", " [ ] "), maxBody)
	if err != nil || len(evs) != 0 {
		t.Fatalf("empty batch: %v, %d events", err, len(evs))
	}
}

// TestDecodeErrors covers every refusal: its status, code, attribute and
// batch index, and that the message names the input.
func TestDecodeErrors(t *testing.T) {
	const (
		ce    = "application/cloudevents+json"
		batch = "application/cloudevents-batch+json"
	)
	ok := `{"specversion":"1.0","id":"1","source":"/s","type":"t"}`
	bin := func(kv ...string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			base := []string{"ce-specversion", "1.0", "ce-id", "1", "ce-source", "/s", "ce-type", "t"}
			for i := 0; i < len(kv); i += 2 {
				found := false
				for j := 0; j < len(base); j += 2 {
					if base[j] == kv[i] {
						base[j+1], found = kv[i+1], true
					}
				}
				if !found {
					base = append(base, kv[i], kv[i+1])
				}
			}
			var clean []string
			for i := 0; i < len(base); i += 2 {
				if base[i+1] != "<absent>" {
					clean = append(clean, base[i], base[i+1])
				}
			}
			return binaryReq(t, []byte("x"), clean...)
		}
	}
	body := func(ct, b string) func(t *testing.T) *http.Request {
		return func(*testing.T) *http.Request { return bodyReq(ct, b) }
	}
	cases := []struct {
		name    string
		req     func(t *testing.T) *http.Request
		status  int
		code    string
		attr    string
		index   int
		message string // a part of the message
	}{
		{"structured malformed JSON", body(ce, `{"specversion":"1.0",`), 400, CodeMalformedJSON, "", -1, "at byte"},
		{"structured empty body", body(ce, ``), 400, CodeMalformedJSON, "", -1, "empty"},
		{"structured array", body(ce, `[`+ok+`]`), 400, CodeMalformedJSON, "", -1, batch},
		{"structured missing id", body(ce, `{"specversion":"1.0","source":"/s","type":"t"}`), 400, CodeMissingAttribute, "id", -1, `member "id" is missing`},
		{"structured null type", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":null}`), 400, CodeMissingAttribute, "type", -1, `member "type"`},
		{"structured empty source", body(ce, `{"specversion":"1.0","id":"1","source":"","type":"t"}`), 400, CodeMissingAttribute, "source", -1, `member "source"`},
		{"structured missing specversion", body(ce, `{"id":"1","source":"/s","type":"t"}`), 400, CodeMissingAttribute, "specversion", -1, `"1.0"`},
		{"structured specversion 0.3", body(ce, `{"specversion":"0.3","id":"1","source":"/s","type":"t","schemaurl":"x"}`), 400, CodeBadSpecVersion, "specversion", -1, "0.3"},
		{"structured specversion 2.0", body(ce, `{"specversion":"2.0","id":"1","source":"/s","type":"t"}`), 400, CodeBadSpecVersion, "specversion", -1, `"2.0"`},
		{"structured specversion number", body(ce, `{"specversion":1.0,"id":"1","source":"/s","type":"t"}`), 400, CodeInvalidAttribute, "specversion", -1, "a number"},
		{"structured id number", body(ce, `{"specversion":"1.0","id":5,"source":"/s","type":"t"}`), 400, CodeInvalidAttribute, "id", -1, "JSON strings"},
		{"structured bad time", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"yesterday"}`), 400, CodeInvalidAttribute, "time", -1, "RFC 3339"},
		{"structured bad source", body(ce, `{"specversion":"1.0","id":"1","source":"http://[::1","type":"t"}`), 400, CodeInvalidAttribute, "source", -1, "URI-reference"},
		{"structured relative dataschema", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","dataschema":"/x"}`), 400, CodeInvalidAttribute, "dataschema", -1, "absolute"},
		{"structured bad datacontenttype", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"not a type"}`), 400, CodeInvalidAttribute, "datacontenttype", -1, "media type"},
		{"structured empty subject", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":""}`), 400, CodeInvalidAttribute, "subject", -1, "non-empty"},
		{"structured duplicate id", body(ce, `{"specversion":"1.0","id":"1","id":"2","source":"/s","type":"t"}`), 400, CodeInvalidAttribute, "id", -1, "twice"},
		{"structured upper-case extension", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","MyExt":"x"}`), 400, CodeInvalidAttribute, "MyExt", -1, "lower-case"},
		{"structured extension with dash", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","my-ext":"x"}`), 400, CodeInvalidAttribute, "my-ext", -1, "lower-case"},
		{"structured object extension", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","ext":{}}`), 400, CodeInvalidAttribute, "ext", -1, "an object"},
		{"structured fractional extension", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","ext":1.5}`), 400, CodeInvalidAttribute, "ext", -1, "whole numbers"},
		{"structured huge extension", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","ext":2147483648}`), 400, CodeInvalidAttribute, "ext", -1, "2147483647"},
		{"structured control character", body(ce, `{"specversion":"1.0","id":"1\u0007","source":"/s","type":"t"}`), 400, CodeInvalidAttribute, "id", -1, "control character"},
		{"structured data and data_base64", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}`), 400, CodeInvalidAttribute, "data", -1, "both"},
		{"structured bad base64", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"!!"}`), 400, CodeInvalidAttribute, "data_base64", -1, "base64"},
		{"structured object data for text", body(ce, `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":{}}`), 400, CodeInvalidAttribute, "data", -1, "not JSON"},
		{"structured+xml", body("application/cloudevents+xml", `<e/>`), 415, CodeUnsupportedMediaType, "", -1, "application/cloudevents+xml"},
		{"batch of protobuf", body("application/cloudevents-batch+protobuf", `x`), 415, CodeUnsupportedMediaType, "", -1, "JSON"},
		{"plain JSON without ce- headers", body("application/json", ok), 415, CodeUnsupportedMediaType, "", -1, "ce-specversion"},
		{"no content type, no headers", body("", ok), 415, CodeUnsupportedMediaType, "", -1, "no Content-Type"},
		{"batch malformed", body(batch, `[`+ok+`,`), 400, CodeMalformedJSON, "", -1, "at byte"},
		{"batch not an array", body(batch, ok), 400, CodeMalformedJSON, "", -1, "not a JSON array"},
		{"batch bad element", body(batch, `[`+ok+`,`+ok+`,{"specversion":"1.0","id":"x","source":"/s"}]`), 400, CodeBadBatchElement, "type", 2, `batch element 2 (id "x")`},
		{"batch element not an object", body(batch, `[`+ok+`,7]`), 400, CodeBadBatchElement, "", 1, "batch element 1"},
		{"batch element 0.3", body(batch, `[{"specversion":"0.3","id":"1","source":"/s","type":"t"}]`), 400, CodeBadBatchElement, "specversion", 0, "0.3"},
		{"binary missing id", bin("ce-id", "<absent>"), 400, CodeMissingAttribute, "id", -1, "header ce-id is missing"},
		{"binary missing source", bin("ce-source", "<absent>"), 400, CodeMissingAttribute, "source", -1, "header ce-source"},
		{"binary missing type", bin("ce-type", "<absent>"), 400, CodeMissingAttribute, "type", -1, "header ce-type"},
		{"binary missing specversion", bin("ce-specversion", "<absent>"), 400, CodeMissingAttribute, "specversion", -1, "header ce-specversion"},
		{"binary specversion 0.3", bin("ce-specversion", "0.3"), 400, CodeBadSpecVersion, "specversion", -1, "0.3"},
		{"binary bad time", bin("ce-time", "2018-04-05"), 400, CodeInvalidAttribute, "time", -1, "header ce-time"},
		{"binary bad content type", bin("Content-Type", "not a type"), 400, CodeInvalidAttribute, "datacontenttype", -1, "header Content-Type"},
		{"binary ce-datacontenttype", bin("ce-datacontenttype", "text/plain"), 400, CodeInvalidAttribute, "datacontenttype", -1, "Content-Type"},
		{"binary bad extension name", bin("ce-my_ext", "x"), 400, CodeInvalidAttribute, "my_ext", -1, "lower-case"},
		{"binary overlong UTF-8", bin("ce-subject", "%C0%A0"), 400, CodeInvalidAttribute, "subject", -1, "UTF-8"},
		{"binary broken quoted string", bin("ce-subject", `"open`), 400, CodeInvalidAttribute, "subject", -1, "quoted-string"},
		{"binary repeated header", bin("ce-id", "1", "Ce-Id", "2"), 400, CodeInvalidAttribute, "id", -1, "2 times"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.req(t), maxBody)
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("Decode error = %v (%T), want *Error", err, err)
			}
			if de.Status != c.status || de.Code != c.code || de.Attribute != c.attr || de.Index != c.index {
				t.Errorf("got status %d code %q attribute %q index %d, want %d %q %q %d (message %q)",
					de.Status, de.Code, de.Attribute, de.Index, c.status, c.code, c.attr, c.index, de.Message)
			}
			if !strings.Contains(de.Message, c.message) {
				t.Errorf("message %q does not mention %q", de.Message, c.message)
			}
			if c.code == CodeBadBatchElement {
				var inner *Error
				if !errors.As(de.Err, &inner) || inner.Code == CodeBadBatchElement {
					t.Errorf("a bad batch element wraps the element's own *Error, got %v", de.Err)
				}
			}
			j, _ := json.Marshal(de)
			var back map[string]any
			if err := json.Unmarshal(j, &back); err != nil || back["code"] != c.code || back["message"] != de.Message {
				t.Errorf("JSON form %s does not carry the code and message", j)
			}
			if _, has := back["index"]; has != (c.index >= 0) {
				t.Errorf("JSON form %s: index present = %v, want %v", j, has, c.index >= 0)
			}
		})
	}
}

// chunked hides the length of a body, as a chunked request does.
type chunked struct{ io.Reader }

func TestDecodeTooLarge(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2048)
	for _, known := range []bool{true, false} {
		r := binaryReq(t, big, "ce-specversion", "1.0", "ce-id", "1", "ce-source", "/s", "ce-type", "t")
		if !known {
			r.Body = io.NopCloser(chunked{bytes.NewReader(big)})
			r.ContentLength = -1
		}
		_, err := Decode(r, 1024)
		var de *Error
		if !errors.As(err, &de) || de.Status != http.StatusRequestEntityTooLarge || de.Code != CodeTooLarge {
			t.Fatalf("length known %v: err = %v, want 413 too_large", known, err)
		}
		if !strings.Contains(de.Message, "limit of 1024 bytes") {
			t.Errorf("message %q does not say the limit", de.Message)
		}
		var mbe *http.MaxBytesError
		if !known && !errors.As(err, &mbe) {
			t.Errorf("err does not wrap *http.MaxBytesError")
		}
	}
	// At the limit exactly is fine, structured too.
	ok := `{"specversion":"1.0","id":"1","source":"/s","type":"t"}`
	if _, err := Decode(bodyReq(MediaTypeStructured, ok), int64(len(ok))); err != nil {
		t.Fatalf("a body at the limit: %v", err)
	}
	if _, err := Decode(bodyReq(MediaTypeStructured, ok), int64(len(ok)-1)); err == nil {
		t.Fatalf("a body one byte over the limit was accepted")
	}
}

func TestDecodeBadArguments(t *testing.T) {
	if _, err := Decode(nil, 1); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("nil request: %v", err)
	}
	if _, err := Decode(bodyReq(MediaTypeStructured, "{}"), 0); err == nil || !strings.Contains(err.Error(), "maxBody") {
		t.Errorf("maxBody 0: %v", err)
	}
}

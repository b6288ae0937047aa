package cehttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
)

func TestHeaderValueEncoding(t *testing.T) {
	cases := []struct{ plain, wire string }{
		{"Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"}, // the binding's own example
		{`say "hi" 100%`, "say%20%22hi%22%20100%25"},
		{"plain-ascii_/:?#[]@!$&'()*+,;=", "plain-ascii_/:?#[]@!$&'()*+,;="},
		{"", ""},
	}
	for _, c := range cases {
		if got := encodeHeaderValue(c.plain); got != c.wire {
			t.Errorf("encode %q = %q, want %q", c.plain, got, c.wire)
		}
		got, err := decodeHeaderValue(c.wire)
		if err != nil || got != c.plain {
			t.Errorf("decode %q = %q, %v; want %q", c.wire, got, err, c.plain)
		}
	}
	if got := encodeHeaderValue("tab\tDEL\x7f"); got != "tab%09DEL%7F" {
		t.Errorf("control characters are encoded too: got %q", got)
	}
	decodes := []struct{ wire, plain string }{
		{"%e2%82%ac", "€"},         // lower-case hex is accepted
		{"%41%42C", "ABC"},         // needless encoding is accepted
		{"100%", "100%"},           // a bare percent stays
		{"%zz%4", "%zz%4"},         // as do broken sequences
		{`"a \"b\" c"`, `a "b" c`}, // quoted-string, from older senders
		{`"50%25 off"`, "50% off"}, // quoted, then percent-decoded
		{"caf\xc3\xa9", "café"},    // raw UTF-8 (senders that do not encode)
		{"%F0%9F%98%80!", "😀!"},    // four-byte sequence
		{"%EF%B7%90", ""},          // U+FDD0 is a noncharacter: refused
		{"%C0%A0", ""},             // overlong: refused
		{"%ED%A0%80", ""},          // a surrogate: refused
		{"%00", ""},                // NUL: refused
		{"%C2%85", ""},             // C1 control: refused
		{`"unterminated`, ""},      // refused
		{`"a"b"`, ""},              // refused
		{"\xff", ""},               // raw invalid UTF-8: refused
		{"tab%09", ""},             // control: refused
	}
	for _, c := range decodes {
		got, err := decodeHeaderValue(c.wire)
		if c.plain == "" {
			if err == nil {
				t.Errorf("decode %q = %q, want an error", c.wire, got)
			}
			continue
		}
		if err != nil || got != c.plain {
			t.Errorf("decode %q = %q, %v; want %q", c.wire, got, err, c.plain)
		}
	}
}

// fullEvent has every attribute, extensions of every type the HTTP
// binding carries, and data that is not text.
func fullEvent(t testing.TB) event.Event {
	t.Helper()
	e := event.New()
	e.SetID("id with spaces & ünïcode")
	e.SetSource("https://example.com/orders/eu?q=1")
	e.SetType("com.example.order.created")
	e.SetSubject(`Euro € 😀 "quoted" 100%`)
	e.SetTime(time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC))
	e.SetDataSchema("https://example.com/schemas/order.json")
	e.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	e.SetExtension("partitionkey", "customer 42")
	e.SetExtension("attempts", 3)
	e.SetExtension("replayed", true)
	if err := e.SetData("application/octet-stream", []byte{0, 1, 2, 0xff, '\r', '\n', 0xc3}); err != nil {
		t.Fatal(err)
	}
	return e
}

// stringAttrs is the event's attributes as the binary mode carries them:
// every value a string.
func stringAttrs(e event.Event) map[string]string {
	m := map[string]string{
		"specversion": e.SpecVersion(), "id": e.ID(), "source": e.Source(), "type": e.Type(),
		"subject": e.Subject(), "dataschema": e.DataSchema(), "datacontenttype": e.DataContentType(),
		"time": e.Time().UTC().Format(time.RFC3339Nano),
	}
	for k, v := range e.Extensions() {
		s, _ := json.Marshal(v)
		m["ext:"+k] = strings.Trim(string(s), `"`)
	}
	return m
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := fullEvent(t)
	req, err := NewRequest(context.Background(), "http://example.com/hook", &in, http.Header{
		"Authorization": {"Bearer x"},
		"ce-id":         {"must not win"},
		"Content-Type":  {"must/not-win"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodPost || req.Header.Get("Authorization") != "Bearer x" {
		t.Fatalf("method %s, headers %v", req.Method, req.Header)
	}
	if got := req.Header.Values("Ce-Id"); len(got) != 1 || got[0] != "id%20with%20spaces%20&%20%C3%BCn%C3%AFcode" {
		t.Fatalf("Ce-Id = %q", got)
	}
	if got := req.Header.Get("Ce-Subject"); got != "Euro%20%E2%82%AC%20%F0%9F%98%80%20%22quoted%22%20100%25" {
		t.Fatalf("Ce-Subject = %q", got)
	}
	if req.Header.Get("Content-Type") != "application/octet-stream" || req.ContentLength != int64(len(in.Data())) {
		t.Fatalf("Content-Type %q, length %d", req.Header.Get("Content-Type"), req.ContentLength)
	}
	// Through a real server: what it decodes equals what was sent.
	got := make(chan event.Event, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evs, err := Decode(r, maxBody)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		got <- evs[0]
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	req, _ = NewRequest(context.Background(), srv.URL, &in, nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	out := <-got
	if !bytes.Equal(out.Data(), in.Data()) {
		t.Errorf("data %q, want %q", out.Data(), in.Data())
	}
	if a, b := stringAttrs(out), stringAttrs(in); !reflect.DeepEqual(a, b) {
		t.Errorf("attributes differ:\n got %v\nwant %v", a, b)
	}
}

func TestEncodeNoData(t *testing.T) {
	e := event.New()
	e.SetID("1")
	e.SetSource("/s")
	e.SetType("t")
	req := httptest.NewRequest(http.MethodPut, "/x", strings.NewReader("old"))
	req.Header.Set("Content-Type", "text/old")
	if err := Encode(req, &e); err != nil {
		t.Fatal(err)
	}
	if req.Body != http.NoBody || req.ContentLength != 0 || req.Header.Get("Content-Type") != "" {
		t.Fatalf("body %v, length %d, Content-Type %q; want none", req.Body, req.ContentLength, req.Header.Get("Content-Type"))
	}
	if req.Header.Get("Ce-Time") != "" || req.Header.Get("Ce-Subject") != "" {
		t.Fatalf("unset attributes were written: %v", req.Header)
	}
}

func TestEncodeRefusals(t *testing.T) {
	good := event.New()
	good.SetID("1")
	good.SetSource("/s")
	good.SetType("t")
	noType := good.Clone()
	noType.SetType("")
	v03 := good.Clone()
	v03.SetSpecVersion(event.CloudEventsVersionV03)
	cases := []struct {
		name string
		url  string
		e    *event.Event
		want string
	}{
		{"nil event", "http://x/", nil, "nil"},
		{"no type", "http://x/", &noType, `"type"`},
		{"0.3 event", "http://x/", &v03, "1.0"},
		{"relative URL", "/hook", &good, "absolute"},
		{"ftp URL", "ftp://x/", &good, "http"},
		{"broken URL", "http://[::1", &good, "url"},
	}
	for _, c := range cases {
		_, err := NewRequest(context.Background(), c.url, c.e, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one mentioning %s", c.name, err, c.want)
		}
		if c.e != nil && c.e != &good && !errors.Is(err, bus.ErrInvalidEvent) {
			t.Errorf("%s: err does not wrap bus.ErrInvalidEvent", c.name)
		}
	}
	if err := Encode(nil, &good); err == nil {
		t.Error("Encode(nil request) succeeded")
	}
}

// TestRoundTripEveryMode sends events in each content mode to a real
// server that decodes them.
func TestRoundTripEveryMode(t *testing.T) {
	type result struct {
		evs []event.Event
		err error
	}
	results := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evs, err := Decode(r, maxBody)
		results <- result{evs, err}
		var de *Error
		if errors.As(err, &de) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(de.Status)
			_ = json.NewEncoder(w).Encode(de)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	in := fullEvent(t)
	jsonEvent := event.New()
	jsonEvent.SetID("j1")
	jsonEvent.SetSource("/orders")
	jsonEvent.SetType("order.created")
	jsonEvent.SetDataContentType(event.ApplicationJSON)
	jsonEvent.DataEncoded = []byte(`{"total": 12.50, "items": [1,2]}`) // kept as written, spaces and all
	structured, _ := json.Marshal(in)
	// By hand: encoding/json would compact the data of the second event.
	batch := []byte("[" + string(structured) + `,{"specversion":"1.0","id":"j1","source":"/orders","type":"order.created",` +
		`"datacontenttype":"application/json","data": {"total": 12.50, "items": [1,2]}}]`)

	post := func(ct string, body []byte) (*http.Response, result) {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL, ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, <-results
	}

	t.Run("binary", func(t *testing.T) {
		req, _ := NewRequest(context.Background(), srv.URL, &jsonEvent, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := <-results
		if r.err != nil || resp.StatusCode != 202 {
			t.Fatalf("status %d, %v", resp.StatusCode, r.err)
		}
		if string(r.evs[0].Data()) != `{"total": 12.50, "items": [1,2]}` {
			t.Errorf("data %q", r.evs[0].Data())
		}
	})
	t.Run("structured", func(t *testing.T) {
		resp, r := post(MediaTypeStructured+"; charset=UTF-8", structured)
		if r.err != nil || resp.StatusCode != 202 {
			t.Fatalf("status %d, %v", resp.StatusCode, r.err)
		}
		if !bytes.Equal(r.evs[0].Data(), in.Data()) || !reflect.DeepEqual(r.evs[0].Extensions(), in.Extensions()) {
			t.Errorf("got %v, want %v", r.evs[0], in)
		}
	})
	t.Run("batch", func(t *testing.T) {
		resp, r := post(MediaTypeBatch, batch)
		if r.err != nil || resp.StatusCode != 202 || len(r.evs) != 2 {
			t.Fatalf("status %d, %d events, %v", resp.StatusCode, len(r.evs), r.err)
		}
		if r.evs[1].ID() != "j1" || string(r.evs[1].Data()) != `{"total": 12.50, "items": [1,2]}` {
			t.Errorf("second event %v data %q", r.evs[1], r.evs[1].Data())
		}
	})
	t.Run("batch with a bad element", func(t *testing.T) {
		bad := strings.Replace(string(batch), `"id":"j1"`, `"id":""`, 1)
		resp, r := post(MediaTypeBatch, []byte(bad))
		var de *Error
		if !errors.As(r.err, &de) || resp.StatusCode != 400 || de.Index != 1 || de.Code != CodeBadBatchElement || r.evs != nil {
			t.Fatalf("status %d, err %v, events %v; want 400 bad_batch_element at index 1 and no events", resp.StatusCode, r.err, r.evs)
		}
	})
}

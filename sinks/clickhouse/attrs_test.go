package clickhouse

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// storedAttrs is an event's attrs column as Append writes it.
func storedAttrs(t testing.TB, e event.Event) string {
	t.Helper()
	e.DataEncoded, e.DataBase64 = nil, false
	b, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameAsSDK decodes s with d and with the SDK and fails unless both agree:
// the same event, or both an error.
func sameAsSDK(t *testing.T, d *attrDecoder, s string) (fast bool) {
	t.Helper()
	want := event.New()
	wantErr := want.UnmarshalJSON([]byte(s))
	fast = d.fast(s) != nil
	got, err := d.decode(s)
	switch {
	case (err != nil) != (wantErr != nil):
		t.Errorf("%s: decode error %v, the SDK's %v", s, err, wantErr)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Errorf("%s:\ndecoded  %#v\nthe SDK's %#v", s, got.Context, want.Context)
	}
	return fast
}

func TestAttrDecoderMatchesSDK(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 4, 5, 123456789, time.UTC)
	var events []event.Event
	add := func(f func(e *event.Event)) {
		e := event.New()
		e.SetID("ev-1")
		e.SetSource("/orders")
		e.SetType("com.example.order.created")
		f(&e)
		events = append(events, e)
	}
	add(func(e *event.Event) {})
	add(func(e *event.Event) { e.SetTime(at) })
	add(func(e *event.Event) { e.SetTime(at.In(time.FixedZone("x", 3600))) })
	add(func(e *event.Event) { e.SetSubject("order/1") })
	add(func(e *event.Event) { e.SetDataContentType("application/json") })
	add(func(e *event.Event) { e.SetDataContentType("") })
	add(func(e *event.Event) { e.SetDataSchema("https://example.com/schema.json") })
	add(func(e *event.Event) {
		e.SetExtension("partitionkey", "key-1")
		e.SetExtension("traceparent", "00-ab-cd-01")
	})
	add(func(e *event.Event) { e.SetExtension("n", 42); e.SetExtension("ok", true) })
	add(func(e *event.Event) { e.SetExtension("at", at) })
	add(func(e *event.Event) { e.SetExtension("bin", []byte{0, 1, 2}) })
	add(func(e *event.Event) { e.SetID(`quote " and back \ slash`) })
	add(func(e *event.Event) { e.SetSubject("ünïcode <&>") })
	add(func(e *event.Event) { e.SetSource("https://user@example.com:8443/a?b=c#d") })
	add(func(e *event.Event) { e.SetSource("urn:example:1") })
	add(func(e *event.Event) { e.SetID("") })
	add(func(e *event.Event) {
		e.SetTime(at)
		e.SetSubject("s")
		e.SetDataContentType("text/plain")
		e.SetDataSchema("urn:schema")
		e.SetExtension("partitionkey", "k")
		e.SetExtension("auditbusreplay", "job-1")
	})
	var d attrDecoder
	fast := 0
	for _, e := range events {
		if sameAsSDK(t, &d, storedAttrs(t, e)) {
			fast++
		}
	}
	// Most of these take the fast path; the point is that both paths agree.
	if fast < len(events)/2 {
		t.Errorf("%d of %d stored forms decoded on the fast path", fast, len(events))
	}

	for _, s := range []string{
		`{"specversion":"1.0","id":"a","source":"/s","type":"t"}`,
		`{"specversion":"1.0","id":"a","id":"b","source":"/s","type":"t"}`,
		`{"specversion":"1.0","id":"a","source":"","type":"t"}`,
		`{"specversion":"1.0","id":"a","source":"%zz","type":"t"}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","time":"yesterday"}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","time":""}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","subject":""}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","dataschema":""}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","dataschema":"%zz"}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","Ext":"x"}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","ID":"x"}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","x":"1","x":"2"}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","data":"x"}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","data_base64":"AAE="}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","specversion":"1.0"}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t"} `,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t"}}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t",}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t"`,
		`{"specversion":"1.0" ,"id":"a"}`,
		`{"specversion":"1.0"}`,
		`{"specversion":"0.3","id":"a","source":"/s","type":"t"}`,
		`{"id":"a","specversion":"1.0","source":"/s","type":"t"}`,
		`{"specversion":"1.0","id":"a\u0041","source":"/s","type":"t"}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","n":7}`,
		`{"specversion":"1.0","id":"a","source":"/s","type":"t","` + strings.Repeat("x", 300) + `":"long"}`,
	} {
		sameAsSDK(t, &d, s)
	}
}

// FuzzAttrDecoder checks that whatever the fast path takes, the SDK reads
// the same way.
func FuzzAttrDecoder(f *testing.F) {
	f.Add(`{"specversion":"1.0","id":"a","source":"/s","type":"t","time":"2026-12-02T03:04:05.1Z","partitionkey":"k"}`)
	f.Add(`{"specversion":"1.0","id":"a","source":"/s","type":"t","subject":"","datacontenttype":""}`)
	f.Add(`{"specversion":"1.0","id":"a","source":"/s","type":"t","dataschema":"urn:x","x":"1"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var d attrDecoder
		c := d.fast(s)
		if c == nil {
			return
		}
		got := event.Event{Context: c}
		want := event.New()
		if err := want.UnmarshalJSON([]byte(s)); err != nil {
			t.Fatalf("%q: decoded on the fast path, the SDK says %v", s, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\ndecoded  %#v\nthe SDK's %#v", s, got.Context, want.Context)
		}
	})
}

func BenchmarkAttrDecoder(b *testing.B) {
	e := event.New()
	e.SetID("ev-00000001")
	e.SetSource("/bench/replay")
	e.SetType("com.example.order.created")
	e.SetTime(time.Now())
	e.SetDataContentType("application/json")
	e.SetExtension("partitionkey", "key-001")
	s := storedAttrs(b, e)
	b.Run("fast", func(b *testing.B) {
		var d attrDecoder
		for b.Loop() {
			if _, err := d.decode(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sdk", func(b *testing.B) {
		for b.Loop() {
			out := event.New()
			if err := out.UnmarshalJSON([]byte(s)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

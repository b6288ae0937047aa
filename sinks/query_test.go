package sinks_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

func TestParseQuery(t *testing.T) {
	q, err := sinks.ParseQuery(url.Values{
		"from": {"2026-03-01T12:00:00Z"}, "to": {"2026-03-01T13:00:00.5+01:00"},
		"type": {"com.example.*"}, "source": {"urn:s"}, "subject": {"x"}, "id": {"1"},
		"route": {"orders"}, "destination": {"billing"}, "outcome": {"deadlettered"},
		"received_from": {"2026-03-01T12:30:00Z"}, "received_to": {"2026-03-01T12:45:00.000000001Z"},
		"limit": {"50"}, "order": {"desc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !q.From.Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) || q.Type != "com.example." || !q.TypePrefix ||
		q.Source != "urn:s" || q.Subject != "x" || q.ID != "1" || q.Limit != 50 || !q.Desc {
		t.Errorf("parsed %+v", q)
	}
	if q.Route != "orders" || q.Destination != "billing" || q.Kind != sinks.KindDeadLettered ||
		!q.ReceivedFrom.Equal(time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)) ||
		!q.ReceivedTo.Equal(time.Date(2026, 3, 1, 12, 45, 0, 1, time.UTC)) || q.Redrivable || q.NoTrail {
		t.Errorf("parsed entry filters %+v", q)
	}
	if q, err := sinks.ParseQuery(url.Values{"trail": {"false"}}); err != nil || !q.NoTrail {
		t.Errorf("trail=false: %+v, %v", q, err)
	}
	for _, k := range sinks.Kinds {
		if q, err := sinks.ParseQuery(url.Values{"outcome": {k}}); err != nil || q.Kind != k {
			t.Errorf("outcome %q: %+v, %v", k, q, err)
		}
	}
}

func TestQueryValidate(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		q     sinks.Query
		param string // "" when the query is valid
	}{
		{sinks.Query{Kind: sinks.KindDeadLettered, Redrivable: true, Route: "r", Destination: "d"}, ""},
		{sinks.Query{Redrivable: true}, "outcome"},
		{sinks.Query{Kind: sinks.KindDelivered, Redrivable: true}, "outcome"},
		{sinks.Query{Kind: "bounced"}, "outcome"},
		{sinks.Query{ReceivedFrom: at, ReceivedTo: at}, "received_to"},
		{sinks.Query{ReceivedTo: at}, ""},
		{sinks.Query{Limit: sinks.MaxLimit}, ""},
		{sinks.Query{Limit: sinks.MaxLimit + 1}, "limit"},
	} {
		err := c.q.Validate()
		if c.param == "" && err != nil {
			t.Errorf("Validate(%+v): %v", c.q, err)
		}
		if c.param != "" && (!errors.Is(err, sinks.ErrBadQuery) || !strings.Contains(err.Error(), `"`+c.param+`"`)) {
			t.Errorf("Validate(%+v): %v, want ErrBadQuery naming %q", c.q, err, c.param)
		}
	}
}

func TestParseQueryErrorsNameTheParameter(t *testing.T) {
	for _, c := range []struct {
		v     url.Values
		param string
	}{
		{url.Values{"from": {"yesterday"}}, `"from"`},
		{url.Values{"to": {"2026-13-01T00:00:00Z"}}, `"to"`},
		{url.Values{"colour": {"red"}}, `"colour"`},
		{url.Values{"limit": {"-1"}}, `"limit"`},
		{url.Values{"limit": {"ten"}}, `"limit"`},
		{url.Values{"order": {"sideways"}}, `"order"`},
		{url.Values{"trail": {"no"}}, `"trail"`},
		{url.Values{"cursor": {"%%%"}}, `"cursor"`},
		{url.Values{"id": {"a", "b"}}, `"id"`},
		{url.Values{"from": {"2026-03-01T12:00:00Z"}, "to": {"2026-03-01T11:00:00Z"}}, `"to"`},
		{url.Values{"outcome": {"accepted"}}, `"outcome"`},
		{url.Values{"received_from": {"noon"}}, `"received_from"`},
		{url.Values{"received_to": {"2026-03-01"}}, `"received_to"`},
		{url.Values{"received_from": {"2026-03-01T12:00:00Z"}, "received_to": {"2026-03-01T12:00:00Z"}}, `"received_to"`},
		{url.Values{"redrivable": {"true"}}, `"redrivable"`},
		{url.Values{"kind": {"delivered"}}, `"kind"`},
	} {
		_, err := sinks.ParseQuery(c.v)
		if !errors.Is(err, sinks.ErrBadQuery) || !strings.Contains(err.Error(), c.param) {
			t.Errorf("ParseQuery(%v): %v, want ErrBadQuery naming %s", c.v, err, c.param)
		}
	}
}

func TestCursorIsBoundToOrder(t *testing.T) {
	it := item(t)
	c := sinks.CursorAfter(&it, false)
	got, err := sinks.DecodeCursor(c, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := (sinks.Cursor{TimeNs: it.Time.UnixNano(), Source: "urn:w", ID: "c-0", Digest: it.Digest}); got != want {
		t.Errorf("cursor %+v, want %+v", got, want)
	}
	if _, err := sinks.DecodeCursor(c, true); !errors.Is(err, sinks.ErrBadQuery) {
		t.Errorf("ascending cursor accepted for descending order: %v", err)
	}
}

// TestCursorKeepsTheDigest: two versions of one event at one instant
// differ only in the digest, which the cursor must carry.
func TestCursorKeepsTheDigest(t *testing.T) {
	a, b := item(t), item(t)
	b.Event.SetData("text/plain", "other")
	b.Digest, _ = sinks.DigestEvent(&b.Event)
	ca, cb := sinks.CursorAfter(&a, true), sinks.CursorAfter(&b, true)
	if ca == cb {
		t.Fatal("two versions have one cursor")
	}
	got, err := sinks.DecodeCursor(cb, true)
	if err != nil || got.Digest != b.Digest || !got.Desc {
		t.Errorf("DecodeCursor: %+v, %v", got, err)
	}
	bad := sinks.Cursor{TimeNs: 1, Source: "s", ID: "i"}.Encode()
	if got, err := sinks.DecodeCursor(bad, false); err != nil || !got.Digest.IsZero() {
		t.Errorf("a cursor without a digest: %+v, %v", got, err)
	}
}

// item is a version of the first of records("c", 1) at a fixed time.
func item(t *testing.T) sinks.Item {
	t.Helper()
	r := records("c", 1)[0]
	r.Event.SetTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	d, err := sinks.DigestEvent(&r.Event)
	if err != nil {
		t.Fatal(err)
	}
	return sinks.Item{Event: r.Event, Digest: d, Time: r.Event.Time()}
}

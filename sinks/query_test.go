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
		"limit": {"50"}, "order": {"desc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !q.From.Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) || q.Type != "com.example." || !q.TypePrefix ||
		q.Source != "urn:s" || q.Subject != "x" || q.ID != "1" || q.Limit != 50 || !q.Desc {
		t.Errorf("parsed %+v", q)
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
		{url.Values{"cursor": {"%%%"}}, `"cursor"`},
		{url.Values{"id": {"a", "b"}}, `"id"`},
		{url.Values{"from": {"2026-03-01T12:00:00Z"}, "to": {"2026-03-01T11:00:00Z"}}, `"to"`},
	} {
		_, err := sinks.ParseQuery(c.v)
		if !errors.Is(err, sinks.ErrBadQuery) || !strings.Contains(err.Error(), c.param) {
			t.Errorf("ParseQuery(%v): %v, want ErrBadQuery naming %s", c.v, err, c.param)
		}
	}
}

func TestCursorIsBoundToOrder(t *testing.T) {
	recs := records("c", 1)
	c := sinks.CursorAfter(&recs[0], false)
	if _, err := sinks.DecodeCursor(c, false); err != nil {
		t.Fatal(err)
	}
	if _, err := sinks.DecodeCursor(c, true); !errors.Is(err, sinks.ErrBadQuery) {
		t.Errorf("ascending cursor accepted for descending order: %v", err)
	}
}

package sinks_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/auditbus/auditbus/sinks"
)

// FuzzParseQuery: whatever the query string of GET /v1/events, ParseQuery
// never panics, and either returns a Query that validates or refuses with
// an error wrapping ErrBadQuery, whose message stays short whatever the
// client sent.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"from=2026-05-01T00:00:00Z&to=2026-05-02T00:00:00Z&type=com.example.order.*&limit=50&order=desc",
		"source=/shop&subject=42&id=1&route=billing&destination=ledger&outcome=deadlettered",
		"received_from=2026-05-01T00:00:00Z&received_to=2026-05-01T00:00:01Z&cursor=eyJ0IjoxfQ",
		"limit=10001", "limit=-1", "order=sideways", "outcome=eaten", "to=2026-01-01T00:00:00Z&from=2027-01-01T00:00:00Z",
		"nope=1", "type=a&type=b", "cursor=%%", "from=yesterday", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := sinks.ParseQuery(v)
		if err != nil {
			if !errors.Is(err, sinks.ErrBadQuery) {
				t.Fatalf("refusal %v does not wrap ErrBadQuery", err)
			}
			if len(err.Error()) > 1024 {
				t.Fatalf("refusal of %d bytes: %.200s", len(err.Error()), err)
			}
			return
		}
		if err := q.Validate(); err != nil {
			t.Fatalf("accepted a query that does not validate: %v", err)
		}
	})
}

package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestLookupByIDBounded stores 1,100 versions of one id (one source, each
// with other data: conflicts) and asks for the id without ?source=: the
// daemon looks through a bounded number of versions and answers 409
// asking for the source, instead of paging through them all; with
// ?source= it answers every version.
func TestLookupByIDBounded(t *testing.T) {
	const n = 1100
	l := startLive(t, "")
	write := l.tokenWith(t, "events:write")
	for b := 0; b < n; b += 100 {
		var sb strings.Builder
		sb.WriteByte('[')
		for i := b; i < b+100; i++ {
			if i > b {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"specversion":"1.0","id":"same","source":"/one","type":"com.example.same","time":"2026-01-01T00:00:00Z","data":{"n":%d}}`, i)
		}
		sb.WriteByte(']')
		l.mustCall(t, http.MethodPost, "/v1/events?topic=events", write, sb.String(), http.StatusAccepted, nil)
	}
	read := l.tokenWith(t, "audit:read")
	code, _, b := l.call(t, http.MethodGet, "/v1/events/same", read, "")
	if code != http.StatusConflict || !strings.Contains(string(b), "?source=") || !strings.Contains(string(b), "/one") {
		t.Errorf("GET /v1/events/same: %d %.300s; want 409 asking for ?source= and naming the source seen", code, b)
	}
	var all struct {
		Items []json.RawMessage `json:"items"`
	}
	l.mustCall(t, http.MethodGet, "/v1/events/same?source=/one", read, "", http.StatusOK, &all)
	if len(all.Items) != n {
		t.Errorf("with ?source=: %d versions, want %d", len(all.Items), n)
	}
	// A few versions are found without a source, as before.
	l.storeEvents(t, "/few", 3)
	l.mustCall(t, http.MethodGet, "/v1/events/e-1", read, "", http.StatusOK, nil)
}

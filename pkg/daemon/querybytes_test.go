package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestQueryPageBoundedInBytes stores 12 events of 200 KB and asks for
// them all in one page with AUDITBUS_QUERY_MAX_BYTES=1 MiB: each page
// ends at the event that reaches the bound, with a cursor, and following
// the cursors gives every event once.
func TestQueryPageBoundedInBytes(t *testing.T) {
	const maxBytes, eventBytes, n = 1 << 20, 200_000, 12
	l := startLive(t, "", fmt.Sprintf("AUDITBUS_QUERY_MAX_BYTES=%d", maxBytes))
	big := strings.Repeat("a", eventBytes)
	for i := range n {
		body := fmt.Sprintf(`[{"specversion":"1.0","id":"big-%d","source":"/big","type":"com.example.big","time":"2026-01-01T00:00:00Z","data":%q}]`, i, big)
		l.mustCall(t, http.MethodPost, "/v1/events?topic=events", l.tokenWith(t, "events:write"), body, http.StatusAccepted, nil)
	}
	read := l.tokenWith(t, "audit:read")
	seen := map[string]int{}
	pages := 0
	for cursor := ""; ; pages++ {
		if pages > n {
			t.Fatalf("more than %d pages", n)
		}
		q := url.Values{"type": {"com.example.big"}, "limit": {"10000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		code, _, b := l.call(t, http.MethodGet, "/v1/events?"+q.Encode(), read, "")
		if code != http.StatusOK {
			t.Fatalf("GET /v1/events: %d %.300s", code, b)
		}
		if len(b) > maxBytes+eventBytes+4096 {
			t.Errorf("page %d is %d bytes, more than AUDITBUS_QUERY_MAX_BYTES (%d) and one event", pages, len(b), maxBytes)
		}
		var page struct {
			Items []struct {
				Event struct {
					ID string `json:"id"`
				} `json:"event"`
			} `json:"items"`
			Next string `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(page.Items) == n {
			t.Fatalf("all %d events of %d bytes in one page of %d bytes", n, eventBytes, len(b))
		}
		for _, it := range page.Items {
			seen[it.Event.ID]++
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(seen) != n {
		t.Errorf("%d distinct events over %d pages, want %d", len(seen), pages+1, n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s came %d times", id, c)
		}
	}
}

package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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

// TestLookupByIDBoundedInBytes stores 8 versions of 200 KB of one event
// with AUDITBUS_QUERY_MAX_BYTES=1 MiB: GET /v1/events/{id}?source= refuses
// the answer with 409 answer_too_large, naming the paged query, which
// gives every version in pages within the bound; 4 versions of another
// event fit and are answered whole, in the order stored.
func TestLookupByIDBoundedInBytes(t *testing.T) {
	const maxBytes, eventBytes = 1 << 20, 200_000
	l := startLive(t, "", fmt.Sprintf("AUDITBUS_QUERY_MAX_BYTES=%d", maxBytes))
	write := l.tokenWith(t, "events:write")
	big := strings.Repeat("a", eventBytes)
	store := func(id string, n int) {
		for i := range n {
			body := fmt.Sprintf(`[{"specversion":"1.0","id":%q,"source":"/big","type":"com.example.big","time":"2026-01-01T00:00:00Z","data":"%d%s"}]`, id, i, big)
			l.mustCall(t, http.MethodPost, "/v1/events?topic=events", write, body, http.StatusAccepted, nil)
		}
	}
	store("many", 8)
	store("few", 4)
	read := l.tokenWith(t, "audit:read")
	code, _, b := l.call(t, http.MethodGet, "/v1/events/many?source=/big", read, "")
	if code != http.StatusConflict || !strings.Contains(string(b), `"answer_too_large"`) || !strings.Contains(string(b), "GET /v1/events?source=SOURCE&id=ID") {
		t.Fatalf("GET /v1/events/many?source=/big: %d %.300s; want 409 answer_too_large naming the paged query", code, b)
	}
	var page struct {
		Items []struct {
			Event struct {
				Data string `json:"data"`
			} `json:"event"`
			Conflict bool `json:"conflict"`
		} `json:"items"`
		Next string `json:"next"`
	}
	seen, pages := map[string]bool{}, 0
	for cursor := ""; ; pages++ {
		if pages > 8 {
			t.Fatal("more than 8 pages")
		}
		code, _, b := l.call(t, http.MethodGet, "/v1/events?source=/big&id=many&limit=100&cursor="+url.QueryEscape(cursor), read, "")
		if code != http.StatusOK || len(b) > maxBytes+eventBytes+4096 {
			t.Fatalf("page %d: %d, %d bytes", pages, code, len(b))
		}
		page.Items, page.Next = nil, ""
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			seen[it.Event.Data[:1]] = true
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if len(seen) != 8 || pages+1 < 2 {
		t.Errorf("paged: %d versions in %d pages; want 8 in 2 or more", len(seen), pages+1)
	}
	page.Items, page.Next = nil, ""
	l.mustCall(t, http.MethodGet, "/v1/events/few?source=/big", read, "", http.StatusOK, &page)
	if len(page.Items) != 4 || page.Next != "" {
		t.Fatalf("GET /v1/events/few?source=/big: %d versions, next %q; want 4, no next", len(page.Items), page.Next)
	}
	for i, it := range page.Items {
		if it.Event.Data[:1] != fmt.Sprint(i) || it.Conflict != (i > 0) {
			t.Errorf("version %d: data %.1s, conflict %v; want the order stored", i, it.Event.Data, it.Conflict)
		}
	}
}

package daemon_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestScopesReplayWriteAloneReadsNothing: a token with replay:write only
// can neither start a replay or a redrive (each reads the store: it takes
// audit:read as well) nor read a job through cancel or retry, whose
// answers then carry the job's id and state alone.
func TestScopesReplayWriteAloneReadsNothing(t *testing.T) {
	hook, _ := hitCounter(t, http.StatusOK, "")
	routes := "routes:\n  - name: billing\n    source: {http: true}\n    destinations:\n      - {name: ledger, webhook: {url: \"" + hook.URL + "\"}}\n    dead_letter: none\n"
	l := startLive(t, routes, "AUDITBUS_WEBHOOK_ALLOW=127.0.0.1")
	l.storeEvents(t, "/scopes", 3)
	writeOnly := l.tokenWith(t, "replay:write")
	both := l.tokenWith(t, "replay:write audit:read")

	for _, c := range []struct{ path, body string }{
		{"/v1/replays", replayBody(hook.URL)},
		{"/v1/replays?dry_run=true", replayBody(hook.URL)},
		{"/v1/replays", `{"filter":{"from":"2025-01-01T00:00:00Z","to":"2027-01-01T00:00:00Z"},"destination":{"transport":"mem","topic":"copy"}}`},
		{"/v1/redrives", `{"route":"billing"}`},
	} {
		code, _, b := l.call(t, http.MethodPost, c.path, writeOnly, c.body)
		if code != http.StatusForbidden || !strings.Contains(string(b), "audit:read") {
			t.Errorf("POST %s with replay:write only: %d %s, want 403 naming audit:read", c.path, code, b)
		}
	}

	// A slow job, so that it can be cancelled while it runs.
	var j secJob
	body := strings.Replace(replayBody(hook.URL), `"destination"`, `"rate":1,"destination"`, 1)
	l.mustCall(t, http.MethodPost, "/v1/replays", both, body, http.StatusAccepted, &j)
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{http.MethodDelete, "/v1/replays/" + j.ID, http.StatusOK},
		{http.MethodPost, "/v1/replays/" + j.ID + "/retry", http.StatusAccepted},
	} {
		code, _, b := l.call(t, c.method, c.path, writeOnly, "")
		if code != c.want {
			t.Fatalf("%s %s with replay:write only: %d %s, want %d", c.method, c.path, code, b, c.want)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		for k := range got {
			if k != "id" && k != "state" {
				t.Errorf("%s %s with replay:write only answers %q: %s; want only id and state", c.method, c.path, k, b)
			}
		}
	}
	// With audit:read as well, the whole job.
	code, _, b := l.call(t, http.MethodDelete, "/v1/replays/"+j.ID, both, "")
	if code != http.StatusOK || !strings.Contains(string(b), `"progress"`) {
		t.Errorf("DELETE with both scopes: %d %s, want the whole job", code, b)
	}
}

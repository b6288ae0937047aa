package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// liveSecret is the HS256 secret of the daemons startLive runs.
const liveSecret = "0123456789abcdef0123456789abcdef"

// tokenWith signs a token for subject "tester" with the space-separated
// scopes.
func (l *live) tokenWith(t *testing.T, scopes string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "tester", "scope": scopes, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(liveSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call sends a request with a bearer token (none when "") and a JSON body
// (none when ""), and returns the answer.
func (l *live) call(t *testing.T, method, path, token, body string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(newAPIRequest(t, method, l.base+path, token, body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// newAPIRequest is a request with a bearer token (none when "") and a
// JSON body, or a batch of events when it starts with "[" (none when "").
func newAPIRequest(t *testing.T, method, url, token, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		if strings.HasPrefix(body, "[") {
			req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		}
	}
	return req
}

// mustCall is call wanting status want; it decodes the answer into out
// when out is not nil.
func (l *live) mustCall(t *testing.T, method, path, token, body string, want int, out any) {
	t.Helper()
	code, _, b := l.call(t, method, path, token, body)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// storeEvents posts n events of source src and type secTestType through
// POST /v1/events?topic=events, in one batch.
func (l *live) storeEvents(t *testing.T, src string, n int) {
	t.Helper()
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"specversion":"1.0","id":"e-%d","source":%q,"type":%q,"time":"2026-01-01T00:00:00Z","data":{"n":%d}}`, i, src, secTestType, i)
	}
	b.WriteByte(']')
	l.mustCall(t, http.MethodPost, "/v1/events?topic=events", l.tokenWith(t, "events:write"), b.String(), http.StatusAccepted, nil)
}

const secTestType = "com.example.sec"

// secJob is the part of a replay job these tests read.
type secJob struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Progress struct {
		Done   int64 `json:"done"`
		Failed int64 `json:"failed"`
	} `json:"progress"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
	Error string `json:"error"`
}

// waitJob polls GET /v1/replays/{id} until the job is no longer running.
func (l *live) waitJob(t *testing.T, token, id string) secJob {
	t.Helper()
	var j secJob
	waitUntil(t, "replay job "+id+" ends", 60*time.Second, func() bool {
		l.mustCall(t, http.MethodGet, "/v1/replays/"+id, token, "", http.StatusOK, &j)
		return j.State != "running"
	})
	return j
}

// replayBody is a POST /v1/replays body replaying the test events to a
// webhook at url.
func replayBody(url string) string {
	return fmt.Sprintf(`{"filter":{"from":"2025-01-01T00:00:00Z","to":"2027-01-01T00:00:00Z","type":%q},"destination":{"webhook":{"url":%q,"timeout":"2s"}}}`, secTestType, url)
}

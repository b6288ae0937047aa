package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// GET /v1/counts answers versions per bucket and type and the range's
// totals by outcome, as the explorer's overview draws them.
func TestCountsPerBucketAndOutcome(t *testing.T) {
	e := newEnv(t)
	a := ledgerEvent("/shop", "o-1", `{"n":1}`)
	b := ledgerEvent("/shop", "o-2", `{"n":2}`)
	b.SetTime(ledgerBase.Add(90 * time.Second))
	c := ledgerEvent("/shop", "o-3", `{"n":3}`)
	c.SetType("com.example.other")
	e.appendRecords(t,
		sinks.Record{Event: a, Entries: []sinks.Entry{{Time: ledgerBase, Kind: sinks.KindDelivered, Route: "r", Destination: "d"}}},
		sinks.Record{Event: b, Entries: []sinks.Entry{{Time: ledgerBase, Kind: sinks.KindDeadLettered, Route: "r", Destination: "d", Error: "x"}}},
		sinks.Record{Event: c, Entries: []sinks.Entry{{Time: ledgerBase, Kind: sinks.KindReceived}}})
	r := e.do(t, req{path: "/v1/counts?from=2026-02-03T04:05:00Z&to=2026-02-03T04:10:00Z&bucket=1m", token: e.read})
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var got struct {
		Bucket string `json:"bucket"`
		Counts []struct {
			Start time.Time `json:"start"`
			Type  string    `json:"type"`
			N     int64     `json:"n"`
		} `json:"counts"`
		Totals map[string]int64 `json:"totals"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, c := range got.Counts {
		rows = append(rows, c.Start.Format("15:04")+" "+c.Type+" "+string(rune('0'+c.N)))
	}
	if want := "04:05 com.example.ledger 1,04:05 com.example.other 1,04:06 com.example.ledger 1"; strings.Join(rows, ",") != want || got.Bucket != "1m0s" {
		t.Errorf("counts %q bucket %q, want %q", rows, got.Bucket, want)
	}
	r = e.do(t, req{path: "/v1/counts?from=2026-02-03T04:05:00Z&to=2026-02-03T04:10:00Z&bucket=5m&by=outcome", token: e.read})
	if want := `"by":"outcome","counts":[{"start":"2026-02-03T04:05:00Z","outcome":"deadlettered","n":1},{"start":"2026-02-03T04:05:00Z","outcome":"delivered","n":1}]`; !strings.Contains(string(r.body), want) {
		t.Errorf("counts by outcome: %s, want %s", r.body, want)
	}
	r = e.do(t, req{path: "/v1/totals?from=2026-02-03T04:05:00Z&to=2026-02-03T04:10:00Z", token: e.read})
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != http.StatusOK {
		t.Fatalf("totals: %d %s", r.status, r.body)
	}
	want := map[string]int64{"versions": 3, "conflicts": 0, "received": 1, "delivered": 1, "deadlettered": 1, "filtered": 0, "poison": 0, "replayed": 0, "refused": 0}
	if len(got.Totals) != len(want) {
		t.Errorf("totals %v, want %v", got.Totals, want)
	}
	for k, n := range want {
		if got.Totals[k] != n {
			t.Errorf("totals %v, want %v", got.Totals, want)
			break
		}
	}
	r = e.do(t, req{path: "/v1/totals?from=2026-02-03T04:05:00Z&to=2026-02-03T04:10:00Z&type=com.example.o*", token: e.read})
	if !strings.Contains(string(r.body), `"versions":1`) {
		t.Errorf("counts of a type prefix: %s", r.body)
	}
}

// Each bad parameter of GET /v1/counts is a 400 naming it.
func TestCountsRefusesBadParameters(t *testing.T) {
	e := newEnv(t)
	for q, name := range map[string]string{
		"to=2026-02-03T04:10:00Z":                                                     `"from": required`,
		"from=yesterday&to=2026-02-03T04:10:00Z":                                      `"from"`,
		"from=2026-02-03T04:10:00Z&to=2026-02-03T04:00:00Z":                           `"to": must be after from`,
		"from=2026-02-03T04:00:00Z&to=2026-02-03T05:00:00Z&bucket=fast":               `"bucket"`,
		"from=2026-02-03T04:00:00Z&to=2026-02-03T05:00:00Z&bucket=100ms":              `"bucket"`,
		"from=2026-01-03T04:00:00Z&to=2026-02-03T05:00:00Z&bucket=1s":                 `choose a wider bucket`,
		"from=2026-02-03T04:00:00Z&to=2026-02-03T05:00:00Z&route=billing":             `"route": unknown`,
		"from=2026-02-03T04:00:00Z&from=2026-02-03T04:00:00Z&to=2026-02-03T05:00:00Z": `"from": given 2 times`,
		"from=2026-02-03T04:00:00Z&to=2026-02-03T05:00:00Z&by=route":                  `"by": "route" is neither type nor outcome`,
		"from=2026-02-03T04:00:00Z&to=2026-02-03T05:00:00Z&by=outcome&type=a":         `"type": does not apply with by=outcome`,
	} {
		b := wantError(t, e.do(t, req{path: "/v1/counts?" + q, token: e.read}), http.StatusBadRequest, "bad_query")
		if !strings.Contains(b.Error.Message, name) {
			t.Errorf("%s: message %q does not say %s", q, b.Error.Message, name)
		}
	}
	for q, name := range map[string]string{
		"from=2026-02-03T04:00:00Z&to=2026-02-03T05:00:00Z&bucket=1m": `"bucket": unknown; GET /v1/totals accepts from, to and type`,
		"from=2026-02-03T04:00:00Z":                                   `"to": required`,
	} {
		b := wantError(t, e.do(t, req{path: "/v1/totals?" + q, token: e.read}), http.StatusBadRequest, "bad_query")
		if !strings.Contains(b.Error.Message, name) {
			t.Errorf("%s: message %q does not say %s", q, b.Error.Message, name)
		}
	}
	if r := e.do(t, req{path: "/v1/totals?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z", token: e.read}); r.status != http.StatusOK {
		t.Errorf("totals of a month: %d %s", r.status, r.body)
	}
	wantError(t, e.do(t, req{path: "/v1/counts?from=2026-02-03T04:00:00Z&to=2026-02-03T05:00:00Z"}), http.StatusUnauthorized, "unauthorized")
}

// GET / leads to the explorer, which answers with its security headers
// and needs no token; its API calls do.
func TestRootRedirectsToTheExplorer(t *testing.T) {
	e := newEnv(t)
	hr, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d to %q, want 302 to /ui/", res.StatusCode, res.Header.Get("Location"))
	}
	r := e.do(t, req{path: "/ui/events?type=com.example.*"})
	if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		r.header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(string(r.body), `src="/ui/assets/app.js"`) {
		t.Errorf("GET /ui/events: %d %v", r.status, r.header)
	}
	wantError(t, e.do(t, req{method: http.MethodPost, path: "/ui/"}), http.StatusMethodNotAllowed, "method_not_allowed")
	wantError(t, e.do(t, req{path: "/nothing"}), http.StatusNotFound, "not_found")
}

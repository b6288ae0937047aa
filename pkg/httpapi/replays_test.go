package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/auth"
	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// replayBase is the time of the first stored event of the replay tests.
var replayBase = time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)

// testDestinations resolves replay destinations over a mem transport:
// its topics, webhooks, and one route "billing" with the destinations
// "ledger" and "archive" (mem topics of those names).
type testDestinations struct{ tr bus.Transport }

func (d testDestinations) Target(rd httpapi.ReplayDestination) (replay.Target, error) {
	switch {
	case rd.Webhook != nil:
		h, err := cehttp.NewWebhook(cehttp.WebhookConfig{URL: rd.Webhook.URL, Timeout: rd.Webhook.TimeoutDuration()})
		if err != nil {
			return nil, &replay.FieldError{Field: "destination.webhook", Reason: err.Error()}
		}
		return replay.WebhookTarget(h), nil
	case rd.Route != "":
		if rd.Route != "billing" {
			return nil, &replay.FieldError{Field: "destination.route", Reason: "no such route"}
		}
		if rd.Destination != "ledger" && rd.Destination != "archive" {
			return nil, &replay.FieldError{Field: "destination.destination", Reason: "no such destination"}
		}
		return replay.Named("route:billing/"+rd.Destination, replay.TopicTarget("mem", d.tr, rd.Destination)), nil
	case rd.Transport != "mem":
		return nil, &replay.FieldError{Field: "destination.transport", Reason: fmt.Sprintf("%q is not enabled", rd.Transport)}
	}
	return replay.TopicTarget("mem", d.tr, rd.Topic), nil
}

func (d testDestinations) RouteDestinations(route string) ([]string, error) {
	if route != "billing" {
		return nil, &replay.FieldError{Field: "route", Reason: "no such route"}
	}
	return []string{"ledger", "archive"}, nil
}

// replayEnv is an env with a replay manager and tokens for the replay
// scopes.
type replayEnv struct {
	*env
	m         *replay.Manager
	replayW   string // replay:write only
	replayAll string // replay:write and audit:read
}

func newReplayEnv(t *testing.T) *replayEnv {
	t.Helper()
	re := &replayEnv{}
	dir := t.TempDir()
	re.env = newEnv(t, func(o *httpapi.Options) {
		m, err := replay.NewManager(replay.Options{Dir: dir, Store: o.Store, Audit: o.Audit,
			// Give up quickly, so that a failing test fails fast.
			Retry: router.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxElapsed: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		re.m = m
		o.Replays, o.Destinations = m, testDestinations{o.Transport}
	})
	re.replayW = token(t, secret, auth.ScopeReplayWrite, time.Hour)
	re.replayAll = token(t, secret, auth.ScopeReplayWrite+" "+auth.ScopeAuditRead, time.Hour)
	return re
}

// storeEvents audits n events, one a second from replayBase: even ones of
// type com.example.order.created, odd ones com.example.user.signup, each
// received and routed by the route billing to its destinations ledger and
// archive. Every tenth one was dead-lettered by ledger, every twentieth
// by archive too; the others were delivered.
func (re *replayEnv) storeEvents(t *testing.T, n int) {
	t.Helper()
	recs := make([]sinks.Record, n)
	for i := range recs {
		e := event.New()
		e.SetID(fmt.Sprintf("r-%04d", i))
		e.SetSource("/shop")
		e.SetType("com.example.user.signup")
		if i%2 == 0 {
			e.SetType("com.example.order.created")
		}
		e.SetTime(replayBase.Add(time.Duration(i) * time.Second))
		e.SetExtension(bus.ExtPartitionKey, fmt.Sprintf("k%d", i%5))
		_ = e.SetData("application/json", []byte(fmt.Sprintf(`{"n":%d}`, i)))
		at := replayBase.Add(time.Duration(i)*time.Second + time.Millisecond)
		from := sinks.Entry{Transport: "mem", Topic: "orders", Offset: int64(i)}
		received, ledger, archive := from, from, from
		received.Kind, received.Time, received.Principal = sinks.KindReceived, at, "mem:orders"
		ledger.Kind, ledger.Time, ledger.Route, ledger.Destination, ledger.Attempts = sinks.KindDelivered, at, "billing", "ledger", 1
		archive.Kind, archive.Time, archive.Route, archive.Destination, archive.Attempts = sinks.KindDelivered, at, "billing", "archive", 1
		if i%10 == 0 {
			ledger.Kind, ledger.Attempts, ledger.Error = sinks.KindDeadLettered, 3, "HTTP 503"
		}
		if i%20 == 0 {
			archive.Kind, archive.Attempts, archive.Error = sinks.KindDeadLettered, 3, "HTTP 500"
		}
		recs[i] = sinks.Record{Event: e, Entries: []sinks.Entry{received, ledger, archive}}
	}
	if err := re.writer.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// versions lists the versions q selects, with their trails.
func (re *replayEnv) versions(t *testing.T, q sinks.Query) []sinks.Item {
	t.Helper()
	var out []sinks.Item
	q.Limit = sinks.MaxLimit
	if err := sinks.PageAll(context.Background(), re.store, q, func(items []sinks.Item) error {
		out = append(out, items...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func at(sec int) string {
	return replayBase.Add(time.Duration(sec) * time.Second).Format(time.RFC3339)
}

// decodeJob reads a job answer strictly.
func decodeJob(t *testing.T, r resp) httpapi.ReplayJob {
	t.Helper()
	var j httpapi.ReplayJob
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		t.Fatalf("%d %s: not a job: %v", r.status, r.body, err)
	}
	if j.ID == "" || j.Created.IsZero() || j.Errors == nil {
		t.Fatalf("job %s lacks id, created or errors", r.body)
	}
	return j
}

// waitJob polls GET /v1/replays/{id} until the job is final.
func (re *replayEnv) waitJob(t *testing.T, id string) httpapi.ReplayJob {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := re.do(t, req{path: "/v1/replays/" + id, token: re.read})
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/replays/%s: %d %s", id, r.status, r.body)
		}
		if j := decodeJob(t, r); j.State != replay.Running {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still running after 30 s: %s", id, r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReplayStartFollowListDryRun(t *testing.T) {
	re := newReplayEnv(t)
	re.storeEvents(t, 100)
	got := subscribe(t, re.mem, "replayed")
	body := `{"filter": {"from": "` + at(10) + `", "to": "` + at(60) + `", "type": "com.example.order.*"},
		"destination": {"transport": "mem", "topic": "replayed"}, "name": "orders again"}`
	r := re.do(t, req{method: http.MethodPost, path: "/v1/replays", token: re.replayAll, body: body,
		header: map[string]string{"Content-Type": "application/json"}})
	if r.status != http.StatusAccepted {
		t.Fatalf("POST /v1/replays: %d %s", r.status, r.body)
	}
	j := decodeJob(t, r)
	if loc := r.header.Get("Location"); loc != "/v1/replays/"+j.ID {
		t.Errorf("Location %q, want /v1/replays/%s", loc, j.ID)
	}
	want := httpapi.ReplayJobRequest{Filter: httpapi.ReplayFilter{From: at(10), To: at(60), Type: "com.example.order.*"},
		Destination: "mem:replayed"}
	if j.Name != "orders again" || j.Request != want || (j.State != replay.Running && j.State != replay.Done) {
		t.Errorf("job %+v, want name, request %+v and running", j, want)
	}
	j = re.waitJob(t, j.ID)
	// Even events of seconds 10 to 59.
	if j.State != replay.Done || j.Progress.Done != 25 || j.Progress.Total != 25 || j.Progress.Failed != 0 || len(j.Errors) != 0 {
		t.Fatalf("job ended %s with %+v, errors %v", j.State, j.Progress, j.Errors)
	}
	// The mem transport keeps order per partition key only: compare as a set.
	byID := map[string]bus.Event{}
	for _, e := range got.waitFor(t, 25) {
		byID[e.ID()] = e
	}
	for i := 10; i < 60; i += 2 {
		e, ok := byID[fmt.Sprintf("r-%04d", i)]
		if !ok || e.Extensions()[replay.ExtReplay] != j.ID || string(e.Data()) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("copy of event %d: %v, want it with the replay extension %s and its data", i, e, j.ID)
		}
	}
	if len(byID) != 25 {
		t.Errorf("%d distinct events replayed, want 25", len(byID))
	}
	// Each copy is a replayed entry on its original version.
	replayed := re.versions(t, sinks.Query{Kind: sinks.KindReplayed})
	if len(replayed) != 25 {
		t.Errorf("%d versions have a replayed entry, want 25", len(replayed))
	}
	for _, it := range replayed {
		last := it.Trail[len(it.Trail)-1]
		if last.Kind != sinks.KindReplayed || last.Replay != j.ID || last.Destination != "mem:replayed" || last.Route != "" {
			t.Errorf("%s: last entry %+v, want replayed by %s to mem:replayed", it.Event.ID(), last, j.ID)
		}
		if _, ok := it.Event.Extensions()[replay.ExtReplay]; ok {
			t.Errorf("%s: the stored version carries %s", it.Event.ID(), replay.ExtReplay)
		}
	}

	r = re.do(t, req{path: "/v1/replays", token: re.read})
	var list struct {
		Replays []httpapi.ReplayJob `json:"replays"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &list) != nil || len(list.Replays) != 1 || list.Replays[0].ID != j.ID ||
		list.Replays[0].State != replay.Done {
		t.Fatalf("GET /v1/replays: %d %s", r.status, r.body)
	}

	// A dry run counts and starts nothing; a destination is optional but
	// checked when given.
	for _, dry := range []string{
		`{"filter": {"from": "` + at(10) + `", "to": "` + at(60) + `", "type": "com.example.order.*"}}`,
		`{"filter": {"from": "` + at(10) + `", "to": "` + at(60) + `", "type": "com.example.order.*"}, "destination": {"transport": "mem", "topic": "replayed"}}`,
	} {
		r = re.do(t, req{method: http.MethodPost, path: "/v1/replays?dry_run=true", token: re.replayAll, body: dry})
		if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"events":25}` {
			t.Errorf("dry run: %d %s, want 200 {\"events\":25}", r.status, r.body)
		}
	}
	r = re.do(t, req{method: http.MethodPost, path: "/v1/replays?dry_run=true", token: re.replayAll,
		body: `{"filter": {}, "destination": {"transport": "kafka", "topic": "x"}}`})
	if b := wantError(t, r, http.StatusBadRequest, httpapi.CodeBadRequest); !strings.Contains(b.Error.Message, `"destination.transport"`) {
		t.Errorf("dry run to an unknown transport: %s", b.Error.Message)
	}
	if n := len(re.m.List()); n != 1 {
		t.Errorf("%d jobs after the dry runs, want 1", n)
	}
}

func TestReplayToWebhook(t *testing.T) {
	re := newReplayEnv(t)
	re.storeEvents(t, 30)
	var mu sync.Mutex
	var ids []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get("ce-id")+" "+r.Header.Get("ce-"+replay.ExtReplay))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	r := re.do(t, req{method: http.MethodPost, path: "/v1/replays", token: re.replayAll,
		body: `{"filter": {"source": "/shop", "outcome": "deadlettered", "destination": "ledger", "received_from": "` + at(0) + `"},
			"destination": {"webhook": {"url": "` + hook.URL + `", "timeout": "5s"}}, "rate": 1000}`})
	if r.status != http.StatusAccepted {
		t.Fatalf("POST /v1/replays: %d %s", r.status, r.body)
	}
	j := re.waitJob(t, decodeJob(t, r).ID)
	if j.State != replay.Done || j.Progress.Done != 3 || j.Request.Rate != 1000 || j.Request.Destination != hook.URL ||
		j.Request.Filter != (httpapi.ReplayFilter{Source: "/shop", Outcome: "deadlettered", Destination: "ledger", ReceivedFrom: at(0)}) {
		t.Fatalf("job %+v", j)
	}
	for _, it := range re.versions(t, sinks.Query{Kind: sinks.KindReplayed}) {
		last := it.Trail[len(it.Trail)-1]
		if last.Replay != j.ID || last.Destination != hook.URL || last.Route != "" {
			t.Errorf("%s: last entry %+v, want replayed to the webhook", it.Event.ID(), last)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"r-0000 " + j.ID, "r-0010 " + j.ID, "r-0020 " + j.ID}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("the webhook got %v, want %v", ids, want)
	}
}

// A replay to a route's destination records the route and the
// destination's own name, as the router's entries do.
func TestReplayToRouteDestination(t *testing.T) {
	re := newReplayEnv(t)
	re.storeEvents(t, 4)
	got := subscribe(t, re.mem, "archive")
	r := re.do(t, req{method: http.MethodPost, path: "/v1/replays", token: re.replayAll,
		body: `{"filter": {"id": "r-0001"}, "destination": {"route": "billing", "destination": "archive"}}`})
	if r.status != http.StatusAccepted {
		t.Fatalf("POST /v1/replays: %d %s", r.status, r.body)
	}
	j := re.waitJob(t, decodeJob(t, r).ID)
	got.waitFor(t, 1)
	items := re.versions(t, sinks.Query{Kind: sinks.KindReplayed})
	if j.State != replay.Done || j.Request.Destination != "route:billing/archive" || len(items) != 1 {
		t.Fatalf("job %+v, %d versions replayed", j, len(items))
	}
	last := items[0].Trail[len(items[0].Trail)-1]
	if last.Kind != sinks.KindReplayed || last.Route != "billing" || last.Destination != "archive" || last.Replay != j.ID {
		t.Errorf("entry %+v, want replayed to billing's archive", last)
	}
}

func TestReplayBadRequests(t *testing.T) {
	re := newReplayEnv(t)
	dest := `"destination": {"transport": "mem", "topic": "x"}`
	for _, c := range []struct{ body, field string }{
		{`{"filter": {}, ` + dest + `, "bogus": 1}`, "bogus"},
		{`{"filter": {"tpye": "a"}, ` + dest + `}`, "filter.tpye"},
		{`{"filter": {}, "destination": {"webhook": {"url": "http://h", "insecure": true}}}`, "destination.webhook.insecure"},
		{`{"filter": {}, "destination": {"transport": "kafka", "topic": "x"}}`, "destination.transport"},
		{`{"filter": {}, "destination": {"topic": "x"}}`, "destination.transport"},
		{`{"filter": {}, "destination": {"transport": "mem"}}`, "destination.topic"},
		{`{"filter": {}, "destination": {"route": "nope", "destination": "ledger"}}`, "destination.route"},
		{`{"filter": {}, "destination": {"route": "billing", "destination": "nope"}}`, "destination.destination"},
		{`{"filter": {}, "destination": {"route": "billing"}}`, "destination.destination"},
		{`{"filter": {}, "destination": {"destination": "ledger"}}`, "destination.route"},
		{`{"filter": {}}`, "destination"},
		{`{"filter": {}, "destination": {}}`, "destination"},
		{`{"filter": {}, "destination": {"transport": "mem", "topic": "x", "route": "billing", "destination": "ledger"}}`, "destination"},
		{`{"filter": {}, "destination": {"webhook": {}}}`, "destination.webhook.url"},
		{`{"filter": {}, "destination": {"webhook": {"url": "ftp://h"}}}`, "destination.webhook"},
		{`{"filter": {}, "destination": {"webhook": {"url": "http://h", "timeout": "soon"}}}`, "destination.webhook.timeout"},
		{`{"filter": {"from": "` + at(5) + `", "to": "` + at(5) + `"}, ` + dest + `}`, "filter.to"},
		{`{"filter": {"from": "` + at(5) + `", "to": "` + at(4) + `"}, ` + dest + `}`, "filter.to"},
		{`{"filter": {"from": "yesterday"}, ` + dest + `}`, "filter.from"},
		{`{"filter": {"to": 12}, ` + dest + `}`, "filter.to"},
		{`{"filter": {"type": "*"}, ` + dest + `}`, "filter.type"},
		{`{"filter": {"outcome": "lost"}, ` + dest + `}`, "filter.outcome"},
		{`{"filter": {"outcome": "accepted"}, ` + dest + `}`, "filter.outcome"},
		{`{"filter": {"received_from": "soon"}, ` + dest + `}`, "filter.received_from"},
		{`{"filter": {"received_from": "` + at(5) + `", "received_to": "` + at(5) + `"}, ` + dest + `}`, "filter.received_to"},
		{`{"filter": {"destination": 7}, ` + dest + `}`, "filter.destination"},
		{`{"filter": "all", ` + dest + `}`, "filter"},
		{`{"filter": {}, ` + dest + `, "rate": -1}`, "rate"},
		{`{"filter": {}, ` + dest + `, "rate": "fast"}`, "rate"},
		{`{"filter": {}, ` + dest + `, "name": "` + strings.Repeat("n", 201) + `"}`, "name"},
	} {
		r := re.do(t, req{method: http.MethodPost, path: "/v1/replays", token: re.replayAll, body: c.body})
		b := wantError(t, r, http.StatusBadRequest, httpapi.CodeBadRequest)
		if !strings.HasPrefix(b.Error.Message, fmt.Sprintf("field %q: ", c.field)) {
			t.Errorf("%s: message %q does not name the field %q", c.body, b.Error.Message, c.field)
		}
	}
	for _, c := range []struct{ path, body, ct string }{
		{"/v1/replays", `{"filter": `, ""},
		{"/v1/replays", `[]`, ""},
		{"/v1/replays", `{} {}`, ""},
		{"/v1/replays", ``, ""},
	} {
		r := re.do(t, req{method: http.MethodPost, path: c.path, token: re.replayAll, body: c.body})
		wantError(t, r, http.StatusBadRequest, cehttp.CodeMalformedJSON)
	}
	for _, q := range []string{"dry_run=maybe", "dryrun=true", "dry_run=true&dry_run=false"} {
		wantError(t, re.do(t, req{method: http.MethodPost, path: "/v1/replays?" + q, token: re.replayAll, body: `{}`}),
			http.StatusBadRequest, httpapi.CodeBadQuery)
	}
	wantError(t, re.do(t, req{method: http.MethodPost, path: "/v1/replays", token: re.replayAll, body: `{}`,
		header: map[string]string{"Content-Type": "text/plain"}}), http.StatusUnsupportedMediaType, cehttp.CodeUnsupportedMediaType)
	wantError(t, re.do(t, req{method: http.MethodPost, path: "/v1/replays", token: re.replayAll,
		body: `{"name": "` + strings.Repeat("x", 70<<10) + `"}`}), http.StatusRequestEntityTooLarge, httpapi.CodeTooLarge)
	if n := len(re.m.List()); n != 0 {
		t.Errorf("%d jobs started by bad requests", n)
	}
}

func TestReplayCancelRetryNotFound(t *testing.T) {
	re := newReplayEnv(t)
	re.storeEvents(t, 100)
	subscribe(t, re.mem, "slow")
	for _, r := range []req{
		{path: "/v1/replays/nope", token: re.read},
		{method: http.MethodDelete, path: "/v1/replays/nope", token: re.replayW},
		{method: http.MethodPost, path: "/v1/replays/nope/retry", token: re.replayW},
	} {
		wantError(t, re.do(t, r), http.StatusNotFound, httpapi.CodeNotFound)
	}
	// 5 events/s: the job runs for 20 s unless cancelled.
	r := re.do(t, req{method: http.MethodPost, path: "/v1/replays", token: re.replayAll,
		body: `{"filter": {}, "destination": {"transport": "mem", "topic": "slow"}, "rate": 5}`})
	if r.status != http.StatusAccepted {
		t.Fatalf("POST /v1/replays: %d %s", r.status, r.body)
	}
	id := decodeJob(t, r).ID
	r = re.do(t, req{method: http.MethodDelete, path: "/v1/replays/" + id, token: re.replayAll})
	if j := decodeJob(t, r); r.status != http.StatusOK || j.State != replay.Cancelled || j.Progress.Done >= 100 {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	b := wantError(t, re.do(t, req{method: http.MethodDelete, path: "/v1/replays/" + id, token: re.replayW}), http.StatusConflict, httpapi.CodeNotRunning)
	if !strings.Contains(b.Error.Message, "cancelled") {
		t.Errorf("cancel of a cancelled job: %s", b.Error.Message)
	}
	r = re.do(t, req{method: http.MethodPost, path: "/v1/replays/" + id + "/retry", token: re.replayAll})
	if j := decodeJob(t, r); r.status != http.StatusAccepted || j.State != replay.Running {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	wantError(t, re.do(t, req{method: http.MethodPost, path: "/v1/replays/" + id + "/retry", token: re.replayW}), http.StatusConflict, httpapi.CodeNotRunning)
	r = re.do(t, req{method: http.MethodDelete, path: "/v1/replays/" + id, token: re.replayAll})
	if j := decodeJob(t, r); r.status != http.StatusOK || j.State != replay.Cancelled {
		t.Fatalf("DELETE after retry: %d %s", r.status, r.body)
	}
}

func TestRedrive(t *testing.T) {
	re := newReplayEnv(t)
	re.storeEvents(t, 100)
	ledger := subscribe(t, re.mem, "ledger")
	archive := subscribe(t, re.mem, "archive")
	redrivable := func(dest string) int {
		return len(re.versions(t, sinks.Query{Route: "billing", Destination: dest, Kind: sinks.KindDeadLettered, Redrivable: true}))
	}
	if redrivable("ledger") != 10 || redrivable("archive") != 5 {
		t.Fatalf("redrivable before: %d at ledger, %d at archive; want 10 and 5", redrivable("ledger"), redrivable("archive"))
	}
	r := re.do(t, req{method: http.MethodPost, path: "/v1/redrives", token: re.replayAll, body: `{"route": "billing", "destination": "ledger"}`})
	var ans struct {
		Jobs []httpapi.ReplayJob `json:"jobs"`
	}
	if r.status != http.StatusAccepted || json.Unmarshal(r.body, &ans) != nil || len(ans.Jobs) != 1 {
		t.Fatalf("POST /v1/redrives: %d %s", r.status, r.body)
	}
	if loc := r.header.Get("Location"); loc != "/v1/replays/"+ans.Jobs[0].ID {
		t.Errorf("Location %q", loc)
	}
	j := re.waitJob(t, ans.Jobs[0].ID)
	if j.State != replay.Done || j.Progress.Done != 10 || !j.Request.Redrive || j.Request.Destination != "route:billing/ledger" ||
		j.Request.Filter != (httpapi.ReplayFilter{Route: "billing", Destination: "ledger", Outcome: sinks.KindDeadLettered}) ||
		j.Name != "redrive billing to ledger" {
		t.Fatalf("redrive job %+v", j)
	}
	for _, e := range ledger.waitFor(t, 10) {
		var n int
		if _, err := fmt.Sscanf(e.ID(), "r-%04d", &n); err != nil || n%10 != 0 {
			t.Errorf("the destination got %s, which was not dead-lettered", e.ID())
		}
	}
	// Each redelivery is a delivered entry on the original version, so the
	// version is no longer redrivable at ledger; archive's are.
	if n := redrivable("ledger"); n != 0 {
		t.Errorf("%d versions still redrivable at ledger", n)
	}
	for _, it := range re.versions(t, sinks.Query{Route: "billing", Destination: "ledger", Kind: sinks.KindDeadLettered}) {
		last := it.Trail[len(it.Trail)-1]
		if last.Kind != sinks.KindDelivered || last.Route != "billing" || last.Destination != "ledger" || last.Replay != j.ID || last.Attempts != 1 {
			t.Errorf("%s: last entry %+v, want delivered to billing/ledger by %s", it.Event.ID(), last, j.ID)
		}
	}

	// Without a destination: a job for each destination that still has
	// versions to redrive.
	r = re.do(t, req{method: http.MethodPost, path: "/v1/redrives", token: re.replayAll, body: `{"route": "billing", "from": "` + at(0) + `", "rate": 100}`})
	ans.Jobs = nil
	if r.status != http.StatusAccepted || json.Unmarshal(r.body, &ans) != nil || len(ans.Jobs) != 1 ||
		ans.Jobs[0].Request.Destination != "route:billing/archive" {
		t.Fatalf("redrive of every destination: %d %s", r.status, r.body)
	}
	if j := re.waitJob(t, ans.Jobs[0].ID); j.State != replay.Done || j.Progress.Done != 5 {
		t.Fatalf("redrive to archive: %+v", j)
	}
	archive.waitFor(t, 5)
	r = re.do(t, req{method: http.MethodPost, path: "/v1/redrives", token: re.replayAll, body: `{"route": "billing"}`})
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"jobs":[]}` {
		t.Fatalf("redrive with nothing left: %d %s", r.status, r.body)
	}
	for _, c := range []struct{ body, field string }{
		{`{}`, "route"},
		{`{"route": "nope"}`, "route"},
		{`{"route": "billing", "destination": "nope"}`, "destination"},
		{`{"route": "billing", "from": "x"}`, "from"},
		{`{"route": "billing", "to": "` + at(0) + `", "from": "` + at(9) + `"}`, "to"},
		{`{"route": "billing", "rate": -2}`, "rate"},
		{`{"route": "billing", "outcome": "delivered"}`, "outcome"},
	} {
		b := wantError(t, re.do(t, req{method: http.MethodPost, path: "/v1/redrives", token: re.replayAll, body: c.body}), http.StatusBadRequest, httpapi.CodeBadRequest)
		if !strings.HasPrefix(b.Error.Message, fmt.Sprintf("field %q: ", c.field)) {
			t.Errorf("%s: message %q does not name the field %q", c.body, b.Error.Message, c.field)
		}
	}
}

func TestReplayScopesAndMethods(t *testing.T) {
	re := newReplayEnv(t)
	body := `{"filter": {}, "destination": {"transport": "mem", "topic": "x"}}`
	writes := []req{
		{method: http.MethodPost, path: "/v1/replays", body: body},
		{method: http.MethodPost, path: "/v1/replays?dry_run=true", body: body},
		{method: http.MethodDelete, path: "/v1/replays/x"},
		{method: http.MethodPost, path: "/v1/replays/x/retry"},
		{method: http.MethodPost, path: "/v1/redrives", body: `{"route": "billing"}`},
	}
	reads := []req{{path: "/v1/replays"}, {path: "/v1/replays/x"}}
	bad := token(t, otherSecret, auth.ScopeReplayWrite+" "+auth.ScopeAuditRead, time.Hour)
	for _, r := range append(append([]req{}, writes...), reads...) {
		for _, tok := range []string{"", bad} {
			r.token = tok
			resp := re.do(t, r)
			if resp.status != http.StatusUnauthorized || resp.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with token %.10q: %d, want 401 with a challenge", r.method, r.path, tok, resp.status)
			}
		}
	}
	for _, r := range writes {
		for _, tok := range []string{re.read, re.write} {
			r.token = tok
			b := wantError(t, re.do(t, r), http.StatusForbidden, "insufficient_scope")
			if !strings.Contains(b.Error.Message, auth.ScopeReplayWrite) {
				t.Errorf("%s %s: %s does not name the scope", r.method, r.path, b.Error.Message)
			}
		}
	}
	for _, r := range reads {
		for _, tok := range []string{re.replayW, re.write} {
			r.token = tok
			b := wantError(t, re.do(t, r), http.StatusForbidden, "insufficient_scope")
			if !strings.Contains(b.Error.Message, auth.ScopeAuditRead) {
				t.Errorf("GET %s: %s does not name the scope", r.path, b.Error.Message)
			}
		}
	}
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodPut, "/v1/replays", "GET, HEAD, POST"},
		{http.MethodPost, "/v1/replays/x", "GET, HEAD, DELETE"},
		{http.MethodGet, "/v1/replays/x/retry", "POST"},
		{http.MethodGet, "/v1/redrives", "POST"},
	} {
		r := re.do(t, req{method: c.method, path: c.path, token: re.replayAll})
		wantError(t, r, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed)
		if r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, r.header.Get("Allow"), c.allow)
		}
	}
	// Without a manager the endpoints do not exist.
	plain := newEnv(t)
	wantError(t, plain.do(t, req{path: "/v1/replays", token: plain.read}), http.StatusNotFound, httpapi.CodeNotFound)
}

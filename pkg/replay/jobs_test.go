package replay_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
)

// smallStore is a fresh store holding n generated events over 10 keys.
func smallStore(t *testing.T, n int) sinks.Store {
	t.Helper()
	s := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	if err := fill(s, n, 10); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReplayIsRecordedOnTheOriginal: each copy a replay publishes is a
// replayed entry on its original version. A route that reads the copies
// records them as versions of their own (they carry the job id), which a
// later replay skips, publishing the originals only.
func TestReplayIsRecordedOnTheOriginal(t *testing.T) {
	const n = 300
	store := smallStore(t, n)
	writer := sinks.NewWriter(store, sinks.WriterOptions{})
	t.Cleanup(func() { _ = writer.Close() })
	tr := mem.New()
	t.Cleanup(func() { _ = tr.Close() })
	out := subscribe(t, tr, "out")
	again := subscribe(t, tr, "again")
	r, err := router.New([]router.RouteConfig{{
		Name:         "again",
		Source:       router.SourceConfig{Transport: "mem", Topic: "in", Group: "again"},
		Destinations: []router.DestinationConfig{{Name: "mem:out", Transport: "mem", Topic: "out"}},
		Retry:        router.DefaultRetryPolicy(),
	}}, router.Options{Transports: map[string]bus.Transport{"mem": tr}, Audit: writer, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })

	m := newManager(t, store, replay.Options{Audit: writer})
	// The originals: routed by "orders", which the copies are not.
	j, err := m.Start(context.Background(), replay.Request{Filter: sinks.Query{Route: "orders"}, Destination: replay.TopicTarget("mem", tr, "in")})
	if err != nil {
		t.Fatal(err)
	}
	if j = wait(t, m, j.ID, time.Minute); j.State != replay.Done || j.Progress.Done != n || j.Progress.Total != n || j.Progress.Skipped != 0 {
		t.Fatalf("job ended %s with %+v (error %q)", j.State, j.Progress, j.Error)
	}
	distinct(t, out, n, 20*time.Second)
	for _, it := range versions(t, store, sinks.Query{Kind: sinks.KindReplayed}) {
		got := entriesOf(it.Trail, sinks.KindReplayed, j.ID)
		if len(got) != 1 || got[0].Destination != "mem:in" || got[0].Route != "" || it.Conflict {
			t.Fatalf("%s: replayed entries %+v (conflict %v), want one to mem:in", it.Event.ID(), got, it.Conflict)
		}
		if _, ok := it.Event.Extensions()[replay.ExtReplay]; ok {
			t.Fatalf("%s: the original version carries %s", it.Event.ID(), replay.ExtReplay)
		}
	}
	if got := len(versions(t, store, sinks.Query{Kind: sinks.KindReplayed})); got != n {
		t.Fatalf("%d versions have a replayed entry, want %d", got, n)
	}
	// The router records a batch before it lets the source go; poll until
	// every copy is there.
	deadline := time.Now().Add(20 * time.Second)
	for {
		copies := versions(t, store, sinks.Query{Route: "again"})
		if len(copies) == n {
			for _, c := range copies {
				if c.Event.Extensions()[replay.ExtReplay] != j.ID || !c.Conflict {
					t.Fatalf("copy %s recorded with extensions %v, conflict %v", c.Event.ID(), c.Event.Extensions(), c.Conflict)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d copies recorded, want %d", len(copies), n)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A second replay of every version publishes the originals only.
	j2, err := m.Start(context.Background(), replay.Request{Destination: replay.TopicTarget("mem", tr, "again")})
	if err != nil {
		t.Fatal(err)
	}
	if j2 = wait(t, m, j2.ID, time.Minute); j2.State != replay.Done || j2.Progress.Done != n || j2.Progress.Skipped != n || j2.Progress.Total != 2*n {
		t.Fatalf("second job ended %s with %+v (error %q); want %d done, %d skipped", j2.State, j2.Progress, j2.Error, n, n)
	}
	for id, c := range distinct(t, again, n, 20*time.Second) {
		if _, ok := again.byID(id)[replay.ExtReplay]; !ok || c != 1 {
			t.Fatalf("%s arrived %d times", id, c)
		}
	}
}

// refusingHook refuses (400) events whose id ends in "7" and accepts the
// rest; while down is set it answers 503 to everything.
type refusingHook struct {
	down     atomic.Bool
	accepted atomic.Int64
}

func (h *refusingHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case h.down.Load():
		http.Error(w, "down", http.StatusServiceUnavailable)
	case strings.HasSuffix(r.Header.Get("Ce-Id"), "7"):
		http.Error(w, "no sevens", http.StatusBadRequest)
	default:
		h.accepted.Add(1)
		w.WriteHeader(http.StatusOK)
	}
}

func fastRetry() router.RetryPolicy {
	return router.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Jitter: 0.2}
}

// TestRefusedEventsAreReportedAndDeadLettered: events the destination
// refuses for good go to the request's dead letter with the dead-letter
// extensions and into the job's errors; the rest are delivered.
func TestRefusedEventsAreReportedAndDeadLettered(t *testing.T) {
	const n = 100
	store := smallStore(t, n)
	h := &refusingHook{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	wh, err := cehttp.NewWebhook(cehttp.WebhookConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tr := mem.New()
	t.Cleanup(func() { _ = tr.Close() })
	dead := subscribe(t, tr, "dead")
	m := newManager(t, store, replay.Options{Retry: fastRetry(), MaxErrors: 4})
	j, err := m.Start(context.Background(), replay.Request{Destination: replay.WebhookTarget(wh),
		DeadLetter: replay.TopicTarget("mem", tr, "dead")})
	if err != nil {
		t.Fatal(err)
	}
	j = wait(t, m, j.ID, time.Minute)
	if j.State != replay.Done || j.Progress.Done != 90 || j.Progress.Failed != 10 || h.accepted.Load() != 90 {
		t.Fatalf("job ended %s with %+v, webhook accepted %d; want done, 90 done, 10 failed", j.State, j.Progress, h.accepted.Load())
	}
	if j.ErrorCount != 10 || len(j.Errors) != 4 || !j.Errors[0].DeadLettered || j.Errors[0].ID != "ev-000007" || !strings.Contains(j.Errors[0].Message, "400") {
		t.Fatalf("errors %d, first %d: %+v", j.ErrorCount, len(j.Errors), j.Errors)
	}
	parked := distinct(t, dead, 10, 10*time.Second)
	for _, e := range dead.all() {
		ext := e.Extensions()
		if !strings.HasSuffix(e.ID(), "7") || ext[router.ExtDeadLetterDestination] != srv.URL || ext[replay.ExtReplay] != j.ID {
			t.Fatalf("dead-lettered %s with extensions %v", e.ID(), ext)
		}
	}
	if len(parked) != 10 {
		t.Fatalf("%d events dead-lettered, want 10", len(parked))
	}
}

// TestUnreachableDestinationFailsThenRetryFinishes: with no dead letter, a
// destination that stays down fails the job at its checkpoint; after the
// fix, Retry on a new Manager (targets resolved by name) finishes it, and
// refused events are only reported.
func TestUnreachableDestinationFailsThenRetryFinishes(t *testing.T) {
	const n = 50
	store := smallStore(t, n)
	h := &refusingHook{}
	h.down.Store(true)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	wh, err := cehttp.NewWebhook(cehttp.WebhookConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, err := replay.NewManager(replay.Options{Dir: dir, Store: store, Retry: fastRetry(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	j, err := m.Start(context.Background(), replay.Request{Destination: replay.Named("hook", replay.WebhookTarget(wh)), Name: "down"})
	if err != nil {
		t.Fatal(err)
	}
	j = wait(t, m, j.ID, time.Minute)
	if j.State != replay.Failed || j.Progress.Done != 0 || j.Checkpoint != "" || !strings.Contains(j.Error, "503") {
		t.Fatalf("job ended %s with %+v at %q (error %q); want failed before the first batch", j.State, j.Progress, j.Checkpoint, j.Error)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	h.down.Store(false)
	m2 := newManager(t, store, replay.Options{Dir: dir, Retry: fastRetry(), Resolve: func(name string) (replay.Target, error) {
		if name != "hook" {
			return nil, errors.New("unknown")
		}
		return replay.WebhookTarget(wh), nil
	}})
	if js := m2.List(); len(js) != 1 || js[0].State != replay.Failed || js[0].Request.Name != "down" {
		t.Fatalf("jobs read back: %+v", js)
	}
	if _, err := m2.Resume(); err != nil {
		t.Fatal(err) // a failed job is not resumed
	}
	if _, err := m2.Retry(j.ID); err != nil {
		t.Fatal(err)
	}
	j = wait(t, m2, j.ID, time.Minute)
	if j.State != replay.Done || j.Progress.Done != 45 || j.Progress.Failed != 5 || j.ErrorCount != 6 {
		t.Fatalf("retried job ended %s with %+v, %d errors (%q); want done, 45 done, 5 refused", j.State, j.Progress, j.ErrorCount, j.Error)
	}
	if _, err := m2.Retry(j.ID); !errors.Is(err, replay.ErrNotRunning) {
		t.Fatalf("Retry of a done job: %v", err)
	}
}

// TestCancelAndJobFile: Cancel stops a running job, which stays cancelled
// in its job file; List and Get show it; a job file holds the request.
func TestCancelAndJobFile(t *testing.T) {
	store := smallStore(t, 500)
	tr := mem.New()
	t.Cleanup(func() { _ = tr.Close() })
	subscribe(t, tr, "slow")
	dir := t.TempDir()
	m := newManager(t, store, replay.Options{Dir: dir})
	from := base.Add(time.Second)
	j, err := m.Start(context.Background(), replay.Request{Rate: 50, Name: "slow one",
		Filter:      sinks.Query{From: from, Type: "com.example.order.", TypePrefix: true},
		Destination: replay.TopicTarget("mem", tr, "slow")})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != replay.Running || j.ID == "" || j.Created.IsZero() {
		t.Fatalf("started job: %+v", j)
	}
	c, err := m.Cancel(j.ID)
	if err != nil || c.State != replay.Cancelled {
		t.Fatalf("Cancel = %s, %v", c.State, err)
	}
	if _, err := m.Cancel(j.ID); !errors.Is(err, replay.ErrNotRunning) {
		t.Fatalf("second Cancel: %v", err)
	}
	if _, err := m.Get("nope"); !errors.Is(err, replay.ErrNotFound) {
		t.Fatalf("Get of an unknown id: %v", err)
	}
	if l := m.List(); len(l) != 1 || l[0].ID != j.ID {
		t.Fatalf("List = %+v", l)
	}
	b, err := os.ReadFile(filepath.Join(dir, j.ID+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		State   replay.State `json:"state"`
		Request struct {
			Filter struct {
				From       time.Time `json:"from"`
				Type       string    `json:"type"`
				TypePrefix bool      `json:"typeprefix"`
			} `json:"filter"`
			Destination string  `json:"destination"`
			Rate        float64 `json:"rate"`
			Name        string  `json:"name"`
		} `json:"request"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	rq := file.Request
	if file.State != replay.Cancelled || !rq.Filter.From.Equal(from) || rq.Filter.Type != "com.example.order." || !rq.Filter.TypePrefix ||
		rq.Destination != "mem:slow" || rq.Rate != 50 || rq.Name != "slow one" {
		t.Fatalf("job file: %s", b)
	}
}

// TestRequestValidation: every bad field is named.
func TestRequestValidation(t *testing.T) {
	tr := mem.New()
	t.Cleanup(func() { _ = tr.Close() })
	dest := replay.TopicTarget("mem", tr, "x")
	t0 := base
	for _, c := range []struct {
		req   replay.Request
		field string
	}{
		{replay.Request{}, "destination"},
		{replay.Request{Destination: replay.TopicTarget("mem", nil, "x")}, "destination"},
		{replay.Request{Destination: replay.WebhookTarget(nil)}, "destination"},
		{replay.Request{Destination: dest, Filter: sinks.Query{From: t0, To: t0}}, "filter.to"},
		{replay.Request{Destination: dest, Filter: sinks.Query{From: t0, To: t0.Add(-time.Second)}}, "filter.to"},
		{replay.Request{Destination: dest, Filter: sinks.Query{Limit: 5}}, "filter.limit"},
		{replay.Request{Destination: dest, Filter: sinks.Query{Cursor: "x"}}, "filter.cursor"},
		{replay.Request{Destination: dest, Filter: sinks.Query{Desc: true}}, "filter.order"},
		{replay.Request{Destination: dest, Filter: sinks.Query{TypePrefix: true}}, "filter.type"},
		{replay.Request{Destination: dest, Filter: sinks.Query{Kind: "lost"}}, "filter.outcome"},
		{replay.Request{Destination: dest, Filter: sinks.Query{Kind: sinks.KindDelivered, Redrivable: true}}, "filter.outcome"},
		{replay.Request{Destination: dest, Filter: sinks.Query{ReceivedFrom: t0, ReceivedTo: t0}}, "filter.received_to"},
		{replay.Request{Destination: dest, Route: "orders"}, "routedestination"},
		{replay.Request{Destination: dest, Redrive: true}, "route"},
		{replay.Request{Destination: dest, Redrive: true, Route: "orders", RouteDestination: "hook"}, "filter"},
		{replay.Request{Destination: dest, Rate: -1}, "rate"},
		{replay.Request{Destination: dest, DeadLetter: replay.WebhookTarget(nil)}, "deadletter"},
		{replay.Request{Destination: dest, Name: strings.Repeat("n", replay.MaxNameLen+1)}, "name"},
	} {
		err := c.req.Validate()
		var fe *replay.FieldError
		if !errors.Is(err, replay.ErrBadRequest) || !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(%+v) = %v; want a FieldError naming %q", c.req, err, c.field)
		}
	}
	if err := (replay.Request{Destination: dest, Filter: sinks.Query{From: t0, To: t0.Add(time.Hour)}, Rate: 10}).Validate(); err != nil {
		t.Errorf("a good request: %v", err)
	}
	if _, err := (replay.RedriveRequest{}).Request(dest); err == nil || !strings.Contains(err.Error(), `"route"`) {
		t.Errorf("a redrive without a route: %v", err)
	}
	if _, err := (replay.RedriveRequest{Route: "orders"}).Request(dest); err == nil || !strings.Contains(err.Error(), `"destination"`) {
		t.Errorf("a redrive without a destination: %v", err)
	}
	r, err := replay.RedriveRequest{Route: "orders", Destination: "hook"}.Request(dest)
	if err != nil || !r.Redrive || r.Route != "orders" || r.RouteDestination != "hook" || !reflect.DeepEqual(r.Filter, sinks.Query{Route: "orders",
		Destination: "hook", Kind: sinks.KindDeadLettered, Redrivable: true}) || r.Name != "redrive orders to hook" {
		t.Errorf("redrive request: %+v, %v", r, err)
	}
	noAudit, err := replay.NewManager(replay.Options{Dir: t.TempDir(), Store: smallStore(t, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = noAudit.Close() })
	if _, err := noAudit.Start(context.Background(), r); err == nil {
		t.Error("a redrive started on a Manager without Audit")
	}
	m := newManager(t, smallStore(t, 30), replay.Options{})
	if n, err := m.Count(context.Background(), sinks.Query{Type: "com.example.order.", TypePrefix: true}); err != nil || n != 20 {
		t.Errorf("dry-run Count = %d, %v; want 20", n, err)
	}
	var fe *replay.FieldError
	if _, err := m.Count(context.Background(), sinks.Query{From: t0, To: t0}); !errors.As(err, &fe) || fe.Field != "filter.to" {
		t.Errorf("dry-run Count of an empty range: %v", err)
	}
	if _, err := replay.NewManager(replay.Options{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "Store") {
		t.Errorf("NewManager without a store: %v", err)
	}
}

// TestReplayKeepsForgedReplayExtension: a producer may set ExtReplay on
// its own events. Such an event is an ordinary version, also when it
// conflicts with an earlier one, and a replay publishes it; only a copy
// that differs from another version by the replay extensions alone is
// left out.
func TestReplayKeepsForgedReplayExtension(t *testing.T) {
	store := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = store.Close() })
	first := gen(0, 1)
	forged := gen(1, 1)
	forged.Event.SetExtension(replay.ExtReplay, "forged")
	// The same identity as first, other content and a forged extension.
	conflicting := gen(0, 1)
	conflicting.Event.SetExtension(replay.ExtReplay, "forged")
	_ = conflicting.Event.SetData("application/json", []byte(`{"forged":true}`))
	for _, r := range []sinks.Record{first, forged, conflicting} {
		if _, err := store.Append(context.Background(), []sinks.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	tr := mem.New()
	t.Cleanup(func() { _ = tr.Close() })
	out := subscribe(t, tr, "out")
	m := newManager(t, store, replay.Options{})
	j, err := m.Start(context.Background(), replay.Request{Destination: replay.TopicTarget("mem", tr, "out")})
	if err != nil {
		t.Fatal(err)
	}
	if j = wait(t, m, j.ID, time.Minute); j.State != replay.Done || j.Progress.Done != 3 || j.Progress.Skipped != 0 {
		t.Fatalf("job ended %s with %+v (error %q); want 3 done, none skipped", j.State, j.Progress, j.Error)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(out.all()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := len(out.all()); got != 3 {
		t.Fatalf("%d events published, want 3", got)
	}
}

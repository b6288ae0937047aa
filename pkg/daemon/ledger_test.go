package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/daemon"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/golang-jwt/jwt/v5"
)

// ledgerLog is the log name the daemons of these tests append to.
const ledgerLog = "ledger-test"

// live is a daemon running in this process: real HTTP on a loopback port,
// the mem transport and the embedded SQLite store, JWT auth with an HS256
// secret.
type live struct {
	d     *daemon.Daemon
	store sinks.Store
	base  string // http://host:port
	token string // events:write, for subject svc-orders
	logs  *lockedBuffer
}

// startLive starts a daemon on routes (a routes file's text; "" for
// none); env ("NAME=value") adds to or overrides its variables.
func startLive(t *testing.T, routes string, env ...string) *live {
	t.Helper()
	return startLiveConfig(t, routes, nil, env...)
}

// startLiveConfig is startLive with edit applied to the configuration
// the environment gives, for what no variable sets.
func startLiveConfig(t *testing.T, routes string, edit func(*daemon.Config), env ...string) *live {
	t.Helper()
	dir := t.TempDir()
	path := ""
	if routes != "" {
		path = filepath.Join(dir, "routes.yaml")
		if err := os.WriteFile(path, []byte(routes), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secret := liveSecret
	cfg := liveConfig(t, dir, path, env...)
	if edit != nil {
		edit(&cfg)
	}
	l := &live{logs: &lockedBuffer{}}
	var err error
	l.d, err = daemon.Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(l.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- l.d.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.d.Close(ctx); err != nil {
			t.Errorf("close the daemon: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon logs:\n%s", l.logs.String())
		}
	})
	l.store = daemon.StoreOf(l.d)
	l.base = "http://" + l.d.Addr().String()
	l.token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "svc-orders", "scope": "events:write", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// liveConfig is the configuration of a live daemon with its data under
// dir and the routes file path ("" for none); env ("NAME=value") adds to
// or overrides its variables.
func liveConfig(t *testing.T, dir, path string, env ...string) daemon.Config {
	t.Helper()
	vars := map[string]string{
		"AUDITBUS_LISTEN": "127.0.0.1:0", "AUDITBUS_DATA_DIR": filepath.Join(dir, "data"), "AUDITBUS_ROUTES": path,
		"AUDITBUS_TRANSPORTS": "mem", "AUDITBUS_STORE": "sqlite", "AUDITBUS_LEDGER_LOG": ledgerLog,
		"AUDITBUS_AUTH_HS256_SECRET": liveSecret, "AUDITBUS_LOG_LEVEL": "info", "AUDITBUS_SQLITE_RETENTION": "",
		"AUDITBUS_POLICY_FILE": "", "AUDITBUS_AUTH_MACAROON_KEY_FILE": "",
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
	cfg, err := daemon.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// post sends one event in binary mode to POST /v1/events?query, with
// headers (ce-* attributes and Content-Type), and wants 202.
func (l *live) post(t *testing.T, query string, headers map[string]string, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, l.base+"/v1/events?"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+l.token)
	req.Header.Set("ce-specversion", "1.0")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events?%s: %d %s, want 202", query, resp.StatusCode, b)
	}
}

// versions waits until the versions of (source, id) hold n entries in
// all, and returns them; more than n is a failure.
func (l *live) versions(t *testing.T, source, id string, n int) []sinks.Item {
	t.Helper()
	var items []sinks.Item
	count := func() int {
		var err error
		if items, err = l.store.Get(context.Background(), source, id); err != nil {
			return 0
		}
		got := 0
		for _, it := range items {
			got += len(it.Trail)
		}
		return got
	}
	waitUntil(t, fmt.Sprintf("%s %s has %d entries", source, id, n), 30*time.Second, func() bool { return count() >= n })
	if got := count(); got != n {
		t.Fatalf("%s %s: %d entries, want %d: %s", source, id, got, n, describe(items))
	}
	return items
}

// query returns every version q selects, its trail included.
func (l *live) query(t *testing.T, q sinks.Query) []sinks.Item {
	t.Helper()
	var all []sinks.Item
	if err := sinks.PageAll(context.Background(), l.store, q, func(items []sinks.Item) error {
		all = append(all, items...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return all
}

// metric scrapes GET /metrics for the value of an unlabelled series.
func (l *live) metric(t *testing.T, name string) float64 {
	t.Helper()
	return scrape(t, l.base+"/metrics", name)
}

// hop is an entry in one line, as the tests below want them: its kind,
// where the message came from, who sent it, the route, the destination
// and the attempts where there are some, and whether it has a request id
// and an error (whose text the tests check apart).
func hop(e sinks.Entry) string {
	s := e.Kind + " " + e.Transport + "/" + e.Topic
	for _, f := range []struct{ name, v string }{{"by", e.Principal}, {"route", e.Route}, {"dest", e.Destination}} {
		if f.v != "" {
			s += " " + f.name + "=" + f.v
		}
	}
	if e.Attempts != 0 {
		s += " attempts=" + strconv.Itoa(e.Attempts)
	}
	if e.Request != "" {
		s += " req"
	}
	if e.Error != "" {
		s += " err"
	}
	return s
}

// checkTrail wants trail to be exactly the hops want, in any order, each
// entry in the test's log with a time of this run and a sequence number
// of its own.
func checkTrail(t *testing.T, trail []sinks.Entry, since time.Time, want ...string) {
	t.Helper()
	got := make([]string, len(trail))
	seqs := map[uint64]bool{}
	for i, e := range trail {
		got[i] = hop(e)
		if e.Log != ledgerLog || e.Seq == 0 || seqs[e.Seq] {
			t.Errorf("%s at %s/%d, want log %s and a sequence number of its own", got[i], e.Log, e.Seq, ledgerLog)
		}
		seqs[e.Seq] = true
		if e.Time.Before(since.Add(-time.Second)) || e.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("%s at %s: not the time it was recorded (the test began at %s)", got[i], e.Time, since)
		}
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("trail:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// errorOf is the error of the one dead-lettered entry of trail.
func errorOf(t *testing.T, trail []sinks.Entry) string {
	t.Helper()
	var errs []string
	for _, e := range trail {
		if e.Kind == sinks.KindDeadLettered {
			errs = append(errs, e.Error)
		}
	}
	if len(errs) != 1 {
		t.Fatalf("%d dead-lettered entries, want 1", len(errs))
	}
	return errs[0]
}

// describe prints items' trails for failure messages.
func describe(items []sinks.Item) string {
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintf(&b, "\n  version %s conflict=%v", it.Digest, it.Conflict)
		for _, e := range it.Trail {
			fmt.Fprintf(&b, "\n    %s/%d %s %s %s/%s p%d o%d req=%q by=%q route=%q dest=%q attempts=%d err=%q",
				e.Log, e.Seq, e.Time.Format(time.RFC3339Nano), e.Kind, e.Transport, e.Topic, e.Partition, e.Offset,
				e.Request, e.Principal, e.Route, e.Destination, e.Attempts, e.Error)
		}
	}
	return b.String()
}

// closedURL is a webhook URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string { return "http://" + freeAddr(t) + "/hook" }

// One event posted to a topic two routes read: the ledger has the HTTP
// reception, then each route's reception and what the route did with it.
func TestLedgerRecordsEveryRoute(t *testing.T) {
	since := time.Now()
	l := startLive(t, `
routes:
  - name: billing
    source: {transport: mem, topic: orders}
    filter: {prefix: {type: com.example.order.}}
    destinations: [{transport: mem, topic: billing}]
    dead_letter: {transport: mem, topic: dlq}
  - name: fraud
    source: {transport: mem, topic: orders}
    filter: {exact: {type: com.example.payment.flagged}}
    destinations: [{transport: mem, topic: fraud}]
    dead_letter: {transport: mem, topic: dlq}
`)
	l.post(t, "topic=orders", map[string]string{"ce-id": "o-1", "ce-source": "/shop", "ce-type": "com.example.order.created",
		"Content-Type": "application/json"}, `{"order":1}`)
	items := l.versions(t, "/shop", "o-1", 5)
	if len(items) != 1 || items[0].Conflict {
		t.Fatalf("versions: %s", describe(items))
	}
	checkTrail(t, items[0].Trail, since,
		"received http/orders by=svc-orders req",
		"received mem/orders by=mem:orders route=billing",
		"delivered mem/orders route=billing dest=mem:billing attempts=1",
		"received mem/orders by=mem:orders route=fraud",
		"filtered mem/orders route=fraud")

	found := l.query(t, sinks.Query{Route: "billing"})
	if len(found) != 1 || found[0].Event.ID() != "o-1" || found[0].Digest != items[0].Digest {
		t.Errorf("a query of route billing found %s", describe(found))
	}
	if found := l.query(t, sinks.Query{Route: "fraud", Kind: sinks.KindDelivered}); len(found) != 0 {
		t.Errorf("a query of fraud's deliveries found %s", describe(found))
	}
}

// The same source and id posted again with other content and a backdated
// time: both versions are kept, the later flagged, each received now; the
// conflict is counted and logged.
func TestLedgerKeepsConflictingVersions(t *testing.T) {
	since := time.Now()
	l := startLive(t, "")
	h := map[string]string{"ce-id": "p-1", "ce-source": "/bank", "ce-type": "com.example.transfer", "Content-Type": "application/json"}
	l.post(t, "", h, `{"amount":100,"to":"alice"}`)
	h["ce-time"] = "2020-01-01T00:00:00Z"
	l.post(t, "", h, `{"amount":999999,"to":"mallory"}`)
	items := l.versions(t, "/bank", "p-1", 2)
	if len(items) != 2 || items[0].Conflict || !items[1].Conflict || items[0].Digest == items[1].Digest ||
		string(items[0].Event.Data()) != `{"amount":100,"to":"alice"}` || string(items[1].Event.Data()) != `{"amount":999999,"to":"mallory"}` {
		t.Fatalf("versions, want alice's then mallory's flagged: %s", describe(items))
	}
	if !items[1].Time.Equal(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) || items[0].Time.Before(since.Add(-time.Second)) {
		t.Errorf("versions indexed at %s and %s, want the first when received and the second at its own time", items[0].Time, items[1].Time)
	}
	for _, it := range items {
		checkTrail(t, it.Trail, since, "received http/events by=svc-orders req")
	}
	if items[0].Trail[0].Request == items[1].Trail[0].Request {
		t.Error("two requests recorded with one request id")
	}
	if n := l.metric(t, "auditbus_audit_conflicts_total"); n != 1 {
		t.Errorf("auditbus_audit_conflicts_total %v, want 1", n)
	}
	if n := l.metric(t, "auditbus_audit_versions_total"); n != 2 {
		t.Errorf("auditbus_audit_versions_total %v, want 2", n)
	}
	logs := l.logs.String()
	if !strings.Contains(logs, `"level":"WARN","msg":"conflicting event version recorded`) || !strings.Contains(logs, `"id":"p-1"`) ||
		!strings.Contains(logs, `"digest":"`+items[1].Digest.String()+`"`) || !strings.Contains(logs, `"earlier_digest":"`+items[0].Digest.String()+`"`) {
		t.Errorf("no warning with the conflict's source, id and digests in the logs:\n%s", logs)
	}
}

// An event dead-lettered, then posted again: the first dead-letter entry
// stays as it was, the second reception and its dead letter are added,
// and a redrive still finds the event.
func TestLedgerKeepsDeadLettersWhenPostedAgain(t *testing.T) {
	since := time.Now()
	l := startLive(t, `
routes:
  - name: payments
    source: {transport: mem, topic: payments}
    destinations:
      - {name: hook, webhook: {url: "`+closedURL(t)+`", timeout: 2s}}
    retry: {max_attempts: 2, initial_backoff: 1ms, max_backoff: 2ms}
    circuit_breaker: {failures: 100}
    dead_letter: {transport: mem, topic: dlq}
`)
	h := map[string]string{"ce-id": "pay-1", "ce-source": "/pay", "ce-type": "com.example.payment", "Content-Type": "application/json"}
	l.post(t, "topic=payments", h, `{"amount":5}`)
	hops := []string{
		"received http/payments by=svc-orders req",
		"received mem/payments by=mem:payments route=payments",
		"deadlettered mem/payments route=payments dest=hook attempts=2 err",
	}
	first := l.versions(t, "/pay", "pay-1", 3)
	checkTrail(t, first[0].Trail, since, hops...)
	if msg := errorOf(t, first[0].Trail); !strings.Contains(msg, "connect") {
		t.Errorf("dead-lettered with %q, want the webhook's connection error", msg)
	}
	var firstDead sinks.Entry
	for _, e := range first[0].Trail {
		if e.Kind == sinks.KindDeadLettered {
			firstDead = e
		}
	}

	l.post(t, "topic=payments", h, `{"amount":5}`)
	again := l.versions(t, "/pay", "pay-1", 6)
	if len(again) != 1 {
		t.Fatalf("the same event posted twice is %d versions: %s", len(again), describe(again))
	}
	checkTrail(t, again[0].Trail, since, append(hops, hops...)...)
	kept := false
	for _, e := range again[0].Trail {
		kept = kept || e == firstDead
	}
	if !kept {
		t.Errorf("the first dead-letter entry %+v is gone or changed", firstDead)
	}
	found := l.query(t, sinks.Query{Route: "payments", Destination: "hook", Kind: sinks.KindDeadLettered, Redrivable: true})
	if len(found) != 1 || found[0].Event.ID() != "pay-1" {
		t.Errorf("a redrive query found %s", describe(found))
	}
}

// An event carrying the replay extension from a producer is an ordinary
// version: found by Get and by a query of its id, with the extension kept.
func TestLedgerTreatsReplayExtensionAsOrdinary(t *testing.T) {
	since := time.Now()
	l := startLive(t, `
routes:
  - name: audit
    source: {transport: mem, topic: events}
    destinations: [{transport: mem, topic: copy}]
    dead_letter: {transport: mem, topic: dlq}
`)
	l.post(t, "", map[string]string{"ce-id": "f-1", "ce-source": "/forge", "ce-type": "com.example.x", "ce-auditbusreplay": "forged",
		"Content-Type": "application/json"}, `{}`)
	items := l.versions(t, "/forge", "f-1", 3)
	if len(items) != 1 || items[0].Conflict || items[0].Event.Extensions()["auditbusreplay"] != "forged" {
		t.Fatalf("versions: %s (extensions %v)", describe(items), items[0].Event.Extensions())
	}
	checkTrail(t, items[0].Trail, since,
		"received http/events by=svc-orders req",
		"received mem/events by=mem:events route=audit",
		"delivered mem/events route=audit dest=mem:copy attempts=1")
	for _, e := range items[0].Trail {
		if e.Replay != "" {
			t.Errorf("entry %+v names a replay", e)
		}
	}
	found := l.query(t, sinks.Query{ID: "f-1"})
	if len(found) != 1 || found[0].Digest != items[0].Digest {
		t.Errorf("a query of its id found %s", describe(found))
	}
	if found := l.query(t, sinks.Query{Kind: sinks.KindReplayed}); len(found) != 0 {
		t.Errorf("a query of replayed entries found %s", describe(found))
	}
}

// One route, three destinations: one entry per destination, with its
// attempts, and the last error of the one that failed.
func TestLedgerRecordsEachDestination(t *testing.T) {
	since := time.Now()
	l := startLive(t, `
routes:
  - name: fanout
    source: {transport: mem, topic: fan}
    destinations:
      - {transport: mem, topic: a}
      - {transport: mem, topic: b}
      - {name: down, webhook: {url: "`+closedURL(t)+`", timeout: 2s}}
    retry: {max_attempts: 3, initial_backoff: 1ms, max_backoff: 2ms}
    circuit_breaker: {failures: 100}
    dead_letter: {transport: mem, topic: dlq}
`)
	l.post(t, "topic=fan", map[string]string{"ce-id": "fan-1", "ce-source": "/fan", "ce-type": "com.example.fan", "Content-Type": "text/plain"}, "x")
	items := l.versions(t, "/fan", "fan-1", 5)
	checkTrail(t, items[0].Trail, since,
		"received http/fan by=svc-orders req",
		"received mem/fan by=mem:fan route=fanout",
		"delivered mem/fan route=fanout dest=mem:a attempts=1",
		"delivered mem/fan route=fanout dest=mem:b attempts=1",
		"deadlettered mem/fan route=fanout dest=down attempts=3 err")
	if msg := errorOf(t, items[0].Trail); !strings.Contains(msg, "connect") {
		t.Errorf("dead-lettered with %q, want the webhook's connection error", msg)
	}
}

// With AUDITBUS_SQLITE_RETENTION the daemon removes the days older than
// the retention when it starts: a version first recorded ten days ago and
// its entries are gone, one recorded today stays.
func TestSQLiteRetentionRemovesOldDays(t *testing.T) {
	data := t.TempDir()
	store, err := sqlite.Open(context.Background(), data, sqlite.Options{Log: "earlier"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rec := func(id string, at time.Time) sinks.Record {
		e := event.New()
		e.SetID(id)
		e.SetSource("/retention")
		e.SetType("com.example.kept")
		return sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Time: at, Transport: "http", Topic: "events", Request: id}}}
	}
	if _, err := store.Append(context.Background(), []sinks.Record{rec("old", now.Add(-10*24*time.Hour)), rec("new", now)}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	l := startLive(t, "", "AUDITBUS_DATA_DIR="+data, "AUDITBUS_SQLITE_RETENTION=2d")
	// The removal is logged once the store has committed it.
	waitUntil(t, "the retention run is logged", 30*time.Second, func() bool {
		return strings.Contains(l.logs.String(), `"msg":"audit store retention removed whole days","days":1`)
	})
	if _, err := l.store.Get(context.Background(), "/retention", "old"); !errors.Is(err, sinks.ErrNotFound) {
		t.Errorf("the version first recorded ten days ago: %v, want it removed", err)
	}
	if found := l.query(t, sinks.Query{ReceivedTo: now.Add(-24 * time.Hour)}); len(found) != 0 {
		t.Errorf("entries older than the retention are left: %s", describe(found))
	}
	if items, err := l.store.Get(context.Background(), "/retention", "new"); err != nil || len(items) != 1 || len(items[0].Trail) != 1 {
		t.Errorf("today's version: %v, %s", err, describe(items))
	}
}

package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/refusal"
	"github.com/auditbus/auditbus/sinks"
	"github.com/golang-jwt/jwt/v5"
)

// TestPermissionsRefuseRouteAndType: a principal limited to one route
// and one type prefix is refused another route (before the route is even
// looked up, so route names do not leak) and another type, each refusal
// recorded with the route or topic and counted by reason.
func TestPermissionsRefuseRouteAndType(t *testing.T) {
	e := newEnv(t, func(o *httpapi.Options) { o.Refusals = refusal.NewMetrics(o.Registerer, httpapi.TransportHTTP) })
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "svc-cart", "scope": "events:write", "exp": time.Now().Add(time.Hour).Unix(),
		"auditbus_routes": []string{"shop-in"}, "auditbus_topics": []string{"events"}, "auditbus_type_prefixes": []string{"com.example.order."},
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(id, typ string) map[string]string {
		return map[string]string{"ce-specversion": "1.0", "ce-id": id, "ce-source": "/shop", "ce-type": typ, "content-type": "application/json"}
	}
	r := e.do(t, req{method: http.MethodPost, path: "/v1/events?route=billing", token: tok, header: ev("r-1", "com.example.order.created"), body: "{}"})
	b := wantError(t, r, http.StatusForbidden, httpapi.CodePermissionDenied)
	if !strings.Contains(b.Error.Message, `route "billing" is not allowed`) || !strings.Contains(b.Error.Message, `claim "auditbus_routes"`) {
		t.Errorf("another route: %s", b.Error.Message)
	}
	r = e.do(t, req{method: http.MethodPost, path: "/v1/events?topic=events", token: tok, header: ev("t-1", "com.example.payment.captured"), body: "{}"})
	b = wantError(t, r, http.StatusForbidden, httpapi.CodePermissionDenied)
	if b.Error.Attribute != "type" || b.Error.Index == nil || *b.Error.Index != 0 {
		t.Errorf("another type: attribute %q, index %v; want type, 0", b.Error.Attribute, b.Error.Index)
	}
	e.post(t, req{path: "/v1/events?topic=events", token: tok, header: ev("ok-1", "com.example.order.created"), body: "{}"}, 1)

	for _, c := range []struct{ id, route, topic, reason string }{
		{"r-1", "billing", "", refusal.RouteNotAllowed},
		{"t-1", "", "events", refusal.TypeNotAllowed},
	} {
		items, err := e.store.Get(t.Context(), "/shop", c.id)
		if err != nil || len(items) != 1 || len(items[0].Trail) != 1 {
			t.Fatalf("%s: %v, %+v", c.id, err, items)
		}
		en := items[0].Trail[0]
		if en.Kind != sinks.KindRefused || en.Route != c.route || en.Topic != c.topic || en.Principal != "svc-cart" || !strings.Contains(en.Error, c.reason) {
			t.Errorf("%s: entry %+v; want refused by svc-cart on route %q topic %q for %s", c.id, en, c.route, c.topic, c.reason)
		}
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "auditbus_events_refused_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "reason" {
					counted[l.GetValue()] = s.GetCounter().GetValue()
				}
			}
		}
	}
	if counted[refusal.RouteNotAllowed] != 1 || counted[refusal.TypeNotAllowed] != 1 || counted[refusal.SourceNotAllowed] != 0 {
		t.Errorf("auditbus_events_refused_total by reason: %v; want one route and one type refusal", counted)
	}
}

// TestRedriveNarrowed: a redrive selects only what the reader may read,
// and says so; with nothing it may read, no job starts.
func TestRedriveNarrowed(t *testing.T) {
	re := newReplayEnv(t)
	re.storeEvents(t, 100)
	ledger := subscribe(t, re.mem, "ledger")
	reader := func(types ...string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "shop-ops", "scope": "replay:write audit:read", "exp": time.Now().Add(time.Hour).Unix(),
			"auditbus_type_prefixes": types,
		}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// Every version ledger dead-lettered is an order: a reader of users
	// has nothing to redrive, and is told why.
	r := re.do(t, req{method: http.MethodPost, path: "/v1/redrives", token: reader("com.example.user."), body: `{"route": "billing"}`})
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"jobs":[],"narrowed":{"type_prefixes":["com.example.user."]}}` {
		t.Fatalf("a redrive by a reader of users: %d %s; want no job, narrowed", r.status, r.body)
	}
	r = re.do(t, req{method: http.MethodPost, path: "/v1/redrives", token: reader("com.example.user."), body: `{"route": "billing", "destination": "ledger"}`})
	var ans struct {
		Jobs []httpapi.ReplayJob `json:"jobs"`
	}
	if r.status != http.StatusAccepted || json.Unmarshal(r.body, &ans) != nil || len(ans.Jobs) != 1 ||
		ans.Jobs[0].Request.Narrowed == nil || ans.Jobs[0].Request.Narrowed.TypePrefixes[0] != "com.example.user." {
		t.Fatalf("a redrive of ledger by a reader of users: %d %s", r.status, r.body)
	}
	if j := re.waitJob(t, ans.Jobs[0].ID); j.Progress.Done != 0 || j.Request.Narrowed == nil {
		t.Fatalf("the redrive by a reader of users delivered %d, or lost its narrowing: %+v", j.Progress.Done, j)
	}
	r = re.do(t, req{method: http.MethodPost, path: "/v1/redrives", token: reader("com.example.order."), body: `{"route": "billing", "destination": "ledger"}`})
	ans.Jobs = nil
	if r.status != http.StatusAccepted || json.Unmarshal(r.body, &ans) != nil || len(ans.Jobs) != 1 || !strings.Contains(string(r.body), `"narrowed"`) {
		t.Fatalf("a redrive by a reader of orders: %d %s", r.status, r.body)
	}
	orders := ans.Jobs[0].ID
	if j := re.waitJob(t, orders); j.Progress.Done != 10 {
		t.Fatalf("the narrowed redrive: %+v", j)
	}
	ledger.waitFor(t, 10)

	// A narrowed reader sees only the jobs that read no more than it may:
	// their errors and progress name events.
	list := func(token string) []string {
		var page struct {
			Replays []httpapi.ReplayJob `json:"replays"`
		}
		r := re.do(t, req{path: "/v1/replays", token: token})
		if r.status != http.StatusOK || json.Unmarshal(r.body, &page) != nil {
			t.Fatalf("GET /v1/replays: %d %s", r.status, r.body)
		}
		var ids []string
		for _, j := range page.Replays {
			ids = append(ids, j.ID)
		}
		return ids
	}
	if ids := list(reader("com.example.user.")); len(ids) != 1 || ids[0] == orders {
		t.Errorf("the jobs a reader of users sees: %v; want its own alone", ids)
	}
	if ids := list(reader("com.example.")); len(ids) != 2 {
		t.Errorf("the jobs a reader of every com.example. type sees: %v; want both", ids)
	}
	if ids := list(re.replayAll); len(ids) != 2 {
		t.Errorf("the jobs an unrestricted reader sees: %v; want both", ids)
	}
	for _, m := range []struct{ method, path string }{{http.MethodGet, ""}, {http.MethodDelete, ""}, {http.MethodPost, "/retry"}} {
		r := re.do(t, req{method: m.method, path: "/v1/replays/" + orders + m.path, token: reader("com.example.user.")})
		wantError(t, r, http.StatusNotFound, httpapi.CodeNotFound)
	}
}

// TestNarrowedHeader: the Auditbus-Narrowed header is the answer's
// narrowed member, in ASCII.
func TestNarrowedHeader(t *testing.T) {
	e := newEnv(t)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "reader", "scope": "audit:read", "exp": time.Now().Add(time.Hour).Unix(), "auditbus_source_prefixes": []string{"/shöp"},
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := e.do(t, req{path: "/v1/events", token: tok})
	if h := r.header.Get(httpapi.HeaderNarrowed); r.status != http.StatusOK || h != `{"source_prefixes":["/sh\u00f6p"]}` ||
		!strings.Contains(string(r.body), `"narrowed":{"source_prefixes":["/shöp"]}`) {
		t.Errorf("GET /v1/events: %d, header %q, body %s", r.status, h, r.body)
	}
	if r := e.do(t, req{path: "/v1/events", token: e.read}); r.header.Get(httpapi.HeaderNarrowed) != "" || strings.Contains(string(r.body), "narrowed") {
		t.Errorf("an unrestricted reader's answer is marked narrowed: %s", r.body)
	}
}

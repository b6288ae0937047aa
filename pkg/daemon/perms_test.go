package daemon_test

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/auth"
	"github.com/auditbus/auditbus/pkg/daemon"
	"github.com/auditbus/auditbus/sinks"
	"github.com/golang-jwt/jwt/v5"
	"gopkg.in/macaroon.v2"
)

const (
	orderType   = "com.example.order.created"
	paymentType = "com.example.payment.captured"
)

// TestPermsSourcePrefixRefusedAndRecorded: a Macaroon limited to
// source-prefix = /shop publishes /shop, and an event claiming /billing
// is a 403 naming the caveat, recorded as a refused entry with the
// Macaroon's identifier as principal, and counted. A batch with one such
// event publishes nothing.
func TestPermsSourcePrefixRefusedAndRecorded(t *testing.T) {
	r := startPerms(t, "")
	tok := r.mint(t, "team-shop", "scope = events:write audit:read", "source-prefix = /shop")

	if code, b := r.publish(t, "topic=events", tok, ceEvent("o-1", "/shop/orders", orderType)); code != http.StatusAccepted {
		t.Fatalf("publish as /shop/orders: %d %s, want 202", code, b)
	}
	before := r.refusedMetric(t, "source-not-allowed")
	code, b := r.publish(t, "topic=events", tok, ceEvent("b-1", "/billing", paymentType))
	if code != http.StatusForbidden || !strings.Contains(b, `"permission_denied"`) ||
		!strings.Contains(b, `source \"/billing\" is not allowed`) || !strings.Contains(b, `source-prefix = /shop`) {
		t.Fatalf("publish as /billing: %d %s, want 403 permission_denied naming the source and the caveat", code, b)
	}
	refused := r.refusedEntries(t, "/billing", "b-1")
	if len(refused) != 1 {
		t.Fatalf("/billing b-1 has %d refused entries, want 1", len(refused))
	}
	if e := refused[0]; e.Principal != "team-shop" || e.Transport != "http" || e.Topic != "events" ||
		!strings.Contains(e.Error, "source-not-allowed") || !strings.Contains(e.Error, "/shop") || e.Request == "" {
		t.Errorf("the refused entry: %+v; want principal team-shop, transport http, topic events and the rule", e)
	}
	if got := r.refusedMetric(t, "source-not-allowed") - before; got != 1 {
		t.Errorf("auditbus_events_refused_total{transport=http,reason=source-not-allowed} rose by %v, want 1", got)
	}
	if n := len(r.query(t, sinks.Query{Source: "/billing", Kind: sinks.KindReceived})); n != 0 {
		t.Errorf("%d /billing versions were received; a refused event is only refused", n)
	}

	// A batch is all or nothing: the allowed event is not published either.
	code, b = r.publish(t, "topic=events", tok, ceEvent("o-2", "/shop/orders", orderType), ceEvent("b-2", "/billing", paymentType))
	if code != http.StatusForbidden || !strings.Contains(b, "1 of the 2 events") || !strings.Contains(b, `"index":1`) {
		t.Fatalf("a batch with one /billing event: %d %s, want 403 naming event #1", code, b)
	}
	if n := len(r.query(t, sinks.Query{Source: "/shop/orders", ID: "o-2"})); n != 0 {
		t.Errorf("o-2 of a refused batch was stored (%d versions); nothing of it may be published", n)
	}
	if n := len(r.refusedEntries(t, "/billing", "b-2")); n != 1 {
		t.Errorf("b-2 has %d refused entries, want 1", n)
	}
}

// TestPermsAttenuation: a token attenuated offline can do no more than its
// parent, a caveat that contradicts the parent's allows nothing, and a
// caveat cut out of the serialized token breaks its signature (401).
func TestPermsAttenuation(t *testing.T) {
	r := startPerms(t, "")
	parent := r.mint(t, "team-shop", "scope = events:write", "source-prefix = /shop")
	child, err := auth.AttenuateMacaroon(parent, []string{"type-prefix = com.example.order."})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, token, id, source, typ, query string
		want                                int
		says                                string
	}{
		{"child, /shop order", child, "a-1", "/shop", orderType, "topic=events", http.StatusAccepted, ""},
		{"child, /shop payment", child, "a-2", "/shop", paymentType, "topic=events", http.StatusForbidden, "type-prefix = com.example.order."},
		{"child, /billing order", child, "a-3", "/billing", orderType, "topic=events", http.StatusForbidden, "source-prefix = /shop"},
		{"parent, /shop payment", parent, "a-4", "/shop", paymentType, "topic=events", http.StatusAccepted, ""},
		{"parent, /billing payment", parent, "a-5", "/billing", paymentType, "topic=events", http.StatusForbidden, "source-prefix = /shop"},
	} {
		code, b := r.publish(t, c.query, c.token, ceEvent(c.id, c.source, c.typ))
		if code != c.want || !strings.Contains(b, c.says) {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, code, b, c.want, c.says)
		}
	}

	// Widening by attenuation: /shop and /billing have nothing in common.
	wider, err := auth.AttenuateMacaroon(child, []string{"source-prefix = /billing"})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"/billing", "/shop"} {
		if code, b := r.publish(t, "topic=events", wider, ceEvent("w-"+src, src, orderType)); code != http.StatusForbidden {
			t.Errorf("a child attenuated with source-prefix = /billing, publishing %s: %d %s, want 403", src, code, b)
		}
	}
	// Scopes narrow the same way.
	readOnly, err := auth.AttenuateMacaroon(parent, []string{"scope = audit:read events:write", "scope = audit:read"})
	if err != nil {
		t.Fatal(err)
	}
	if code, b := r.publish(t, "topic=events", readOnly, ceEvent("s-1", "/shop", orderType)); code != http.StatusForbidden || !strings.Contains(b, "insufficient_scope") {
		t.Errorf("a child narrowed to audit:read, publishing: %d %s, want 403 insufficient_scope", code, b)
	}

	// Cut the type-prefix caveat out, keeping the child's signature.
	removed := dropCaveat(t, child, "type-prefix = com.example.order.")
	code, b := r.publish(t, "topic=events", removed, ceEvent("r-1", "/shop", paymentType))
	if code != http.StatusUnauthorized || !strings.Contains(b, "bad_signature") || !strings.Contains(b, "caveat was removed") {
		t.Errorf("the child without its caveat: %d %s, want 401 bad_signature", code, b)
	}
	if n := len(r.query(t, sinks.Query{Source: "/shop", ID: "r-1"})); n != 0 {
		t.Errorf("the event of the tampered token was stored")
	}
}

// TestPermsMacaroonRefusals: a caveat the daemon does not understand, an
// expired one, and a token minted under another key are 401s, the first
// two naming the caveat.
func TestPermsMacaroonRefusals(t *testing.T) {
	r := startPerms(t, "")
	m, err := macaroon.New(r.key, []byte("team-x"), "auditbus", macaroon.V2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"scope = events:write", "color = red"} {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	unknown := base64.RawURLEncoding.EncodeToString(raw)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	expired := r.mint(t, "team-x", "scope = events:write", "expires = "+past)
	other, err := auth.MintMacaroon([]byte(strings.Repeat("k", 32)), "team-x", []string{"scope = events:write"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, token, code, says string }{
		{"unknown caveat", unknown, "unknown_caveat", `color = red`},
		{"expired", expired, "token_expired", "expires = " + past},
		{"another root key", other, "bad_signature", "root key"},
	} {
		code, b := r.publish(t, "topic=events", c.token, ceEvent("x-1", "/shop", orderType))
		if code != http.StatusUnauthorized || !strings.Contains(b, c.code) || !strings.Contains(b, c.says) {
			t.Errorf("%s: %d %s, want 401 %s naming %q", c.name, code, b, c.code, c.says)
		}
	}
}

// TestPermsJWTClaims: a JWT's auditbus_* claims restrict it like caveats,
// and a claim of the wrong shape is a 401.
func TestPermsJWTClaims(t *testing.T) {
	r := startPerms(t, "")
	tok := jwtWith(t, "svc-cart", "events:write", jwt.MapClaims{
		auth.ClaimSourcePrefixes: []string{"/shop"}, auth.ClaimTopics: []string{"events"},
	})
	if code, b := r.publish(t, "topic=events", tok, ceEvent("j-1", "/shop/cart", orderType)); code != http.StatusAccepted {
		t.Fatalf("publish as /shop/cart: %d %s", code, b)
	}
	code, b := r.publish(t, "topic=events", tok, ceEvent("j-2", "/billing", orderType))
	if code != http.StatusForbidden || !strings.Contains(b, `claim \"auditbus_source_prefixes\"`) {
		t.Errorf("publish as /billing: %d %s, want 403 naming the claim", code, b)
	}
	if e := r.refusedEntries(t, "/billing", "j-2"); len(e) != 1 || e[0].Principal != "svc-cart" {
		t.Errorf("the refused entries of j-2: %+v, want one by svc-cart", e)
	}
	code, b = r.publish(t, "topic=audit", tok, ceEvent("j-3", "/shop", orderType))
	if code != http.StatusForbidden || !strings.Contains(b, `topic \"audit\" is not allowed`) {
		t.Errorf("publish to topic audit: %d %s, want 403 naming the topic rule", code, b)
	}
	if e := r.refusedEntries(t, "/shop", "j-3"); len(e) != 1 || !strings.Contains(e[0].Error, "topic-not-allowed") {
		t.Errorf("the refused entries of j-3: %+v, want one for the topic", e)
	}
	bad := jwtWith(t, "svc-cart", "events:write", jwt.MapClaims{auth.ClaimSourcePrefixes: "/shop"})
	if code, b := r.publish(t, "topic=events", bad, ceEvent("j-4", "/shop", orderType)); code != http.StatusUnauthorized || !strings.Contains(b, "auditbus_source_prefixes") {
		t.Errorf("a claim that is a string: %d %s, want 401 naming the claim", code, b)
	}
}

// TestPermsPolicyFile: a principal the policy names is restricted by it,
// its token's caveats only narrow that further, and others are not.
func TestPermsPolicyFile(t *testing.T) {
	r := startPerms(t, "principals:\n  svc-orders:\n    source_prefixes: [/shop]\n  team-shop:\n    type_prefixes: [com.example.order.]\n")
	if strings.Contains(r.logs.String(), "no principal is restricted") {
		t.Errorf("the start-up warns that no principal is restricted, with a policy")
	}
	// r.token is svc-orders's.
	code, b := r.publish(t, "topic=events", r.token, ceEvent("p-1", "/billing", paymentType))
	if code != http.StatusForbidden || !strings.Contains(b, "policy") || !strings.Contains(b, "line 3") {
		t.Errorf("svc-orders publishing /billing: %d %s, want 403 naming the policy's line 3", code, b)
	}
	if code, b := r.publish(t, "topic=events", r.token, ceEvent("p-2", "/shop", paymentType)); code != http.StatusAccepted {
		t.Errorf("svc-orders publishing /shop: %d %s", code, b)
	}
	// The Macaroon's caveats cannot widen what the policy allows.
	wide := r.mint(t, "team-shop", "scope = events:write", "source-prefix = /")
	if code, b := r.publish(t, "topic=events", wide, ceEvent("p-3", "/shop", paymentType)); code != http.StatusForbidden || !strings.Contains(b, "line 5") {
		t.Errorf("team-shop publishing a payment: %d %s, want 403 naming the policy's line 5", code, b)
	}
	if code, b := r.publish(t, "topic=events", r.tokenWith(t, "events:write"), ceEvent("p-4", "/billing", paymentType)); code != http.StatusAccepted {
		t.Errorf("tester (not in the policy) publishing /billing: %d %s", code, b)
	}
}

// TestPermsBadStartUp: a bad policy file stops start-up naming the file
// and the line; so do a short Macaroon root key and a policy without auth.
func TestPermsBadStartUp(t *testing.T) {
	dir := t.TempDir()
	shortKey := writeFile(t, dir, "short.key", "too short")
	for _, c := range []struct {
		name, policy string
		env          []string
		says         []string
	}{
		{"unknown field", "principals:\n  cart:\n    sources: [/shop]\n", nil, []string{"line 3", `principal "cart"`, "unknown field"}},
		{"principal twice", "principals:\n  cart:\n    topics: [a]\n  cart:\n    topics: [b]\n", nil, []string{"line 4", "given twice"}},
		{"overlapping prefixes", "principals:\n  cart:\n    source_prefixes:\n      - /shop\n      - /shop/cart\n", nil, []string{"line 5", `overlaps "/shop" (line 4)`}},
		{"repeated value", "principals:\n  cart:\n    topics: [a, a]\n", nil, []string{"line 3", "given twice"}},
		{"empty list", "principals:\n  cart:\n    type_prefixes: []\n", nil, []string{"line 3", "at least one value"}},
		{"value with a space", "principals:\n  cart:\n    routes: [\"shop in\"]\n", nil, []string{"line 3", "routes[0]", "space"}},
		{"not yaml", "principals: [\n", nil, []string{"policy.yaml", "line"}},
		{"no auth", "principals:\n  cart:\n    topics: [a]\n", []string{"AUDITBUS_AUTH_HS256_SECRET="}, []string{"AUDITBUS_POLICY_FILE", "authentication is off"}},
		{"short macaroon key", "", []string{"AUDITBUS_AUTH_MACAROON_KEY_FILE=" + shortKey}, []string{shortKey, "9 bytes", "at least 32"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sub := t.TempDir()
			env, path := c.env, ""
			if c.policy != "" {
				path = writeFile(t, sub, "policy.yaml", c.policy)
				env = append([]string{"AUDITBUS_POLICY_FILE=" + path}, env...)
			}
			cfg := liveConfig(t, sub, "", env...)
			d, err := daemon.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				_ = d.Close(context.Background())
				t.Fatal("the daemon started")
			}
			want := append([]string{}, c.says...)
			if c.policy != "" && c.name != "no auth" {
				want = append(want, path)
			}
			for _, s := range want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("start-up error %q does not say %q", err, s)
				}
			}
		})
	}
}

package daemon_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/auth"
	"github.com/auditbus/auditbus/sinks"
	"github.com/golang-jwt/jwt/v5"
)

// TestPermsReaderNarrowed: a reader limited to /shop sees only /shop
// events, in every read that returns or counts stored events, and is told
// each answer was narrowed; a /billing event is not found, without a word
// of its existence; reads that cannot be narrowed are refused.
func TestPermsReaderNarrowed(t *testing.T) {
	r := startPerms(t, "")
	if !strings.Contains(r.logs.String(), "no principal is restricted") {
		t.Errorf("the start-up does not warn that no principal is restricted:\n%s", r.logs.String())
	}
	writer := r.tokenWith(t, "events:write")
	for _, c := range []struct{ id, source, typ string }{
		{"o-1", "/shop/orders", orderType}, {"o-2", "/shop/orders", orderType}, {"o-3", "/shop/cart", paymentType},
		{"b-1", "/billing", paymentType}, {"b-2", "/billing", paymentType}, {"dup", "/billing", orderType}, {"dup", "/shop/orders", orderType},
	} {
		if code, b := r.publish(t, "topic=events", writer, ceEvent(c.id, c.source, c.typ)); code != http.StatusAccepted {
			t.Fatalf("seed %s: %d %s", c.id, code, b)
		}
	}
	reader := r.mint(t, "shop-reader", "scope = audit:read replay:write", "source-prefix = /shop")
	everyone := r.tokenWith(t, "audit:read")
	const window = "from=2025-01-01T00:00:00Z&to=2027-01-01T00:00:00Z"

	type page struct {
		Items []struct {
			Event struct {
				Source string `json:"source"`
			} `json:"event"`
		} `json:"items"`
		Narrowed *struct {
			SourcePrefixes []string `json:"source_prefixes"`
		} `json:"narrowed"`
	}
	get := func(path, token string, want int) (page, http.Header, string) {
		t.Helper()
		code, h, b := r.call(t, http.MethodGet, path, token, "")
		if code != want {
			t.Fatalf("GET %s: %d %s, want %d", path, code, b, want)
		}
		var p page
		_ = json.Unmarshal(b, &p)
		return p, h, string(b)
	}
	p, h, _ := get("/v1/events?"+window, reader, http.StatusOK)
	if len(p.Items) != 4 || p.Narrowed == nil || len(p.Narrowed.SourcePrefixes) != 1 || h.Get("Auditbus-Narrowed") == "" {
		t.Errorf("the narrowed reader's query: %d items, narrowed %+v, header %q; want the 4 /shop versions, marked narrowed", len(p.Items), p.Narrowed, h.Get("Auditbus-Narrowed"))
	}
	for _, it := range p.Items {
		if !strings.HasPrefix(it.Event.Source, "/shop") {
			t.Errorf("the narrowed reader sees an event of %s", it.Event.Source)
		}
	}
	if p, _, _ := get("/v1/events?source=/billing", reader, http.StatusOK); len(p.Items) != 0 || p.Narrowed == nil {
		t.Errorf("the narrowed reader asking for /billing: %d items, narrowed %v; want none, marked narrowed", len(p.Items), p.Narrowed)
	}
	if p, h, _ := get("/v1/events?"+window, everyone, http.StatusOK); len(p.Items) != 7 || p.Narrowed != nil || h.Get("Auditbus-Narrowed") != "" {
		t.Errorf("an unrestricted reader: %d items, narrowed %v; want all 7, not narrowed", len(p.Items), p.Narrowed)
	}

	// Event detail: /billing's event is not found, and dup has one source.
	for _, path := range []string{"/v1/events/b-1", "/v1/events/b-1?source=/billing"} {
		_, _, b := get(path, reader, http.StatusNotFound)
		if !strings.Contains(b, "this token may read") || strings.Contains(b, paymentType) {
			t.Errorf("GET %s for the narrowed reader: %s; want a not found that says it is narrowed, and nothing of the event", path, b)
		}
	}
	_, _, missing := get("/v1/events/never", reader, http.StatusNotFound)
	_, _, hidden := get("/v1/events/b-2", reader, http.StatusNotFound)
	if strings.ReplaceAll(missing, "never", "b-2") != hidden {
		t.Errorf("a hidden event's answer differs from a missing one's:\n%s\n%s", hidden, missing)
	}
	if p, _, b := get("/v1/events/dup", reader, http.StatusOK); len(p.Items) != 1 || p.Items[0].Event.Source != "/shop/orders" || p.Narrowed == nil {
		t.Errorf("GET /v1/events/dup for the narrowed reader: %s; want the /shop version alone, marked narrowed", b)
	}

	// Counts and totals.
	var counts struct {
		Counts []struct {
			N int64 `json:"n"`
		} `json:"counts"`
		Narrowed json.RawMessage `json:"narrowed"`
	}
	_, _, b := get("/v1/counts?bucket=24h&"+window, reader, http.StatusOK)
	_ = json.Unmarshal([]byte(b), &counts)
	n := int64(0)
	for _, c := range counts.Counts {
		n += c.N
	}
	if n != 4 || counts.Narrowed == nil {
		t.Errorf("GET /v1/counts for the narrowed reader: %s; want 4 versions, marked narrowed", b)
	}
	if _, _, b := get("/v1/totals?"+window, reader, http.StatusOK); !strings.Contains(b, `"versions":4`) || !strings.Contains(b, `"narrowed"`) {
		t.Errorf("GET /v1/totals for the narrowed reader: %s; want 4 versions, marked narrowed", b)
	}
	for _, path := range []string{"/v1/counts?by=outcome&bucket=24h&" + window, "/v1/ledger?log=" + ledgerLog} {
		if _, _, b := get(path, reader, http.StatusForbidden); !strings.Contains(b, "permission_denied") || !strings.Contains(b, "/shop") {
			t.Errorf("GET %s for the narrowed reader: %s; want 403 permission_denied saying what it reads", path, b)
		}
	}

	// A replay selects only what the reader sees.
	body := `{"filter":{"from":"2025-01-01T00:00:00Z","to":"2027-01-01T00:00:00Z"},"destination":{"transport":"mem","topic":"copy"}}`
	code, _, rb := r.call(t, http.MethodPost, "/v1/replays?dry_run=true", reader, body)
	if code != http.StatusOK || !strings.Contains(string(rb), `"events":4`) || !strings.Contains(string(rb), `"narrowed"`) {
		t.Errorf("a dry-run replay of the narrowed reader: %d %s; want 4 events, marked narrowed", code, rb)
	}
}

// permsRig is a daemon with JWT (HS256) and Macaroon auth, and a policy
// file when one is given.
type permsRig struct {
	*live
	key []byte // the Macaroon root key
}

// startPerms starts a daemon accepting Macaroons under a fresh root key,
// with policy (a policy file's text; "" for none).
func startPerms(t *testing.T, policy string) *permsRig {
	t.Helper()
	dir := t.TempDir()
	key := []byte("0123456789abcdef0123456789abcdef-macaroon-root-key")
	env := []string{"AUDITBUS_AUTH_MACAROON_KEY_FILE=" + writeFile(t, dir, "macaroon.key", string(key))}
	if policy != "" {
		env = append(env, "AUDITBUS_POLICY_FILE="+writeFile(t, dir, "policy.yaml", policy))
	}
	return &permsRig{live: startLive(t, "", env...), key: key}
}

// writeFile writes text to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mint makes a Macaroon with identifier id and caveats.
func (r *permsRig) mint(t *testing.T, id string, caveats ...string) string {
	t.Helper()
	tok, err := auth.MintMacaroon(r.key, id, caveats)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// jwtWith signs a JWT for subject with scopes and extra claims.
func jwtWith(t *testing.T, subject, scopes string, extra jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": subject, "scope": scopes, "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(liveSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ceEvent is one structured-mode CloudEvent.
func ceEvent(id, source, typ string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":%q,"type":%q,"time":"2026-01-01T00:00:00Z","data":{"id":%q}}`, id, source, typ, id)
}

// batch is a batch of events.
func batch(events ...string) string { return "[" + strings.Join(events, ",") + "]" }

// publish posts a batch to ?query and returns the status and the body.
func (r *permsRig) publish(t *testing.T, query, token string, events ...string) (int, string) {
	t.Helper()
	code, _, b := r.call(t, http.MethodPost, "/v1/events?"+query, token, batch(events...))
	return code, string(b)
}

// refusedEntries are the refused entries of (source, id).
func (r *permsRig) refusedEntries(t *testing.T, source, id string) []sinks.Entry {
	t.Helper()
	var out []sinks.Entry
	for _, it := range r.query(t, sinks.Query{Source: source, ID: id}) {
		for _, e := range it.Trail {
			if e.Kind == sinks.KindRefused {
				out = append(out, e)
			}
		}
	}
	return out
}

// refusedMetric scrapes auditbus_events_refused_total for transport http
// and reason.
func (r *permsRig) refusedMetric(t *testing.T, reason string) float64 {
	t.Helper()
	code, _, b := r.call(t, http.MethodGet, "/metrics", "", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	re := regexp.MustCompile(`(?m)^auditbus_events_refused_total\{reason="` + regexp.QuoteMeta(reason) + `",transport="http"\} (\S+)$`)
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("GET /metrics has no auditbus_events_refused_total for http and %s", reason)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// dropCaveat removes the first-party caveat cav from a Macaroon token's
// binary encoding and keeps its signature: what a holder would send to
// undo an attenuation.
func dropCaveat(t *testing.T, token, cav string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatal(err)
	}
	// v2 binary: a caveat is the field (type 2, length, text), then an end
	// of section (0).
	field := append([]byte{2, byte(len(cav))}, cav...)
	field = append(field, 0)
	i := bytes.Index(b, field)
	if i < 0 || len(cav) > 127 {
		t.Fatalf("the token has no caveat %q", cav)
	}
	out := append(append([]byte(nil), b[:i]...), b[i+len(field):]...)
	return base64.RawURLEncoding.EncodeToString(out)
}

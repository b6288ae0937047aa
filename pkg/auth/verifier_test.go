package auth

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/apierror"
	"github.com/auditbus/auditbus/pkg/envconf"
	"github.com/golang-jwt/jwt/v5"
)

// verifiers builds the verifiers the tests use, through the environment
// as the daemon does:
//
//	full:  the HS256 secret, the RSA key as PEM (no kid), the Ed25519 key
//	       in a JWKS file as "ed-1"; issuer and audience checked
//	rsa:   only the RSA public key, as PEM
//	jwks:  only a JWKS file: the RSA key as "rsa-1", the Ed25519 key as "ed-1"
func verifiers(t *testing.T) (full, rsaOnly, jwksOnly *Verifier) {
	t.Helper()
	k := keys(t)
	rsaFile := writeFile(t, "rsa.pem", k.rsaPEM)
	edSet := writeFile(t, "ed.jwks", map[string]any{"keys": []any{edJWK("ed-1", k.ed.Public().(ed25519.PublicKey))}})
	bothSet := writeFile(t, "both.jwks", map[string]any{"keys": []any{rsaJWK("rsa-1", &k.rsa.PublicKey), edJWK("ed-1", k.ed.Public().(ed25519.PublicKey))}})
	build := func(kv ...string) *Verifier {
		t.Helper()
		cfg, err := configFrom(envconf.WithLookup(EnvPrefix, env(kv...)))
		if err != nil {
			t.Fatal(err)
		}
		v, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Configured() {
			t.Fatal("a verifier with keys says it is not configured")
		}
		return v
	}
	full = build("AUDITBUS_AUTH_HS256_SECRET", string(k.secret), "AUDITBUS_AUTH_PUBLIC_KEYS", rsaFile,
		"AUDITBUS_AUTH_JWKS_FILE", edSet, "AUDITBUS_AUTH_ISSUER", "https://issuer.example", "AUDITBUS_AUTH_AUDIENCE", "other, auditbus")
	rsaOnly = build("AUDITBUS_AUTH_PUBLIC_KEYS", rsaFile)
	jwksOnly = build("AUDITBUS_AUTH_JWKS_FILE", bothSet)
	return full, rsaOnly, jwksOnly
}

func TestRequire(t *testing.T) {
	k := keys(t)
	full, rsaOnly, jwksOnly := verifiers(t)
	hs := func(c jwt.MapClaims) string {
		return sign(t, tok{method: jwt.SigningMethodHS256, key: k.secret, claims: c})
	}
	rs := func(c jwt.MapClaims) string {
		return sign(t, tok{method: jwt.SigningMethodRS256, key: k.rsa, claims: c})
	}
	ed := func(c jwt.MapClaims) string {
		return sign(t, tok{method: jwt.SigningMethodEdDSA, key: k.ed, kid: "ed-1", claims: c})
	}
	bearer := func(s string) []string { return []string{"Bearer " + s} }
	now := time.Now()
	none := sign(t, tok{method: jwt.SigningMethodNone, key: jwt.UnsafeAllowNoneSignatureType})
	// The classic confusion attack: HS256 with the RSA public key as the secret.
	confused := sign(t, tok{method: jwt.SigningMethodHS256, key: k.rsaPEM})
	critical := func() string {
		j := jwt.NewWithClaims(jwt.SigningMethodHS256, good())
		j.Header["crit"] = []string{"exp"}
		s, err := j.SignedString(k.secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()

	const invalid, scopeErr = `error="invalid_token"`, `error="insufficient_scope"`
	cases := []struct {
		name   string
		v      *Verifier
		scope  string
		header []string // Authorization values
		status int
		code   string
		chal   string // part of WWW-Authenticate
	}{
		{"HS256", full, ScopeEventsWrite, bearer(hs(nil)), 200, "", ""},
		{"RS256 PEM key without kid", full, ScopeEventsWrite, bearer(rs(nil)), 200, "", ""},
		{"EdDSA JWKS key by kid", full, ScopeAuditRead, bearer(ed(nil)), 200, "", ""},
		{"RS256 JWKS key by kid", jwksOnly, ScopeEventsWrite, bearer(sign(t, tok{method: jwt.SigningMethodRS256, key: k.rsa, kid: "rsa-1"})), 200, "", ""},
		{"unknown kid falls back to keys without one", full, ScopeEventsWrite, bearer(sign(t, tok{method: jwt.SigningMethodRS256, key: k.rsa, kid: "not-in-jwks"})), 200, "", ""},
		{"lower-case scheme", full, ScopeEventsWrite, []string{"bearer " + hs(nil)}, 200, "", ""},
		{"expired within leeway", full, ScopeEventsWrite, bearer(hs(with("exp", now.Add(-10*time.Second).Unix()))), 200, "", ""},
		{"audience in a list", full, ScopeEventsWrite, bearer(hs(with("aud", []string{"x", "auditbus"}))), 200, "", ""},
		{"scp array", full, ScopeReplayWrite, bearer(hs(with("scope", nil, "scp", []string{"replay:write"}))), 200, "", ""},
		{"scope and scp together", full, "events:write replay:write", bearer(hs(with("scp", []string{"replay:write"}))), 200, "", ""},
		{"valid token, no scope asked", full, "", bearer(hs(with("scope", nil))), 200, "", ""},

		{"missing token", full, ScopeEventsWrite, nil, 401, CodeUnauthorized, `Bearer realm="auditbus", scope="events:write"`},
		{"basic scheme", full, ScopeEventsWrite, []string{"Basic dXNlcjpwYXNz"}, 401, CodeUnauthorized, `Bearer realm="auditbus", scope="events:write"`},
		{"bearer without token", full, ScopeEventsWrite, []string{"Bearer "}, 401, CodeMalformedToken, invalid},
		{"two segments", full, ScopeEventsWrite, bearer("abc.def"), 401, CodeMalformedToken, invalid},
		{"not base64", full, ScopeEventsWrite, bearer("a!.b!.c!"), 401, CodeMalformedToken, invalid},
		{"two headers", full, ScopeEventsWrite, []string{"Bearer " + hs(nil), "Bearer " + hs(nil)}, 401, CodeMalformedToken, invalid},
		{"oversized", full, ScopeEventsWrite, bearer(strings.Repeat("a", MaxTokenBytes+1)), 401, CodeMalformedToken, invalid},
		{"bad RS256 signature", full, ScopeEventsWrite, bearer(sign(t, tok{method: jwt.SigningMethodRS256, key: k.rsa2})), 401, CodeBadSignature, invalid},
		{"bad HS256 signature", full, ScopeEventsWrite, bearer(sign(t, tok{method: jwt.SigningMethodHS256, key: []byte("another secret of thirty-two bytes!")})), 401, CodeBadSignature, invalid},
		{"bad EdDSA signature", full, ScopeEventsWrite, bearer(sign(t, tok{method: jwt.SigningMethodEdDSA, key: k.ed2, kid: "ed-1"})), 401, CodeBadSignature, invalid},
		{"tampered claims", full, ScopeEventsWrite, bearer(tamper(t, hs(nil))), 401, CodeBadSignature, invalid},
		{"expired", full, ScopeEventsWrite, bearer(hs(with("exp", now.Add(-time.Hour).Unix()))), 401, CodeTokenExpired, invalid},
		{"nbf in the future", full, ScopeEventsWrite, bearer(hs(with("nbf", now.Add(time.Hour).Unix()))), 401, CodeTokenNotYetValid, invalid},
		{"iat in the future", full, ScopeEventsWrite, bearer(hs(with("iat", now.Add(time.Hour).Unix()))), 401, CodeTokenNotYetValid, invalid},
		{"no exp", full, ScopeEventsWrite, bearer(hs(with("exp", nil))), 401, CodeInvalidClaims, invalid},
		{"wrong issuer", full, ScopeEventsWrite, bearer(hs(with("iss", "https://evil.example"))), 401, CodeWrongIssuer, invalid},
		{"no issuer", full, ScopeEventsWrite, bearer(hs(with("iss", nil))), 401, CodeWrongIssuer, invalid},
		{"wrong audience", full, ScopeEventsWrite, bearer(hs(with("aud", "billing"))), 401, CodeWrongAudience, invalid},
		{"no audience", full, ScopeEventsWrite, bearer(hs(with("aud", nil))), 401, CodeWrongAudience, invalid},
		{"alg none", full, ScopeEventsWrite, bearer(none), 401, CodeUnsupportedAlgorithm, invalid},
		{"HS256 with the RSA key as secret, no HS key", rsaOnly, ScopeEventsWrite, bearer(confused), 401, CodeUnsupportedAlgorithm, invalid},
		{"HS256 with the RSA key as secret, HS key set", full, ScopeEventsWrite, bearer(confused), 401, CodeBadSignature, invalid},
		{"HS384", full, ScopeEventsWrite, bearer(sign(t, tok{method: jwt.SigningMethodHS384, key: k.secret})), 401, CodeUnsupportedAlgorithm, invalid},
		{"unknown alg", full, ScopeEventsWrite, bearer(withHeader(t, hs(nil), `{"alg":"XS999","typ":"JWT"}`)), 401, CodeUnsupportedAlgorithm, invalid},
		{"crit header", full, ScopeEventsWrite, bearer(critical), 401, CodeUnsupportedAlgorithm, invalid},
		{"unknown kid", jwksOnly, ScopeEventsWrite, bearer(sign(t, tok{method: jwt.SigningMethodRS256, key: k.rsa, kid: "rsa-9"})), 401, CodeUnknownKey, invalid},
		{"no kid where keys need one", jwksOnly, ScopeEventsWrite, bearer(sign(t, tok{method: jwt.SigningMethodEdDSA, key: k.ed})), 401, CodeUnknownKey, invalid},
		{"kid of a key of another algorithm", jwksOnly, ScopeEventsWrite, bearer(sign(t, tok{method: jwt.SigningMethodRS256, key: k.rsa, kid: "ed-1"})), 401, CodeUnsupportedAlgorithm, invalid},
		{"expired with a bad scope claim", full, ScopeEventsWrite, bearer(hs(with("exp", now.Add(-time.Hour).Unix(), "scope", 42))), 401, CodeTokenExpired, invalid},
		{"scope claim of the wrong type", full, ScopeEventsWrite, bearer(hs(with("scope", 42))), 401, CodeInvalidClaims, invalid},
		{"missing scope", full, ScopeReplayWrite, bearer(hs(nil)), 403, CodeInsufficientScope, `Bearer realm="auditbus", error="insufficient_scope", error_description="the token (subject 'svc-checkout') lacks the scope 'replay:write'`},
		{"one of two scopes missing", full, "events:write replay:write", bearer(hs(nil)), 403, CodeInsufficientScope, `scope="events:write replay:write"`},
		{"no scopes at all", full, ScopeAuditRead, bearer(hs(with("scope", nil))), 403, CodeInsufficientScope, scopeErr},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.v.Require(c.scope)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p, ok := FromContext(r.Context())
				if !ok || p.Subject != "svc-checkout" {
					t.Errorf("principal %+v, %v in the handler", p, ok)
				}
				w.WriteHeader(http.StatusOK)
			}))
			req := httptest.NewRequest(http.MethodPost, "/v1/events", nil)
			for _, v := range c.header {
				req.Header.Add("Authorization", v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, c.status, rec.Body)
			}
			if c.status == 200 {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var body apierror.Body
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if body.Error.Code != c.code || len(body.Error.Message) < 20 {
				t.Errorf("body %+v, want code %q and a message", body.Error, c.code)
			}
			chal := rec.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(chal, `Bearer realm="auditbus"`) || !strings.Contains(chal, c.chal) {
				t.Errorf("WWW-Authenticate %q, want it to hold %q", chal, c.chal)
			}
			if c.code == CodeUnauthorized && strings.Contains(chal, "error=") {
				t.Errorf("a request without credentials got an error code in %q (RFC 6750 §3.1)", chal)
			}
			t.Logf("%d %s: %s", rec.Code, body.Error.Code, body.Error.Message)
		})
	}
}

// tamper changes the claims of a signed token and keeps its signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	claims, err := json.Marshal(with("scope", "events:write audit:read replay:write"))
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = b64(claims)
	return strings.Join(parts, ".")
}

// withHeader replaces the header of a signed token.
func withHeader(t *testing.T, token, header string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	parts[0] = b64([]byte(header))
	return strings.Join(parts, ".")
}

func TestVerifyPrincipal(t *testing.T) {
	k := keys(t)
	full, _, _ := verifiers(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	p, err := full.Verify(sign(t, tok{method: jwt.SigningMethodEdDSA, key: k.ed, kid: "ed-1",
		claims: with("exp", exp.Unix(), "scope", " events:write  audit:read ", "scp", []string{"replay:write"})}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "svc-checkout" || p.Issuer != "https://issuer.example" || p.KeyID != "ed-1" || !p.ExpiresAt.Equal(exp) ||
		strings.Join(p.Scopes, ",") != "events:write,audit:read,replay:write" {
		t.Errorf("principal %+v", p)
	}
	if !p.HasScope(ScopeReplayWrite) || p.HasScope("events") {
		t.Error("HasScope")
	}
	_, err = full.Verify(sign(t, tok{method: jwt.SigningMethodHS256, key: k.secret, claims: with("exp", time.Now().Add(-time.Hour).Unix())}))
	var e *Error
	if !errors.Is(err, ErrTokenExpired) || !errors.Is(err, jwt.ErrTokenExpired) || !errors.As(err, &e) || e.Status() != 401 || e.Code() != CodeTokenExpired {
		t.Errorf("expired: %v", err)
	}
}

func TestUnconfigured(t *testing.T) {
	empty, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*Verifier{"nil": nil, "no keys": empty} {
		t.Run(name, func(t *testing.T) {
			if v.Configured() {
				t.Fatal("Configured() = true")
			}
			called := false
			h := v.Require(ScopeEventsWrite)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				if _, ok := FromContext(r.Context()); ok {
					t.Error("a principal without authentication")
				}
			}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/events", nil))
			if !called {
				t.Error("the request did not pass")
			}
			if _, err := v.Verify("a.b.c"); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("Verify without keys: %v", err)
			}
		})
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	k := keys(t)
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"short secret", Config{Keys: []Key{{Material: []byte("short"), Origin: "test"}}}, "key from test: the HS256 secret is 5 bytes"},
		{"private key", Config{Keys: []Key{{Material: k.rsa, Origin: "test"}}}, "*rsa.PrivateKey is not accepted"},
		{"no material", Config{Keys: []Key{{ID: "a"}}}, `key "a": no key material`},
		{"duplicate kid", Config{Keys: []Key{{ID: "a", Material: k.secret}, {ID: "a", Material: k.ed.Public()}}}, `kid "a" is also`},
		{"leeway", Config{Leeway: time.Hour}, "leeway 1h0m0s: want 0 to 5m0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to say %q", err, c.want)
			}
		})
	}
}

package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify measures one token check per algorithm, with every key
// kind configured, as the daemon does it per request.
func BenchmarkVerify(b *testing.B) {
	k := keys(b)
	v, err := New(Config{Keys: []Key{
		{Material: k.secret}, {Material: &k.rsa.PublicKey}, {ID: "ed-1", Material: k.ed.Public()},
	}, Leeway: DefaultLeeway})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		tok  tok
	}{
		{"HS256", tok{method: jwt.SigningMethodHS256, key: k.secret}},
		{"RS256", tok{method: jwt.SigningMethodRS256, key: k.rsa}},
		{"EdDSA", tok{method: jwt.SigningMethodEdDSA, key: k.ed, kid: "ed-1"}},
	} {
		token := sign(b, c.tok)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	mv, err := New(Config{Keys: []Key{{Material: k.secret}}, MacaroonKey: macKey, Leeway: DefaultLeeway})
	if err != nil {
		b.Fatal(err)
	}
	// A JWT where Macaroons are accepted too: the token kind costs one
	// byte search.
	b.Run("HS256/with-macaroons", func(b *testing.B) {
		token := sign(b, tok{method: jwt.SigningMethodHS256, key: k.secret})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := mv.Verify(token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Macaroon", func(b *testing.B) {
		token, err := MintMacaroon(macKey, "team-shop", []string{"scope = events:write audit:read", "source-prefix = /shop", "type-prefix = com.example.order."})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := mv.Verify(token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Require/HS256", func(b *testing.B) {
		h := v.Require(ScopeEventsWrite)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		req := httptest.NewRequest(http.MethodPost, "/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+sign(b, tok{method: jwt.SigningMethodHS256, key: k.secret}))
		w := httptest.NewRecorder()
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	})
}

package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/perms"
	"gopkg.in/macaroon.v2"
)

var macKey = []byte("0123456789abcdef0123456789abcdef")

func macVerifier(t *testing.T, policy *perms.Policy) *Verifier {
	t.Helper()
	v, err := New(Config{MacaroonKey: macKey, Leeway: DefaultLeeway, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMacaroonGrants(t *testing.T) {
	v := macVerifier(t, nil)
	tok, err := MintMacaroon(macKey, "team-shop", []string{"scope = events:write audit:read", "source-prefix = /shop /cart", "expires = 2099-01-01T00:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	child, err := AttenuateMacaroon(tok, []string{"scope = audit:read replay:write", "source-prefix = /shop/orders", "type-prefix = com.example.order."})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(child)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "team-shop" || p.Kind != KindMacaroon || !slices.Equal(p.Scopes, []string{"audit:read"}) {
		t.Errorf("principal %+v: want team-shop with audit:read alone", p)
	}
	if w := p.Permissions.Within(); !slices.Equal(w.SourcePrefixes, []string{"/shop/orders"}) || !slices.Equal(w.TypePrefixes, []string{"com.example.order."}) {
		t.Errorf("the child reads %v", w)
	}
	if !p.ExpiresAt.Equal(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("expires %v", p.ExpiresAt)
	}
	// A JWT still goes the JWT way, and is refused as such without keys.
	if _, err := v.Verify("a.b.c"); !errors.Is(err, ErrMalformedToken) || !strings.Contains(err.Error(), "Macaroons only") {
		t.Errorf("a JWT on a Macaroon-only server: %v", err)
	}
}

func TestMacaroonRefusals(t *testing.T) {
	v := macVerifier(t, nil)
	raw := func(caveats ...string) string {
		m, err := macaroon.New(macKey, []byte("x"), MacaroonLocation, macaroon.V2)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := addCaveatsRaw(m, caveats)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	third, _ := macaroon.New(macKey, []byte("x"), MacaroonLocation, macaroon.V2)
	if err := third.AddThirdPartyCaveat([]byte("0123456789abcdef0123456789abcdef"), []byte("who"), "https://elsewhere"); err != nil {
		t.Fatal(err)
	}
	thirdTok, _ := addCaveatsRaw(third, nil)
	for _, c := range []struct {
		name, token string
		reason      error
		says        string
	}{
		{"unknown kind", raw("scope = events:write", "color = red"), ErrUnknownCaveat, `"color = red"`},
		{"malformed expires", raw("expires = tomorrow"), ErrUnknownCaveat, `expires = tomorrow`},
		{"no operator", raw("scope events:write"), ErrUnknownCaveat, "KIND = VALUE"},
		{"expired", raw("expires = 2001-01-01T00:00:00Z"), ErrTokenExpired, `"expires = 2001-01-01T00:00:00Z"`},
		{"third-party caveat", thirdTok, ErrUnknownCaveat, "third-party"},
		{"not base64", "!!!", ErrMalformedToken, "neither a JWT"},
		{"not a macaroon", "AAAA", ErrMalformedToken, "Macaroon"},
	} {
		_, err := v.Verify(c.token)
		if !errors.Is(err, c.reason) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %v naming %q", c.name, err, c.reason, c.says)
		}
		if e, ok := errors.AsType[*Error](err); !ok || e.Status() != 401 {
			t.Errorf("%s: not a 401: %v", c.name, err)
		}
	}
	if _, err := New(Config{MacaroonKey: []byte("short")}); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("a short root key: %v", err)
	}
}

// addCaveatsRaw adds caveats without checking them, as a forger would.
func addCaveatsRaw(m *macaroon.Macaroon, caveats []string) (string, error) {
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			return "", err
		}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return "", err
	}
	return encodeMacaroon(b), nil
}

func TestMacaroonPolicyNarrowsCaveats(t *testing.T) {
	pol, err := perms.ParsePolicy("p.yaml", []byte("principals:\n  team-shop:\n    source_prefixes: [/shop]\n"))
	if err != nil {
		t.Fatal(err)
	}
	v := macVerifier(t, pol)
	tok, _ := MintMacaroon(macKey, "team-shop", []string{"scope = events:write", "source-prefix = /"})
	p, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Permissions.CheckEvent("/billing", "t"); err == nil || !strings.Contains(err.Error(), "p.yaml line 3") {
		t.Errorf("the policy does not narrow the token's wider caveat: %v", err)
	}
}

func TestParseCaveat(t *testing.T) {
	for _, c := range []struct{ in, canon, err string }{
		{"scope=events:write", "scope = events:write", ""},
		{"  source-prefix =  /shop   /cart ", "source-prefix = /shop /cart", ""},
		{"expires = 2027-01-01T01:00:00+01:00", "expires = 2027-01-01T00:00:00Z", ""},
		{"topic = a a", "", "given twice"},
		{"type-prefix = com. com.x", "", "overlap"},
		{"route =", "", "no value"},
		{"= x", "", "KIND = VALUE"},
		{"Scope = x", "", "unknown kind"},
		{"topic = a\x00", "", "control character"},
		{strings.Repeat("x", MaxCaveatBytes+1), "", "bytes"},
	} {
		got, err := ParseCaveat(c.in)
		switch {
		case c.err == "" && (err != nil || got.String() != c.canon):
			t.Errorf("%q: %q, %v; want %q", c.in, got, err, c.canon)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: %v, want an error saying %q", c.in, err, c.err)
		}
	}
}

// FuzzParseCaveat: any text is a caveat or an error naming it, never a
// panic, and a parsed caveat reads back the same from its canonical form.
func FuzzParseCaveat(f *testing.F) {
	for _, s := range []string{"scope = events:write audit:read", "source-prefix = /shop", "type-prefix=com.example.", "expires = 2027-01-01T00:00:00Z",
		"topic = a b", "route = r", "color = red", "=", "", "expires = 2027-13-01T00:00:00Z", "scope = \u00e9 \t x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCaveat(s)
		if err != nil {
			if !strings.Contains(err.Error(), "caveat") {
				t.Fatalf("%q: the error %q does not name the caveat", s, err)
			}
			return
		}
		again, err := ParseCaveat(c.String())
		if err != nil || again.String() != c.String() {
			t.Fatalf("%q: canonical %q reads back as %q, %v", s, c, again, err)
		}
		var g grant
		g.add(c, s)
	})
}

package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testKeys are generated once: RSA generation is slow under -race.
type testKeys struct {
	secret []byte
	rsa    *rsa.PrivateKey
	rsa2   *rsa.PrivateKey // a key nobody trusts
	ed     ed25519.PrivateKey
	ed2    ed25519.PrivateKey
	rsaPEM []byte // PKIX PUBLIC KEY of rsa
	edPEM  []byte // PKIX PUBLIC KEY of ed
}

var (
	keysOnce sync.Once
	keysVal  testKeys
)

func keys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		k := testKeys{secret: []byte("0123456789abcdef0123456789abcdef")}
		var err error
		if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		_, k.ed, _ = ed25519.GenerateKey(rand.Reader)
		_, k.ed2, _ = ed25519.GenerateKey(rand.Reader)
		k.rsaPEM = pkixPEM(&k.rsa.PublicKey)
		k.edPEM = pkixPEM(k.ed.Public())
		keysVal = k
	})
	return keysVal
}

func pkixPEM(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// tok holds what a test token says.
type tok struct {
	method jwt.SigningMethod
	key    any
	kid    string
	claims jwt.MapClaims
}

// good is a claim set that passes every check of the verifiers the tests build.
func good() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": "svc-checkout", "iss": "https://issuer.example", "aud": "auditbus",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "events:write audit:read",
	}
}

// with returns good claims changed by kv pairs; a nil value deletes.
func with(kv ...any) jwt.MapClaims {
	c := good()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func sign(t testing.TB, x tok) string {
	t.Helper()
	if x.claims == nil {
		x.claims = good()
	}
	j := jwt.NewWithClaims(x.method, x.claims)
	if x.kid != "" {
		j.Header["kid"] = x.kid
	}
	s, err := j.SignedString(x.key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
}

func edJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pub)}
}

// writeFile writes data (a string, []byte or a value to marshal as JSON)
// to a new file in the test's temporary directory.
func writeFile(t testing.TB, name string, data any) string {
	t.Helper()
	var b []byte
	switch d := data.(type) {
	case string:
		b = []byte(d)
	case []byte:
		b = d
	default:
		var err error
		if b, err = json.Marshal(d); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

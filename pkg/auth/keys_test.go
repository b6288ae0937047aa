package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestDecodeSecret(t *testing.T) {
	raw := strings.Repeat("s", 32)
	cases := []struct {
		in, want, err string
	}{
		{raw, raw, ""},
		{"base64:" + base64.StdEncoding.EncodeToString([]byte(raw)), raw, ""},
		{"base64:" + base64.RawURLEncoding.EncodeToString([]byte(raw+"\xff\xfe")), raw + "\xff\xfe", ""},
		{"short", "", "the secret is 5 bytes; use at least 32"},
		{"base64:" + base64.StdEncoding.EncodeToString([]byte("16 bytes only...")), "", "the secret is 16 bytes"},
		{"base64:not base64!", "", `not valid base64`},
	}
	for _, c := range cases {
		got, err := DecodeSecret(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("DecodeSecret(%q) error %v, want %q", c.in, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), c.in) {
				t.Errorf("the error repeats the secret: %v", err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("DecodeSecret(%q) = %q, %v", c.in, got, err)
		}
	}
}

func TestParsePEM(t *testing.T) {
	k := keys(t)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	cert := selfSigned(t, k.ed)
	der, _ := x509.MarshalPKCS8PrivateKey(k.ed)
	private := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaPEM := "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\nq9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n-----END PUBLIC KEY-----\n"

	good := []struct {
		name string
		data []byte
		want []string // algorithms, in order
	}{
		{"PKIX RSA", k.rsaPEM, []string{RS256}},
		{"PKIX Ed25519", k.edPEM, []string{EdDSA}},
		{"PKCS1 RSA", pkcs1, []string{RS256}},
		{"certificate", cert, []string{EdDSA}},
		{"several blocks", append(append([]byte{}, k.rsaPEM...), k.edPEM...), []string{RS256, EdDSA}},
	}
	for _, c := range good {
		keys, err := ParsePEM(c.data, "f.pem")
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var got []string
		for _, k := range keys {
			alg, err := k.Algorithm()
			if err != nil || k.ID != "" {
				t.Errorf("%s: key %+v: %v", c.name, k, err)
			}
			got = append(got, alg)
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: algorithms %v, want %v", c.name, got, c.want)
		}
	}

	bad := []struct {
		name string
		data string
		want string
	}{
		{"empty", "", `f.pem: no PEM block found`},
		{"private key", string(private), "f.pem: holds a PRIVATE KEY; give the server only the public key"},
		{"ECDSA", ecdsaPEM, "public key type *ecdsa.PublicKey is not accepted"},
		{"unknown block", "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", `PEM block type "FOO" is not accepted`},
		{"corrupt", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "f.pem: PUBLIC KEY block"},
		{"second block bad", string(k.rsaPEM) + string(private), "f.pem (PEM block #2): holds a PRIVATE KEY"},
		{"weak RSA", string(pkixPEM(&small.PublicKey)), "the RSA key has 1024 bits; use at least 2048"},
	}
	for _, c := range bad {
		_, err := ParsePEM([]byte(c.data), "f.pem")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := ReadPEMFile("/nonexistent/k.pem"); err == nil || !strings.Contains(err.Error(), "/nonexistent/k.pem") {
		t.Errorf("missing file: %v", err)
	}
}

func selfSigned(t *testing.T, key ed25519.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestParseJWKS(t *testing.T) {
	k := keys(t)
	edPub := k.ed.Public().(ed25519.PublicKey)
	set := map[string]any{"keys": []any{
		rsaJWK("rsa-1", &k.rsa.PublicKey),
		edJWK("ed-1", edPub),
		map[string]any{"kty": "oct", "kid": "hs-1", "alg": "HS256", "k": b64(k.secret)},
		map[string]any{"kty": "RSA", "kid": "enc-1", "use": "enc", "n": "AQAB", "e": "AQAB"},
		map[string]any{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": "AA", "y": "AA"},
		map[string]any{"kty": "RSA", "kid": "ps-1", "alg": "PS256", "n": "AQAB", "e": "AQAB"},
		map[string]any{"kty": "OKP", "kid": "x-1", "crv": "X25519", "x": "AA"},
	}}
	keys, skipped, err := ReadJWKSFile(writeFile(t, "set.jwks", set))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rsa-1": RS256, "ed-1": EdDSA, "hs-1": HS256}
	if len(keys) != len(want) {
		t.Fatalf("keys %+v", keys)
	}
	for _, key := range keys {
		if alg, err := key.Algorithm(); err != nil || alg != want[key.ID] {
			t.Errorf("key %q: %s, %v", key.ID, alg, err)
		}
	}
	if len(skipped) != 4 || !strings.Contains(strings.Join(skipped, "\n"), `key #5 (kid "ec-1"): skipped: kty "EC" is not accepted`) {
		t.Errorf("skipped %q", skipped)
	}

	rsaKey := func(kv ...any) map[string]any {
		m := rsaJWK("r", &k.rsa.PublicKey)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	bad := []struct {
		name string
		data any
		want string
	}{
		{"not JSON", "{", `bad.jwks": not a JWK Set`},
		{"no keys array", map[string]any{"kty": "RSA"}, `no "keys" array`},
		{"keys not an array", `{"keys":{}}`, `not a JWK Set`},
		{"empty set", map[string]any{"keys": []any{}}, "no usable key"},
		{"only skipped keys", map[string]any{"keys": []any{map[string]any{"kty": "EC"}}}, `no usable key; want RSA (RS256), OKP Ed25519 (EdDSA) or oct (HS256) keys for signatures (JWKS file`},
		{"no kty", map[string]any{"keys": []any{map[string]any{"kid": "a"}}}, `key #1 (kid "a"): no "kty"`},
		{"missing n", map[string]any{"keys": []any{rsaKey("n", "")}}, `key #1 (kid "r"): "n" is missing`},
		{"bad e", map[string]any{"keys": []any{rsaKey("e", "AA")}}, `"e" is not a valid RSA exponent`},
		{"n not base64url", map[string]any{"keys": []any{rsaKey("n", "!!")}}, `"n" is not base64url`},
		{"private RSA", map[string]any{"keys": []any{rsaKey("d", "AQAB")}}, `holds a private key ("d")`},
		{"short Ed25519", map[string]any{"keys": []any{map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "e", "x": "AAAA"}}}, `the Ed25519 key is 3 bytes, want 32`},
		{"weak oct", map[string]any{"keys": []any{map[string]any{"kty": "oct", "kid": "h", "k": "c2hvcnQ"}}}, `key #1 (kid "h"): the HS256 secret is 5 bytes`},
		{"duplicate kid", map[string]any{"keys": []any{rsaKey(), edJWK("r", edPub)}}, `key #2 (kid "r"): kid "r" is also key #1's`},
		{"key not an object", `{"keys":[1]}`, `key #1: json`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, "bad.jwks", c.data)
			_, _, err := ReadJWKSFile(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want it to name %s and say %q", err, path, c.want)
			}
		})
	}
}

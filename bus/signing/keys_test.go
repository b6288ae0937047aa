package signing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeysRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for kind, key := range testKeys(t) {
		t.Run(kind, func(t *testing.T) {
			priv, err := MarshalPrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := MarshalPublicKey(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			pp, bp := filepath.Join(dir, kind+".key"), filepath.Join(dir, kind+".pub")
			_ = os.WriteFile(pp, priv, 0o600)
			_ = os.WriteFile(bp, pub, 0o644)
			sk, err := LoadPrivateKey(pp)
			if err != nil {
				t.Fatal(err)
			}
			pk, err := LoadPublicKey(bp)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSigner("k", sk)
			if err != nil {
				t.Fatal(err)
			}
			e := testEvent(t)
			if err := s.Sign(&e); err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(&e, Keys{"k": pk}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// An ECDSA key in SEC 1 form, as openssl ecparam -genkey writes it, loads.
func TestLoadSEC1Key(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(k)
	p := filepath.Join(t.TempDir(), "ec.key")
	_ = os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	if _, err := LoadPrivateKey(p); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeyErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKCS8PrivateKey(p384)
	pub384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	files := map[string][]byte{
		"text":    []byte("not a key\n"),
		"cert":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
		"garbled": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"p384":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der384}),
		"p384pub": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub384}),
	}
	for name, b := range files {
		_ = os.WriteFile(filepath.Join(dir, name), b, 0o600)
	}
	for _, c := range []struct {
		file, want string
		public     bool
	}{
		{"missing", "no such file", false},
		{"text", "no PEM block", false},
		{"cert", `want "PRIVATE KEY"`, false},
		{"garbled", "asn1", false},
		{"p384", "only P-256", false},
		{"text", "no PEM block", true},
		{"cert", `want "PUBLIC KEY"`, true},
		{"p384pub", "only P-256", true},
	} {
		p := filepath.Join(dir, c.file)
		var err error
		if c.public {
			_, err = LoadPublicKey(p)
		} else {
			_, err = LoadPrivateKey(p)
		}
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s (public %v): %v; want an error naming the file and saying %q", c.file, c.public, err, c.want)
		}
	}
}

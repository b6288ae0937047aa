package signers_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/signing"
	"github.com/auditbus/auditbus/pkg/refusal"
	"github.com/auditbus/auditbus/pkg/signers"
	"github.com/cloudevents/sdk-go/v2/event"
)

// keyPair writes a new Ed25519 public key in PEM to dir/name.pub and
// returns a signer of its private key under keyID.
func keyPair(t testing.TB, dir, name, keyID string) *signing.Signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := signing.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pub"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := signing.NewSigner(keyID, priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeRegistry(t *testing.T, dir, yaml string) string {
	t.Helper()
	path := filepath.Join(dir, "signers.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const registry = `signers:
  - key_id: shop-2026
    public_key_file: shop.pub
    sources: [/shop/]
    types: [com.example.order.]
  - key_id: billing-2026
    public_key_file: billing.pub
    sources: [/billing]
    types: ["*"]
`

func newEvent(source, typ string) bus.Event {
	e := event.New()
	e.SetID("ev-1")
	e.SetSource(source)
	e.SetType(typ)
	_ = e.SetData("application/json", map[string]int{"n": 1})
	return e
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	shop := keyPair(t, dir, "shop", "shop-2026")
	billing := keyPair(t, dir, "billing", "billing-2026")
	stranger := keyPair(t, t.TempDir(), "x", "stranger")
	r, err := signers.Load(writeRegistry(t, dir, registry))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(s *signing.Signer, e bus.Event) bus.Event {
		if err := s.Sign(&e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	changed := sign(shop, newEvent("/shop/cart", "com.example.order.placed"))
	_ = changed.SetData("application/json", map[string]int{"n": 2})
	for _, tc := range []struct {
		name          string
		ev            bus.Event
		entry, reason string
	}{
		{"allowed key", sign(shop, newEvent("/shop/cart", "com.example.order.placed")), "verified: shop-2026", ""},
		{"any type", sign(billing, newEvent("/billing", "com.example.payment.captured")), "verified: billing-2026", ""},
		{"unsigned", newEvent("/shop/cart", "com.example.order.placed"), "unsigned", refusal.SignatureMissing},
		{"another source's key", sign(billing, newEvent("/shop/cart", "com.example.order.placed")),
			`invalid: signer-not-allowed: key "billing-2026" may sign sources "/billing", not "/shop/cart"`, refusal.SignerNotAllowed},
		{"type outside the key's", sign(shop, newEvent("/shop/cart", "com.example.payment.captured")),
			`invalid: signer-not-allowed: key "shop-2026" may sign types "com.example.order.", not "com.example.payment.captured"`, refusal.SignerNotAllowed},
		{"data changed after signing", changed, "invalid: signature-invalid: digest: ", refusal.SignatureInvalid},
		{"unknown key", sign(stranger, newEvent("/shop/cart", "com.example.order.placed")), "invalid: signer-unknown: keyid: ", refusal.SignerUnknown},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			got := r.Check(&tc.ev)
			if !strings.HasPrefix(got.Entry, tc.entry) || got.Reason != tc.reason || got.OK() != (tc.reason == "") {
				t.Errorf("Check: %+v; want entry %q..., reason %q", got, tc.entry, tc.reason)
			}
			ref := got.Refusal(&tc.ev, `route "orders" requires signatures`)
			if (ref == nil) != got.OK() {
				t.Fatalf("Refusal %v for %+v", ref, got)
			}
			if ref != nil && (ref.Reason != tc.reason || !strings.Contains(ref.Error(), `route "orders" requires signatures: event "ev-1" from "`)) {
				t.Errorf("Refusal: %v", ref)
			}
		})
	}
}

// ECDSA P-256 keys register and verify too.
func TestCheckECDSA(t *testing.T) {
	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := signing.MarshalPublicKey(&priv.PublicKey)
	if err := os.WriteFile(filepath.Join(dir, "p256.pub"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := signers.Load(writeRegistry(t, dir, "signers:\n  - {key_id: p256, public_key_file: p256.pub, sources: ['*'], types: ['*']}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := signing.NewSigner("p256", priv)
	if err != nil {
		t.Fatal(err)
	}
	e := newEvent("/any", "any.type")
	if err := s.Sign(&e); err != nil {
		t.Fatal(err)
	}
	if got := r.Check(&e); got.Entry != "verified: p256" {
		t.Errorf("Check: %+v", got)
	}
}

// A registry with an unknown field, a missing key file, a duplicate key
// id or an overlapping rule is refused, naming the file and the line.
func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	keyPair(t, dir, "shop", "shop-2026")
	keyPair(t, dir, "billing", "billing-2026")
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", "signers:\n  - key_id: a\n    public_key_file: shop.pub\n    sources: [/shop]\n    types: [t.]\n    topics: [x]\n",
			[]string{`signer "a" (line 6): topics: unknown field (accepted: key_id, public_key_file, sources, types)`}},
		{"missing key file", "signers:\n  - key_id: a\n    public_key_file: nowhere.pub\n    sources: [/shop]\n    types: [t.]\n",
			[]string{`signer "a" (line 3): public_key_file: `, "nowhere.pub", "auditbus keygen --pem"}},
		{"duplicate key id", "signers:\n  - {key_id: a, public_key_file: shop.pub, sources: [/shop], types: [t.]}\n  - {key_id: a, public_key_file: billing.pub, sources: [/billing], types: [t.]}\n",
			[]string{`signer "a" (line 3): key_id: "a" is also the key id of the signer at line 2; key ids must be unique`}},
		{"same key twice", "signers:\n  - {key_id: a, public_key_file: shop.pub, sources: [/shop], types: [t.]}\n  - {key_id: b, public_key_file: shop.pub, sources: [/billing], types: [t.]}\n",
			[]string{`signer "b" (line 3): public_key_file: holds the same public key as signer "a" (line 2)`}},
		{"overlapping sources", "signers:\n  - key_id: a\n    public_key_file: shop.pub\n    sources:\n      - /shop\n      - /shop/cart\n    types: [t.]\n",
			[]string{`signer "a" (line 6): sources[1]: "/shop/cart" overlaps sources[0] "/shop" (line 5): one covers the other`}},
		{"any overlaps", "signers:\n  - {key_id: a, public_key_file: shop.pub, sources: [/shop], types: [t., '*']}\n",
			[]string{`signer "a" (line 2): types[1]: "*" overlaps types[0] "t."`}},
		{"no types", "signers:\n  - {key_id: a, public_key_file: shop.pub, sources: [/shop]}\n",
			[]string{`signer "a" (line 2): types: needs a list of at least one type prefix`}},
		{"bad key id", "signers:\n  - {key_id: 'a b', public_key_file: shop.pub, sources: [/shop], types: [t.]}\n",
			[]string{`key_id: "a b": a key id is`}},
		{"unknown top field", "signer:\n  - {key_id: a}\n", []string{"line 1: signer: unknown field (accepted: signers)"}},
		{"empty", "", []string{"signers: needs a list of at least one signer"}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			path := writeRegistry(t, dir, tc.yaml)
			_, err := signers.Load(path)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range append(tc.want, path+": ") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := signers.Load(filepath.Join(dir, "absent.yaml")); err == nil || !strings.Contains(err.Error(), "AUDITBUS_SIGNERS_FILE") {
		t.Errorf("absent file: %v", err)
	}
}

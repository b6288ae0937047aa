package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/signerverifier"
)

// testEvent is an event with every attribute set and three extensions.
func testEvent(t *testing.T) bus.Event {
	t.Helper()
	e := event.New()
	e.SetID("ord-1")
	e.SetSource("/shop/checkout")
	e.SetType("com.example.order.created")
	e.SetSubject("order/1")
	e.SetTime(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	e.SetExtension("partitionkey", "c-42")
	e.SetExtension("tenant", "acme")
	e.SetExtension("unsigned", "free")
	if err := e.SetData("application/json", []byte(`{"total":25.5}`)); err != nil {
		t.Fatal(err)
	}
	return e
}

// recipe is the spec's digest of testEvent computed in the test.
func recipe(e *bus.Event) []byte {
	return specDigest(e.ID(), e.Source(), "1.0", e.Type(), e.DataContentType(), e.DataSchema(), e.Subject(),
		e.Time().UTC().Format("2006-01-02T15:04:05Z"), e.Data(),
		"partitionkey", e.Extensions()["partitionkey"].(string), "tenant", e.Extensions()["tenant"].(string))
}

// sslibVerifier returns go-securesystemslib's own verifier for pub, from
// the PEM this package writes.
func sslibVerifier(t *testing.T, keyID string, pub crypto.PublicKey) dsse.Verifier {
	t.Helper()
	pemBytes, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k, err := signerverifier.LoadKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	k.KeyID = keyID
	switch pub.(type) {
	case ed25519.PublicKey:
		v, err := signerverifier.NewED25519SignerVerifierFromSSLibKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return v
	default:
		v, err := signerverifier.NewECDSASignerVerifierFromSSLibKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func testKeys(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"ed25519": ed, "ecdsa-p256": ec}
}

// TestInteropSecureSystemsLib signs with this package and verifies with
// go-securesystemslib's DSSE verifier and its Ed25519 / ECDSA verifiers,
// the payload checked against the spec's recipe computed here; then the
// other way round: an envelope signed by go-securesystemslib verifies here.
func TestInteropSecureSystemsLib(t *testing.T) {
	for kind, key := range testKeys(t) {
		t.Run(kind, func(t *testing.T) {
			s, err := NewSigner("k-"+kind, key, "partitionkey", "tenant")
			if err != nil {
				t.Fatal(err)
			}
			e := testEvent(t)
			if err := s.Sign(&e); err != nil {
				t.Fatal(err)
			}
			if got := e.Extensions()[AttrSignedExtensions]; got != "partitionkey,tenant" {
				t.Fatalf("signedextattrs = %v", got)
			}
			env := decodeEnvelope(t, &e)
			if env.PayloadType != PayloadType {
				t.Fatalf("payloadType %q", env.PayloadType)
			}
			body, err := env.DecodeB64Payload()
			if err != nil || !bytes.Equal(body, recipe(&e)) {
				t.Fatalf("payload %x (%v); recipe %x", body, err, recipe(&e))
			}
			ev, err := dsse.NewEnvelopeVerifier(sslibVerifier(t, "k-"+kind, key.Public()))
			if err != nil {
				t.Fatal(err)
			}
			accepted, err := ev.Verify(context.Background(), env)
			if err != nil || len(accepted) != 1 || accepted[0].KeyID != "k-"+kind {
				t.Fatalf("securesystemslib verify: %v %v", accepted, err)
			}
			if id, err := Verify(&e, Keys{"k-" + kind: key.Public()}); err != nil || id != "k-"+kind {
				t.Fatalf("Verify = %q, %v", id, err)
			}

			// The other way: securesystemslib signs the recipe's digest.
			pemBytes, err := MarshalPrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			sk, err := signerverifier.LoadKey(pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			sk.KeyID = "theirs"
			var ssv dsse.SignerVerifier
			if kind == "ed25519" {
				ssv, err = signerverifier.NewED25519SignerVerifierFromSSLibKey(sk)
			} else {
				ssv, err = signerverifier.NewECDSASignerVerifierFromSSLibKey(sk)
			}
			if err != nil {
				t.Fatal(err)
			}
			es, _ := dsse.NewEnvelopeSigner(ssv)
			theirs, err := es.SignPayload(context.Background(), PayloadType, recipe(&e))
			if err != nil {
				t.Fatal(err)
			}
			setEnvelope(t, &e, theirs)
			if id, err := Verify(&e, Keys{"theirs": key.Public()}); err != nil || id != "theirs" {
				t.Fatalf("Verify of securesystemslib's envelope = %q, %v", id, err)
			}
		})
	}
}

// TestTamper changes a signed event in each way an attacker might and
// checks each is refused with the right error and check.
func TestTamper(t *testing.T) {
	keys := testKeys(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	for kind, key := range keys {
		s, err := NewSigner("prod", key, "partitionkey", "tenant")
		if err != nil {
			t.Fatal(err)
		}
		good := Keys{"prod": key.Public()}
		cases := []struct {
			name   string
			change func(e *bus.Event)
			keys   KeySet
			err    error
			check  string
		}{
			{"data", func(e *bus.Event) { _ = e.SetData("application/json", []byte(`{"total":0.5}`)) }, good, ErrInvalid, CheckDigest},
			{"signed extension", func(e *bus.Event) { e.SetExtension("tenant", "evil") }, good, ErrInvalid, CheckDigest},
			{"signed extension removed", func(e *bus.Event) { e.SetExtension("tenant", nil) }, good, ErrInvalid, CheckDigest},
			{"signedextattrs shortened", func(e *bus.Event) { e.SetExtension(AttrSignedExtensions, "partitionkey") }, good, ErrInvalid, CheckDigest},
			{"signedextattrs removed", func(e *bus.Event) { e.SetExtension(AttrSignedExtensions, nil) }, good, ErrInvalid, CheckDigest},
			{"type", func(e *bus.Event) { e.SetType("com.example.payment.captured") }, good, ErrInvalid, CheckDigest},
			{"source", func(e *bus.Event) { e.SetSource("/billing") }, good, ErrInvalid, CheckDigest},
			{"id", func(e *bus.Event) { e.SetID("ord-2") }, good, ErrInvalid, CheckDigest},
			{"subject", func(e *bus.Event) { e.SetSubject("order/2") }, good, ErrInvalid, CheckDigest},
			{"time", func(e *bus.Event) { e.SetTime(e.Time().Add(time.Second)) }, good, ErrInvalid, CheckDigest},
			{"datacontenttype", func(e *bus.Event) { e.SetDataContentType("text/plain") }, good, ErrInvalid, CheckDigest},
			{"swapped key", func(*bus.Event) {}, Keys{"prod": other.Public()}, ErrInvalid, CheckSignature},
			{"unknown key id", func(*bus.Event) {}, Keys{"staging": key.Public()}, ErrUnknownKey, CheckKeyID},
			{"unsigned", func(e *bus.Event) { e.SetExtension(AttrMaterial, nil) }, good, ErrUnsigned, CheckUnsigned},
		}
		for _, c := range cases {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				e := testEvent(t)
				if err := s.Sign(&e); err != nil {
					t.Fatal(err)
				}
				c.change(&e)
				_, err := Verify(&e, c.keys)
				var ve *VerifyError
				if !errors.Is(err, c.err) || !errors.As(err, &ve) || ve.Check != c.check {
					t.Fatalf("Verify: %v; want %v at check %q", err, c.err, c.check)
				}
				if ve.ID != e.ID() || !strings.Contains(err.Error(), e.ID()) {
					t.Fatalf("error does not name the event: %v", err)
				}
			})
		}
	}
}

// TestVerifiedKeepsOnlySignedData checks what a consumer is handed: an
// unsigned extension added in transit is dropped, and so are the
// extension's own attributes; the time's offset and fraction do not
// matter.
func TestVerifiedKeepsOnlySignedData(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := NewSigner("k", key, "partitionkey", "tenant")
	e := testEvent(t)
	if err := s.Sign(&e); err != nil {
		t.Fatal(err)
	}
	e.SetExtension("injected", "by-a-proxy")
	e.SetTime(e.Time().In(time.FixedZone("x", 3600)).Add(400 * time.Millisecond))
	out, id, err := Verified(&e, Keys{"k": key.Public()})
	if err != nil || id != "k" {
		t.Fatalf("Verified = %q, %v", id, err)
	}
	ext := out.Extensions()
	if len(ext) != 2 || ext["partitionkey"] != "c-42" || ext["tenant"] != "acme" {
		t.Fatalf("extensions %v; want the two signed ones", ext)
	}
	if _, ok := e.Extensions()["injected"]; !ok {
		t.Fatal("Verified changed the event it was given")
	}
	if out.ID() != e.ID() || string(out.Data()) != string(e.Data()) {
		t.Fatal("attributes or data lost")
	}
}

func TestSignWithoutExtensions(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := NewSigner("k", key)
	e := testEvent(t)
	e.SetExtension(AttrSignedExtensions, "tenant") // left from an earlier signer
	if err := s.Sign(&e); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Extensions()[AttrSignedExtensions]; ok {
		t.Fatal("signedextattrs left on an event signed without extensions")
	}
	out, _, err := Verified(&e, Keys{"k": key.Public()})
	if err != nil || len(out.Extensions()) != 0 {
		t.Fatalf("Verified: %v, extensions %v", err, out.Extensions())
	}
}

func TestNewSignerRefuses(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	for _, c := range []struct {
		name string
		id   string
		key  crypto.Signer
		exts []string
		want string
	}{
		{"empty key id", "", ed, nil, "key id is empty"},
		{"nil key", "k", nil, nil, "key is nil"},
		{"P-384", "k", p384, nil, "only P-256"},
		{"RSA", "k", rsaKey, nil, "only Ed25519 and ECDSA P-256"},
		{"reserved extension", "k", ed, []string{"type"}, "reserved"},
		{"own attribute", "k", ed, []string{AttrMaterial}, "reserved"},
		{"repeated", "k", ed, []string{"a", "a"}, "listed twice"},
		{"upper case", "k", ed, []string{"Tenant"}, "lower-case"},
		{"empty name", "k", ed, []string{""}, "empty name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewSigner(c.id, c.key, c.exts...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewSigner: %v; want an error saying %q", err, c.want)
			}
		})
	}
}

func TestSignMissingExtension(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := NewSigner("k", key, "traceparent")
	e := testEvent(t)
	err := s.Sign(&e)
	if err == nil || !strings.Contains(err.Error(), `"traceparent"`) || !strings.Contains(err.Error(), "ord-1") {
		t.Fatalf("Sign: %v; want an error naming the event and the extension", err)
	}
	if _, ok := e.Extensions()[AttrMaterial]; ok {
		t.Fatal("a failed Sign left dssematerial on the event")
	}
}

// TestSignSetsImpliedJSONContentType signs JSON data given without a
// datacontenttype. The JSON event format implies application/json for it
// and a receiver decoding the event fills that in (the daemon's HTTP
// ingest does), so Sign must set it before signing, or the signature
// breaks on the way. Binary data is left without one.
func TestSignSetsImpliedJSONContentType(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := NewSigner("k", key)
	e := testEvent(t)
	e.SetDataContentType("")
	e.DataEncoded, e.DataBase64 = []byte(`{"total":25.5}`), false // as the JSON format decodes a "data" member
	if err := s.Sign(&e); err != nil {
		t.Fatal(err)
	}
	if e.DataContentType() != event.ApplicationJSON {
		t.Fatalf("datacontenttype %q after Sign, want %q", e.DataContentType(), event.ApplicationJSON)
	}
	// What a receiver of the JSON format decodes: the SDK's own codec.
	js, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	got := event.New()
	if err := got.UnmarshalJSON(js); err != nil {
		t.Fatal(err)
	}
	if got.DataContentType() == "" {
		got.SetDataContentType(event.ApplicationJSON) // the format's rule, as pkg/cehttp applies it
	}
	if _, err := Verify(&got, Keys{"k": key.Public()}); err != nil {
		t.Fatalf("the signature did not survive the JSON format: %v", err)
	}

	bin := testEvent(t)
	bin.SetDataContentType("")
	bin.DataEncoded, bin.DataBase64 = []byte{0xff, 0x00}, true
	if err := s.Sign(&bin); err != nil {
		t.Fatal(err)
	}
	if bin.DataContentType() != "" {
		t.Fatalf("binary data given datacontenttype %q", bin.DataContentType())
	}
}

package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/auditbus/auditbus/bus"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// setEnvelope puts env on e as its dssematerial.
func setEnvelope(t testing.TB, e *bus.Event, env any) {
	t.Helper()
	js, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	e.SetExtension(AttrMaterial, base64.StdEncoding.EncodeToString(js))
}

var b64 = base64.StdEncoding.EncodeToString

// TestMalformed feeds each kind of bad dssematerial and signedextattrs the
// issue lists and checks the check named and the words of the error.
func TestMalformed(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	keys := Keys{"k": key.Public()}
	digest := make([]byte, 32)
	sig := []dsse.Signature{{KeyID: "k", Sig: b64(make([]byte, 64))}}
	env := func(pt string, payload string, sigs []dsse.Signature) dsse.Envelope {
		return dsse.Envelope{PayloadType: pt, Payload: payload, Signatures: sigs}
	}
	many := make([]dsse.Signature, maxSignatures+1)
	for i := range many {
		many[i] = sig[0]
	}
	cases := []struct {
		name     string
		material any // string: as is; otherwise JSON-encoded, then Base64
		signed   any // signedextattrs, nil for none
		check    string
		err      error
		words    string
	}{
		{"empty material", "", nil, CheckUnsigned, ErrUnsigned, "dssematerial is empty"},
		{"not a string", 42, nil, CheckBase64, ErrInvalid, "not a string"},
		{"bad Base64", "not base64!", nil, CheckBase64, ErrInvalid, "not Base64"},
		{"bad JSON", b64([]byte(`{"payloadType":`)), nil, CheckEnvelope, ErrInvalid, "not a DSSE JSON envelope"},
		{"JSON array", b64([]byte(`[1,2]`)), nil, CheckEnvelope, ErrInvalid, "not a DSSE JSON envelope"},
		{"wrong payload type", env("application/vnd.in-toto+json", b64(digest), sig), nil, CheckPayloadType, ErrInvalid, "want \"" + PayloadType},
		{"payload not Base64", env(PayloadType, "!!", sig), nil, CheckPayload, ErrInvalid, "payload is not Base64"},
		{"payload 31 bytes", env(PayloadType, b64(digest[:31]), sig), nil, CheckPayload, ErrInvalid, "31 bytes"},
		{"payload 33 bytes", env(PayloadType, b64(append(digest, 0)), sig), nil, CheckPayload, ErrInvalid, "33 bytes"},
		{"no signatures", env(PayloadType, b64(digest), nil), nil, CheckEnvelope, ErrInvalid, "no signatures"},
		{"empty sig", env(PayloadType, b64(digest), []dsse.Signature{{KeyID: "k"}}), nil, CheckEnvelope, ErrInvalid, "has no sig"},
		{"too many signatures", env(PayloadType, b64(digest), many), nil, CheckEnvelope, ErrInvalid, "at most 8"},
		{"sig not Base64", env(PayloadType, b64(digest), []dsse.Signature{{KeyID: "k", Sig: "%%"}}), nil, CheckSignature, ErrInvalid, "does not verify"},
		{"bad signature", env(PayloadType, b64(digest), sig), nil, CheckSignature, ErrInvalid, `key id "k" does not verify`},
		{"no key id", env(PayloadType, b64(digest), []dsse.Signature{{Sig: b64(make([]byte, 64))}}), nil, CheckKeyID, ErrUnknownKey, `key id ""`},
		{"repeated name", env(PayloadType, b64(digest), sig), "exta,exta", CheckSignedExtAttrs, ErrInvalid, `"exta" is listed twice`},
		{"core attribute", env(PayloadType, b64(digest), sig), "exta,source", CheckSignedExtAttrs, ErrInvalid, `"source" is reserved`},
		{"dssematerial listed", env(PayloadType, b64(digest), sig), AttrMaterial, CheckSignedExtAttrs, ErrInvalid, "reserved"},
		{"signedextattrs listed", env(PayloadType, b64(digest), sig), AttrSignedExtensions, CheckSignedExtAttrs, ErrInvalid, "reserved"},
		{"space after comma", env(PayloadType, b64(digest), sig), "exta, extb", CheckSignedExtAttrs, ErrInvalid, "without spaces"},
		{"trailing comma", env(PayloadType, b64(digest), sig), "exta,", CheckSignedExtAttrs, ErrInvalid, "empty name"},
		{"not a string list", env(PayloadType, b64(digest), sig), 7, CheckSignedExtAttrs, ErrInvalid, "not a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := testEvent(t)
			if s, ok := c.material.(string); ok {
				e.SetExtension(AttrMaterial, s)
			} else if n, ok := c.material.(int); ok {
				e.SetExtension(AttrMaterial, n)
			} else {
				setEnvelope(t, &e, c.material)
			}
			if c.signed != nil {
				e.SetExtension(AttrSignedExtensions, c.signed)
			}
			_, err := Verify(&e, keys)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Check != c.check || !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.words) {
				t.Fatalf("Verify: %v\nwant check %q, %v, saying %q", err, c.check, c.err, c.words)
			}
		})
	}
}

// FuzzDecode feeds arbitrary dssematerial and signedextattrs values to the
// decoder and to Verify: never a panic, and every refusal is a
// *VerifyError wrapping one of the three sentinels.
func FuzzDecode(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := NewSigner("k", key, "exta")
	e := testEvent(&testing.T{})
	e.SetExtension("exta", "v")
	_ = s.Sign(&e)
	good, _ := e.Extensions()[AttrMaterial].(string)
	f.Add(good, "exta")
	f.Add(good, "")
	f.Add(good, "exta,exta")
	f.Add(good, "exta, extb")
	for _, v := range specVectors {
		f.Add(v, "")
	}
	f.Add(b64([]byte(`{"payloadType":"`+PayloadType+`","payload":"","signatures":[]}`)), "id")
	f.Add("e30=", ",")
	keys := Keys{"k": key.Public(), "testkey": specKey(&testing.T{})}
	f.Fuzz(func(t *testing.T, material, signed string) {
		m, check, err := decodeMaterial(material)
		if err == nil && (len(m.digest) != 32 || m.env.PayloadType != PayloadType || len(m.env.Signatures) == 0) {
			t.Fatalf("decodeMaterial accepted %q", material)
		}
		if err != nil && check == "" {
			t.Fatalf("decodeMaterial error without a check: %v", err)
		}
		names, err := parseSignedExtensions(signed)
		if err == nil {
			for _, n := range names {
				if checkExtensionName(n) != "" {
					t.Fatalf("parseSignedExtensions accepted %q", signed)
				}
			}
		}
		ev := e.Clone()
		ev.SetExtension(AttrMaterial, material)
		if signed != "" {
			ev.SetExtension(AttrSignedExtensions, signed)
		} else {
			ev.SetExtension(AttrSignedExtensions, nil)
		}
		_, err = Verify(&ev, keys)
		if err == nil {
			return
		}
		var ve *VerifyError
		if !errors.As(err, &ve) || !(errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnsigned) || errors.Is(err, ErrUnknownKey)) {
			t.Fatalf("Verify error of the wrong kind: %v", err)
		}
	})
}

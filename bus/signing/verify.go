package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/auditbus/auditbus/bus"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// Sentinel errors. Every error Verify returns is a *VerifyError wrapping
// one of them, for use with errors.Is.
var (
	// ErrUnsigned means the event has no dssematerial: it was not signed.
	ErrUnsigned = errors.New("event is not signed")
	// ErrInvalid means the signature does not hold: malformed material, a
	// wrong payload type, a bad signedextattrs, a bad signature, or an event
	// changed after it was signed.
	ErrInvalid = errors.New("invalid signature")
	// ErrUnknownKey means the event was signed by a key id the KeySet does
	// not hold (or holds a key of a type that cannot verify).
	ErrUnknownKey = errors.New("unknown signing key")
)

// The checks Verify makes, in order; VerifyError.Check names the one that
// failed. They are few and fixed, so they suit a metric label.
const (
	CheckUnsigned       = "unsigned"       // no dssematerial
	CheckBase64         = "base64"         // dssematerial is not Base64
	CheckEnvelope       = "envelope"       // not a DSSE JSON envelope
	CheckPayloadType    = "payloadtype"    // not PayloadType
	CheckPayload        = "payload"        // payload not Base64 of 32 bytes
	CheckSignedExtAttrs = "signedextattrs" // repeated, reserved or bad name
	CheckKeyID          = "keyid"          // no signature by a known key id
	CheckSignature      = "signature"      // the signature does not verify
	CheckDigest         = "digest"         // the event changed after signing
)

// VerifyError says why an event did not verify.
type VerifyError struct {
	ID     string // the event's id
	Source string // the event's source
	KeyID  string // the key id concerned, when one is
	Check  string // the check that failed: one of the Check constants
	Reason string // what is wrong and what to do
	Err    error  // ErrUnsigned, ErrInvalid or ErrUnknownKey
}

// Error formats as
// `signing: verify event "1" from "/orders": digest: invalid signature: ...`.
func (e *VerifyError) Error() string {
	var b strings.Builder
	b.WriteString("signing: verify event ")
	b.WriteString(strconv.Quote(e.ID))
	b.WriteString(" from ")
	b.WriteString(strconv.Quote(e.Source))
	b.WriteString(": ")
	b.WriteString(e.Check)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns the sentinel.
func (e *VerifyError) Unwrap() error { return e.Err }

// KeySet finds public keys by key id. Keys are ed25519.PublicKey or
// *ecdsa.PublicKey on P-256.
type KeySet interface {
	PublicKey(keyID string) (crypto.PublicKey, bool)
}

// Keys is a KeySet held in a map from key id to public key.
type Keys map[string]crypto.PublicKey

// PublicKey returns the key with id keyID.
func (k Keys) PublicKey(keyID string) (crypto.PublicKey, bool) {
	p, ok := k[keyID]
	return p, ok
}

// Verify checks ev's signature as the spec's verification protocol says
// and returns the id of the key that made it. It does not change ev. An
// error is a *VerifyError wrapping ErrUnsigned, ErrInvalid or
// ErrUnknownKey; it names the check that failed.
func Verify(ev *bus.Event, keys KeySet) (keyID string, err error) {
	keyID, _, err = verify(ev, keys)
	return keyID, err
}

// Verified checks ev like Verify and returns the event the spec tells a
// consumer to handle: the context attributes, the data and only the
// extensions the signature covers (so neither dssematerial nor
// signedextattrs).
func Verified(ev *bus.Event, keys KeySet) (bus.Event, string, error) {
	keyID, names, err := verify(ev, keys)
	if err != nil {
		return bus.Event{}, "", err
	}
	out := ev.Clone()
	for name := range out.Context.GetExtensions() {
		if !contains(names, name) {
			_ = out.Context.SetExtension(name, nil) // nil deletes
		}
	}
	return out, keyID, nil
}

// seenKeyID reports whether an earlier signature has key id id, so that
// each key gets one verifier.
func seenKeyID(sigs []dsse.Signature, id string) bool {
	for _, s := range sigs {
		if s.KeyID == id {
			return true
		}
	}
	return false
}

func contains(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// maxSignatures bounds the signatures checked on one event, so that a
// crafted envelope cannot make verification arbitrarily slow.
const maxSignatures = 8

// material is a decoded dssematerial.
type material struct {
	env    dsse.Envelope
	digest []byte // the signed verification material, 32 bytes
}

// decodeMaterial decodes a dssematerial value: Base64, then a DSSE JSON
// envelope of PayloadType whose payload is 32 bytes, with at least one
// signature. The error's check names what failed.
func decodeMaterial(v string) (*material, string, error) {
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, CheckBase64, fmt.Errorf("dssematerial is not Base64 (RFC 4648, standard alphabet, padded): %v", err)
	}
	m := new(material)
	if err := json.Unmarshal(raw, &m.env); err != nil {
		return nil, CheckEnvelope, fmt.Errorf("dssematerial is not a DSSE JSON envelope: %v", err)
	}
	if m.env.PayloadType != PayloadType {
		return nil, CheckPayloadType, fmt.Errorf("payloadType is %q; want %q (the verification material of this version of the extension)", trunc(m.env.PayloadType), PayloadType)
	}
	if m.digest, err = m.env.DecodeB64Payload(); err != nil {
		return nil, CheckPayload, fmt.Errorf("the envelope's payload is not Base64")
	}
	if len(m.digest) != sha256.Size {
		return nil, CheckPayload, fmt.Errorf("the envelope's payload is %d bytes; want the 32-byte SHA-256 verification material", len(m.digest))
	}
	if len(m.env.Signatures) == 0 {
		return nil, CheckEnvelope, errors.New("the envelope has no signatures")
	}
	if len(m.env.Signatures) > maxSignatures {
		return nil, CheckEnvelope, fmt.Errorf("the envelope has %d signatures; at most %d are checked", len(m.env.Signatures), maxSignatures)
	}
	for i, s := range m.env.Signatures {
		if s.Sig == "" {
			return nil, CheckEnvelope, fmt.Errorf("signature #%d has no sig", i)
		}
	}
	return m, "", nil
}

// trunc shortens a value quoted in an error.
func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func verify(ev *bus.Event, keys KeySet) (string, []string, error) {
	if ev == nil || ev.Context == nil {
		return "", nil, &VerifyError{Check: CheckUnsigned, Err: ErrUnsigned, Reason: "the event is empty"}
	}
	fail := func(check string, sentinel error, keyID, reason string) (string, []string, error) {
		return "", nil, &VerifyError{ID: ev.ID(), Source: ev.Source(), KeyID: keyID, Check: check, Reason: reason, Err: sentinel}
	}
	ext := extensionsOf(ev)
	mv, ok := ext[AttrMaterial]
	if !ok {
		return fail(CheckUnsigned, ErrUnsigned, "", "the event has no dssematerial extension; sign it, or accept unsigned events")
	}
	ms, ok := mv.(string)
	if !ok || ms == "" {
		if !ok {
			return fail(CheckBase64, ErrInvalid, "", fmt.Sprintf("dssematerial is a %T, not a string", mv))
		}
		return fail(CheckUnsigned, ErrUnsigned, "", "the event's dssematerial is empty; sign it, or accept unsigned events")
	}
	m, check, err := decodeMaterial(ms)
	if err != nil {
		return fail(check, ErrInvalid, "", err.Error())
	}
	var names []string
	if sv, ok := ext[AttrSignedExtensions]; ok {
		s, isString := sv.(string)
		if !isString {
			return fail(CheckSignedExtAttrs, ErrInvalid, "", fmt.Sprintf("signedextattrs is a %T, not a string", sv))
		}
		if names, err = parseSignedExtensions(s); err != nil {
			return fail(CheckSignedExtAttrs, ErrInvalid, "", "signedextattrs "+err.Error())
		}
	}
	keyID, check, err := verifyEnvelope(&m.env, keys)
	if err != nil {
		sentinel := ErrInvalid
		if check == CheckKeyID {
			sentinel = ErrUnknownKey
		}
		return fail(check, sentinel, keyID, err.Error())
	}
	digest, err := Digest(ev, names)
	if err != nil {
		return fail(CheckDigest, ErrInvalid, keyID, err.Error()+", but signedextattrs lists it: it was removed after signing")
	}
	if subtle.ConstantTimeCompare(digest[:], m.digest) != 1 {
		return fail(CheckDigest, ErrInvalid, keyID, "the signature holds, but the event's attributes, data or signed extensions differ from what was signed: it was changed after signing")
	}
	return keyID, names, nil
}

// verifyEnvelope runs the DSSE verification protocol with the keys the
// KeySet holds for the envelope's key ids. It returns the key id that
// verified, or the check that failed.
func verifyEnvelope(env *dsse.Envelope, keys KeySet) (string, string, error) {
	var vs [2]dsse.Verifier
	verifiers := vs[:0]
	for i, s := range env.Signatures {
		if s.KeyID == "" || seenKeyID(env.Signatures[:i], s.KeyID) {
			continue
		}
		pub, ok := keys.PublicKey(s.KeyID)
		if !ok {
			continue
		}
		v, err := newVerifier(s.KeyID, pub)
		if err != nil {
			return s.KeyID, CheckKeyID, err
		}
		verifiers = append(verifiers, v)
	}
	if len(verifiers) == 0 {
		ids := make([]string, len(env.Signatures))
		for i, s := range env.Signatures {
			ids[i] = strconv.Quote(trunc(s.KeyID))
		}
		return "", CheckKeyID, fmt.Errorf("signed by key id %s, which the key set does not hold; add the producer's public key under that id if you trust it", strings.Join(ids, ", "))
	}
	ev, err := dsse.NewEnvelopeVerifier(verifiers...)
	if err != nil {
		return "", CheckSignature, err
	}
	accepted, err := ev.Verify(context.Background(), env)
	if err != nil || len(accepted) == 0 {
		id, _ := verifiers[0].KeyID()
		return id, CheckSignature, fmt.Errorf("the signature by key id %q does not verify with the key held under that id: the material was signed by another key, or altered", id)
	}
	return accepted[0].KeyID, "", nil
}

// newVerifier returns a DSSE verifier for an Ed25519 or ECDSA P-256 key.
func newVerifier(keyID string, pub crypto.PublicKey) (dsse.Verifier, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key id %q: the Ed25519 public key is %d bytes, want %d", keyID, len(k), ed25519.PublicKeySize)
		}
		return ed25519Verifier{keyID, k}, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key id %q: the ECDSA key is not on P-256, the only curve used here", keyID)
		}
		return ecdsaVerifier{keyID, k}, nil
	}
	return nil, fmt.Errorf("key id %q: the key set holds a %T; only Ed25519 and ECDSA P-256 public keys verify events", keyID, pub)
}

var errBadSignature = errors.New("signature does not verify")

type ed25519Verifier struct {
	id  string
	pub ed25519.PublicKey
}

func (v ed25519Verifier) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(v.pub, data, sig) {
		return errBadSignature
	}
	return nil
}
func (v ed25519Verifier) KeyID() (string, error)   { return v.id, nil }
func (v ed25519Verifier) Public() crypto.PublicKey { return v.pub }

type ecdsaVerifier struct {
	id  string
	pub *ecdsa.PublicKey
}

// Verify accepts an ASN.1 DER signature and the raw r||s form.
func (v ecdsaVerifier) Verify(_ context.Context, data, sig []byte) error {
	h := sha256.Sum256(data)
	if ecdsa.VerifyASN1(v.pub, h[:], sig) {
		return nil
	}
	if len(sig) == 64 {
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if ecdsa.Verify(v.pub, h[:], r, s) {
			return nil
		}
	}
	return errBadSignature
}
func (v ecdsaVerifier) KeyID() (string, error)   { return v.id, nil }
func (v ecdsaVerifier) Public() crypto.PublicKey { return v.pub }

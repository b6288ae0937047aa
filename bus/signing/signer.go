package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// Signer signs events with one key under one key id, covering a fixed
// list of extensions. It is safe for concurrent use.
type Signer struct {
	keyID      string
	extensions []string
	attr       string // extensions, comma-separated: the signedextattrs value
	env        *dsse.EnvelopeSigner
}

// NewSigner returns a Signer for key, named keyID in every signature, that
// also signs the given extensions (in that order). key is an
// ed25519.PrivateKey, an *ecdsa.PrivateKey on P-256, or any crypto.Signer
// whose public key is one of those (a key held in a KMS, say). Every event
// it signs must carry every extension named.
func NewSigner(keyID string, key crypto.Signer, signedExtensions ...string) (*Signer, error) {
	if keyID == "" {
		return nil, errors.New("signing: new signer: the key id is empty; name the key so that consumers can find its public key")
	}
	if key == nil {
		return nil, fmt.Errorf("signing: new signer %q: the key is nil", keyID)
	}
	ds, err := newDSSESigner(keyID, key)
	if err != nil {
		return nil, fmt.Errorf("signing: new signer %q: %w", keyID, err)
	}
	names := append([]string(nil), signedExtensions...)
	attr := strings.Join(names, ",")
	if _, err := parseSignedExtensions(attr); err != nil || (len(names) > 0 && attr == "") {
		why := "an extension has an empty name"
		if err != nil {
			why = err.Error()
		}
		return nil, fmt.Errorf("signing: new signer %q: signed extensions %q: %s", keyID, names, why)
	}
	es, err := dsse.NewEnvelopeSigner(ds)
	if err != nil {
		return nil, fmt.Errorf("signing: new signer %q: %w", keyID, err)
	}
	return &Signer{keyID: keyID, extensions: names, attr: attr, env: es}, nil
}

// KeyID returns the key id the signer writes into every signature.
func (s *Signer) KeyID() string { return s.keyID }

// Extensions returns the names of the extensions the signer covers.
func (s *Signer) Extensions() []string { return append([]string(nil), s.extensions...) }

// Sign computes ev's verification material, signs it and sets
// dssematerial and signedextattrs on ev (signedextattrs only when the
// signer covers extensions; otherwise it removes one already there). Sign
// again after any change to the event. The error names the event and what
// is missing.
//
// Data that is not base64 and has no datacontenttype is JSON data in the
// JSON event format, which implies application/json for it; receivers fill
// that in when they decode (the daemon's HTTP ingest does), so Sign sets
// it first and signs what they will see.
func (s *Signer) Sign(ev *bus.Event) error {
	if ev == nil || ev.Context == nil {
		return errors.New("signing: sign: the event is empty")
	}
	if ev.DataContentType() == "" && len(ev.Data()) > 0 && !ev.DataBase64 {
		if err := ev.Context.SetDataContentType(event.ApplicationJSON); err != nil {
			return fmt.Errorf("signing: sign event %q: %w", ev.ID(), err)
		}
	}
	digest, err := Digest(ev, s.extensions)
	if err != nil {
		return fmt.Errorf("signing: sign event %q from %q with key %q: %v; set it on the event, or sign with a signer that does not cover it", ev.ID(), ev.Source(), s.keyID, err)
	}
	env, err := s.env.SignPayload(context.Background(), PayloadType, digest[:])
	if err != nil {
		return fmt.Errorf("signing: sign event %q with key %q: %w", ev.ID(), s.keyID, err)
	}
	js, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("signing: sign event %q: encode the envelope: %w", ev.ID(), err)
	}
	if err := ev.Context.SetExtension(AttrMaterial, base64.StdEncoding.EncodeToString(js)); err != nil {
		return fmt.Errorf("signing: sign event %q: %w", ev.ID(), err)
	}
	var list any
	if s.attr != "" {
		list = s.attr
	}
	if err := ev.Context.SetExtension(AttrSignedExtensions, list); err != nil {
		return fmt.Errorf("signing: sign event %q: %w", ev.ID(), err)
	}
	return nil
}

// newDSSESigner returns the DSSE signer for a supported key.
func newDSSESigner(keyID string, key crypto.Signer) (dsse.Signer, error) {
	if err := checkPublic(key.Public()); err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("the Ed25519 private key is %d bytes, want %d", len(k), ed25519.PrivateKeySize)
		}
		return ed25519Signer{keyID, k}, nil
	case *ed25519.PrivateKey:
		return newDSSESigner(keyID, *k)
	}
	return cryptoSigner{keyID, key}, nil
}

// checkPublic says whether pub is a key type this package signs with.
func checkPublic(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("the ECDSA key is on %s; only P-256 is supported", k.Curve.Params().Name)
		}
		return nil
	}
	return fmt.Errorf("the key is a %T; only Ed25519 and ECDSA P-256 keys are supported", pub)
}

// ed25519Signer signs with an in-memory Ed25519 key.
type ed25519Signer struct {
	id  string
	key ed25519.PrivateKey
}

func (s ed25519Signer) Sign(_ context.Context, data []byte) ([]byte, error) {
	return ed25519.Sign(s.key, data), nil
}
func (s ed25519Signer) KeyID() (string, error) { return s.id, nil }

// cryptoSigner signs through crypto.Signer: ECDSA P-256 over SHA-256
// (ASN.1 DER signatures), or Ed25519 held elsewhere.
type cryptoSigner struct {
	id  string
	key crypto.Signer
}

func (s cryptoSigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	if _, ok := s.key.Public().(ed25519.PublicKey); ok {
		return s.key.Sign(rand.Reader, data, crypto.Hash(0))
	}
	h := sha256.Sum256(data)
	return s.key.Sign(rand.Reader, h[:], crypto.SHA256)
}
func (s cryptoSigner) KeyID() (string, error) { return s.id, nil }

// String names the signer's key id and extensions, for logs.
func (s *Signer) String() string {
	return "signer " + strconv.Quote(s.keyID) + " (extensions " + strconv.Quote(s.attr) + ")"
}

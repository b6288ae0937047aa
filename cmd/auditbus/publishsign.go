package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/bus/signing"
	"github.com/cloudevents/sdk-go/v2/event"
)

// signFlags are auditbus publish's signing flags.
type signFlags struct {
	key, keyID string
	exts       multiFlag
}

func (f *signFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.key, "sign-key", "", "sign every event with this PEM private key (Ed25519 or ECDSA P-256)")
	fs.StringVar(&f.keyID, "key-id", "", "the key id written into every signature (required with --sign-key)")
	fs.Var(&f.exts, "sign-ext", "extension `name` the signature also covers; repeat for several")
}

// signer returns the signer the flags describe, or nil without --sign-key.
func (f *signFlags) signer() (*signing.Signer, error) {
	switch {
	case f.key == "" && f.keyID != "":
		return nil, errors.New("--key-id names the signing key; give the key with --sign-key FILE")
	case f.key == "" && len(f.exts) > 0:
		return nil, errors.New("--sign-ext chooses what a signature covers; give the key with --sign-key FILE")
	case f.key == "":
		return nil, nil
	case f.keyID == "":
		return nil, errors.New("--sign-key needs --key-id ID: the id consumers look the public key up by")
	}
	key, err := signing.LoadPrivateKey(f.key)
	if err != nil {
		return nil, fmt.Errorf("--sign-key: %v", err)
	}
	s, err := signing.NewSigner(f.keyID, key, f.exts...)
	if err != nil {
		return nil, fmt.Errorf("--key-id/--sign-ext: %v", err)
	}
	return s, nil
}

// signedEvents signs the events of src. An event without a time gets the
// current one first, so that nobody downstream fills it after signing (the
// daemon's ingest does); Sign sets the datacontenttype JSON data implies.
type signedEvents struct {
	src eventSource
	s   *signing.Signer
}

func (g *signedEvents) Next() (event.Event, error) {
	e, err := g.src.Next()
	if err != nil {
		return e, err
	}
	if e.Time().IsZero() {
		e.SetTime(time.Now().UTC())
	}
	if err := g.s.Sign(&e); err != nil {
		return e, err
	}
	return e, nil
}

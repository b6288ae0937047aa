package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/auditbus/auditbus/bus/signing"
	"github.com/auditbus/auditbus/pkg/signers"
)

// runSigned is run with every event signed by a key of a signer registry
// that allows it, and that registry checking every event in (a), (b) and
// (c).
func runSigned(n, size, batch, rounds int) error {
	if n <= 0 || batch <= 0 || rounds <= 0 || size < 0 {
		return errors.New("-events, -batch and -rounds must be positive")
	}
	dir, err := os.MkdirTemp("", "bench-router-signers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub, err := signing.MarshalPublicKey(priv.Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.pub"), pub, 0o600); err != nil {
		return err
	}
	file := filepath.Join(dir, "signers.yaml")
	if err := os.WriteFile(file, []byte("signers:\n  - {key_id: bench, public_key_file: bench.pub, sources: [/bench/], types: [com.example.]}\n"), 0o600); err != nil {
		return err
	}
	reg, err := signers.Load(file)
	if err != nil {
		return err
	}
	s, err := signing.NewSigner("bench", priv)
	if err != nil {
		return err
	}
	evs := makeEvents(n, size)
	for i := range evs {
		if err := s.Sign(&evs[i]); err != nil {
			return err
		}
	}
	if r := reg.Check(&evs[0]); !r.OK() {
		return fmt.Errorf("the benchmark's own event does not verify: %s", r.Entry)
	}
	checker = reg
	return compare(evs, size, batch, rounds)
}

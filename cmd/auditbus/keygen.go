package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/auditbus/auditbus/bus/signing"
	"github.com/auditbus/auditbus/sinks/ledgertree"
)

var keygenHelp = helpText{usage: `
Usage: auditbus keygen --private FILE --public FILE [--name NAME]
       auditbus keygen --pem --private FILE --public FILE

Makes an Ed25519 key pair in the signed-note formats of the Go checksum
database (golang.org/x/mod/sumdb/note) for the ledger's checkpoints: the
private key for AUDITBUS_LEDGER_SIGNING_KEY_FILE, the public (verifier)
key for auditbus verify --public-key. Neither file may exist yet; the
private one is written readable by its owner only.

With --pem it makes an Ed25519 pair in PEM (PKCS#8 private key, PKIX
public key) for signing events: the private key for auditbus publish
--sign-key or the library's signing.LoadPrivateKey, the public key for
the consumers that verify them (signing.LoadPublicKey).
`, after: `
Examples:
  auditbus keygen --private ledger.key --public ledger.pub --name auditbus-prod
  kubectl create secret generic auditbus-ledger-key --from-file=ledger.key
  auditbus keygen --pem --private shop.key --public shop.pub

Exit codes: 0 written, 1 a file could not be written, 2 usage error.
`}

func runKeygen(_ context.Context, args []string, s stdio) int {
	fs := newFlagSet("keygen", s.errOut)
	private := fs.String("private", "", "file to write the private key to (required)")
	public := fs.String("public", "", "file to write the public verifier key to (required)")
	name := fs.String("name", "auditbus", "the key's name, shown in every signature")
	pemPair := fs.Bool("pem", false, "write an Ed25519 pair in PEM for signing events, instead of signed-note keys")
	pos, code, ok := parseArgs(fs, args, keygenHelp, s)
	if !ok {
		return code
	}
	switch {
	case *pemPair && setFlags(fs)["name"]:
		return usageError(s, "keygen", "--name names a signed-note key; a PEM pair has none (its key id is given when signing: auditbus publish --key-id)")
	case len(pos) > 0:
		return usageError(s, "keygen", "unexpected argument %q", pos[0])
	case *private == "" || *public == "":
		return usageError(s, "keygen", "give both --private FILE and --public FILE")
	case *private == *public:
		return usageError(s, "keygen", "--private and --public name the same file %q", *private)
	case *name == "" || strings.ContainsFunc(*name, unicode.IsSpace) || strings.Contains(*name, "+") || !utf8.ValidString(*name):
		return usageError(s, "keygen", "--name %q: a key's name is not empty and has no spaces or +", *name)
	}
	if *pemPair {
		return writePEMPair(*private, *public, s)
	}
	skey, vkey, err := ledgertree.GenerateKey(*name)
	if err != nil {
		return usageError(s, "keygen", "--name %q: %v (a name has no spaces or +)", *name, err)
	}
	for _, f := range []struct {
		path, text string
		mode       os.FileMode
	}{{*private, skey, 0o600}, {*public, vkey, 0o644}} {
		if err := writeNew(f.path, f.text+"\n", f.mode); err != nil {
			return failure(s, "keygen", err)
		}
	}
	fmt.Fprintf(s.out, "private key: %s (AUDITBUS_LEDGER_SIGNING_KEY_FILE)\npublic key:  %s (auditbus verify --public-key)\n%s\n", *private, *public, vkey)
	return exitOK
}

// writePEMPair writes a new Ed25519 pair in PEM.
func writePEMPair(private, public string, s stdio) int {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return failure(s, "keygen", err)
	}
	privPEM, err := signing.MarshalPrivateKey(priv)
	if err != nil {
		return failure(s, "keygen", err)
	}
	pubPEM, err := signing.MarshalPublicKey(pub)
	if err != nil {
		return failure(s, "keygen", err)
	}
	// The public file first: if it exists, no private key is left behind.
	if err := writeNew(public, string(pubPEM), 0o644); err != nil {
		return failure(s, "keygen", err)
	}
	if err := writeNew(private, string(privPEM), 0o600); err != nil {
		_ = os.Remove(public)
		return failure(s, "keygen", err)
	}
	fmt.Fprintf(s.out, "private key: %s (auditbus publish --sign-key)\npublic key:  %s (for the consumers that verify)\n", private, public)
	return exitOK
}

// writeNew writes text to a file that must not exist yet.
func writeNew(path, text string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists already; keygen never overwrites a key: remove it or pick another name", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

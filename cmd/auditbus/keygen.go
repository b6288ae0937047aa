package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/auditbus/auditbus/sinks/ledgertree"
)

var keygenHelp = helpText{usage: `
Usage: auditbus keygen --private FILE --public FILE [--name NAME]

Makes an Ed25519 key pair in the signed-note formats of the Go checksum
database (golang.org/x/mod/sumdb/note) for the ledger's checkpoints: the
private key for AUDITBUS_LEDGER_SIGNING_KEY_FILE, the public (verifier)
key for auditbus verify --public-key. Neither file may exist yet; the
private one is written readable by its owner only.
`, after: `
Examples:
  auditbus keygen --private ledger.key --public ledger.pub --name auditbus-prod
  kubectl create secret generic auditbus-ledger-key --from-file=ledger.key

Exit codes: 0 written, 1 a file could not be written, 2 usage error.
`}

func runKeygen(_ context.Context, args []string, s stdio) int {
	fs := newFlagSet("keygen", s.errOut)
	private := fs.String("private", "", "file to write the private key to (required)")
	public := fs.String("public", "", "file to write the public verifier key to (required)")
	name := fs.String("name", "auditbus", "the key's name, shown in every signature")
	pos, code, ok := parseArgs(fs, args, keygenHelp, s)
	if !ok {
		return code
	}
	switch {
	case len(pos) > 0:
		return usageError(s, "keygen", "unexpected argument %q", pos[0])
	case *private == "" || *public == "":
		return usageError(s, "keygen", "give both --private FILE and --public FILE")
	case *private == *public:
		return usageError(s, "keygen", "--private and --public name the same file %q", *private)
	case *name == "" || strings.ContainsFunc(*name, unicode.IsSpace) || strings.Contains(*name, "+") || !utf8.ValidString(*name):
		return usageError(s, "keygen", "--name %q: a key's name is not empty and has no spaces or +", *name)
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

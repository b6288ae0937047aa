package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// keygen writes a pair the signed-note package reads, never overwrites a
// file, and verify's usage errors exit 2 naming the flag.
func TestKeygenAndVerifyUsage(t *testing.T) {
	clearClientEnv(t)
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "l.key"), filepath.Join(dir, "l.pub")
	if _, errOut, code := runCLI(t, "", "keygen", "--private", priv, "--public", pub, "--name", "k1"); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	skey, _ := os.ReadFile(priv)
	vkey, _ := os.ReadFile(pub)
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil || verifier.Name() != "k1" || signer.KeyHash() != verifier.KeyHash() {
		t.Fatalf("the pair does not match: %v", err)
	}
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if _, errOut, code := runCLI(t, "", "keygen", "--private", priv, "--public", filepath.Join(dir, "other.pub")); code != 1 ||
		!strings.Contains(errOut, "exists already") {
		t.Errorf("keygen over an existing key: exit %d: %s", code, errOut)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keygen", "--private", priv}, "give both --private FILE and --public FILE"},
		{[]string{"keygen", "--private", "a", "--public", "b", "--name", "has space"}, "--name"},
		{[]string{"verify"}, "--public-key FILE is required"},
		{[]string{"verify", "--public-key", priv}, "holds a private key"},
		{[]string{"verify", "--public-key", filepath.Join(dir, "none.pub")}, "--public-key"},
		{[]string{"verify", "event", "e1", "--public-key", pub}, "give its --source"},
		{[]string{"verify", "--public-key", pub, "--source", "s"}, "--source goes with verify event"},
		{[]string{"verify", "--public-key", pub, "--url", "ftp://x"}, "--url"},
	} {
		_, errOut, code := runCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want 2 and %q: %s", tc.args, code, tc.want, errOut)
		}
	}
}

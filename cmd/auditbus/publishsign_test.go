package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditbus/auditbus/bus/signing"
)

// keygen --pem writes a pair; publish --sign-key signs with it, one event
// in binary mode and a file of events as a batch, and what the daemon
// receives verifies with the public key.
func TestPublishSigned(t *testing.T) {
	clearClientEnv(t)
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "shop.key"), filepath.Join(dir, "shop.pub")
	if out, errOut, code := runCLI(t, "", "keygen", "--pem", "--private", priv, "--public", pub); code != 0 || !strings.Contains(out, "--sign-key") {
		t.Fatalf("keygen --pem: exit %d: %s %s", code, out, errOut)
	}
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode: %v %v", fi, err)
	}
	key, err := signing.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keys := signing.Keys{"shop-1": key}

	d := newFakeDaemon(t)
	if _, errOut, code := runCLI(t, "", "publish", "--url", d.URL, "--sign-key", priv, "--key-id", "shop-1", "--sign-ext", "tenant",
		"--source", "/shop", "--type", "com.example.order.created", "--data", `{"total": 9.5}`, "--ext", "tenant=acme"); code != 0 {
		t.Fatalf("publish: exit %d: %s", code, errOut)
	}
	lines, _ := jsonLines(3)
	file := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(file, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, "", "publish", "--url", d.URL, "--sign-key", priv, "--key-id", "shop-1", "--file", file); code != 0 {
		t.Fatalf("publish --file: exit %d: %s", code, errOut)
	}
	got := d.received()
	if len(got) != 4 {
		t.Fatalf("daemon received %d events, want 4", len(got))
	}
	for i := range got {
		if id, err := signing.Verify(&got[i], keys); err != nil || id != "shop-1" {
			t.Errorf("event %d (%s): Verify = %q, %v", i, got[i].ID(), id, err)
		}
	}
	if got[0].Extensions()[signing.AttrSignedExtensions] != "tenant" {
		t.Errorf("signedextattrs = %v", got[0].Extensions()[signing.AttrSignedExtensions])
	}
	got[0].SetExtension("tenant", "globex")
	if _, err := signing.Verify(&got[0], keys); !errors.Is(err, signing.ErrInvalid) {
		t.Errorf("changed signed extension: %v", err)
	}

	// keygen --pem never overwrites, and leaves no half pair behind.
	other := filepath.Join(dir, "other.pub")
	if _, errOut, code := runCLI(t, "", "keygen", "--pem", "--private", priv, "--public", other); code != 1 || !strings.Contains(errOut, "exists already") {
		t.Errorf("keygen --pem over an existing key: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("keygen left %s behind: %v", other, err)
	}
}

func TestPublishSignUsageErrors(t *testing.T) {
	clearClientEnv(t)
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")
	if _, errOut, code := runCLI(t, "", "keygen", "--pem", "--private", priv, "--public", pub); code != 0 {
		t.Fatalf("keygen --pem: exit %d: %s", code, errOut)
	}
	d := newFakeDaemon(t)
	one := []string{"publish", "--url", d.URL, "--source", "/s", "--type", "t"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sign-key", priv}, "--sign-key needs --key-id"},
		{[]string{"--key-id", "k"}, "give the key with --sign-key"},
		{[]string{"--sign-ext", "tenant"}, "give the key with --sign-key"},
		{[]string{"--sign-key", pub, "--key-id", "k"}, `want "PRIVATE KEY"`},
		{[]string{"--sign-key", filepath.Join(dir, "none"), "--key-id", "k"}, "no such file"},
		{[]string{"--sign-key", priv, "--key-id", "k", "--sign-ext", "type"}, "reserved"},
		{[]string{"--sign-key", priv, "--key-id", "k", "--sign-ext", "tenant"}, `extension "tenant" is not on the event`},
	} {
		_, errOut, code := runCLI(t, "", append(one, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want 2 and %q: %s", tc.args, code, tc.want, errOut)
		}
	}
	if n := len(d.received()); n != 0 {
		t.Errorf("the daemon received %d events from refused commands", n)
	}
	if _, errOut, code := runCLI(t, "", "keygen", "--pem", "--name", "x", "--private", "a", "--public", "b"); code != 2 || !strings.Contains(errOut, "--name") {
		t.Errorf("keygen --pem --name: exit %d: %s", code, errOut)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenCommands: mint, attenuate and inspect, and their usage errors.
func TestTokenCommands(t *testing.T) {
	key := filepath.Join(t.TempDir(), "macaroon.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, stderr, code := runCLI(t, "", "token", "mint", "--key", key, "--id", "team-shop", "--caveat", "scope = events:write", "--caveat", "source-prefix = /shop")
	if code != 0 || !strings.Contains(stderr, "identifier: team-shop") || strings.ContainsAny(strings.TrimSpace(tok), ". \n") {
		t.Fatalf("mint: exit %d, %q, %s", code, tok, stderr)
	}
	child, stderr, code := runCLI(t, strings.TrimSpace(tok), "token", "attenuate", "--token", "-", "--caveat", "type-prefix = com.example.order.")
	if code != 0 {
		t.Fatalf("attenuate: exit %d: %s", code, stderr)
	}
	out, _, code := runCLI(t, "", "token", "inspect", "--token", strings.TrimSpace(child))
	want := "identifier: team-shop\ncaveat: scope = events:write\ncaveat: source-prefix = /shop\ncaveat: type-prefix = com.example.order.\n"
	if code != 0 || out != want {
		t.Errorf("inspect: exit %d:\n%s\nwant\n%s", code, out, want)
	}
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"token", "mint", "--key", key, "--caveat", "colour = red"}, exitUsage, `unknown kind "colour"`},
		{[]string{"token", "mint", "--key", key}, exitUsage, "scope"},
		{[]string{"token", "mint", "--key", key, "--caveat", "topic = orders"}, exitUsage, "needs a --caveat 'scope = ...'"},
		{[]string{"token", "mint", "--key", short, "--caveat", "scope = audit:read"}, exitFailure, "at least 32"},
		{[]string{"token", "attenuate", "--token", strings.TrimSpace(tok)}, exitUsage, "at least one --caveat"},
		{[]string{"token", "attenuate", "--key", key, "--token", "x", "--caveat", "scope = a"}, exitUsage, "no --key"},
		{[]string{"token", "attenuate", "--token", "a.jwt.token", "--caveat", "scope = a"}, exitFailure, "only Macaroons can be attenuated"},
		{[]string{"token", "attenuate", "--token", "!!", "--caveat", "scope = a"}, exitFailure, "neither a JWT"},
		{[]string{"token", "burn"}, exitUsage, "mint, attenuate or inspect"},
	} {
		if _, stderr, code := runCLI(t, "", c.args...); code != c.code || !strings.Contains(stderr, c.says) {
			t.Errorf("%q: exit %d: %s; want %d saying %q", c.args, code, stderr, c.code, c.says)
		}
	}
}

// TestWorkedExampleShopToken runs the README's worked example against a
// real auditbus serve: the shop team's Macaroon publishes /shop order
// events and reads them back, told the answer is narrowed; a /billing
// event and a payment are refused.
func TestWorkedExampleShopToken(t *testing.T) {
	clearClientEnv(t)
	bin := buildBinary(t)
	key := filepath.Join(t.TempDir(), "macaroon.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := startDaemon(t, bin, "AUDITBUS_AUTH_MACAROON_KEY_FILE="+key)
	t.Setenv(envURL, base)

	tok, stderr, code := runCLI(t, "", "token", "mint", "--key", key, "--id", "team-shop",
		"--caveat", "scope = events:write audit:read",
		"--caveat", "source-prefix = /shop", "--caveat", "type-prefix = com.example.order.")
	if code != 0 {
		t.Fatalf("token mint: exit %d: %s", code, stderr)
	}
	t.Setenv(envToken, strings.TrimSpace(tok))
	if _, stderr, code = runCLI(t, "", "publish", "--source", "/shop/web", "--type", "com.example.order.created", "--data", `{"total": 3}`); code != 0 {
		t.Fatalf("publish a /shop order: exit %d: %s", code, stderr)
	}
	for _, c := range [][]string{
		{"--source", "/billing", "--type", "com.example.order.created"},
		{"--source", "/shop/web", "--type", "com.example.payment.captured"},
	} {
		if _, stderr, code := runCLI(t, "", append([]string{"publish"}, c...)...); code != 1 || !strings.Contains(stderr, "HTTP 403") || !strings.Contains(stderr, "permission_denied") {
			t.Errorf("publish %q: exit %d: %s; want 403 permission_denied", c, code, stderr)
		}
	}
	out, stderr, code := runCLI(t, "", "query", "--from", "-1h")
	if code != 0 || !strings.Contains(out, "com.example.order.created") || strings.Contains(out, "/billing") || !strings.Contains(stderr, "narrowed") {
		t.Errorf("query: exit %d:\n%s\n%s\nwant the order, and a note that the answer is narrowed", code, out, stderr)
	}
	// The refusals are evidence: a reader without restrictions sees them.
	t.Setenv(envToken, mintToken(t, "audit:read"))
	out, stderr, code = runCLI(t, "", "query", "--outcome", "refused", "--from", "-1h")
	if code != 0 || strings.Count(out, "refused") != 2 {
		t.Errorf("query --outcome refused: exit %d:\n%s\n%s\nwant the 2 refused events", code, out, stderr)
	}
}

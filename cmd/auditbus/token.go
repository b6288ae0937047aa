package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/auditbus/auditbus/pkg/auth"
)

var tokenHelp = helpText{usage: `
Usage:
  auditbus token mint --key FILE [--id ID] --caveat 'KIND = VALUE' ...
  auditbus token attenuate --token TOKEN --caveat 'KIND = VALUE' ...
  auditbus token inspect --token TOKEN

Makes and narrows Macaroon bearer tokens. mint (the operator, with the
root key of AUDITBUS_AUTH_MACAROON_KEY_FILE) makes a token with the
identifier ID, which the ledger records as the principal; attenuate
(anyone holding a token, no key) adds caveats, making a token that allows
at most what the given one does; inspect prints a token's identifier and
caveats without verifying them. The token goes to stdout, the rest to
stderr. --token - reads the token from stdin.

Caveats, each KIND = VALUE; lists are space-separated alternatives, and
several caveats of one kind intersect:
  scope = events:write audit:read replay:write
  topic = orders                     topics it may publish to
  route = shop-in                    HTTP-fed routes it may publish through
  source-prefix = /shop              sources it may claim and read
  type-prefix = com.example.order.   types it may send and read
  expires = 2027-01-01T00:00:00Z     RFC 3339
`, after: `
Examples:
  head -c 32 /dev/urandom > macaroon.key   # AUDITBUS_AUTH_MACAROON_KEY_FILE
  auditbus token mint --key macaroon.key --id team-shop \
      --caveat 'scope = events:write audit:read' --caveat 'source-prefix = /shop'
  auditbus token attenuate --token "$TOKEN" --caveat 'type-prefix = com.example.order.'

Exit codes: 0 token written, 1 the key or token could not be read, 2 usage error.
`}

func runToken(_ context.Context, args []string, s stdio) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fs := newFlagSet("token", s.errOut)
		printHelp(fs, tokenHelp, s.out)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	verb, rest := args[0], args[1:]
	fs := newFlagSet("token "+verb, s.errOut)
	var caveats multiFlag
	key := fs.String("key", "", "mint: the root key file (AUDITBUS_AUTH_MACAROON_KEY_FILE)")
	id := fs.String("id", "", "mint: the identifier, recorded as the principal (default: a random one)")
	token := fs.String("token", "", "attenuate, inspect: the token, or - to read it from stdin")
	fs.Var(&caveats, "caveat", "a caveat 'KIND = VALUE' (repeatable)")
	pos, code, ok := parseArgs(fs, rest, tokenHelp, s)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(s, "token", "unexpected argument %q", pos[0])
	}
	set := setFlags(fs)
	for _, c := range caveats {
		if _, err := auth.ParseCaveat(c); err != nil {
			return usageError(s, "token", "--caveat: %v", err)
		}
	}
	switch verb {
	case "mint":
		if set["token"] {
			return usageError(s, "token", "mint makes a new token from the root key; to narrow an existing one, use attenuate --token")
		}
		return mintMacaroon(s, *key, *id, caveats)
	case "attenuate", "inspect":
		if set["key"] || set["id"] {
			return usageError(s, "token", "%s needs no --key or --id: it works on the token alone", verb)
		}
		tok, err := readToken(s, *token)
		if err != nil {
			return usageError(s, "token", "%v", err)
		}
		if verb == "inspect" {
			if len(caveats) > 0 {
				return usageError(s, "token", "inspect adds no caveats; use attenuate")
			}
			return inspectToken(s, tok)
		}
		if len(caveats) == 0 {
			return usageError(s, "token", "attenuate needs at least one --caveat: it adds caveats")
		}
		out, err := auth.AttenuateMacaroon(tok, caveats)
		if err != nil {
			return failure(s, "token", err)
		}
		fmt.Fprintln(s.out, out)
		return exitOK
	}
	return usageError(s, "token", "unknown subcommand %q; use mint, attenuate or inspect", verb)
}

func mintMacaroon(s stdio, keyFile, id string, caveats []string) int {
	if keyFile == "" {
		return usageError(s, "token", "mint needs --key FILE, the root key of AUDITBUS_AUTH_MACAROON_KEY_FILE")
	}
	if !slices.ContainsFunc(caveats, func(c string) bool { p, _ := auth.ParseCaveat(c); return p.Kind == auth.CaveatScope }) {
		return usageError(s, "token", "mint needs a --caveat 'scope = ...': a token without one grants no scope")
	}
	key, err := auth.ReadMacaroonKey(keyFile)
	if err != nil {
		return failure(s, "token", err)
	}
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = "macaroon-" + hex.EncodeToString(b[:])
	}
	out, err := auth.MintMacaroon(key, id, caveats)
	if err != nil {
		return usageError(s, "token", "%v", err)
	}
	fmt.Fprintf(s.errOut, "identifier: %s (the principal the ledger records)\n", id)
	fmt.Fprintln(s.out, out)
	return exitOK
}

func inspectToken(s stdio, tok string) int {
	id, caveats, err := auth.MacaroonCaveats(tok)
	if err != nil {
		return failure(s, "token", err)
	}
	fmt.Fprintf(s.out, "identifier: %s\n", id)
	for _, c := range caveats {
		fmt.Fprintf(s.out, "caveat: %s\n", c)
	}
	return exitOK
}

// readToken is the --token value, or stdin's first line for "-".
func readToken(s stdio, v string) (string, error) {
	switch v {
	case "":
		return "", fmt.Errorf("give --token TOKEN (or --token - to read it from stdin)")
	case "-":
		b, err := io.ReadAll(io.LimitReader(s.in, auth.MaxTokenBytes+1))
		if err != nil {
			return "", fmt.Errorf("read the token from stdin: %w", err)
		}
		v = strings.TrimSpace(string(b))
	}
	if v == "" {
		return "", fmt.Errorf("the token is empty")
	}
	return v, nil
}

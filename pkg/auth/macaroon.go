package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/macaroon.v2"
)

// MinMacaroonKeyBytes is the shortest Macaroon root key accepted.
const MinMacaroonKeyBytes = 32

// MacaroonLocation is the location minted Macaroons carry.
const MacaroonLocation = "auditbus"

// A bearer token is a Macaroon when it has no '.': a JWT in compact form
// always has two, and a Macaroon is its binary (v2) encoding in base64url,
// whose alphabet has none.
func isMacaroon(token string) bool { return strings.IndexByte(token, '.') < 0 }

// ReadMacaroonKey reads a Macaroon root key file: at least
// MinMacaroonKeyBytes bytes, used as they are. Errors name the file.
func ReadMacaroonKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("macaroon root key: %w", err)
	}
	if len(key) < MinMacaroonKeyBytes {
		return nil, fmt.Errorf("macaroon root key %s: %d bytes; a root key needs at least %d random bytes (e.g. head -c 32 /dev/urandom > %s)",
			path, len(key), MinMacaroonKeyBytes, path)
	}
	return key, nil
}

// MintMacaroon makes a Macaroon with identifier id under rootKey, with
// caveats (each checked by ParseCaveat), and returns it encoded as a
// bearer token.
func MintMacaroon(rootKey []byte, id string, caveats []string) (string, error) {
	if len(rootKey) < MinMacaroonKeyBytes {
		return "", fmt.Errorf("macaroon root key: %d bytes; at least %d are needed", len(rootKey), MinMacaroonKeyBytes)
	}
	if id == "" || !utf8.ValidString(id) {
		return "", errors.New("macaroon identifier: empty or not UTF-8; the identifier is the principal the ledger records, so name it")
	}
	m, err := macaroon.New(rootKey, []byte(id), MacaroonLocation, macaroon.V2)
	if err != nil {
		return "", fmt.Errorf("macaroon: %w", err)
	}
	return addCaveats(m, caveats)
}

// AttenuateMacaroon adds caveats to a Macaroon token, needing no key: the
// new token allows at most what the old one did.
func AttenuateMacaroon(token string, caveats []string) (string, error) {
	token = strings.TrimSpace(token)
	if !isMacaroon(token) {
		return "", errors.New("the token holds '.', so it is a JWT, not a Macaroon; only Macaroons can be attenuated (mint one with auditbus token mint)")
	}
	m, err := decodeMacaroon(token)
	if err != nil {
		return "", err
	}
	return addCaveats(m, caveats)
}

// MacaroonCaveats returns the identifier and the first-party caveats of a
// Macaroon token, unverified, for display.
func MacaroonCaveats(token string) (id string, caveats []string, err error) {
	m, err := decodeMacaroon(strings.TrimSpace(token))
	if err != nil {
		return "", nil, err
	}
	for _, c := range m.Caveats() {
		caveats = append(caveats, string(c.Id))
	}
	return string(m.Id()), caveats, nil
}

func addCaveats(m *macaroon.Macaroon, caveats []string) (string, error) {
	for _, raw := range caveats {
		c, err := ParseCaveat(raw)
		if err != nil {
			return "", err
		}
		if err := m.AddFirstPartyCaveat([]byte(c.String())); err != nil {
			return "", fmt.Errorf("caveat %q: %w", clip(raw), err)
		}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("macaroon: encode: %w", err)
	}
	return encodeMacaroon(b), nil
}

// encodeMacaroon is the bearer form of a Macaroon's binary encoding.
func encodeMacaroon(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeMacaroon(token string) (*macaroon.Macaroon, error) {
	b, err := macaroon.Base64Decode([]byte(token))
	if err != nil {
		return nil, newError(ErrMalformedToken, "the bearer token is neither a JWT (header.payload.signature) nor a Macaroon in base64url; send the token as issued", err)
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(b); err != nil {
		return nil, newError(ErrMalformedToken, "the bearer token is not a well-formed Macaroon ("+err.Error()+"); send the token as issued", err)
	}
	return &m, nil
}

// verifyMacaroon checks a Macaroon token: its signature chain against the
// root key (a caveat removed or changed breaks it), then every caveat,
// failing closed on one it does not understand.
func (v *Verifier) verifyMacaroon(token string, now time.Time) (Principal, error) {
	m, err := decodeMacaroon(token)
	if err != nil {
		return Principal{}, err
	}
	for _, c := range m.Caveats() {
		if len(c.VerificationId) > 0 {
			return Principal{}, newError(ErrUnknownCaveat, fmt.Sprintf("the Macaroon has a third-party caveat (%q); this server understands first-party caveats only: %s", clip(string(c.Id)), strings.Join(CaveatKinds, ", ")), nil)
		}
	}
	conds, err := m.VerifySignature(v.macKey, nil)
	if err != nil {
		return Principal{}, newError(ErrBadSignature, "the Macaroon's signature does not match this server's root key: it was minted elsewhere, or a caveat was removed or changed after it was made; use the token as minted or attenuated", err)
	}
	var g grant
	for _, raw := range conds {
		c, err := ParseCaveat(raw)
		if err != nil {
			return Principal{}, newError(ErrUnknownCaveat, "the Macaroon's "+err.Error(), err)
		}
		g.add(c, raw)
	}
	if !g.expires.IsZero() && now.After(g.expires.Add(v.leeway)) {
		return Principal{}, newError(ErrTokenExpired, fmt.Sprintf("the Macaroon expired at %s by its caveat %q (clock skew allowed: %s); get a new token",
			g.expires.UTC().Format(time.RFC3339), clip(g.expiresBy), v.leeway), nil)
	}
	p := Principal{Subject: strings.ToValidUTF8(string(m.Id()), "\uFFFD"), Scopes: g.scopes, ExpiresAt: g.expires, Kind: KindMacaroon}
	p.Permissions = v.withPolicy(p.Subject, g.perms)
	return p, nil
}

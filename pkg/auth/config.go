package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/pkg/envconf"
	"github.com/auditbus/auditbus/pkg/perms"
)

// EnvPrefix is the prefix of the variables ConfigFromEnv reads.
const EnvPrefix = "AUDITBUS_AUTH_"

// EnvInsecure is the variable that lets the daemon serve without keys on a
// non-loopback address; the daemon reads it and passes it to CheckListen.
const EnvInsecure = "AUDITBUS_INSECURE"

// Clock skew allowed when checking exp, nbf and iat.
const (
	DefaultLeeway = 30 * time.Second
	MaxLeeway     = 5 * time.Minute
)

// Config holds what a Verifier checks. The zero value has no keys: a
// Verifier built from it is not configured and lets every request through.
type Config struct {
	// Keys verify signatures; see Key for how a token's kid and alg pick
	// one.
	Keys []Key
	// Issuer, when set, must equal the token's iss claim.
	Issuer string
	// Audience, when set, must share at least one value with the token's
	// aud claim.
	Audience []string
	// Leeway is the clock skew allowed on exp, nbf and iat, at most
	// MaxLeeway. ConfigFromEnv sets DefaultLeeway when the variable is unset.
	Leeway time.Duration
	// MacaroonKey, when set, is the root key Macaroon bearer tokens are
	// verified with: at least MinMacaroonKeyBytes bytes.
	MacaroonKey []byte
	// Policy restricts principals by subject (perms.LoadPolicy); nil
	// restricts none.
	Policy *perms.Policy
	// Skipped describes the JWKS keys that were left out (encryption keys,
	// other algorithms), for the daemon to log at start.
	Skipped []string
}

// ConfigFromEnv builds a Config from the environment:
//
//	AUDITBUS_AUTH_HS256_SECRET  HS256 shared secret, at least 32 bytes: raw, or base64 after "base64:"
//	AUDITBUS_AUTH_PUBLIC_KEYS   comma-separated PEM files of RSA (RS256) or Ed25519 (EdDSA) public keys
//	AUDITBUS_AUTH_JWKS_FILE     a JWK Set file: RSA, OKP Ed25519 and oct keys, chosen by kid
//	AUDITBUS_AUTH_ISSUER        required iss claim (unchecked when unset)
//	AUDITBUS_AUTH_AUDIENCE      comma-separated; the aud claim must hold one of them (unchecked when unset)
//	AUDITBUS_AUTH_LEEWAY        clock skew on exp, nbf and iat (default 30s, at most 5m)
//	AUDITBUS_AUTH_MACAROON_KEY_FILE  the Macaroon root key, at least 32 random bytes
//
// Key files are read and parsed once, here. Every bad variable is named in
// the error with what it accepts; the secret's value never is.
func ConfigFromEnv() (Config, error) {
	return configFrom(envconf.New(EnvPrefix))
}

func configFrom(r *envconf.Reader) (Config, error) {
	c := Config{
		Issuer:   r.String("ISSUER", ""),
		Audience: r.List("AUDIENCE", nil),
		Leeway:   r.Duration("LEEWAY", DefaultLeeway),
	}
	var errs []error
	if s := r.String("HS256_SECRET", ""); s != "" {
		secret, err := DecodeSecret(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name("HS256_SECRET"), err))
		} else {
			c.Keys = append(c.Keys, Key{Material: secret, Origin: r.Name("HS256_SECRET")})
		}
	}
	for _, path := range r.List("PUBLIC_KEYS", nil) {
		keys, err := ReadPEMFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name("PUBLIC_KEYS"), err))
			continue
		}
		c.Keys = append(c.Keys, keys...)
	}
	if path := r.String("JWKS_FILE", ""); path != "" {
		keys, skipped, err := ReadJWKSFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name("JWKS_FILE"), err))
		}
		c.Keys = append(c.Keys, keys...)
		c.Skipped = skipped
	}
	if path := r.String("MACAROON_KEY_FILE", ""); path != "" {
		key, err := ReadMacaroonKey(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name("MACAROON_KEY_FILE"), err))
		}
		c.MacaroonKey = key
	}
	if c.Leeway > MaxLeeway {
		errs = append(errs, fmt.Errorf("%s=%q: want a duration of at most %s", r.Name("LEEWAY"), c.Leeway, MaxLeeway))
	}
	if err := errors.Join(r.Err(), errors.Join(errs...)); err != nil {
		return c, fmt.Errorf("auditbus: auth configuration: %w", err)
	}
	if _, err := newKeySet(c.Keys); err != nil {
		return c, fmt.Errorf("auditbus: auth configuration: %w", err)
	}
	return c, nil
}

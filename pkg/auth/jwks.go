package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
)

// jwk is the part of a JSON Web Key (RFC 7517) a Verifier reads.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`   // RSA modulus
	E   string `json:"e"`   // RSA exponent
	Crv string `json:"crv"` // OKP curve
	X   string `json:"x"`   // OKP public key
	K   string `json:"k"`   // oct secret
	D   string `json:"d"`   // private part of RSA and OKP keys: must be absent
}

// ParseJWKS reads a JWK Set (RFC 7517 §5): RSA keys for RS256, OKP keys
// on the Ed25519 curve for EdDSA (RFC 8037) and oct keys for HS256, each
// selected by its kid. Keys meant for encryption ("use":"enc") or for
// other algorithms and curves are skipped, and each skip is described in
// skipped, so the caller can log it; a set left with no usable key is an
// error. A malformed key, a private key, a weak key or a kid used twice is
// an error naming origin, the key's position and its kid.
func ParseJWKS(data []byte, origin string) (keys []Key, skipped []string, err error) {
	var set struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("%s: not a JWK Set: %w", origin, err)
	}
	if set.Keys == nil {
		return nil, nil, fmt.Errorf(`%s: no "keys" array; want a JWK Set such as {"keys":[{"kty":"RSA","kid":"...","n":"...","e":"AQAB"}]}`, origin)
	}
	seen := map[string]int{}
	for i, raw := range *set.Keys {
		where := fmt.Sprintf("%s key #%d", origin, i+1)
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", where, err)
		}
		if j.Kid != "" {
			where += fmt.Sprintf(" (kid %q)", j.Kid)
		}
		k, skip, err := j.key()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", where, err)
		}
		if skip != "" {
			skipped = append(skipped, where+": skipped: "+skip)
			continue
		}
		if j.Kid != "" {
			if first, dup := seen[j.Kid]; dup {
				return nil, nil, fmt.Errorf("%s: kid %q is also key #%d's; every kid must name one key", where, j.Kid, first)
			}
			seen[j.Kid] = i + 1
		}
		k.Origin = where
		if _, err := k.Algorithm(); err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		msg := fmt.Sprintf("%s: no usable key; want RSA (RS256), OKP Ed25519 (EdDSA) or oct (HS256) keys for signatures", origin)
		if len(skipped) > 0 {
			msg += " (" + strings.Join(skipped, "; ") + ")"
		}
		return nil, skipped, errors.New(msg)
	}
	return keys, skipped, nil
}

// key turns the JWK into a Key, or says why it is skipped.
func (j jwk) key() (k Key, skip string, err error) {
	if j.Use != "" && j.Use != "sig" {
		return k, fmt.Sprintf("use %q is not for signatures", j.Use), nil
	}
	k.ID = j.Kid
	switch j.Kty {
	case "RSA":
		if j.Alg != "" && j.Alg != RS256 {
			return k, fmt.Sprintf("alg %q is not accepted (RSA keys verify RS256)", j.Alg), nil
		}
		if j.D != "" {
			return k, "", errors.New(`holds a private key ("d"); publish only the public key`)
		}
		n, err := b64url("n", j.N)
		if err != nil {
			return k, "", err
		}
		e, err := b64url("e", j.E)
		if err != nil {
			return k, "", err
		}
		exp := new(big.Int).SetBytes(e)
		if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
			return k, "", errors.New(`"e" is not a valid RSA exponent (an odd number from 3 to 2^31-1, usually "AQAB")`)
		}
		k.Material = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
	case "OKP":
		if j.Crv != "Ed25519" {
			return k, fmt.Sprintf("curve %q is not accepted (OKP keys must be Ed25519)", j.Crv), nil
		}
		if j.Alg != "" && j.Alg != EdDSA && j.Alg != "Ed25519" {
			return k, fmt.Sprintf("alg %q is not accepted (Ed25519 keys verify EdDSA)", j.Alg), nil
		}
		if j.D != "" {
			return k, "", errors.New(`holds a private key ("d"); publish only the public key`)
		}
		x, err := b64url("x", j.X)
		if err != nil {
			return k, "", err
		}
		k.Material = ed25519.PublicKey(x)
	case "oct":
		if j.Alg != "" && j.Alg != HS256 {
			return k, fmt.Sprintf("alg %q is not accepted (oct keys verify HS256)", j.Alg), nil
		}
		secret, err := b64url("k", j.K)
		if err != nil {
			return k, "", err
		}
		k.Material = secret
	case "":
		return k, "", errors.New(`no "kty"; want "RSA", "OKP" or "oct"`)
	default:
		return k, fmt.Sprintf("kty %q is not accepted (RSA, OKP and oct are)", j.Kty), nil
	}
	return k, "", nil
}

func b64url(field, s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%q is missing", field)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("%q is not base64url: %w", field, err)
	}
	return b, nil
}

// ReadJWKSFile reads a JWK Set file (see ParseJWKS); errors name the file.
func ReadJWKSFile(path string) (keys []Key, skipped []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read JWKS file: %w", err)
	}
	return ParseJWKS(data, fmt.Sprintf("JWKS file %q", path))
}

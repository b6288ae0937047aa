package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// The signing algorithms a Verifier accepts. A key's type decides the one
// algorithm it verifies, so no token can choose how its key is used.
const (
	HS256 = "HS256" // HMAC SHA-256, with a shared secret ([]byte)
	RS256 = "RS256" // RSA PKCS#1 v1.5 SHA-256, with an *rsa.PublicKey
	EdDSA = "EdDSA" // Ed25519, with an ed25519.PublicKey
)

// Key sizes below these are refused.
const (
	MinSecretBytes = 32   // HS256 secret: as long as the SHA-256 output, RFC 7518 §3.2
	MinRSABits     = 2048 // RSA modulus, RFC 7518 §3.3
)

// Key is one verification key.
type Key struct {
	// ID is the key id (kid) that tokens name. A key with no ID is tried
	// for tokens without a kid, and for tokens whose kid no key has.
	ID string
	// Material is the key: []byte for HS256, *rsa.PublicKey for RS256,
	// ed25519.PublicKey for EdDSA. Its type alone picks the algorithm.
	Material any
	// Origin says where the key came from ("keys/issuer.pem", say); errors
	// about the key name it.
	Origin string
}

// Algorithm returns the one algorithm the key verifies, or an error naming
// the key when its type or size is not accepted.
func (k Key) Algorithm() (string, error) {
	switch m := k.Material.(type) {
	case []byte:
		if len(m) < MinSecretBytes {
			return "", fmt.Errorf("%s: the HS256 secret is %d bytes; use at least %d random bytes", k.name(), len(m), MinSecretBytes)
		}
		return HS256, nil
	case *rsa.PublicKey:
		if m == nil || m.N == nil {
			return "", fmt.Errorf("%s: the RSA key is empty", k.name())
		}
		if bits := m.N.BitLen(); bits < MinRSABits {
			return "", fmt.Errorf("%s: the RSA key has %d bits; use at least %d", k.name(), bits, MinRSABits)
		}
		return RS256, nil
	case ed25519.PublicKey:
		if len(m) != ed25519.PublicKeySize {
			return "", fmt.Errorf("%s: the Ed25519 key is %d bytes, want %d", k.name(), len(m), ed25519.PublicKeySize)
		}
		return EdDSA, nil
	case nil:
		return "", fmt.Errorf("%s: no key material", k.name())
	default:
		return "", fmt.Errorf("%s: key type %T is not accepted; use an HS256 secret ([]byte), an RSA public key (*rsa.PublicKey) or an Ed25519 public key (ed25519.PublicKey)", k.name(), m)
	}
}

func (k Key) name() string {
	var s string
	switch {
	case k.Origin != "" && k.ID != "":
		s = fmt.Sprintf("key %q from %s", k.ID, k.Origin)
	case k.Origin != "":
		s = "key from " + k.Origin
	case k.ID != "":
		s = fmt.Sprintf("key %q", k.ID)
	default:
		s = "key"
	}
	return s
}

// DecodeSecret turns the text of an HS256 secret into bytes: taken as is,
// or base64 decoded (standard or URL alphabet, padded or not) after a
// "base64:" prefix. Secrets shorter than MinSecretBytes are refused. The
// error never repeats the secret.
func DecodeSecret(s string) ([]byte, error) {
	b := []byte(s)
	if rest, ok := strings.CutPrefix(s, "base64:"); ok {
		var err error
		if b, err = decodeBase64(strings.TrimSpace(rest)); err != nil {
			return nil, errors.New(`the text after "base64:" is not valid base64`)
		}
	}
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("the secret is %d bytes; use at least %d random bytes, e.g. base64:$(openssl rand -base64 32)", len(b), MinSecretBytes)
	}
	return b, nil
}

func decodeBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// ParsePEM reads RSA and Ed25519 public keys from PEM text: PUBLIC KEY
// (PKIX), RSA PUBLIC KEY (PKCS #1) and CERTIFICATE blocks, one key each.
// Private keys are refused: the server only needs the public half. origin
// names the text in errors and in the keys' Origin; the keys have no ID.
func ParsePEM(data []byte, origin string) ([]Key, error) {
	var blocks []*pem.Block
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%s: no PEM block found; want a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE block", origin)
	}
	keys := make([]Key, 0, len(blocks))
	for i, b := range blocks {
		where := origin
		if len(blocks) > 1 {
			where = fmt.Sprintf("%s (PEM block #%d)", origin, i+1)
		}
		pub, err := parsePEMBlock(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		k := Key{Material: pub, Origin: where}
		if _, err := k.Algorithm(); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func parsePEMBlock(b *pem.Block) (any, error) {
	switch b.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PUBLIC KEY block: %w", err)
		}
		return acceptPublic(pub)
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("RSA PUBLIC KEY block: %w", err)
		}
		return pub, nil
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CERTIFICATE block: %w", err)
		}
		return acceptPublic(cert.PublicKey)
	}
	if strings.Contains(b.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("holds a %s; give the server only the public key (openssl pkey -in key.pem -pubout)", b.Type)
	}
	return nil, fmt.Errorf("PEM block type %q is not accepted; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", b.Type)
}

func acceptPublic(pub any) (any, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey, ed25519.PublicKey:
		return p, nil
	}
	return nil, fmt.Errorf("public key type %T is not accepted; want RSA (RS256) or Ed25519 (EdDSA)", pub)
}

// ReadPEMFile reads the keys of a PEM file (see ParsePEM); errors name the
// file.
func ReadPEMFile(path string) ([]Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key file: %w", err)
	}
	return ParsePEM(data, fmt.Sprintf("%q", path))
}

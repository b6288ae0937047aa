package signing

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// LoadPrivateKey reads a PEM private key for signing: PKCS#8 ("PRIVATE
// KEY", as auditbus keygen --pem and openssl genpkey write it) or SEC 1
// ("EC PRIVATE KEY"), Ed25519 or ECDSA P-256. Errors name the file.
func LoadPrivateKey(path string) (crypto.Signer, error) {
	block, err := readPEM(path, "private")
	if err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("signing: private key %s: a PEM block of type %q; want \"PRIVATE KEY\" (PKCS#8)", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("signing: private key %s: %v", path, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing: private key %s: a %T cannot sign", path, key)
	}
	if err := checkPublic(s.Public()); err != nil {
		return nil, fmt.Errorf("signing: private key %s: %v", path, err)
	}
	return s, nil
}

// LoadPublicKey reads a PEM public key for verifying: PKIX ("PUBLIC KEY"),
// Ed25519 or ECDSA P-256. Errors name the file.
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	block, err := readPEM(path, "public")
	if err != nil {
		return nil, err
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("signing: public key %s: a PEM block of type %q; want \"PUBLIC KEY\" (PKIX)", path, block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing: public key %s: %v", path, err)
	}
	if err := checkPublic(pub); err != nil {
		return nil, fmt.Errorf("signing: public key %s: %v", path, err)
	}
	return pub, nil
}

func readPEM(path, kind string) (*pem.Block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing: %s key: %w", kind, err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("signing: %s key %s: no PEM block; want a PEM file (-----BEGIN ...-----)", kind, path)
	}
	return block, nil
}

// MarshalPrivateKey encodes an Ed25519 or ECDSA P-256 private key as a
// PKCS#8 PEM block.
func MarshalPrivateKey(key crypto.Signer) ([]byte, error) {
	if err := checkPublic(key.Public()); err != nil {
		return nil, fmt.Errorf("signing: marshal private key: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("signing: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey encodes an Ed25519 or ECDSA P-256 public key as a PKIX
// PEM block.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if err := checkPublic(pub); err != nil {
		return nil, fmt.Errorf("signing: marshal public key: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("signing: marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

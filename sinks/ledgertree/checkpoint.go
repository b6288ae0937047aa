package ledgertree

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is the C2SP tlog-checkpoint body of log's tree at size with
// the given root: the origin (the log's name), the size and the root hash
// in base64, one a line.
func Checkpoint(logName string, size uint64, root []byte) []byte {
	return log.Checkpoint{Origin: logName, Size: size, Hash: root}.Marshal()
}

// Sign makes a checkpoint a signed note; with a nil signer the body is
// returned as it is, an unsigned checkpoint no verifier accepts.
func Sign(body []byte, signer note.Signer) ([]byte, error) {
	if signer == nil {
		return body, nil
	}
	return note.Sign(&note.Note{Text: string(body)}, signer)
}

// ParseBody reads a checkpoint's body, signed or not, without checking
// any signature: for the daemon's own consistency checks, never for
// trusting a checkpoint (see log.ParseCheckpoint for that).
func ParseBody(n []byte) (log.Checkpoint, error) {
	var c log.Checkpoint
	_, err := c.Unmarshal(n)
	return c, err
}

// GenerateKey makes an Ed25519 key pair in the signed-note formats:
// the private key ("PRIVATE+KEY+name+hash+key") and the verifier key
// ("name+hash+key"). name names the key in signatures.
func GenerateKey(name string) (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, name)
}

// LoadSigner reads a signed-note private key from the file at path. The
// error names the file and says what was expected.
func LoadSigner(path string) (note.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: not a signed-note private key (PRIVATE+KEY+name+hash+key, as auditbus keygen writes): %w", path, err)
	}
	return s, nil
}

// LoadVerifier reads a signed-note verifier key from the file at path.
func LoadVerifier(path string) (note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(string(b))
	if strings.HasPrefix(text, "PRIVATE+KEY+") {
		return nil, fmt.Errorf("%s: holds a private key; give the public (verifier) key that auditbus keygen --public wrote", path)
	}
	v, err := note.NewVerifier(text)
	if err != nil {
		return nil, fmt.Errorf("%s: not a signed-note verifier key (name+hash+key, as auditbus keygen writes): %w", path, err)
	}
	return v, nil
}

// ErrUnsigned: a checkpoint carries no signature at all.
var ErrUnsigned = errors.New("checkpoint is not signed")

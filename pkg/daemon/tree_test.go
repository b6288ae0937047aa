package daemon_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// readToken is an audit:read token for the live daemons.
func readToken(t *testing.T) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "auditor", "scope": "audit:read", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(liveSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// get GETs path with an audit:read token and returns the status and body.
func (l *live) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, l.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+readToken(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// leafOf is the RFC 6962 leaf hash of a GET /v1/ledger entry, encoded here
// from the README's description of auditbus-leaf-v1 and -v2, not by
// auditbus.
func leafOf(t *testing.T, e map[string]any) []byte {
	t.Helper()
	str := func(k string) string { s, _ := e[k].(string); return s }
	num := func(k string) int64 { f, _ := e[k].(float64); return int64(f) }
	field := func(b []byte, s string) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	at, err := time.Parse(time.RFC3339Nano, str("time"))
	if err != nil {
		t.Fatal(err)
	}
	digest := make([]byte, 32)
	if _, err := fmt.Sscanf(str("digest"), "sha256:%x", &digest); err != nil {
		t.Fatal(err)
	}
	b := []byte("auditbus-leaf-v1")
	if str("signature") != "" {
		b = []byte("auditbus-leaf-v2")
	}
	b = field(b, str("log"))
	b = binary.AppendUvarint(b, uint64(num("seq")))
	b = binary.AppendVarint(b, at.UnixNano())
	for _, k := range []string{"kind", "source", "id"} {
		b = field(b, str(k))
	}
	b = append(b, digest...)
	b = field(b, str("transport"))
	b = field(b, str("topic"))
	b = binary.AppendVarint(b, num("partition"))
	b = binary.AppendVarint(b, num("offset"))
	for _, k := range []string{"request", "principal", "route", "destination"} {
		b = field(b, str(k))
	}
	b = binary.AppendVarint(b, num("attempts"))
	b = field(b, str("error"))
	b = field(b, str("replay"))
	if str("signature") != "" {
		b = field(b, str("signature"))
	}
	h := sha256.Sum256(append([]byte{0}, b...))
	return h[:]
}

// The daemon's checkpoints, inclusion and consistency proofs check with
// sumdb/note's and transparency-dev's own verifiers, and the leaves with
// an encoder written from the documentation: nothing of auditbus checks
// auditbus here.
func TestLedgerProofsInterop(t *testing.T) {
	dir := t.TempDir()
	skey, vkey, err := note.GenerateKey(nil, "interop-key")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "ledger.key")
	if err := os.WriteFile(keyFile, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := startLive(t, `routes:
  - name: web
    source: {http: true}
    destinations:
      - {transport: mem, topic: out}
    dead_letter: {transport: mem, topic: dead}
`, "AUDITBUS_LEDGER_SIGNING_KEY_FILE="+keyFile, "AUDITBUS_LEDGER_CHECKPOINT_INTERVAL=50ms")
	const events = 40
	for i := range events {
		l.post(t, "route=web", map[string]string{"ce-id": fmt.Sprint("ev-", i), "ce-source": "urn:interop", "ce-type": "t",
			"Content-Type": "application/json"}, fmt.Sprintf(`{"n":%d}`, i))
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	var cp *log.Checkpoint
	var raw []byte
	waitUntil(t, "a signed checkpoint of every entry", 30*time.Second, func() bool {
		code, b := l.get(t, "/v1/ledger/checkpoint?log="+ledgerLog)
		if code != http.StatusOK {
			return false
		}
		c, _, _, err := log.ParseCheckpoint(b, ledgerLog, verifier)
		if err != nil {
			t.Fatalf("the checkpoint does not verify with sumdb/note: %v\n%s", err, b)
		}
		cp, raw = c, b
		return c.Size >= 2*events // received and delivered, per event
	})
	if _, err := note.Open(raw, note.VerifierList(verifier)); err != nil {
		t.Fatalf("note.Open: %v", err)
	}

	code, b := l.get(t, fmt.Sprintf("/v1/ledger?log=%s&limit=10000", ledgerLog))
	var page struct {
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal(b, &page); code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/ledger: %d %v", code, err)
	}
	if uint64(len(page.Entries)) < cp.Size {
		t.Fatalf("%d entries, the checkpoint holds %d", len(page.Entries), cp.Size)
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := rf.NewEmptyRange(0)
	roots := [][]byte{rfc6962.DefaultHasher.EmptyRoot()}
	leaves := make([][]byte, cp.Size)
	for i := range leaves {
		leaves[i] = leafOf(t, page.Entries[i])
		if err := rng.Append(leaves[i], nil); err != nil {
			t.Fatal(err)
		}
		r, _ := rng.GetRootHash(nil)
		roots = append(roots, r)
	}
	if got := roots[cp.Size]; string(got) != string(cp.Hash) {
		t.Fatalf("the root of the entries differs from the checkpoint's")
	}
	type answer struct {
		Hashes [][]byte `json:"hashes"`
	}
	for i := uint64(0); i < cp.Size; i++ {
		for _, size := range []uint64{i + 1, cp.Size} {
			var a answer
			code, b := l.get(t, fmt.Sprintf("/v1/ledger/proof/inclusion?log=%s&seq=%d&size=%d", ledgerLog, i+1, size))
			if err := json.Unmarshal(b, &a); code != http.StatusOK || err != nil {
				t.Fatalf("inclusion of seq %d in %d: %d %s", i+1, size, code, b)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, size, leaves[i], a.Hashes, roots[size]); err != nil {
				t.Errorf("inclusion of seq %d in %d: %v", i+1, size, err)
			}
		}
	}
	for from := uint64(0); from <= cp.Size; from++ {
		var a answer
		code, b := l.get(t, fmt.Sprintf("/v1/ledger/proof/consistency?log=%s&from=%d&to=%d", ledgerLog, from, cp.Size))
		if err := json.Unmarshal(b, &a); code != http.StatusOK || err != nil {
			t.Fatalf("consistency %d to %d: %d %s", from, cp.Size, code, b)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, cp.Size, a.Hashes, roots[from], roots[cp.Size]); err != nil {
			t.Errorf("consistency %d to %d: %v", from, cp.Size, err)
		}
	}
	if got := l.metric(t, "auditbus_ledger_checkpoint_size"); got < float64(cp.Size) {
		t.Errorf("auditbus_ledger_checkpoint_size %v, want at least %d", got, cp.Size)
	}
}

// Bad proof requests are 400s naming the parameter.
func TestLedgerProofBadInput(t *testing.T) {
	l := startLive(t, "", "AUDITBUS_LEDGER_CHECKPOINT_INTERVAL=50ms")
	l.post(t, "", map[string]string{"ce-id": "one", "ce-source": "urn:bad", "ce-type": "t"}, "")
	waitUntil(t, "a checkpoint", 30*time.Second, func() bool {
		code, _ := l.get(t, "/v1/ledger/checkpoint?log="+ledgerLog)
		return code == http.StatusOK
	})
	if code, b := l.get(t, "/v1/ledger/checkpoint?log="+ledgerLog); !strings.HasPrefix(string(b), ledgerLog+"\n1\n") {
		t.Errorf("unsigned checkpoint: %d %q", code, b)
	}
	for path, param := range map[string]string{
		"/v1/ledger/checkpoint":                                          `"log"`,
		"/v1/ledger/checkpoint?log=nope":                                 `"log"`,
		"/v1/ledger/checkpoint?log=" + ledgerLog + "&x=1":                `"x"`,
		"/v1/ledger/proof/inclusion?log=" + ledgerLog:                    `"seq"`,
		"/v1/ledger/proof/inclusion?log=" + ledgerLog + "&seq=0":         `"seq"`,
		"/v1/ledger/proof/inclusion?log=" + ledgerLog + "&seq=2":         `"seq"`,
		"/v1/ledger/proof/inclusion?log=" + ledgerLog + "&seq=1&size=9":  `"size"`,
		"/v1/ledger/proof/inclusion?log=" + ledgerLog + "&seq=x":         `"seq"`,
		"/v1/ledger/proof/inclusion?log=other&seq=1":                     `"log"`,
		"/v1/ledger/proof/consistency?log=" + ledgerLog + "&to=1":        `"from"`,
		"/v1/ledger/proof/consistency?log=" + ledgerLog + "&from=2&to=1": `"from"`,
		"/v1/ledger/proof/consistency?log=" + ledgerLog + "&from=1&to=5": `"to"`,
		"/v1/ledger/proof/consistency?log=" + ledgerLog + "&from=-1":     `"from"`,
	} {
		code, b := l.get(t, path)
		if code != http.StatusBadRequest || !strings.Contains(string(b), `parameter \`+param[:len(param)-1]+`\"`) {
			t.Errorf("GET %s: %d %s; want 400 naming %s", path, code, b, param)
		}
	}
	if !strings.Contains(l.logs.String(), "ledger checkpoints are unsigned") {
		t.Errorf("no word at start that checkpoints are unsigned:\n%s", l.logs.String())
	}
}

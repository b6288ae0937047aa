package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
)

// tamperLog is the log the tamper tests' daemon writes.
const tamperLog = "tamper"

// tamperEvents are posted to a route with one destination: a received and
// a delivered entry each, so the log holds 2×tamperEvents entries. The
// daemon has a signer registry, so each received entry (odd seq) records
// "unsigned" and is an auditbus-leaf-v2 leaf, while each delivered entry
// (even seq) has no signature result and stays auditbus-leaf-v1: the log
// mixes both encodings.
const tamperEvents = 20

// ledgerStore is a store the tamper tests run on: the daemon's variables
// for it, and statements run on it with the daemon stopped.
type ledgerStore interface {
	env() []string
	// changeData changes one byte of the data of event id's version.
	changeData(t *testing.T, id string)
	// update sets columns of the log's entries matching where.
	update(t *testing.T, set, where string)
	// remove deletes the log's entries matching where.
	remove(t *testing.T, where string)
	// clearTree deletes every stored tree hash.
	clearTree(t *testing.T)
	// open opens the store as a library would, for the attacker who
	// recomputes the tree.
	open(t *testing.T) interface {
		sinks.Store
		sinks.TreeStore
	}
	// swap exchanges the positions of two entries of the log.
	swap(t *testing.T, a, b uint64)
}

// serveProc is a running auditbus serve.
type serveProc struct {
	base   string
	errOut *syncBuffer
	exited chan error
	cmd    *exec.Cmd
}

// routesFile writes the tamper tests' routes: HTTP events to one mem
// destination.
func routesFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(`routes:
  - name: web
    source: {http: true}
    destinations:
      - {transport: mem, topic: web-out}
    dead_letter: {transport: mem, topic: web-dead}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// signersFile writes a signer registry of one key (auditbus keygen
// --pem), so that the tamper tests' daemon checks every event's signature.
func signersFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, errOut, code := runCLI(t, "", "keygen", "--pem", "--private", filepath.Join(dir, "tamper.key"), "--public", filepath.Join(dir, "tamper.pub")); code != 0 {
		t.Fatalf("keygen --pem: exit %d: %s", code, errOut)
	}
	path := filepath.Join(dir, "signers.yaml")
	if err := os.WriteFile(path, []byte("signers:\n  - {key_id: tamper, public_key_file: tamper.pub, sources: [urn:tamper], types: ['*']}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serve starts auditbus serve with env and waits until it is ready, or
// until it exits: then it returns nil and what it wrote to stderr.
func serve(t *testing.T, bin string, env []string) (*serveProc, string) {
	t.Helper()
	addr := freeAddr(t)
	p := &serveProc{base: "http://" + addr, errOut: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = append(os.Environ(), append([]string{"AUDITBUS_LISTEN=" + addr, "AUDITBUS_LOG_LEVEL=warn",
		"AUDITBUS_AUTH_HS256_SECRET=" + hsSecret, "AUDITBUS_LEDGER_CHECKPOINT_INTERVAL=50ms"}, env...)...)
	p.cmd.Stderr = p.errOut
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			return nil, p.errOut.String()
		default:
		}
		if resp, err := http.Get(p.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(func() { p.stop(t) })
				return p, ""
			}
		}
		if time.Now().After(deadline) {
			_ = p.cmd.Process.Kill()
			t.Fatalf("auditbus serve not ready within 60s:\n%s", p.errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for exit 0; stopping twice is a no-op.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil || p.exited == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.exited; err != nil {
		t.Errorf("auditbus serve after SIGTERM: %v\n%s", err, p.errOut.String())
	}
	p.exited = nil
}

// getJSON GETs path from the daemon with an audit:read token.
func (p *serveProc) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+mintToken(t, "audit:read"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode
}

// seedLedger posts the events and waits until a checkpoint holds every
// entry; it returns the first seq of each event's entries by id.
func seedLedger(t *testing.T, p *serveProc) map[string]uint64 {
	t.Helper()
	token := mintToken(t, "events:write")
	for i := range tamperEvents {
		body := fmt.Sprintf(`{"specversion":"1.0","id":"ev-%d","source":"urn:tamper","type":"t","datacontenttype":"application/json","data":{"n":%d}}`, i, i)
		req, _ := http.NewRequest(http.MethodPost, p.base+"/v1/events?route=web", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST event %d: %d", i, resp.StatusCode)
		}
	}
	waitFor(t, "a checkpoint of every entry", 60*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, p.base+"/v1/ledger/checkpoint?log="+tamperLog, nil)
		req.Header.Set("Authorization", "Bearer "+mintToken(t, "audit:read"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		cp, err := ledgertree.ParseBody(b)
		return err == nil && cp.Size == 2*tamperEvents
	})
	var page struct {
		Entries []ledgerEntry `json:"entries"`
	}
	p.getJSON(t, "/v1/ledger?limit=1000&log="+tamperLog, &page)
	first := map[string]uint64{}
	for _, e := range page.Entries {
		if want := map[string]string{"received": "unsigned"}[e.Kind]; e.Signature != want {
			t.Fatalf("%s entry %d records signature %q, want %q", e.Kind, e.Seq, e.Signature, want)
		}
		if _, ok := first[e.ID]; !ok {
			first[e.ID] = e.Seq
		}
	}
	return first
}

// verifyLedger runs auditbus verify against the daemon.
func verifyLedger(t *testing.T, p *serveProc, pub, state string) (string, int) {
	t.Helper()
	out, errOut, code := runCLI(t, "", "verify", "--url", p.base, "--token", mintToken(t, "audit:read"),
		"--public-key", pub, "--state", state, "--log", tamperLog)
	return out + errOut, code
}

// tamperCase changes the store with the daemon stopped and says which
// seq verify must name and what it must say failed.
type tamperCase struct {
	name string
	do   func(t *testing.T, s ledgerStore, first map[string]uint64)
	seq  func(first map[string]uint64) uint64
	what string
}

var tamperCases = []tamperCase{
	{"untouched", func(*testing.T, ledgerStore, map[string]uint64) {}, nil, ""},
	{"event data byte", func(t *testing.T, s ledgerStore, _ map[string]uint64) {
		s.changeData(t, "ev-7")
	}, func(first map[string]uint64) uint64 { return first["ev-7"] }, "event digest"},
	{"entry signature result", func(t *testing.T, s ledgerStore, _ map[string]uint64) {
		s.update(t, "signature = 'verified: forged'", "seq = 15")
	}, func(map[string]uint64) uint64 { return 15 }, "leaf hash"},
	{"entry destination", func(t *testing.T, s ledgerStore, _ map[string]uint64) {
		s.update(t, "destination = 'elsewhere'", "seq = 27")
	}, func(map[string]uint64) uint64 { return 27 }, "leaf hash"},
	{"entry deleted", func(t *testing.T, s ledgerStore, _ map[string]uint64) {
		s.remove(t, "seq = 23")
	}, func(map[string]uint64) uint64 { return 23 }, "missing entry"},
	{"entries swapped", func(t *testing.T, s ledgerStore, _ map[string]uint64) {
		s.swap(t, 11, 30)
	}, func(map[string]uint64) uint64 { return 11 }, "leaf hash"},
	{"tail truncated", func(t *testing.T, s ledgerStore, _ map[string]uint64) {
		s.remove(t, "seq > 37")
	}, func(map[string]uint64) uint64 { return 38 }, "missing entry"},
	{"tail rewritten with a new tree", rewriteTail, func(map[string]uint64) uint64 { return 38 }, "signature"},
}

// rewriteTail changes the last three entries, recomputes the whole tree
// from the entries as an attacker with the code but not the key would,
// and stores an unsigned checkpoint of it.
func rewriteTail(t *testing.T, s ledgerStore, _ map[string]uint64) {
	s.update(t, "destination = 'elsewhere'", "seq >= 38")
	s.clearTree(t)
	st := s.open(t)
	defer st.Close()
	ctx := context.Background()
	tree := ledgertree.NewTree()
	for after := uint64(0); ; {
		ens, err := st.Entries(ctx, tamperLog, after, sinks.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(ens) == 0 {
			break
		}
		for i := range ens {
			if err := tree.Append(ledgertree.LeafHash(&ens[i])); err != nil {
				t.Fatal(err)
			}
		}
		after = ens[len(ens)-1].Seq
	}
	if err := st.AppendTree(ctx, tamperLog, tree.Take()); err != nil {
		t.Fatal(err)
	}
	n := ledgertree.Checkpoint(tamperLog, tree.Size(), tree.Root())
	if err := st.AppendCheckpoint(ctx, tamperLog, sinks.StoredCheckpoint{Size: tree.Size(), Time: time.Now(), Note: n}); err != nil {
		t.Fatal(err)
	}
}

// runTamper runs every tamper case on stores made by newStore: seed with a
// signing daemon, verify (a state is kept), stop, tamper, serve the store
// again from another instance and verify: an untouched store verifies,
// every change is caught naming the log and the seq. A changed entry in the
// log's tail also stops the daemon that writes the log at start.
func runTamper(t *testing.T, newStore func(t *testing.T) ledgerStore) {
	clearClientEnv(t)
	bin := buildBinary(t)
	keys := t.TempDir()
	priv, pub := filepath.Join(keys, "ledger.key"), filepath.Join(keys, "ledger.pub")
	if _, errOut, code := runCLI(t, "", "keygen", "--private", priv, "--public", pub, "--name", "tamper-test"); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	routes := routesFile(t)
	signers := signersFile(t)
	for _, tc := range tamperCases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			s := newStore(t)
			env := append(s.env(), "AUDITBUS_ROUTES="+routes, "AUDITBUS_LEDGER_SIGNING_KEY_FILE="+priv, "AUDITBUS_SIGNERS_FILE="+signers)
			p, errOut := serve(t, bin, append(env, "AUDITBUS_LEDGER_LOG="+tamperLog))
			if p == nil {
				t.Fatalf("auditbus serve exited at start:\n%s", errOut)
			}
			first := seedLedger(t, p)
			state := filepath.Join(t.TempDir(), "state.json")
			if out, code := verifyLedger(t, p, pub, state); code != 0 {
				t.Fatalf("verify before tampering: exit %d:\n%s", code, out)
			}
			p.stop(t)
			tc.do(t, s, first)
			if tc.seq != nil && tc.name == "entry destination" {
				if q, errOut := serve(t, bin, append(env, "AUDITBUS_LEDGER_LOG="+tamperLog)); q != nil ||
					!strings.Contains(errOut, `log "tamper"`) || !strings.Contains(errOut, "seq 27") {
					t.Errorf("the daemon writing the changed log started, or did not name log and seq:\n%s", errOut)
				}
			}
			p, errOut = serve(t, bin, append(env, "AUDITBUS_LEDGER_LOG=verifier-view"))
			if p == nil {
				t.Fatalf("auditbus serve of another log exited at start:\n%s", errOut)
			}
			out, code := verifyLedger(t, p, pub, state)
			if tc.seq == nil {
				if code != 0 || !strings.Contains(out, fmt.Sprintf(`log "tamper": %d entries verified`, 2*tamperEvents)) {
					t.Fatalf("untouched store: exit %d:\n%s", code, out)
				}
				// The checkpoints it verified can be kept outside the store.
				export := filepath.Join(t.TempDir(), "checkpoints.jsonl")
				if _, errOut, code := runCLI(t, "", "verify", "--url", p.base, "--token", mintToken(t, "audit:read"),
					"--public-key", pub, "--checkpoints", export); code != 0 {
					t.Fatalf("verify --checkpoints: exit %d: %s", code, errOut)
				}
				b, _ := os.ReadFile(export)
				if !strings.Contains(string(b), `{"log":"tamper","size":40,"note":"tamper\n40\n`) || !strings.Contains(string(b), "— tamper-test ") {
					t.Errorf("exported checkpoints: %s", b)
				}
				return
			}
			want := fmt.Sprintf(`FAIL log "tamper" seq %d: %s`, tc.seq(first), tc.what)
			if code != 1 || !strings.Contains(out, want) {
				t.Fatalf("verify after tampering: exit %d, want 1 and %q:\n%s", code, want, out)
			}
		})
	}
}

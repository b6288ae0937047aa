// Command bench-verify measures auditbus verify over a large log: it fills
// a fresh SQLite store with -entries ledger entries (events of 4 entries
// each: received and 3 deliveries, as a route to 3 destinations records
// them), builds the log's tree and a signed checkpoint as the daemon
// does, serves the store with `auditbus serve` (the binary given by -bin)
// and times `auditbus verify` of the whole log against the public key.
// It prints the time of each step and ends with "verify: N entries/s".
//
// Usage:
//
//	go build -o /tmp/auditbus ./cmd/auditbus
//	go run ./cmd/bench-verify -bin /tmp/auditbus [-entries 1000000]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
	"golang.org/x/mod/sumdb/note"
)

const logName = "bench-verify"

func main() {
	bin := flag.String("bin", "", "the auditbus binary (required)")
	entries := flag.Int("entries", 1_000_000, "entries in the log (a multiple of 4)")
	flag.Parse()
	if err := run(*bin, *entries); err != nil {
		fmt.Fprintln(os.Stderr, "bench-verify:", err)
		os.Exit(1)
	}
}

func run(bin string, n int) error {
	if bin == "" || n < 4 {
		return errors.New("give -bin and -entries of at least 4")
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("bench-verify: %d entries (%d events of 256 bytes, 4 entries each) in SQLite; GOMAXPROCS=%d %s/%s %s\n",
		n, n/4, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())

	start := time.Now()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "data"), sqlite.Options{Log: logName, Synchronous: "NORMAL"})
	if err != nil {
		return err
	}
	if err := fill(ctx, store, n/4); err != nil {
		return err
	}
	fmt.Printf("filled the store: %.1fs\n", time.Since(start).Seconds())

	skey, vkey, err := ledgertree.GenerateKey("bench-verify")
	if err != nil {
		return err
	}
	priv, pub := filepath.Join(dir, "ledger.key"), filepath.Join(dir, "ledger.pub")
	if err := os.WriteFile(priv, []byte(skey+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o644); err != nil {
		return err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return err
	}
	start = time.Now()
	b, err := ledgertree.StartBuilder(ctx, ledgertree.BuilderOptions{Store: store, Log: logName, Signer: signer})
	if err != nil {
		return err
	}
	if err := b.Close(ctx); err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Printf("built the tree and signed a checkpoint: %.1fs (%.0f entries/s, the daemon's builder reading them back)\n", took.Seconds(), float64(b.Size())/took.Seconds())
	if err := store.Close(); err != nil {
		return err
	}

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	serve := exec.Command(bin, "serve")
	serve.Env = append(os.Environ(), "AUDITBUS_LISTEN="+addr, "AUDITBUS_DATA_DIR="+filepath.Join(dir, "data"),
		"AUDITBUS_LEDGER_LOG="+logName, "AUDITBUS_LEDGER_SIGNING_KEY_FILE="+priv, "AUDITBUS_LOG_LEVEL=error")
	var serveErr bytes.Buffer
	serve.Stderr = &serveErr
	if err := serve.Start(); err != nil {
		return err
	}
	defer func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		_ = serve.Wait()
	}()
	base := "http://" + addr
	if err := waitReady(base); err != nil {
		return fmt.Errorf("%w\n%s", err, serveErr.String())
	}

	start = time.Now()
	verify := exec.Command(bin, "verify", "--url", base, "--public-key", pub, "--log", logName, "--timeout", "5m")
	out, err := verify.CombinedOutput()
	took = time.Since(start)
	if err != nil {
		return fmt.Errorf("auditbus verify: %w\n%s", err, out)
	}
	fmt.Print(string(out))
	if !strings.Contains(string(out), fmt.Sprintf("%d entries verified", n/4*4)) {
		return fmt.Errorf("auditbus verify did not verify %d entries", n)
	}
	fmt.Printf("verify: %.1fs\n", took.Seconds())
	fmt.Printf("verify: %.0f entries/s\n", float64(n/4*4)/took.Seconds())
	return nil
}

// fill appends events of 4 entries each, 1,000 records an Append.
func fill(ctx context.Context, store *sqlite.Store, events int) error {
	data := bytes.Repeat([]byte("a"), 256)
	at := time.Now().UTC()
	recs := make([]sinks.Record, 0, 1000)
	for i := range events {
		e := event.New()
		e.SetID(fmt.Sprintf("bench-%08d", i))
		e.SetSource("/bench/verify")
		e.SetType("com.example.bench")
		e.SetTime(at.Add(time.Duration(i) * time.Microsecond))
		_ = e.SetData("application/octet-stream", data)
		recs = append(recs, sinks.Record{Event: e, Entries: []sinks.Entry{
			{Kind: sinks.KindReceived, Time: at, Transport: "mem", Topic: "in", Partition: i % 8, Offset: int64(i), Principal: "mem:in", Route: "bench"},
			{Kind: sinks.KindDelivered, Time: at, Route: "bench", Destination: "mem:d1", Attempts: 1},
			{Kind: sinks.KindDelivered, Time: at, Route: "bench", Destination: "mem:d2", Attempts: 1},
			{Kind: sinks.KindDelivered, Time: at, Route: "bench", Destination: "mem:d3", Attempts: 1},
		}})
		if len(recs) == cap(recs) || i == events-1 {
			if _, err := store.Append(ctx, recs); err != nil {
				return err
			}
			recs = recs[:0]
		}
	}
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls GET /readyz for up to a minute.
func waitReady(base string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("auditbus serve was not ready within a minute")
}

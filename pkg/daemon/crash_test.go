package daemon_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kfake"
)

// buildAuditbus builds the auditbus binary into a temporary directory.
func buildAuditbus(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "auditbus")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/auditbus/auditbus/cmd/auditbus")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build ./cmd/auditbus: %v", err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// counter counts deliveries per id.
type counter struct {
	mu   sync.Mutex
	seen map[string]int
	all  int
}

func (c *counter) add(id string) {
	c.mu.Lock()
	if c.seen == nil {
		c.seen = map[string]int{}
	}
	c.seen[id]++
	c.all++
	c.mu.Unlock()
}

func (c *counter) counts() (distinct, all int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen), c.all
}

// daemonProc is one run of `auditbus serve`.
type daemonProc struct {
	cmd  *exec.Cmd
	done chan error
}

func startDaemon(t *testing.T, bin string, env []string, addr string, logs io.Writer) *daemonProc {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("auditbus serve exited before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("auditbus serve not healthy after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCrashLosesNothing runs the daemon as a separate process routing a
// Kafka topic (kfake, in this test's process) to a webhook and another
// Kafka topic, kills it with SIGKILL while thousands of events are in
// flight, restarts it, and checks that no event is missing from either
// destination and that the ledger has each event's reception and its
// outcome at each destination, once: the messages Kafka delivers again
// after the restart add no entry.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon; skipped with -short")
	}
	const n = 20000
	bin := buildAuditbus(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()

	var hooked counter
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hooked.add(r.Header.Get("ce-id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)

	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routes, []byte(fmt.Sprintf(`
routes:
  - name: crash
    source: {transport: kafka, topic: crash-in, group: crash}
    destinations:
      - {name: hook, webhook: {url: %q}}
      - {name: copy, transport: kafka, topic: crash-out}
    dead_letter: {transport: kafka, topic: crash-dlq}
`, hook.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	env := []string{
		"AUDITBUS_LISTEN=" + addr, "AUDITBUS_DATA_DIR=" + filepath.Join(dir, "data"), "AUDITBUS_ROUTES=" + routes,
		"AUDITBUS_TRANSPORTS=kafka", "AUDITBUS_KAFKA_BROKERS=" + brokers[0], "AUDITBUS_KAFKA_SESSION_TIMEOUT=6s",
		"AUDITBUS_KAFKA_HEARTBEAT_INTERVAL=200ms", "AUDITBUS_KAFKA_REBALANCE_TIMEOUT=3s", "AUDITBUS_KAFKA_LINGER=1ms",
		"AUDITBUS_KAFKA_PARTITIONS=4", "AUDITBUS_LOG_LEVEL=warn",
	}
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", logs.String())
		}
	})

	// A reader of the Kafka destination, in this process.
	kcfg := kafka.Config{
		Brokers: brokers, Partitions: 4, AutoCreateTopics: true, Linger: time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 2 * time.Second,
		FetchMaxWait: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	kt, err := kafka.New(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kt.Close() })
	var copied counter
	sub, err := kt.Subscribe(context.Background(), "crash-out", "check", func(_ context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			copied.add(m.Event.ID())
		}
		return nil
	}, bus.SubscribeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })

	d := startDaemon(t, bin, env, addr, logs)

	// Publish everything; the daemon works through it while we kill it.
	events := make([]bus.Event, n)
	for i := range events {
		e := event.New()
		e.SetID(fmt.Sprintf("crash-%05d", i))
		e.SetSource("/crash/test")
		e.SetType("com.example.crash")
		e.SetExtension(bus.ExtPartitionKey, fmt.Sprintf("k%d", i%50))
		_ = e.SetData("application/json", []byte(fmt.Sprintf(`{"i":%d}`, i)))
		events[i] = e
	}
	for lo := 0; lo < n; lo += 1000 {
		if err := kt.Publish(context.Background(), "crash-in", events[lo:lo+1000]); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the daemon has delivered some events", 60*time.Second, func() bool {
		got, _ := hooked.counts()
		return got >= 3000
	})
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
	atKill, _ := hooked.counts()
	if atKill >= n {
		t.Fatalf("the daemon delivered all %d events before the kill; nothing was in flight", n)
	}
	t.Logf("SIGKILL with %d of %d events delivered to the webhook", atKill, n)

	d = startDaemon(t, bin, env, addr, logs)
	waitUntil(t, "both destinations have every event", 3*time.Minute, func() bool {
		h, _ := hooked.counts()
		c, _ := copied.counts()
		return h >= n && c >= n
	})
	// A lower bound: the last batches may still be audited after this.
	duplicates := scrape(t, "http://"+addr+"/metrics", "auditbus_audit_duplicate_entries_total")
	// A clean stop drains and flushes; then the store is ours to read.
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-d.done; err != nil {
		t.Fatalf("auditbus serve after SIGTERM: %v", err)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "data"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	versions, entries := checkCrashLedger(t, store, n)
	hd, ha := hooked.counts()
	cd, ca := copied.counts()
	t.Logf("after restart: webhook %d distinct (%d duplicates), kafka copy %d distinct (%d duplicates), audit store %d versions with %d entries "+
		"(0 missing, none twice; the restarted daemon counted at least %v duplicate entries)",
		hd, ha-hd, cd, ca-cd, versions, entries, duplicates)
}

// checkCrashLedger wants the store to hold, for each of the n events
// published (ids crash-00000 on), exactly one version, received once from
// Kafka and delivered once to each destination, every entry stored once
// and the logs without holes. It returns the numbers of versions and
// entries.
func checkCrashLedger(t *testing.T, store sinks.Store, n int) (versions, entries int) {
	t.Helper()
	ctx := context.Background()
	keys := map[[16]byte]bool{}
	seen := make(map[string]int, n)
	err := sinks.PageAll(ctx, store, sinks.Query{Route: "crash", Limit: sinks.MaxLimit}, func(items []sinks.Item) error {
		for _, it := range items {
			versions++
			seen[it.Event.ID()]++
			hops := map[string]int{}
			for _, e := range it.Trail {
				entries++
				if keys[e.Key()] {
					t.Errorf("%s: entry %s stored twice", it.Event.ID(), e.Kind)
				}
				keys[e.Key()] = true
				if e.Transport != "kafka" || e.Topic != "crash-in" || e.Route != "crash" {
					t.Errorf("%s: entry %+v is not of the route's Kafka message", it.Event.ID(), e)
				}
				switch e.Kind {
				case sinks.KindReceived:
					hops["received"]++
				case sinks.KindDelivered, sinks.KindDeadLettered:
					hops[e.Destination]++
				}
			}
			if len(hops) != 3 || hops["received"] != 1 || hops["hook"] != 1 || hops["copy"] != 1 {
				t.Fatalf("%s: hops %v, want it received once and one outcome for each of hook and copy", it.Event.ID(), hops)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, extra []string
	for i := range n {
		id := fmt.Sprintf("crash-%05d", i)
		if seen[id] != 1 {
			missing = append(missing, fmt.Sprintf("%s (%d versions)", id, seen[id]))
		}
		delete(seen, id)
	}
	for id := range seen {
		extra = append(extra, id)
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("audit store: %d events published have not exactly one version of the route: %v; versions of events never published: %v",
			len(missing), missing[:min(len(missing), 20)], extra[:min(len(extra), 20)])
	}
	logs, err := store.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var size uint64
	for _, l := range logs {
		size += l.Size
	}
	if size != uint64(entries) {
		t.Errorf("logs %+v hold %d positions for %d entries", logs, size, entries)
	}
	return versions, entries
}

// scrape reads an unlabelled series from a Prometheus text endpoint.
func scrape(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no %s", url, name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer collects the daemon's logs from two processes' pipes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

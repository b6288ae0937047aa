package daemon_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kfake"
)

// chaosFull runs the full fault scenarios (make chaos); without it
// TestChaos runs the short version that make test includes.
var chaosFull = flag.Bool("chaos.full", false, "run the full chaos suite (more events, more kills)")

// chaosResult is one scenario's line.
type chaosResult struct {
	name                                string
	events, delivered, lost, duplicated int
	auditMissing                        int
	maxRSSMB                            int
	recovery                            time.Duration
}

func (r chaosResult) String() string {
	return fmt.Sprintf("scenario: %s events: %d delivered: %d lost: %d duplicated: %d audit-missing: %d max-rss-mb: %d recovery-s: %.1f",
		r.name, r.events, r.delivered, r.lost, r.duplicated, r.auditMissing, r.maxRSSMB, r.recovery.Seconds())
}

// TestChaos injects faults into real daemons (separate processes) routing
// a Kafka topic (kfake, in this process) to a webhook and another Kafka
// topic, and counts, by event id, what reached each destination and what
// the audit ledger holds. A lost event or one missing from the ledger
// fails it; duplicates are counted (delivery is at least once).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs daemons; skipped with -short")
	}
	bin := buildAuditbus(t)
	var (
		mu      sync.Mutex
		results []chaosResult
	)
	// record fails the scenario's own test, so that its rig prints the
	// daemons' logs.
	record := func(t *testing.T, r chaosResult) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
		fmt.Println(r)
		if r.lost > 0 || r.auditMissing > 0 {
			t.Errorf("%s: %d events lost, %d missing from the audit ledger", r.name, r.lost, r.auditMissing)
		}
	}
	kills, n := 3, 5000
	if *chaosFull {
		kills, n = 10, 50000
	}
	t.Run("kill-loop", func(t *testing.T) { record(t, chaosKillLoop(t, bin, n, kills)) })
	t.Run("replica-killed", func(t *testing.T) { record(t, chaosReplicaKilled(t, bin, n)) })
	slow, down := 2*time.Second, 5*time.Second
	if *chaosFull {
		slow, down = 5*time.Second, 30*time.Second
	}
	t.Run("webhook-slow-then-down", func(t *testing.T) { record(t, chaosWebhookSlowThenDown(t, bin, n, slow, down)) })
	brokerDown, storeDown := 2*time.Second, 10*time.Second
	if *chaosFull {
		brokerDown, storeDown = 10*time.Second, 60*time.Second
	}
	t.Run("rabbitmq-restart", func(t *testing.T) { record(t, chaosRabbitMQRestart(t, bin, n, brokerDown)) })
	t.Run("kafka-broker-restart", func(t *testing.T) { record(t, chaosKafkaRestart(t, bin, n, brokerDown)) })
	t.Run("clickhouse-down", func(t *testing.T) { record(t, chaosClickHouseDown(t, bin, n, storeDown)) })
	lost, missing := 0, 0
	for _, r := range results {
		lost += r.lost
		missing += r.auditMissing
	}
	fmt.Printf("chaos: %d scenarios, lost: %d, audit-missing: %d\n", len(results), lost, missing)
}

// chaosRig is what every scenario shares: the broker (a kfake cluster, or
// the RabbitMQ node of rigConfig.amqpURL), the webhook and the reader of
// the destinations, the routes file.
type chaosRig struct {
	cfg            rigConfig
	dead           counter      // events on the dead-letter topic
	hookMode       atomic.Int32 // hookUp, hookSlow or hookDown
	cluster        *kfake.Cluster
	kfakeOpts      []kfake.Opt
	brokers        []string
	tr             bus.Transport // publishes the events, reads the destinations
	hooked, copied counter
	gate           hookGate // holds the webhook for a fault (see holdAfter)
	routes, dir    string
	events         []bus.Event
	logs           *lockedBuffer
}

// rigConfig chooses the rig's broker and the daemons' audit store.
type rigConfig struct {
	// amqpURL, if set, is the RabbitMQ node the route reads from and
	// writes to; otherwise it is a kfake cluster.
	amqpURL string
	// kafkaPersist keeps the kfake cluster's state in a directory and its
	// listener on a fixed port, so that restartBroker can close it and
	// start it again with every message and committed offset.
	kafkaPersist bool
	// storeEnv, if set, are the daemons' audit store variables; the
	// default is SQLite in each daemon's data directory.
	storeEnv []string
}

func newChaosRig(t *testing.T, n int) *chaosRig { return newChaosRigWith(t, n, rigConfig{}) }

func newChaosRigWith(t *testing.T, n int, cfg rigConfig) *chaosRig {
	t.Helper()
	r := &chaosRig{cfg: cfg, dir: t.TempDir(), logs: &lockedBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", r.logs.String())
		}
	})
	if cfg.amqpURL == "" {
		r.kfakeOpts = []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4)}
		if cfg.kafkaPersist {
			port, _ := strconv.Atoi(freeAddr(t)[len("127.0.0.1:"):])
			r.kfakeOpts = append(r.kfakeOpts, kfake.DataDir(filepath.Join(r.dir, "kafka")), kfake.Ports(port))
		}
		r.startBroker(t)
		t.Cleanup(func() { r.cluster.Close() })
		r.brokers = r.cluster.ListenAddrs()
	}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		switch r.hookMode.Load() {
		case hookSlow:
			time.Sleep(slowCall)
		case hookDown:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if g := r.gate.held(&r.hooked); g != nil {
			<-g
		}
		r.hooked.add(req.Header.Get("ce-id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	t.Cleanup(r.gate.release) // before hook.Close, which waits for held calls
	r.routes = filepath.Join(r.dir, "routes.yaml")
	if err := os.WriteFile(r.routes, []byte(fmt.Sprintf(`
routes:
  - name: chaos
    source: {transport: %[2]s, topic: chaos-in, group: chaos}
    destinations:
      - {name: hook, webhook: {url: %[1]q}}
      - {name: copy, transport: %[2]s, topic: chaos-out}
    dead_letter: {transport: %[2]s, topic: chaos-dlq}
    circuit_breaker: {failures: 5, open_for: 5s}
`, hook.URL, r.transport())), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if cfg.amqpURL != "" {
		r.tr, err = amqp.New(amqp.Config{URL: cfg.amqpURL, ReconnectBackoff: 100 * time.Millisecond, MaxReconnectBackoff: time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	} else {
		r.tr, err = kafka.New(kafka.Config{
			Brokers: r.brokers, Partitions: 4, AutoCreateTopics: true, Linger: time.Millisecond,
			HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 2 * time.Second,
			FetchMaxWait: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.tr.Close() })
	for topic, c := range map[string]*counter{"chaos-out": &r.copied, "chaos-dlq": &r.dead} {
		sub, err := r.tr.Subscribe(context.Background(), topic, "check", func(_ context.Context, msgs []bus.Message) error {
			for _, m := range msgs {
				c.add(m.Event.ID())
			}
			return nil
		}, bus.SubscribeConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Close() })
	}
	r.events = make([]bus.Event, n)
	for i := range r.events {
		e := event.New()
		e.SetID(fmt.Sprintf("chaos-%06d", i))
		e.SetSource("/chaos/test")
		e.SetType("com.example.chaos")
		e.SetExtension(bus.ExtPartitionKey, fmt.Sprintf("k%d", i%50))
		_ = e.SetData("application/json", []byte(fmt.Sprintf(`{"seq":%d}`, i)))
		r.events[i] = e
	}
	return r
}

// transport is the route's transport, kafka or amqp.
func (r *chaosRig) transport() string {
	if r.cfg.amqpURL != "" {
		return "amqp"
	}
	return "kafka"
}

// startBroker starts the kfake cluster, from its directory when it
// persists.
func (r *chaosRig) startBroker(t *testing.T) {
	t.Helper()
	c, err := kfake.NewCluster(r.kfakeOpts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	r.cluster = c
}

// The webhook's modes; a slow call takes slowCall.
const (
	hookUp int32 = iota
	hookSlow
	hookDown
	slowCall = 5 * time.Second
)

// env is a daemon's environment: its own address, data directory and log.
func (r *chaosRig) env(addr, name string) []string {
	env := []string{
		"AUDITBUS_LISTEN=" + addr, "AUDITBUS_DATA_DIR=" + filepath.Join(r.dir, "data-"+name), "AUDITBUS_ROUTES=" + r.routes,
		"AUDITBUS_LEDGER_LOG=" + name, "AUDITBUS_LOG_LEVEL=warn", "AUDITBUS_TRANSPORTS=" + r.transport(),
	}
	if r.cfg.amqpURL != "" {
		env = append(env, "AUDITBUS_AMQP_URL="+r.cfg.amqpURL)
	} else {
		env = append(env, "AUDITBUS_KAFKA_BROKERS="+r.brokers[0], "AUDITBUS_KAFKA_SESSION_TIMEOUT=6s",
			"AUDITBUS_KAFKA_HEARTBEAT_INTERVAL=200ms", "AUDITBUS_KAFKA_REBALANCE_TIMEOUT=3s", "AUDITBUS_KAFKA_LINGER=1ms",
			"AUDITBUS_KAFKA_PARTITIONS=4")
	}
	return append(env, r.cfg.storeEnv...)
}

// publish puts the events on the source topic, a thousand at a time,
// from a goroutine, so that faults land while events still arrive. A
// batch the broker refuses (it is being restarted) is published again, as
// a producer would, for up to five minutes: the events of a failed
// Publish may have been taken, so this may duplicate but never lose.
func (r *chaosRig) publish(t *testing.T) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for lo := 0; lo < len(r.events); lo += 1000 {
			batch := r.events[lo:min(lo+1000, len(r.events))]
			for deadline := time.Now().Add(5 * time.Minute); ; {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := r.tr.Publish(ctx, "chaos-in", batch)
				cancel()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("publish: %v", err)
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	return done
}

// waitDelivered waits until both destinations have every event and
// returns when that happened.
func (r *chaosRig) waitDelivered(t *testing.T, limit time.Duration) {
	t.Helper()
	n := len(r.events)
	waitUntil(t, "both destinations to have every event (or the dead-letter topic)", limit, func() bool {
		c, _ := r.copied.counts()
		return r.reachedHook() >= n && c >= n
	})
}

// reachedHook is how many events reached the webhook or, failing it, the
// dead-letter topic.
func (r *chaosRig) reachedHook() int {
	r.hooked.mu.Lock()
	defer r.hooked.mu.Unlock()
	r.dead.mu.Lock()
	defer r.dead.mu.Unlock()
	n := len(r.hooked.seen)
	for id := range r.dead.seen {
		if r.hooked.seen[id] == 0 {
			n++
		}
	}
	return n
}

// result counts the destinations and the ledgers of the given stores (one
// per daemon that wrote one, or one they share) by event id.
func (r *chaosRig) result(t *testing.T, name string, stores []storeOpener, rss int, recovery time.Duration) chaosResult {
	t.Helper()
	n := len(r.events)
	hd, ha := r.hooked.counts()
	cd, ca := r.copied.counts()
	reached := min(r.reachedHook(), cd)
	res := chaosResult{name: name, events: n, delivered: reached, lost: n - reached, duplicated: ha - hd + ca - cd,
		maxRSSMB: rss, recovery: recovery}
	// Every event's reception and its outcome at each destination, in any
	// of the daemons' ledgers.
	hops := make(map[string]map[string]bool, n)
	for _, open := range stores {
		store, err := open()
		if err != nil {
			t.Fatal(err)
		}
		err = sinks.PageAll(context.Background(), store, sinks.Query{Route: "chaos", Limit: sinks.MaxLimit}, func(items []sinks.Item) error {
			for _, it := range items {
				h := hops[it.Event.ID()]
				if h == nil {
					h = map[string]bool{}
					hops[it.Event.ID()] = h
				}
				for _, e := range it.Trail {
					switch e.Kind {
					case sinks.KindReceived:
						h["received"] = true
					case sinks.KindDelivered, sinks.KindDeadLettered:
						h[e.Destination] = true
					}
				}
			}
			return nil
		})
		_ = store.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range r.events {
		if h := hops[e.ID()]; !h["received"] || !h["hook"] || !h["copy"] {
			res.auditMissing++
			if res.auditMissing <= 10 {
				// Name the event and the hops its ledger has, so that a
				// miss can be followed up in the daemon's logs.
				t.Logf("%s: event %q lacks ledger entries: received %v, hook %v, copy %v", name, e.ID(), h["received"], h["hook"], h["copy"])
			}
		}
	}
	return res
}

// storeOpener opens an audit store the scenario's daemons wrote.
type storeOpener func() (sinks.Store, error)

// sqliteStores are the SQLite stores of the rig's daemons called names.
func (r *chaosRig) sqliteStores(names ...string) []storeOpener {
	var out []storeOpener
	for _, name := range names {
		dir := filepath.Join(r.dir, "data-"+name)
		out = append(out, func() (sinks.Store, error) { return sqlite.Open(context.Background(), dir, sqlite.Options{}) })
	}
	return out
}

// peakRSSMB is a process's peak resident set (VmHWM) in MiB, 0 when it
// cannot be read.
func peakRSSMB(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return kb / 1024
		}
	}
	return 0
}

// stop stops d with SIGTERM (it drains and flushes) and wants a clean exit.
func stop(t *testing.T, d *daemonProc) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-d.done; err != nil {
		t.Fatalf("auditbus serve after SIGTERM: %v", err)
	}
}

// chaosKillLoop SIGKILLs the daemon kills times in a row, each at a
// random moment after it delivered something more, restarting it each
// time, while the events are published.
func chaosKillLoop(t *testing.T, bin string, n, kills int) chaosResult {
	r := newChaosRig(t, n)
	addr := freeAddr(t)
	env := r.env(addr, "a")
	d := startDaemon(t, bin, env, addr, r.logs)
	published := r.publish(t)
	rss := 0
	for k := range kills {
		before, _ := r.hooked.counts()
		// Some progress, then a random pause of up to half a second.
		waitUntil(t, fmt.Sprintf("progress before kill %d", k+1), time.Minute, func() bool {
			h, _ := r.hooked.counts()
			return h > before || h >= n
		})
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		rss = max(rss, peakRSSMB(d.cmd.Process.Pid))
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-d.done
		d = startDaemon(t, bin, env, addr, r.logs)
	}
	killed := time.Now()
	<-published
	r.waitDelivered(t, 5*time.Minute)
	recovery := time.Since(killed)
	rss = max(rss, peakRSSMB(d.cmd.Process.Pid))
	stop(t, d)
	return r.result(t, fmt.Sprintf("kill-loop-%d", kills), r.sqliteStores("a"), rss, recovery)
}

// chaosReplicaKilled runs two daemons in one Kafka consumer group, each
// with its own ledger log and store, SIGKILLs one mid-stream and leaves
// it dead: the other must take over its partitions.
func chaosReplicaKilled(t *testing.T, bin string, n int) chaosResult {
	r := newChaosRig(t, n)
	addrA, addrB := freeAddr(t), freeAddr(t)
	a := startDaemon(t, bin, r.env(addrA, "a"), addrA, r.logs)
	b := startDaemon(t, bin, r.env(addrB, "b"), addrB, r.logs)
	published := r.publish(t)
	waitUntil(t, "both replicas deliver", time.Minute, func() bool {
		h, _ := r.hooked.counts()
		return h >= n/10
	})
	rss := max(peakRSSMB(a.cmd.Process.Pid), peakRSSMB(b.cmd.Process.Pid))
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	killed := time.Now()
	<-published
	r.waitDelivered(t, 5*time.Minute)
	recovery := time.Since(killed)
	rss = max(rss, peakRSSMB(b.cmd.Process.Pid))
	stop(t, b)
	return r.result(t, "replica-killed", r.sqliteStores("a", "b"), rss, recovery)
}

// chaosWebhookSlowThenDown makes the webhook destination take 5 s per call
// for slow, then answer 503 for down, then recover, while the events are
// published: the route's circuit breaker opens, events wait or are
// dead-lettered as the route's retry policy says, and the daemon's memory
// stays bounded.
func chaosWebhookSlowThenDown(t *testing.T, bin string, n int, slow, down time.Duration) chaosResult {
	r := newChaosRig(t, n)
	addr := freeAddr(t)
	d := startDaemon(t, bin, r.env(addr, "a"), addr, r.logs)
	published := r.publish(t)
	r.hookMode.Store(hookSlow)
	time.Sleep(slow)
	r.hookMode.Store(hookDown)
	rss := peakRSSMB(d.cmd.Process.Pid)
	time.Sleep(down)
	rss = max(rss, peakRSSMB(d.cmd.Process.Pid))
	r.hookMode.Store(hookUp)
	recovered := time.Now()
	<-published
	r.waitDelivered(t, 5*time.Minute)
	recovery := time.Since(recovered)
	rss = max(rss, peakRSSMB(d.cmd.Process.Pid))
	opened := breakerTrips(t, "http://"+addr+"/metrics", "hook")
	stop(t, d)
	res := r.result(t, "webhook-slow-then-down", r.sqliteStores("a"), rss, recovery)
	dd, _ := r.dead.counts()
	t.Logf("breaker opened %v times; %d events dead-lettered", opened, dd)
	return res
}

// breakerTrips reads how often the circuit breaker of the chaos route's
// destination opened, from the daemon's metrics.
func breakerTrips(t *testing.T, url, destination string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "auditbus_destination_circuit_trips_total{") && strings.Contains(line, `destination="`+destination+`"`) {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			return v
		}
	}
	return 0
}

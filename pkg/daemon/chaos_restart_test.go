package daemon_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/deploy/testservices"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
)

// The chaos scenarios that restart what the daemon depends on: the broker
// it reads from and writes to, and its audit store. RabbitMQ and ClickHouse
// are private instances (deploy/testservices), never the shared ones.

// hookGate holds the webhook's calls once it has seen a number of
// distinct events, until released, so that a fault injected meanwhile
// surely finds a batch in flight, whatever the machine's speed.
type hookGate struct {
	mu sync.Mutex
	at int           // distinct events that close the gate
	ch chan struct{} // nil: nothing held
}

// held returns the channel a webhook call waits on, or nil when the gate
// is open or seen has not reached its mark.
func (g *hookGate) held(seen *counter) <-chan struct{} {
	g.mu.Lock()
	ch, at := g.ch, g.at
	g.mu.Unlock()
	if ch == nil {
		return nil
	}
	if d, _ := seen.counts(); d < at {
		return nil
	}
	return ch
}

// release lets the held calls go on; the gate stays open.
func (g *hookGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
}

// holdAfter closes the webhook's gate once it has seen more distinct
// events than it has now (none held if that is every event), and returns
// that mark for waitHeld.
func (r *chaosRig) holdAfter(more int) int {
	d, _ := r.hooked.counts()
	at := min(d+more, len(r.events))
	r.gate.release()
	if at < len(r.events) {
		r.gate.mu.Lock()
		r.gate.at, r.gate.ch = at, make(chan struct{})
		r.gate.mu.Unlock()
	}
	return at
}

// waitHeld waits until the webhook has seen at distinct events.
func (r *chaosRig) waitHeld(t *testing.T, what string, at int) {
	t.Helper()
	waitUntil(t, what, 5*time.Minute, func() bool {
		h, _ := r.hooked.counts()
		return h >= at
	})
}

// waitProgress waits until the webhook has seen more events than it had,
// or all of them.
func (r *chaosRig) waitProgress(t *testing.T, what string, more int) {
	t.Helper()
	before, _ := r.hooked.counts()
	n := len(r.events)
	waitUntil(t, what, 5*time.Minute, func() bool {
		h, _ := r.hooked.counts()
		return h >= min(before+more, n)
	})
}

// chaosRabbitMQRestart routes a queue of a private RabbitMQ node to a
// webhook and an exchange of the same node, and, while the events are
// published and routed, first stops and starts the RabbitMQ application
// (rabbitmqctl stop_app, start_app: every connection closed, the port
// closed, the Erlang node up), then stops the whole node (rabbitmqctl
// stop: the VM exits) and starts it again on the same database. Each time
// the broker stays down for down. It proves that the daemon reconnects
// its consumer and publishers by itself, that what it had not
// acknowledged comes back from the durable queue, that what the broker
// confirmed to it survives a full restart, and that nothing is
// acknowledged before it is delivered and audited.
func chaosRabbitMQRestart(t *testing.T, bin string, n int, down time.Duration) chaosResult {
	rmq := testservices.StartRabbitMQ(t)
	r := newChaosRigWith(t, n, rigConfig{amqpURL: rmq.URL()})
	addr := freeAddr(t)
	d := startDaemon(t, bin, r.env(addr, "a"), addr, r.logs)
	at := r.holdAfter(n / 10)
	published := r.publish(t)
	r.waitHeld(t, "deliveries before stop_app", at)
	r.wantInFlight(t, "stop_app")
	rmq.StopApp()
	r.gate.release()
	time.Sleep(down)
	at = r.holdAfter(n / 10) // while nothing can arrive
	rmq.StartApp()
	r.waitHeld(t, "deliveries after start_app", at)
	r.wantInFlight(t, "the node's restart")
	rmq.Stop()
	r.gate.release()
	time.Sleep(down)
	rmq.Start()
	return r.finish(t, d, published, "rabbitmq-restart")
}

// wantInFlight fails the scenario if every event already reached the
// webhook before fault: it would have hit an idle route.
func (r *chaosRig) wantInFlight(t *testing.T, fault string) {
	t.Helper()
	if h, _ := r.hooked.counts(); h >= len(r.events) {
		t.Errorf("every event was delivered before %s: the fault hit an idle route; publish more events", fault)
	}
}

// finish waits until every event is published and at both destinations,
// stops the daemon d (whose ledger is SQLite's in data-a) and counts. The
// recovery runs from the call, which comes as the fault ends.
func (r *chaosRig) finish(t *testing.T, d *daemonProc, published <-chan struct{}, name string) chaosResult {
	t.Helper()
	back := time.Now()
	<-published
	r.waitDelivered(t, 10*time.Minute)
	recovery := time.Since(back)
	rss := peakRSSMB(d.cmd.Process.Pid)
	stop(t, d)
	return r.result(t, name, r.sqliteStores("a"), rss, recovery)
}

// restartBroker closes the kfake cluster, lets the webhook's held calls
// go on, waits down, and starts it again on the same port from its data
// directory.
func (r *chaosRig) restartBroker(t *testing.T, down time.Duration) {
	t.Helper()
	r.cluster.Close()
	r.gate.release() // the calls held for the fault go on while it lasts
	time.Sleep(down)
	r.startBroker(t)
	if got := r.cluster.ListenAddrs(); len(got) != 1 || got[0] != r.brokers[0] {
		t.Fatalf("kfake restarted on %v, want %s", got, r.brokers[0])
	}
}

// chaosKafkaRestart routes a Kafka topic to a webhook and another topic
// while the broker is restarted under load: the kfake cluster, which runs
// in this process with its state in a data directory (kfake.DataDir), is
// closed (its listener shut, every connection dropped, its log, offsets
// and groups written to the directory) and, after down, a new cluster is
// started on the same port from that directory. That is a broker process
// restart with its log on disk: every message produced before it and
// every committed offset is there afterwards, and nothing else of the old
// broker is, not a connection, a fetch session or a group generation. It
// proves that the daemon's consumer and producer reconnect by themselves,
// rejoin the group, resume from the committed offsets, and commit nothing
// they have not delivered and audited.
func chaosKafkaRestart(t *testing.T, bin string, n int, down time.Duration) chaosResult {
	r := newChaosRigWith(t, n, rigConfig{kafkaPersist: true})
	addr := freeAddr(t)
	d := startDaemon(t, bin, r.env(addr, "a"), addr, r.logs)
	at := r.holdAfter(n / 5)
	published := r.publish(t)
	r.waitHeld(t, "deliveries before the broker restart", at)
	r.wantInFlight(t, "the broker's restart")
	r.restartBroker(t, down)
	return r.finish(t, d, published, "kafka-broker-restart")
}

// chaosClickHouseDown runs the daemon at full rate on a ClickHouse audit
// store (a private server) and stops the server (SIGTERM, the process
// exits) for down while events keep arriving, then starts it again on the
// same data. While it is down no batch's audit write succeeds, so no batch
// is acknowledged: the batches in hand are delivered again and again
// (duplicates, counted), intake stops at the source, and the daemon's
// memory stays where it was. It proves that intake stops rather than
// buffering, that the writer's retries resume by themselves, and that
// afterwards every event is delivered and in the store.
func chaosClickHouseDown(t *testing.T, bin string, n int, down time.Duration) chaosResult {
	ch := testservices.StartClickHouse(t)
	const db = "auditbus_chaos"
	r := newChaosRigWith(t, n, rigConfig{storeEnv: []string{
		"AUDITBUS_STORE=clickhouse", "AUDITBUS_CLICKHOUSE_ADDRS=" + ch.Addr(), "AUDITBUS_CLICKHOUSE_DATABASE=" + db,
		"AUDITBUS_CLICKHOUSE_TIMEOUT=5s", "AUDITBUS_CLICKHOUSE_DIAL_TIMEOUT=2s",
	}})
	addr := freeAddr(t)
	d := startDaemon(t, bin, r.env(addr, "a"), addr, r.logs)
	published := r.publish(t)
	r.waitProgress(t, "deliveries before ClickHouse stops", n/5)
	ch.Stop()
	atStop, _ := r.copied.counts()
	rssBefore := peakRSSMB(d.cmd.Process.Pid)
	time.Sleep(down)
	atStart, _ := r.copied.counts()
	rss := peakRSSMB(d.cmd.Process.Pid)
	ch.Start()
	back := time.Now()
	t.Logf("ClickHouse down %v: %d of the %d events left reached the Kafka destination meanwhile; peak RSS %d MiB before, %d MiB at the end of the outage",
		down, atStart-atStop, n-atStop, rssBefore, rss)
	if atStart >= n {
		t.Errorf("every event reached the destinations while the audit store was down: intake did not stop")
	}
	<-published
	r.waitDelivered(t, 10*time.Minute)
	recovery := time.Since(back)
	rss = max(rss, peakRSSMB(d.cmd.Process.Pid))
	stop(t, d)
	open := func() (sinks.Store, error) {
		return clickhouse.Open(context.Background(), clickhouse.Config{Addrs: []string{ch.Addr()}, Database: db, Log: "a"})
	}
	return r.result(t, fmt.Sprintf("clickhouse-down-%ds", int(down.Seconds())), []storeOpener{open}, rss, recovery)
}

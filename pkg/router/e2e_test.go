package router_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/deploy/testservices"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/twmb/franz-go/pkg/kfake"
)

// idSet counts deliveries per event id, so duplicates can be reported.
type idSet struct {
	mu   sync.Mutex
	seen map[string]int
	all  int
}

func newIDSet() *idSet { return &idSet{seen: map[string]int{}} }

func (s *idSet) add(id string) {
	s.mu.Lock()
	s.seen[id]++
	s.all++
	s.mu.Unlock()
}

func (s *idSet) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *idSet) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all - len(s.seen)
}

func (s *idSet) handler(_ context.Context, msgs []bus.Message) error {
	for _, m := range msgs {
		s.add(m.Event.ID())
	}
	return nil
}

// amqpURL is the shared RabbitMQ; without it the test fails under
// CI=true and is skipped otherwise.
func amqpURL(t *testing.T) string { return testservices.SharedRabbitMQ(t) }

// newKfake starts an in-process Kafka cluster (kfake) of one broker whose
// topics have partitions partitions, closed when the test ends, and
// returns it with the transport config the tests use against it: quick
// heartbeats and rebalances, short fetch waits.
func newKfake(t *testing.T, partitions int) (*kfake.Cluster, kafka.Config) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(partitions))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return cluster, kafka.Config{
		Brokers: cluster.ListenAddrs(), Partitions: partitions, AutoCreateTopics: true, Linger: time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 2 * time.Second,
		FetchMaxWait: 100 * time.Millisecond, Logger: quiet(),
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestEndToEndKafkaToAMQPWebhookMem routes 10,000 events from a Kafka topic
// (kfake) to a RabbitMQ queue, a webhook and a mem topic, and checks that
// every destination has every event and that the audit store holds each
// event exactly once.
func TestEndToEndKafkaToAMQPWebhookMem(t *testing.T) {
	const n = 10000
	url := amqpURL(t)
	_, kcfg := newKfake(t, 4)
	kt, err := kafka.New(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kt.Close() })
	at, err := amqp.New(amqp.Config{URL: url, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = at.Close() })
	mt := mem.New()
	t.Cleanup(func() { _ = mt.Close() })

	suffix := fmt.Sprint(time.Now().UnixNano())
	amqpTopic := "auditbus-e2e." + suffix
	inTopic := "e2e-in-" + suffix

	// The destinations' readers.
	viaAMQP, viaHook, viaMem := newIDSet(), newIDSet(), newIDSet()
	sub, err := at.Subscribe(context.Background(), amqpTopic, "check", viaAMQP.handler, bus.SubscribeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sub.Close()
		cleanupAMQP(url, amqpTopic, amqp.QueueName(amqpTopic, "check"))
	})
	msub, err := mt.Subscribe(context.Background(), "out", "check", viaMem.handler, bus.SubscribeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = msub.Close() })
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		viaHook.add(r.Header.Get("ce-id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)

	store, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	writer := sinks.NewWriter(store, sinks.WriterOptions{})
	t.Cleanup(func() { _ = writer.Close(); _ = store.Close() })

	routes, err := router.ParseRoutes("e2e.yaml", []byte(fmt.Sprintf(`
routes:
  - name: e2e
    source: {transport: kafka, topic: %s, group: e2e}
    destinations:
      - {name: rabbit, transport: amqp, topic: %q}
      - {name: hook, webhook: {url: %q}}
      - {name: local, transport: mem, topic: out}
    dead_letter: {transport: mem, topic: out}
`, inTopic, amqpTopic, hook.URL)))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := router.New(routes, router.Options{
		Transports: map[string]bus.Transport{"kafka": kt, "amqp": at, "mem": mt}, Audit: writer, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })

	producer, err := kafka.New(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = producer.Close() })
	events := make([]bus.Event, n)
	for i := range events {
		events[i] = newEvent(i, "com.example.e2e")
	}
	for lo := 0; lo < n; lo += 500 {
		if err := producer.Publish(context.Background(), inTopic, events[lo:lo+500]); err != nil {
			t.Fatal(err)
		}
	}

	deadline := time.Now().Add(2 * time.Minute)
	for viaAMQP.distinct() < n || viaHook.distinct() < n || viaMem.distinct() < n {
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes: rabbitmq %d, webhook %d, mem %d of %d events", viaAMQP.distinct(), viaHook.distinct(), viaMem.distinct(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h := &harness{store: store}
	// Counted by the store, not paged with trails: under -race on a busy
	// machine paging 10,000 trails takes seconds per look.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		got, err := store.CountVersions(context.Background(), sinks.Query{Route: "e2e"})
		if err != nil {
			t.Fatal(err)
		}
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes %d of %d events are audited", got, n)
		}
	}
	if got := h.count(t, sinks.Query{Route: "e2e"}); got != n {
		t.Fatalf("audit store holds %d records for the route, want exactly %d", got, n)
	}
	// Each version: received from Kafka, delivered to each destination;
	// a message Kafka delivered again adds no entry.
	entries := 0
	keys := map[[16]byte]bool{}
	err = sinks.PageAll(context.Background(), store, sinks.Query{Route: "e2e", Limit: sinks.MaxLimit}, func(items []sinks.Item) error {
		for _, it := range items {
			kinds := map[string]int{}
			for _, e := range it.Trail {
				entries++
				if keys[e.Key()] {
					t.Errorf("%s: entry %+v stored twice", it.Event.ID(), e)
				}
				keys[e.Key()] = true
				kinds[e.Kind+" "+e.Destination]++
				if e.Transport != "kafka" || e.Topic != inTopic || e.Route != "e2e" || e.Kind == sinks.KindDelivered && e.Attempts < 1 {
					t.Errorf("%s: entry %+v", it.Event.ID(), e)
				}
			}
			if kinds["received "] < 1 || kinds["delivered rabbit"] < 1 || kinds["delivered hook"] < 1 || kinds["delivered local"] < 1 {
				t.Fatalf("%s: trail %+v lacks its reception or a delivery", it.Event.ID(), it.Trail)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events: rabbitmq, webhook and mem each have all of them (duplicates %d, %d, %d); audit store: %d versions, %d entries",
		n, viaAMQP.duplicates(), viaHook.duplicates(), viaMem.duplicates(), n, entries)
}

// cleanupAMQP deletes what the test declared on the shared broker.
func cleanupAMQP(url, exchange, queue string) { testservices.DeleteRabbitMQ(url, exchange, queue) }

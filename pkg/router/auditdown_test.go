package router_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	amqp091 "github.com/rabbitmq/amqp091-go"
	kafkago "github.com/segmentio/kafka-go"
)

// The promise under test: a broker-fed route acknowledges a message to its
// source only once the message's audit record is durable. With the audit
// store down, the route may deliver (at least once) but must acknowledge
// nothing; the messages come back to the next consumer, and once the store
// is back every event is audited and at every destination.

const auditDownEvents = 200

// auditDown is one run of the promise against a broker source: publish
// puts the events on the source, unacked reports how many of them the
// source still holds for the route's group after the route stopped.
type auditDown struct {
	name      string // the transport's name in the routes file
	transport bus.Transport
	source    string // the routes file's source line
	publish   func(t *testing.T, events []bus.Event)
	unacked   func(t *testing.T) int
}

func TestAuditDownHoldsKafkaAcks(t *testing.T) {
	cluster, kcfg := newKfake(t, 4)
	kt, err := kafka.New(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kt.Close() })
	topic := fmt.Sprint("audit-down-", time.Now().UnixNano())
	runAuditDown(t, auditDown{
		name:      "kafka",
		transport: kt,
		source:    fmt.Sprintf("{transport: kafka, topic: %s, group: g}", topic),
		publish: func(t *testing.T, events []bus.Event) {
			if err := kt.Publish(context.Background(), topic, events); err != nil {
				t.Fatal(err)
			}
		},
		unacked: func(t *testing.T) int {
			// Every message not covered by the group's committed offsets.
			c := &kafkago.Client{Addr: kafkago.TCP(cluster.ListenAddrs()...)}
			parts := []int{0, 1, 2, 3}
			committed, err := c.OffsetFetch(context.Background(), &kafkago.OffsetFetchRequest{GroupID: "g", Topics: map[string][]int{topic: parts}})
			if err != nil {
				t.Fatal(err)
			}
			ends, err := c.ListOffsets(context.Background(), &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
				topic: {kafkago.LastOffsetOf(0), kafkago.LastOffsetOf(1), kafkago.LastOffsetOf(2), kafkago.LastOffsetOf(3)}}})
			if err != nil {
				t.Fatal(err)
			}
			held := 0
			for _, p := range ends.Topics[topic] {
				from := int64(0)
				for _, c := range committed.Topics[topic] {
					if c.Partition == p.Partition && c.CommittedOffset > 0 {
						from = c.CommittedOffset
					}
				}
				held += int(p.LastOffset - from)
			}
			return held
		},
	})
}

func TestAuditDownHoldsAMQPAcks(t *testing.T) {
	url := amqpURL(t)
	at, err := amqp.New(amqp.Config{URL: url, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = at.Close() })
	topic := fmt.Sprint("auditbus-test.audit-down.", time.Now().UnixNano())
	queue := amqp.QueueName(topic, "g")
	t.Cleanup(func() { cleanupAMQP(url, topic, queue) })
	runAuditDown(t, auditDown{
		name:      "amqp",
		transport: at,
		source:    fmt.Sprintf("{transport: amqp, topic: %q, group: g}", topic),
		publish: func(t *testing.T, events []bus.Event) {
			if err := at.Publish(context.Background(), topic, events); err != nil {
				t.Fatal(err)
			}
		},
		unacked: func(t *testing.T) int {
			conn, err := amqp091.Dial(url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			return q.Messages
		},
	})
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

func runAuditDown(t *testing.T, c auditDown) {
	const n = auditDownEvents
	ctx := context.Background()
	mt := mem.New()
	t.Cleanup(func() { _ = mt.Close() })
	viaMem, viaHook := newIDSet(), newIDSet()
	msub, err := mt.Subscribe(ctx, "out", "check", viaMem.handler, bus.SubscribeConfig{})
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

	store, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{BusyTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	writer := sinks.NewWriter(store, sinks.WriterOptions{Retries: 1, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	t.Cleanup(func() { _ = writer.Close(); _ = store.Close() })
	routes, err := router.ParseRoutes("routes.yaml", []byte(fmt.Sprintf(`
routes:
  - name: down
    source: %s
    destinations:
      - {name: local, transport: mem, topic: out}
      - {name: hook, webhook: {url: %q}}
    dead_letter: {transport: mem, topic: dead}
`, c.source, hook.URL)))
	if err != nil {
		t.Fatal(err)
	}
	newRouter := func() *router.Router {
		r, err := router.New(routes, router.Options{
			Transports: map[string]bus.Transport{"mem": mt, c.name: c.transport},
			Audit:      writer, Logger: quiet(),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	}

	// The store goes down: another connection holds SQLite's exclusive
	// lock, so every flush of the writer fails.
	locker, err := sql.Open("sqlite", "file:"+store.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = locker.Close() })
	lock, err := locker.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the exclusive lock", 30*time.Second, func() bool {
		_, err := lock.ExecContext(ctx, "BEGIN EXCLUSIVE")
		return err == nil
	})

	r := newRouter()
	events := make([]bus.Event, n)
	for i := range events {
		events[i] = newEvent(i, "com.example.down")
	}
	c.publish(t, events)
	// The route runs and delivers while the store is down (a batch is
	// offered again and again, so its events arrive at least once)...
	waitUntil(t, "a delivery to both destinations while the store is down", 60*time.Second, func() bool {
		return viaMem.distinct() > 0 && viaHook.distinct() > 0
	})
	// (a route that wrongly acknowledged unaudited batches would deliver
	// every event once instead, and fail the check below)
	waitUntil(t, "a batch whose audit write failed to be offered again", 60*time.Second, func() bool {
		return viaMem.duplicates() > 0 || viaMem.distinct() == n
	})
	// ...but nothing may be acknowledged: stopped, the route leaves every
	// message with its source.
	if err := r.Close(); err != nil {
		t.Logf("close with the store down: %v", err)
	}
	if got, err := store.CountVersions(ctx, sinks.Query{Route: "down"}); err == nil && got > 0 {
		t.Fatalf("%d events audited while the store was locked", got)
	}
	if held := c.unacked(t); held != n {
		t.Fatalf("with the audit store down the source holds %d of %d messages for the route; the others were acknowledged unaudited", held, n)
	}

	// The store comes back; a new consumer gets the messages again.
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	_ = lock.Close()
	r = newRouter()
	t.Cleanup(func() { _ = r.Close() })
	waitUntil(t, "every event audited after the store came back", 2*time.Minute, func() bool {
		got, err := store.CountVersions(ctx, sinks.Query{Route: "down"})
		return err == nil && got >= n
	})
	for i := range n {
		id := fmt.Sprintf("ev-%05d", i)
		items, err := store.Get(ctx, "/router/test", id)
		if err != nil || len(items) != 1 {
			t.Fatalf("%s: %d versions, %v; want one", id, len(items), err)
		}
		hops := map[string]int{}
		for _, e := range items[0].Trail {
			hops[e.Kind+" "+e.Destination]++
		}
		if hops["received "] != 1 || hops["delivered local"] != 1 || hops["delivered hook"] != 1 {
			t.Fatalf("%s: trail %v, want it received once and delivered once to local and to hook", id, hops)
		}
	}
	if viaMem.distinct() != n || viaHook.distinct() != n {
		t.Fatalf("destinations: mem %d, webhook %d of %d", viaMem.distinct(), viaHook.distinct(), n)
	}
	waitUntil(t, "the source to have nothing left for the route", time.Minute, func() bool {
		if err := r.Close(); err != nil {
			t.Logf("close: %v", err)
		}
		return c.unacked(t) == 0
	})
	t.Logf("store down: the source kept all %d messages; back up: all audited and delivered (duplicate deliveries: mem %d, webhook %d)",
		n, viaMem.duplicates(), viaHook.duplicates())
}

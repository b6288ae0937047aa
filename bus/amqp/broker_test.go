package amqp_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// defaultTestURL is the broker deploy/test-services.sh brings up.
const defaultTestURL = "amqp://guest:guest@127.0.0.1:5672/"

var (
	brokerOnce sync.Once
	brokerErr  error
)

// brokerURL returns the URL of the test broker (AUDITBUS_AMQP_TEST_URL, or
// the local one). When the broker cannot be reached the test fails under
// CI=true and is skipped otherwise.
func brokerURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("AUDITBUS_AMQP_TEST_URL")
	if url == "" {
		url = defaultTestURL
	}
	brokerOnce.Do(func() {
		conn, err := amqp091.DialConfig(url, amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
		if err != nil {
			brokerErr = err
			return
		}
		_ = conn.Close()
	})
	if brokerErr != nil {
		msg := fmt.Sprintf("RabbitMQ not reachable at %s (%v); `make test` starts one (deploy/test-services.sh up), or set AUDITBUS_AMQP_TEST_URL", url, brokerErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return url
}

// testConfig is a Config for the test broker with quiet logs.
func testConfig(t testing.TB) amqp.Config {
	return amqp.Config{
		URL:    brokerURL(t),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

var nameSeq atomic.Int64

// uniqueName is a name no other run uses, for exchanges and queues on a
// broker that keeps them between runs.
func uniqueName(kind string) string {
	return fmt.Sprintf("auditbus-test.%s.%d.%d", kind, time.Now().UnixNano(), nameSeq.Add(1))
}

// admin is a plain amqp091 channel for the test's own declarations, checks
// and clean-up.
func admin(t testing.TB) *amqp091.Channel {
	t.Helper()
	conn, err := amqp091.Dial(brokerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// cleanup deletes, at the end of the test, every exchange and group queue
// of the topics and groups recorded.
type cleanup struct {
	mu     sync.Mutex
	topics map[string]bool
	queues map[string]bool
}

func newCleanup(t testing.TB) *cleanup {
	c := &cleanup{topics: map[string]bool{}, queues: map[string]bool{}}
	url := brokerURL(t)
	t.Cleanup(func() {
		conn, err := amqp091.Dial(url)
		if err != nil {
			t.Errorf("clean-up: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("clean-up: %v", err)
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for q := range c.queues {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Errorf("clean-up: delete queue %q: %v", q, err)
				return
			}
		}
		for x := range c.topics {
			if err := ch.ExchangeDelete(x, false, false); err != nil {
				t.Errorf("clean-up: delete exchange %q: %v", x, err)
				return
			}
		}
	})
	return c
}

func (c *cleanup) topic(name string) {
	c.mu.Lock()
	c.topics[name] = true
	c.mu.Unlock()
}

func (c *cleanup) queue(name string) {
	c.mu.Lock()
	c.queues[name] = true
	c.mu.Unlock()
}

// recorder is a transport that records the topics and groups it is used
// with, so that the test deletes them afterwards.
type recorder struct {
	*amqp.Transport
	c *cleanup
}

func (r recorder) Publish(ctx context.Context, topic string, events []bus.Event) error {
	r.c.topic(topic)
	return r.Transport.Publish(ctx, topic, events)
}

func (r recorder) Subscribe(ctx context.Context, topic, group string, h bus.Handler, cfg bus.SubscribeConfig) (bus.Subscription, error) {
	r.c.topic(topic)
	r.c.queue(amqp.QueueName(topic, group))
	return r.Transport.Subscribe(ctx, topic, group, h, cfg)
}

// newTransport returns a transport on the test broker that deletes what it
// declared when the test ends, and is closed before that.
func newTransport(t testing.TB, cfg amqp.Config) recorder {
	t.Helper()
	c := newCleanup(t)
	tr, err := amqp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return recorder{Transport: tr, c: c}
}

// waitFor polls cond until it holds or a minute passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package router_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
	kafkago "github.com/segmentio/kafka-go"
)

// TestPoisonGoesToDeadLetter: a Kafka message that is not a CloudEvent,
// read by a route, lands in the route's dead letter as an
// io.auditbus.poison event carrying the raw payload and the reason, is
// audited with the outcome "poison", and the events after it still flow.
func TestPoisonGoesToDeadLetter(t *testing.T) {
	cluster, kcfg := newKfake(t, 1)
	brokers := cluster.ListenAddrs()
	var rt *router.Router
	// As the daemon wires it.
	kcfg.Poison = func(ctx context.Context, p kafka.Poison) error {
		m := p.Message
		return rt.Poison(ctx, router.Poison{Transport: "kafka", Topic: m.Topic, Group: p.Group, Partition: m.Partition,
			Offset: m.Offset, ID: fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset), Payload: m.Value, Reason: p.Reason})
	}
	kt, err := kafka.New(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kt.Close() })
	mt := mem.New()
	t.Cleanup(func() { _ = mt.Close() })
	out, dlq := collect(t, mt, "out"), collect(t, mt, "dlq")
	store, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	writer := sinks.NewWriter(store, sinks.WriterOptions{})
	t.Cleanup(func() { _ = writer.Close(); _ = store.Close() })
	routes, err := router.ParseRoutes("poison.yaml", []byte(`
routes:
  - name: p
    source: {transport: kafka, topic: mixed, group: p}
    destinations: [{transport: mem, topic: out}]
    dead_letter: {transport: mem, topic: dlq}
`))
	if err != nil {
		t.Fatal(err)
	}
	rt, err = router.New(routes, router.Options{Transports: map[string]bus.Transport{"kafka": kt, "mem": mt}, Audit: writer, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })

	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), kafkago.Message{Topic: "mixed", Value: []byte("plain text, no ce_ headers")}); err != nil {
		t.Fatal(err)
	}
	if err := kt.Publish(context.Background(), "mixed", []bus.Event{newEvent(1, "after.poison")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the poison message in the dead letter and the next event delivered", func() bool { return dlq.len() >= 1 && out.len() >= 1 })
	p := dlq.snapshot()[0]
	if p.Type() != router.PoisonType || string(p.Data()) != "plain text, no ce_ headers" || p.ID() != "mixed/0/0" {
		t.Fatalf("dead-lettered poison event: %s", p)
	}
	if reason, _ := p.Extensions()[router.ExtDeadLetterReason].(string); !strings.Contains(reason, "not a CloudEvent") {
		t.Fatalf("reason %q", reason)
	}
	h := &harness{store: store}
	eventually(t, "the poison message audited", func() bool { return h.count(t, sinks.Query{Kind: sinks.KindPoison}) == 1 })
	trail := h.trail(t, "/auditbus/poison/kafka/mixed", "mixed/0/0")
	checkTrail(t, trail, want{kind: sinks.KindPoison, transport: "kafka", topic: "mixed", route: "p", errHas: "not a CloudEvent"})
	if trail[0].Partition != 0 || trail[0].Offset != 0 {
		t.Errorf("poison entry at partition %d offset %d, want 0 and 0", trail[0].Partition, trail[0].Offset)
	}
}

package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/cloudevents/sdk-go/v2/event"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

func testEvents(prefix string, n int) []bus.Event {
	out := make([]bus.Event, n)
	for i := range out {
		e := event.New()
		e.SetID(fmt.Sprintf("%s-%06d", prefix, i))
		e.SetSource("/amqp-test")
		e.SetType("com.example.test")
		_ = e.SetData("application/octet-stream", []byte(e.ID()))
		out[i] = e
	}
	return out
}

// TestUnroutable: an event no queue takes is an error naming it, not a
// silent drop.
func TestUnroutable(t *testing.T) {
	tr := newTransport(t, testConfig(t))
	topic := uniqueName("unroutable")
	tr.c.topic(topic)
	evs := testEvents("lost", 3)
	err := tr.Publish(context.Background(), topic, evs)
	if !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("got %v, want ErrNoRoute", err)
	}
	for _, part := range []string{`"` + topic + `"`, `"lost-000000"`, "com.example.test", "3 of 3"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not name %s", err, part)
		}
	}
	if st := tr.Stats(); st.Returned != 3 {
		t.Errorf("Stats.Returned = %d, want 3", st.Returned)
	}
}

// TestBrokerNack: a queue that refuses messages when full (overflow
// reject-publish) makes the broker nack them; the error names the event.
func TestBrokerNack(t *testing.T) {
	tr := newTransport(t, testConfig(t))
	topic, queue := uniqueName("nack"), uniqueName("nack-queue")
	tr.c.topic(topic)
	tr.c.queue(queue)
	ch := admin(t)
	if err := ch.ExchangeDeclare(topic, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp091.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "#", topic, false, nil); err != nil {
		t.Fatal(err)
	}
	evs := testEvents("full", 3)
	err := tr.Publish(context.Background(), topic, evs)
	if !errors.Is(err, amqp.ErrNacked) {
		t.Fatalf("got %v, want ErrNacked", err)
	}
	for _, part := range []string{`"` + topic + `"`, `"full-000001"`, "#1", "2 of 3"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not name %s", err, part)
		}
	}
	if errors.Is(err, bus.ErrNoRoute) {
		t.Errorf("a nack reported as unroutable: %v", err)
	}
}

// TestPoisonMessage: a message that is not a CloudEvent reaches the poison
// callback with the raw message and the reason, is acknowledged, and
// consumption goes on.
func TestPoisonMessage(t *testing.T) {
	var mu sync.Mutex
	var poison []amqp.PoisonMessage
	cfg := testConfig(t)
	cfg.Poison = func(_ context.Context, m amqp.PoisonMessage) {
		mu.Lock()
		poison = append(poison, m)
		mu.Unlock()
	}
	tr := newTransport(t, cfg)
	b := bus.New(tr)
	topic := uniqueName("poison")
	got := make(chan string, 10)
	sub, err := b.Subscribe(context.Background(), topic, "g", func(_ context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			got <- m.Event.ID()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch := admin(t)
	if err := ch.Publish(topic, "whatever", false, false, amqp091.Publishing{Body: []byte("not an event"), MessageId: "raw-1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), topic, testEvents("good", 1)...); err != nil {
		t.Fatal(err)
	}
	if id := <-got; id != "good-000000" {
		t.Fatalf("handler got %q", id)
	}
	waitFor(t, "the poison callback", func() bool { mu.Lock(); defer mu.Unlock(); return len(poison) == 1 })
	p := poison[0]
	if string(p.Delivery.Body) != "not an event" || p.Delivery.MessageId != "raw-1" || p.Topic != topic || p.Group != "g" ||
		p.Err == nil || !strings.Contains(p.Err.Error(), "no CloudEvents headers") {
		t.Fatalf("poison message %+v", p)
	}
	if err := p.Delivery.Ack(false); err == nil {
		t.Error("the poison message's delivery can be acknowledged by the callback; the transport does that")
	}
	// Acknowledged: the queue is empty, nothing is redelivered.
	sub.Close()
	q, err := ch.QueueDeclarePassive(amqp.QueueName(topic, "g"), true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 0 {
		t.Fatalf("%d messages left in the queue; the poison message should have been acknowledged", q.Messages)
	}
	if st := tr.Stats(); st.Poison != 1 {
		t.Errorf("Stats.Poison = %d, want 1", st.Poison)
	}
}

// TestDeadLetter: with OnExhausted(DeadLetter), a batch that failed every
// attempt is rejected to the queue's dead-letter exchange and consumption
// goes on.
func TestDeadLetter(t *testing.T) {
	dlx, dlq := uniqueName("dlx"), uniqueName("dlq")
	ch := admin(t)
	if err := ch.ExchangeDeclare(dlx, "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(dlq, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(dlq, "", dlx, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ch.QueueDelete(dlq, false, false, false)
		_ = ch.ExchangeDelete(dlx, false, false)
	})
	cfg := testConfig(t)
	cfg.DeadLetterExchange = dlx
	b := bus.New(newTransport(t, cfg))
	topic := uniqueName("deadletter")
	var mu sync.Mutex
	handled := map[string]bool{}
	_, err := b.Subscribe(context.Background(), topic, "g", func(_ context.Context, msgs []bus.Message) error {
		if msgs[0].Event.ID() == "dl-000001" {
			return errors.New("cannot handle this one")
		}
		mu.Lock()
		handled[msgs[0].Event.ID()] = true
		mu.Unlock()
		return nil
	}, bus.MaxBatch(1), bus.MaxAttempts(2), bus.RetryBackoff(time.Millisecond, time.Millisecond), bus.OnExhausted(amqp.DeadLetter))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), topic, testEvents("dl", 3)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the good events", func() bool { mu.Lock(); defer mu.Unlock(); return handled["dl-000000"] && handled["dl-000002"] })
	var dead amqp091.Delivery
	waitFor(t, "the dead-lettered event", func() bool {
		d, ok, err := ch.Get(dlq, true)
		dead = d
		return err == nil && ok
	})
	if dead.Headers["cloudEvents:id"] != "dl-000001" {
		t.Fatalf("dead-lettered message %v, want event dl-000001", dead.Headers)
	}
}

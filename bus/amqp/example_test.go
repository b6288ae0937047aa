package amqp_test

import (
	"context"
	"fmt"
	"log"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Example publishes and consumes through RabbitMQ (the one `make test`
// starts on localhost). The daemon fills the Config from AUDITBUS_AMQP_*
// with ConfigFromEnv.
func Example() {
	tr, err := amqp.New(amqp.Config{
		URL:       "amqp://guest:guest@localhost:5672/",
		QueueType: amqp.Quorum,
		Poison: func(_ context.Context, m amqp.PoisonMessage) {
			log.Printf("not a CloudEvent on %s: %v", m.Queue, m.Err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	b := bus.New(tr)
	defer b.Close()
	const topic = "orders.example"

	// The group's queue "orders.example.billing" is bound before Subscribe
	// returns.
	got := make(chan bus.Message, 1)
	sub, err := b.Subscribe(context.Background(), topic, "billing", func(_ context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			got <- m
		}
		return nil // acknowledges the batch
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	e := event.New()
	e.SetID("order-1001")
	e.SetSource("/shop/checkout")
	e.SetType("com.example.order.created") // the routing key
	_ = e.SetData(event.ApplicationJSON, map[string]int{"order": 1001})
	// Returns once the broker confirmed the event.
	if err := b.Publish(context.Background(), topic, e); err != nil {
		log.Fatal(err)
	}
	m := <-got
	fmt.Println(m.Event.Type(), m.Event.ID(), "attempt", m.Attempt, string(m.Event.Data()))
	// Output: com.example.order.created order-1001 attempt 1 {"order":1001}
}

package amqp_test

import (
	"context"
	"log"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Example publishes and consumes through RabbitMQ. The daemon fills the
// Config from AUDITBUS_AMQP_* with ConfigFromEnv.
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

	// The group's queue "orders.billing" is bound before Subscribe returns.
	sub, err := b.Subscribe(context.Background(), "orders", "billing", func(_ context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			log.Printf("%s %s attempt %d", m.Event.Type(), m.Event.ID(), m.Attempt)
		}
		return nil // acknowledges the batch
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	e := event.New()
	e.SetSource("/shop/checkout")
	e.SetType("com.example.order.created") // the routing key
	_ = e.SetData(event.ApplicationJSON, map[string]int{"order": 1001})
	// Returns once the broker confirmed the event.
	if err := b.Publish(context.Background(), "orders", e); err != nil {
		log.Fatal(err)
	}
}

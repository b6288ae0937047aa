package bus_test

import (
	"context"
	"fmt"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/cloudevents/sdk-go/v2/event"
)

// A service publishes an order event; a billing consumer group receives it.
func Example() {
	ctx := context.Background()
	b := bus.New(mem.New()) // or a Kafka or RabbitMQ transport: same code
	defer b.Close()

	received := make(chan bus.Event, 1)
	_, err := b.Subscribe(ctx, "orders", "billing", func(ctx context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			received <- m.Event
		}
		return nil // acknowledges the batch; an error would redeliver it
	})
	if err != nil {
		panic(err)
	}

	e := event.New()
	e.SetSource("/shop/checkout")
	e.SetType("com.example.order.created")
	e.SetExtension(bus.ExtPartitionKey, "customer-42") // keeps this customer's events in order
	_ = e.SetData(event.ApplicationJSON, map[string]any{"order": 1001, "total": 25.5})
	if err := b.Publish(ctx, "orders", e); err != nil { // fills id and time, then publishes
		panic(err)
	}

	got := <-received
	fmt.Println(got.Type(), got.Source(), string(got.Data()), got.ID() == e.ID())
	// Output: com.example.order.created /shop/checkout {"order":1001,"total":25.5} true
}

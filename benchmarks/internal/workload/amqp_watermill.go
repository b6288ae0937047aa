package workload

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
)

// WatermillAMQP is Watermill's AMQP Pub/Sub (watermill-amqp v3) with its
// durable configuration (durable exchange and queue, persistent messages)
// and three changes that give it the guarantees and the means auditbus has:
// ConfirmDelivery, so that Publish returns only once the broker confirmed;
// a pool of c.Publishers channels, one per publishing goroutine, instead of
// a channel opened per call; and the same prefetch as auditbus instead of
// its default of 1.
func WatermillAMQP(c AMQP) Paced {
	return Paced{
		System: System{Name: "watermill amqp", setup: func(w *Workload) (*Trial, error) { return setupWatermillAMQP(c, w) }},
		Pacing: Pacing{Publishers: c.Publishers, Batch: 100},
	}
}

func setupWatermillAMQP(c AMQP, w *Workload) (*Trial, error) {
	exchange, queue := amqpNames("watermill")
	msgs := make([]*message.Message, w.Events)
	for i := range msgs {
		msgs[i] = message.NewMessage(w.ID(i), w.Payload(i))
	}
	cfg := wamqp.NewDurablePubSubConfig(c.URL, func(string) string { return queue })
	cfg.Publish.ConfirmDelivery = true
	cfg.Publish.ChannelPoolSize = c.Publishers
	cfg.Consume.Qos.PrefetchCount = c.Prefetch
	pub, err := wamqp.NewPublisher(cfg, watermill.NopLogger{})
	if err != nil {
		return nil, err
	}
	sub, err := wamqp.NewSubscriber(cfg, watermill.NopLogger{})
	if err != nil {
		_ = pub.Close()
		return nil, err
	}
	t := newTally(w)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, exchange)
	if err != nil {
		cancel()
		_ = pub.Close()
		_ = sub.Close()
		return nil, err
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for m := range ch {
			m.Ack()
			t.record(m.UUID, len(m.Payload))
		}
	}()
	return &Trial{
		w:     w,
		tally: t,
		publish: func(_ context.Context, lo, hi int) error {
			return pub.Publish(exchange, msgs[lo:hi]...)
		},
		stopped: stopped,
		close: func() error {
			cancel()
			err := pub.Close()
			if serr := sub.Close(); err == nil {
				err = serr
			}
			<-stopped
			if derr := deleteTopology(c.URL, exchange, queue); err == nil {
				err = derr
			}
			return err
		},
	}, nil
}

package workload

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
)

// WatermillAMQP is Watermill's AMQP Pub/Sub (watermill-amqp v3) with its
// durable configuration (NewDurablePubSubConfig: durable exchange and
// queue, persistent messages) and ConfirmDelivery, so that its Publish, like
// auditbus's, returns only once the broker confirmed every message.
// Everything else is Watermill's default: a channel opened per Publish call
// and a prefetch of 1.
//
// With tuned, it also gets what auditbus has: a pool of c.Publishers
// channels, one per publishing goroutine, and auditbus's prefetch.
func WatermillAMQP(c AMQP, tuned bool) Paced {
	name := "watermill amqp"
	if tuned {
		name += " (tuned)"
	}
	return Paced{
		System: System{Name: name, setup: func(w *Workload) (*Trial, error) { return setupWatermillAMQP(c, tuned, w) }},
		Pacing: Pacing{Publishers: c.Publishers, Batch: 100},
	}
}

func setupWatermillAMQP(c AMQP, tuned bool, w *Workload) (*Trial, error) {
	exchange, queue := amqpNames("watermill")
	msgs := make([]*message.Message, w.Events)
	for i := range msgs {
		msgs[i] = message.NewMessage(w.ID(i), w.Payload(i))
	}
	cfg := wamqp.NewDurablePubSubConfig(c.URL, func(string) string { return queue })
	cfg.Publish.ConfirmDelivery = true
	if tuned {
		cfg.Publish.ChannelPoolSize = c.Publishers
		cfg.Consume.Qos.PrefetchCount = c.Prefetch
	}
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

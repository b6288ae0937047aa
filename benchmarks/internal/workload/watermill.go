package workload

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// Watermill is Watermill's GoChannel Pub/Sub with its default Config and
// the no-op logger: one subscriber that acks every message. Messages carry
// the same ids and payload bytes as the auditbus events, built before
// timing; they carry no metadata, so Watermill moves slightly less per
// message than auditbus (which carries source, type and content type).
//
// With the default Config, Publish does not wait for acks: GoChannel starts
// goroutines per message that queue for the subscriber, so its memory grows
// with the backlog instead of slowing the publisher. That is its default
// behaviour and is measured as is.
var Watermill = System{Name: "watermill gochannel", setup: setupWatermill}

func setupWatermill(w *Workload) (*Trial, error) {
	msgs := make([]*message.Message, w.Events)
	for i := range msgs {
		msgs[i] = message.NewMessage(w.ID(i), w.Payload(i))
	}

	ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	t := newTally(w)
	ctx, cancel := context.WithCancel(context.Background())
	// Subscribe registers the subscriber before it returns, so nothing
	// published afterwards is dropped for want of a subscriber.
	ch, err := ps.Subscribe(ctx, topic)
	if err != nil {
		cancel()
		_ = ps.Close()
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
			return ps.Publish(topic, msgs[lo:hi]...)
		},
		stopped: stopped,
		close: func() error {
			cancel()
			err := ps.Close()
			<-stopped
			return err
		},
	}, nil
}

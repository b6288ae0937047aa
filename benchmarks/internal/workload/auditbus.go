package workload

import (
	"context"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/cloudevents/sdk-go/v2/event"
)

const (
	topic     = "bench"
	group     = "bench"
	source    = "/auditbus/benchmarks"
	eventType = "io.auditbus.benchmark.v1"
)

// Auditbus is auditbus over its in-process transport with default options:
// one consumer group with one consumer at the default MaxBatch. The events
// get id, source, type and data content type before timing; the bus fills
// their time while publishing, as it does for any caller, and validates and
// clones them, which is part of what is measured.
var Auditbus = System{Name: "auditbus mem", setup: setupAuditbus}

func setupAuditbus(w *Workload) (*Trial, error) {
	events := make([]event.Event, w.Events)
	for i := range events {
		e := event.New()
		e.SetID(w.ID(i))
		e.SetSource(source)
		e.SetType(eventType)
		if err := e.SetData("application/octet-stream", w.Payload(i)); err != nil {
			return nil, err
		}
		events[i] = e
	}

	b := bus.New(mem.New())
	t := newTally(w)
	ctx, cancel := context.WithCancel(context.Background())
	// Returning nil acknowledges the batch: the auditbus counterpart of
	// Watermill's per-message Ack.
	sub, err := b.Subscribe(ctx, topic, group, func(_ context.Context, msgs []bus.Message) error {
		for i := range msgs {
			e := &msgs[i].Event
			t.record(e.ID(), len(e.DataEncoded))
		}
		return nil
	})
	if err != nil {
		cancel()
		_ = b.Close()
		return nil, err
	}
	return &Trial{
		w:     w,
		tally: t,
		publish: func(ctx context.Context, lo, hi int) error {
			return b.Publish(ctx, topic, events[lo:hi]...)
		},
		stopped: sub.Done(),
		close: func() error {
			cancel()
			return b.Close()
		},
	}, nil
}

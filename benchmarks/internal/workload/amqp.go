package workload

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/cloudevents/sdk-go/v2/event"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// AMQP is the setting shared by every system measured on RabbitMQ, so that
// they differ only in the client.
type AMQP struct {
	URL      string // broker
	Window   int    // publisher confirms awaited at once
	Prefetch int    // unacknowledged deliveries per consumer
	// Publishers is how many goroutines call Publish at once on systems
	// whose Publish waits for its own batch's confirms, so that together
	// they keep the confirm window full.
	Publishers int
}

// Pacing is how a system's events are published: by Publishers goroutines,
// Batch events per call.
type Pacing struct{ Publishers, Batch int }

// Paced is a System together with its pacing.
type Paced struct {
	System
	Pacing Pacing
}

// amqpNames are the exchange and queue of one trial: new for every trial,
// since the broker keeps them, and deleted when it ends.
func amqpNames(system string) (exchange, queue string) {
	id := fmt.Sprintf("auditbus-bench.%s.%d", system, time.Now().UnixNano())
	return id, amqp.QueueName(id, "bench")
}

// deleteTopology deletes a trial's exchange and queue.
func deleteTopology(url, exchange, queue string) error {
	conn, err := amqp091.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
		return fmt.Errorf("delete queue %q: %w", queue, err)
	}
	if err := ch.ExchangeDelete(exchange, false, false); err != nil {
		return fmt.Errorf("delete exchange %q: %w", exchange, err)
	}
	return nil
}

// benchEvent is workload event i as auditbus publishes it.
func benchEvent(w *Workload, i int, at time.Time) (bus.Event, error) {
	e := event.New()
	e.SetID(w.ID(i))
	e.SetSource(source)
	e.SetType(eventType)
	e.SetTime(at)
	if err := e.SetData("application/octet-stream", w.Payload(i)); err != nil {
		return e, err
	}
	return e, nil
}

// AuditbusAMQP is auditbus over bus/amqp: Publish through a Bus (validation
// included) with the transport's confirm window set to c.Window, and one
// subscription handing batches of 100 to the handler, with c.Prefetch.
func AuditbusAMQP(c AMQP) Paced {
	return Paced{
		System: System{Name: "auditbus amqp", setup: func(w *Workload) (*Trial, error) { return setupAuditbusAMQP(c, w) }},
		Pacing: Pacing{Publishers: c.Publishers, Batch: 100},
	}
}

func setupAuditbusAMQP(c AMQP, w *Workload) (*Trial, error) {
	now := time.Now()
	events := make([]bus.Event, w.Events)
	for i := range events {
		e, err := benchEvent(w, i, now)
		if err != nil {
			return nil, err
		}
		events[i] = e
	}
	tr, err := amqp.New(amqp.Config{URL: c.URL, ConfirmWindow: c.Window, Prefetch: c.Prefetch, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	b := bus.New(tr)
	exchange, queue := amqpNames("auditbus")
	t := newTally(w)
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := b.Subscribe(ctx, exchange, "bench", func(_ context.Context, msgs []bus.Message) error {
		for i := range msgs {
			e := &msgs[i].Event
			t.record(e.ID(), len(e.DataEncoded))
		}
		return nil
	}, bus.MaxBatch(100))
	if err != nil {
		cancel()
		_ = b.Close()
		return nil, err
	}
	return &Trial{
		w:     w,
		tally: t,
		publish: func(ctx context.Context, lo, hi int) error {
			return b.Publish(ctx, exchange, events[lo:hi]...)
		},
		stopped: sub.Done(),
		close: func() error {
			cancel()
			err := b.Close()
			if derr := deleteTopology(c.URL, exchange, queue); err == nil {
				err = derr
			}
			return err
		},
	}, nil
}

// RunPaced is Run with p's pacing: p.Publishers goroutines take batches of
// p.Batch events in turn until every event is published.
func (t *Trial) RunPaced(ctx context.Context, p Pacing) (Result, error) {
	if t.ran {
		return Result{}, fmt.Errorf("%s: a trial runs once; set up another", t.name)
	}
	t.ran = true
	w := t.w
	var next atomic.Int64
	var wg sync.WaitGroup
	pubErr := make(chan error, p.Publishers)
	start := time.Now()
	for range p.Publishers {
		wg.Go(func() {
			for {
				lo := int(next.Add(int64(p.Batch))) - p.Batch
				if lo >= w.Events {
					return
				}
				if err := t.publish(ctx, lo, min(lo+p.Batch, w.Events)); err != nil {
					pubErr <- fmt.Errorf("publish of events %d..: %w", lo, err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(pubErr) }()
	for {
		select {
		case <-t.tally.done:
			return Result{Events: w.Events, Elapsed: t.tally.end.Sub(start)}, nil
		case err, ok := <-pubErr:
			if !ok {
				pubErr = nil // every publisher finished; wait for the consumer
				continue
			}
			return Result{}, fmt.Errorf("%s: %w (consumer had handled %d of %d events)", t.name, err, t.tally.n.Load(), w.Events)
		case <-t.stopped:
			return Result{}, fmt.Errorf("%s: consumer stopped after handling %d of %d events", t.name, t.tally.n.Load(), w.Events)
		case <-ctx.Done():
			return Result{}, fmt.Errorf("%s: %w: consumer handled %d of %d events", t.name, context.Cause(ctx), t.tally.n.Load(), w.Events)
		}
	}
}

package workload

import (
	"context"
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// RawAMQP is amqp091-go used directly, as a careful hand-written client
// would: one publisher goroutine keeping c.Window messages awaiting
// confirms (a sliding window over the whole run), one consumer with
// c.Prefetch that acknowledges with one multiple-ack whenever it has caught
// up or 100 deliveries are unacknowledged. It sends exactly what auditbus
// sends for each event (the same exchange type, routing key, properties and
// CloudEvents headers, mandatory and persistent), but builds every message
// before timing, so the difference is the cost of the auditbus client.
func RawAMQP(c AMQP) Paced {
	return Paced{
		System: System{Name: "raw amqp091", setup: func(w *Workload) (*Trial, error) { return setupRawAMQP(c, w) }},
		// One call publishes everything: the window slides across the run.
		Pacing: Pacing{Publishers: 1, Batch: 1 << 30},
	}
}

func setupRawAMQP(c AMQP, w *Workload) (*Trial, error) {
	exchange, queue := amqpNames("raw")
	msgs := rawMessages(w)
	pubConn, err := amqp091.Dial(c.URL)
	if err != nil {
		return nil, err
	}
	subConn, err := amqp091.Dial(c.URL)
	if err != nil {
		_ = pubConn.Close()
		return nil, err
	}
	closeAll := func() error {
		_ = pubConn.Close()
		_ = subConn.Close()
		return deleteTopology(c.URL, exchange, queue)
	}
	pub, deliveries, err := rawTopology(c, pubConn, subConn, exchange, queue)
	if err != nil {
		_ = closeAll()
		return nil, err
	}
	confirms := pub.NotifyPublish(make(chan amqp091.Confirmation, c.Window))
	t := newTally(w)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for d := range deliveries {
			t.record(d.MessageId, len(d.Body))
			// Take what else is ready, then acknowledge it all at once.
			last := d
		drain:
			for n := 1; n < 100; n++ {
				select {
				case d, ok := <-deliveries:
					if !ok {
						return
					}
					t.record(d.MessageId, len(d.Body))
					last = d
				default:
					break drain
				}
			}
			if err := last.Ack(true); err != nil {
				return
			}
		}
	}()
	return &Trial{
		w:     w,
		tally: t,
		publish: func(ctx context.Context, lo, hi int) error {
			inflight := 0
			for i := lo; i < hi; i++ {
				for inflight >= c.Window {
					if !(<-confirms).Ack {
						return fmt.Errorf("event %d nacked", i)
					}
					inflight--
				}
				if err := pub.PublishWithContext(ctx, exchange, eventType, true, false, msgs[i]); err != nil {
					return err
				}
				inflight++
			}
			for ; inflight > 0; inflight-- {
				if !(<-confirms).Ack {
					return fmt.Errorf("nacked")
				}
			}
			return nil
		},
		stopped: stopped,
		close:   closeAll,
	}, nil
}

// rawMessages builds, for every event, the message auditbus would send.
func rawMessages(w *Workload) []amqp091.Publishing {
	out := make([]amqp091.Publishing, w.Events)
	now := time.Now().UTC()
	for i := range out {
		out[i] = amqp091.Publishing{
			Headers: amqp091.Table{
				"cloudEvents:specversion": "1.0",
				"cloudEvents:id":          w.ID(i),
				"cloudEvents:source":      source,
				"cloudEvents:type":        eventType,
				"cloudEvents:time":        now.Format(time.RFC3339Nano),
			},
			ContentType:  "application/octet-stream",
			MessageId:    w.ID(i),
			DeliveryMode: amqp091.Persistent,
			Timestamp:    now,
			Body:         w.Payload(i),
		}
	}
	return out
}

// rawTopology declares what bus/amqp declares: a durable topic exchange and
// a durable classic queue bound with "#". It returns the publishing channel
// in confirm mode and the consumer's deliveries.
func rawTopology(c AMQP, pubConn, subConn *amqp091.Connection, exchange, queue string) (*amqp091.Channel, <-chan amqp091.Delivery, error) {
	sub, err := subConn.Channel()
	if err != nil {
		return nil, nil, err
	}
	if err := sub.Qos(c.Prefetch, 0, false); err != nil {
		return nil, nil, err
	}
	if err := sub.ExchangeDeclare(exchange, amqp091.ExchangeTopic, true, false, false, false, nil); err != nil {
		return nil, nil, err
	}
	if _, err := sub.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return nil, nil, err
	}
	if err := sub.QueueBind(queue, "#", exchange, false, nil); err != nil {
		return nil, nil, err
	}
	deliveries, err := sub.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return nil, nil, err
	}
	pub, err := pubConn.Channel()
	if err != nil {
		return nil, nil, err
	}
	if err := pub.Confirm(false); err != nil {
		return nil, nil, err
	}
	return pub, deliveries, nil
}

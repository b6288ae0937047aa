package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/bus/backoff"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Event is a CloudEvent. It is the CloudEvents Go SDK's event type, so
// events built with that SDK pass through unchanged.
type Event = event.Event

// Transport is what every broker driver implements. A Bus adds validation
// and middleware on top; drivers trust the events they are given.
type Transport interface {
	// Publish sends events to topic and returns once the transport has
	// accepted all of them (durably, where it is durable). On error some
	// events may have been delivered: publishing again may duplicate them,
	// never lose them.
	Publish(ctx context.Context, topic string, events []Event) error
	// Subscribe starts consuming topic as a member of the consumer group
	// and returns once events published from now on will reach the group.
	// Consumption stops when ctx ends, the Subscription is closed or the
	// transport is closed.
	Subscribe(ctx context.Context, topic, group string, h Handler, cfg SubscribeConfig) (Subscription, error)
	// Close stops every subscription, waiting for handlers in flight, and
	// releases the transport. Later calls return ErrClosed.
	Close() error
}

// Handler handles a batch of messages. Returning nil acknowledges the whole
// batch; returning an error has it delivered again. The slice and the
// messages are only valid until the handler returns: copy what you keep.
// Events are shared with the transport until acknowledged, so clone an event
// (Event.Clone) before modifying it.
type Handler func(ctx context.Context, msgs []Message) error

// Message is one delivery of an event to a consumer group.
type Message struct {
	Event     Event
	Topic     string
	Partition int   // partition (or queue shard) the event was read from
	Offset    int64 // position in the partition, or a delivery tag
	Attempt   int   // 1 on first delivery, incremented on each redelivery
	// Trace is the trace context of the hop that published the message,
	// from the transport's traceparent/tracestate headers; empty when the
	// publisher did not trace. See Message.SpanContext.
	Trace TraceContext
}

// Subscription is a running consumer.
type Subscription interface {
	// Close stops taking new batches, waits for the handler in flight to
	// return and leaves unacknowledged events to the group. It is safe to
	// call more than once.
	Close() error
	// Done is closed once the subscription has stopped.
	Done() <-chan struct{}
	// Err reports why the subscription stopped: nil after Close or when the
	// transport closed, the context's error when it ended, or an error
	// wrapping ErrMaxAttempts. It is nil while the subscription runs.
	Err() error
}

// SubscribeConfig holds a subscription's settings. Drivers receive it with
// defaults applied (see WithDefaults).
type SubscribeConfig struct {
	// MaxBatch is the most messages a handler receives at once. Default 100.
	MaxBatch int
	// MaxWait is how long to wait for a batch to fill up to MaxBatch once it
	// has its first message. Zero (the default) hands over whatever is
	// available at once, for the lowest latency.
	MaxWait time.Duration
	// MaxAttempts bounds how often one batch is offered to the handler.
	// Default 5.
	MaxAttempts int
	// RetryBackoff is the wait before the second attempt; it doubles with
	// each further attempt (with ±20% jitter) up to MaxRetryBackoff.
	// Defaults 100ms and 10s.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// OnExhausted, if set, receives a batch that failed MaxAttempts times,
	// with the handler's last error. If it returns nil the batch is
	// acknowledged (it took responsibility, e.g. by dead-lettering it);
	// otherwise, and when OnExhausted is nil, the subscription stops with an
	// error wrapping ErrMaxAttempts and the batch stays unacknowledged.
	OnExhausted func(ctx context.Context, msgs []Message, err error) error
}

// Subscription defaults.
const (
	DefaultMaxBatch        = 100
	DefaultMaxAttempts     = 5
	DefaultRetryBackoff    = 100 * time.Millisecond
	DefaultMaxRetryBackoff = 10 * time.Second
)

// WithDefaults returns c with every unset field at its default.
func (c SubscribeConfig) WithDefaults() SubscribeConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.MaxRetryBackoff <= 0 {
		c.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		c.MaxRetryBackoff = c.RetryBackoff
	}
	if c.MaxWait < 0 {
		c.MaxWait = 0
	}
	return c
}

// Backoff returns the wait after failed attempt number attempt (1-based).
func (c SubscribeConfig) Backoff(attempt int) time.Duration {
	return backoff.Policy{Initial: c.RetryBackoff, Max: c.MaxRetryBackoff, Jitter: backoff.DefaultJitter}.Delay(attempt)
}

// Outcome is what became of a batch handed to Deliver.
type Outcome int

// Outcomes of Deliver.
const (
	// Acked: the handler (or OnExhausted) accepted the batch; acknowledge it.
	Acked Outcome = iota
	// Stopped: the subscription is stopping; leave the batch unacknowledged.
	Stopped
	// Exhausted: every attempt failed and nobody took the batch over; leave
	// it unacknowledged and stop with the returned error.
	Exhausted
)

// Deliver runs h on msgs, retrying in place with backoff until it succeeds,
// the attempts run out, ctx ends or stop is closed. It is the retry loop
// every driver shares, so that all transports count attempts the same way.
// msgs[i].Attempt must hold the first attempt's number; Deliver updates it.
// It returns the outcome, the number of failed attempts it made, and for
// Exhausted an error wrapping ErrMaxAttempts.
func Deliver(ctx context.Context, stop <-chan struct{}, cfg SubscribeConfig, h Handler, msgs []Message) (Outcome, int, error) {
	attempt := msgs[0].Attempt
	failed := 0
	var timer *time.Timer
	for {
		err := h(ctx, msgs)
		if err == nil {
			return Acked, failed, nil
		}
		failed++
		if ctx.Err() != nil {
			// The failure is most likely the cancellation itself.
			return Stopped, failed, nil
		}
		if attempt >= cfg.MaxAttempts {
			if cfg.OnExhausted != nil && cfg.OnExhausted(ctx, msgs, err) == nil {
				return Acked, failed, nil
			}
			return Exhausted, failed, &ExhaustedError{
				Topic: msgs[0].Topic, First: msgs[0].Event.ID(), Count: len(msgs),
				Attempts: attempt, Err: err,
			}
		}
		if timer == nil {
			timer = time.NewTimer(cfg.Backoff(attempt))
			defer timer.Stop()
		} else {
			timer.Reset(cfg.Backoff(attempt))
		}
		select {
		case <-timer.C:
		case <-stop:
			return Stopped, failed, nil
		case <-ctx.Done():
			return Stopped, failed, nil
		}
		attempt++
		for i := range msgs {
			msgs[i].Attempt = attempt
		}
	}
}

// ExhaustedError reports a batch that failed on every attempt. It wraps
// ErrMaxAttempts and the handler's last error.
type ExhaustedError struct {
	Topic    string
	First    string // id of the batch's first event
	Count    int    // events in the batch
	Attempts int
	Err      error // the handler's last error
}

// Error names the topic, the batch and the handler's last error.
func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("auditbus: consume %q: %v: batch of %d from event id %q failed %d attempts; last error: %v",
		e.Topic, ErrMaxAttempts, e.Count, e.First, e.Attempts, e.Err)
}

// Unwrap returns ErrMaxAttempts and the handler's last error.
func (e *ExhaustedError) Unwrap() []error { return []error{ErrMaxAttempts, e.Err} }

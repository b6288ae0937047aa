package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/backoff"
	"github.com/auditbus/auditbus/pkg/cehttp"
	"go.opentelemetry.io/otel/trace"
)

// destination delivers events to one place: a transport topic or a
// webhook, with the route's retry policy and its own circuit breaker.
type destination struct {
	name  string
	route string
	// Exactly one of these is set.
	transport bus.Transport
	topic     string
	hook      *cehttp.Webhook

	retry   RetryPolicy
	breaker *breaker
	m       *Metrics
	tracer  trace.Tracer // nil: tracing off
	// stopping is closed when the router stops: wait waits no more.
	stopping <-chan struct{}
}

// result is what a destination did with one event: accepted it (err nil)
// or gave up on it after the retry policy.
type result struct {
	// attempts is how many sends reached the destination; an attempt the
	// circuit breaker turned away does not count.
	attempts int
	err      error
	// at is when the destination accepted the event or was given up on.
	at time.Time
}

// deliver sends events in order and returns, for each of them, whether the
// destination accepted it and after how many attempts; an event it gave up
// on after the retry policy has a non-nil err. deliver returns an error
// only when ctx ends first; the events not yet accepted then count as not
// delivered and the caller must not acknowledge them.
func (d *destination) deliver(ctx context.Context, events []bus.Event) ([]result, error) {
	ctx, span := d.startDeliver(ctx, d.tracer, events)
	res := make([]result, len(events))
	var err error
	if d.hook != nil {
		err = d.deliverEach(ctx, events, res)
	} else {
		err = d.deliverBatch(ctx, events, res)
	}
	endDeliver(span, res, err)
	return res, err
}

// deliverBatch publishes the batch to a transport topic, retrying what the
// transport did not acknowledge. An event the transport refuses for good
// (invalid or too large for it) is given up at once; the rest go on.
func (d *destination) deliverBatch(ctx context.Context, events []bus.Event, res []result) error {
	pending := make([]int, len(events))
	for i := range pending {
		pending[i] = i
	}
	batch := events
	start := time.Now()
	// settle records the end of the events idx: accepted (err nil) or
	// given up on.
	settle := func(idx []int, err error) {
		now := time.Now()
		for _, i := range idx {
			res[i].err, res[i].at = err, now
		}
	}
	for attempt := 1; ; attempt++ {
		err := d.attempt(func() error { return d.transport.Publish(ctx, d.topic, batch) })
		if !errors.Is(err, errCircuitOpen) {
			for _, i := range pending {
				res[i].attempts++
			}
		}
		if err == nil {
			d.m.delivered(d.route, d.name, len(batch))
			settle(pending, nil)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if permanent(err) {
			var ee *bus.EventError
			if !errors.As(err, &ee) || ee.Index < 0 || ee.Index >= len(pending) {
				// Refused for good, but not saying which event: give up on all.
				settle(pending, err)
				return nil
			}
			settle(pending[ee.Index:ee.Index+1], err)
			pending = append(pending[:ee.Index:ee.Index], pending[ee.Index+1:]...)
			if len(pending) == 0 {
				return nil
			}
			batch = make([]bus.Event, len(pending))
			for j, i := range pending {
				batch[j] = events[i]
			}
			attempt-- // the others were not refused; try them afresh
			continue
		}
		if !d.wait(ctx, attempt, start, err) {
			if err := d.interrupted(ctx); err != nil {
				return err
			}
			settle(pending, err)
			return nil
		}
	}
}

// deliverEach posts events one at a time, in order, each with its own
// retries; an event given up on goes to the dead letter and the next one
// is tried.
func (d *destination) deliverEach(ctx context.Context, events []bus.Event, res []result) error {
	for i := range events {
		start := time.Now()
		for attempt := 1; ; attempt++ {
			err := d.attempt(func() error { return d.hook.Send(ctx, &events[i]) })
			if !errors.Is(err, errCircuitOpen) {
				res[i].attempts++
			}
			if err == nil {
				d.m.delivered(d.route, d.name, 1)
				res[i].at = time.Now()
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if cehttp.IsPermanent(err) || !d.wait(ctx, attempt, start, err) {
				if err := d.interrupted(ctx); err != nil {
					return err
				}
				res[i].err, res[i].at = err, time.Now()
				break
			}
		}
	}
	return nil
}

// attempt runs send through the circuit breaker.
func (d *destination) attempt(send func() error) error {
	if ok, _ := d.breaker.allow(); !ok {
		return errCircuitOpen
	}
	err := send()
	if err != nil && permanent(err) {
		// A refused event says nothing about the destination's health.
		d.breaker.release()
	} else {
		d.breaker.done(err)
	}
	return err
}

// errStopping interrupts a delivery that would wait for a retry while the
// router stops; its batch is left to the source.
var errStopping = errors.New("the router is stopping: the batch is left to its source, which delivers it again")

// interrupted is why a delivery must stop without an outcome: ctx ended or
// the router is stopping; nil otherwise.
func (d *destination) interrupted(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-d.stopping:
		return errStopping
	default:
		return nil
	}
}

// wait sleeps before the next attempt after failed attempt number attempt,
// and reports false when the policy gives up (attempts or elapsed time), ctx
// ends or the router stops (see interrupted).
func (d *destination) wait(ctx context.Context, attempt int, start time.Time, err error) bool {
	if d.interrupted(ctx) != nil {
		return false
	}
	if attempt >= d.retry.MaxAttempts && !errors.Is(err, errCircuitOpen) {
		return false
	}
	pause := d.retry.backoff(attempt)
	if errors.Is(err, errCircuitOpen) {
		pause = max(d.breaker.retryIn(), 10*time.Millisecond)
	} else if ra, ok := cehttp.RetryAfter(err); ok {
		pause = max(pause, ra)
	}
	if d.retry.MaxElapsed > 0 && time.Since(start)+pause > d.retry.MaxElapsed {
		return false
	}
	d.m.retried(d.route, d.name)
	retryEvent(ctx, attempt, err)
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-d.stopping:
		return false
	}
}

// permanent reports an error that retrying cannot cure: the event itself is
// unacceptable to the destination.
func permanent(err error) bool {
	return errors.Is(err, bus.ErrInvalidEvent) || errors.Is(err, bus.ErrTooLarge) || cehttp.IsPermanent(err)
}

// backoff is the wait after failed attempt number attempt (1-based):
// InitialBackoff doubled per attempt up to MaxBackoff, varied by Jitter.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	return backoff.Policy{Initial: p.InitialBackoff, Max: p.MaxBackoff, Jitter: p.Jitter}.Delay(attempt)
}

// describe names the destination in errors and logs.
func (d *destination) describe() string {
	if d.hook != nil {
		return fmt.Sprintf("webhook %s", d.hook.URL())
	}
	return fmt.Sprintf("topic %q", d.topic)
}

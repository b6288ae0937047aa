package bus

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// PublishFunc publishes a batch of events to a topic.
type PublishFunc func(ctx context.Context, topic string, events []Event) error

// PublishMiddleware wraps the publish path. It sees each batch after
// validation and defaults, before the transport; metrics, tracing and
// signing plug in here.
type PublishMiddleware func(next PublishFunc) PublishFunc

// HandlerMiddleware wraps every handler subscribed through a Bus.
type HandlerMiddleware func(next Handler) Handler

// Option configures a Bus.
type Option func(*Bus)

// WithMaxEventSize sets the largest event Publish accepts, in bytes as
// EventSize counts them. Default DefaultMaxEventSize (1 MiB).
func WithMaxEventSize(n int) Option {
	return func(b *Bus) {
		if n > 0 {
			b.maxEventSize = n
		}
	}
}

// WithPublishMiddleware adds publish middleware; the first one given is the
// outermost.
func WithPublishMiddleware(mw ...PublishMiddleware) Option {
	return func(b *Bus) { b.pubMW = append(b.pubMW, mw...) }
}

// WithHandlerMiddleware adds handler middleware; the first one given is the
// outermost.
func WithHandlerMiddleware(mw ...HandlerMiddleware) Option {
	return func(b *Bus) { b.subMW = append(b.subMW, mw...) }
}

// Bus publishes and subscribes CloudEvents over a Transport. It is safe for
// concurrent use.
type Bus struct {
	t            Transport
	maxEventSize int
	pubMW        []PublishMiddleware
	subMW        []HandlerMiddleware
	publish      PublishFunc
	tracer       trace.Tracer // nil: tracing off
	closed       atomic.Bool
}

// New returns a Bus over t. The Bus owns t: closing the Bus closes t.
func New(t Transport, opts ...Option) *Bus {
	b := &Bus{t: t, maxEventSize: DefaultMaxEventSize}
	for _, o := range opts {
		o(b)
	}
	b.publish = t.Publish
	for i := len(b.pubMW) - 1; i >= 0; i-- {
		b.publish = b.pubMW[i](b.publish)
	}
	if b.tracer != nil {
		// Outermost, so that the span covers every other middleware.
		b.publish = b.tracePublish(b.publish)
	}
	return b
}

// Transport returns the transport the bus publishes through.
func (b *Bus) Transport() Transport { return b.t }

// Publish validates events, fills a missing id (UUIDv7) and time in place
// (so the caller sees the values given), and publishes them to topic. It
// returns when the transport has accepted every event. If any event is
// invalid, nothing is published and the error (an *EventError) names it.
func (b *Bus) Publish(ctx context.Context, topic string, events ...Event) error {
	if b.closed.Load() {
		return opError("publish to", topic, ErrClosed)
	}
	if topic == "" {
		return errors.New("auditbus: publish: topic is empty; name the topic to publish to")
	}
	if len(events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return opError("publish to", topic, err)
	}
	var now time.Time
	for i := range events {
		if err := b.prepare(topic, i, &events[i], &now); err != nil {
			return err
		}
	}
	return b.publish(ctx, topic, events)
}

// SubscribeOption sets one field of a SubscribeConfig.
type SubscribeOption func(*SubscribeConfig)

// MaxBatch sets SubscribeConfig.MaxBatch.
func MaxBatch(n int) SubscribeOption { return func(c *SubscribeConfig) { c.MaxBatch = n } }

// MaxWait sets SubscribeConfig.MaxWait.
func MaxWait(d time.Duration) SubscribeOption { return func(c *SubscribeConfig) { c.MaxWait = d } }

// MaxAttempts sets SubscribeConfig.MaxAttempts.
func MaxAttempts(n int) SubscribeOption { return func(c *SubscribeConfig) { c.MaxAttempts = n } }

// RetryBackoff sets SubscribeConfig.RetryBackoff and MaxRetryBackoff.
func RetryBackoff(first, max time.Duration) SubscribeOption {
	return func(c *SubscribeConfig) { c.RetryBackoff, c.MaxRetryBackoff = first, max }
}

// OnExhausted sets SubscribeConfig.OnExhausted.
func OnExhausted(f func(ctx context.Context, msgs []Message, err error) error) SubscribeOption {
	return func(c *SubscribeConfig) { c.OnExhausted = f }
}

// Subscribe consumes topic as a member of group, calling h with batches of
// messages. See Transport.Subscribe for the lifetime.
func (b *Bus) Subscribe(ctx context.Context, topic, group string, h Handler, opts ...SubscribeOption) (Subscription, error) {
	if b.closed.Load() {
		return nil, opError("subscribe to", topic, ErrClosed)
	}
	if topic == "" {
		return nil, errors.New("auditbus: subscribe: topic is empty; name the topic to consume")
	}
	if group == "" {
		return nil, opError("subscribe to", topic, errors.New("consumer group is empty; name the group (each group gets its own copy of every event)"))
	}
	if h == nil {
		return nil, opError("subscribe to", topic, errors.New("handler is nil"))
	}
	var cfg SubscribeConfig
	for _, o := range opts {
		o(&cfg)
	}
	for i := len(b.subMW) - 1; i >= 0; i-- {
		h = b.subMW[i](h)
	}
	if b.tracer != nil {
		h = b.traceHandler(topic, group, h)
	}
	return b.t.Subscribe(ctx, topic, group, h, cfg.WithDefaults())
}

// Close closes the bus and its transport. Publish and Subscribe return
// ErrClosed afterwards; closing again does nothing.
func (b *Bus) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	return b.t.Close()
}

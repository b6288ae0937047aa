package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/envconf"
)

// QueueType is the RabbitMQ queue type of a consumer group's queue.
type QueueType string

// Queue types.
const (
	// Classic queues are the default: fast, one node's disk.
	Classic QueueType = "classic"
	// Quorum queues are replicated (Raft) and count deliveries, which makes
	// Config.DeliveryLimit possible.
	Quorum QueueType = "quorum"
)

// ContentMode is how an event is laid out in an AMQP message.
type ContentMode string

// Content modes.
const (
	// Binary puts the attributes in "cloudEvents:" headers and the data,
	// as is, in the body. The default.
	Binary ContentMode = "binary"
	// Structured puts the whole event, as JSON, in the body with the
	// content type "application/cloudevents+json".
	Structured ContentMode = "structured"
)

// Defaults for Config.
const (
	DefaultConfirmWindow       = 256
	DefaultReconnectBackoff    = 100 * time.Millisecond
	DefaultMaxReconnectBackoff = 5 * time.Second
	DefaultHeartbeat           = 10 * time.Second
)

// Config configures a Transport. The zero value of every field but URL is
// usable; ConfigFromEnv fills one from AUDITBUS_AMQP_* variables.
type Config struct {
	// URL of the broker: amqp://user:pass@host:5672/vhost, or amqps:// for
	// TLS. Required.
	URL string
	// TLS configures amqps connections: root CAs, and a client certificate
	// for mutual TLS. Nil uses the system roots. Setting it with an amqp://
	// URL is an error, so that a plaintext connection is never mistaken for
	// an encrypted one.
	TLS *tls.Config

	// Prefetch is how many unacknowledged messages the broker sends each
	// subscription ahead of its handler. Zero means twice the
	// subscription's MaxBatch, so the next batch streams in while one is
	// handled; a value below MaxBatch is raised to it, or batches could
	// never fill. It bounds each subscription's memory.
	Prefetch int
	// QueueType of the queues created for consumer groups. Default Classic.
	// A queue that exists with another type makes Subscribe fail.
	QueueType QueueType
	// DeadLetterExchange, if set, is the queue's x-dead-letter-exchange:
	// where the broker sends messages rejected without requeue (see
	// DeadLetter) or over DeliveryLimit. DeadLetterRoutingKey, if set,
	// replaces their routing key.
	DeadLetterExchange   string
	DeadLetterRoutingKey string
	// DeliveryLimit > 0 sets a quorum queue's x-delivery-limit: a message
	// delivered more often than that (requeued by stopped or failed
	// consumers) goes to the dead-letter exchange. It needs QueueType
	// Quorum and a DeadLetterExchange, since without one the broker would
	// drop the message.
	DeliveryLimit int

	// Mode is the content mode events are published in. Default Binary.
	// Consumers read either mode whatever this says.
	Mode ContentMode
	// ConfirmWindow is the most published messages awaiting the broker's
	// confirm at once, over all publishers of the transport. Default
	// DefaultConfirmWindow.
	ConfirmWindow int

	// Poison receives every message that is not a valid CloudEvent, with
	// the reason. The message is acknowledged after it returns, so it is
	// not redelivered. Nil logs it at warning level and drops it.
	Poison func(ctx context.Context, m PoisonMessage)
	// OnState is called on every change of a connection's state, from the
	// goroutine that watches the connection: keep it quick. Use it for
	// metrics; the transport also logs every change.
	OnState func(StateChange)
	// Logger receives connection and recovery logs. Default slog.Default().
	Logger *slog.Logger

	// ReconnectBackoff is the wait before the second reconnection attempt;
	// it doubles, with jitter, up to MaxReconnectBackoff. Defaults
	// DefaultReconnectBackoff and DefaultMaxReconnectBackoff.
	ReconnectBackoff    time.Duration
	MaxReconnectBackoff time.Duration
	// Heartbeat is the AMQP heartbeat interval, which bounds how long a
	// dead connection goes unnoticed. Default DefaultHeartbeat.
	Heartbeat time.Duration
}

// withDefaults returns c with defaults applied, or an error naming the bad
// field.
func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		return c, errors.New("auditbus: amqp: Config.URL is empty; set the broker URL, e.g. amqp://guest:guest@localhost:5672/")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return c, fmt.Errorf("auditbus: amqp: Config.URL %q is not a URL: %s", redact(c.URL), parseReason(err))
	}
	switch u.Scheme {
	case "amqp":
		if c.TLS != nil {
			return c, fmt.Errorf("auditbus: amqp: Config.TLS is set but the URL %q is not amqps://; use amqps:// to connect over TLS", redact(c.URL))
		}
	case "amqps":
	default:
		return c, fmt.Errorf("auditbus: amqp: Config.URL %q: scheme %q: use amqp:// or amqps://", redact(c.URL), u.Scheme)
	}
	if c.Prefetch < 0 || c.Prefetch > 65535 {
		return c, fmt.Errorf("auditbus: amqp: Config.Prefetch %d: must be 0 (automatic) to 65535", c.Prefetch)
	}
	switch c.QueueType {
	case "":
		c.QueueType = Classic
	case Classic, Quorum:
	default:
		return c, fmt.Errorf("auditbus: amqp: Config.QueueType %q: use %q or %q", c.QueueType, Classic, Quorum)
	}
	if c.DeliveryLimit < 0 {
		return c, fmt.Errorf("auditbus: amqp: Config.DeliveryLimit %d: must not be negative", c.DeliveryLimit)
	}
	if c.DeliveryLimit > 0 && (c.QueueType != Quorum || c.DeadLetterExchange == "") {
		return c, errors.New("auditbus: amqp: Config.DeliveryLimit needs QueueType quorum and a DeadLetterExchange (without one the broker drops messages over the limit)")
	}
	switch c.Mode {
	case "":
		c.Mode = Binary
	case Binary, Structured:
	default:
		return c, fmt.Errorf("auditbus: amqp: Config.Mode %q: use %q or %q", c.Mode, Binary, Structured)
	}
	if c.ConfirmWindow < 0 {
		return c, fmt.Errorf("auditbus: amqp: Config.ConfirmWindow %d: must be positive", c.ConfirmWindow)
	}
	if c.ConfirmWindow == 0 {
		c.ConfirmWindow = DefaultConfirmWindow
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ReconnectBackoff <= 0 {
		c.ReconnectBackoff = DefaultReconnectBackoff
	}
	if c.MaxReconnectBackoff <= 0 {
		c.MaxReconnectBackoff = DefaultMaxReconnectBackoff
	}
	c.MaxReconnectBackoff = max(c.MaxReconnectBackoff, c.ReconnectBackoff)
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	return c, nil
}

// prefetch is the prefetch count for a subscription handing out batches of
// maxBatch.
func (c *Config) prefetch(maxBatch int) int {
	n := c.Prefetch
	if n == 0 {
		n = 2 * maxBatch
	}
	return min(max(n, maxBatch), 65535)
}

// redact hides the password of an AMQP URL, for errors and logs, also
// in a URL that does not parse.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// scheme://user:password@host...: hide what lies between the
		// first ":" after the scheme and the last "@" of the authority.
		rest, scheme := raw, ""
		if i := strings.Index(raw, "://"); i >= 0 {
			scheme, rest = raw[:i+3], raw[i+3:]
		}
		auth := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			auth = rest[:i]
		}
		at := strings.LastIndexByte(auth, '@')
		if c := strings.IndexByte(auth, ':'); at >= 0 && c >= 0 && c < at {
			return scheme + auth[:c+1] + "xxxxx" + rest[at:]
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// parseReason says why url.Parse refused a URL without quoting it: the
// parser's message holds the URL, and an escape error part of it, which
// may be the password.
func parseReason(err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return "it does not parse"
	}
	var ee url.EscapeError
	if errors.As(ue.Err, &ee) {
		return "a \"%\" is not followed by two hexadecimal digits (percent-encode a password that holds one: %25)"
	}
	var he url.InvalidHostError
	if errors.As(ue.Err, &he) {
		return "the host has a character a host name cannot hold"
	}
	if strings.Contains(ue.Err.Error(), "invalid port") {
		return "the port is not a number"
	}
	return "it does not parse"
}

// EnvPrefix is the prefix of the environment variables ConfigFromEnv reads.
const EnvPrefix = "AUDITBUS_AMQP_"

// ConfigFromEnv builds a Config from the environment:
//
//	AUDITBUS_AMQP_URL                      broker URL, amqp:// or amqps:// (required)
//	AUDITBUS_AMQP_TLS                      true to set up TLS (implied by the files below)
//	AUDITBUS_AMQP_TLS_CA                   PEM file of CAs to trust
//	AUDITBUS_AMQP_TLS_CERT                 PEM client certificate, for mutual TLS
//	AUDITBUS_AMQP_TLS_KEY                  PEM key of the client certificate
//	AUDITBUS_AMQP_TLS_SERVER_NAME          name to verify the broker's certificate against
//	AUDITBUS_AMQP_PREFETCH                 0 (twice the batch size, the default) to 65535
//	AUDITBUS_AMQP_QUEUE_TYPE               classic (default) or quorum
//	AUDITBUS_AMQP_DEAD_LETTER_EXCHANGE     x-dead-letter-exchange of group queues
//	AUDITBUS_AMQP_DEAD_LETTER_ROUTING_KEY  x-dead-letter-routing-key of group queues
//	AUDITBUS_AMQP_DELIVERY_LIMIT           quorum queues: deliveries before dead-lettering
//	AUDITBUS_AMQP_CONTENT_MODE             binary (default) or structured
//	AUDITBUS_AMQP_CONFIRM_WINDOW           unconfirmed publishes in flight (default 256)
//
// TLS settings need an amqps:// URL. Errors name every bad variable and
// what it accepts. The callbacks and the logger are left for the caller.
func ConfigFromEnv() (Config, error) {
	return configFrom(envconf.New(EnvPrefix))
}

func configFrom(r *envconf.Reader) (Config, error) {
	c := Config{
		URL:                  r.Required("URL", "set it to the broker URL, e.g. amqp://guest:guest@localhost:5672/ or amqps://broker:5671/"),
		TLS:                  r.TLS(),
		Prefetch:             r.Int("PREFETCH", 0, 0),
		QueueType:            QueueType(r.Enum("QUEUE_TYPE", string(Classic), string(Classic), string(Quorum))),
		DeadLetterExchange:   r.String("DEAD_LETTER_EXCHANGE", ""),
		DeadLetterRoutingKey: r.String("DEAD_LETTER_ROUTING_KEY", ""),
		DeliveryLimit:        r.Int("DELIVERY_LIMIT", 0, 0),
		Mode:                 ContentMode(r.Enum("CONTENT_MODE", string(Binary), string(Binary), string(Structured))),
		ConfirmWindow:        r.Int("CONFIRM_WINDOW", DefaultConfirmWindow, 1),
	}
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("auditbus: amqp configuration: %w", err)
	}
	var errs []error
	if c.Prefetch > 65535 {
		errs = append(errs, fmt.Errorf("%s=%d: want a whole number from 0 to 65535", r.Name("PREFETCH"), c.Prefetch))
	}
	if c.TLS != nil && !strings.HasPrefix(strings.ToLower(c.URL), "amqps://") {
		errs = append(errs, fmt.Errorf("%s=%q: TLS is configured (%s*), so use an amqps:// URL", r.Name("URL"), redact(c.URL), r.Name("TLS")))
	}
	if c.DeliveryLimit > 0 && (c.QueueType != Quorum || c.DeadLetterExchange == "") {
		errs = append(errs, fmt.Errorf("%s=%d: needs %s=quorum and %s (without one the broker drops messages over the limit)",
			r.Name("DELIVERY_LIMIT"), c.DeliveryLimit, r.Name("QUEUE_TYPE"), r.Name("DEAD_LETTER_EXCHANGE")))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("auditbus: amqp configuration: %w", err)
	}
	if _, err := c.withDefaults(); err != nil {
		return c, fmt.Errorf("%w (check %s)", err, r.Name("URL"))
	}
	return c, nil
}

// PoisonMessage is a message that is not a valid CloudEvent, as it came
// from the broker.
type PoisonMessage struct {
	Topic, Group, Queue string
	// Delivery is the raw message: headers, properties and body. The
	// transport acknowledges it after the callback returns; its
	// Acknowledger is nil, so it cannot be acknowledged twice.
	Delivery Delivery
	// Err says why the message is not a valid CloudEvent.
	Err error
}

// StateChange is a connection's change of state, given to Config.OnState.
type StateChange struct {
	// Role is the connection's job: "publish" or "consume". The transport
	// keeps one of each, as RabbitMQ advises, so that a publisher held
	// back by the broker's flow control does not hold back consumers.
	Role string
	// State is the new state.
	State ConnState
	// Err is why the connection closed or a reconnection failed.
	Err error
	// Reconnects counts successful reconnections of this connection so far.
	Reconnects int64
}

// ConnState is the state of a connection.
type ConnState int

// Connection states.
const (
	// Connected: the connection is up (first connection or reconnection).
	Connected ConnState = iota
	// Disconnected: the connection dropped; reconnection attempts follow.
	Disconnected
	// ReconnectFailed: one reconnection attempt failed; more follow with
	// backoff.
	ReconnectFailed
	// Closed: the transport was closed.
	Closed
)

// String names the state.
func (s ConnState) String() string {
	switch s {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case ReconnectFailed:
		return "reconnect failed"
	case Closed:
		return "closed"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// DeadLetter can be given as a subscription's OnExhausted
// (bus.OnExhausted(amqp.DeadLetter)): a batch that failed on every attempt
// is rejected without requeue, so that the broker moves it to the queue's
// dead-letter exchange, and consumption goes on. Without a dead-letter
// exchange the broker would drop it, so then the batch stays
// unacknowledged and the subscription stops, as without OnExhausted.
func DeadLetter(context.Context, []bus.Message, error) error { return ErrDeadLetter }

// ErrDeadLetter, returned (or wrapped) by an OnExhausted callback, asks the
// transport to reject the batch to the queue's dead-letter exchange instead
// of acknowledging it. See DeadLetter.
var ErrDeadLetter = errors.New("dead-letter the batch")

// ErrNacked means the broker refused to take responsibility for a published
// message (a negative publisher confirm, e.g. from a full queue with
// overflow reject-publish). Publishing it again may succeed.
var ErrNacked = errors.New("broker nacked the event")
